package smoke

import (
	"context"
	"net"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/integration/broker"
)

// listSettle bounds how long a closed connection may stay listed: the
// broker drops it from its table just after sending close-ok.
const listSettle = 5 * time.Second

func TestListConnections(t *testing.T) {
	b := broker.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	name := uniqueName("smoke-list")
	conn := dial(t, b.URL, name, amqp.Config{})
	localPort := conn.LocalAddr().(*net.TCPAddr).Port

	conns, err := b.Faults.ListConnections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := find(conns, name)
	if found == nil {
		t.Fatalf("ListConnections = %+v: no connection named %s", conns, name)
	}
	// Through Docker's published port the broker's peer is the engine's
	// port proxy, not this socket: only a direct connection shows our port.
	portOK := found.PeerPort == localPort || (b.Source == broker.SourceDocker && found.PeerPort > 0)
	if found.User != "guest" || found.Vhost != "/" || !portOK || found.State == "" {
		t.Errorf("listed %+v, want user guest, vhost /, peer port %d (any, through Docker's port proxy) and a state", *found, localPort)
	}

	if err := conn.CloseDeadline(time.Now().Add(closeTimeout)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(listSettle)
	for {
		conns, err := b.Faults.ListConnections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if find(conns, name) == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection %s still listed %v after it closed", name, listSettle)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func find(conns []broker.Connection, name string) *broker.Connection {
	for i := range conns {
		if conns[i].Name == name {
			return &conns[i]
		}
	}
	return nil
}
