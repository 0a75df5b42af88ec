package warrentest

import (
	"testing"

	"go.uber.org/goleak"
)

// The kit's broker-facing parts run in examples/service's kit_test.go (and
// warren's own suites use the packages it wraps); these tests cover the
// Ledger, which needs no broker.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
