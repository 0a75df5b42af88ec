package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/conn"
)

// benchFleetSettle is how long a fleet worker lets its clients settle after
// the last one connected (start-up events delivered, handshake garbage
// unreferenced) before it measures.
const benchFleetSettle = time.Second

// benchFleetResult is what a fleet worker measured: its growth from before
// the first dial to the whole fleet connected and idle.
type benchFleetResult struct {
	Clients    int   `json:"clients"`
	HeapBytes  int64 `json:"heap_bytes"` // live heap after a GC
	RSSBytes   int64 `json:"rss_bytes"`  // resident set, after the runtime returned free pages
	Goroutines int   `json:"goroutines"`
	ConnectNS  int64 `json:"connect_ns"` // first dial to the last client publishable
}

// benchFleetClient is one connected client of a fleet; close shuts it down.
type benchFleetClient func(ctx context.Context) error

// fleetConnectors open one client each: a connection with a confirm-mode
// publishing channel, as its contender would publish on it.
var fleetConnectors = map[string]func(ctx context.Context, cfg workerConfig) (benchFleetClient, error){
	contRaw:    fleetConnectRaw,
	contWarren: fleetConnectWarren,
}

// fleetConnectRaw is amqp091-go: a connection, a channel in confirm mode
// and the goroutine a publisher needs to take its confirms.
func fleetConnectRaw(_ context.Context, cfg workerConfig) (benchFleetClient, error) {
	c, err := amqp.DialConfig(cfg.URL, benchAMQPConfig(cfg))
	if err != nil {
		return nil, err
	}
	ch, err := c.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, cfg.Window))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range confirms {
		}
	}()
	return func(ctx context.Context) error {
		err := c.Close()
		if errors.Is(err, amqp.ErrClosed) {
			err = nil
		}
		return errors.Join(err, benchWaitAll(ctx, done))
	}, nil
}

// fleetConnectWarren is a Supervisor, with an OnEvent handler as a service
// that watches its connections has, and a Publisher.
func fleetConnectWarren(ctx context.Context, cfg workerConfig) (benchFleetClient, error) {
	opts := benchWarrenOptions(cfg, func(conn.Event) {})
	opts.Logger = slog.New(slog.DiscardHandler)
	s, err := conn.New(opts)
	if err != nil {
		return nil, err
	}
	closeS := func(ctx context.Context) error { return s.Close(ctx) }
	if err := s.WaitReady(ctx); err != nil {
		return nil, errors.Join(err, closeBenchFleet(closeS))
	}
	if _, err := s.NewPublisher(ctx, conn.PublisherOptions{Name: "bench", MaxInFlight: cfg.Window}); err != nil {
		return nil, errors.Join(err, closeBenchFleet(closeS))
	}
	return closeS, nil
}

func closeBenchFleet(c benchFleetClient) error {
	ctx, cancel := context.WithTimeout(context.Background(), benchCloseTimeout)
	defer cancel()
	return c(ctx)
}

// workerFleet connects cfg.N clients one after the other and reports what
// they hold; with cfg.Duration > 0 it then also measures its own CPU time
// and context switches over that much idle time.
func workerFleet(ctx, stop context.Context, cfg workerConfig) (res *workerResult, err error) {
	connect := fleetConnectors[cfg.Contender]
	if connect == nil {
		return nil, errors.New("bench worker: no fleet client for " + cfg.Contender)
	}
	debug.FreeOSMemory()
	heap0, rss0, g0 := benchMemNow()
	var clients []benchFleetClient
	defer func() {
		err = errors.Join(err, closeAllBenchFleet(clients))
	}()
	begin := time.Now()
	for i := 0; i < cfg.N; i++ {
		c, err := connect(ctx, cfg)
		if err != nil {
			return nil, err
		}
		clients = append(clients, c)
	}
	connected := time.Since(begin)
	if err := benchSleep(ctx, benchFleetSettle); err != nil {
		return nil, err
	}
	debug.FreeOSMemory()
	heap1, rss1, g1 := benchMemNow()
	res = &workerResult{Fleet: &benchFleetResult{
		Clients: cfg.N, HeapBytes: heap1 - heap0, RSSBytes: rss1 - rss0, Goroutines: g1 - g0,
		ConnectNS: int64(connected),
	}}
	if cfg.Duration <= 0 {
		return res, nil
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gcBefore := ms.NumGC
	before, ok := benchSelfUsage()
	if !ok {
		return nil, errors.New("bench worker: rusage is not available on this platform")
	}
	start := time.Now()
	t := time.NewTimer(cfg.Duration)
	select {
	case <-t.C:
	case <-stop.Done():
		t.Stop()
		return nil, errors.New("bench worker: idle window cut short")
	}
	after, _ := benchSelfUsage()
	runtime.ReadMemStats(&ms)
	res.WindowNS = int64(time.Since(start))
	res.CPUNS = int64(after.cpu - before.cpu)
	res.Nvcsw, res.Nivcsw = after.nvcsw-before.nvcsw, after.nivcsw-before.nivcsw
	res.GCs = int(ms.NumGC - gcBefore)
	return res, nil
}

// closeAllBenchFleet closes every client at once, each bounded by
// benchCloseTimeout.
func closeAllBenchFleet(clients []benchFleetClient) error {
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = closeBenchFleet(c)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// benchMemNow returns the live heap (after a GC), the resident set and the
// number of goroutines.
func benchMemNow() (heap, rss int64, goroutines int) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc), benchRSS(), runtime.NumGoroutine()
}

// benchRSS returns the process's resident set in bytes from /proc, or 0
// where there is none.
func benchRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}
