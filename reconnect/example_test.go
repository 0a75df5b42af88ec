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
