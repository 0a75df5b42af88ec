package warrentest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// fakeT records Errorf instead of failing the real test.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
}

// TestLedgerFindsEveryLoss: with a random set of confirmed IDs of which a
// random subset is received (some twice, some late from another
// goroutine), AssertNoLoss fails exactly when one was never received, and
// Lost names exactly those.
func TestLedgerFindsEveryLoss(t *testing.T) {
	seed := rand.Uint64()
	r := rand.New(rand.NewPCG(seed, seed))
	for round := range 30 {
		l := NewLedger()
		want := map[string]bool{}
		var late []string
		for i := range 1 + r.IntN(40) {
			id := fmt.Sprintf("m%d", i)
			l.Confirmed(id)
			switch r.IntN(4) {
			case 0:
				want[id] = true // lost
			case 1:
				late = append(late, id)
			default:
				l.Received(id)
				if r.IntN(3) == 0 {
					l.Received(id)
				}
			}
		}
		l.Received("never-confirmed") // a delivery without a confirm is no loss
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, id := range late {
				l.Received(id)
			}
		}()
		ft := &fakeT{TB: t}
		l.AssertNoLoss(ft, 50*time.Millisecond)
		<-done
		lost := l.Lost()
		if len(lost) != len(want) {
			t.Fatalf("seed %d round %d: Lost() = %v, want %d IDs", seed, round, lost, len(want))
		}
		for _, id := range lost {
			if !want[id] {
				t.Fatalf("seed %d round %d: Lost() names %s, which was received", seed, round, id)
			}
		}
		if (len(want) > 0) != (ft.failed != "") {
			t.Fatalf("seed %d round %d: AssertNoLoss failed=%q with %d lost", seed, round, ft.failed, len(want))
		}
		if len(want) > 0 && !strings.Contains(ft.failed, lost[0]) {
			t.Fatalf("seed %d round %d: failure %q does not name %s", seed, round, ft.failed, lost[0])
		}
	}
}
