package heartbeat

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// chunk is the size of one write by the feeding peer and of one read per op.
const chunk = 4 << 10

// feed keeps the server end of a TCP pair full until it is closed, and returns
// a func that stops it and waits for it to exit.
func feed(server net.Conn) (stop func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, chunk)
		for {
			if _, err := server.Write(buf); err != nil {
				return
			}
		}
	}()
	return func() {
		server.Close()
		wg.Wait()
	}
}

func benchmarkRead(b *testing.B, wrap func(net.Conn) net.Conn) {
	client, server := tcpPair(b)
	r := wrap(client)
	stop := feed(server)
	defer stop()
	buf := make([]byte, chunk)
	b.SetBytes(chunk)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := io.ReadFull(r, buf); err != nil {
			b.Fatalf("read: %v", err)
		}
	}
	b.StopTimer()
}

// BenchmarkReadRaw is the baseline for BenchmarkReadMonitor: 4 KiB reads from
// a loopback TCP conn that a writer keeps full.
func BenchmarkReadRaw(b *testing.B) {
	benchmarkRead(b, func(c net.Conn) net.Conn { return c })
}

// BenchmarkReadMonitor is BenchmarkReadRaw through a started Monitor; the
// difference is the per-read cost of recording activity.
func BenchmarkReadMonitor(b *testing.B) {
	benchmarkRead(b, func(c net.Conn) net.Conn {
		m, err := NewMonitor(c, time.Minute)
		if err != nil {
			b.Fatalf("NewMonitor: %v", err)
		}
		m.Start()
		b.Cleanup(func() { m.Close() })
		return m
	})
}

// nopConn is a net.Conn whose Read returns at once, so that a benchmark of it
// measures the wrapper rather than the kernel.
type nopConn struct{ net.Conn }

func (nopConn) Read(p []byte) (int, error) { return len(p), nil }
func (nopConn) Close() error               { return nil }

// BenchmarkReadNopRaw and BenchmarkReadNopMonitor isolate the Monitor's added
// cost per Read, which the TCP benchmarks above bury in syscall noise.
func BenchmarkReadNopRaw(b *testing.B) {
	benchmarkNop(b, func(c net.Conn) net.Conn { return c })
}

// BenchmarkReadNopMonitor is BenchmarkReadNopRaw through a started Monitor.
func BenchmarkReadNopMonitor(b *testing.B) {
	benchmarkNop(b, func(c net.Conn) net.Conn {
		m, err := NewMonitor(c, time.Minute)
		if err != nil {
			b.Fatalf("NewMonitor: %v", err)
		}
		m.Start()
		b.Cleanup(func() { m.Close() })
		return m
	})
}

func benchmarkNop(b *testing.B, wrap func(net.Conn) net.Conn) {
	var r net.Conn = nopConn{}
	r = wrap(r)
	buf := make([]byte, chunk)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := r.Read(buf); err != nil {
			b.Fatalf("read: %v", err)
		}
	}
}

// BenchmarkWatchDone is the cost of watching a callback that finishes in time,
// including learning the goroutine's id from its traceback.
func BenchmarkWatchDone(b *testing.B) {
	w := NewWatchdog(func(Stall) {})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		done := w.Watch("handler", time.Minute)
		done()
	}
}

// BenchmarkLaneWatchDone is BenchmarkWatchDone on a Lane, which knows its
// goroutine's id already.
func BenchmarkLaneWatchDone(b *testing.B) {
	lane := NewWatchdog(func(Stall) {}).Lane()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		done := lane.Watch("handler", time.Minute)
		done()
	}
}

// BenchmarkWatchDisabled is the cost of a call watched with threshold 0.
func BenchmarkWatchDisabled(b *testing.B) {
	w := NewWatchdog(func(Stall) {})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		w.Watch("handler", 0)()
	}
}

// BenchmarkGoroutineID is the part of Watch that a Lane saves. Its cost grows
// with the depth of the calling goroutine's stack.
func BenchmarkGoroutineID(b *testing.B) {
	var buf [idBufSize]byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		goroutineID(&buf)
	}
}

// BenchmarkGoroutineStack is the cost of a stall report's stack capture.
func BenchmarkGoroutineStack(b *testing.B) {
	var buf [idBufSize]byte
	id := goroutineID(&buf)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if goroutineStack(id) == nil {
			b.Fatal("own stack not found")
		}
	}
}
