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

// dial opens one connection to URL i through a heartbeat.Monitor, bounded by
// DialTimeout and by ctx: cancelling ctx closes the raw socket, so a Close
// during a hung handshake returns at once.
func (s *Supervisor) dial(ctx context.Context, i int) (*session, error) {
	s.ctr.dials.Add(1)
	// One deadline for TCP connect, TLS and the AMQP handshake together, so
	// that a dial never takes longer than DialTimeout.
	deadline := time.Now().Add(s.opts.DialTimeout)
	var mon atomic.Pointer[heartbeat.Monitor]
	cfg := amqp.Config{
		Heartbeat:  s.opts.Heartbeat,
		Properties: s.clientProperties(),
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Deadline: deadline}
			raw, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Bounds TLS and the AMQP handshake; amqp091-go clears it once open.
			if err := raw.SetDeadline(deadline); err != nil {
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
	if s.opts.OwedReplyLimit > 0 {
		m.SetOwedLimit(s.owed.limit(s.opts.OwedReplyLimit, s.opts.DeadPeerLimit))
		m.SetOwedProbe((&owedProber{conn: c, work: s.work}).probe)
		s.owed.track(m)
	}
	if s.opts.TCPUserTimeout > 0 {
		// Set once the handshake is over: a slow handshake is DialTimeout's.
		m.SetUserTimeout(s.opts.TCPUserTimeout)
	}
	ss := &session{
		url:     i,
		conn:    c,
		monitor: m,
		closed:  c.NotifyClose(make(chan *amqp.Error, 1)),
		// amqp091-go's reader sends connection.blocked here and takes it
		// back before its next read (takeBlocked): no goroutine of ours
		// waits on it.
		blocks: c.NotifyBlocked(make(chan amqp.Blocking, blockedBuffer)),
		has:    make(map[*hook]bool),
	}
	s.watchSession(ss, m)
	m.Start()
	return ss, nil
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
