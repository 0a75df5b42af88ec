package heartbeat

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Stall reports a user callback that ran longer than its threshold.
type Stall struct {
	// Name is the callback's name, e.g. "event handler" or "consumer orders/q1".
	Name string
	// Elapsed is how long the callback had run when the first report was made,
	// or its total run time in the Finished report.
	Elapsed time.Duration
	// Stack is the traceback of the stuck goroutine (the one that called
	// Watch), not of the watchdog. It is nil in the Finished report, and may be
	// nil in the first report if the goroutine could not be found (it ended,
	// or it lies beyond the first 1 MiB of the dump of all goroutines it is
	// cut from).
	Stack []byte
	// Finished is false in the first report (the callback is still running)
	// and true in the second (the callback finally returned).
	Finished bool
}

// Watchdog reports user callbacks that run too long. Each watched call arms
// one timer; nothing runs while calls finish in time. A Watchdog is safe for
// concurrent use and needs no shutdown: it owns no goroutine.
type Watchdog struct {
	report func(Stall)
	// watches recycles the per-call state and its timer, which keeps a watched
	// call that finishes in time to one allocation (the done func).
	watches sync.Pool
}

// NewWatchdog returns a Watchdog that passes stalls to report. report is
// called from a timer goroutine for the first report, and for the Finished
// report from the goroutine calling done (or from the timer goroutine, if
// done came while the first report was in progress). It must not block for
// long, and must not wait for the watched goroutine. A nil report disables
// the Watchdog.
func NewWatchdog(report func(Stall)) *Watchdog {
	return &Watchdog{report: report}
}

// Watch starts watching a callback that the calling goroutine is about to run,
// and returns done, to be called when the callback returns. If the callback
// is still running after threshold, report receives a Stall with the calling
// goroutine's stack; done then triggers a second, Finished report. If done
// comes first, nothing is reported. done is idempotent and never waits for
// report: if it is called while the first report is still being made, it
// returns at once and the Finished report follows from the timer goroutine,
// after the first one.
//
// Watch must be called on the goroutine that runs the callback, since that is
// the stack a stall reports. Learning that goroutine's identity costs a
// traceback of it (a few microseconds); a goroutine that runs many callbacks
// should use a Lane instead. A threshold <= 0 disables the report, and so
// does a nil or disabled Watchdog.
func (w *Watchdog) Watch(name string, threshold time.Duration) (done func()) {
	if !w.enabled(threshold) {
		return noop
	}
	wt := w.get()
	return wt.arm(name, threshold, goroutineID(&wt.idBuf))
}

// Lane is a Watchdog bound to one goroutine, for goroutines that run many
// watched callbacks, such as an event dispatcher or a consumer loop. It learns
// the goroutine's identity once, so its Watch costs no traceback.
type Lane struct {
	w    *Watchdog
	goid uint64
}

// Lane returns a Lane bound to the calling goroutine. The Lane must only be
// used on that goroutine; used elsewhere, its stall reports would show the
// wrong stack.
func (w *Watchdog) Lane() *Lane {
	var buf [idBufSize]byte
	return &Lane{w: w, goid: goroutineID(&buf)}
}

// Watch is Watchdog.Watch for the Lane's goroutine.
func (l *Lane) Watch(name string, threshold time.Duration) (done func()) {
	if !l.w.enabled(threshold) {
		return noop
	}
	return l.w.get().arm(name, threshold, l.goid)
}

// noop is the done func of calls that are not watched; as a plain function
// value it costs no allocation.
func noop() {}

func (w *Watchdog) enabled(threshold time.Duration) bool {
	return threshold > 0 && w != nil && w.report != nil
}

// watchState is the life cycle of one watched call.
type watchState uint8

const (
	// watchIdle: in the pool, or finished.
	watchIdle watchState = iota
	// watchArmed: the callback runs and its timer is pending.
	watchArmed
	// watchReporting: the timer fired and the first report is being made.
	watchReporting
	// watchStalled: the first report was made; done will make the second.
	watchStalled
)

// watch is the state of one watched call. It is recycled through the pool; gen
// tells a stale done func (an idempotent second call) from the current one.
type watch struct {
	w     *Watchdog
	timer *time.Timer
	idBuf [idBufSize]byte // scratch for goroutineID, here to avoid an allocation

	mu    sync.Mutex
	gen   uint64
	state watchState
	// doneEarly records that done was called while the first report was in
	// progress; the timer goroutine then makes the Finished report itself, so
	// that it never precedes the first one.
	doneEarly bool
	name      string
	goid      uint64
	start     time.Time
	end       time.Time
}

func (w *Watchdog) get() *watch {
	if v := w.watches.Get(); v != nil {
		return v.(*watch)
	}
	wt := &watch{w: w}
	// The timer is created stopped and re-armed by each Watch; AfterFunc is the
	// only way to attach the callback, hence the throwaway duration.
	wt.timer = time.AfterFunc(time.Hour, wt.fire)
	wt.timer.Stop()
	return wt
}

