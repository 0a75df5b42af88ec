package conn_test

import (
	"context"
	"fmt"
	"log"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
)

func ExampleNew() {
	sup, err := conn.New(conn.Options{
		URLs:           []string{"amqp://guest:guest@127.0.0.1:5672/"},
		ConnectionName: "example",
		Heartbeat:      5 * time.Second,
		OnEvent: func(e conn.Event) {
			// Runs on the dispatcher goroutine; may call any Supervisor method.
			log.Printf("warren: %s state=%s url=%s err=%v", e.Kind, e.State, e.URL, e.Err)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sup.Close(ctx); err != nil {
			log.Print(err)
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sup.WaitReady(ctx); err != nil {
		log.Fatal(err)
	}
}

func ExampleSupervisor_AddHook() {
	sup, err := conn.New(conn.Options{URLs: []string{"amqp://guest:guest@127.0.0.1:5672/"}})
	if err != nil {
		log.Fatal(err)
	}
	defer sup.Close(context.Background())

	// Runs on every new connection, before the supervisor reports Ready.
	remove, err := sup.AddHook(context.Background(), conn.Hook{
		Name:  "audit queue",
		Phase: conn.PhaseTopology,
		Up: func(ctx context.Context, c *amqp.Connection) error {
			ch, err := c.Channel()
			if err != nil {
				return err
			}
			defer ch.Close()
			_, err = ch.QueueDeclare("audit", true, false, false, false, nil)
			return err
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer remove()
}

func ExampleRedactURL() {
	fmt.Println(conn.RedactURL("amqp://orders:s3cret@rabbit-1:5672/prod"))
	// Output: amqp://orders:***@rabbit-1:5672/prod
}

func ExampleState_String() {
	fmt.Println(conn.Connecting, conn.Ready, conn.Reconnecting, conn.Closing, conn.Closed)
	// Output: Connecting Ready Reconnecting Closing Closed
}
