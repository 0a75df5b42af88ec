package reconnect

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// AMQP 0-9-1 wire constants the fake broker needs.
const (
	frameMethod    = 1
	frameHeartbeat = 8
	frameEnd       = 0xCE

	classConnection    = 10
	methodStart        = 10
	methodStartOk      = 11
	methodTune         = 30
	methodTuneOk       = 31
	methodOpen         = 40
	methodOpenOk       = 41
	methodClose        = 50
	methodCloseOk      = 51
	protocolHeaderSize = 8
)

// brokerConn is the server side of one connection to the fake broker. It
// speaks just enough AMQP 0-9-1 for amqp091-go to build its real errors from
// what arrives on the wire, so the tests classify the values users will see.
type brokerConn struct {
	c net.Conn
	r *bufio.Reader
}

// startFakeBroker serves one connection on 127.0.0.1 with script and returns
// the AMQP URL to dial. The listener and the script's goroutine end before the
// test does.
func startFakeBroker(t *testing.T, script func(b *brokerConn) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(defaultTestTimeout))
		if err := script(&brokerConn{c: c, r: bufio.NewReader(c)}); err != nil {
			t.Errorf("fake broker: %v", err)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return "amqp://guest:guest@" + ln.Addr().String() + "/"
}

// greet reads the protocol header and offers the SASL mechanisms in
// connection.start.
func (b *brokerConn) greet(mechanisms string) error {
	header := make([]byte, protocolHeaderSize)
	if _, err := io.ReadFull(b.r, header); err != nil {
		return fmt.Errorf("read protocol header: %w", err)
	}
	var start []byte
	start = append(start, 0, 9)                     // version 0-9
	start = binary.BigEndian.AppendUint32(start, 0) // empty server-properties table
	start = appendLongString(start, mechanisms)
	start = appendLongString(start, "en_US")
	return b.send(classConnection, methodStart, start)
}

// login takes the client through greet and start-ok: the point where the
// broker judges the credentials.
func (b *brokerConn) login() error {
	if err := b.greet("PLAIN"); err != nil {
		return err
	}
	return b.expect(classConnection, methodStartOk)
}

// open continues after login through tune, tune-ok and connection.open: the
// point where the broker judges the vhost.
func (b *brokerConn) open() error {
	if err := b.login(); err != nil {
		return err
	}
	var tune []byte
	tune = binary.BigEndian.AppendUint16(tune, 0)      // channel-max: no limit
	tune = binary.BigEndian.AppendUint32(tune, 131072) // frame-max
	tune = binary.BigEndian.AppendUint16(tune, 0)      // heartbeat: off
	if err := b.send(classConnection, methodTune, tune); err != nil {
		return err
	}
	if err := b.expect(classConnection, methodTuneOk); err != nil {
		return err
	}
	return b.expect(classConnection, methodOpen)
}

// established completes the handshake, leaving an open connection.
func (b *brokerConn) established() error {
	if err := b.open(); err != nil {
		return err
	}
	return b.send(classConnection, methodOpenOk, []byte{0}) // reserved shortstr ""
}

// close sends connection.close with code and text, as RabbitMQ does to refuse
// a login or a vhost or to force a connection closed, and waits for close-ok.
func (b *brokerConn) close(code uint16, text string) error {
	var args []byte
	args = binary.BigEndian.AppendUint16(args, code)
	args = append(args, byte(len(text)))
	args = append(args, text...)
	args = binary.BigEndian.AppendUint16(args, 0) // failing class: none
	args = binary.BigEndian.AppendUint16(args, 0) // failing method: none
	if err := b.send(classConnection, methodClose, args); err != nil {
		return err
	}
	return b.expect(classConnection, methodCloseOk)
}

// heartbeat sends one heartbeat frame.
func (b *brokerConn) heartbeat() error {
	if _, err := b.c.Write([]byte{frameHeartbeat, 0, 0, 0, 0, 0, 0, frameEnd}); err != nil {
		return fmt.Errorf("send heartbeat: %w", err)
	}
	return nil
}

func (b *brokerConn) send(class, method uint16, args []byte) error {
	payload := binary.BigEndian.AppendUint16(nil, class)
	payload = binary.BigEndian.AppendUint16(payload, method)
	payload = append(payload, args...)
	frame := []byte{frameMethod, 0, 0} // type, channel 0
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(payload)))
	frame = append(frame, payload...)
	frame = append(frame, frameEnd)
	if _, err := b.c.Write(frame); err != nil {
		return fmt.Errorf("send %d.%d: %w", class, method, err)
	}
	return nil
}

// expect reads frames until a method frame, skipping heartbeats, and checks
// that it is class.method.
func (b *brokerConn) expect(class, method uint16) error {
	for {
		header := make([]byte, 7)
		if _, err := io.ReadFull(b.r, header); err != nil {
			return fmt.Errorf("want %d.%d: read frame header: %w", class, method, err)
		}
		body := make([]byte, binary.BigEndian.Uint32(header[3:])+1) // payload and frame end
		if _, err := io.ReadFull(b.r, body); err != nil {
			return fmt.Errorf("want %d.%d: read frame body: %w", class, method, err)
		}
		if header[0] == frameHeartbeat {
			continue
		}
		if header[0] != frameMethod || len(body) < 5 {
			return fmt.Errorf("want method %d.%d, got frame type %d", class, method, header[0])
		}
		gotClass, gotMethod := binary.BigEndian.Uint16(body), binary.BigEndian.Uint16(body[2:])
		if gotClass != class || gotMethod != method {
			return fmt.Errorf("want method %d.%d, got %d.%d", class, method, gotClass, gotMethod)
		}
		return nil
	}
}

func appendLongString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
