package heartbeat

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Monitor wraps the net.Conn that amqp091-go dials (via amqp.Config.Dial) and
// closes it when the peer is silent for longer than the limit. Monitor
// implements net.Conn: every method delegates to the wrapped conn, and Read
// and Write record when they last moved bytes.
//
// Closing the raw socket is what makes detection useful: amqp091-go's reader
// fails at once, every blocked call on the connection returns, and the owner
// can reconnect instead of waiting for amqp091-go's own 1.5×heartbeat deadline
// or, with heartbeats disabled, for the kernel's TCP timeout.
type Monitor struct {
	conn  net.Conn
	limit time.Duration
	// base anchors the stamps below. time.Since(base) reads the monotonic
	// clock, so stamps are immune to wall-clock jumps and cost no allocation.
	base time.Time

	// lastRead holds the stamp of the last Read shifted left by one, with the
	// low bit set when that Read returned exactly one AMQP heartbeat frame; one
	// atomic word keeps the pair consistent. lastWrite holds a plain stamp.
	// 0 means "never". They are written on every Read and Write, so they must
	// stay lock-free.
	lastRead  atomic.Int64
	lastWrite atomic.Int64
	// fires counts silence-timer callbacks; tests use it to prove that an idle
	// connection costs about one wakeup per limit, and none while the
	// broker's heartbeat frames keep arriving (see rearm).
	fires atomic.Int64

	// The replies-owed rule (owed.go). owedAt is the stamp of the first Owe
	// since the last read, 0 if none; blocked suspends the rule; writeStart
	// is the stamp of the Write in progress (amqp091-go serialises writes),
	// 0 if none; slowWriteEnd is when the last slow Write ended; maxOwedGap
	// is the longest owed-to-read gap seen, in nanoseconds. dueAt is the
	// stamp the timer is due at, so that Owe can tell whether to bring it
	// forward and check can tell how late it fired.
	owedAt       atomic.Int64
	blocked      atomic.Bool
	writeStart   atomic.Int64
	slowWriteEnd atomic.Int64
	maxOwedGap   atomic.Int64
	dueAt        atomic.Int64
	unblockedAt  atomic.Int64  // stamp of the last unblock, 0 if none
	gapCur       atomic.Int64  // longest reply gap of this window
	gapPrev      atomic.Int64  // longest reply gap of the previous window
	gapWindow    atomic.Int64  // stamp this window began
	lateDefers   atomic.Uint64 // see OwedDeferrals
	unreadDefers atomic.Uint64
	// owedLimit is the owed rule's limit, 0 when off. Set before Start and
	// read without the lock afterwards.
	owedLimit time.Duration
	// probe asks the peer for an answer (SetOwedProbe), nil if none; set
	// before Start. probedAt is the owed stamp the last probe was sent for;
	// probes counts them.
	probe    func()
	probedAt atomic.Int64
	probes   atomic.Uint64
	// probeSent is the stamp the last probe was sent at: the verdict on its
	// wait waits two thirds of the owed limit from there. Guarded by mu.
	probeSent int64
	// lateHeld is the owedAt stamp whose verdict a late timer held once.
	// Guarded by mu.
	lateHeld int64
	// userTimeout is the TCP_USER_TIMEOUT set by SetUserTimeout, 0 if none.
	// Guarded by mu.
	userTimeout time.Duration

	mu sync.Mutex
	// idleLimit, if positive, replaces limit after a Read that returned only a
	// heartbeat frame (see SetIdleLimit). Set before Start; guarded by mu.
	idleLimit time.Duration
	timer     *time.Timer // nil until Start; guarded by mu
	startAt   int64       // stamp of Start; guarded by mu
	// closing is set by Close or by detection; once set the timer is never
	// re-armed. Guarded by mu.
	closing bool
	// detected is set when the timer decided the peer is dead. Guarded by mu.
	detected bool

	err  atomic.Pointer[DeadPeerError]
	dead chan struct{}

	// started is set by Start; from then on read deadlines are the Monitor's
	// (see SetReadDeadline). deadlineMu makes Start's set-and-clear atomic
	// with SetReadDeadline's check-and-set, so a deadline set while Start
	// runs cannot land after its clear and stay for good.
	started    atomic.Bool
	deadlineMu sync.Mutex

	closeOnce     sync.Once
	closeErr      error // written inside closeOnce, read after it
	closeReturned atomic.Bool
	connClosed    atomic.Bool // set once the conn is closed

	// onClose is the SetOnClose function (guarded by mu); closeNotified
	// makes it run once.
	onClose       func()
	closeNotified atomic.Bool
	// beforeRead is the SetBeforeRead function, nil if none.
	beforeRead atomic.Pointer[func()]
	// onReadDeadline is the SetOnReadDeadline function, nil if none.
	onReadDeadline atomic.Pointer[func()]
}

