package conn

import "strconv"

// State is where a Supervisor is in its lifecycle. Blocked (a broker resource
// alarm) is not a state but a separate flag; see Supervisor.Blocked.
type State int

const (
	// Connecting is the state from New until the first connection is ready.
	Connecting State = iota
	// Ready means a connection is open and every ready hook has run on it.
	Ready
	// Reconnecting means a connection was lost and the supervisor is dialing again.
	Reconnecting
	// Closing means Close was called and teardown is under way.
	Closing
	// Closed is terminal: Close finished, or a permanent error stopped the supervisor.
	Closed
)

// String returns the state's name, such as "Ready".
func (s State) String() string {
	switch s {
	case Connecting:
		return "Connecting"
	case Ready:
		return "Ready"
	case Reconnecting:
		return "Reconnecting"
	case Closing:
		return "Closing"
	case Closed:
		return "Closed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}
