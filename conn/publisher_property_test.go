package conn

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// pubSeed replays one run of TestPublisherProperty; so does WARREN_PUB_SEED.
var pubSeed = flag.Int64("seed", 0, "replay TestPublisherProperty with this seed")

const (
	// pubPropRuns and pubPropOps size the property test: it must stay well
	// under a minute under -race on a loaded 2-core machine.
	pubPropRuns = 16
	pubPropOps  = 160
	// pubPropStuck bounds how long a run may wait for messages to settle.
	pubPropStuck = 20 * time.Second
)

// pubKind is what a generated message is, and so what its outcome must be.
type pubKind int

const (
	pubRouted     pubKind = iota // acked: nil
	pubUnroutable                // returned then acked: *ReturnedError when mandatory
	pubNacked                    // always nacked: ErrNacked once the republications are spent
	pubNackedOnce                // nacked 1 to NackRepublishes times, then acked: nil
	pubPoison                    // the broker closes the channel (406): fails alone with it
	pubExpiring                  // its context ends a few operations later: nil, or its context's error
	pubOversize                  // a field over 255 bytes: ErrInvalidMessage at once
	pubForged                    // a user_id not the connection's: ErrInvalidMessage at once
	pubBadHeader                 // a header value AMQP cannot carry: ErrInvalidMessage at once
	pubKinds
)

var pubKindNames = [pubKinds]string{"routed", "unroutable", "nacked", "transient nack", "poison", "expiring", "oversize field", "forged user_id", "bad header"}

// pubKindWeights is how often each kind is published, out of their sum.
var pubKindWeights = [pubKinds]int{45, 15, 5, 10, 4, 8, 8, 5, 8}

// pubPropCounts counts what the runs exercised, for the closing table.
type pubPropCounts struct {
	mu                                  sync.Mutex
	kinds                               [pubKinds]int
	idStyles                            map[string]int
	kills, releases, waits, chanCloses  int
	drainCloses, cutCloses, supCloses   int
	duplicates, unconfirmed, republishd int
	outcomes                            map[string]int
}

func (c *pubPropCounts) add(f func(c *pubPropCounts)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}

// TestPublisherProperty runs random interleavings of publishes (routed,
// unroutable, nacked, channel-closing, oversize, forged user_id and bad
// header messages, with duplicate, empty and unique ids), held and released
// acks, connection kills and a final Close against the fake broker, and
// checks on every run: each Confirmation settles exactly once; nil only for a
// message the broker acked; a *ReturnedError exactly for an unroutable
// mandatory message; no innocent message fails; no connection is lost but
// those the test killed; duplicates at most a window per kill or channel
// close. Every failure names the seed; -seed N or WARREN_PUB_SEED=N replays
// one run, and WARREN_PUB_RUNS=N runs N seeds.
func TestPublisherProperty(t *testing.T) {
	runs := pubPropRuns
	if n, err := strconv.Atoi(os.Getenv("WARREN_PUB_RUNS")); err == nil && n > 0 {
		runs = n // a longer hunt
	}
	seeds := make([]int64, runs)
	base := time.Now().UnixNano()
	for i := range seeds {
		seeds[i] = base + int64(i)
	}
	if env, err := strconv.ParseInt(os.Getenv("WARREN_PUB_SEED"), 10, 64); err == nil {
		seeds = []int64{env}
	}
	if *pubSeed != 0 {
		seeds = []int64{*pubSeed}
	}
	counts := &pubPropCounts{idStyles: map[string]int{}, outcomes: map[string]int{}}
	for _, seed := range seeds {
		seed := seed
		t.Run(strconv.FormatInt(seed, 10), func(t *testing.T) { runPubProperty(t, seed, counts) })
	}
	var b strings.Builder
	fmt.Fprintf(&b, "property test: %d runs\n", len(seeds))
	for k := pubKind(0); k < pubKinds; k++ {
		fmt.Fprintf(&b, "  publish %-16s %6d\n", pubKindNames[k], counts.kinds[k])
	}
	for _, style := range []string{"unique", "duplicate", "empty"} {
		fmt.Fprintf(&b, "  id %-21s %6d\n", style, counts.idStyles[style])
	}
	fmt.Fprintf(&b, "  connection kills %13d\n  channel closes (406) %9d\n  ack releases %17d\n  waits %24d\n",
		counts.kills, counts.chanCloses, counts.releases, counts.waits)
	fmt.Fprintf(&b, "  close after drain %12d\n  close cut short %14d\n  (of them Supervisor.Close) %3d\n",
		counts.drainCloses, counts.cutCloses, counts.supCloses)
	fmt.Fprintf(&b, "  republished %18d\n  duplicates at broker %9d\n", counts.republishd, counts.duplicates)
	var outs []string
	for k := range counts.outcomes {
		outs = append(outs, k)
	}
	sort.Strings(outs)
	for _, k := range outs {
		fmt.Fprintf(&b, "  outcome %-30s %6d\n", k, counts.outcomes[k])
	}
	t.Log(b.String())
}

