package conn

import (
	"context"
	"errors"
	"testing"
)

func TestWorkGroupWaitsForEveryGoroutine(t *testing.T) {
	g := newWorkGroup()
	if err := g.Wait(context.Background()); err != nil {
		t.Fatalf("Wait on an empty group: %v", err)
	}
	release := make(chan struct{})
	for i := 0; i < 3; i++ {
		g.Go(func() { <-release })
	}
	if n := g.Running(); n != 3 {
		t.Fatalf("Running = %d, want 3", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), shortTestTimeout)
	defer cancel()
	if err := g.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with goroutines running = %v, want DeadlineExceeded", err)
	}
	close(release)
	ctx2, cancel2 := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel2()
	if err := g.Wait(ctx2); err != nil {
		t.Fatalf("Wait after release: %v", err)
	}
	// The group is reusable: a goroutine added after zero is waited for again.
	again := make(chan struct{})
	g.Go(func() { <-again })
	if g.Running() != 1 {
		t.Fatalf("Running after reuse = %d, want 1", g.Running())
	}
	close(again)
	if err := g.Wait(ctx2); err != nil {
		t.Fatalf("Wait after reuse: %v", err)
	}
}
