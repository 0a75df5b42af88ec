package smoke

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/integration/faultproxy"
)

// TestBlackholeHeartbeat checks that a partition between client and broker
// is detected by amqp091-go's own heartbeat (read deadline of three
// heartbeat intervals), which is the baseline warren's monitor improves on.
func TestBlackholeHeartbeat(t *testing.T) {
	b := broker.Shared(t)
	p, err := faultproxy.New(b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		p.Heal()
		if err := p.Close(); err != nil {
			t.Errorf("closing the proxy: %v", err)
		}
	}()
	url := b.URLVia(p.Addr())
	conn := dial(t, url, uniqueName("smoke-blackhole"), amqp.Config{Heartbeat: time.Second})
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	if got := p.ActiveConns(); got != 1 {
		t.Fatalf("proxy has %d active connections, want 1", got)
	}
	// amqp091-go clears the read deadline when the handshake completes and
	// sets it again only on the next frame read: a partition right after
	// Dial is never detected by its heartbeat (the reader blocks forever).
	// A channel round trip makes that read happen before the partition.
	if _, err := conn.Channel(); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	p.Blackhole()
	e := awaitClose(t, closed)
	took := time.Since(start)
	t.Logf("amqp091-go detected the blackhole after %v (heartbeat 1s): %v", took.Round(time.Millisecond), e)
	if e == nil {
		t.Fatal("NotifyClose delivered nil: a clean close, not a detected failure")
	}
	// amqp091-go allows three heartbeat intervals of silence; anything much
	// shorter means something other than the heartbeat closed it.
	if took < time.Second {
		t.Errorf("closed after %v, sooner than one heartbeat interval", took)
	}
}
