package conn

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// AMQP 0-9-1 wire constants the fake broker needs.
const (
	pubFakeFrameMethod    = 1
	pubFakeFrameHeader    = 2
	pubFakeFrameBody      = 3
	pubFakeFrameHeartbeat = 8
	pubFakeFrameEnd       = 0xCE
)

// pubFakeAction is what the fake broker does with a publish.
type pubFakeAction int

const (
	pubFakeAck          pubFakeAction = iota // basic.ack at once
	pubFakeNack                              // basic.nack at once
	pubFakeReturn                            // basic.return, then basic.ack
	pubFakeHold                              // nothing until release
	pubFakeCloseChannel                      // channel.close 404 naming the exchange
	pubFakeReject                            // channel.close 406, as for a forged user_id
)

// pubFakeMsg is one publish as the fake broker received it.
type pubFakeMsg struct {
	Conn       int // index of the connection, from 0
	Channel    uint16
	Tag        uint64 // delivery tag, 0 if the channel was not in confirm mode
	Exchange   string
	Key        string
	Mandatory  bool
	Confirming bool
	Open       int // which channel.open of the broker's its channel was, from 1
	MessageID  string
	Body       string
	props      []byte
}

// pubFakeBroker speaks just enough AMQP 0-9-1 for a Publisher: connection
// handshake, channel open and close, confirm.select, basic.publish, and on
// demand basic.ack, basic.nack, basic.return, channel.close,
// connection.blocked and dropped sockets. Tests script it with decide.
type pubFakeBroker struct {
	t  testing.TB
	ln net.Listener

	mu          sync.Mutex
	decide      func(pubFakeMsg) pubFakeAction
	conns       []*pubFakeConn
	msgs        []pubFakeMsg
	acked       map[string]int // acks sent, by body
	refuseOpens int            // channel.opens still to refuse
	dropLogins  int            // logins still to answer by dropping the socket after start-ok
	answerQos   bool           // answer basic.qos
	consumeOKs  int            // basic.consumes still to serve; the rest hold their channel for good
	consumeOn   []uint16       // the channel of every basic.consume, in order
	opens       int            // channel.opens answered
	// hold, if not nil, makes every connection wait until it is closed
	// before the handshake: a test registers hooks before the first
	// connection can become Ready.
	hold chan struct{}
	wake chan struct{}
	wg   sync.WaitGroup
}

func startPubFakeBroker(t testing.TB) *pubFakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &pubFakeBroker{t: t, ln: ln, wake: make(chan struct{}, 1), acked: map[string]int{}}
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(b.stop)
	return b
}

// holdHandshakes makes every connection wait before its handshake until
// the returned channel is closed.
func (b *pubFakeBroker) holdHandshakes() chan struct{} {
	hold := make(chan struct{})
	b.mu.Lock()
	b.hold = hold
	b.mu.Unlock()
	return hold
}

// consumes returns how many basic.consume the broker got.
func (b *pubFakeBroker) consumes() int { return len(b.consumeChannels()) }

// consumeChannels returns the channel of every basic.consume, in order.
func (b *pubFakeBroker) consumeChannels() []uint16 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]uint16(nil), b.consumeOn...)
}

func (b *pubFakeBroker) url() string { return "amqp://guest:guest@" + b.ln.Addr().String() + "/" }

// stop closes the listener and every connection and waits for their goroutines.
func (b *pubFakeBroker) stop() {
	b.ln.Close()
	b.mu.Lock()
	for _, fc := range b.conns {
		fc.c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// refuse closes the listener: dials fail until the test ends.
func (b *pubFakeBroker) refuse() { b.ln.Close() }

func (b *pubFakeBroker) setDecide(f func(pubFakeMsg) pubFakeAction) {
	b.mu.Lock()
	b.decide = f
	b.mu.Unlock()
}

// refuseChannels makes the broker refuse the next n channel.opens with
// 403, as a broker at its channel limit does.
func (b *pubFakeBroker) refuseChannels(n int) {
	b.mu.Lock()
	b.refuseOpens = n
	b.mu.Unlock()
}

// ackedCount returns how many times the broker acked the message with body.
func (b *pubFakeBroker) ackedCount(body string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.acked[body]
}

// live returns the newest connection, or nil.
func (b *pubFakeBroker) live() *pubFakeConn {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.conns) == 0 {
		return nil
	}
	return b.conns[len(b.conns)-1]
}

func (b *pubFakeBroker) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		fc := &pubFakeConn{b: b, id: len(b.conns), c: c, r: bufio.NewReader(c), chans: map[uint16]*pubFakeChan{}}
		b.conns = append(b.conns, fc)
		b.wg.Add(1)
		b.mu.Unlock()
		go fc.serve()
	}
}

