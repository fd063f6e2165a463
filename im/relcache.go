package im

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// relationTTL is how long the Server trusts what it read of two users'
// relation. Changes made through this Server take effect at once (they
// drop the entry); changes made through another Server sharing the Store
// take effect here within relationTTL.
const relationTTL = 2 * time.Second

// relationCacheShardCap bounds the entries of one shard, so the cache holds
// at most 64 × 4096 pairs.
const relationCacheShardCap = 4096

// relationCache keeps, per pair of users, whether either blocks the other
// and whether they are friends, so that a one-to-one message costs no
// Store read for them. It is filled on a miss and refreshed after
// relationTTL.
type relationCache struct {
	seed   maphash.Seed
	ttl    time.Duration
	load   func(ctx context.Context, a, b string) (Relation, error)
	shards [64]relationShard
}

type relationShard struct {
	mu sync.Mutex
	// gen counts the invalidations of the shard: a fill that read the
	// Store before one is not stored, since it may be older than the
	// change that was made.
	gen uint64
	m   map[pairKey]relationEntry
}

// pairKey is two user ids, the lesser first.
type pairKey struct{ a, b string }

func pairOf(a, b string) pairKey {
	if b < a {
		a, b = b, a
	}
	return pairKey{a, b}
}

type relationEntry struct {
	blocked, friends bool
	at               time.Time
}

func newRelationCache(ttl time.Duration, load func(ctx context.Context, a, b string) (Relation, error)) *relationCache {
	return &relationCache{seed: maphash.MakeSeed(), ttl: ttl, load: load}
}

func (c *relationCache) shard(k pairKey) *relationShard {
	return &c.shards[maphash.Comparable(c.seed, k)%uint64(len(c.shards))]
}

// get returns the relation of a and b, from the cache when it is fresh.
func (c *relationCache) get(ctx context.Context, a, b string, now time.Time) (relationEntry, error) {
	k := pairOf(a, b)
	sh := c.shard(k)
	sh.mu.Lock()
	e, ok := sh.m[k]
	gen := sh.gen
	sh.mu.Unlock()
	if ok && now.Sub(e.at) < c.ttl {
		return e, nil
	}
	r, err := c.load(ctx, a, b)
	if err != nil {
		return relationEntry{}, err
	}
	e = relationEntry{blocked: r.Blocked(), friends: r.Friends, at: now}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.gen != gen {
		return e, nil
	}
	if sh.m == nil {
		sh.m = make(map[pairKey]relationEntry)
	}
	if _, ok := sh.m[k]; !ok && len(sh.m) >= relationCacheShardCap {
		// Stale entries go first; if none is, any (map order), which
		// only costs a read later.
		n := 0
		for k2, e2 := range sh.m {
			if now.Sub(e2.at) >= c.ttl || n < relationCacheShardCap/8 {
				delete(sh.m, k2)
				n++
			}
		}
	}
	sh.m[k] = e
	return e, nil
}

// invalidate drops what the cache knows of a and b.
func (c *relationCache) invalidate(a, b string) {
	k := pairOf(a, b)
	sh := c.shard(k)
	sh.mu.Lock()
	delete(sh.m, k)
	sh.gen++
	sh.mu.Unlock()
}
