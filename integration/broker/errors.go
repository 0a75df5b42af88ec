package broker

import "errors"

// Sentinel errors returned (wrapped with %w) by this package.
var (
	// ErrUnsupported means a fault cannot be injected on the broker Find chose;
	// the wrapping error names the fault and says why.
	ErrUnsupported = errors.New("broker: fault not supported here")
	// ErrNoBroker means Find found no way to reach or start a broker.
	ErrNoBroker = errors.New("broker: no broker available")
	// ErrNoConnection means no broker connection matched a CloseConnection name.
	ErrNoConnection = errors.New("broker: no matching connection")
	// ErrClosed means the Broker was closed before the call.
	ErrClosed = errors.New("broker: closed")
	// ErrBootFailed means a broker node Find started did not come up.
	ErrBootFailed = errors.New("broker: node failed to start")
)
