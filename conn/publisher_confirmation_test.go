package conn

import (
	"context"
	"errors"
	"testing"
)

func TestConfirmationWait(t *testing.T) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		settled bool
		ctx     context.Context
		want    error
	}{
		{"settled before ctx ends", true, context.Background(), ErrNacked},
		{"settled wins over an ended ctx", true, done, ErrNacked},
		{"ctx ends first", false, done, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &Publisher{window: make(chan struct{}, 1)}
			p.window <- struct{}{}
			c := &Confirmation{p: p, done: make(chan struct{})}
			if tc.settled {
				c.settle(ErrNacked)
				if len(p.window) != 0 {
					t.Error("settle did not free the window slot")
				}
			}
			if err := c.Wait(tc.ctx); !errors.Is(err, tc.want) {
				t.Errorf("Wait = %v, want %v", err, tc.want)
			}
			select {
			case <-c.Done():
				if !tc.settled {
					t.Error("Done closed without settle")
				}
			default:
				if tc.settled {
					t.Error("Done open after settle")
				}
			}
		})
	}
}
