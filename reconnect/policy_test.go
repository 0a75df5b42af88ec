package reconnect

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestDefaultPolicy(t *testing.T) {
	want := Policy{
		Initial:     100 * time.Millisecond,
		Max:         10 * time.Second,
		Multiplier:  1.2,
		Jitter:      0.4,
		ResetAfter:  time.Second,
		FlapDelay:   time.Second,
		FlapForgive: 10 * time.Second,
	}
	if got := DefaultPolicy(); got != want {
		t.Fatalf("DefaultPolicy() = %+v, want %+v", got, want)
	}
	if err := DefaultPolicy().Validate(); err != nil {
		t.Fatalf("DefaultPolicy().Validate() = %v, want nil", err)
	}
	// A fresh value each call: changing one must not change the next.
	p := DefaultPolicy()
	p.Max = time.Hour
	if got := DefaultPolicy().Max; got != want.Max {
		t.Fatalf("DefaultPolicy().Max after mutating a copy = %v, want %v", got, want.Max)
	}
}

func TestWithDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Policy
		want Policy
	}{
		{
			name: "zero value gets every default",
			in:   Policy{},
			want: DefaultPolicy(),
		},
		{
			name: "set fields are kept",
			in: Policy{Initial: time.Second, Max: time.Minute, Multiplier: 1.5, Jitter: 0.1,
				MaxElapsed: time.Hour, MaxAttempts: 3, ResetAfter: 5 * time.Second,
				FlapDelay: 2 * time.Second, FlapForgive: time.Minute},
			want: Policy{Initial: time.Second, Max: time.Minute, Multiplier: 1.5, Jitter: 0.1,
				MaxElapsed: time.Hour, MaxAttempts: 3, ResetAfter: 5 * time.Second,
				FlapDelay: 2 * time.Second, FlapForgive: time.Minute},
		},
		{
			name: "invalid values are kept for Validate to report",
			in:   Policy{Initial: -time.Second, Multiplier: 0.5, Jitter: -1, MaxAttempts: -2},
			want: Policy{Initial: -time.Second, Max: 10 * time.Second, Multiplier: 0.5, Jitter: -1,
				MaxAttempts: -2, ResetAfter: time.Second, FlapDelay: time.Second, FlapForgive: 10 * time.Second},
		},
		{
			name: "give-up limits stay off",
			in:   Policy{Initial: time.Second},
			want: Policy{Initial: time.Second, Max: 10 * time.Second, Multiplier: 1.2, Jitter: 0.4,
				ResetAfter: time.Second, FlapDelay: time.Second, FlapForgive: 10 * time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.WithDefaults(); got != tt.want {
				t.Errorf("WithDefaults() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		want []string // substrings of the error; nil means valid
	}{
		{name: "zero value", p: Policy{}},
		{name: "tiny jitter for tests", p: Policy{Jitter: 1e-9}},
		{name: "full jitter", p: Policy{Jitter: 1}},
		{name: "multiplier one", p: Policy{Multiplier: 1}},
		{name: "max equals initial", p: Policy{Initial: time.Second, Max: time.Second}},
		{name: "limits set", p: Policy{MaxElapsed: time.Minute, MaxAttempts: 5}},
		{name: "negative initial", p: Policy{Initial: -1}, want: []string{"Initial must not be negative"}},
		{name: "negative max", p: Policy{Max: -time.Second}, want: []string{"Max must not be negative"}},
		{name: "negative max elapsed", p: Policy{MaxElapsed: -time.Second}, want: []string{"MaxElapsed must not be negative"}},
		{name: "negative reset after", p: Policy{ResetAfter: -time.Second}, want: []string{"ResetAfter must not be negative"}},
		{name: "negative flap delay", p: Policy{FlapDelay: -time.Second}, want: []string{"FlapDelay must not be negative"}},
		{name: "negative flap forgive", p: Policy{FlapForgive: -time.Second}, want: []string{"FlapForgive must not be negative"}},
		{name: "flap delay above max is capped, not refused", p: Policy{Max: time.Second, FlapDelay: time.Minute}},
		{name: "multiplier below one", p: Policy{Multiplier: 0.5}, want: []string{"Multiplier must be"}},
		{name: "negative multiplier", p: Policy{Multiplier: -2}, want: []string{"Multiplier must be"}},
		{name: "NaN multiplier", p: Policy{Multiplier: math.NaN()}, want: []string{"Multiplier must be"}},
		{name: "infinite multiplier", p: Policy{Multiplier: math.Inf(1)}, want: []string{"Multiplier must be"}},
		{name: "negative jitter", p: Policy{Jitter: -0.1}, want: []string{"Jitter must be in [0,1]"}},
		{name: "jitter above one", p: Policy{Jitter: 1.5}, want: []string{"Jitter must be in [0,1]"}},
		{name: "NaN jitter", p: Policy{Jitter: math.NaN()}, want: []string{"Jitter must be in [0,1]"}},
		{name: "max below initial", p: Policy{Initial: time.Minute, Max: time.Second},
			want: []string{"Max (1s) must not be less than Initial (1m0s)"}},
		{name: "default max below initial", p: Policy{Initial: time.Minute},
			want: []string{"Max (10s) must not be less than Initial (1m0s)"}},
		{name: "huge max", p: Policy{Max: math.MaxInt64}, want: []string{"Max must be at most"}},
		{name: "negative max attempts", p: Policy{MaxAttempts: -1}, want: []string{"MaxAttempts must not be negative"}},
		{name: "every problem reported", p: Policy{Initial: -1, Multiplier: 0.5, Jitter: 2, MaxAttempts: -1},
			want: []string{"Initial", "Multiplier", "Jitter", "MaxAttempts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("Validate() = %v, want an error wrapping ErrInvalidPolicy", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
		})
	}
}