// pubPropMsg is one generated message and what became of it.
type pubPropMsg struct {
	kind pubKind
	body string
	c    *Confirmation
}

func runPubProperty(t *testing.T, seed int64, counts *pubPropCounts) {
	rng := rand.New(rand.NewSource(seed))
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("seed %d: "+format, append([]any{seed}, args...)...)
	}
	window := 4 + rng.Intn(29)
	mandatory := rng.Intn(3) != 0
	holdP := rng.Intn(60) // percent of routed messages whose ack is held

	var mu sync.Mutex // guards kinds, nacksOf, nacksLeft, chanCloses and holdRng
	kinds := map[string]pubKind{}
	nacksOf := map[string]int{}   // how many nacks a transient nack gets
	nacksLeft := map[string]int{} // of them, still to send
	nacksSent := 0
	holdRng := rand.New(rand.NewSource(^seed))
	chanCloses := 0
	b := startPubFakeBroker(t)
	b.setDecide(func(m pubFakeMsg) pubFakeAction {
		mu.Lock()
		defer mu.Unlock()
		switch kinds[m.Body] {
		case pubUnroutable:
			if m.Mandatory {
				return pubFakeReturn
			}
		case pubNacked:
			nacksSent++
			return pubFakeNack
		case pubNackedOnce, pubExpiring:
			if nacksLeft[m.Body] > 0 {
				nacksLeft[m.Body]--
				nacksSent++
				return pubFakeNack
			}
		case pubPoison:
			chanCloses++
			return pubFakeReject
		}
		if holdRng.Intn(100) < holdP {
			return pubFakeHold
		}
		return pubFakeAck
	})
	s, p := startPubTestWith(t, b, Options{CloseTimeout: 2 * time.Second},
		PublisherOptions{MaxInFlight: window, Mandatory: mandatory, nackBackoff: time.Duration(1+rng.Intn(3)) * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 3*pubPropStuck)
	defer cancel()

	var msgs []*pubPropMsg
	unsettled := func() []*pubPropMsg {
		var open []*pubPropMsg
		for _, m := range msgs {
			if m.c != nil {
				select {
				case <-m.c.Done():
				default:
					open = append(open, m)
				}
			}
		}
		return open
	}
	// settleSome releases held acks until fewer than n messages are
	// unsettled; it reports false if that does not happen in time.
	settleSome := func(n int) bool {
		deadline := time.Now().Add(pubPropStuck)
		for {
			open := unsettled()
			if len(open) < n {
				return true
			}
			if time.Now().After(deadline) {
				fail("%d messages stuck unsettled (window %d), e.g. %s", len(open), window, open[0].body)
				return false
			}
			if fc := b.live(); fc != nil {
				fc.release()
			}
			select {
			case <-open[0].c.Done():
			case <-time.After(5 * time.Millisecond): // an ack may be held again after a republish
			}
		}
	}
	killed := map[int]bool{}
	expiries := map[int][]context.CancelFunc{} // by the operation that ends them
	defer func() {
		for _, cs := range expiries {
			for _, cancel := range cs {
				cancel()
			}
		}
	}()
	dupIDs := []string{"order-1", "order-2", "order-3"}
	var total int
	for k := range pubKindWeights {
		total += pubKindWeights[k]
	}
	for op := 0; op < pubPropOps; op++ {
		for _, cancel := range expiries[op] {
			cancel()
		}
		delete(expiries, op)
		switch r := rng.Intn(100); {
		case r < 72:
			if !settleSome(window) {
				return
			}
			kind := pubKind(0)
			for w := rng.Intn(total); w >= pubKindWeights[kind]; kind++ {
				w -= pubKindWeights[kind]
			}
			m := &pubPropMsg{kind: kind, body: fmt.Sprintf("m-%d", op)}
			mu.Lock()
			kinds[m.body] = kind
			switch {
			case kind == pubNackedOnce:
				nacksOf[m.body] = 1 + rng.Intn(DefaultNackRepublishes)
				nacksLeft[m.body] = nacksOf[m.body]
			case kind == pubExpiring && rng.Intn(2) == 0:
				// Nacked first: its context may end while it waits for
				// its republication.
				nacksOf[m.body] = 1 + rng.Intn(DefaultNackRepublishes)
				nacksLeft[m.body] = nacksOf[m.body]
			}
			mu.Unlock()
			msg := amqp.Publishing{Body: []byte(m.body), DeliveryMode: amqp.Persistent}
			style := "unique"
			switch rng.Intn(3) {
			case 0:
				style, msg.MessageId = "duplicate", dupIDs[rng.Intn(len(dupIDs))]
			case 1:
				style = "empty"
			default:
				msg.MessageId = "id-" + m.body
			}
			pubPropSpoil(rng, kind, &msg)
			key := "q"
			if kind == pubOversize && rng.Intn(4) == 0 {
				key = strings.Repeat("k", 256)
			}
			mctx := ctx
			if kind == pubExpiring {
				var cancel context.CancelFunc
				mctx, cancel = context.WithCancel(ctx)
				at := op + 1 + rng.Intn(8)
				expiries[at] = append(expiries[at], cancel)
			}
			c, err := p.PublishAsync(mctx, "", key, msg)
			counts.add(func(c *pubPropCounts) { c.kinds[kind]++; c.idStyles[style]++ })
			if kind >= pubOversize {
				if !errors.Is(err, ErrInvalidMessage) {
					fail("%s %s: PublishAsync = %v, want ErrInvalidMessage at once", pubKindNames[kind], m.body, err)
				}
				continue
			}
			if err != nil {
				fail("%s %s: PublishAsync = %v", pubKindNames[kind], m.body, err)
				return
			}
			m.c = c
			msgs = append(msgs, m)
		case r < 82:
			if fc := b.live(); fc != nil {
				fc.release()
			}
			counts.add(func(c *pubPropCounts) { c.releases++ })
		case r < 88:
			if s.State() != Ready {
				continue
			}
			fc := b.live()
			if killed[fc.id] {
				continue
			}
			killed[fc.id] = true
			fc.kill()
			counts.add(func(c *pubPropCounts) { c.kills++ })
			// Until the loss is seen, b.live() may already be the next
			// connection, mid-handshake: a kill there is a dial failure.
			// Bounded well below the run's ctx: a kill that found a
			// connection other than the Ready one changes no state.
			wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
			for s.State() == Ready && s.WaitForStateChange(wctx, Ready) {
			}
			wcancel()
		default:
			if open := unsettled(); len(open) > 0 {
				if !settleSome(len(open)) {
					return
				}
				counts.add(func(c *pubPropCounts) { c.waits++ })
			}
		}
	}

	for _, cs := range expiries {
		for _, cancel := range cs {
			cancel()
		}
	}
	// Close: after every message settled, or cut short with acks held.
	cut := rng.Intn(3) == 0
	bySup := rng.Intn(2) == 0
	var closeErr error
	if !cut && !settleSome(1) {
		return
	}
	// Cut short: Publisher.Close makes its report on the caller's
	// goroutine, so any ctx will do; Supervisor.Close's goroutine must make
	// it within min(ctx/4, pubCloseMargin) of the end (a 50ms ctx left it
	// 12.5ms), so it gets the whole margin.
	cutAfter := 50 * time.Millisecond
	if bySup {
		cutAfter = 4 * pubCloseMargin
	}
	closeCtx, closeCancel := context.WithTimeout(ctx, cutAfter)
	if !cut {
		closeCtx, closeCancel = context.WithTimeout(ctx, pubPropStuck)
	}
	if bySup {
		closeErr = s.Close(closeCtx)
	} else {
		closeErr = p.Close(closeCtx)
	}
	closeCancel()
	counts.add(func(c *pubPropCounts) {
		if cut {
			c.cutCloses++
		} else {
			c.drainCloses++
		}
		if bySup {
			c.supCloses++
		}
	})
	if !cut && closeErr != nil {
		fail("Close after every message settled = %v, want nil", closeErr)
	}

	// Each Confirmation settled exactly once: all are done, and the
	// publisher holds no message and no window slot.
	nUnconfirmed := 0
	for _, m := range msgs {
		select {
		case <-m.c.Done():
		default:
			fail("%s %s not settled after Close", pubKindNames[m.kind], m.body)
			continue
		}
		err := m.c.Wait(ctx)
		counts.add(func(c *pubPropCounts) { c.outcomes[pubOutcome(err)]++ })
		if errors.Is(err, ErrUnconfirmed) {
			nUnconfirmed++
			if !cut {
				fail("%s %s: ErrUnconfirmed after a Close that waited for everything", pubKindNames[m.kind], m.body)
			}
			continue
		}
		pubPropCheck(fail, b, m, err, mandatory)
	}
	p.mu.Lock()
	left, slots := p.led.len(), len(p.window)
	p.mu.Unlock()
	if left != 0 || slots != 0 {
		fail("after Close the ledger holds %d messages and the window %d slots, want 0 and 0", left, slots)
	}
	var ue *UnconfirmedError
	if errors.As(closeErr, &ue) != (nUnconfirmed > 0) || (ue != nil && len(ue.MessageIDs) != nUnconfirmed) {
		fail("Close = %v with %d messages settled ErrUnconfirmed", closeErr, nUnconfirmed)
	}

	// Connection losses caused by message content: none.
	deadline := time.Now().Add(pubPropStuck)
	for s.Stats().ConnectionsLost < uint64(len(killed)) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if lost := s.Stats().ConnectionsLost; lost != uint64(len(killed)) {
		fail("%d connections lost, %d killed by the test: message content closed %d", lost, len(killed), int(lost)-len(killed))
	}

	// Duplicates: at most a window per kill or channel close.
	seen := map[string]int{}
	dups := 0
	for _, fm := range b.messages() {
		if seen[fm.Body]++; seen[fm.Body] > 1 && kinds[fm.Body] != pubPoison {
			dups++
		}
	}
	mu.Lock()
	closes, nacks := chanCloses, nacksSent
	mu.Unlock()
	if bound := window*(len(killed)+closes) + nacks; dups > bound {
		fail("%d duplicates at the broker, want at most %d (window %d x (%d kills + %d channel closes) + %d nacks)",
			dups, bound, window, len(killed), closes, nacks)
	}
	counts.add(func(c *pubPropCounts) {
		c.duplicates += dups
		c.chanCloses += closes
		c.unconfirmed += nUnconfirmed
		c.republishd += int(s.Stats().Republished)
	})
}

