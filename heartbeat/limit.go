package heartbeat

import (
	"fmt"
	"time"
)

// CheckLimit validates a dead-peer limit against the negotiated AMQP
// heartbeat. It returns nil, or an error wrapping ErrInvalidLimit. It requires
// limit >= RecommendedLimit(heartbeat), 5/4 of the heartbeat.
//
// RabbitMQ's heartbeat sender (rabbit_heartbeat.erl) wakes every heartbeat/2
// and sends a heartbeat frame only if it sent nothing since its previous
// wakeup. A connection that stays idle therefore receives a frame every
// heartbeat/2, but when traffic stops the first gap is longer: if the
// broker's last frame left just after a wakeup, the next wakeup sees that
// frame and stays quiet, and only the one after it sends a heartbeat. A
// healthy broker can thus be silent for up to a whole heartbeat (measured
// against RabbitMQ 3.10 with a 2s heartbeat: gaps after a reply from 1.03s to
// 1.87s, 10 of 25 over 1.5s). A limit at or below one heartbeat would declare
// a healthy peer dead whenever traffic stops at the wrong moment; the floor
// adds a quarter heartbeat of slack for scheduling and network jitter.
//
// The idle cadence is still usable: after a heartbeat frame the next frame is
// due within heartbeat/2, which IdleLimit and Monitor.SetIdleLimit exploit to
// detect a partition of an idle connection sooner.
//
// A heartbeat of 0 means heartbeats are disabled, and any positive limit is
// accepted. Be aware of the consequence: the broker then sends nothing on an
// idle connection, so a Monitor with that limit will close a healthy
// connection that stays idle for longer than the limit.
func CheckLimit(limit, heartbeat time.Duration) error {
	switch {
	case limit <= 0:
		return fmt.Errorf("%w: limit %v must be positive", ErrInvalidLimit, limit)
	case heartbeat < 0:
		return fmt.Errorf("%w: heartbeat %v must not be negative", ErrInvalidLimit, heartbeat)
	case heartbeat == 0:
		return nil
	}
	if floor := RecommendedLimit(heartbeat); limit < floor {
		return fmt.Errorf("%w: limit %v is below %v (5/4 of the %v heartbeat): "+
			"a healthy broker may stay silent for up to one heartbeat after traffic stops",
			ErrInvalidLimit, limit, floor, heartbeat)
	}
	return nil
}

// IdleLimit returns the silence allowed right after a heartbeat frame:
// 3/4·heartbeat, one heartbeat/2 interval of the broker's idle cadence plus a
// quarter heartbeat of slack. It returns 0 when heartbeats are disabled.
func IdleLimit(heartbeat time.Duration) time.Duration {
	if heartbeat <= 0 {
		return 0
	}
	return heartbeat * 3 / 4
}

// RecommendedLimit returns the shortest dead-peer limit that leaves no window
// for false detection: 5/4·heartbeat, the longest silence of a healthy broker
// (one heartbeat, right after traffic stops; see CheckLimit) plus a quarter
// heartbeat of slack. It returns 0 when heartbeats are disabled (heartbeat <= 0),
// since no limit is safe then.
func RecommendedLimit(heartbeat time.Duration) time.Duration {
	if heartbeat <= 0 {
		return 0
	}
	return heartbeat + heartbeat/4
}
