// Package reconnect decides when the supervisor dials again and whether it
// should.
//
// It has three parts, each usable alone:
//
//   - Policy is plain data describing a capped exponential backoff with
//     jitter; Schedule runs it for one supervisor. The first dial is
//     immediate, and so is the first redial after a connection that worked
//     for a second, whose loss also forgets the failed dials of earlier
//     outages: the wait after a fault ends stays proportionate to that fault.
//     Connections that drop within a second (flaps) earn a penalty that
//     grows to Max within five flaps and that only healthy connected time
//     forgives. With the defaults a Schedule never gives up.
//   - Wait sleeps for a delay the only way warren sleeps: a select on the
//     context, one timer and a kick channel that cuts the wait short.
//   - Classify sorts errors into Transient (retry with backoff) and Permanent
//     (stop and tell the user: bad credentials, unknown vhost, TLS
//     verification failures, invalid URLs), with a short reason for events
//     and logs.
//
// A Schedule is not safe for concurrent use; the goroutine that owns the
// connection owns its Schedule. A supervisor loop looks like this:
//
//	sched, err := reconnect.NewSchedule(policy, nil)
//	if err != nil {
//		return err // the policy is invalid
//	}
//	for {
//		delay, err := sched.Next()
//		if err != nil {
//			return err // wraps reconnect.ErrGaveUp; never with the default policy
//		}
//		// nil: the delay elapsed; ErrInterrupted: kicked, dial now.
//		if err := reconnect.Wait(ctx, delay, kick); err != nil && !errors.Is(err, reconnect.ErrInterrupted) {
//			return err // ctx ended: closing
//		}
//		conn, err := dial(ctx)
//		if err != nil {
//			if reconnect.IsPermanent(err) {
//				return err
//			}
//			continue // a failed dial is simply followed by another Next
//		}
//		sched.Connected()
//		<-conn.NotifyClose(make(chan *amqp.Error, 1))
//		sched.Lost()
//	}
package reconnect