// pubPropSpoil makes msg invalid the way kind says.
func pubPropSpoil(rng *rand.Rand, kind pubKind, msg *amqp.Publishing) {
	long := strings.Repeat("x", 256+rng.Intn(100))
	switch kind {
	case pubOversize:
		fields := []*string{&msg.ContentType, &msg.ContentEncoding, &msg.CorrelationId, &msg.ReplyTo,
			&msg.Expiration, &msg.MessageId, &msg.Type, &msg.UserId, &msg.AppId}
		*fields[rng.Intn(len(fields))] = long
	case pubForged:
		msg.UserId = "mallory"
	case pubBadHeader:
		bad := []any{uint64(1), struct{}{}, math.Inf(1), amqp.Table{long: 1}, []any{"ok", map[string]int{}}}
		msg.Headers = amqp.Table{"ok": "v", "bad": bad[rng.Intn(len(bad))]}
	}
}

// pubPropCheck checks one settled message's outcome against its kind.
func pubPropCheck(fail func(string, ...any), b *pubFakeBroker, m *pubPropMsg, err error, mandatory bool) {
	name := pubKindNames[m.kind] + " " + m.body
	var re *ReturnedError
	var ae *amqp.Error
	returned := errors.As(err, &re)
	switch {
	case err == nil && b.ackedCount(m.body) == 0:
		fail("%s settled nil, but the broker never acked it", name)
	case returned != (m.kind == pubUnroutable && mandatory):
		fail("%s = %v: returned must mean unroutable and mandatory", name, err)
	case m.kind == pubExpiring:
		// Its context's error alone says it was never written: the broker
		// must not have it. Written once, it fails with ErrConfirmLost.
		if err != nil && !errors.Is(err, context.Canceled) {
			fail("%s = %v, want nil or its context's error", name, err)
		}
		// A nacked message may have been enqueued anyway (RabbitMQ's
		// nacks promise nothing either way), so ErrNacked is no "never
		// written" either.
		if err != nil && !errors.Is(err, ErrConfirmLost) && !errors.Is(err, ErrNacked) {
			for _, fm := range b.messages() {
				if fm.Body == m.body {
					fail("%s = %v, but the broker got it", name, err)
					break
				}
			}
		}
	case m.kind == pubRouted || m.kind == pubNackedOnce || (m.kind == pubUnroutable && !mandatory):
		if err != nil {
			fail("innocent %s failed: %v", name, err)
		}
	case m.kind == pubNacked && (!errors.Is(err, ErrNacked) || !strings.Contains(err.Error(), "time(s)")):
		fail("%s = %v, want ErrNacked after its republications", name, err)
	case m.kind == pubPoison && (!errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed || errors.Is(err, ErrConfirmLost)):
		fail("%s = %v, want the broker's 406 alone", name, err)
	}
}

// pubOutcome names an outcome for the closing table.
func pubOutcome(err error) string {
	var ae *amqp.Error
	switch {
	case err == nil:
		return "nil (acked)"
	case errors.Is(err, ErrReturned):
		return "*ReturnedError"
	case errors.Is(err, ErrNacked):
		return "ErrNacked"
	case errors.Is(err, ErrUnconfirmed):
		return "ErrUnconfirmed (Close cut short)"
	case errors.Is(err, ErrConfirmLost):
		return "ErrConfirmLost (its context ended)"
	case errors.Is(err, context.Canceled):
		return "context.Canceled (never written)"
	case errors.As(err, &ae):
		return fmt.Sprintf("channel error %d", ae.Code)
	}
	return "other: " + err.Error()
}
