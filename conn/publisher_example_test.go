package conn_test

import (
	"context"
	"errors"
	"log"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
)

func ExampleSupervisor_NewPublisher() {
	sup, err := conn.New(conn.Options{URLs: []string{"amqp://guest:guest@127.0.0.1:5672/"}})
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Waits for outstanding confirms first, and reports by id any
		// message still unconfirmed (a *conn.UnconfirmedError).
		if err := sup.Close(ctx); err != nil {
			log.Print(err)
		}
	}()

	pub, err := sup.NewPublisher(context.Background(), conn.PublisherOptions{Name: "orders", Mandatory: true})
	if err != nil {
		log.Fatal(err)
	}

	// Returns nil only once the broker has confirmed the message. While the
	// connection is down or blocked it waits, but never past ctx; a message
	// whose connection dies before its confirm is republished.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err = pub.Publish(ctx, "orders", "created", amqp.Publishing{
		DeliveryMode: amqp.Persistent,
		ContentType:  "application/json",
		Body:         []byte(`{"id":42}`),
	})
	var returned *conn.ReturnedError
	switch {
	case errors.As(err, &returned):
		log.Printf("no queue is bound for %q", returned.Return.RoutingKey)
	case err != nil:
		log.Printf("not confirmed: %v", err)
	}
}

func ExamplePublisher_PublishAsync() {
	sup, err := conn.New(conn.Options{URLs: []string{"amqp://guest:guest@127.0.0.1:5672/"}})
	if err != nil {
		log.Fatal(err)
	}
	defer sup.Close(context.Background())
	pub, err := sup.NewPublisher(context.Background(), conn.PublisherOptions{MaxInFlight: 512})
	if err != nil {
		log.Fatal(err)
	}

	// Many messages in flight at once; each Confirmation settles once.
	ctx := context.Background()
	var pending []*conn.Confirmation
	for _, body := range []string{"a", "b", "c"} {
		c, err := pub.PublishAsync(ctx, "", "work", amqp.Publishing{Body: []byte(body)})
		if err != nil {
			log.Fatal(err)
		}
		pending = append(pending, c)
	}
	for _, c := range pending {
		if err := c.Wait(ctx); err != nil {
			log.Printf("message %s: %v", c.MessageID(), err)
		}
	}
}
