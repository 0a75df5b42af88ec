package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Types of the JSON lines a bench worker writes on its stdout. The
// coordinator and the worker are the same binary, so the protocol has no
// version: both sides always agree.
const (
	wmReady  = "ready"  // connected and publishable for the first time
	wmLost   = "lost"   // the connection was lost (T is when the worker noticed)
	wmUp     = "up"     // publishable again after a loss
	wmResult = "result" // the scenario's figures; the worker exits next
	wmError  = "error"  // the scenario failed; the worker exits next
)

// benchMsg is one line of the worker protocol. Timestamps are wall-clock Unix
// nanoseconds: coordinator and worker run on one machine and read the same
// clock, so a difference between a coordinator timestamp and a worker
// timestamp is a valid duration (up to clock steps, which the bench does not
// expect during a run). Durations measured inside one process use the
// monotonic clock and travel as nanoseconds.
type benchMsg struct {
	Type     string        `json:"type"`
	T        int64         `json:"t"`
	Err      string        `json:"err,omitempty"`
	DeadPeer bool          `json:"dead_peer,omitempty"` // lost: declared by a dead-peer monitor
	OutageNS int64         `json:"outage_ns,omitempty"` // up: lost→up inside the worker
	Result   *workerResult `json:"result,omitempty"`
}

// workerResult holds a scenario's figures as the worker measured them; fields
// that do not apply to the scenario are zero.
type workerResult struct {
	// throughput
	PublishNS int64 `json:"publish_ns,omitempty"` // first publish to last confirm
	ConsumeNS int64 `json:"consume_ns,omitempty"` // first delivery handled to last
	// SubscribeNS is the start of the subscription to the first delivery
	// handled: set-up (warren's default consumer declares its retry queues
	// and opens a publisher for them), not throughput.
	SubscribeNS int64 `json:"subscribe_ns,omitempty"`
	Messages    int   `json:"messages,omitempty"`

	// idle: the worker's own rusage over the idle window
	WindowNS int64 `json:"window_ns,omitempty"`
	CPUNS    int64 `json:"cpu_ns,omitempty"` // user + system
	Nvcsw    int64 `json:"nvcsw,omitempty"`
	Nivcsw   int64 `json:"nivcsw,omitempty"`
	GCs      int   `json:"gcs,omitempty"` // garbage collections during the window

	// loss
	Confirmed int    `json:"confirmed,omitempty"`
	Bitmap    string `json:"confirmed_bitmap,omitempty"` // base64 bitset of confirmed message numbers
	ElapsedNS int64  `json:"elapsed_ns,omitempty"`       // first publish until every message settled or the deadline
	Losses    int    `json:"losses,omitempty"`           // connections lost during the run, as the worker saw them

	// fleet: what the clients hold (the idle figures above with Duration > 0)
	Fleet *benchFleetResult `json:"fleet,omitempty"`
}

// benchReporter writes protocol lines; it is safe for concurrent use because
// connection events arrive on library goroutines.
type benchReporter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func newBenchReporter(w io.Writer) *benchReporter { return &benchReporter{enc: json.NewEncoder(w)} }

// send writes m as one line, stamping T with the current time if it is zero.
func (r *benchReporter) send(m benchMsg) {
	if m.T == 0 {
		m.T = time.Now().UnixNano()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.enc.Encode(m) // a coordinator that went away cannot be told anything
}

// benchMaxLine bounds one protocol line; the largest is a loss result with its
// bitmap (N/8 bytes, base64).
const benchMaxLine = 1 << 20

// readBenchMsgs parses protocol lines from r onto out until r ends, and then
// closes out. Lines that are not protocol messages (a panic trace, a stray
// print) are passed to junk.
func readBenchMsgs(r io.Reader, out chan<- benchMsg, junk func(string)) {
	defer close(out)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), benchMaxLine)
	for sc.Scan() {
		var m benchMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.Type == "" {
			junk(sc.Text())
			continue
		}
		out <- m
	}
	if err := sc.Err(); err != nil {
		junk(fmt.Sprintf("reading worker output: %v", err))
	}
}
