package conn

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/heartbeat"
)

// session is one live connection with the tools that watch it.
type session struct {
	url     int // index into opts.URLs
	conn    *amqp.Connection
	monitor *heartbeat.Monitor
	closed  chan *amqp.Error     // NotifyClose; buffered so amqp091-go never waits on it
	blocked <-chan amqp.Blocking // forwarded by drainBlocked
	drained chan struct{}        // drainBlocked has exited
	ran     map[uint64]bool      // hooks that ran Up on this connection
}

// dial opens one connection to URL i through a heartbeat.Monitor, bounded by
// DialTimeout and by ctx: cancelling ctx closes the raw socket, so a Close
// during a hung handshake returns at once.
func (s *Supervisor) dial(ctx context.Context, i int) (*session, error) {
	s.ctr.dials.Add(1)
	var mon atomic.Pointer[heartbeat.Monitor]
	cfg := amqp.Config{
		Heartbeat:  s.opts.Heartbeat,
		Properties: s.clientProperties(),
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: s.opts.DialTimeout}
			raw, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Bounds TLS and the AMQP handshake; amqp091-go clears it once open.
			if err := raw.SetDeadline(time.Now().Add(s.opts.DialTimeout)); err != nil {
				raw.Close()
				return nil, err
			}
			m, err := heartbeat.NewMonitor(raw, s.opts.DeadPeerLimit)
			if err != nil {
				raw.Close()
				return nil, err
			}
			mon.Store(m)
			if ctx.Err() != nil { // Close raced the dial; AfterFunc may have run already
				m.Close()
			}
			return m, nil
		},
	}
	if s.opts.TLS != nil {
		cfg.TLSClientConfig = s.opts.TLS.Clone()
	}
	stop := context.AfterFunc(ctx, func() {
		if m := mon.Load(); m != nil {
			m.Close()
		}
	})
	c, err := amqp.DialConfig(s.opts.URLs[i], cfg)
	stop()
	if err != nil {
		if m := mon.Load(); m != nil {
			m.Close()
		}
		return nil, fmt.Errorf("warren: dial %s: %w", s.redacted[i], err)
	}
	m := mon.Load()
	m.SetIdleLimit(s.opts.DeadPeerLimit * 3 / 5)
	m.Start()

	ss := &session{
		url:     i,
		conn:    c,
		monitor: m,
		closed:  c.NotifyClose(make(chan *amqp.Error, 1)),
		drained: make(chan struct{}),
	}
	// amqp091-go delivers connection.blocked from its reader goroutine and
	// waits up to 5 s for the listener; drain it on a goroutine of its own so
	// the reader never waits on the supervisor.
	raw := c.NotifyBlocked(make(chan amqp.Blocking, 1))
	fwd := make(chan amqp.Blocking, 1)
	ss.blocked = fwd
	go s.drainBlocked(raw, fwd, ss.drained)
	return ss, nil
}

// drainBlocked updates the Blocked flag as notifications arrive and forwards
// the latest one to the run loop, keeping only the newest if the loop lags.
// It exits when amqp091-go closes raw at connection shutdown.
func (s *Supervisor) drainBlocked(raw <-chan amqp.Blocking, fwd chan amqp.Blocking, done chan struct{}) {
	defer close(done)
	for b := range raw {
		if s.setBlocked(b.Active) {
			if b.Active {
				s.ctr.blocked.Add(1)
				s.log.Warn("warren: broker blocked the connection", "reason", b.Reason)
				s.emit(Event{Kind: EventBlocked, Err: fmt.Errorf("warren: blocked: %s", b.Reason)})
			} else {
				s.log.Info("warren: broker unblocked the connection")
				s.emit(Event{Kind: EventUnblocked})
			}
		}
		select {
		case fwd <- b:
		default:
			select { // replace the stale value with the newest
			case <-fwd:
			default:
			}
			fwd <- b
		}
	}
}

func (s *Supervisor) clientProperties() amqp.Table {
	props := amqp.NewConnectionProperties()
	for k, v := range s.opts.Properties {
		props[k] = v
	}
	if s.opts.ConnectionName != "" {
		props.SetClientConnectionName(s.opts.ConnectionName)
	}
	return props
}

// shutdown ends a session's connection within deadline: the AMQP close
// handshake first, and if that does not finish (a blocked broker does not read
// the close frame; a partitioned socket never answers) closing the raw socket.
// It waits for the blocked-notification drain to exit.
func (ss *session) shutdown(ctx context.Context, deadline time.Time) error {
	done := make(chan error, 1)
	go func() { done <- ss.conn.CloseDeadline(deadline) }()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	var err error
	select {
	case err = <-done:
	case <-timer.C:
		ss.monitor.Close()
		err = <-done
	case <-ctx.Done():
		ss.monitor.Close()
		err = <-done
	}
	ss.monitor.Close()
	<-ss.drained
	if err == amqp.ErrClosed {
		err = nil // already gone: nothing left to close
	}
	return err
}

// abandon tears a lost session down at once; its connection is already dead.
func (ss *session) abandon() {
	ss.monitor.Close()
	_ = ss.conn.CloseDeadline(time.Now())
	<-ss.drained
}
