package faultproxy

import "strconv"

// Mode is the most disruptive fault a Proxy currently applies. Faults can be
// combined (a blackholed proxy may also refuse new connections and carry
// latency); Mode names the one that dominates, in the order Closed,
// Blackholed, Refusing, Delayed, PassThrough.
type Mode int

const (
	// PassThrough forwards bytes and closes as they arrive.
	PassThrough Mode = iota
	// Delayed forwards everything, each chunk late by the configured latency.
	Delayed
	// Refusing rejects new connections; current ones are unaffected.
	Refusing
	// Blackholed holds bytes and closes in both directions until Heal.
	Blackholed
	// Closed means Close was called; nothing is forwarded any more.
	Closed
)

// String returns a lower-case name for m, such as "pass-through".
func (m Mode) String() string {
	switch m {
	case PassThrough:
		return "pass-through"
	case Delayed:
		return "delayed"
	case Refusing:
		return "refusing"
	case Blackholed:
		return "blackholed"
	case Closed:
		return "closed"
	default:
		return "Mode(" + strconv.Itoa(int(m)) + ")"
	}
}
