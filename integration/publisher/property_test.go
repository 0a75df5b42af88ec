package publisher_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

const (
	// realPropOps is how many operations one run performs.
	realPropOps = 400
	// realPropWindow is the publisher's MaxInFlight.
	realPropWindow = 32
)

// realKind is what a generated message is, and so what its outcome must be.
type realKind int

const (
	realRouted     realKind = iota // to a durable queue: nil
	realUnroutable                 // to amq.direct with no binding: *ReturnedError
	realMissing                    // to a missing exchange: the broker's 404, alone
	realOversize                   // a field over 255 bytes: ErrInvalidMessage
	realForged                     // a user_id not the connection's: ErrInvalidMessage
	realBadHeader                  // a header AMQP cannot carry: ErrInvalidMessage
	realKinds
)

var realKindNames = [realKinds]string{"routed", "unroutable", "missing exchange", "oversize field", "forged user_id", "bad header"}
var realKindWeights = [realKinds]int{60, 20, 3, 6, 6, 5}

// TestPublisherPropertyRealBroker runs random interleavings of publishes
// (routed, unroutable mandatory, to a missing exchange, oversize, forged
// user_id, bad header; duplicate, empty and unique ids), connection kills
// by the broker (320) and a final Close against RabbitMQ, and checks: every
// Confirmation settles; nil only for a message the queue received; a
// *ReturnedError exactly for the unroutable ones; the message to a missing
// exchange fails alone with 404; no innocent message fails; no connection is
// lost but those killed; duplicates at most a window per kill or channel
// close. Failures name the seed; WARREN_PUB_SEED=N replays one.
func TestPublisherPropertyRealBroker(t *testing.T) {
	seeds := []int64{time.Now().UnixNano(), time.Now().UnixNano() + 1}
	if env, err := strconv.ParseInt(os.Getenv("WARREN_PUB_SEED"), 10, 64); err == nil {
		seeds = []int64{env}
	}
	b := broker.Shared(t)
	t.Run("the broker refuses a forged user_id", func(t *testing.T) { checkForgedUserRefused(t, b) })
	for _, seed := range seeds {
		seed := seed
		t.Run(strconv.FormatInt(seed, 10), func(t *testing.T) { runRealProperty(t, b, seed) })
	}
}

type realMsg struct {
	kind realKind
	body string
	c    *conn.Confirmation
}

