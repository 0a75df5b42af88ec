package conn

import "errors"

// Sentinel errors of topologies and consumers; match them with errors.Is.
// (They sit apart from errors.go only because that file has another owner;
// they belong in its block.)
var (
	// ErrInvalidTopology wraps every problem DeclareTopology finds in a Topology.
	ErrInvalidTopology = errors.New("warren: invalid topology")
	// ErrInvalidConsumerOptions wraps every problem Consume finds in its
	// handler or ConsumerOptions.
	ErrInvalidConsumerOptions = errors.New("warren: invalid consumer options")
	// ErrQueueNotDeclared is the error of a consumer on a server-named queue
	// that no topology has declared on the current connection yet.
	ErrQueueNotDeclared = errors.New("warren: server-named queue not declared on this connection")
)
