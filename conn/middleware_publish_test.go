package conn

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// settleLog records what a test interceptor saw.
type settleLog struct {
	mu      sync.Mutex
	seen    []string // message ids the interceptor saw, in order
	results map[string][]PublishResult
}

func newSettleLog() *settleLog { return &settleLog{results: map[string][]PublishResult{}} }

// interceptor stamps a header and records the message and its outcome.
func (l *settleLog) interceptor(ctx context.Context, pub *OutgoingPublish) (context.Context, PublishSettled) {
	pub.Msg.Headers = setHeader(pub.Msg.Headers, "x-test", "stamped")
	id := pub.Msg.MessageId
	l.mu.Lock()
	l.seen = append(l.seen, id)
	l.mu.Unlock()
	return ctx, func(r PublishResult) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.results[id] = append(l.results[id], r)
	}
}

func setHeader(h amqp.Table, k string, v any) amqp.Table {
	if h == nil {
		h = amqp.Table{}
	}
	h[k] = v
	return h
}

func (l *settleLog) outcomes() map[string][]PublishResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]PublishResult, len(l.results))
	for k, v := range l.results {
		out[k] = append([]PublishResult(nil), v...)
	}
	return out
}

// TestInterceptorSeesEveryOutcomeOnce publishes a seeded random mix of
// messages the fake broker acks, nacks and returns, and some it cannot
// encode: every message the interceptor saw settles exactly once, with the
// outcome its Confirmation (or PublishAsync) reported.
func TestInterceptorSeesEveryOutcomeOnce(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	b := startPubFakeBroker(t)
	actions := map[string]pubFakeAction{}
	var amu sync.Mutex
	b.setDecide(func(m pubFakeMsg) pubFakeAction {
		amu.Lock()
		defer amu.Unlock()
		return actions[m.Body]
	})
	log := newSettleLog()
	_, p := startPubTest(t, b, PublisherOptions{Mandatory: true, NackRepublishes: -1, // a nack settles at once: this test is about the interceptor
		Interceptors: []PublishInterceptor{log.interceptor}})
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()

	const n = 60
	want := map[string]PublishOutcome{}
	var confs []*Confirmation
	shared := amqp.Table{"k": "v"}
	for i := 0; i < n; i++ {
		body := string(rune('a'+i%26)) + string(rune('0'+i/26))
		msg := amqp.Publishing{Body: []byte(body), Headers: shared}
		var outcome PublishOutcome
		switch rng.Intn(4) {
		case 0:
			outcome = PublishAcked
		case 1:
			outcome = PublishNacked
			amu.Lock()
			actions[body] = pubFakeNack
			amu.Unlock()
		case 2:
			outcome = PublishReturned
			amu.Lock()
			actions[body] = pubFakeReturn
			amu.Unlock()
		case 3:
			outcome = PublishFailed
			msg.Headers = amqp.Table{"bad": struct{}{}} // AMQP cannot carry it
		}
		c, err := p.PublishAsync(ctx, "", "q", msg)
		if outcome == PublishFailed {
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("seed %d: PublishAsync of an invalid message = %v", seed, err)
			}
			want[log.seen[len(log.seen)-1]] = PublishFailed
			continue
		}
		if err != nil {
			t.Fatalf("seed %d: PublishAsync: %v", seed, err)
		}
		want[c.MessageID()] = outcome
		confs = append(confs, c)
	}
	for _, c := range confs {
		err := c.Wait(ctx)
		if got := publishOutcome(err); got != want[c.MessageID()] {
			t.Fatalf("seed %d: message %s settled %v (%v), want %v", seed, c.MessageID(), got, err, want[c.MessageID()])
		}
	}
	if len(shared) != 1 {
		t.Errorf("the caller's headers were modified: %v", shared)
	}
	for _, m := range b.messages() {
		if !bytes.Contains(m.props, []byte("x-test")) {
			t.Fatalf("seed %d: message %s reached the broker without the interceptor's header", seed, m.MessageID)
		}
	}
	// The settle functions run on the publisher's goroutine: wait for the
	// last of them, bounded.
	deadline := time.NewTimer(defaultTestTimeout)
	defer deadline.Stop()
	for {
		got := log.outcomes()
		done := true
		for id := range want {
			if len(got[id]) == 0 {
				done = false
			}
		}
		if done {
			break
		}
		select {
		case <-deadline.C:
			t.Fatalf("seed %d: %d of %d outcomes seen", seed, len(got), len(want))
		case <-time.After(time.Millisecond):
		}
	}
	got := log.outcomes()
	if len(got) != len(want) || len(log.seen) != n {
		t.Fatalf("seed %d: %d outcomes for %d messages seen, want %d", seed, len(got), len(log.seen), n)
	}
	for id, rs := range got {
		if len(rs) != 1 || rs[0].Outcome != want[id] || rs[0].MessageID != id || rs[0].Settled.IsZero() {
			t.Errorf("seed %d: message %s: results %+v, want one %v", seed, id, rs, want[id])
		}
		if w := want[id] != PublishFailed; rs[0].Written != w {
			t.Errorf("seed %d: message %s: Written %v, want %v", seed, id, rs[0].Written, w)
		}
	}
}