func runRealProperty(t *testing.T, b *broker.Broker, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("seed %d: "+format, append([]any{seed}, args...)...)
	}
	user, pass := testUser(t, b)
	m := newMgmt(t, b)
	raw := rawConn(t, b)
	queue := declareQueue(t, raw, nil)
	bodies := countQueueBy(t, raw, queue, func(d amqp.Delivery) string { return string(d.Body) })
	var lossMu sync.Mutex
	var unforced []error // connection losses other than the test's kills (320)
	s := start(t, conn.Options{URLs: []string{b.URLWith(user, pass, "/")}, ConnectionName: t.Name(),
		OnEvent: func(e conn.Event) {
			var ae *amqp.Error
			if e.Kind == conn.EventConnectionLost && !(errors.As(e.Err, &ae) && ae.Code == amqp.ConnectionForced) {
				lossMu.Lock()
				unforced = append(unforced, e.Err)
				lossMu.Unlock()
			}
		}})
	p := newPublisher(t, s, conn.PublisherOptions{MaxInFlight: realPropWindow, Mandatory: true})
	ctx := testCtx(t, 3*time.Minute)

	var msgs []*realMsg
	var counts [realKinds]int
	styles := map[string]int{}
	kills := 0
	dupIDs := []string{"order-1", "order-2"}
	total := 0
	for _, w := range realKindWeights {
		total += w
	}
	for op := 0; op < realPropOps; op++ {
		if r := rng.Intn(100); r < 3 {
			// A kill while the supervisor reconnects finds no connection
			// to close: kill once Ready, again until the loss is seen.
			lost := s.Stats().ConnectionsLost
			for s.Stats().ConnectionsLost == lost {
				if err := s.WaitReady(ctx); err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				if err := m.killUser(ctx, user); err != nil {
					t.Fatal(err)
				}
				for end := time.Now().Add(time.Second); s.Stats().ConnectionsLost == lost && time.Now().Before(end); {
					time.Sleep(time.Millisecond)
				}
			}
			kills++
			continue
		} else if r < 8 && len(msgs) > 0 {
			_ = msgs[rng.Intn(len(msgs))].c.Wait(ctx)
			continue
		}
		kind := realKind(0)
		for w := rng.Intn(total); w >= realKindWeights[kind]; kind++ {
			w -= realKindWeights[kind]
		}
		counts[kind]++
		rm := &realMsg{kind: kind, body: fmt.Sprintf("%d-%d", seed, op)}
		msg := amqp.Publishing{Body: []byte(rm.body), DeliveryMode: amqp.Persistent}
		switch rng.Intn(3) {
		case 0:
			styles["duplicate"]++
			msg.MessageId = dupIDs[rng.Intn(len(dupIDs))]
		case 1:
			styles["empty"]++
		default:
			styles["unique"]++
			msg.MessageId = "id-" + rm.body
		}
		exchange, key := "", queue
		switch kind {
		case realUnroutable:
			exchange, key = "amq.direct", "nowhere"
		case realMissing:
			exchange = "warren-no-such-exchange"
		case realOversize:
			msg.CorrelationId = strings.Repeat("c", 300)
		case realForged:
			msg.UserId = "mallory"
		case realBadHeader:
			msg.Headers = amqp.Table{"n": uint64(7)}
		}
		c, err := p.PublishAsync(ctx, exchange, key, msg)
		if kind >= realOversize {
			if !errors.Is(err, conn.ErrInvalidMessage) {
				fail("%s: PublishAsync = %v, want ErrInvalidMessage", realKindNames[kind], err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("seed %d: PublishAsync: %v", seed, err)
		}
		rm.c = c
		msgs = append(msgs, rm)
	}
	var outcomes = map[string]int{}
	for _, rm := range msgs {
		err := rm.c.Wait(ctx)
		var re *conn.ReturnedError
		var ae *amqp.Error
		switch {
		case err == nil:
			outcomes["nil"]++
		case errors.As(err, &re):
			outcomes["returned"]++
		case errors.As(err, &ae):
			outcomes[fmt.Sprintf("channel error %d", ae.Code)]++
		default:
			outcomes["other"]++
		}
		name := realKindNames[rm.kind] + " " + rm.body
		switch rm.kind {
		case realRouted:
			if err != nil {
				fail("innocent %s failed: %v", name, err)
			}
		case realUnroutable:
			if !errors.As(err, &re) {
				fail("%s = %v, want a *ReturnedError", name, err)
			}
		case realMissing:
			if !errors.As(err, &ae) || ae.Code != amqp.NotFound || errors.Is(err, conn.ErrConfirmLost) {
				fail("%s = %v, want the broker's 404 alone", name, err)
			}
		}
	}
	closeCtx, cancel := context.WithTimeout(ctx, defaultTestTimeout)
	defer cancel()
	if err := p.Close(closeCtx); err != nil {
		fail("Close after every message settled = %v", err)
	}
	var routed []string
	for _, rm := range msgs {
		if rm.kind == realRouted {
			routed = append(routed, rm.body)
		}
	}
	if missing := bodies.waitAll(routed, lossQuiet); len(missing) > 0 {
		fail("%d confirmed messages never reached the queue, e.g. %v", len(missing), first(missing, 5))
	}
	dups, strays := bodies.duplicatesAndStrays(routed)
	st := s.Stats()
	if strays > 0 {
		fail("%d messages reached the queue that should not have (returned or refused)", strays)
	}
	lossMu.Lock()
	if len(unforced) > 0 || st.ConnectionsLost < uint64(kills) {
		fail("%d connections lost, %d killed; lost otherwise: %v", st.ConnectionsLost, kills, unforced)
	}
	lossMu.Unlock()
	if bound := realPropWindow * (kills + counts[realMissing]); dups > bound {
		fail("%d duplicates, want at most %d (window %d x (%d kills + %d channel closes))",
			dups, bound, realPropWindow, kills, counts[realMissing])
	}
	t.Logf("seed %d: published %v (kinds %v), ids %v, kills %d, outcomes %v, duplicates %d, republished %d, connections lost %d",
		seed, counts, realKindNames, styles, kills, outcomes, dups, st.Republished, st.ConnectionsLost)
}

// duplicatesAndStrays counts deliveries beyond the first of each routed
// body, and deliveries of bodies that were not routed.
func (k *counter) duplicatesAndStrays(routed []string) (dups, strays int) {
	want := make(map[string]bool, len(routed))
	for _, b := range routed {
		want[b] = true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for b, n := range k.seen {
		if !want[b] {
			strays += n
			continue
		}
		dups += n - 1
	}
	return dups, strays
}

// checkForgedUserRefused shows why the publisher refuses a foreign UserId
// before writing it: RabbitMQ closes the channel with 406 on it.
func checkForgedUserRefused(t *testing.T, b *broker.Broker) {
	ch, err := rawConn(t, b).Channel()
	if err != nil {
		t.Fatal(err)
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Publish("", "warren-nowhere", false, false, amqp.Publishing{UserId: "mallory"}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-closed:
		if e == nil || e.Code != amqp.PreconditionFailed {
			t.Fatalf("channel closed with %v, want 406", e)
		}
		t.Logf("a raw publish with user_id mallory: %v", e)
	case <-time.After(defaultTestTimeout):
		t.Fatal("the broker accepted a forged user_id")
	}
}