// NewMonitor returns a Monitor around c that will declare the peer dead after
// limit without a successful Read. Detection begins only when Start is called.
// It returns an error wrapping ErrInvalidLimit if limit is not positive, or
// ErrNilConn if c is nil.
func NewMonitor(c net.Conn, limit time.Duration) (*Monitor, error) {
	if c == nil {
		return nil, ErrNilConn
	}
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit %v must be positive", ErrInvalidLimit, limit)
	}
	return &Monitor{
		conn:  c,
		limit: limit,
		base:  time.Now(),
		dead:  make(chan struct{}),
	}, nil
}

// Start arms the silence timer. Silence is measured from the last Read that
// returned data, or from Start if nothing has been read yet. Before Start there
// is no detection: the dial deadline bounds the AMQP handshake, during which
// heartbeats are not yet negotiated. Start is idempotent, and does nothing
// after Close or detection.
func (m *Monitor) Start() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.timer != nil || m.closing {
		return
	}
	m.startAt = m.stamp()
	// A read deadline set before Start (amqp091-go's heartbeater runs as soon
	// as the connection opens) is dropped: from here the timer decides.
	m.deadlineMu.Lock()
	m.started.Store(true)
	_ = m.conn.SetReadDeadline(time.Time{})
	m.deadlineMu.Unlock()
	// A negative delay (the last read is already older than the limit) fires
	// at once. The callback takes m.mu before touching m.timer, so it cannot
	// observe the field before this assignment completes.
	d := m.nextCheckLocked(m.startAt)
	m.dueAt.Store(m.startAt + int64(d))
	m.timer = time.AfterFunc(d, m.check)
}

// SetIdleLimit makes the Monitor use d instead of its limit after a Read that
// returned exactly one AMQP heartbeat frame and nothing else. It must be
// called before Start; d <= 0 turns it off.
//
// Why two limits: RabbitMQ's heartbeat sender wakes every heartbeat/2 and
// sends a frame only if it sent nothing since its previous wakeup. Right after
// a heartbeat frame the broker is in that idle cadence, so the next frame is
// due within heartbeat/2; after a data frame it may stay silent for up to a
// whole heartbeat (see CheckLimit). An idle limit of 3/4 of the heartbeat thus
// detects a partition of an idle connection well before the general limit,
// without ever misjudging the longer gap after traffic. Over TLS the Monitor
// sees only ciphertext, recognises no heartbeat, and always uses the limit.
func (m *Monitor) SetIdleLimit(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.idleLimit = d
}

// Dead returns a channel that is closed once the peer was declared dead,
// after the raw socket was closed. It is never closed by Close alone.
func (m *Monitor) Dead() <-chan struct{} { return m.dead }

// Err returns nil, or the *DeadPeerError recorded when the peer was declared
// dead.
func (m *Monitor) Err() error {
	if e := m.err.Load(); e != nil {
		return e
	}
	return nil
}

// LastRead returns when a Read last returned data, or the zero Time if none
// has.
func (m *Monitor) LastRead() time.Time { return m.fromStamp(m.lastRead.Load() >> 1) }

// LastWrite returns when a Write last sent data, or the zero Time if none has.
func (m *Monitor) LastWrite() time.Time { return m.fromStamp(m.lastWrite.Load()) }

// Close stops the silence timer and closes the wrapped conn. It is safe to call
// many times and concurrently with detection. The first call returns the error
// from closing the conn (whichever of Close and detection closed it); later
// calls return nil.
func (m *Monitor) Close() error {
	m.mu.Lock()
	m.closing = true
	if m.timer != nil {
		m.timer.Stop()
	}
	detected := m.detected
	m.mu.Unlock()

	m.closeConn()
	if detected {
		// Detection closes the conn and then Dead(); waiting here means the
		// timer goroutine has finished its work when Close returns.
		<-m.dead
	}
	m.notifyClosed()
	if m.closeReturned.Swap(true) {
		return nil
	}
	return m.closeErr
}

