package conn

import (
	"sync"
	"time"
)

// idWindow counts message ids: at most size of them, each for at most ttl
// after it was last counted (0: until evicted). When full, counting a new
// id forgets the id counted least recently (oldest first, like a FIFO):
// memory stays bounded, at the price of forgetting. It takes no timer:
// expired ids are dropped when it is used. Safe for concurrent use.
type idWindow struct {
	size int
	ttl  time.Duration
	now  func() time.Time

	mu      sync.Mutex
	ids     map[string]idCount
	order   []idRef // counting order, oldest first; may hold stale refs
	seq     uint64
	evicted uint64 // ids forgotten because the window was full
}

type idCount struct {
	n   int
	at  time.Time
	seq uint64 // matches the id's latest ref in order
}

type idRef struct {
	id  string
	seq uint64
}

func newIDWindow(size int, ttl time.Duration) *idWindow {
	return &idWindow{size: size, ttl: ttl, now: time.Now, ids: make(map[string]idCount, min(size, 1024))}
}

// add counts id once more and returns its count.
func (w *idWindow) add(id string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	w.expireLocked(now)
	c, ok := w.ids[id]
	if !ok && len(w.ids) >= w.size {
		w.evictLocked()
	}
	w.seq++
	c = idCount{n: c.n + 1, at: now, seq: w.seq}
	w.ids[id] = c
	w.order = append(w.order, idRef{id: id, seq: w.seq})
	if len(w.order) > 2*w.size+16 {
		w.compactLocked()
	}
	return c.n
}

// count returns id's count, 0 if it is not in the window.
func (w *idWindow) count(id string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.expireLocked(w.now())
	return w.ids[id].n
}

// remove forgets id.
func (w *idWindow) remove(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.ids, id)
}

// stats returns how many ids the window holds and how many it forgot
// because it was full.
func (w *idWindow) stats() (held int, evicted uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ids), w.evicted
}

// expireLocked drops the ids counted more than ttl ago. Caller must hold
// w.mu.
func (w *idWindow) expireLocked(now time.Time) {
	if w.ttl <= 0 {
		return
	}
	for len(w.order) > 0 {
		r := w.order[0]
		c, live := w.ids[r.id]
		if live && c.seq == r.seq && now.Sub(c.at) < w.ttl {
			return
		}
		if live && c.seq == r.seq {
			delete(w.ids, r.id)
		}
		w.order = w.order[1:]
	}
}

// evictLocked forgets the id counted least recently. Caller must hold w.mu.
func (w *idWindow) evictLocked() {
	for len(w.order) > 0 {
		r := w.order[0]
		w.order = w.order[1:]
		if c, live := w.ids[r.id]; live && c.seq == r.seq {
			delete(w.ids, r.id)
			w.evicted++
			return
		}
	}
}

// compactLocked drops the stale refs of ids counted again or removed, so
// that order stays bounded by size. Caller must hold w.mu.
func (w *idWindow) compactLocked() {
	live := make([]idRef, 0, len(w.ids))
	for _, r := range w.order {
		if c, ok := w.ids[r.id]; ok && c.seq == r.seq {
			live = append(live, r)
		}
	}
	w.order = live
}
