package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// attempt is one POST of an order.
type attempt struct {
	at      time.Time     // when it was sent
	code    int           // 0 on a transport error
	err     string        // the transport error's class
	latency time.Duration // from sending to the answer
	reused  bool          // sent on a kept-alive connection
}

// order is one order the load sends: one key, up to maxAttempts POSTs.
type order struct {
	key      string
	attempts []attempt
	accepted bool
}

// load sends new orders at a fixed rate, each under a key of its own, and
// retries one that got a 503 or a transport error with the same key after
// the Retry-After, as a well-behaved client would.
type load struct {
	base        string
	client      *http.Client
	rate        int
	maxAttempts int
	stopping    func() bool // the service was told to stop: refusals are expected

	mu       sync.Mutex
	orders   []*order
	wg       sync.WaitGroup
	stop     chan struct{}
	haltOnce sync.Once
	done     chan struct{}
}

func newLoad(base string, rate int, requestTimeout time.Duration, stopping func() bool) *load {
	tr := &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second}
	return &load{
		base:        base,
		client:      &http.Client{Transport: tr, Timeout: requestTimeout},
		rate:        rate,
		maxAttempts: 4,
		stopping:    stopping,
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
}

// run sends orders until halt; keys are prefix-N.
func (l *load) run(prefix string) {
	defer close(l.done)
	tick := time.NewTicker(time.Second / time.Duration(l.rate))
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		o := &order{key: prefix + "-" + strconv.Itoa(n)}
		l.mu.Lock()
		l.orders = append(l.orders, o)
		l.mu.Unlock()
		l.wg.Add(1)
		go l.send(o)
	}
}

// halt stops new orders and waits, at most d, for the ones under way.
func (l *load) halt(d time.Duration) error {
	l.haltOnce.Do(func() { close(l.stop) })
	<-l.done
	finished := make(chan struct{})
	go func() { l.wg.Wait(); close(finished) }()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-finished:
		l.client.CloseIdleConnections()
		return nil
	case <-timer.C:
		return fmt.Errorf("orders still under way %v after the load stopped", d)
	}
}

func (l *load) send(o *order) {
	defer l.wg.Done()
	for i := 0; i < l.maxAttempts; i++ {
		a, retryIn := l.post(o.key)
		l.mu.Lock()
		o.attempts = append(o.attempts, a)
		if a.code == http.StatusAccepted {
			o.accepted = true
		}
		l.mu.Unlock()
		if retryIn < 0 {
			return
		}
		timer := time.NewTimer(retryIn)
		select {
		case <-timer.C:
		case <-l.stop:
			timer.Stop()
			return
		}
	}
}

// post sends one attempt; retryIn < 0 means do not retry.
func (l *load) post(key string) (attempt, time.Duration) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, l.base+"/orders",
		strings.NewReader(`{"order":"`+key+`"}`))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("Content-Type", "application/json")
	var reused atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused.Store(i.Reused) },
	}))
	start := time.Now()
	resp, err := l.client.Do(req)
	if err != nil {
		a := attempt{at: start, err: errClass(err), latency: time.Since(start), reused: reused.Load()}
		if a.err == "refused" && l.stopping() {
			return a, -1 // the listener closed: this instance is gone
		}
		return a, time.Second
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	a := attempt{at: start, code: resp.StatusCode, latency: time.Since(start)}
	if resp.StatusCode == http.StatusServiceUnavailable {
		secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || secs < 1 {
			a.err = "503 without Retry-After"
			secs = 1
		}
		return a, time.Duration(secs) * time.Second
	}
	return a, -1
}

func errClass(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	case errors.Is(err, context.DeadlineExceeded), strings.Contains(err.Error(), "Client.Timeout"):
		return "client timeout"
	}
	return "other: " + err.Error()
}

func (l *load) snapshot() []order {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]order, len(l.orders))
	for i, o := range l.orders {
		out[i] = order{key: o.key, accepted: o.accepted, attempts: append([]attempt(nil), o.attempts...)}
	}
	return out
}

// probe is one /readyz answer.
type probe struct {
	at    time.Time
	ready bool
	body  string
}

// readiness polls /readyz every interval and keeps every answer, until stop.
type readiness struct {
	once   sync.Once
	mu     sync.Mutex
	probes []probe
	stop   chan struct{}
	done   chan struct{}
}

func pollReadiness(base string, interval time.Duration) *readiness {
	r := &readiness{stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: time.Second}
	go func() {
		defer close(r.done)
		defer client.CloseIdleConnections()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			p := probe{at: time.Now()}
			if resp, err := client.Get(base + "/readyz"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				p.ready, p.body = resp.StatusCode == http.StatusOK, strings.TrimSpace(string(b))
			} else {
				p.body = "error: " + errClass(err)
			}
			r.mu.Lock()
			r.probes = append(r.probes, p)
			r.mu.Unlock()
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return r
}

func (r *readiness) halt() { r.once.Do(func() { close(r.stop) }); <-r.done }

// firstNotReady returns the first probe at or after t that said not ready.
func (r *readiness) firstNotReady(t time.Time) (probe, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.probes {
		if !p.at.Before(t) && !p.ready {
			return p, true
		}
	}
	return probe{}, false
}

// firstReady returns the first probe at or after t that said ready.
func (r *readiness) firstReady(t time.Time) (probe, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.probes {
		if !p.at.Before(t) && p.ready {
			return p, true
		}
	}
	return probe{}, false
}

// waitReady waits, at most d, for a ready probe after t.
func (r *readiness) waitReady(t time.Time, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, ok := r.firstReady(t); ok {
			return true
		}
		select {
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
}
