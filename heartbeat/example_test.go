package heartbeat_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/warrenmq/warren/heartbeat"
)

// A broker that stops talking is declared dead after the limit, and the
// socket under amqp091-go is closed so that its reader fails at once.
func ExampleMonitor() {
	client, broker := net.Pipe()
	defer broker.Close()

	// In warren this is done in amqp.Config.Dial, around the dialed conn.
	m, err := heartbeat.NewMonitor(client, 50*time.Millisecond)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	// Start once the AMQP handshake is done and heartbeats are negotiated.
	m.Start()

	// The broker never writes; the reader (amqp091-go) blocks until detection.
	_, readErr := m.Read(make([]byte, 1))
	<-m.Dead()
	fmt.Println("read failed with dead peer:", errors.Is(readErr, heartbeat.ErrDeadPeer))
	fmt.Println("recorded:", errors.Is(m.Err(), heartbeat.ErrDeadPeer))
	// Output:
	// read failed with dead peer: true
	// recorded: true
}

// A callback that outlives its threshold is reported with the stack it is
// stuck in, then again when it finally returns.
func ExampleWatchdog() {
	reports := make(chan heartbeat.Stall, 2)
	w := heartbeat.NewWatchdog(func(s heartbeat.Stall) { reports <- s })

	done := w.Watch("event handler", 20*time.Millisecond)
	first := waitForBroker(reports) // slow user code; here it waits for its own stall report
	done()
	second := <-reports

	fmt.Printf("%s finished=%v, stuck in waitForBroker: %v\n",
		first.Name, first.Finished, bytes.Contains(first.Stack, []byte("waitForBroker")))
	fmt.Printf("%s finished=%v, ran at least as long: %v\n",
		second.Name, second.Finished, second.Elapsed >= first.Elapsed)
	// Output:
	// event handler finished=false, stuck in waitForBroker: true
	// event handler finished=true, ran at least as long: true
}

// The dead-peer limit must leave room for the broker's heartbeat schedule.
func ExampleCheckLimit() {
	fmt.Println(heartbeat.CheckLimit(5*time.Second, 10*time.Second) != nil)
	fmt.Println(heartbeat.CheckLimit(heartbeat.RecommendedLimit(10*time.Second), 10*time.Second))
	fmt.Println(heartbeat.RecommendedLimit(4 * time.Second))
	// Output:
	// true
	// <nil>
	// 5s
}

func waitForBroker(reply <-chan heartbeat.Stall) heartbeat.Stall { return <-reply }
