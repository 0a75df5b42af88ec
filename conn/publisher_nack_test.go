package conn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// pubNackTestBackoff keeps the republication waits of nack tests short.
const pubNackTestBackoff = 2 * time.Millisecond

// pubNackFirst returns a decide function that nacks the first n publishes
// of each body and then answers with then.
func pubNackFirst(n int, then pubFakeAction) func(pubFakeMsg) pubFakeAction {
	var mu sync.Mutex
	seen := map[string]int{}
	return func(m pubFakeMsg) pubFakeAction {
		mu.Lock()
		defer mu.Unlock()
		seen[m.Body]++
		if seen[m.Body] <= n {
			return pubFakeNack
		}
		return then
	}
}

// TestPublisherRepublishesNacks: under the default policy a nacked message
// is republished with the same MessageId until acked, up to NackRepublishes
// times; past the limit, and under ConfirmLostFail or a negative limit at
// once, it fails with ErrNacked. It settles once, with nil only after an ack.
func TestPublisherRepublishesNacks(t *testing.T) {
	tests := []struct {
		name      string
		nacks     int // nacks before the broker acks
		opts      PublisherOptions
		mandatory bool
		wantErr   string // "" for nil; else a substring, and ErrNacked must match
		copies    int    // publishes the broker gets
	}{
		{"one transient nack", 1, PublisherOptions{}, false, "", 2},
		{"five transient nacks, the default limit", 5, PublisherOptions{}, false, "", 6},
		{"past the default limit", 6, PublisherOptions{}, false, "6 time(s)", 6},
		{"limit 1", 5, PublisherOptions{NackRepublishes: 1}, false, "2 time(s)", 2},
		{"ConfirmLostFail fails at once", 1, PublisherOptions{OnConfirmLost: ConfirmLostFail}, false, "nacked the message", 1},
		{"a negative limit fails at once", 1, PublisherOptions{NackRepublishes: -1}, false, "nacked the message", 1},
		// The republication is matched to its return by the stamp it was
		// first published with.
		{"nacked, then returned", 2, PublisherOptions{Mandatory: true}, true, "", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := startPubFakeBroker(t)
			then := pubFakeAck
			if tc.mandatory {
				then = pubFakeReturn
			}
			b.setDecide(pubNackFirst(tc.nacks, then))
			opts := tc.opts
			opts.nackBackoff = pubNackTestBackoff
			s, p := startPubTest(t, b, opts)
			c, err := p.PublishAsync(pubTestCtx(t), "ex", "q", pubBody("m"))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Wait(pubTestCtx(t))
			switch {
			case tc.mandatory:
				if !errors.Is(err, ErrReturned) {
					t.Fatalf("Wait = %v, want the republication's *ReturnedError", err)
				}
			case tc.wantErr == "":
				if err != nil {
					t.Fatalf("Wait = %v, want nil after %d nacks", err, tc.nacks)
				}
				if b.ackedCount("m") != 1 {
					t.Fatalf("nil, but the broker acked %d copies", b.ackedCount("m"))
				}
			default:
				if !errors.Is(err, ErrNacked) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Wait = %v, want ErrNacked saying %q", err, tc.wantErr)
				}
			}
			msgs := b.messages()
			if len(msgs) != tc.copies {
				t.Fatalf("broker got %d copies, want %d", len(msgs), tc.copies)
			}
			for _, m := range msgs {
				if m.MessageID != c.MessageID() {
					t.Errorf("a copy has MessageId %q, want %q", m.MessageID, c.MessageID())
				}
			}
			st := s.Stats()
			if want := min(tc.nacks, tc.copies); st.Nacked != uint64(want) || st.Republished != uint64(tc.copies-1) {
				t.Errorf("Stats: nacked %d republished %d, want %d and %d", st.Nacked, st.Republished, want, tc.copies-1)
			}
		})
	}
}

