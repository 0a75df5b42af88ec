package conn

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	attack4Seed = flag.Int64("attack4.seed", 0, "replay one seed of TestAttack4NackRelease")
	attack4Runs = flag.Int("attack4.runs", 3, "seeds TestAttack4NackRelease runs")
)

// TestAttack4NackRelease mixes nack-all phases (elections), ack phases,
// random nacks, always-refused bodies, connection kills, ctx cancellations
// and a random Publisher.Close, and checks on every run:
//
//	settle: every Wait returns; nil only after a broker ack
//	early:  ErrNacked without a ctx cause before sum(nackBackoff(1..limit))
//	churn:  channel.opens > elapsed/nackRecycleAfter + kills + 3
//	close:  Close not bounded by its ctx (+1s)
//	ledger: anything left after Close
func TestAttack4NackRelease(t *testing.T) {
	seeds := testSeeds(*attack4Seed, *attack4Runs)
	for _, seed := range seeds {
		seed := seed
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runAttack4(t, seed) })
	}
}

func runAttack4(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	var dmu sync.Mutex
	drng := rand.New(rand.NewSource(^seed))
	b := startPubFakeBroker(t)
	var phaseNackAll atomic.Bool
	nackP := rng.Intn(60)
	var tmu sync.Mutex
	trace := map[string][]string{}
	t0 := time.Now()
	b.setDecide(func(m pubFakeMsg) pubFakeAction {
		tmu.Lock()
		trace[m.Body] = append(trace[m.Body], fmt.Sprintf("%v conn%d open%d tag%d", time.Since(t0).Round(time.Millisecond/10), m.Conn, m.Open, m.Tag))
		tmu.Unlock()
		if strings.HasPrefix(m.Body, "refused") || phaseNackAll.Load() {
			return pubFakeNack
		}
		dmu.Lock()
		defer dmu.Unlock()
		if drng.Intn(100) < nackP {
			return pubFakeNack
		}
		return pubFakeAck
	})
	backoff := time.Duration(5+rng.Intn(20)) * time.Millisecond
	limit := 1 + rng.Intn(5)
	s, p := startPubTest(t, b, PublisherOptions{MaxInFlight: 4 + rng.Intn(32), nackBackoff: backoff,
		NackRepublishes: limit, Mandatory: rng.Intn(3) == 0})
	schedule := pubNackSchedule(p)
	ctx, cancelAll := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelAll()
	type sent struct {
		body   string
		c      *Confirmation
		at     time.Time
		cancel context.CancelFunc
		done   chan struct{}
		err    error
		end    time.Time
	}
	var msgs []*sent
	var wg sync.WaitGroup
	defer wg.Wait()
	kills := 0
	start := time.Now()
	closeAt := -1
	if rng.Intn(3) == 0 {
		closeAt = rng.Intn(300)
	}
	var closeErr error
	closed := false
	for i := 0; i < 300; i++ {
		if i == closeAt {
			cctx, cc := context.WithTimeout(ctx, time.Duration(rng.Intn(200))*time.Millisecond)
			t0 := time.Now()
			closeErr = p.Close(cctx)
			if d := time.Since(t0); d > time.Second+200*time.Millisecond {
				t.Errorf("seed %d: close: Publisher.Close took %v", seed, d)
			}
			cc()
			closed = true
			break
		}
		mctx, cancel := context.WithCancel(ctx)
		body := fmt.Sprintf("m-%d", i)
		if rng.Intn(10) == 0 {
			body = fmt.Sprintf("refused-%d", i)
		}
		c, err := p.PublishAsync(mctx, "", "q", pubBody(body))
		if err != nil {
			cancel()
			t.Fatalf("seed %d: PublishAsync: %v", seed, err)
		}
		m := &sent{body: body, c: c, at: time.Now(), cancel: cancel, done: make(chan struct{})}
		msgs = append(msgs, m)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(m.done)
			wctx, wc := context.WithTimeout(ctx, 20*time.Second)
			defer wc()
			m.err = m.c.Wait(wctx)
			m.end = time.Now()
			if wctx.Err() != nil && errors.Is(m.err, context.DeadlineExceeded) {
				m.err = errors.New("attack4: never settled")
			}
		}()
		switch r := rng.Intn(100); {
		case r < 8:
			msgs[rng.Intn(len(msgs))].cancel()
		case r < 10 && s.State() == Ready:
			if fc := b.live(); fc != nil {
				fc.kill()
				kills++
			}
		case r < 14:
			phaseNackAll.Store(!phaseNackAll.Load())
		case r < 40:
			time.Sleep(time.Duration(rng.Intn(8)) * time.Millisecond)
		}
	}
	if !closed {
		phaseNackAll.Store(false)
	}
	for _, m := range msgs {
		<-m.done
		err := m.err
		if err != nil && strings.HasPrefix(err.Error(), "attack4:") {
			t.Errorf("seed %d: settle: %s never settled", seed, m.body)
			continue
		}
		if err == nil && b.ackedCount(m.body) == 0 {
			t.Errorf("seed %d: settle: %s nil, never acked", seed, m.body)
		}
		if errors.Is(err, ErrNacked) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !closed {
			if took := m.end.Sub(m.at); took < schedule-2*time.Millisecond {
				tmu.Lock()
				tr := trace[m.body]
				tmu.Unlock()
				t.Errorf("seed %d: early: %s failed %v after publish, schedule %v: %v\n published at %v; writes: %v", seed, m.body, took, schedule, err, m.at.Sub(t0).Round(time.Millisecond/10), tr)
			}
		}
	}
	elapsed := time.Since(start)
	b.mu.Lock()
	opens := b.opens
	b.mu.Unlock()
	if max := int(elapsed/nackRecycleAfter) + 2*kills + 3; opens > max {
		t.Errorf("seed %d: churn: %d channel.opens in %v with %d kills (max %d)", seed, opens, elapsed, kills, max)
	}
	for _, m := range msgs {
		m.cancel()
	}
	if !closed {
		cctx, cc := context.WithTimeout(ctx, defaultTestTimeout)
		closeErr = p.Close(cctx)
		cc()
		if closeErr != nil {
			t.Errorf("seed %d: close: Close after all settled = %v", seed, closeErr)
		}
	}
	p.mu.Lock()
	left := p.led.unsettled()
	p.mu.Unlock()
	if left != 0 {
		t.Errorf("seed %d: ledger: %d left after Close", seed, left)
	}
	t.Logf("seed %d: %d msgs, backoff %v limit %d schedule %v, kills %d opens %d in %v, close %v", seed, len(msgs), backoff, limit, schedule, kills, opens, elapsed, closeErr)
}
