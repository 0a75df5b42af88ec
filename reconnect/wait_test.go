package reconnect

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	closed := make(chan struct{})
	close(closed)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name string
		ctx  context.Context
		d    time.Duration
		kick func() <-chan struct{}
		want error
	}{
		{name: "delay elapses", ctx: context.Background(), d: time.Millisecond, want: nil},
		{name: "zero delay returns at once", ctx: context.Background(), d: 0, want: nil},
		{name: "negative delay returns at once", ctx: context.Background(), d: -time.Second, want: nil},
		{name: "zero delay ignores a pending kick", ctx: context.Background(), d: 0,
			kick: func() <-chan struct{} { return closed }, want: nil},
		{name: "cancelled context wins over a zero delay", ctx: cancelled, d: 0, want: context.Canceled},
		{name: "cancelled context wins over a pending kick", ctx: cancelled, d: time.Hour,
			kick: func() <-chan struct{} { return closed }, want: context.Canceled},
		{name: "cancelled context", ctx: cancelled, d: time.Hour, want: context.Canceled},
		{name: "closed kick", ctx: context.Background(), d: time.Hour,
			kick: func() <-chan struct{} { return closed }, want: ErrInterrupted},
		{name: "kick delivers", ctx: context.Background(), d: time.Hour,
			kick: func() <-chan struct{} {
				ch := make(chan struct{}, 1)
				ch <- struct{}{}
				return ch
			}, want: ErrInterrupted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var kick <-chan struct{}
			if tt.kick != nil {
				kick = tt.kick()
			}
			done := make(chan error, 1)
			go func() { done <- Wait(tt.ctx, tt.d, kick) }()
			select {
			case err := <-done:
				if !errors.Is(err, tt.want) { // errors.Is(err, nil) means err == nil
					t.Fatalf("Wait() = %v, want %v", err, tt.want)
				}
			case <-time.After(defaultTestTimeout):
				t.Fatalf("Wait() still blocked after %v", defaultTestTimeout)
			}
		})
	}
}

func TestWaitWakesOnEvent(t *testing.T) {
	const long = time.Hour
	tests := []struct {
		name string
		fire func(cancel context.CancelFunc, kick chan struct{})
		want error
	}{
		{name: "cancel while waiting", fire: func(cancel context.CancelFunc, _ chan struct{}) { cancel() }, want: context.Canceled},
		{name: "kick while waiting", fire: func(_ context.CancelFunc, kick chan struct{}) { kick <- struct{}{} }, want: ErrInterrupted},
		{name: "close kick while waiting", fire: func(_ context.CancelFunc, kick chan struct{}) { close(kick) }, want: ErrInterrupted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			kick := make(chan struct{})
			done := make(chan error, 1)
			go func() { done <- Wait(ctx, long, kick) }()

			select {
			case err := <-done:
				t.Fatalf("Wait() = %v before any event, want it to block", err)
			case <-time.After(defaultTestShortTimeout):
			}
			tt.fire(cancel, kick)
			select {
			case err := <-done:
				if !errors.Is(err, tt.want) {
					t.Fatalf("Wait() = %v, want %v", err, tt.want)
				}
			case <-time.After(defaultTestTimeout):
				t.Fatalf("Wait() still blocked %v after the event", defaultTestTimeout)
			}
		})
	}
}

func TestWaitDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := Wait(ctx, time.Hour, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait() = %v, want context.DeadlineExceeded", err)
	}
}

func TestWaitLastsAtLeastTheDelay(t *testing.T) {
	const d = 20 * time.Millisecond
	start := time.Now()
	if err := Wait(context.Background(), d, make(chan struct{})); err != nil {
		t.Fatalf("Wait() = %v, want nil", err)
	}
	if elapsed := time.Since(start); elapsed < d {
		t.Fatalf("Wait(%v) returned after %v", d, elapsed)
	}
}
