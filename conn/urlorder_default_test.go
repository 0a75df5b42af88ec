package conn

import (
	"context"
	"testing"
)

// urlFleet is how many supervisors share one URL list of two in
// TestURLOrderDefaultSpreadsAFleet: shuffled, all of them pick the first
// URL with probability 2^-24.
const urlFleet = 24

// TestURLOrderDefaultSpreadsAFleet: by default a fleet given the same two
// URLs lands on both brokers; with KeepURLOrder every supervisor dials the
// first URL first and lands there.
func TestURLOrderDefaultSpreadsAFleet(t *testing.T) {
	for _, keep := range []bool{false, true} {
		first, second := startPubFakeBroker(t), startPubFakeBroker(t)
		for i := 0; i < urlFleet; i++ {
			s, err := New(Options{URLs: []string{first.url(), second.url()}, KeepURLOrder: keep,
				Reconnect: fastPolicy(), Logger: discardLogger()})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
			err = s.WaitReady(ctx)
			cancel()
			closeNow(t, s)
			if err != nil {
				t.Fatalf("WaitReady: %v", err)
			}
		}
		onFirst, onSecond := len(first.allConns()), len(second.allConns())
		t.Logf("KeepURLOrder %v: %d supervisors on the first broker, %d on the second", keep, onFirst, onSecond)
		if keep && onSecond != 0 {
			t.Errorf("KeepURLOrder: %d supervisors dialed the second URL first", onSecond)
		}
		if !keep && (onFirst == 0 || onSecond == 0) {
			t.Errorf("default order: %d on the first broker, %d on the second: the fleet did not spread", onFirst, onSecond)
		}
	}
}

// allConns returns every connection the fake broker accepted.
func (b *pubFakeBroker) allConns() []*pubFakeConn {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*pubFakeConn(nil), b.conns...)
}