// conn returns connection i once it exists, or fails the test.
func (b *pubFakeBroker) conn(i int) *pubFakeConn {
	b.t.Helper()
	deadline := time.Now().Add(defaultTestTimeout)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		if i < len(b.conns) {
			fc := b.conns[i]
			b.mu.Unlock()
			return fc
		}
		b.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	b.t.Fatalf("fake broker: connection %d never came", i)
	return nil
}

func (b *pubFakeBroker) messages() []pubFakeMsg {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]pubFakeMsg(nil), b.msgs...)
}

// waitMessages waits until the broker has received n publishes.
func (b *pubFakeBroker) waitMessages(n int) []pubFakeMsg {
	b.t.Helper()
	timer := time.NewTimer(defaultTestTimeout)
	defer timer.Stop()
	for {
		if msgs := b.messages(); len(msgs) >= n {
			return msgs
		}
		select {
		case <-b.wake:
		case <-timer.C:
			b.t.Fatalf("fake broker: got %d publishes, want %d", len(b.messages()), n)
		}
	}
}

type pubFakeChan struct {
	confirming bool
	closing    bool // the broker sent channel.close; publishes are discarded
	tag        uint64
	open       int  // which channel.open of the broker it was
	stuck      bool // a basic.consume that never ends holds it
}

// pubFakeHeld is a publish whose ack the broker holds back.
type pubFakeHeld struct {
	m  pubFakeMsg
	ch *pubFakeChan
}

type pubFakeConn struct {
	b  *pubFakeBroker
	id int
	c  net.Conn
	r  *bufio.Reader

	wmu     sync.Mutex // serializes writes
	mu      sync.Mutex
	chans   map[uint16]*pubFakeChan
	held    []pubFakeHeld
	stalled sync.Mutex // held by stall: the broker stops reading the socket
	// midBody, when set, makes serve stall after the next body frame it
	// reads and close the channel (see stallMidBody). Guarded by mu.
	midBody chan struct{}
}