// Read reads from the wrapped conn and records the time if it returned data.
// Once the peer was declared dead, a failing Read returns the *DeadPeerError
// rather than the "use of closed network connection" that the Monitor itself
// caused, so that amqp091-go's connection error names the real cause.
func (m *Monitor) Read(p []byte) (int, error) {
	callHook(&m.beforeRead)
	n, err := m.conn.Read(p)
	if n > 0 {
		now := m.stamp()
		hb := heartbeatBit(p[:n])
		m.lastRead.Store(now<<1 | hb)
		m.noteRead(now)
		if hb == 1 {
			m.rearm(now)
		}
	}
	if err != nil {
		err = m.cause(err)
	}
	return n, err
}

// Write writes to the wrapped conn and records the time if it sent data. Its
// errors are rewritten after detection like those of Read.
func (m *Monitor) Write(p []byte) (int, error) {
	start := m.stamp()
	m.writeStart.Store(start)
	n, err := m.conn.Write(p)
	end := m.stamp()
	m.writeStart.Store(0)
	if time.Duration(end-start) > slowWrite {
		m.slowWriteEnd.Store(end)
	}
	if n > 0 {
		m.lastWrite.Store(end)
	}
	if err != nil {
		err = m.cause(err)
	}
	return n, err
}

// LocalAddr returns the wrapped conn's local address.
func (m *Monitor) LocalAddr() net.Addr { return m.conn.LocalAddr() }

// RemoteAddr returns the wrapped conn's remote address.
func (m *Monitor) RemoteAddr() net.Addr { return m.conn.RemoteAddr() }

// SetDeadline sets the wrapped conn's read and write deadlines.
func (m *Monitor) SetDeadline(t time.Time) error { return m.conn.SetDeadline(t) }

// SetReadDeadline sets the wrapped conn's read deadline until Start. From
// Start on, the Monitor alone judges read-side silence and a read deadline
// other than the zero Time is ignored: amqp091-go's heartbeater sets one to
// 1.5x the negotiated heartbeat after every frame, which would otherwise race
// the Monitor's limit (and win when the limit is 1.5x the heartbeat or more),
// end the connection with a bare "i/o timeout" instead of a *DeadPeerError,
// and override a DeadPeerLimit the user chose longer. SetDeadline, which
// bounds the handshake and amqp091-go's close handshake, still applies.
func (m *Monitor) SetReadDeadline(t time.Time) error {
	callHook(&m.onReadDeadline)
	if !t.IsZero() && m.started.Load() {
		return nil // the hot path, once per frame read: no lock
	}
	m.deadlineMu.Lock()
	defer m.deadlineMu.Unlock()
	if !t.IsZero() && m.started.Load() {
		return nil
	}
	return m.conn.SetReadDeadline(t)
}

// SetWriteDeadline sets the wrapped conn's write deadline.
func (m *Monitor) SetWriteDeadline(t time.Time) error { return m.conn.SetWriteDeadline(t) }

// check runs on the timer goroutine. It either re-arms the timer for the
// remaining allowance or declares the peer dead; it never polls.
func (m *Monitor) check() {
	m.fires.Add(1)
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		return
	}
	now := m.stamp()
	late := time.Duration(now - m.dueAt.Load())
	ref, limit := m.allowanceLocked()
	silence := time.Duration(now - ref)
	var dpe *DeadPeerError
	var probe func()
	if silence >= limit {
		// The silence rule takes no kernel-receipt deferral: it is the
		// backstop, and a deferral that keeps renewing (seen once in CI over
		// TLS under load: no verdict 8 s into a 3 s limit) must not hide a
		// dead peer. The owed rule, which is much shorter, keeps its guard.
		dpe = &DeadPeerError{Silence: silence, Limit: limit}
	} else if dead, owed, olimit, _, probeFor := m.owedCheckLocked(now, late); dead {
		dpe = &DeadPeerError{Silence: silence, Limit: olimit, Owed: owed}
	} else if probeFor != 0 {
		m.probedAt.Store(probeFor)
		m.probeSent = now
		m.probes.Add(1)
		probe = m.probe
	}
	if dpe == nil {
		// Sleep exactly until a limit would be reached if nothing else
		// arrives. This is one wakeup per limit on a busy connection, and
		// about one per owed limit while replies are owed; never a poll.
		// On an idle one heartbeat frames push the timer on (rearm) before
		// it is due, so it does not run.
		m.armLocked(now)
		m.mu.Unlock()
		if probe != nil {
			probe()
		}
		return
	}
	m.closing = true
	m.detected = true
	m.mu.Unlock()
	dpe.At = time.Now()

	// Record the error before closing the socket so that a Read failing
	// because of that close already reports the cause.
	m.err.Store(dpe)
	m.closeConn()
	close(m.dead)
	m.notifyClosed()
}

