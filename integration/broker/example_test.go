package broker_test

import (
	"context"
	"log"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/integration/broker"
)

// ExampleFind finds a broker, opens a named connection and has the broker
// force it closed. Test binaries use broker.Main and broker.Shared instead.
func ExampleFind() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := broker.Find(ctx, log.Printf)
	if err != nil {
		log.Fatal(err) // says how to get a broker
	}
	defer b.Close(context.Background())

	conn, err := amqp.DialConfig(b.URL, amqp.Config{
		Properties: amqp.Table{"connection_name": "example"},
	})
	if err != nil {
		log.Fatal(err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	if err := b.Faults.CloseConnection(ctx, "example"); err != nil {
		log.Fatal(err)
	}
	log.Printf("closed by the broker: %v", <-closed) // 320 CONNECTION_FORCED
}