func (fc *pubFakeConn) serve() {
	defer fc.b.wg.Done()
	defer fc.c.Close()
	fc.b.mu.Lock()
	hold := fc.b.hold
	fc.b.mu.Unlock()
	if hold != nil {
		<-hold
	}
	if err := fc.handshake(); err != nil {
		return
	}
	var cur *pubFakeMsg // a publish waiting for its content
	var size uint64
	var body []byte // cur's body so far (a string += per frame is quadratic)
	for {
		fc.waitUnstalled()
		typ, ch, payload, err := fc.readFrame()
		if err != nil {
			return
		}
		switch typ {
		case pubFakeFrameHeartbeat:
			_ = fc.write(pubFakeFrameHeartbeat, 0, nil)
		case pubFakeFrameHeader:
			if cur == nil {
				continue
			}
			size = binary.BigEndian.Uint64(payload[4:12])
			cur.props = append([]byte(nil), payload[12:]...)
			cur.MessageID = pubFakeMessageID(cur.props)
			if size == 0 {
				fc.published(*cur)
				cur = nil
			}
		case pubFakeFrameBody:
			if cur == nil {
				continue
			}
			body = append(body, payload...)
			if uint64(len(body)) >= size {
				cur.Body = string(body)
				fc.published(*cur)
				cur, body = nil, nil
			}
			fc.mu.Lock()
			mid := fc.midBody
			fc.midBody = nil
			fc.mu.Unlock()
			if mid != nil {
				fc.stall()
				close(mid)
			}
		case pubFakeFrameMethod:
			class, method := binary.BigEndian.Uint16(payload), binary.BigEndian.Uint16(payload[2:])
			args := payload[4:]
			switch {
			case class == 10 && method == 50: // connection.close
				_ = fc.method(0, 10, 51, nil)
				return
			case class == 10 && method == 51: // connection.close-ok
				return
			case class == 20 && method == 10: // channel.open
				fc.b.mu.Lock()
				refuse := fc.b.refuseOpens > 0
				if refuse {
					fc.b.refuseOpens--
				}
				fc.b.mu.Unlock()
				if refuse {
					_ = fc.method(ch, 20, 40, pubFakeCloseArgs(403, "ACCESS_REFUSED - no more channels", 20, 10))
					continue
				}
				fc.b.mu.Lock()
				fc.b.opens++
				open := fc.b.opens
				fc.b.mu.Unlock()
				fc.mu.Lock()
				fc.chans[ch] = &pubFakeChan{open: open}
				fc.mu.Unlock()
				_ = fc.method(ch, 20, 11, []byte{0, 0, 0, 0})
			case class == 20 && method == 40: // channel.close
				fc.mu.Lock()
				delete(fc.chans, ch)
				fc.mu.Unlock()
				_ = fc.method(ch, 20, 41, nil)
			case class == 20 && method == 41: // channel.close-ok
				fc.mu.Lock()
				delete(fc.chans, ch)
				fc.mu.Unlock()
			case class == 85 && method == 10: // confirm.select
				fc.mu.Lock()
				if c := fc.chans[ch]; c != nil {
					c.confirming = true
				}
				fc.mu.Unlock()
				if args[0]&1 == 0 {
					_ = fc.method(ch, 85, 11, nil)
				}
			case class == 60 && method == 10: // basic.qos
				fc.b.mu.Lock()
				answer := fc.b.answerQos
				fc.b.mu.Unlock()
				fc.mu.Lock()
				if c := fc.chans[ch]; c != nil && c.stuck {
					answer = false // the channel is busy with a consume
				}
				fc.mu.Unlock()
				if answer {
					_ = fc.method(ch, 60, 11, nil)
				}
			case class == 60 && method == 20: // basic.consume: recorded, answered while consumeOKs lasts
				fc.b.mu.Lock()
				fc.b.consumeOn = append(fc.b.consumeOn, ch)
				answer := fc.b.consumeOKs > 0
				if answer {
					fc.b.consumeOKs--
				}
				fc.b.mu.Unlock()
				_, rest := pubFakeShortString(args[2:]) // the queue
				tag, rest := pubFakeShortString(rest)
				noWait := rest[0]&8 != 0
				switch {
				case !answer:
					// Stuck, as a channel whose consume waits for a
					// quorum queue's leader: nothing after it is answered.
					fc.mu.Lock()
					if c := fc.chans[ch]; c != nil {
						c.stuck = true
					}
					fc.mu.Unlock()
				case !noWait:
					_ = fc.method(ch, 60, 21, pubFakeAppendShortString(nil, tag))
				}
			case class == 60 && method == 40: // basic.publish
				m := pubFakeMsg{Conn: fc.id, Channel: ch}
				rest := args[2:]
				m.Exchange, rest = pubFakeShortString(rest)
				m.Key, rest = pubFakeShortString(rest)
				m.Mandatory = rest[0]&1 != 0
				cur, size, body = &m, 0, nil
			}
		}
	}
}

// published records a complete publish and acts on it.
func (fc *pubFakeConn) published(m pubFakeMsg) {
	fc.mu.Lock()
	c := fc.chans[m.Channel]
	if c == nil || c.closing {
		fc.mu.Unlock()
		return // discarded, as RabbitMQ does after channel.close
	}
	if c.confirming {
		c.tag++
		m.Tag = c.tag
		m.Confirming = true
	}
	m.Open = c.open
	fc.mu.Unlock()

	b := fc.b
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	decide := b.decide
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	action := pubFakeAck
	if decide != nil {
		action = decide(m)
	}
	closes := action == pubFakeCloseChannel || action == pubFakeReject
	if !m.Confirming && !closes {
		return
	}
	// Under fc.mu, so that no ack of a channel's goes out after its close.
	fc.mu.Lock()
	defer fc.mu.Unlock()
	switch action {
	case pubFakeAck:
		_ = fc.ackLocked(m, true)
	case pubFakeNack:
		_ = fc.ackLocked(m, false)
	case pubFakeReturn:
		_ = fc.returnMsg(m)
		_ = fc.ackLocked(m, true)
	case pubFakeHold:
		fc.held = append(fc.held, pubFakeHeld{m: m, ch: c})
	case pubFakeCloseChannel:
		c.closing = true
		_ = fc.method(m.Channel, 20, 40, pubFakeCloseArgs(404,
			fmt.Sprintf("NOT_FOUND - no exchange '%s' in vhost '/'", m.Exchange), 60, 40))
	case pubFakeReject:
		c.closing = true
		_ = fc.method(m.Channel, 20, 40, pubFakeCloseArgs(406,
			"PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user was 'guest'", 60, 40))
	}
}

