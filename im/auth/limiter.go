package auth

import (
	"sync"
	"time"
)

// maxTrackedUsernames bounds the limiter's memory when someone sprays
// logins for many names at once; past it the oldest window is forgotten.
const maxTrackedUsernames = 1 << 16

// limiter counts login attempts per username in fixed windows that start at
// a name's first counted attempt.
type limiter struct {
	max     int
	window  time.Duration
	maxKeys int

	mu        sync.Mutex
	entries   map[string]window
	lastPrune time.Time
}

type window struct {
	start time.Time
	n     int // attempts charged in this window
}

func newLimiter(max int, w time.Duration) *limiter {
	return &limiter{max: max, window: w, maxKeys: maxTrackedUsernames, entries: make(map[string]window)}
}

// acquire charges one attempt to key and reports whether it may go ahead.
// A refused attempt is not charged, so it does not prolong the lockout.
func (l *limiter) acquire(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune(now)
	e, ok := l.entries[key]
	if !ok || now.Sub(e.start) >= l.window || now.Before(e.start) {
		if !ok && len(l.entries) >= l.maxKeys {
			l.evictOldest()
		}
		e = window{start: now}
	}
	if e.n >= l.max {
		return false
	}
	e.n++
	l.entries[key] = e
	return true
}

// release gives back one attempt charged by acquire that was not a failure.
func (l *limiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.entries[key]; ok && e.n > 0 {
		e.n--
		l.entries[key] = e
	}
}

// reset forgets key's attempts, after a successful login.
func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, key)
}

// prune drops expired windows, at most once per window length, so a
// steady trickle of one-off names does not accumulate.
func (l *limiter) prune(now time.Time) {
	if now.Sub(l.lastPrune) < l.window && now.After(l.lastPrune) {
		return
	}
	l.lastPrune = now
	for k, e := range l.entries {
		if now.Sub(e.start) >= l.window {
			delete(l.entries, k)
		}
	}
}

// evictOldest drops the window that started first. Linear, but only run
// when the table is full of live windows, and each login costs a bcrypt
// hash that dwarfs it.
func (l *limiter) evictOldest() {
	var oldest string
	var start time.Time
	first := true
	for k, e := range l.entries {
		if first || e.start.Before(start) {
			oldest, start, first = k, e.start, false
		}
	}
	if !first {
		delete(l.entries, oldest)
	}
}
