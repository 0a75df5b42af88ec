package reconnect

import (
	"context"
	"time"
)

// Wait blocks for d, or until ctx ends, or until kick delivers a value or is
// closed, whichever comes first. It returns nil when d has elapsed, ctx.Err()
// when ctx ends first, and ErrInterrupted when kick fires first. A d of zero
// or less returns nil at once, unless ctx is already done. A nil kick never
// fires.
//
// Wait arms a single timer and stops it on every path, so a supervisor that
// waits out a long backoff costs one timer wakeup, and one that is kicked or
// cancelled leaves nothing behind.
func Wait(ctx context.Context, d time.Duration, kick <-chan struct{}) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-kick:
		return ErrInterrupted
	case <-t.C:
		return nil
	}
}
