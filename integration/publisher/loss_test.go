package publisher_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

// The loss test's load: the figures.
const (
	lossMessages    = 20000
	lossRate        = 2000 // messages per second
	lossWindow      = 256
	lossKillEvery   = 700 * time.Millisecond
	lossMinKills    = 14
	lossTestTimeout = 3 * time.Minute
	// lossQuiet is how long the counting consumer may see nothing new
	// before the ids still missing count as lost.
	lossQuiet = 15 * time.Second
)

// TestNoLossUnderKills publishes 20,000 unique ids at about 2,000/s with a
// window of 256 while the publisher's connections are killed every 700 ms,
// and counts the ids on a connection that is never killed. No id the broker
// acknowledged may be missing, and with the default republish policy no id
// may be missing at all; duplicates are expected and reported.
func TestNoLossUnderKills(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the URL the publisher dials and the kill function.
		setup func(t *testing.T, b *broker.Broker, user, pass string) (url string, kill func(context.Context) error)
	}{
		{"broker closes connections", func(t *testing.T, b *broker.Broker, user, pass string) (string, func(context.Context) error) {
			m := newMgmt(t, b)
			return b.URLWith(user, pass, "/"), func(ctx context.Context) error { return m.killUser(ctx, user) }
		}},
		{"proxy resets connections", func(t *testing.T, b *broker.Broker, user, pass string) (string, func(context.Context) error) {
			p := newProxy(t, b)
			return "amqp://" + user + ":" + pass + "@" + p.Addr() + "/", func(context.Context) error { p.Reset(); return nil }
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := broker.Shared(t)
			user, pass := testUser(t, b)
			url, kill := tc.setup(t, b, user, pass)
			raw := rawConn(t, b)
			queue := declareQueue(t, raw, nil)
			received := countQueue(t, raw, queue)

			s := start(t, conn.Options{URLs: []string{url}, ConnectionName: t.Name()})
			p := newPublisher(t, s, conn.PublisherOptions{MaxInFlight: lossWindow})
			ctx := testCtx(t, lossTestTimeout)

			ids := make([]string, lossMessages)
			for i := range ids {
				ids[i] = fmt.Sprintf("loss-%05d", i)
			}
			body := make([]byte, 100)

			// The killer runs until the producer is done and the
			// publisher's connection has been lost lossMinKills times.
			produced := make(chan struct{})
			killerDone := make(chan struct{})
			var killStart, killEnd time.Time
			var killErrs []error
			go func() {
				defer close(killerDone)
				tick := time.NewTicker(lossKillEvery)
				defer tick.Stop()
				killStart = time.Now()
				for {
					select {
					case <-tick.C:
					case <-ctx.Done():
						return
					}
					select {
					case <-produced:
						if s.Stats().ConnectionsLost >= lossMinKills {
							killEnd = time.Now()
							return
						}
					default:
					}
					if err := kill(ctx); err != nil {
						killErrs = append(killErrs, err)
					}
				}
			}()

			confs := make([]*conn.Confirmation, 0, lossMessages)
			start := time.Now()
			for i, id := range ids {
				if d := time.Until(start.Add(time.Duration(i) * time.Second / lossRate)); d > 0 {
					time.Sleep(d)
				}
				c, err := p.PublishAsync(ctx, "", queue, persistent(id, body))
				if err != nil {
					t.Fatalf("PublishAsync %s: %v", id, err)
				}
				confs = append(confs, c)
			}
			publishTime := time.Since(start)
			close(produced)

			confirmed := 0
			var acked []string
			failures := map[string]int{}
			var firstErr error
			for i, c := range confs {
				err := c.Wait(ctx)
				if err == nil {
					confirmed++
					acked = append(acked, ids[i])
					continue
				}
				failures[kindOf(err)]++
				if firstErr == nil {
					firstErr = err
				}
			}
			<-killerDone
			for _, err := range killErrs {
				t.Errorf("kill: %v", err)
			}

			missingAcked := received.waitAll(acked, lossQuiet)
			missingAll := received.waitAll(ids, time.Second)
			unique, deliveries := received.counts()
			st := s.Stats()
			kills := st.ConnectionsLost
			interval := time.Duration(0)
			if kills > 0 && !killEnd.IsZero() {
				interval = killEnd.Sub(killStart) / time.Duration(kills)
			}
			t.Logf("published %d in %v (%.0f/s), confirmed %d, received %d unique (%d deliveries), lost %d, "+
				"acked-but-never-received %d, duplicates %d, kills %d, achieved kill interval %v",
				len(ids), publishTime.Round(time.Millisecond), float64(len(ids))/publishTime.Seconds(), confirmed,
				unique, deliveries, len(missingAll), len(missingAcked), deliveries-unique, kills, interval.Round(time.Millisecond))
			t.Logf("stats: published %d confirmed %d nacked %d republished %d returned %d connections %d",
				st.Published, st.Confirmed, st.Nacked, st.Republished, st.Returned, st.Connections)

			if len(missingAcked) > 0 {
				t.Errorf("%d ids acked by the broker but never received, e.g. %v", len(missingAcked), first(missingAcked, 5))
			}
			if confirmed != len(ids) {
				t.Errorf("%d of %d confirmed; failures by kind %v, first %v", confirmed, len(ids), failures, firstErr)
			}
			if len(missingAll) > 0 {
				t.Errorf("%d ids lost, e.g. %v", len(missingAll), first(missingAll, 5))
			}
			if kills < lossMinKills {
				t.Errorf("only %d kills, want at least %d", kills, lossMinKills)
			}
		})
	}
}

func kindOf(err error) string {
	for _, k := range []error{conn.ErrConfirmLost, conn.ErrNacked, conn.ErrReturned, conn.ErrUnconfirmed,
		conn.ErrClosed, context.DeadlineExceeded, context.Canceled} {
		if errors.Is(err, k) {
			return k.Error()
		}
	}
	return "other"
}

func first(ids []string, n int) []string {
	if len(ids) > n {
		return ids[:n]
	}
	return ids
}
