package conn

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/reconnect"
)

// startPubTest starts a supervisor on the fake broker and a publisher on it,
// and waits until the publisher's channel is open. The supervisor is closed at
// cleanup.
func startPubTest(t *testing.T, b *pubFakeBroker, opts PublisherOptions) (*Supervisor, *Publisher) {
	t.Helper()
	return startPubTestWith(t, b, Options{}, opts)
}

// startPubTestWith is startPubTest with supervisor options: URLs, Reconnect
// and Logger are filled in where zero.
func startPubTestWith(t *testing.T, b *pubFakeBroker, sopts Options, opts PublisherOptions) (*Supervisor, *Publisher) {
	t.Helper()
	s := startPubSupervisor(t, b, sopts)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	p, err := s.NewPublisher(ctx, opts)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	return s, p
}

// startPubSupervisor is startPubTestWith without the publisher: it returns
// once the supervisor is Ready.
func startPubSupervisor(t *testing.T, b *pubFakeBroker, sopts Options) *Supervisor {
	t.Helper()
	sopts.URLs = []string{b.url()}
	if sopts.Reconnect == (reconnect.Policy{}) {
		sopts.Reconnect = fastPolicy()
	}
	sopts.Logger = discardLogger()
	if sopts.OwedReplyLimit == 0 {
		// The fake broker holds confirms at will and sends nothing else
		// meanwhile, which the replies-owed rule rightly calls a dead peer.
		sopts.OwedReplyLimit = -1
	}
	s, err := New(sopts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
		defer cancel()
		// Tests that leave messages unconfirmed check that report themselves.
		if err := s.Close(ctx); err != nil && !errors.Is(err, ErrUnconfirmed) {
			t.Errorf("Close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	return s
}

func pubTestCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	t.Cleanup(cancel)
	return ctx
}

func pubBody(s string) amqp.Publishing { return amqp.Publishing{Body: []byte(s)} }

func TestPublisherSettlesEachBrokerAnswer(t *testing.T) {
	tests := []struct {
		name      string
		action    pubFakeAction
		mandatory bool
		onLost    ConfirmLostPolicy
		check     func(error) bool
		want      string
		stats     func(Stats) bool
	}{
		{"ack", pubFakeAck, false, ConfirmLostRepublish, func(err error) bool { return err == nil }, "nil",
			func(s Stats) bool { return s.Confirmed == 1 && s.Nacked == 0 }},
		// ConfirmLostFail: a nack fails at once (publisher_nack_test.go
		// covers its republication).
		{"nack", pubFakeNack, false, ConfirmLostFail, func(err error) bool { return errors.Is(err, ErrNacked) }, "ErrNacked",
			func(s Stats) bool { return s.Nacked == 1 && s.Confirmed == 0 }},
		{"return", pubFakeReturn, true, ConfirmLostRepublish, func(err error) bool {
			var re *ReturnedError
			return errors.Is(err, ErrReturned) && errors.As(err, &re) && re.Return.ReplyCode == 312 && re.Return.RoutingKey == "nowhere"
		}, "a *ReturnedError with 312", func(s Stats) bool { return s.Returned == 1 && s.Confirmed == 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := startPubFakeBroker(t)
			b.setDecide(func(pubFakeMsg) pubFakeAction { return tc.action })
			s, p := startPubTest(t, b, PublisherOptions{Mandatory: tc.mandatory, OnConfirmLost: tc.onLost})
			err := p.Publish(pubTestCtx(t), "ex", "nowhere", pubBody("m"))
			if !tc.check(err) {
				t.Fatalf("Publish = %v, want %s", err, tc.want)
			}
			msgs := b.messages()
			if len(msgs) != 1 || !msgs[0].Confirming || msgs[0].Mandatory != tc.mandatory {
				t.Fatalf("broker got %+v, want one publish in confirm mode, mandatory %v", msgs, tc.mandatory)
			}
			if st := s.Stats(); st.Published != 1 || !tc.stats(st) {
				t.Errorf("Stats: published %d confirmed %d nacked %d returned %d",
					st.Published, st.Confirmed, st.Nacked, st.Returned)
			}
		})
	}
}

func TestPublisherStampsMessageIDs(t *testing.T) {
	b := startPubFakeBroker(t)
	_, p := startPubTest(t, b, PublisherOptions{})
	ctx := pubTestCtx(t)
	seen := map[string]bool{}
	for i := 0; i < 5; i++ {
		c, err := p.PublishAsync(ctx, "", "q", pubBody("m"))
		if err != nil {
			t.Fatal(err)
		}
		if c.MessageID() == "" || seen[c.MessageID()] {
			t.Fatalf("message %d: id %q is empty or repeated", i, c.MessageID())
		}
		seen[c.MessageID()] = true
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mine := amqp.Publishing{MessageId: "caller-id", Body: []byte("x")}
	c, err := p.PublishAsync(ctx, "", "q", mine)
	if err != nil || c.MessageID() != "caller-id" {
		t.Fatalf("PublishAsync with an id: %v, id %q; want the caller's id kept", err, c.MessageID())
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	for _, m := range b.messages() {
		if !seen[m.MessageID] && m.MessageID != "caller-id" {
			t.Errorf("broker got message-id %q, not one the publisher reported", m.MessageID)
		}
	}
}

func TestPublisherWindowBoundsInFlight(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(func(pubFakeMsg) pubFakeAction { return pubFakeHold })
	_, p := startPubTest(t, b, PublisherOptions{MaxInFlight: 2})
	ctx := pubTestCtx(t)
	var cs []*Confirmation
	for i := 0; i < 2; i++ {
		c, err := p.PublishAsync(ctx, "", "q", pubBody(fmt.Sprint(i)))
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		cs = append(cs, c)
	}
	short, cancel := context.WithTimeout(ctx, shortTestTimeout)
	defer cancel()
	if _, err := p.PublishAsync(short, "", "q", pubBody("third")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third publish with a full window = %v, want DeadlineExceeded", err)
	}
	b.waitMessages(2)
	b.setDecide(nil)
	b.conn(0).release()
	for _, c := range cs {
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Publish(ctx, "", "q", pubBody("third")); err != nil {
		t.Fatalf("publish after the window freed: %v", err)
	}
}

func TestPublisherWaitsForReadyBoundedByContext(t *testing.T) {
	const wait = 100 * time.Millisecond
	b := startPubFakeBroker(t)
	s, p := startPubTest(t, b, PublisherOptions{})
	b.refuse()
	b.conn(0).kill()
	ctx := pubTestCtx(t)
	for s.State() == Ready {
		if !s.WaitForStateChange(ctx, Ready) {
			t.Fatal("still Ready after the connection was killed")
		}
	}
	short, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	start := time.Now()
	err := p.Publish(short, "", "q", pubBody("m"))
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish while reconnecting = %v, want DeadlineExceeded", err)
	}
	// A correctness bound, generous for a loaded machine: the publish must
	// end with its context, not with the next dial.
	if took < wait || took > wait+defaultTestTimeout/5 {
		t.Errorf("Publish took %v, want about %v", took, wait)
	}
}

func TestPublisherWaitsWhileBlocked(t *testing.T) {
	b := startPubFakeBroker(t)
	s, p := startPubTest(t, b, PublisherOptions{})
	ctx := pubTestCtx(t)
	if err := b.conn(0).blocked(true); err != nil {
		t.Fatal(err)
	}
	for !s.Blocked() {
		time.Sleep(time.Millisecond)
	}
	short, cancel := context.WithTimeout(ctx, shortTestTimeout)
	defer cancel()
	if err := p.Publish(short, "", "q", pubBody("m")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish while blocked = %v, want DeadlineExceeded", err)
	}
	if n := len(b.messages()); n != 0 {
		t.Fatalf("the broker got %d publishes while blocking the connection", n)
	}
	done := make(chan error, 1)
	go func() { done <- p.Publish(ctx, "", "q", pubBody("m")) }()
	if err := b.conn(0).blocked(false); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Publish after unblock: %v", err)
	}
}

func TestNewPublisherRejectsBadOptions(t *testing.T) {
	b := startPubFakeBroker(t)
	s, _ := startPubTest(t, b, PublisherOptions{})
	for _, opts := range []PublisherOptions{{MaxInFlight: -1}, {OnConfirmLost: 7}} {
		if _, err := s.NewPublisher(pubTestCtx(t), opts); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("NewPublisher(%+v) = %v, want ErrInvalidOptions", opts, err)
		}
	}
}

func TestPublishAsyncRejectsBadHeaders(t *testing.T) {
	b := startPubFakeBroker(t)
	_, p := startPubTest(t, b, PublisherOptions{})
	msg := amqp.Publishing{Headers: amqp.Table{"bad": struct{}{}}}
	if _, err := p.PublishAsync(pubTestCtx(t), "", "q", msg); err == nil {
		t.Fatal("PublishAsync with an unencodable header succeeded")
	}
}
func TestPublisherOptions(t *testing.T) {
	tests := []struct {
		name    string
		in      PublisherOptions
		want    PublisherOptions
		invalid bool
	}{
		{"zero means defaults", PublisherOptions{},
			PublisherOptions{Name: "publisher", MaxInFlight: DefaultMaxInFlight, OnConfirmLost: ConfirmLostRepublish,
				NackRepublishes: DefaultNackRepublishes}, false},
		{"values kept", PublisherOptions{Name: "orders", MaxInFlight: 8, OnConfirmLost: ConfirmLostFail, Mandatory: true, NackRepublishes: -1},
			PublisherOptions{Name: "orders", MaxInFlight: 8, OnConfirmLost: ConfirmLostFail, Mandatory: true, NackRepublishes: -1}, false},
		{"negative window", PublisherOptions{MaxInFlight: -1}, PublisherOptions{}, true},
		{"unknown policy", PublisherOptions{OnConfirmLost: 5}, PublisherOptions{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.withDefaults()
			err := got.validate()
			if tc.invalid {
				if !errors.Is(err, ErrInvalidOptions) {
					t.Fatalf("validate = %v, want ErrInvalidOptions", err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestConfirmLostPolicyString(t *testing.T) {
	for p, want := range map[ConfirmLostPolicy]string{
		ConfirmLostRepublish: "Republish", ConfirmLostFail: "Fail", 9: "ConfirmLostPolicy(9)",
	} {
		if got := p.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(p), got, want)
		}
	}
}

// TestPublishAsyncRejectsUnencodableMessages: a field amqp091-go cannot
// encode would close the whole connection, and a message carried to the
// next one would close that too. PublishAsync must refuse it at once, naming
// the field, and the connection must live on.
func TestPublishAsyncRejectsUnencodableMessages(t *testing.T) {
	long := strings.Repeat("x", 256)
	tests := []struct {
		name     string
		exchange string
		key      string
		msg      amqp.Publishing
		field    string
	}{
		{"exchange", long, "k", amqp.Publishing{}, "exchange"},
		{"routing key", "", long, amqp.Publishing{}, "routing key"},
		{"ContentType", "", "q", amqp.Publishing{ContentType: long}, "ContentType"},
		{"ContentEncoding", "", "q", amqp.Publishing{ContentEncoding: long}, "ContentEncoding"},
		{"CorrelationId", "", "q", amqp.Publishing{CorrelationId: long}, "CorrelationId"},
		{"ReplyTo", "", "q", amqp.Publishing{ReplyTo: long}, "ReplyTo"},
		{"Expiration too long", "", "q", amqp.Publishing{Expiration: long}, "Expiration"},
		{"Expiration not a number", "", "q", amqp.Publishing{Expiration: "soon"}, "Expiration"},
		{"MessageId", "", "q", amqp.Publishing{MessageId: long}, "MessageId"},
		{"Type", "", "q", amqp.Publishing{Type: long}, "Type"},
		{"UserId", "", "q", amqp.Publishing{UserId: long}, "UserId"},
		{"AppId", "", "q", amqp.Publishing{AppId: long}, "AppId"},
		{"header key", "", "q", amqp.Publishing{Headers: amqp.Table{long: "v"}}, "Headers"},
		{"nested header key", "", "q", amqp.Publishing{Headers: amqp.Table{"t": amqp.Table{long: 1}}}, "Headers"},
		{"header type", "", "q", amqp.Publishing{Headers: amqp.Table{"bad": struct{}{}}}, `Headers["bad"]`},
		{"header in array", "", "q", amqp.Publishing{Headers: amqp.Table{"a": []any{1, uint64(2)}}}, `Headers["a"][1]`},
		{"header NaN", "", "q", amqp.Publishing{Headers: amqp.Table{"f": math.NaN()}}, `Headers["f"]`},
		{"headers over the frame size", "", "q", amqp.Publishing{Headers: amqp.Table{"big": strings.Repeat("x", 200000)}}, "Headers"},
	}
	b := startPubFakeBroker(t)
	s, p := startPubTest(t, b, PublisherOptions{Mandatory: true})
	ctx := pubTestCtx(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.PublishAsync(ctx, tc.exchange, tc.key, tc.msg)
			if !errors.Is(err, ErrInvalidMessage) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("PublishAsync = %v, want ErrInvalidMessage naming %s", err, tc.field)
			}
		})
	}
	if err := p.Publish(ctx, "", "q", pubBody("fine")); err != nil {
		t.Fatalf("a valid publish after the invalid ones: %v", err)
	}
	if st := s.Stats(); st.ConnectionsLost != 0 || st.Connections != 1 {
		t.Errorf("Stats: %d connections, %d lost; want 1 and 0", st.Connections, st.ConnectionsLost)
	}
	if n := len(b.messages()); n != 1 {
		t.Errorf("the broker got %d publishes, want only the valid one", n)
	}
}

// TestPublishAsyncRejectsForeignUserID: the broker closes the channel on a
// user_id other than the connection's user, so the publisher refuses it
// before writing; the connection's own user is fine.
func TestPublishAsyncRejectsForeignUserID(t *testing.T) {
	b := startPubFakeBroker(t)
	s, p := startPubTest(t, b, PublisherOptions{})
	ctx := pubTestCtx(t)
	err := p.Publish(ctx, "", "q", amqp.Publishing{UserId: "mallory"})
	if !errors.Is(err, ErrInvalidMessage) || !strings.Contains(err.Error(), "UserId") {
		t.Fatalf("Publish with a forged UserId = %v, want ErrInvalidMessage naming UserId", err)
	}
	if err := p.Publish(ctx, "", "q", amqp.Publishing{UserId: "guest"}); err != nil {
		t.Fatalf("Publish with the connection's user: %v", err)
	}
	if n := len(b.messages()); n != 1 || s.Stats().ConnectionsLost != 0 {
		t.Errorf("the broker got %d publishes and %d connections were lost; want 1 and 0", n, s.Stats().ConnectionsLost)
	}
}

// TestPublisherNeverChangesCallerHeaders: the sequence header goes on a copy.
func TestPublisherNeverChangesCallerHeaders(t *testing.T) {
	b := startPubFakeBroker(t)
	_, p := startPubTest(t, b, PublisherOptions{Mandatory: true})
	shared := amqp.Table{"k": "v"}
	for i := 0; i < 3; i++ {
		if err := p.Publish(pubTestCtx(t), "", "q", amqp.Publishing{Headers: shared}); err != nil {
			t.Fatal(err)
		}
	}
	if len(shared) != 1 || shared["k"] != "v" {
		t.Errorf("the caller's headers became %v", shared)
	}
}
