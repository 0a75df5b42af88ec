package conn

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

const (
	// defaultTestTimeout bounds waits for things that must happen.
	defaultTestTimeout = 5 * time.Second
	// shortTestTimeout bounds waits for things that must not happen.
	shortTestTimeout = 100 * time.Millisecond
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
