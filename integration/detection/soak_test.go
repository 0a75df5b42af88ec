package detection_test

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/integration/testkit"
)

func soakDuration(t *testing.T) time.Duration {
	v := os.Getenv("WARREN_SOAK")
	if v == "" {
		// Set by make test (60s, run on its own after the suite, which it
		// must not share the machine with: it loads it on purpose) and by
		// make soak (10m).
		t.Skip("opt-in: WARREN_SOAK=60s (make test sets it) or make soak runs the no-false-alarm soak")
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 20*time.Second {
		t.Fatalf("WARREN_SOAK=%q: want a Go duration of at least 20s", v)
	}
	return d
}

// TestSoakNoFalseAlarm is target 2 of issue 16: a connection that publishes
// with confirms as fast as the broker takes them (so RabbitMQ's credit flow
// throttles it), with consumers holding prefetch windows, one of them slow
// to ack, in a process that collects garbage constantly (GOGC=10 and a
// churning heap), through two memory alarms, must never be declared dead.
// It logs the longest gap a reply was owed with nothing read, the figure the
// owed limit must stay above, and the margin kept.
func TestSoakNoFalseAlarm(t *testing.T) {
	soak := soakDuration(t)
	b := broker.Shared(t)
	user, pass := testkit.TestUser(t, b, faultTimeout)
	// The default heartbeat: target 2 is about the defaults users get.
	s, rec := testkit.Start(t, conn.Options{
		URLs: []string{b.URLWith(user, pass, "/")},
	})
	if err := waitReady(s); err != nil {
		t.Fatal(err)
	}
	fast, slow := loadQueue("detection-soak-fast"), loadQueue("detection-soak-slow")
	declare(t, s, fast, slow)
	consume(t, s, fast, 100, 0)
	consume(t, s, slow, 20, 2*time.Millisecond)
	body := make([]byte, 2048)
	loads := []*load{
		startLoad(t, s, fast.Name, 0, 4, body),
		startLoad(t, s, slow.Name, 0, 2, body),
	}

	old := debug.SetGCPercent(10)
	defer debug.SetGCPercent(old)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); churn(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	// Two memory alarms, each raised for a tenth of the soak, a third and
	// two thirds of the way through.
	begin := time.Now()
	var owed conn.OwedReport
	observe := func() {
		if r := s.Owed(); r.LongestGap >= owed.LongestGap {
			if r.LongestGap > owed.LongestGap+owed.LongestGap/4 {
				t.Logf("%v in: longest reply gap while owed now %v (blocked: %v)", time.Since(begin).Round(time.Second), r.LongestGap, s.Blocked())
			}
			owed = r
		}
	}
	var stillBlocked int
	for _, at := range []time.Duration{soak / 3, 2 * soak / 3} {
		sleepUntil(begin.Add(at), observe)
		raise := time.Now()
		if err := b.Faults.SetMemoryAlarm(faultCtx(t), true); err != nil {
			t.Fatal(err)
		}
		sleepUntil(raise.Add(soak/10), observe)
		if err := b.Faults.SetMemoryAlarm(faultCtx(t), false); err != nil {
			t.Fatal(err)
		}
		if s.Blocked() {
			stillBlocked++
		}
	}
	sleepUntil(begin.Add(soak), observe)
	observe()
	for _, l := range loads {
		l.stop()
	}
	cancel()
	wg.Wait()

	st := s.Stats()
	limit := conn.DefaultOptions().OwedReplyLimit // the floor; the limit in force adapts
	var gcPause time.Duration
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	for _, p := range ms.PauseNs {
		if d := time.Duration(p); d > gcPause {
			gcPause = d
		}
	}
	t.Logf("soak %v: published %d, confirmed %d, blocked %d times (%d still blocked at a lift), dead peers %d, reconnects %d; "+
		"longest reply gap while owed %v; owed limit %v (margin %v, x%.1f); verdicts held: %d late timer, %d unread data; probes %d; GC cycles %d, longest recent GC pause %v",
		soak, st.Published, st.Confirmed, st.BlockedTimes, stillBlocked, st.DeadPeers, st.Reconnects,
		owed.LongestGap, limit, limit-owed.LongestGap, float64(limit)/float64(max(owed.LongestGap, time.Microsecond)),
		owed.LateDeferrals, owed.UnreadDeferrals, owed.Probes, ms.NumGC, gcPause)
	if dp := deadPeers(rec.Snapshot()); len(dp) > 0 {
		t.Errorf("%d false dead-peer events on a healthy broker; first: %v", len(dp), dp[0].Err)
	}
	if st.Reconnects != 0 {
		t.Errorf("reconnects = %d on a healthy broker, want 0", st.Reconnects)
	}
	if st.BlockedTimes < 2 {
		t.Errorf("the connection was blocked %d times, want 2 (one per memory alarm)", st.BlockedTimes)
	}
	if st.Confirmed == 0 {
		t.Error("no confirms: the load did not run")
	}
}

// sleepUntil waits for t, calling observe every second meanwhile.
func sleepUntil(t time.Time, observe func()) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.NewTimer(time.Until(t))
	defer end.Stop()
	for {
		select {
		case <-end.C:
			return
		case <-tick.C:
			observe()
		}
	}
}

// churnEvery and churnBytes pace the garbage churn: 512 KiB of small
// objects every 10 ms (50 MiB/s), which at GOGC=10 over a 16 MiB live heap
// is dozens of collections a second. It is paced rather than flat out: on a
// two-core machine shared with the broker, a goroutine allocating without
// pause takes a core from RabbitMQ, and the test would measure a starved
// broker, not a GC-heavy client.
const (
	churnEvery = 10 * time.Millisecond
	churnBytes = 512 << 10
)

// churn keeps the garbage collector busy until ctx ends: a live heap of
// many small objects to mark, and a steady stream of garbage.
func churn(ctx context.Context) {
	live := make([][]byte, 1<<16) // 65,536 objects of 256 bytes: 16 MiB to mark
	for i := range live {
		live[i] = make([]byte, 256)
	}
	tick := time.NewTicker(churnEvery)
	defer tick.Stop()
	for i := 0; ; {
		select {
		case <-ctx.Done():
			runtime.KeepAlive(live)
			return
		case <-tick.C:
		}
		for n := 0; n < churnBytes; n += 256 {
			live[i%len(live)] = make([]byte, 256)
			i++
		}
	}
}

func faultCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
	t.Cleanup(cancel)
	return ctx
}
