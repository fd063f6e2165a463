package im

import (
	"sync"
	"time"

	"github.com/imserver/imserver/im/imv1"
)

// Signals are pushes that say something about now and nothing that has to
// last: typing today, read receipts and presence as they come. Nothing is
// stored for them and a lost one is repaired by the next, so the server
// limits how many a user may cause, and a recipient's queue drops or
// replaces them rather than let someone else's signals disconnect it.

// signalLimiter is a token bucket per user, shared by all of that user's
// connections on this server, so that opening more connections (or
// reconnecting) buys no more signals. It holds an entry only for a user
// who signalled within the last burst/rate seconds: an older bucket is full
// again, the same as none. Memory is bounded by signalLimiterShardCap
// entries per shard; a shard full of users all signalling at once refuses
// newcomers' signals until some buckets have refilled, which costs them a
// typing indicator and nothing else.
type signalLimiter struct {
	rate, burst float64 // rate < 0: unlimited
	shards      [64]signalShard
}

const signalLimiterShardCap = 4096

type signalShard struct {
	mu      sync.Mutex
	buckets map[string]*signalBucket
	pruned  time.Time // the last sweep, so a full shard is swept at most once a refill
}

type signalBucket struct {
	tokens float64
	at     time.Time
}

func newSignalLimiter(rate float64) *signalLimiter {
	return &signalLimiter{rate: rate, burst: max(1, 2*rate)}
}

// refill is how long an empty bucket takes to be full again.
func (l *signalLimiter) refill() time.Duration {
	return time.Duration(l.burst / l.rate * float64(time.Second))
}

// allow takes a token from user's bucket, reporting whether there was one.
func (l *signalLimiter) allow(user string, now time.Time) bool {
	if l.rate < 0 {
		return true
	}
	sh := &l.shards[fnv32(user)%uint32(len(l.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b := sh.buckets[user]
	if b == nil {
		if sh.buckets == nil {
			sh.buckets = make(map[string]*signalBucket)
		}
		if len(sh.buckets) >= signalLimiterShardCap && now.Sub(sh.pruned) >= l.refill()/4 {
			sh.pruned = now
			sh.pruneLocked(now, l.refill())
		}
		if len(sh.buckets) >= signalLimiterShardCap {
			return false
		}
		b = &signalBucket{tokens: l.burst, at: now}
		sh.buckets[user] = b
	} else {
		b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
		b.at = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// pruneLocked forgets the buckets that have refilled since their last use.
func (sh *signalShard) pruneLocked(now time.Time, refill time.Duration) {
	for u, b := range sh.buckets {
		if now.Sub(b.at) >= refill {
			delete(sh.buckets, u)
		}
	}
}

// size is how many buckets the limiter holds, for tests.
func (l *signalLimiter) size() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.buckets)
		sh.mu.Unlock()
	}
	return n
}

// signalKey names what a queued signal is about: a newer signal with the
// same key makes an older one still waiting in the queue worthless.
type signalKey struct {
	cmd  imv1.CommandType
	from string
	conv string
}

// enqueueSignal queues a droppable push. A newer signal replaces an older
// one with the same key that is still waiting, in its place; a signal that
// finds the push queue at its bound is dropped, never closing the session.
// Stats.SignalsDropped counts both. Ordinary pushes go through enqueue and
// pay nothing for this: the bookkeeping lives in signals, which is nil
// unless a signal is waiting.
func (s *session) enqueueSignal(f Frame, key signalKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.drain {
		return
	}
	if i, ok := s.signals[key]; ok {
		d := frameCost(f) - frameCost(s.queue[i])
		s.queue[i] = f
		s.queued.bytes += d
		s.pushed.bytes += d
		s.srv.stats.signalsDropped.Add(1)
		return
	}
	if s.overPushBound(f) {
		s.srv.stats.signalsDropped.Add(1)
		return
	}
	if s.signals == nil {
		s.signals = make(map[signalKey]int)
	}
	s.signals[key] = len(s.queue)
	s.appendLocked(f, true)
}

// evictSignalsLocked removes the signals waiting in the queue (not those in
// a batch being written), to make room for a push that must not be lost.
// It reports whether it removed any. Called with mu held.
func (s *session) evictSignalsLocked() bool {
	if len(s.signals) == 0 {
		return false
	}
	drop := make(map[int]bool, len(s.signals))
	for _, i := range s.signals {
		drop[i] = true
	}
	kept := s.queue[:0]
	for i, f := range s.queue {
		if drop[i] {
			c := frameCost(f)
			s.queued.frames--
			s.queued.bytes -= c
			s.pushed.frames--
			s.pushed.bytes -= c
			continue
		}
		kept = append(kept, f)
	}
	clear(s.queue[len(kept):])
	s.queue = kept
	s.srv.stats.signalsDropped.Add(uint64(len(s.signals)))
	clear(s.signals)
	s.over.Store(s.full())
	return true
}
