package conn

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"
)

// TestPublisherNackStorm attacks the nack republication: the fake broker
// nacks each publish with a seeded probability (up to every one), while
// messages' contexts are cancelled at random moments (during their
// republication wait included) and connections are killed. Every message
// must settle exactly once, nil only after an ack, and the publisher must
// end holding nothing. The seed is in every failure.
func TestPublisherNackStorm(t *testing.T) {
	for run := 0; run < 4; run++ {
		seed := time.Now().UnixNano() + int64(run)
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runNackStorm(t, seed) })
	}
}

func runNackStorm(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	nackP := []int{30, 70, 100}[rng.Intn(3)]
	var mu sync.Mutex
	drng := rand.New(rand.NewSource(^seed))
	b := startPubFakeBroker(t)
	b.setDecide(func(pubFakeMsg) pubFakeAction {
		mu.Lock()
		defer mu.Unlock()
		if drng.Intn(100) < nackP {
			return pubFakeNack
		}
		return pubFakeAck
	})
	s, p := startPubTest(t, b, PublisherOptions{MaxInFlight: 8 + rng.Intn(24), nackBackoff: time.Duration(1+rng.Intn(3)) * time.Millisecond,
		NackRepublishes: 1 + rng.Intn(4), Mandatory: rng.Intn(2) == 0})
	ctx := pubTestCtx(t)
	type sent struct {
		body   string
		c      *Confirmation
		cancel context.CancelFunc
	}
	var msgs []sent
	for i := 0; i < 150; i++ {
		mctx, cancel := context.WithCancel(ctx)
		body := fmt.Sprintf("s-%d", i)
		c, err := p.PublishAsync(mctx, "", "q", pubBody(body))
		if err != nil {
			cancel()
			if errors.Is(err, context.Canceled) {
				continue
			}
			p.mu.Lock()
			var desc []string
			for _, c := range p.led.all() {
				desc = append(desc, fmt.Sprintf("%s seq %d pc %v nacks %d written %v taker %v", c.msg.Body, c.seq, c.pc != nil, c.nacks, c.written.Load(), c.taker.Load() != nil))
			}
			desc = append(desc, fmt.Sprintf("sent %d parked %d cur %v over %v", p.led.sent, len(p.led.parked), p.cur != nil, p.cur != nil && p.cur.over))
			p.mu.Unlock()
			t.Fatalf("seed %d: PublishAsync: %v\n%v", seed, err, desc)
		}
		msgs = append(msgs, sent{body, c, cancel})
		switch r := rng.Intn(100); {
		case r < 15:
			msgs[rng.Intn(len(msgs))].cancel() // maybe while it waits to be republished
		case r < 18 && s.State() == Ready:
			if fc := b.live(); fc != nil {
				fc.kill()
			}
		case r < 25:
			time.Sleep(time.Duration(rng.Intn(3)) * time.Millisecond)
		}
	}
	for _, m := range msgs {
		if err := m.c.Wait(ctx); err == nil && b.ackedCount(m.body) == 0 {
			t.Errorf("seed %d: %s settled nil, never acked", seed, m.body)
		} else if err != nil && !errors.Is(err, ErrNacked) && !errors.Is(err, context.Canceled) && !errors.Is(err, ErrConfirmLost) {
			t.Errorf("seed %d: %s = %v, want nil, ErrNacked, ErrConfirmLost or its context's error", seed, m.body, err)
		}
		m.cancel()
	}
	closeCtx, cancel := context.WithTimeout(ctx, defaultTestTimeout)
	defer cancel()
	if err := p.Close(closeCtx); err != nil {
		t.Errorf("seed %d: Close after every message settled = %v", seed, err)
	}
	p.mu.Lock()
	left, slots := p.led.unsettled(), len(p.window)
	p.mu.Unlock()
	if left != 0 || slots != 0 {
		t.Errorf("seed %d: ledger %d, window %d after Close, want 0 and 0", seed, left, slots)
	}
}
