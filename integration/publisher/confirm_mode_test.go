package publisher_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

// confirmModeRounds is how many kill-then-publish rounds to run.
const confirmModeRounds = 5

// TestConfirmModeOnFirstPublishAfterReconnect kills the publisher's
// connection and publishes once the supervisor is Ready again: that very
// first publish must return nil only after the broker's ack (the confirmed
// counter moves with it), and the broker must list the publisher's channel
// in confirm mode. A publish on a channel without confirm mode would never
// be acknowledged, and a wrapper that does not wait for confirm mode would
// return before the ack.
func TestConfirmModeOnFirstPublishAfterReconnect(t *testing.T) {
	b := broker.Shared(t)
	user, pass := testUser(t, b)
	m := newMgmt(t, b)
	raw := rawConn(t, b)
	queue := declareQueue(t, raw, nil)
	received := countQueue(t, raw, queue)
	s := start(t, conn.Options{URLs: []string{b.URLWith(user, pass, "/")}, ConnectionName: t.Name()})
	p := newPublisher(t, s, conn.PublisherOptions{})
	ctx := testCtx(t, 2*time.Minute)

	for round := 0; round < confirmModeRounds; round++ {
		lostBefore := s.Stats().ConnectionsLost
		if err := m.killUser(ctx, user); err != nil {
			t.Fatal(err)
		}
		for s.Stats().ConnectionsLost == lostBefore || s.State() != conn.Ready {
			if err := s.WaitReady(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
		before := s.Stats()
		c, err := p.PublishAsync(ctx, "", queue, persistent("", []byte("first")))
		if err != nil {
			t.Fatalf("round %d: PublishAsync: %v", round, err)
		}
		if err := c.Wait(ctx); err != nil {
			t.Fatalf("round %d: first publish after reconnect: %v", round, err)
		}
		after := s.Stats()
		if after.Confirmed != before.Confirmed+1 || after.Published != before.Published+1 {
			t.Errorf("round %d: confirmed %d->%d, published %d->%d; want one of each",
				round, before.Confirmed, after.Confirmed, before.Published, after.Published)
		}
		if missing := received.waitAll([]string{c.MessageID()}, defaultTestTimeout); len(missing) > 0 {
			t.Errorf("round %d: confirmed message %s never arrived", round, c.MessageID())
		}
	}
	// The management API shows a channel's settings from statistics the
	// channel emits every second while it is busy, so its first entries can
	// predate its confirm.select: a channel in confirm mode shows it after
	// some traffic, one without never does.
	waitStart := time.Now()
	deadline := waitStart.Add(defaultTestTimeout)
	for {
		if err := p.Publish(ctx, "", queue, persistent("", []byte("traffic"))); err != nil {
			t.Fatal(err)
		}
		chans, err := userChannels(ctx, m, user)
		if err != nil {
			t.Fatal(err)
		}
		if len(chans) == 1 && chans[0].Confirm {
			t.Logf("the broker listed the channel in confirm mode after %v", time.Since(waitStart).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the broker lists the channels of %s as %+v, want one in confirm mode",
				defaultTestTimeout, user, chans)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// mgmtChannel is the part of GET /api/channels this test reads.
type mgmtChannel struct {
	Name    string `json:"name"`
	User    string `json:"user"`
	Confirm bool   `json:"confirm"`
}

func userChannels(ctx context.Context, m *mgmt, user string) ([]mgmtChannel, error) {
	resp, err := m.do(ctx, http.MethodGet, "/api/channels")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var all []mgmtChannel
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, err
	}
	var mine []mgmtChannel
	for _, c := range all {
		if c.User == user {
			mine = append(mine, c)
		}
	}
	return mine, nil
}
