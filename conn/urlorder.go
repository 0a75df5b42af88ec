package conn

import "math/rand"

// urlOrder is the sequence in which the run loop dials the URLs: a queue
// where every URL dialed, successfully or not, moves to the back. Owned by
// the run goroutine.
type urlOrder struct {
	q []int
}

// newURLOrder returns the order 0..n-1, shuffled when shuffle is set (the
// default, see Options.KeepURLOrder) so that a fleet of services given the
// same list spreads over a cluster's nodes.
func newURLOrder(n int, shuffle bool) *urlOrder {
	o := &urlOrder{q: make([]int, n)}
	for i := range o.q {
		o.q[i] = i
	}
	if shuffle {
		rand.Shuffle(n, func(i, j int) { o.q[i], o.q[j] = o.q[j], o.q[i] })
	}
	return o
}

// front returns the URL to dial next.
func (o *urlOrder) front() int { return o.q[0] }

// toBack moves URL i to the back of the queue.
func (o *urlOrder) toBack(i int) {
	for k, v := range o.q {
		if v == i {
			copy(o.q[k:], o.q[k+1:])
			o.q[len(o.q)-1] = i
			return
		}
	}
}
