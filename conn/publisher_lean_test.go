package conn

import (
	"fmt"
	"testing"
)

// TestPublisherIdleHoldsOnlyItsReader: between bursts of publishes a
// publisher keeps one goroutine, the reader of its confirms; each burst
// starts a writer that ends when the ledger has nothing left to write, and
// every message of every burst is confirmed.
func TestPublisherIdleHoldsOnlyItsReader(t *testing.T) {
	b := startPubFakeBroker(t)
	_, p := startPubTest(t, b, PublisherOptions{MaxInFlight: 8})
	ctx := pubTestCtx(t)
	waitFor(t, func() bool { return p.work.Running() == 1 })
	for burst := 0; burst < 5; burst++ {
		var cs []*Confirmation
		for i := 0; i < 20; i++ {
			c, err := p.PublishAsync(ctx, "", "q", pubBody(fmt.Sprint(burst, "-", i)))
			if err != nil {
				t.Fatalf("burst %d message %d: %v", burst, i, err)
			}
			cs = append(cs, c)
		}
		for i, c := range cs {
			if err := c.Wait(ctx); err != nil {
				t.Fatalf("burst %d message %d: %v", burst, i, err)
			}
		}
		waitFor(t, func() bool { return p.work.Running() == 1 })
		p.mu.Lock()
		writing := p.cur != nil && p.cur.writing
		p.mu.Unlock()
		if writing {
			t.Fatalf("burst %d: the channel still says a writer runs after it exited", burst)
		}
	}
}
