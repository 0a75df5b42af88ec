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

const (
	// outstanding is how many messages are left unconfirmed before Close.
	outstanding = 5
	// closeCtxTimeout is Close's context in these tests.
	closeCtxTimeout = 500 * time.Millisecond
	// closeSlack is how far past its context Close may return on a loaded
	// machine; Close itself has nothing left to wait for by then. Wide
	// enough for a CI host's scheduling stalls (100ms was not), and still
	// far below closeTimeout, the bound Close would keep if it ignored ctx.
	closeSlack = time.Second
)

// publishOutstanding publishes n messages that the broker will not confirm
// (the caller has cut it off) and returns their ids.
func publishOutstanding(t *testing.T, p *conn.Publisher, queue string, n int) ([]string, []*conn.Confirmation) {
	t.Helper()
	ctx := testCtx(t, defaultTestTimeout)
	var ids []string
	var cs []*conn.Confirmation
	for i := 0; i < n; i++ {
		c, err := p.PublishAsync(ctx, "", queue, persistent("", []byte(fmt.Sprint(i))))
		if err != nil {
			t.Fatalf("PublishAsync: %v", err)
		}
		ids = append(ids, c.MessageID())
		cs = append(cs, c)
	}
	return ids, cs
}

// checkUnconfirmed checks that err reports exactly ids, that every
// confirmation failed with ErrUnconfirmed, and that Close kept to its context.
func checkUnconfirmed(t *testing.T, err error, took time.Duration, ids []string, cs []*conn.Confirmation) {
	t.Helper()
	t.Logf("Close with %d outstanding messages and a %v context returned after %v: %v", len(ids), closeCtxTimeout, took, err)
	var ue *conn.UnconfirmedError
	if !errors.As(err, &ue) {
		t.Fatalf("Close = %v, want an *UnconfirmedError", err)
	}
	if fmt.Sprint(ue.MessageIDs) != fmt.Sprint(ids) {
		t.Errorf("unconfirmed ids %v, want %v", ue.MessageIDs, ids)
	}
	for i, c := range cs {
		select {
		case <-c.Done():
		default:
			t.Fatalf("message %d has not settled after Close", i)
		}
		if err := c.Wait(context.Background()); !errors.Is(err, conn.ErrUnconfirmed) {
			t.Errorf("message %d settled with %v, want ErrUnconfirmed", i, err)
		}
	}
	if took > closeCtxTimeout+closeSlack {
		t.Errorf("Close took %v with a %v context", took, closeCtxTimeout)
	}
}

// TestPublisherCloseDuringPartition: messages written into a partitioned
// network are never confirmed; Publisher.Close must report each of them by
// id within its context, and publishing must fail with ErrClosed after.
func TestPublisherCloseDuringPartition(t *testing.T) {
	b := broker.Shared(t)
	user, pass := testUser(t, b)
	proxy := newProxy(t, b)
	raw := rawConn(t, b)
	queue := declareQueue(t, raw, nil)
	s := start(t, conn.Options{URLs: []string{"amqp://" + user + ":" + pass + "@" + proxy.Addr() + "/"}})
	p := newPublisher(t, s, conn.PublisherOptions{})

	proxy.Blackhole()
	defer proxy.Heal()
	ids, cs := publishOutstanding(t, p, queue, outstanding)
	ctx, cancel := context.WithTimeout(context.Background(), closeCtxTimeout)
	defer cancel()
	begin := time.Now()
	err := p.Close(ctx)
	checkUnconfirmed(t, err, time.Since(begin), ids, cs)
	if err := p.Publish(testCtx(t, defaultTestTimeout), "", queue, persistent("", nil)); !errors.Is(err, conn.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
}

// TestSupervisorCloseDuringMemoryAlarm: during a memory alarm the broker
// stops reading a connection once it publishes, so acks stop and further
// publishes must wait (bounded by their context) instead of writing into the
// blocked socket. Supervisor.Close must settle the unconfirmed messages
// within its context and report them by id.
func TestSupervisorCloseDuringMemoryAlarm(t *testing.T) {
	const (
		maxAttempts = 200
		spacing     = 10 * time.Millisecond
		// settleTime lets acks the broker wrote before it blocked arrive.
		settleTime = 200 * time.Millisecond
	)
	b := broker.Shared(t)
	user, pass := testUser(t, b)
	raw := rawConn(t, b)
	queue := declareQueue(t, raw, nil)
	s := start(t, conn.Options{URLs: []string{b.URLWith(user, pass, "/")}})
	p := newPublisher(t, s, conn.PublisherOptions{})

	alarmCtx := testCtx(t, faultTimeout)
	if err := b.Faults.SetMemoryAlarm(alarmCtx, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
		defer cancel()
		if err := b.Faults.SetMemoryAlarm(ctx, false); err != nil {
			t.Errorf("clear memory alarm: %v", err)
		}
	})
	// The alarm takes effect shortly after the command returns, and the
	// broker blocks the connection at its next publish: publish until a
	// publish has to wait for the block to end.
	var cs []*conn.Confirmation
	var blockedFor time.Duration
	for i := 0; ; i++ {
		if i == maxAttempts {
			t.Fatalf("the broker never blocked the connection in %d publishes", maxAttempts)
		}
		// The context also bounds the message's life: it must outlast
		// the write, so it is not cancelled early.
		pctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		t.Cleanup(cancel)
		begin := time.Now()
		c, err := p.PublishAsync(pctx, "", queue, persistent("", []byte(fmt.Sprint(i))))
		took := time.Since(begin)
		if errors.Is(err, context.DeadlineExceeded) {
			blockedFor = took
			break
		}
		if err != nil {
			t.Fatalf("PublishAsync %d: %v", i, err)
		}
		cs = append(cs, c)
		time.Sleep(spacing)
	}
	t.Logf("a publish while blocked returned DeadlineExceeded after %v; Blocked() = %v", blockedFor, s.Blocked())
	if !s.Blocked() || blockedFor > publishTimeout+closeSlack {
		t.Errorf("blocked %v, publish waited %v; want blocked and about %v", s.Blocked(), blockedFor, publishTimeout)
	}
	time.Sleep(settleTime)
	var ids []string
	var open []*conn.Confirmation
	for _, c := range cs {
		select {
		case <-c.Done():
			if err := c.Wait(context.Background()); err != nil {
				t.Errorf("message %s settled before Close with %v", c.MessageID(), err)
			}
		default:
			ids = append(ids, c.MessageID())
			open = append(open, c)
		}
	}
	if len(ids) == 0 {
		t.Fatal("no message was left unconfirmed by the blocked broker")
	}

	ctx, cancel := context.WithTimeout(context.Background(), closeCtxTimeout)
	defer cancel()
	begin := time.Now()
	err := s.Close(ctx)
	took := time.Since(begin)
	if errors.Is(err, context.DeadlineExceeded) {
		// The broker does not read the connection's close handshake
		// either, and the supervisor gives it the rest of ctx before it
		// closes the socket; Close then returns ctx's error (joined with
		// the report if the publisher made it in time), and the report
		// is its result for the next call.
		t.Logf("Supervisor.Close returned %v after %v; asking again for its result", err, took)
		err = s.Close(testCtx(t, defaultTestTimeout))
	}
	checkUnconfirmed(t, err, took, ids, open)
}