func pubFakeCloseArgs(code uint16, text string, class, method uint16) []byte {
	args := binary.BigEndian.AppendUint16(nil, code)
	args = pubFakeAppendShortString(args, text)
	args = binary.BigEndian.AppendUint16(args, class)
	return binary.BigEndian.AppendUint16(args, method)
}

// release acks every held publish whose channel is still open; the others
// died with their channel, as on RabbitMQ.
func (fc *pubFakeConn) release() {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	for _, h := range fc.held {
		if fc.chans[h.m.Channel] == h.ch && !h.ch.closing {
			_ = fc.ackLocked(h.m, true)
		}
	}
	fc.held = nil
}

// stall makes the broker stop reading the socket, as a broker under a
// resource alarm does, until resume.
func (fc *pubFakeConn) stall()  { fc.stalled.Lock() }
func (fc *pubFakeConn) resume() { fc.stalled.Unlock() }

// stallMidBody makes the broker stall (as stall does) right after it reads
// the next body frame, so that a client writing a message larger than the
// socket buffers is known to be stuck inside that write. The returned
// channel is closed once the broker has stalled; resume ends the stall.
func (fc *pubFakeConn) stallMidBody() <-chan struct{} {
	mid := make(chan struct{})
	fc.mu.Lock()
	fc.midBody = mid
	fc.mu.Unlock()
	return mid
}

// cancelStallMidBody withdraws a stallMidBody that has not stalled yet, or
// ends its stall if it has.
func (fc *pubFakeConn) cancelStallMidBody(mid <-chan struct{}) {
	fc.mu.Lock()
	taken := fc.midBody == nil
	fc.midBody = nil
	fc.mu.Unlock()
	if taken { // serve took it: it stalls and closes mid at once
		<-mid
		fc.resume()
	}
}

// kill drops the socket without a close handshake.
func (fc *pubFakeConn) kill() { fc.c.Close() }

// blocked sends connection.blocked (on) or connection.unblocked.
func (fc *pubFakeConn) blocked(on bool) error {
	return fc.write(pubFakeFrameMethod, 0, pubFakeBlockedPayload(on))
}

// pubFakeBlockedPayload is the method payload of connection.blocked (on)
// or connection.unblocked.
func pubFakeBlockedPayload(on bool) []byte {
	if on {
		return pubFakeMethodPayload(10, 60, pubFakeAppendShortString(nil, "low on memory"))
	}
	return pubFakeMethodPayload(10, 61, nil)
}

// ackLocked acks (or nacks) m and counts it. Caller must hold fc.mu.
func (fc *pubFakeConn) ackLocked(m pubFakeMsg, ack bool) error {
	args := binary.BigEndian.AppendUint64(nil, m.Tag)
	args = append(args, 0) // multiple, requeue: false
	if !ack {
		return fc.method(m.Channel, 60, 120, args)
	}
	fc.b.mu.Lock()
	fc.b.acked[m.Body]++
	fc.b.mu.Unlock()
	return fc.method(m.Channel, 60, 80, args)
}

func (fc *pubFakeConn) returnMsg(m pubFakeMsg) error {
	var args []byte
	args = binary.BigEndian.AppendUint16(args, 312)
	args = pubFakeAppendShortString(args, "NO_ROUTE")
	args = pubFakeAppendShortString(args, m.Exchange)
	args = pubFakeAppendShortString(args, m.Key)
	header := binary.BigEndian.AppendUint16(nil, 60)
	header = binary.BigEndian.AppendUint16(header, 0)
	header = binary.BigEndian.AppendUint64(header, uint64(len(m.Body)))
	header = append(header, m.props...)
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	if err := fc.writeLocked(pubFakeFrameMethod, m.Channel, pubFakeMethodPayload(60, 50, args)); err != nil {
		return err
	}
	if err := fc.writeLocked(pubFakeFrameHeader, m.Channel, header); err != nil {
		return err
	}
	if len(m.Body) == 0 {
		return nil
	}
	return fc.writeLocked(pubFakeFrameBody, m.Channel, []byte(m.Body))
}

