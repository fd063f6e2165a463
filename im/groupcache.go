package im

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// memberSet is a snapshot of a group's members at one Version of the group.
// It is never changed once built; a change to the group replaces it.
type memberSet struct {
	version int64
	ids     []string
	roles   map[string]GroupRole
	// muteAll is the group's MuteAll, and mutedUntil the MutedUntil of
	// the members who have one: what a send checks before it is
	// committed (the Store checks again at commit).
	muteAll    bool
	mutedUntil map[string]time.Time
}

// newMemberSet returns the members of g, at g's Version and with its
// MuteAll.
func newMemberSet(g Group, members []GroupMember) *memberSet {
	ms := &memberSet{version: g.Version, muteAll: g.MuteAll, ids: make([]string, len(members)), roles: make(map[string]GroupRole, len(members))}
	for i, m := range members {
		ms.ids[i] = m.UserID
		ms.roles[m.UserID] = m.Role
		if !m.MutedUntil.IsZero() {
			if ms.mutedUntil == nil {
				ms.mutedUntil = make(map[string]time.Time)
			}
			ms.mutedUntil[m.UserID] = m.MutedUntil
		}
	}
	return ms
}

// muted reports whether user, a member, may not send at time at.
func (ms *memberSet) muted(user string, at time.Time) bool {
	if ms.mutedUntil[user].After(at) {
		return true
	}
	role := ms.roles[user]
	return ms.muteAll && role != 0 && role < RoleAdmin
}

// groupCacheMembers bounds the member entries the cache holds across all
// groups (about 100 bytes each).
const groupCacheMembers = 1 << 20

// groupCache keeps the member sets of the groups in use, so that a send into
// a group reads nothing from the Store: not to find the recipients, nor to
// refuse a non-member early. It is an optimisation only: the Store checks
// the sender of every group message when it commits it (MemberOf), and
// reports the group's Version then, so the cache never decides who may
// send or read. An entry is loaded on first use and replaced by the
// members a change of this Server leaves; a commit reporting a newer
// Version (another server changed the group) reloads it before the message
// is delivered.
type groupCache struct {
	store GroupStore
	base  context.Context // the server's: loads end when it closes
	max   int             // member entries held at most: groupCacheMembers
	// panicked, if set, logs and counts a panic of the store and returns
	// the error the read fails with (Server.storePanicked).
	panicked func(call string, v any) error

	// changes serialises the changes this Server makes to one group. It
	// only saves conflicts between them: the Store's version check is what
	// keeps a change's decision true until it is stored.
	changes [64]sync.Mutex

	mu      sync.RWMutex
	sets    map[string]*memberSet
	held    int // member entries across sets
	loading map[string]*groupLoad
	// gen counts deletions; a load that started before one may have read
	// the deleted group and is not cached. Otherwise the newer Version
	// wins.
	gen uint64
}

type groupLoad struct {
	done chan struct{}
	set  *memberSet
	err  error
}

func newGroupCache(base context.Context, store GroupStore) *groupCache {
	return &groupCache{store: store, base: base, max: groupCacheMembers, sets: make(map[string]*memberSet), loading: make(map[string]*groupLoad)}
}

// get returns the members of group id, loading them if they are not
// cached. Concurrent first uses of one group share one load. ErrNotFound
// if there is no such group.
func (c *groupCache) get(ctx context.Context, id string) (*memberSet, error) {
	c.mu.RLock()
	set := c.sets[id]
	c.mu.RUnlock()
	if set != nil {
		return set, nil
	}

	c.mu.Lock()
	if set := c.sets[id]; set != nil {
		c.mu.Unlock()
		return set, nil
	}
	l := c.loading[id]
	if l == nil {
		l = &groupLoad{done: make(chan struct{})}
		c.loading[id] = l
		gen := c.gen
		c.mu.Unlock()
		c.load(id, l, gen)
	} else {
		c.mu.Unlock()
	}
	select {
	case <-l.done:
		return l.set, l.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// load reads group id's members for l. It runs on the goroutine of the
// first caller, and does not give up when that caller's ctx ends, because
// others may be waiting for it.
func (c *groupCache) load(id string, l *groupLoad, gen uint64) {
	g, members, err := c.read(id)
	if err == nil {
		l.set = newMemberSet(g, members)
	}
	l.err = err

	c.mu.Lock()
	delete(c.loading, id)
	if err == nil && gen == c.gen {
		c.put(id, l.set)
	}
	c.mu.Unlock()
	close(l.done)
}

// read reads group id and its members from the store. A panic in the store
// is the read's error (through panicked, which logs and counts it), so that
// the callers waiting for a load are not left waiting, and a delivery
// goroutine reloading members does not die.
func (c *groupCache) read(id string) (g Group, members []GroupMember, err error) {
	defer func() {
		if v := recover(); v != nil {
			if c.panicked != nil {
				err = c.panicked("GroupMembers", v)
			} else {
				err = fmt.Errorf("im: Store.GroupMembers panicked: %v", v)
			}
		}
	}()
	return c.store.GroupMembers(c.base, id)
}

// put caches set for id, unless a newer version is cached, evicting other
// groups to stay within max. Called with mu held.
func (c *groupCache) put(id string, set *memberSet) {
	if old := c.sets[id]; old != nil {
		if old.version >= set.version {
			return
		}
		c.held -= len(old.ids)
	}
	for other, s := range c.sets {
		if c.held+len(set.ids) <= c.max {
			break
		}
		if other != id {
			delete(c.sets, other)
			c.held -= len(s.ids)
		}
	}
	c.sets[id] = set
	c.held += len(set.ids)
}

// peek returns the cached members of group id, or nil, without loading.
func (c *groupCache) peek(id string) *memberSet {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.sets[id]
}

// offer caches set, the members of group id as a commit left them, unless
// a newer version is cached.
func (c *groupCache) offer(id string, set *memberSet) {
	c.mu.Lock()
	c.put(id, set)
	c.mu.Unlock()
}

// refresh reads group id's members from the store and caches them, after a
// commit reported a version newer than the cached one. It returns the set,
// or nil if the group is gone or the read failed (then the entry is
// dropped, to be loaded again on next use).
func (c *groupCache) refresh(id string) (*memberSet, error) {
	c.mu.RLock()
	gen := c.gen
	c.mu.RUnlock()
	g, members, err := c.read(id)
	if err != nil {
		c.invalidate(id)
		return nil, err
	}
	set := newMemberSet(g, members)
	c.mu.Lock()
	if gen == c.gen {
		c.put(id, set)
	}
	c.mu.Unlock()
	return set, nil
}

// invalidate forgets group id, and any load in progress, after it was
// deleted.
func (c *groupCache) invalidate(id string) {
	c.mu.Lock()
	if old := c.sets[id]; old != nil {
		c.held -= len(old.ids)
		delete(c.sets, id)
	}
	c.gen++
	c.mu.Unlock()
}

// lock serialises changes to group id and returns the unlock function.
func (c *groupCache) lock(id string) func() {
	mu := &c.changes[fnv32(id)%uint32(len(c.changes))]
	mu.Lock()
	return mu.Unlock
}
