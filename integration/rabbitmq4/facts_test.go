package rabbitmq4_test

import (
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/integration/broker"
)

// requeueLimit bounds TestQuorumDeliveryLimitDefault's loop well above the
// default it looks for.
const requeueLimit = 40

// TestQuorumDeliveryLimitDefault: a quorum queue declared without
// x-delivery-limit drops (or dead-letters) a message that keeps being
// requeued once it has been returned 20 times in RabbitMQ 4.0, that is
// after its 21st delivery; 3.x had no default limit. x-delivery-limit -1
// lifts the limit.
func TestQuorumDeliveryLimitDefault(t *testing.T) {
	for _, tt := range []struct {
		name string
		args amqp.Table
		want int
	}{
		{"default", amqp.Table{}, 21},
		{"x-delivery-limit -1", amqp.Table{"x-delivery-limit": int32(-1)}, requeueLimit},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := broker.Shared(t)
			ch := channel(t, dial(t, b.URL))
			q := uniqueName("quorum")
			tt.args["x-queue-type"] = "quorum"
			if _, err := ch.QueueDeclare(q, true, false, false, false, tt.args); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = ch.QueueDelete(q, false, false, false) })
			if err := ch.Publish("", q, false, false, amqp.Publishing{Body: []byte("poison")}); err != nil {
				t.Fatal(err)
			}
			deliveries := 0
			for deliveries < requeueLimit {
				d, ok, err := getWithin(ch, q, 2*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				deliveries++
				if err := d.Nack(false, true); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("a message requeued on every delivery was delivered %d times (stopped looking at %d)", deliveries, requeueLimit)
			if deliveries != tt.want {
				t.Errorf("delivered %d times; want %d", deliveries, tt.want)
			}
		})
	}
}

// getWithin polls queue q with basic.get until a message comes or d passes:
// a requeue reaches a quorum queue through Raft, a little after the nack.
func getWithin(ch *amqp.Channel, q string, d time.Duration) (amqp.Delivery, bool, error) {
	deadline := time.Now().Add(d)
	for {
		m, ok, err := ch.Get(q, false)
		if ok || err != nil || time.Now().After(deadline) {
			return m, ok, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConsumerTimeoutDefault: a delivery left unacknowledged for 30 minutes
// makes the broker close the channel with 406 PRECONDITION_FAILED.
func TestConsumerTimeoutDefault(t *testing.T) {
	b := broker.Shared(t)
	out, err := b.Faults.Eval(faultCtx(t), "application:get_env(rabbit, consumer_timeout).")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("consumer_timeout: %s", out)
	if out != "{ok,1800000}" {
		t.Errorf("consumer_timeout is %s; want {ok,1800000} (30 minutes)", out)
	}
}

// TestClassicMirroringGone: RabbitMQ 4.0 removed classic queue mirroring; a
// policy with ha-mode is refused as an unknown key, so it cannot silently do
// nothing.
func TestClassicMirroringGone(t *testing.T) {
	b := broker.Shared(t)
	out, err := b.Faults.Eval(faultCtx(t), `rabbit_policy:set(<<"/">>, <<"warren-ha">>, <<"^warren-ha-">>, [{<<"ha-mode">>, <<"all">>}], 0, <<"queues">>, <<"warren">>).`)
	t.Logf("setting an ha-mode policy: %q, %v", out, err)
	if err == nil && out == "ok" {
		_, _ = b.Faults.Eval(faultCtx(t), `rabbit_policy:delete(<<"/">>, <<"warren-ha">>, <<"warren">>).`)
		t.Errorf("an ha-mode policy was accepted; want it refused (classic mirroring is gone in 4.0)")
	}
}

// TestExclusiveQueue: an exclusive queue is locked to its connection (405
// RESOURCE_LOCKED for another) and deleted when that connection closes,
// as in 3.x.
func TestExclusiveQueue(t *testing.T) {
	b := broker.Shared(t)
	owner := dial(t, b.URL)
	q, err := channel(t, owner).QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := dial(t, b.URL)
	_, err = channel(t, other).QueueDeclarePassive(q.Name, false, false, true, false, nil)
	requireCode(t, "declaring another connection's exclusive queue", err, amqp.ResourceLocked)
	if err := owner.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = channel(t, other).QueueDeclarePassive(q.Name, false, false, true, false, nil)
	requireCode(t, "declaring it after its connection closed", err, amqp.NotFound)
}

// TestAutoDeleteQueue: a durable auto-delete queue is deleted when its last
// consumer is cancelled, as in 3.x. (A non-durable, non-exclusive one is a
// transient non-exclusive queue, which this node refuses: see
// TestRawTransientNonExclusiveRefused.)
func TestAutoDeleteQueue(t *testing.T) {
	b := broker.Shared(t)
	ch := channel(t, dial(t, b.URL))
	q := uniqueName("autodelete")
	if _, err := ch.QueueDeclare(q, true, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Consume(q, "c1", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Cancel("c1", false); err != nil {
		t.Fatal(err)
	}
	_, err := ch.QueueDeclarePassive(q, true, true, false, false, nil)
	requireCode(t, "declaring an auto-delete queue after its last consumer was cancelled", err, amqp.NotFound)
}

func requireCode(t *testing.T, what string, err error, code int) {
	t.Helper()
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != code {
		t.Fatalf("%s: %v; want code %d", what, err, code)
	}
	t.Logf("%s: %v", what, err)
}
