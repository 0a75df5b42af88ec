package conn

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestAttack4SupervisorCloseReports: messages acked, nacked (parked), held,
// in flight on a channel being recycled; then Supervisor.Close with a random
// ctx (none, 0-80ms). Checked: Close bounded; every message settles; nil only
// after an ack; Close's error, when it carries an *UnconfirmedError, names
// exactly the messages that failed with ErrUnconfirmed, and a nil Close means
// none did.
func TestAttack4SupervisorCloseReports(t *testing.T) {
	base := time.Now().UnixNano()
	for i := 0; i < 8; i++ {
		seed := base + int64(i)
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runAttack4Close(t, seed) })
	}
}

func runAttack4Close(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	var dmu sync.Mutex
	drng := rand.New(rand.NewSource(^seed))
	b := startPubFakeBroker(t)
	pa, pn := rng.Intn(100), rng.Intn(100)
	b.setDecide(func(m pubFakeMsg) pubFakeAction {
		dmu.Lock()
		defer dmu.Unlock()
		switch r := drng.Intn(100); {
		case r < pa/2:
			return pubFakeAck
		case r < pa/2+pn/3:
			return pubFakeNack
		case r < 95:
			return pubFakeHold
		default:
			return pubFakeAck
		}
	})
	s, p := startPubTest(t, b, PublisherOptions{MaxInFlight: 64, nackBackoff: time.Duration(1+rng.Intn(40)) * time.Millisecond})
	ctx := pubTestCtx(t)
	type sent struct {
		id  string
		c   *Confirmation
		err error
	}
	var msgs []*sent
	n := 1 + rng.Intn(60)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("id-%d", i)
		c, err := p.PublishAsync(ctx, "", "q", amqp.Publishing{MessageId: id, Body: []byte(id)})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		msgs = append(msgs, &sent{id: id, c: c})
		if rng.Intn(10) == 0 {
			time.Sleep(time.Duration(rng.Intn(30)) * time.Millisecond)
		}
	}
	if rng.Intn(3) == 0 {
		if fc := b.live(); fc != nil {
			fc.release()
		}
	}
	cctx, cancel := context.Background(), context.CancelFunc(func() {})
	bound := s.opts.CloseTimeout + s.opts.CloseTimeout/10
	if rng.Intn(3) > 0 {
		d := time.Duration(rng.Intn(80)) * time.Millisecond
		cctx, cancel = context.WithTimeout(context.Background(), d)
		bound = d
	}
	t0 := time.Now()
	err := s.Close(cctx)
	took := time.Since(t0)
	cancel()
	if took > bound+500*time.Millisecond {
		t.Errorf("seed %d: Close took %v, bound %v", seed, took, bound)
	}
	var unconf []string
	for _, m := range msgs {
		wctx, wc := context.WithTimeout(context.Background(), 10*time.Second)
		m.err = m.c.Wait(wctx)
		if wctx.Err() != nil {
			t.Errorf("seed %d: %s never settled", seed, m.id)
		}
		wc()
		if m.err == nil && b.ackedCount(m.id) == 0 {
			t.Errorf("seed %d: %s nil, never acked", seed, m.id)
		}
		if errors.Is(m.err, ErrUnconfirmed) {
			unconf = append(unconf, m.id)
		}
	}
	var ue *UnconfirmedError
	if errors.As(err, &ue) {
		got := append([]string(nil), ue.MessageIDs...)
		sort.Strings(got)
		sort.Strings(unconf)
		if strings.Join(got, ",") != strings.Join(unconf, ",") {
			t.Errorf("seed %d: Close reported %v, ErrUnconfirmed: %v", seed, got, unconf)
		}
	} else if err == nil && len(unconf) > 0 {
		t.Errorf("seed %d: Close = nil, but %d messages failed ErrUnconfirmed", seed, len(unconf))
	}
	t.Logf("seed %d: %d msgs, Close %v in %v, %d unconfirmed", seed, n, err != nil, took.Round(time.Millisecond), len(unconf))
}
