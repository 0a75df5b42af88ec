package detection_test

import (
	"errors"
	"testing"
	"time"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/heartbeat"
	"github.com/warrenmq/warren/integration/broker"
	"github.com/warrenmq/warren/integration/faultproxy"
	"github.com/warrenmq/warren/integration/testkit"
)

// TestPartitionUnderLoadOwedReplies partitions a connection that publishes
// 250 confirmed messages a second at a 1 s heartbeat, three times. Each time
// the dead peer must be declared by the replies-owed rule (the error names
// owed replies), well before the 1.25 s silence limit could have fired.
func TestPartitionUnderLoadOwedReplies(t *testing.T) {
	const partitions = 3
	b := broker.Shared(t)
	user, pass := testkit.TestUser(t, b, faultTimeout)
	p, err := faultproxy.New(b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s, rec := testkit.Start(t, conn.Options{
		URLs:        []string{"amqp://" + user + ":" + pass + "@" + p.Addr() + "/"},
		Heartbeat:   time.Second,
		DialTimeout: 2 * time.Second,
	})
	q := loadQueue("detection-partition")
	declare(t, s, q)
	consume(t, s, q, 50, 0)
	l := startLoad(t, s, q.Name, 250, 0, make([]byte, 256))

	from := 0
	for i := 0; i < partitions; i++ {
		if err := waitReady(s); err != nil {
			t.Fatalf("partition %d: WaitReady: %v", i, err)
		}
		// Steady traffic with confirms flowing before the cut.
		time.Sleep(1500 * time.Millisecond)
		p.Blackhole()
		cut := time.Now()
		dead, next := rec.WaitFor(t, from, defaultTestTimeout, "DeadPeer", testkit.Kind(conn.EventDeadPeer))
		took := dead.Time.Sub(cut)
		var dp *heartbeat.DeadPeerError
		if !errors.As(dead.Err, &dp) {
			t.Fatalf("partition %d: DeadPeer event carries %v, want a *heartbeat.DeadPeerError", i, dead.Err)
		}
		t.Logf("partition %d: dead peer %v after the cut: %v", i, took, dp)
		if dp.Owed == 0 {
			t.Errorf("partition %d: declared by silence (%v), want the replies-owed rule while confirms are owed", i, dp)
		}
		if silenceLimit := heartbeat.RecommendedLimit(time.Second); dp.Silence >= silenceLimit {
			t.Errorf("partition %d: silence %v reached the silence limit %v: the owed rule did not act first", i, dp.Silence, silenceLimit)
		}
		// A partition lasts: dials fail for longer than the silence limit, so
		// the verdict is not taken back for the next connection.
		time.Sleep(2 * time.Second)
		p.Heal()
		from = next
	}
	// The messages written before the last cut are republished once the
	// connection returns; the load's stop waits for their confirms.
	if err := waitReady(s); err != nil {
		t.Fatalf("after the last partition: WaitReady: %v", err)
	}
	l.stop()
}
