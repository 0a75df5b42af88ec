package conn_test

import (
	"context"
	"errors"
	"log"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
)

func ExampleSupervisor_DeclareTopology() {
	sup, err := conn.New(conn.Options{URLs: []string{"amqp://guest:guest@127.0.0.1:5672/"}})
	if err != nil {
		log.Fatal(err)
	}
	defer sup.Close(context.Background())

	// A private queue for this instance: the broker names it afresh on every
	// connection, and the binding and consumers follow the new name.
	events := &conn.Queue{Exclusive: true, AutoDelete: true}
	_, err = sup.DeclareTopology(context.Background(), conn.Topology{
		Exchanges: []conn.Exchange{{Name: "orders", Kind: amqp.ExchangeTopic, Durable: true}},
		Queues:    []*conn.Queue{events},
		Bindings:  []conn.Binding{{Queue: events, Exchange: "orders", Key: "order.*"}},
	})
	if err != nil {
		log.Fatal(err) // invalid, or refused by the broker (406): permanent
	}
	log.Printf("consuming from %s", events.CurrentName())
}

func ExampleSupervisor_Consume() {
	sup, err := conn.New(conn.Options{URLs: []string{"amqp://guest:guest@127.0.0.1:5672/"}})
	if err != nil {
		log.Fatal(err)
	}
	defer sup.Close(context.Background()) // closes the consumer too

	c, err := sup.Consume(context.Background(), conn.NamedQueue("orders.created"),
		func(ctx context.Context, d amqp.Delivery) error {
			// nil acks; an error nacks (requeued once, with RequeueOnce);
			// ctx ends when the delivery can no longer be acknowledged.
			log.Printf("order %s", d.Body)
			return nil
		},
		conn.ConsumerOptions{Name: "billing", Concurrency: 4, OnError: conn.RequeueOnce})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(context.Background()) // lets running handlers finish
}

// A handler chooses each delivery's outcome; plain errors get OnError's,
// by default RetryBackoff: retried later through the broker's retry queues,
// then moved to orders.dead.
func ExampleRetryAfter() {
	sup, err := conn.New(conn.Options{URLs: []string{"amqp://guest:guest@127.0.0.1:5672/"}})
	if err != nil {
		log.Fatal(err)
	}
	defer sup.Close(context.Background())

	errUnavailable := errors.New("payment service unavailable")
	charge := func(context.Context, []byte) error { return errUnavailable }

	_, err = sup.Consume(context.Background(), conn.NamedQueue("orders"),
		func(ctx context.Context, d amqp.Delivery) error {
			if len(d.Body) == 0 {
				return conn.Reject(errors.New("empty order")) // dead-lettered, or dropped
			}
			if err := charge(ctx, d.Body); errors.Is(err, errUnavailable) {
				return conn.RetryAfter(time.Minute, err) // from orders.retry.1m0s
			} else if err != nil {
				return err // OnError: RetryBackoff
			}
			return nil
		},
		conn.ConsumerOptions{
			Retry:  conn.RetryPolicy{Delays: []time.Duration{time.Second, time.Minute}, MaxAttempts: 4},
			Dedupe: &conn.DedupeOptions{Window: 30 * time.Minute},
		})
	if err != nil {
		log.Fatal(err)
	}
}

// QueueArgs writes the arguments of a quorum queue that dead-letters a
// message after 5 redeliveries.
func ExampleQueueArgs() {
	args, err := conn.QueueArgs{
		Type:          amqp.QueueTypeQuorum,
		DeliveryLimit: 5,
		DeadLetter:    conn.DeadLetterToQueue("orders.dead"),
	}.Table()
	if err != nil {
		log.Fatal(err)
	}
	orders := &conn.Queue{Name: "orders", Durable: true, Args: args}
	_ = orders
}
