package faultproxy_test

import (
	"fmt"
	"io"
	"net"
	"time"

	"github.com/warrenmq/warren/integration/faultproxy"
)

// Example partitions a connection to an echo server, then heals it: the
// bytes sent during the partition are delivered, not lost.
func Example() {
	upstream, _ := net.Listen("tcp", "127.0.0.1:0")
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := upstream.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	defer func() { upstream.Close(); <-served }()

	p, err := faultproxy.New(upstream.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	p.Blackhole()
	fmt.Println(p.Mode())
	_, _ = io.WriteString(c, "hello")
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.Read(make([]byte, 5)); err != nil {
		fmt.Println("nothing arrives while partitioned")
	}

	p.Heal()
	fmt.Println(p.Mode())
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", buf)
	// Output:
	// blackholed
	// nothing arrives while partitioned
	// pass-through
	// hello
}
