package conn

import (
	"context"
	"errors"
	"math/rand"
	"sync"
	"testing"
	"time"
)

// TestConfirmationOutcomeRaces: Done and Wait called before, during and after
// settlement, from several goroutines in a seeded random order, all see the
// one outcome, and every Done channel is closed once it is set.
func TestConfirmationOutcomeRaces(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	for round := 0; round < 200; round++ {
		var c Confirmation
		want := error(nil)
		if rng.Intn(2) == 0 {
			want = ErrNacked
		}
		lookers := 1 + rng.Intn(6)
		early := rng.Intn(lookers + 1) // how many look before the outcome is set
		var wg sync.WaitGroup
		errs := make(chan error, lookers)
		look := func(useWait bool) {
			defer wg.Done()
			if useWait {
				ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
				defer cancel()
				errs <- c.Wait(ctx)
				return
			}
			select {
			case <-c.Done():
				errs <- c.Wait(context.Background())
			case <-time.After(defaultTestTimeout):
				errs <- errors.New("Done never closed")
			}
		}
		for i := 0; i < early; i++ {
			wg.Add(1)
			go look(rng.Intn(2) == 0)
		}
		c.outcome.set(want)
		for i := early; i < lookers; i++ {
			wg.Add(1)
			go look(rng.Intn(2) == 0)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != want {
				t.Fatalf("seed %d round %d: a looker saw %v, want %v", seed, round, err, want)
			}
		}
	}
}
