package conn

import (
	"errors"
	"testing"
)

func TestPublisherOptions(t *testing.T) {
	tests := []struct {
		name    string
		in      PublisherOptions
		want    PublisherOptions
		invalid bool
	}{
		{"zero means defaults", PublisherOptions{},
			PublisherOptions{Name: "publisher", MaxInFlight: DefaultMaxInFlight, OnConfirmLost: ConfirmLostRepublish}, false},
		{"values kept", PublisherOptions{Name: "orders", MaxInFlight: 8, OnConfirmLost: ConfirmLostFail, Mandatory: true},
			PublisherOptions{Name: "orders", MaxInFlight: 8, OnConfirmLost: ConfirmLostFail, Mandatory: true}, false},
		{"negative window", PublisherOptions{MaxInFlight: -1}, PublisherOptions{}, true},
		{"unknown policy", PublisherOptions{OnConfirmLost: 5}, PublisherOptions{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.withDefaults()
			err := got.validate()
			if tc.invalid {
				if !errors.Is(err, ErrInvalidOptions) {
					t.Fatalf("validate = %v, want ErrInvalidOptions", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestConfirmLostPolicyString(t *testing.T) {
	for p, want := range map[ConfirmLostPolicy]string{
		ConfirmLostRepublish: "Republish", ConfirmLostFail: "Fail", 9: "ConfirmLostPolicy(9)",
	} {
		if got := p.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(p), got, want)
		}
	}
}