// rearm moves the silence timer to the deadline set by a heartbeat frame read
// at stamp now.
//
// Why from Read, and only for heartbeat frames: on an idle connection the
// broker's frames arrive every heartbeat/2, inside the idle limit, so a timer
// that only re-arms itself fires once per frame (250 ms after each at a 1 s
// heartbeat) to find the peer alive, and each run of an AfterFunc starts a
// goroutine and wakes a second thread to run it. Pushed from here the timer
// never runs while heartbeats flow; the runtime still wakes once at the
// stale deadline to re-sort its timer heap (Go moves a timer lazily), but
// starts no goroutine. The idle fleet's voluntary context switches and CPU
// time are what this saves (BENCHMARKS.md, issue 18). Heartbeat frames come
// only from an idle broker, so a busy connection never takes m.mu on its
// read path; its timer still fires about once per limit.
func (m *Monitor) rearm(now int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.timer == nil || m.closing {
		return
	}
	m.armLocked(now)
}

// armLocked sets the timer to the next check due from stamp now. Caller must
// hold m.mu, with the timer started and not closing.
func (m *Monitor) armLocked(now int64) {
	d := m.nextCheckLocked(now)
	m.dueAt.Store(now + int64(d))
	m.timer.Reset(d)
}

// allowanceLocked returns the stamp silence is measured from (the last read,
// or Start if nothing has been read) and the silence allowed after it. Caller
// must hold m.mu.
func (m *Monitor) allowanceLocked() (ref int64, limit time.Duration) {
	r := m.lastRead.Load()
	switch {
	case r == 0:
		return m.startAt, m.limit
	case r&1 == 1 && m.idleLimit > 0 && !m.blocked.Load():
		// A blocked broker is under memory or disk pressure, and its
		// heartbeats run late: measured 756ms after a heartbeat frame at a
		// 1s heartbeat during a memory alarm under load. It gets the full
		// limit.
		return r >> 1, m.idleLimit
	}
	return r >> 1, m.limit
}

// nextCheckLocked returns how long the timer may sleep from stamp now: until
// the current allowance runs out, but never longer than the idle limit,
// because a heartbeat read arriving right now would make detection due that
// soon, nor past the owed rule's next decision. Owe brings the timer forward
// when a reply becomes owed later. Caller must hold m.mu.
func (m *Monitor) nextCheckLocked(now int64) time.Duration {
	ref, limit := m.allowanceLocked()
	d := limit - time.Duration(now-ref)
	if m.idleLimit > 0 && d > m.idleLimit {
		d = m.idleLimit
	}
	dead, _, olimit, next, _ := m.owedCheckLocked(now, 0)
	if dead {
		// Only after check deferred a verdict because it fired late.
		next = olimit / 2
	}
	if next > 0 && next < d {
		d = next
	}
	return d
}

// heartbeatFrame is an AMQP 0-9-1 heartbeat: type 8, channel 0, size 0, frame end.
var heartbeatFrame = [8]byte{8, 0, 0, 0, 0, 0, 0, 0xCE}

// heartbeatBit returns 1 if b is exactly one heartbeat frame, else 0.
func heartbeatBit(b []byte) int64 {
	if len(b) == len(heartbeatFrame) && [8]byte(b) == heartbeatFrame {
		return 1
	}
	return 0
}

// closeConn closes the wrapped conn exactly once, whoever asks first.
func (m *Monitor) closeConn() {
	m.closeOnce.Do(func() {
		m.closeErr = m.conn.Close()
		m.connClosed.Store(true)
	})
}

// cause returns the *DeadPeerError once detection has happened, else err.
func (m *Monitor) cause(err error) error {
	if e := m.err.Load(); e != nil {
		return e
	}
	return err
}

// stamp returns the monotonic time since base, plus one so that 0 can mean
// "never" even on a clock too coarse to have advanced since base.
func (m *Monitor) stamp() int64 { return int64(time.Since(m.base)) + 1 }

// fromStamp converts a stamp back to a time.Time, keeping its monotonic
// reading.
func (m *Monitor) fromStamp(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return m.base.Add(time.Duration(s - 1))
}
