package reconnect_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/reconnect"
)

func ExampleSchedule() {
	// A tiny Jitter keeps this output stable; real policies keep the default.
	sched, err := reconnect.NewSchedule(reconnect.Policy{Initial: 10 * time.Millisecond, Jitter: 1e-9}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	failures := 3
	dial := func() error {
		if failures > 0 {
			failures--
			return fmt.Errorf("dial: %w", io.EOF)
		}
		return nil
	}
	for {
		delay, err := sched.Next()
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("dial after %v (failed so far: %d)\n", delay.Round(time.Millisecond), sched.Attempt())
		if err := reconnect.Wait(context.Background(), delay, nil); err != nil {
			fmt.Println(err)
			return
		}
		if err := dial(); err != nil {
			continue
		}
		sched.Connected()
		break
	}
	// Output:
	// dial after 0s (failed so far: 0)
	// dial after 10ms (failed so far: 1)
	// dial after 12ms (failed so far: 2)
	// dial after 14ms (failed so far: 3)
}

func ExampleSchedule_flaps() {
	// A broker that accepts every connection and drops it at once. The fake
	// clock stands in for the time the connections lasted; a tiny Jitter
	// keeps the output stable.
	clock := &stepClock{now: time.Unix(0, 0)}
	sched, err := reconnect.NewSchedule(reconnect.Policy{Jitter: 1e-9}, clock)
	if err != nil {
		fmt.Println(err)
		return
	}
	for flap := 0; flap <= 6; flap++ {
		delay, _ := sched.Next()
		fmt.Printf("after %d flaps: dial after %v\n", flap, delay.Round(time.Millisecond))
		clock.now = clock.now.Add(delay)
		sched.Connected()
		clock.now = clock.now.Add(50 * time.Millisecond) // dropped within 50ms
		sched.Lost()
	}
	// Losing a connection that lasted is redialed at once, and its time
	// forgives flaps (10 s each): after a minute of health a new flap is a
	// first flap again.
	delay, _ := sched.Next()
	sched.Connected()
	clock.now = clock.now.Add(delay + time.Minute)
	sched.Lost()
	delay, _ = sched.Next()
	fmt.Printf("after a healthy minute: dial after %v\n", delay)
	// Output:
	// after 0 flaps: dial after 0s
	// after 1 flaps: dial after 0s
	// after 2 flaps: dial after 1s
	// after 3 flaps: dial after 3s
	// after 4 flaps: dial after 9s
	// after 5 flaps: dial after 10s
	// after 6 flaps: dial after 10s
	// after a healthy minute: dial after 0s
}

// stepClock is a backoff.Clock that the example moves by hand.
type stepClock struct{ now time.Time }

func (c *stepClock) Now() time.Time { return c.now }

func ExampleSchedule_giveUp() {
	sched, err := reconnect.NewSchedule(reconnect.Policy{MaxAttempts: 2}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for dials := 0; dials < 10; dials++ {
		if _, err := sched.Next(); err != nil {
			fmt.Println(errors.Is(err, reconnect.ErrGaveUp), err)
			return
		}
		// Each dial fails; a real supervisor would Wait first.
	}
	fmt.Println("never gave up")
	// Output:
	// true reconnect: gave up after 2 failed dials in a row (MaxAttempts 2)
}

func ExampleClassify() {
	_, badURL := amqp.ParseURI("amqps://guest:guest@broker:5671/?heartbeat=soon")
	for _, err := range []error{
		amqp.ErrCredentials,
		fmt.Errorf("conn: %w", &amqp.Error{Code: amqp.ConnectionForced, Reason: "CONNECTION_FORCED - shutdown", Server: true}),
		badURL,
		io.ErrUnexpectedEOF,
		reconnect.MarkPermanent(io.ErrUnexpectedEOF),
	} {
		class, reason := reconnect.Classify(err)
		fmt.Printf("%s: %s\n", class, reason)
	}
	// Output:
	// permanent: username or password refused (403)
	// transient: connection forced (320)
	// permanent: invalid URL
	// transient: connection closed by peer (EOF)
	// permanent: connection closed by peer (EOF) (marked permanent)
}

func ExampleWait() {
	ctx, cancel := context.WithCancel(context.Background())
	kick := make(chan struct{}, 1)

	fmt.Println(reconnect.Wait(ctx, time.Millisecond, kick)) // the delay elapses

	kick <- struct{}{} // someone wants a dial now
	fmt.Println(reconnect.Wait(ctx, time.Hour, kick))

	cancel() // the supervisor is closing
	fmt.Println(reconnect.Wait(ctx, time.Hour, kick))
	// Output:
	// <nil>
	// reconnect: wait interrupted
	// context canceled
}

func ExamplePolicy_Validate() {
	fmt.Println(reconnect.DefaultPolicy().Validate())
	fmt.Println(reconnect.Policy{Initial: time.Minute, Jitter: 2}.Validate())
	// Output:
	// <nil>
	// reconnect: invalid policy: Max (10s) must not be less than Initial (1m0s); Jitter must be in [0,1], got 2
}
