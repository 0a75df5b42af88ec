package publisher_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

const (
	// partitionLength is how long the network stays partitioned.
	partitionLength = 2 * time.Second
	// publishTimeout is the context of each publish during the partition.
	publishTimeout = 250 * time.Millisecond
	// publishSlack is how far past its context a publish may return: the
	// issue's bound. It is measured against a bare wait on the same
	// context, so that a stall of the whole (shared, noisy) machine does
	// not count against the publisher.
	publishSlack = 10 * time.Millisecond
	// publishSanity is a loose bound on the whole call, noise included.
	publishSanity = publishTimeout + time.Second
)

// TestPublishDuringPartitionHonoursContext partitions the network for 2 s
// and publishes with a 250 ms context again and again meanwhile: first while
// the supervisor still believes the connection is Ready (the publish is
// written into a socket that goes nowhere), then while it reconnects. Every
// publish must end with DeadlineExceeded at most 10 ms after a bare wait on
// the same context ends. After the heal publishing works again.
func TestPublishDuringPartitionHonoursContext(t *testing.T) {
	b := broker.Shared(t)
	user, pass := testUser(t, b)
	proxy := newProxy(t, b)
	raw := rawConn(t, b)
	queue := declareQueue(t, raw, nil)
	s := start(t, conn.Options{
		URLs:        []string{"amqp://" + user + ":" + pass + "@" + proxy.Addr() + "/"},
		Heartbeat:   time.Second,
		DialTimeout: time.Second,
	})
	p := newPublisher(t, s, conn.PublisherOptions{})
	ctx := testCtx(t, defaultTestTimeout)
	if err := p.Publish(ctx, "", queue, persistent("", []byte("before"))); err != nil {
		t.Fatal(err)
	}

	proxy.Blackhole()
	cut := time.Now()
	var longest, latest time.Duration
	states := map[conn.State]int{}
	n := 0
	for time.Since(cut) < partitionLength {
		states[s.State()]++
		pctx, cancel := context.WithTimeout(ctx, publishTimeout)
		begin := time.Now()
		expired := make(chan time.Time, 1)
		go func() { <-pctx.Done(); expired <- time.Now() }()
		err := p.Publish(pctx, "", queue, persistent("", []byte("during")))
		end := time.Now()
		cancel()
		n++
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("publish %d during the partition = %v, want DeadlineExceeded", n, err)
		}
		longest = max(longest, end.Sub(begin))
		latest = max(latest, end.Sub(<-expired))
	}
	proxy.Heal()
	t.Logf("%d publishes during a %v partition with a %v context: longest call %v, "+
		"at most %v after a bare wait on the same context ended (states seen %v)",
		n, partitionLength, publishTimeout, longest, latest, states)
	if latest > publishSlack {
		t.Errorf("a publish returned %v after its context ended, want <= %v", latest, publishSlack)
	}
	if longest > publishSanity {
		t.Errorf("longest publish took %v, want <= %v", longest, publishSanity)
	}
	if states[conn.Ready] == 0 || states[conn.Reconnecting] == 0 {
		t.Errorf("states seen at publish time %v: want both Ready (before detection) and Reconnecting", states)
	}
	if err := p.Publish(ctx, "", queue, persistent("", []byte("after"))); err != nil {
		t.Fatalf("publish after the heal: %v", err)
	}
}
