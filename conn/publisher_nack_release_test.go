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

// TestPublisherReleasesParkedOnALaterAck: a queue nacks for a while (a quorum
// queue electing a leader), then takes messages again. The messages it
// nacked must go out again as soon as the channel acks one written after
// them, not after their backoff (an hour here). It fails if they wait.
func TestPublisherReleasesParkedOnALaterAck(t *testing.T) {
	b := startPubFakeBroker(t)
	const election = nackRecycleAfter * 3 / 4 // no recycle
	var once sync.Once
	var began time.Time
	b.setDecide(func(pubFakeMsg) pubFakeAction {
		once.Do(func() { began = time.Now() })
		if time.Since(began) < election {
			return pubFakeNack
		}
		return pubFakeAck
	})
	s, p := startPubTest(t, b, PublisherOptions{nackBackoff: time.Hour})
	ctx := pubTestCtx(t)
	var cs []*Confirmation
	for end := time.Now().Add(3 * election); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		c, err := p.PublishAsync(ctx, "ex", "q", pubBody(fmt.Sprintf("m%d", len(cs))))
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	// One more once the election is surely over, however late a loaded
	// host ran the broker: an ack written after every nack.
	time.Sleep(election)
	c, err := p.PublishAsync(ctx, "ex", "q", pubBody("last"))
	if err != nil {
		t.Fatal(err)
	}
	cs = append(cs, c)
	for i, c := range cs {
		if err := c.Wait(ctx); err != nil {
			t.Fatalf("message %d of %d: Wait = %v, want nil once the queue acks again", i, len(cs), err)
		}
	}
	st := s.Stats()
	if st.Nacked == 0 {
		t.Fatal("no nacks: the test did not exercise a release")
	}
	t.Logf("%d messages, %d nacks, all confirmed", len(cs), st.Nacked)
}

// TestPublisherReleaseOnAckKeepsTheSchedule: a full x-overflow reject-publish
// queue acks some messages (consumers free room) and nacks others. An ack
// may release a nacked message early, but that must only add an attempt:
// a message the queue always refuses still waits its whole backoff schedule
// before ErrNacked. It fails if a release counts the nack it forgives, or
// releases a message more than once.
func TestPublisherReleaseOnAckKeepsTheSchedule(t *testing.T) {
	b := startPubFakeBroker(t)
	b.setDecide(func(m pubFakeMsg) pubFakeAction {
		if strings.HasPrefix(m.Body, "refused") {
			return pubFakeNack
		}
		return pubFakeAck
	})
	const backoff = 50 * time.Millisecond
	_, p := startPubTest(t, b, PublisherOptions{nackBackoff: backoff})
	schedule := pubNackSchedule(p)
	ctx, cancel := context.WithTimeout(context.Background(), schedule+defaultTestTimeout)
	defer cancel()
	type sent struct {
		c  *Confirmation
		at time.Time
	}
	var refused []sent
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // acked traffic all along: every ack is a chance to release
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if _, err := p.PublishAsync(ctx, "ex", "q", pubBody(fmt.Sprintf("taken%d", i))); err != nil {
				return
			}
		}
	}()
	for i := 0; i < 10; i++ {
		c, err := p.PublishAsync(ctx, "ex", "q", pubBody(fmt.Sprintf("refused%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		refused = append(refused, sent{c, time.Now()})
		time.Sleep(10 * time.Millisecond)
	}
	for i, s := range refused {
		err := s.c.Wait(ctx)
		took := time.Since(s.at)
		if !errors.Is(err, ErrNacked) {
			t.Fatalf("refused message %d: Wait = %v, want ErrNacked", i, err)
		}
		if took < schedule {
			t.Fatalf("refused message %d failed %v after its publish, before its %v of backoff (%v)", i, took, schedule, err)
		}
		if want := fmt.Sprintf("%d time(s)", DefaultNackRepublishes+2); !strings.Contains(err.Error(), want) {
			t.Errorf("refused message %d: %v, want %q: one release forgiven, and its own schedule", i, err, want)
		}
	}
	close(stop)
	wg.Wait()
}