// TestInterceptorPanicFailsThePublish: a panicking interceptor fails its
// publish with ErrHookPanicked, the interceptors before it still see the
// outcome, and the publisher keeps working.
func TestInterceptorPanicFailsThePublish(t *testing.T) {
	b := startPubFakeBroker(t)
	log := newSettleLog()
	boom := true
	panicky := func(ctx context.Context, pub *OutgoingPublish) (context.Context, PublishSettled) {
		if boom {
			panic("interceptor boom")
		}
		return nil, nil
	}
	_, p := startPubTest(t, b, PublisherOptions{Interceptors: []PublishInterceptor{log.interceptor, panicky}})
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	err := p.Publish(ctx, "", "q", amqp.Publishing{MessageId: "m1"})
	if !errors.Is(err, ErrHookPanicked) {
		t.Fatalf("Publish with a panicking interceptor = %v, want ErrHookPanicked", err)
	}
	if rs := log.outcomes()["m1"]; len(rs) != 1 || rs[0].Outcome != PublishFailed || !errors.Is(rs[0].Err, ErrHookPanicked) {
		t.Fatalf("outer interceptor saw %+v, want one failure", rs)
	}
	if len(b.messages()) != 0 {
		t.Fatalf("a message whose interceptor panicked reached the broker")
	}
	boom = false
	if err := p.Publish(ctx, "", "q", amqp.Publishing{MessageId: "m2"}); err != nil {
		t.Fatalf("Publish after the panic: %v", err)
	}
}

// TestSlowSettleFunctionHoldsPublishesBack: outcomes waiting for a slow
// PublishSettled are bounded by MaxInFlight; further publishes wait for
// room, bounded by their context, and a panicking PublishSettled does not
// stop the ones after it.
func TestSlowSettleFunctionHoldsPublishesBack(t *testing.T) {
	b := startPubFakeBroker(t)
	release := make(chan struct{})
	var mu sync.Mutex
	var settled []string
	slow := func(ctx context.Context, pub *OutgoingPublish) (context.Context, PublishSettled) {
		id := pub.Msg.MessageId
		return ctx, func(r PublishResult) {
			<-release
			mu.Lock()
			settled = append(settled, id)
			mu.Unlock()
			if id == "m0" {
				panic("settle boom")
			}
		}
	}
	s, p := startPubTest(t, b, PublisherOptions{MaxInFlight: 2, Interceptors: []PublishInterceptor{slow}})
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	for _, id := range []string{"m0", "m1"} {
		if err := p.Publish(ctx, "", "q", amqp.Publishing{MessageId: id}); err != nil {
			t.Fatalf("Publish %s: %v", id, err)
		}
	}
	short, cancelShort := context.WithTimeout(ctx, shortTestTimeout)
	defer cancelShort()
	if _, err := p.PublishAsync(short, "", "q", amqp.Publishing{MessageId: "m2"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("PublishAsync with 2 outcomes waiting for the interceptor = %v, want a deadline", err)
	}
	close(release)
	if err := p.Publish(ctx, "", "q", amqp.Publishing{MessageId: "m3"}); err != nil {
		t.Fatalf("Publish after the interceptor caught up: %v", err)
	}
	closeNow(t, s)
	mu.Lock()
	defer mu.Unlock()
	// m2 was refused before the interceptors ran: they never saw it.
	if len(settled) != 3 || settled[0] != "m0" || settled[1] != "m1" || settled[2] != "m3" {
		t.Fatalf("settle functions ran for %v, want m0 m1 m3", settled)
	}
}

// TestCloseReportsUnsettledToInterceptor: a message Close takes unsettled
// is reported as failed with ErrUnconfirmed (by the time the supervisor's
// Close returns: the publisher's own Close may run out of its context
// first).
func TestCloseReportsUnsettledToInterceptor(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(func(pubFakeMsg) pubFakeAction { return pubFakeHold })
	log := newSettleLog()
	s, p := startPubTest(t, b, PublisherOptions{Interceptors: []PublishInterceptor{log.interceptor}})
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	if _, err := p.PublishAsync(ctx, "", "q", amqp.Publishing{MessageId: "held"}); err != nil {
		t.Fatal(err)
	}
	b.waitMessages(1)
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if err := p.Close(short); !errors.Is(err, ErrUnconfirmed) {
		t.Fatalf("Close = %v, want ErrUnconfirmed", err)
	}
	closeNow(t, s)
	rs := log.outcomes()["held"]
	if len(rs) != 1 || rs[0].Outcome != PublishFailed || !errors.Is(rs[0].Err, ErrUnconfirmed) || !rs[0].Written {
		t.Fatalf("interceptor saw %+v, want one written ErrUnconfirmed failure", rs)
	}
}

func TestNilInterceptorIsInvalid(t *testing.T) {
	err := PublisherOptions{Interceptors: []PublishInterceptor{nil}}.withDefaults().validate()
	if !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("validate = %v, want ErrInvalidOptions", err)
	}
}
