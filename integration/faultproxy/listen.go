package faultproxy

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// maxAcceptBackoff caps the wait after a transient Accept error (such as
// EMFILE), as net/http does.
const maxAcceptBackoff = time.Second

// acceptLoop accepts on ln until ln is closed by Refuse or Close. Each
// listener gets its own loop, so re-listening never races an old loop.
func (p *Proxy) acceptLoop(ln *net.TCPListener) {
	defer p.wg.Done()
	var backoff time.Duration
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), maxAcceptBackoff)
			timer := time.NewTimer(backoff)
			select {
			case <-timer.C:
			case <-p.closing:
				timer.Stop()
				return
			}
			continue
		}
		backoff = 0
		p.startLink(c)
	}
}

// listenLocked binds the proxy's address (the first time any free port) and
// starts accepting. Go sets SO_REUSEADDR on listeners, so the port can be
// bound again even while connections accepted on it are open or in
// TIME_WAIT. Caller must hold p.mu.
func (p *Proxy) listenLocked(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	p.ln = ln.(*net.TCPListener)
	p.wg.Add(1)
	go p.acceptLoop(p.ln)
	return nil
}

// refuseLocked closes or re-opens the listener. Refusing closes the
// listening socket, so a dial gets ECONNREFUSED from the kernel, just as
// from a host with nothing listening; accepting and resetting instead would
// let the dial succeed, which is a different fault. Caller must hold p.mu.
func (p *Proxy) refuseLocked(on bool) {
	if p.closed {
		return
	}
	switch {
	case on && p.ln != nil:
		// Closing the listener makes acceptLoop return; connections
		// already accepted are separate sockets and are unaffected.
		_ = p.ln.Close()
		p.ln = nil
		p.listenErr = nil
	case !on && p.ln == nil:
		if err := p.listenLocked(p.addr); err != nil {
			p.listenErr = fmt.Errorf("%w %s: %w", ErrRelisten, p.addr, err)
			return
		}
		p.listenErr = nil
	}
}