func (wt *watch) arm(name string, threshold time.Duration, goid uint64) func() {
	wt.mu.Lock()
	wt.gen++
	gen := wt.gen
	wt.state = watchArmed
	wt.doneEarly = false
	wt.name = name
	wt.goid = goid
	wt.start = time.Now()
	wt.timer.Reset(threshold)
	wt.mu.Unlock()
	return func() { wt.finish(gen) }
}

// finish is done for generation gen.
func (wt *watch) finish(gen uint64) {
	wt.mu.Lock()
	if wt.gen != gen {
		wt.mu.Unlock()
		return
	}
	switch wt.state {
	case watchArmed:
		wt.state = watchIdle
		wt.name = ""
		stopped := wt.timer.Stop()
		wt.mu.Unlock()
		// If Stop lost the race, fire is already scheduled and will find the
		// watch idle; recycling it could let that stale fire report the next
		// call, so it is left to the garbage collector instead.
		if stopped {
			wt.w.watches.Put(wt)
		}
	case watchReporting:
		wt.state = watchIdle
		wt.doneEarly = true
		wt.end = time.Now()
		wt.mu.Unlock()
	case watchStalled:
		wt.state = watchIdle
		s := Stall{Name: wt.name, Elapsed: time.Since(wt.start), Finished: true}
		wt.mu.Unlock()
		wt.w.report(s)
	default:
		wt.mu.Unlock()
	}
}

// fire runs on the timer goroutine when a call outlives its threshold. A
// stalled watch is never recycled, so fire sees at most one generation.
func (wt *watch) fire() {
	wt.mu.Lock()
	if wt.state != watchArmed {
		wt.mu.Unlock()
		return
	}
	wt.state = watchReporting
	name, goid, start := wt.name, wt.goid, wt.start
	wt.mu.Unlock()

	// The stack is taken outside the lock: it stops the world, and done must
	// not wait for it.
	stack := findGoroutineIn(sharedDump(start), goid)
	wt.w.report(Stall{Name: name, Elapsed: time.Since(start), Stack: stack})

	wt.mu.Lock()
	if !wt.doneEarly {
		wt.state = watchStalled
		wt.mu.Unlock()
		return
	}
	s := Stall{Name: name, Elapsed: wt.end.Sub(start), Finished: true}
	wt.mu.Unlock()
	wt.w.report(s)
}

// Current reports whether the caller runs on the Lane's goroutine. Code that
// a watched callback may call back into (a Close called from inside an event
// handler) uses it to avoid waiting for its own caller to return.
func (l *Lane) Current() bool {
	if l == nil || l.goid == 0 {
		return false
	}
	var buf [idBufSize]byte
	return goroutineID(&buf) == l.goid
}

// maxStallDump bounds the dump of all goroutines behind a stall report. Go
// can trace another goroutine only by tracing all of them, with the world
// stopped; the dump is cut at this size (the goroutines of a process are
// listed about in creation order, and the supervisor's are created early),
// so a process with tens of thousands of goroutines pays neither a
// 64 MiB buffer nor a doubling series of stopped worlds per stall. A stuck
// goroutine beyond the cut is reported without a stack.
const maxStallDump = 1 << 20

// stallDumps makes concurrent stall reports share one dump: when many
// callbacks stall at once (a GC pause, a host that froze), one dump serves
// them all instead of stopping the world once per report.
var stallDumps struct {
	mu  sync.Mutex
	cur *dumpCall // the dump in progress, or nil
}

// dumpCall is one dump of all goroutines, shared by the reports that wait
// for it.
type dumpCall struct {
	began time.Time
	done  chan struct{} // closed once dump is set
	dump  []byte
	// waiters counts the reports that found this dump in progress, so a
	// test can tell when they all wait on it.
	waiters atomic.Int32
}

// sharedDump returns a dump of all goroutines taken after since: the one in
// progress if it began after since (the callback was running by then, so
// its stack is in it), else a new one. The dump is released with its last
// reader.
func sharedDump(since time.Time) []byte {
	for {
		stallDumps.mu.Lock()
		c := stallDumps.cur
		if c == nil {
			c = &dumpCall{began: time.Now(), done: make(chan struct{})}
			stallDumps.cur = c
			stallDumps.mu.Unlock()
			c.dump = dumpAll(maxStallDump)
			stallDumps.mu.Lock()
			if stallDumps.cur == c { // only its own: a test may have put another
				stallDumps.cur = nil
			}
			stallDumps.mu.Unlock()
			close(c.done)
			return c.dump
		}
		c.waiters.Add(1)
		stallDumps.mu.Unlock()
		<-c.done
		if c.began.After(since) {
			return c.dump
		}
	}
}

// dumpAll returns runtime.Stack of all goroutines, in a buffer that starts at
// firstDumpSize and doubles while the dump fills it, up to limit.
func dumpAll(limit int) []byte {
	size := min(firstDumpSize, limit)
	for {
		buf := make([]byte, size)
		n := runtime.Stack(buf, true)
		if n < size || size >= limit {
			return buf[:n]
		}
		size = min(2*size, limit)
	}
}

// findGoroutineIn is findGoroutine, with id 0 (unknown) finding nothing.
func findGoroutineIn(dump []byte, id uint64) []byte {
	if id == 0 {
		return nil
	}
	return findGoroutine(dump, id)
}
