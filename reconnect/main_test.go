package reconnect

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Named timeouts keep the tests honest on a shared, noisy machine: the long one
// bounds things that must happen, the short one is how long we watch for
// things that must not.
const (
	defaultTestTimeout      = 5 * time.Second
	defaultTestShortTimeout = 50 * time.Millisecond
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
