package conn

// publisherRing is a FIFO of messages on a ring buffer. Its capacity is the
// publisher's window, which bounds how many messages can be in it, so it
// never grows in practice; grow is a safety net, not a policy.
type publisherRing struct {
	buf     []*Confirmation
	head, n int
}

func newPublisherRing(capacity int) publisherRing {
	return publisherRing{buf: make([]*Confirmation, max(capacity, 1))}
}

func (r *publisherRing) len() int { return r.n }

// push appends c at the back.
func (r *publisherRing) push(c *Confirmation) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)%len(r.buf)] = c
	r.n++
}

// pushFront puts c back at the front.
func (r *publisherRing) pushFront(c *Confirmation) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.head = (r.head + len(r.buf) - 1) % len(r.buf)
	r.buf[r.head] = c
	r.n++
}

// pop removes and returns the front, or nil when empty.
func (r *publisherRing) pop() *Confirmation {
	if r.n == 0 {
		return nil
	}
	c := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return c
}

// back returns the last element, or nil when empty.
func (r *publisherRing) back() *Confirmation {
	if r.n == 0 {
		return nil
	}
	return r.buf[(r.head+r.n-1)%len(r.buf)]
}

// popBack removes and returns the last element, or nil when empty.
func (r *publisherRing) popBack() *Confirmation {
	if r.n == 0 {
		return nil
	}
	i := (r.head + r.n - 1) % len(r.buf)
	c := r.buf[i]
	r.buf[i] = nil
	r.n--
	return c
}

// take removes and returns the message with delivery tag tag. Confirms
// arrive in tag order (amqp091-go resequences them), so it is almost always
// the front; the scan is for the impossible case only.
func (r *publisherRing) take(tag uint64) *Confirmation {
	if r.n > 0 && r.buf[r.head].tag == tag {
		return r.pop()
	}
	for k := 1; k < r.n; k++ {
		i := (r.head + k) % len(r.buf)
		if c := r.buf[i]; c.tag == tag {
			for ; k < r.n-1; k++ { // close the gap
				j := (r.head + k) % len(r.buf)
				r.buf[j] = r.buf[(j+1)%len(r.buf)]
			}
			r.buf[(r.head+r.n-1)%len(r.buf)] = nil
			r.n--
			return c
		}
	}
	return nil
}

// drain appends every element to dst in order, empties the ring, and
// returns dst.
func (r *publisherRing) drain(dst []*Confirmation) []*Confirmation {
	for r.n > 0 {
		dst = append(dst, r.pop())
	}
	r.head = 0
	return dst
}

func (r *publisherRing) grow() {
	buf := make([]*Confirmation, 2*len(r.buf))
	for k := 0; k < r.n; k++ {
		buf[k] = r.buf[(r.head+k)%len(r.buf)]
	}
	r.buf, r.head = buf, 0
}
