package supervisor_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/warrenmq/warren/conn"
	"github.com/warrenmq/warren/integration/broker"
)

// TestSoakForcedCloses kills the supervisor's connection 30 times in a row
// (WARREN_FORCED_CLOSES sets another count; each kill is a rabbitmqctl call,
// about 1.3 s): it must be Ready after each, and its goroutine count must
// stay flat. A leak of even one goroutine per connection shows well within
// 30 kills.
func TestSoakForcedCloses(t *testing.T) {
	kills := 30
	if v := os.Getenv("WARREN_FORCED_CLOSES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("WARREN_FORCED_CLOSES=%q: want a positive count", v)
		}
		kills = n
	}
	b := broker.Shared(t)
	user, pass := testUser(t, b)
	s, rec := start(t, conn.Options{
		URLs:           []string{b.URLWith(user, pass, "/")},
		ConnectionName: t.Name(),
		Reconnect:      fastPolicy(),
	})
	waitReady(t, s)
	_, from := rec.WaitFor(t, 0, defaultTestTimeout, "Connected", kind(conn.EventConnected))
	runtime.GC()
	baseline := runtime.NumGoroutine()
	maxGoroutines := baseline
	var outages []time.Duration
	begin := time.Now()
	for k := 0; k < kills; k++ {
		if err := b.Faults.CloseUserConnections(faultCtx(t), user); err != nil {
			t.Fatalf("kill %d: %v", k, err)
		}
		lost, i := rec.WaitFor(t, from, defaultTestTimeout, "ConnectionLost", kind(conn.EventConnectionLost))
		ready, i := rec.WaitFor(t, i, defaultTestTimeout, "Ready", state(conn.Ready))
		from = i
		outages = append(outages, ready.Time.Sub(lost.Time))
		if n := runtime.NumGoroutine(); n > maxGoroutines {
			maxGoroutines = n
		}
	}
	runtime.GC()
	end := runtime.NumGoroutine()
	st := s.Stats()
	t.Logf("%d kills in %v: outage median %v max %v; goroutines baseline %d, max %d, end %d; reconnects %d",
		kills, time.Since(begin), median(outages), maxOf(outages), baseline, maxGoroutines, end, st.Reconnects)
	if st.Reconnects != uint64(kills) {
		t.Errorf("reconnects = %d, want %d", st.Reconnects, kills)
	}
	// A handful of goroutines come and go with each connection (amqp091-go's
	// reader and heartbeater, the monitor's timer); growth with the number of
	// kills means a leak.
	if end > baseline+5 || maxGoroutines > baseline+20 {
		t.Errorf("goroutines grew: baseline %d, max %d, end %d", baseline, maxGoroutines, end)
	}
}

// TestCloseFromHandlerOnRealConnection: the event handler closes the
// supervisor as soon as it is Ready; Close must not deadlock, and ten more
// concurrent Close calls must all see the same result.
func TestCloseFromHandlerOnRealConnection(t *testing.T) {
	b := broker.Shared(t)
	var s *conn.Supervisor
	handlerClosed := make(chan error, 1)
	started := make(chan struct{})
	var once sync.Once
	s, err := conn.New(conn.Options{
		URLs:   []string{b.URL},
		Logger: quietLogger(t),
		OnEvent: func(e conn.Event) {
			<-started
			if e.Kind == conn.EventConnected {
				once.Do(func() {
					ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
					defer cancel()
					handlerClosed <- s.Close(ctx)
				})
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	close(started)
	select {
	case err := <-handlerClosed:
		if err != nil {
			t.Errorf("Close from the handler: %v", err)
		}
	case <-time.After(defaultTestTimeout):
		t.Fatal("Close from inside the event handler deadlocked")
	}
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
			defer cancel()
			errs[i] = s.Close(ctx)
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Close %d: %v", i, err)
		}
	}
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[len(s)/2]
}

func maxOf(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		if d > m {
			m = d
		}
	}
	return m
}
