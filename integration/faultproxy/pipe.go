package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"time"
)

// MaxHeld is the most bytes a Proxy buffers per direction of each
// connection. When a direction's buffer is full the proxy stops reading from
// its source, so TCP flow control pushes back on the sender exactly as a
// partition would once the kernel buffers fill: bytes are delayed, never
// dropped.
const MaxHeld = 4 << 20

// readChunk bounds a single read, so latency applies per chunk of at most
// this size and the buffer fills in steps smaller than MaxHeld.
const readChunk = 32 << 10

// chunk is one read from the source, stamped with its arrival so latency is
// measured from the moment the proxy received it.
type chunk struct {
	data []byte
	at   time.Time
}

// halfCloser is the destination side of a pipe: *net.TCPConn in production,
// a fake in tests.
type halfCloser interface {
	io.Writer
	CloseWrite() error
}

// pipe moves one direction of a connection: readLoop fills a bounded queue
// from src, writeLoop drains it into dst whenever the gate lets traffic
// through. Splitting the two is what lets a blackhole hold bytes without
// stalling the reader, and lets a close be held behind the bytes before it.
type pipe struct {
	src     io.Reader
	dst     halfCloser
	gate    *gate
	done    <-chan struct{} // closed when the link is torn down
	abort   func()          // tears the whole link down with RST
	maxHeld int

	dataReady  chan struct{} // capacity 1: reader -> writer kick
	spaceFreed chan struct{} // capacity 1: writer -> reader kick

	mu     sync.Mutex
	queue  []chunk
	queued int
	// srcErr is non-nil once src is finished: io.EOF for an orderly close,
	// anything else for a reset.
	srcErr error
}

func newPipe(src io.Reader, dst halfCloser, g *gate, done <-chan struct{}, abort func(), maxHeld int) *pipe {
	return &pipe{
		src:        src,
		dst:        dst,
		gate:       g,
		done:       done,
		abort:      abort,
		maxHeld:    maxHeld,
		dataReady:  make(chan struct{}, 1),
		spaceFreed: make(chan struct{}, 1),
	}
}

// kick wakes the goroutine waiting on ch without ever blocking: one pending
// kick is enough, because the waiter re-reads the shared state when it wakes.
func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// readLoop reads src into the queue until src fails or the link is torn
// down (which closes src and so unblocks Read).
func (p *pipe) readLoop() {
	buf := make([]byte, readChunk)
	for {
		p.mu.Lock()
		space := p.maxHeld - p.queued
		p.mu.Unlock()
		if space <= 0 {
			// Backpressure: leave the bytes in the kernel until the writer
			// frees room.
			select {
			case <-p.spaceFreed:
				continue
			case <-p.done:
				return
			}
		}
		n, err := p.src.Read(buf[:min(space, len(buf))])
		p.mu.Lock()
		if n > 0 {
			// Copy to the exact size so held memory matches the accounting.
			p.queue = append(p.queue, chunk{data: bytes.Clone(buf[:n]), at: time.Now()})
			p.queued += n
		}
		if err != nil {
			p.srcErr = err
		}
		p.mu.Unlock()
		kick(p.dataReady)
		if err != nil {
			return
		}
	}
}

// writeLoop delivers queued chunks in order once the gate allows and each
// chunk's latency has passed, then forwards the source's close. It never
// writes while the gate is blackholed, except a chunk it had already taken
// before Blackhole (a packet already on the wire).
func (p *pipe) writeLoop() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-p.done:
			return
		default:
		}
		var (
			data   []byte
			wait   time.Duration
			finish bool
			srcErr error
		)
		p.mu.Lock()
		// Consulting the gate under p.mu orders it after every enqueue:
		// a byte read after Blackhole returned always sees the hold.
		st := p.gate.snapshot()
		if !st.blackholed {
			switch {
			case len(p.queue) > 0:
				head := p.queue[0]
				wait = time.Until(head.at.Add(st.latency))
				if wait <= 0 {
					data = head.data
					p.queue[0] = chunk{}
					p.queue = p.queue[1:]
					p.queued -= len(data)
				}
			case p.srcErr != nil:
				finish, srcErr = true, p.srcErr
			}
		}
		p.mu.Unlock()

		switch {
		case data != nil:
			kick(p.spaceFreed)
			if _, err := p.dst.Write(data); err != nil {
				// The destination is gone; a real peer would answer the
				// source with RST too.
				p.abort()
				return
			}
			continue
		case finish:
			if errors.Is(srcErr, io.EOF) {
				// Half-close, so the other direction keeps flowing until
				// its own source closes.
				_ = p.dst.CloseWrite()
			} else {
				p.abort()
			}
			return
		}

		var expired <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			expired = timer.C
		}
		select {
		case <-p.dataReady:
		case <-st.changed:
		case <-expired:
		case <-p.done:
			return
		}
		timer.Stop()
	}
}

// held reports the bytes queued but not yet delivered.
func (p *pipe) held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queued
}
