package conn

import (
	"fmt"
	"strings"
	"time"
)

// NotReadyError is the error of a wait for a Ready (or publishable)
// connection that ended before one came: WaitReady, Channel, Publish. It
// says how long the caller waited, where the supervisor was, and why it was
// not Ready, so a timeout does not hide its cause. It matches its context's
// error (errors.Is(err, context.DeadlineExceeded)) and the last connection
// error.
type NotReadyError struct {
	// Waited is how long the caller waited.
	Waited time.Duration
	// State is the supervisor's state when the wait ended.
	State State
	// Blocked reports that the connection was Ready but blocked by the broker.
	Blocked bool
	// Attempt counts the dials that failed in a row since the last Ready
	// connection (0 while the first dial is under way).
	Attempt int
	// Cause is the last connection error (redacted), or nil.
	Cause error
	// Ctx is the context's error.
	Ctx error
}

// Error reads like "warren: not ready after 5s (Reconnecting, attempt 7):
// dial amqp://app:***@rabbit-1:5672/: connection refused".
func (e *NotReadyError) Error() string {
	var b strings.Builder
	b.WriteString("warren: ")
	if e.Blocked {
		b.WriteString("connection blocked by the broker")
	} else {
		b.WriteString("not ready")
	}
	fmt.Fprintf(&b, " after %v (%v", e.Waited.Round(time.Millisecond), e.State)
	if e.Attempt > 0 {
		fmt.Fprintf(&b, ", attempt %d", e.Attempt)
	}
	b.WriteString(")")
	switch {
	case e.Cause != nil:
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Cause.Error(), "warren: "))
	case e.Ctx != nil:
		b.WriteString(": ")
		b.WriteString(e.Ctx.Error())
	}
	return b.String()
}

// Unwrap returns the context's error and the cause.
func (e *NotReadyError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Ctx}
	}
	return []error{e.Ctx, e.Cause}
}

// notReady builds the error of a wait that began at start and whose ctx
// ended with ctxErr.
func (s *Supervisor) notReady(start time.Time, ctxErr error) error {
	s.mu.Lock()
	st, cause := s.state, s.err
	s.mu.Unlock()
	return &NotReadyError{
		Waited:  time.Since(start),
		State:   st,
		Blocked: st == Ready && s.Blocked(),
		Attempt: int(s.streak.Load()),
		Cause:   cause,
		Ctx:     ctxErr,
	}
}