// TestPublisherNackedThenCancelled: a nacked message waiting for its
// republication fails at once when its context ends, with ErrNacked and the
// context's error, and is never published again.
func TestPublisherNackedThenCancelled(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(pubNackFirst(1, pubFakeAck))
	_, p := startPubTest(t, b, PublisherOptions{nackBackoff: time.Hour})
	ctx, cancel := context.WithCancel(pubTestCtx(t))
	c, err := p.PublishAsync(ctx, "ex", "q", pubBody("m"))
	if err != nil {
		t.Fatal(err)
	}
	b.waitMessages(1)
	pubWaitNacked(t, p)
	cancel()
	err = c.Wait(pubTestCtx(t))
	if !errors.Is(err, ErrNacked) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want ErrNacked and context.Canceled", err)
	}
	p.mu.Lock()
	left := p.led.unsettled()
	p.mu.Unlock()
	if left != 0 || len(p.window) != 0 {
		t.Fatalf("ledger holds %d, window %d slots after the cancel, want 0", left, len(p.window))
	}
	if n := len(b.messages()); n != 1 {
		t.Fatalf("broker got %d copies, want 1", n)
	}
}

// TestPublisherCloseTakesParked: Close waits for a parked message within its
// context and then fails it with ErrUnconfirmed, naming it.
func TestPublisherCloseTakesParked(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(pubNackFirst(1, pubFakeAck))
	_, p := startPubTest(t, b, PublisherOptions{nackBackoff: time.Hour})
	c, err := p.PublishAsync(pubTestCtx(t), "ex", "q", pubBody("m"))
	if err != nil {
		t.Fatal(err)
	}
	pubWaitNacked(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var ue *UnconfirmedError
	if err := p.Close(ctx); !errors.As(err, &ue) || len(ue.MessageIDs) != 1 || ue.MessageIDs[0] != c.MessageID() {
		t.Fatalf("Close = %v, want an UnconfirmedError naming %s", err, c.MessageID())
	}
	if err := c.Wait(pubTestCtx(t)); !errors.Is(err, ErrUnconfirmed) {
		t.Fatalf("Wait = %v, want ErrUnconfirmed", err)
	}
}

// TestPublisherCloseDrainsParked: Close with time to spare waits for a
// parked message's republication and its ack.
func TestPublisherCloseDrainsParked(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(pubNackFirst(2, pubFakeAck))
	_, p := startPubTest(t, b, PublisherOptions{nackBackoff: 20 * time.Millisecond})
	c, err := p.PublishAsync(pubTestCtx(t), "ex", "q", pubBody("m"))
	if err != nil {
		t.Fatal(err)
	}
	pubWaitNacked(t, p)
	if err := p.Close(pubTestCtx(t)); err != nil {
		t.Fatalf("Close = %v, want nil once the republication is acked", err)
	}
	if err := c.Wait(pubTestCtx(t)); err != nil {
		t.Fatalf("Wait = %v, want nil", err)
	}
}

// TestPublisherNackBackoff pins the documented schedule: 250 ms, doubling,
// capped at 5 s.
func TestPublisherNackBackoff(t *testing.T) {
	p := &Publisher{}
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i, w := range want {
		if got := p.nackBackoff(i + 1); got != w {
			t.Errorf("nackBackoff(%d) = %v, want %v", i+1, got, w)
		}
	}
}

// pubWaitNacked waits until p holds a parked message.
func pubWaitNacked(t *testing.T, p *Publisher) {
	t.Helper()
	deadline := time.Now().Add(defaultTestTimeout)
	for {
		p.mu.Lock()
		n := len(p.led.parked)
		p.mu.Unlock()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no message parked after a nack")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPublisherRecyclesANackingChannel: a channel that nacks everything for
// nackRecycleAfter is replaced by a new one on the same connection (RabbitMQ
// 3.10 keeps nacking a quorum queue's messages on a channel that first
// asked a dead leader), and the message is confirmed there.
func TestPublisherRecyclesANackingChannel(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(pubPoisonFirstChannel)
	s, p := startPubTest(t, b, PublisherOptions{NackRepublishes: 10, nackBackoff: 50 * time.Millisecond})
	if err := p.Publish(pubTestCtx(t), "ex", "q", pubBody("m")); err != nil {
		t.Fatalf("Publish = %v, want nil once a new channel took over", err)
	}
	var opens []int
	for _, m := range b.messages() {
		opens = append(opens, m.Open)
	}
	if opens[len(opens)-1] == 1 {
		t.Fatalf("copies went out on channel opens %v, want the last on a new channel", opens)
	}
	if st := s.Stats(); st.ConnectionsLost != 0 {
		t.Errorf("%d connections lost: the recycle must keep the connection", st.ConnectionsLost)
	}
}

// TestPublisherRecycleRepublishesItsNacksAtOnce: the messages a channel
// nacked before it was replaced for nacking everything go out on the new
// channel at once, not after their backoff (an hour here): those nacks were
// the channel's. It fails if they wait for their park timers.
func TestPublisherRecycleRepublishesItsNacksAtOnce(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(pubPoisonFirstChannel)
	s, p := startPubTest(t, b, PublisherOptions{nackBackoff: time.Hour})
	ctx := pubTestCtx(t)
	var cs []*Confirmation
	// A message every 20 ms for twice nackRecycleAfter: the channel nacks
	// everything long enough to be replaced.
	for end := time.Now().Add(2 * nackRecycleAfter); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		c, err := p.PublishAsync(ctx, "ex", "q", pubBody(fmt.Sprintf("m%d", len(cs))))
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	for i, c := range cs {
		if err := c.Wait(ctx); err != nil {
			t.Fatalf("message %d of %d: Wait = %v, want nil: its nack came from the replaced channel", i, len(cs), err)
		}
	}
	st := s.Stats()
	if st.Nacked == 0 || st.ConnectionsLost != 0 {
		t.Errorf("Stats: nacked %d, connections lost %d: want nacks, and the connection kept", st.Nacked, st.ConnectionsLost)
	}
	t.Logf("%d messages, %d nacks, all confirmed on a new channel", len(cs), st.Nacked)
}

// TestPublisherNackingQueueGetsTheWholeSchedule: a queue that nacks on every
// channel (x-overflow reject-publish, full) makes the publisher replace
// channel after channel; each message must still wait out its whole backoff
// schedule before it fails, not be republished at every replacement. It fails
// if a replacement forgives more than one nack per message.
func TestPublisherNackingQueueGetsTheWholeSchedule(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(func(pubFakeMsg) pubFakeAction { return pubFakeNack })
	const backoff = 100 * time.Millisecond
	_, p := startPubTest(t, b, PublisherOptions{nackBackoff: backoff})
	schedule := pubNackSchedule(p)
	ctx, cancel := context.WithTimeout(context.Background(), schedule+defaultTestTimeout)
	defer cancel()
	type sent struct {
		c  *Confirmation
		at time.Time
	}
	var all []sent
	// Messages for 3x nackRecycleAfter, so that channels are replaced
	// while they wait.
	for end := time.Now().Add(3 * nackRecycleAfter); time.Now().Before(end); time.Sleep(25 * time.Millisecond) {
		c, err := p.PublishAsync(ctx, "ex", "q", pubBody(fmt.Sprintf("m%d", len(all))))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, sent{c, time.Now()})
	}
	for i, s := range all {
		err := s.c.Wait(ctx)
		took := time.Since(s.at)
		if !errors.Is(err, ErrNacked) {
			t.Fatalf("message %d: Wait = %v, want ErrNacked", i, err)
		}
		if took < schedule {
			t.Fatalf("message %d failed %v after its publish, before its %v of backoff (%v)", i, took, schedule, err)
		}
	}
}

// pubNackSchedule is the whole backoff a nacked message waits out before it
// fails, at p's nackBackoff and NackRepublishes.
func pubNackSchedule(p *Publisher) time.Duration {
	var d time.Duration
	for n := 1; n <= p.opts.NackRepublishes; n++ {
		d += p.nackBackoff(n)
	}
	return d
}

// pubPoisonFirstChannel nacks everything on the broker's first channel and
// acks on every later one: RabbitMQ 3.10's channel stuck asking a dead
// quorum leader's node.
func pubPoisonFirstChannel(m pubFakeMsg) pubFakeAction {
	if m.Open == 1 {
		return pubFakeNack
	}
	return pubFakeAck
}
