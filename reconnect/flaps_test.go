package reconnect

import (
	"testing"
	"time"
)

func TestFlapsPenalty(t *testing.T) {
	tests := []struct {
		name      string
		p         Policy
		want      []time.Duration // penalty after 0, 1, 2, ... flaps
		wantLimit int
	}{
		{
			name:      "defaults: none, none, 1s, 3s, 9s, then Max",
			p:         DefaultPolicy(),
			want:      []time.Duration{0, 0, time.Second, 3 * time.Second, 9 * time.Second, 10 * time.Second, 10 * time.Second},
			wantLimit: 5,
		},
		{
			name:      "FlapDelay above Max is capped",
			p:         Policy{Max: time.Second, FlapDelay: time.Minute}.WithDefaults(),
			want:      []time.Duration{0, 0, time.Second, time.Second},
			wantLimit: 2,
		},
		{
			name:      "a long cap takes more flaps to reach",
			p:         Policy{Max: time.Hour}.WithDefaults(),
			want:      []time.Duration{0, 0, time.Second, 3 * time.Second, 9 * time.Second, 27 * time.Second},
			wantLimit: 10, // 3^8 s = 1h49m is the first penalty past an hour
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlaps(tt.p)
			for n, want := range tt.want {
				if got := f.penaltyOf(n); got != want {
					t.Errorf("penaltyOf(%d) = %v, want %v", n, got, want)
				}
			}
			if f.limit != tt.wantLimit {
				t.Errorf("limit = %d, want %d", f.limit, tt.wantLimit)
			}
			for i := 0; i < 3*tt.wantLimit; i++ {
				f.flapped()
			}
			if f.n != tt.wantLimit {
				t.Errorf("after %d flaps n = %d, want the limit %d", 3*tt.wantLimit, f.n, tt.wantLimit)
			}
		})
	}
}

func TestFlapsForgive(t *testing.T) {
	f := newFlaps(DefaultPolicy())
	f.healthy(time.Hour) // nothing to forgive: no credit is banked
	if f.n != 0 || f.credit != 0 {
		t.Fatalf("after health with no flaps: n %d, credit %v; want 0, 0", f.n, f.credit)
	}
	for i := 0; i < 3; i++ {
		f.flapped()
	}
	f.healthy(15 * time.Second) // forgives one, keeps 5 s
	if f.n != 2 || f.credit != 5*time.Second {
		t.Fatalf("after 15s: n %d, credit %v; want 2, 5s", f.n, f.credit)
	}
	f.healthy(5 * time.Second) // with the 5 s kept, forgives another
	if f.n != 1 || f.credit != 0 {
		t.Fatalf("after 5s more: n %d, credit %v; want 1, 0s", f.n, f.credit)
	}
	f.healthy(time.Hour) // all forgiven, and the rest is not banked
	if f.n != 0 || f.credit != 0 {
		t.Fatalf("after an hour: n %d, credit %v; want 0, 0", f.n, f.credit)
	}
}
