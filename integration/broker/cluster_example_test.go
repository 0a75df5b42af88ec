package broker_test

import (
	"context"
	"log"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/integration/broker"
)

// ExampleStartCluster starts a 3-node cluster, connects to node 0, and
// stops that node's application: the connection drops and node 1 takes
// over. Test binaries use broker.ClusterMain and broker.SharedCluster
// instead.
func ExampleStartCluster() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := broker.StartCluster(ctx, 3, log.Printf)
	if err != nil {
		log.Fatal(err) // says how to get a cluster
	}
	defer c.Close(context.Background())

	conn, err := amqp.Dial(c.Nodes[0].URL)
	if err != nil {
		log.Fatal(err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	if err := c.StopNode(ctx, 0); err != nil {
		log.Fatal(err)
	}
	log.Printf("node 0 stopped: %v", <-closed) // 320 CONNECTION_FORCED
	other, err := amqp.Dial(c.Nodes[1].URL)
	if err != nil {
		log.Fatal(err)
	}
	defer other.Close()
	if err := c.StartNode(ctx, 0); err != nil {
		log.Fatal(err)
	}
}
