package conn_test

import (
	"context"
	"log"

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
			// nil acks; an error nacks (requeued by default); ctx ends when
			// the delivery can no longer be acknowledged.
			log.Printf("order %s", d.Body)
			return nil
		},
		conn.ConsumerOptions{Name: "billing", Concurrency: 4, OnError: conn.RequeueOnce})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(context.Background()) // lets running handlers finish
}
