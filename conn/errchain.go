package conn

import (
	"strings"
)

// chainError joins a warren error with its cause under one "warren: "
// prefix: "warren: closed: dial amqp://…: refused" rather than
// "warren: closed: warren: dial …". Both stay matchable with errors.Is and
// errors.As.
type chainError struct {
	outer error
	cause error
}

// chain returns outer wrapping cause, with the cause's own "warren: " prefix
// dropped from the text. A nil cause returns outer.
func chain(outer, cause error) error {
	if cause == nil {
		return outer
	}
	return &chainError{outer: outer, cause: cause}
}

// Error joins the two texts, the cause without its prefix.
func (e *chainError) Error() string {
	return e.outer.Error() + ": " + strings.TrimPrefix(e.cause.Error(), "warren: ")
}

// Unwrap returns both errors, for errors.Is and errors.As.
func (e *chainError) Unwrap() []error { return []error{e.outer, e.cause} }
