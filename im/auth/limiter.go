package auth

import (
	"hash/maphash"
	"sync"
	"time"
)

// DefaultMaxTracked is the default of AccountsConfig.MaxTracked.
const DefaultMaxTracked = 1 << 16

const limiterShards = 16

// limiter counts attempts per key in fixed windows that start at a key's
// first counted attempt. Its memory is bounded: each of its shards holds at
// most maxKeys/limiterShards keys. A key whose window has passed may be
// dropped; a key whose window is still open never is, so spraying new keys
// cannot lift a limit in force. When a shard is full of open windows a new
// key is refused instead (fail closed): the client is told to come back
// later rather than the table forgetting someone else's count.
type limiter struct {
	max      int
	window   time.Duration
	perShard int
	seed     maphash.Seed
	shards   [limiterShards]limiterShard
}

type limiterShard struct {
	mu        sync.Mutex
	entries   map[string]window
	lastPrune time.Time
}

type window struct {
	start time.Time
	n     int // attempts charged in this window
}

func newLimiter(max int, w time.Duration, maxKeys int) *limiter {
	l := &limiter{max: max, window: w, perShard: max1(maxKeys / limiterShards), seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].entries = make(map[string]window)
	}
	return l
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

func (l *limiter) shard(key string) *limiterShard {
	return &l.shards[maphash.String(l.seed, key)%limiterShards]
}

// live returns key's open window, if it has one.
func (l *limiter) live(s *limiterShard, key string, now time.Time) (window, bool) {
	e, ok := s.entries[key]
	if !ok || now.Sub(e.start) >= l.window || now.Before(e.start) {
		// A clock that steps back does not keep a key locked for longer.
		return window{}, false
	}
	return e, true
}

// room makes room for a new key in s if it can, by dropping windows that
// have passed, and reports whether there is room.
func (l *limiter) room(s *limiterShard, now time.Time) bool {
	if len(s.entries) < l.perShard {
		return true
	}
	// A sweep is linear in the shard; when the shard stays full of open
	// windows, sweep at most once a second rather than on every refusal.
	if now.Sub(s.lastPrune) < time.Second && !now.Before(s.lastPrune) {
		return false
	}
	s.lastPrune = now
	for k, e := range s.entries {
		if now.Sub(e.start) >= l.window || now.Before(e.start) {
			delete(s.entries, k)
		}
	}
	return len(s.entries) < l.perShard
}

// acquire charges one attempt to key and reports whether it may go ahead,
// and if not, how long until it may. A refused attempt is not charged, so
// it does not prolong the wait.
func (l *limiter) acquire(key string, now time.Time) (bool, time.Duration) {
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := l.live(s, key, now)
	if !ok {
		if _, stale := s.entries[key]; !stale && !l.room(s, now) {
			return false, l.window
		}
		e = window{start: now}
	}
	if e.n >= l.max {
		return false, e.start.Add(l.window).Sub(now)
	}
	e.n++
	s.entries[key] = e
	return true, 0
}

// exceeded reports whether key has used up its attempts in its open window.
// A key the table is too full to hold counts as exceeded.
func (l *limiter) exceeded(key string, now time.Time) bool {
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := l.live(s, key, now); ok {
		return e.n >= l.max
	}
	_, stale := s.entries[key]
	return !stale && !l.room(s, now)
}

// release gives back one attempt charged by acquire that was not a failure.
func (l *limiter) release(key string) {
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[key]; ok && e.n > 0 {
		e.n--
		s.entries[key] = e
	}
}

// reset forgets key's attempts, after a successful login.
func (l *limiter) reset(key string) {
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, key)
}

// size returns the number of keys held.
func (l *limiter) size() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}
