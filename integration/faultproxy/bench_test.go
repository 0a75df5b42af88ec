package faultproxy

import (
	"io"
	"net"
	"testing"
)

// BenchmarkRoundTrip measures a small echo round trip through the proxy,
// against the same round trip without it.
func BenchmarkRoundTrip(b *testing.B) {
	for _, proxied := range []bool{false, true} {
		name := "direct"
		if proxied {
			name = "proxied"
		}
		b.Run(name, func(b *testing.B) {
			c := benchConn(b, proxied)
			msg := make([]byte, 64)
			got := make([]byte, len(msg))
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkThroughput measures bulk transfer to an echo server and back,
// against the same transfer without the proxy.
func BenchmarkThroughput(b *testing.B) {
	for _, proxied := range []bool{false, true} {
		name := "direct"
		if proxied {
			name = "proxied"
		}
		b.Run(name, func(b *testing.B) {
			c := benchConn(b, proxied)
			buf := make([]byte, 256<<10)
			b.SetBytes(int64(len(buf)))
			drained := make(chan error, 1)
			go func() {
				_, err := io.CopyN(io.Discard, c, int64(b.N)*int64(len(buf)))
				drained <- err
			}()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-drained; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// benchConn dials an echo server, through a proxy if proxied.
func benchConn(b *testing.B, proxied bool) net.Conn {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	addr := ln.Addr().String()
	var p *Proxy
	if proxied {
		if p, err = New(addr); err != nil {
			b.Fatal(err)
		}
		addr = p.Addr()
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = c.Close()
		if p != nil {
			_ = p.Close()
		}
		_ = ln.Close()
		<-served
	})
	return c
}
