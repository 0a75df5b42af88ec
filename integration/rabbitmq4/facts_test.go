package rabbitmq4_test

import (
	"errors"
	"strings"
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

// TestStopAppAndRestartSeenByClient: stop_app closes every connection with
// 320 CONNECTION_FORCED (reason shutdown) and refuses new ones until
// start_app; a node restart does the same, then accepts connections on the
// same port. 4.0.5 may reset the socket right after its connection.close:
// a client that writes then (amqp091-go's close-ok or a heartbeat) sees
// the reset, which amqp091-go reports as 501 instead of the 320.
func TestStopAppAndRestartSeenByClient(t *testing.T) {
	b := broker.Shared(t)
	for _, tt := range []struct {
		name  string
		fault func() error
		after func() error
	}{
		{"stop_app", func() error { return b.Faults.StopApp(faultCtx(t)) }, func() error { return b.Faults.StartApp(faultCtx(t)) }},
		{"restart", func() error { return b.Faults.Restart(faultCtx(t)) }, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, b.URL)
			closed := c.NotifyClose(make(chan *amqp.Error, 1))
			if err := tt.fault(); err != nil {
				t.Fatal(err)
			}
			select {
			case e := <-closed:
				t.Logf("%s closed the connection: %v", tt.name, e)
				if !shutdownClose(e) {
					t.Errorf("closed with %v; want 320 CONNECTION_FORCED naming shutdown, or the socket reset after it", e)
				}
			case <-time.After(defaultTestTimeout):
				t.Fatalf("connection not closed within %v", defaultTestTimeout)
			}
			if tt.after == nil {
				return
			}
			_, err := amqp.DialConfig(b.URL, amqp.Config{Dial: amqp.DefaultDial(defaultTestTimeout)})
			t.Logf("dialing while stopped: %v", err)
			if err == nil {
				t.Errorf("a dial succeeded while the application was stopped")
			}
			if err := tt.after(); err != nil {
				t.Fatal(err)
			}
			dial(t, b.URL)
		})
	}
}

// shutdownClose reports whether e is how a broker shutting down closes a
// connection: 320 CONNECTION_FORCED naming shutdown, or the reset of the
// socket that follows it.
func shutdownClose(e *amqp.Error) bool {
	switch {
	case e == nil:
		return false
	case e.Code == amqp.ConnectionForced:
		return strings.Contains(e.Reason, "shutdown")
	default:
		return e.Code == amqp.FrameError && strings.Contains(e.Reason, "connection reset by peer")
	}
}
