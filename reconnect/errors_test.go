package reconnect

import (
	"errors"
	"strings"
	"testing"
)

func TestSentinelErrors(t *testing.T) {
	sentinels := map[string]error{
		"ErrInvalidPolicy": ErrInvalidPolicy,
		"ErrGaveUp":        ErrGaveUp,
		"ErrInterrupted":   ErrInterrupted,
	}
	for name, err := range sentinels {
		t.Run(name, func(t *testing.T) {
			if !strings.HasPrefix(err.Error(), "reconnect: ") {
				t.Errorf("%s = %q, want the package prefix %q", name, err, "reconnect: ")
			}
			for other, e := range sentinels {
				if other != name && errors.Is(err, e) {
					t.Errorf("errors.Is(%s, %s) = true, want distinct sentinels", name, other)
				}
			}
		})
	}
}
