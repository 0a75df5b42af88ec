package conn

// changeSignal wakes the goroutines waiting for the next change of
// something (the state, the blocked flag): the channel that wait returns is
// closed by the next call to changed. The channel is made by the first wait
// after a change, not at every change, so a supervisor nobody waits on holds
// none (issue 18). The owner's lock guards it.
type changeSignal struct {
	ch chan struct{}
}

// wait returns the channel that closes at the next change.
func (c *changeSignal) wait() <-chan struct{} {
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

// changed wakes every waiter.
func (c *changeSignal) changed() {
	if c.ch != nil {
		close(c.ch)
		c.ch = nil
	}
}