func (fc *pubFakeConn) handshake() error {
	header := make([]byte, 8)
	if _, err := io.ReadFull(fc.r, header); err != nil {
		return err
	}
	var start []byte
	start = append(start, 0, 9)
	start = binary.BigEndian.AppendUint32(start, 0) // no server properties
	start = pubFakeAppendLongString(start, "PLAIN")
	start = pubFakeAppendLongString(start, "en_US")
	if err := fc.method(0, 10, 10, start); err != nil {
		return err
	}
	if err := fc.expect(10, 11); err != nil { // start-ok
		return err
	}
	fc.b.mu.Lock()
	drop := fc.b.dropLogins > 0
	if drop {
		fc.b.dropLogins--
	}
	fc.b.mu.Unlock()
	if drop { // what RabbitMQ does with bad credentials, and a reset looks like
		return errors.New("login dropped")
	}
	var tune []byte
	tune = binary.BigEndian.AppendUint16(tune, 0)
	tune = binary.BigEndian.AppendUint32(tune, 131072)
	tune = binary.BigEndian.AppendUint16(tune, 0)
	if err := fc.method(0, 10, 30, tune); err != nil {
		return err
	}
	if err := fc.expect(10, 31); err != nil { // tune-ok
		return err
	}
	if err := fc.expect(10, 40); err != nil { // open
		return err
	}
	return fc.method(0, 10, 41, []byte{0})
}

func (fc *pubFakeConn) expect(class, method uint16) error {
	for {
		typ, _, payload, err := fc.readFrame()
		if err != nil {
			return err
		}
		if typ == pubFakeFrameHeartbeat {
			continue
		}
		if typ != pubFakeFrameMethod || binary.BigEndian.Uint16(payload) != class || binary.BigEndian.Uint16(payload[2:]) != method {
			return fmt.Errorf("fake broker: want %d.%d", class, method)
		}
		return nil
	}
}

func (fc *pubFakeConn) readFrame() (typ byte, ch uint16, payload []byte, err error) {
	var h [7]byte
	if _, err := io.ReadFull(fc.r, h[:]); err != nil {
		return 0, 0, nil, err
	}
	frame := make([]byte, binary.BigEndian.Uint32(h[3:])+1)
	if _, err := io.ReadFull(fc.r, frame); err != nil {
		return 0, 0, nil, err
	}
	if frame[len(frame)-1] != pubFakeFrameEnd {
		return 0, 0, nil, errors.New("fake broker: bad frame end")
	}
	return h[0], binary.BigEndian.Uint16(h[1:]), frame[:len(frame)-1], nil
}

func (fc *pubFakeConn) method(ch, class, method uint16, args []byte) error {
	return fc.write(pubFakeFrameMethod, ch, pubFakeMethodPayload(class, method, args))
}

func (fc *pubFakeConn) write(typ byte, ch uint16, payload []byte) error {
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	return fc.writeLocked(typ, ch, payload)
}

func (fc *pubFakeConn) writeLocked(typ byte, ch uint16, payload []byte) error {
	_, err := fc.c.Write(pubFakeAppendFrame(nil, typ, ch, payload))
	return err
}

// pubFakeAppendFrame appends one AMQP frame to b.
func pubFakeAppendFrame(b []byte, typ byte, ch uint16, payload []byte) []byte {
	b = append(b, typ)
	b = binary.BigEndian.AppendUint16(b, ch)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	return append(b, pubFakeFrameEnd)
}

func pubFakeMethodPayload(class, method uint16, args []byte) []byte {
	p := binary.BigEndian.AppendUint16(nil, class)
	p = binary.BigEndian.AppendUint16(p, method)
	return append(p, args...)
}

func pubFakeAppendShortString(b []byte, s string) []byte {
	return append(append(b, byte(len(s))), s...)
}

func pubFakeAppendLongString(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint32(b, uint32(len(s))), s...)
}

func pubFakeShortString(b []byte) (string, []byte) {
	n := int(b[0])
	return string(b[1 : 1+n]), b[1+n:]
}

// pubFakeMessageID extracts message-id from basic properties, or "" if a
// property before it is one the fake does not parse (headers).
func pubFakeMessageID(props []byte) string {
	flags := binary.BigEndian.Uint16(props)
	rest := props[2:]
	for bit := 15; bit >= 7; bit-- {
		if flags&(1<<bit) == 0 {
			continue
		}
		switch bit {
		case 13: // headers: a table, after its length
			rest = rest[4+binary.BigEndian.Uint32(rest):]
		case 12, 11: // delivery-mode, priority: octets
			rest = rest[1:]
		case 7:
			id, _ := pubFakeShortString(rest)
			return id
		default: // short strings
			_, rest = pubFakeShortString(rest)
		}
	}
	return ""
}

// waitUnstalled waits while a stall holds the gate.
func (fc *pubFakeConn) waitUnstalled() {
	fc.stalled.Lock()
	defer fc.stalled.Unlock()
}
