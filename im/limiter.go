package im

import (
	"sync"
	"time"
)

// userLimiter is a token bucket per user, shared by all of that user's
// connections on this server, so that opening more connections (or
// reconnecting) buys no more of what it limits. The Server keeps one for
// the messages users send (Config.SendRate), one for the signals they
// cause (Config.SignalRate), one for the users they add to groups
// (Config.GroupAddsPerMinute), one for presence requests
// (Config.PresenceQueryRate) and one for recalls.
//
// It holds an entry only for a user who spent a token within the last
// burst/rate seconds: an older bucket is full again, the same as none, so
// forgetting it changes nothing. Memory is bounded by userLimiterShardCap
// entries per shard; a shard full of users who all spent tokens that
// recently refuses newcomers until some buckets have refilled (fail
// closed): spraying new user ids must not lift the limit of the users in
// the table, and a newcomer is refused no longer than a refill.
type userLimiter struct {
	rate, burst float64 // rate < 0: unlimited
	shards      [64]limiterShard
}

const userLimiterShardCap = 4096

type limiterShard struct {
	mu      sync.Mutex
	buckets map[string]*tokenBucket
	pruned  time.Time // the last sweep, so a full shard is swept at most once a quarter refill
}

type tokenBucket struct {
	tokens float64
	at     time.Time
}

// newUserLimiter returns a limiter of rate tokens a second, holding up to
// burst (at least one); a negative rate means unlimited.
func newUserLimiter(rate, burst float64) *userLimiter {
	return &userLimiter{rate: rate, burst: max(1, burst)}
}

// refill is how long an empty bucket takes to be full again.
func (l *userLimiter) refill() time.Duration {
	return time.Duration(l.burst / l.rate * float64(time.Second))
}

// allow takes a token from user's bucket, reporting whether there was one.
func (l *userLimiter) allow(user string, now time.Time) bool {
	return l.allowN(user, 1, now)
}

// allowN takes n tokens from user's bucket if it holds that many, and
// reports whether it did; a refusal takes none. n above the burst is
// never allowed.
func (l *userLimiter) allowN(user string, n float64, now time.Time) bool {
	if l.rate < 0 || n <= 0 {
		return true
	}
	sh := &l.shards[fnv32(user)%uint32(len(l.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b := sh.buckets[user]
	if b == nil {
		if sh.buckets == nil {
			sh.buckets = make(map[string]*tokenBucket)
		}
		if len(sh.buckets) >= userLimiterShardCap && now.Sub(sh.pruned) >= l.refill()/4 {
			sh.pruned = now
			sh.pruneLocked(now, l.refill())
		}
		if len(sh.buckets) >= userLimiterShardCap {
			return false
		}
		b = &tokenBucket{tokens: l.burst, at: now}
		sh.buckets[user] = b
	} else if now.After(b.at) {
		// A clock that steps back refills nothing and takes nothing.
		b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
		b.at = now
	}
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// pruneLocked forgets the buckets that have refilled since their last use.
func (sh *limiterShard) pruneLocked(now time.Time, refill time.Duration) {
	for u, b := range sh.buckets {
		if now.Sub(b.at) >= refill {
			delete(sh.buckets, u)
		}
	}
}

// size is how many buckets the limiter holds, for tests.
func (l *userLimiter) size() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.buckets)
		sh.mu.Unlock()
	}
	return n
}
