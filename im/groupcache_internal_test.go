package im

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	testWait  = 10 * time.Second
	pollEvery = time.Millisecond
)

// countingGroups is a GroupStore whose GroupMembers counts its calls.
type countingGroups struct {
	GroupStore // other methods are not called
	calls      atomic.Int32
	gate       chan struct{}
	mu         sync.Mutex
	members    map[string][]GroupMember
	versions   map[string]int64
}

// GroupMembers reads the members, then waits at the gate: a read that
// returns after a change made meanwhile.
func (s *countingGroups) GroupMembers(ctx context.Context, id string) (Group, []GroupMember, error) {
	s.mu.Lock()
	m, ok := s.members[id]
	v := s.versions[id]
	s.mu.Unlock()
	s.calls.Add(1)
	if s.gate != nil {
		<-s.gate
	}
	if !ok {
		return Group{}, nil, fmt.Errorf("group %q: %w", id, ErrNotFound)
	}
	return Group{ID: id, Version: v, MemberCount: len(m)}, m, nil
}

func (s *countingGroups) set(id string, users ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ms []GroupMember
	for _, u := range users {
		ms = append(ms, GroupMember{UserID: u, Role: RoleMember})
	}
	s.members[id] = ms
	s.versions[id]++
}

func newCountingGroups() *countingGroups {
	return &countingGroups{members: map[string][]GroupMember{}, versions: map[string]int64{}}
}

func TestGroupCacheLoadsOncePerGroup(t *testing.T) {
	store := newCountingGroups()
	store.set("g", "a", "b")
	store.gate = make(chan struct{})
	c := newGroupCache(context.Background(), store)

	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			set, err := c.get(context.Background(), "g")
			if err == nil && len(set.ids) != 2 {
				err = fmt.Errorf("got %v", set.ids)
			}
			require.NoError(t, err)
		}()
	}
	require.Eventually(t, func() bool { return store.calls.Load() == 1 }, testWait, pollEvery)
	close(store.gate)
	wg.Wait()
	require.Equal(t, int32(1), store.calls.Load(), "racing first uses share one load")
	_, err := c.get(context.Background(), "g")
	require.NoError(t, err)
	require.Equal(t, int32(1), store.calls.Load(), "then it is cached")

	_, err = c.get(context.Background(), "nosuch")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = c.get(context.Background(), "nosuch")
	require.ErrorIs(t, err, ErrNotFound)
	require.Equal(t, int32(3), store.calls.Load(), "a missing group is not cached")
}

// A load that started before a deletion may have read the old members: it
// answers its callers, but is not cached.
func TestGroupCacheDropsALoadThatRacedAChange(t *testing.T) {
	store := newCountingGroups()
	store.set("g", "a")
	store.gate = make(chan struct{})
	c := newGroupCache(context.Background(), store)

	done := make(chan *memberSet)
	go func() {
		set, _ := c.get(context.Background(), "g")
		done <- set
	}()
	require.Eventually(t, func() bool { return store.calls.Load() == 1 }, testWait, pollEvery)
	store.set("g", "a", "b") // the change, stored …
	c.invalidate("g")        // … and the group forgotten while the old read is in flight
	close(store.gate)
	require.Len(t, (<-done).ids, 1)
	require.Nil(t, c.peek("g"))
	set, err := c.get(context.Background(), "g")
	require.NoError(t, err)
	require.Len(t, set.ids, 2, "the next use reads the new members")
}

func TestGroupCacheEvictsPastItsBound(t *testing.T) {
	store := newCountingGroups()
	c := newGroupCache(context.Background(), store)
	c.max = 10
	for i := range 5 {
		store.set(fmt.Sprint("g", i), "a", "b", "c", "d")
		_, err := c.get(context.Background(), fmt.Sprint("g", i))
		require.NoError(t, err)
		require.LessOrEqual(t, c.held, c.max)
	}
	require.NotNil(t, c.peek("g4"), "the newest is kept")
	held := 0
	for _, s := range c.sets {
		held += len(s.ids)
	}
	require.Equal(t, held, c.held, "the count matches what is held")
	require.Len(t, c.sets, 2)
}

// A set is replaced only by a newer version: a slow load of an older state
// does not undo what a commit left.
func TestGroupCacheKeepsTheNewerVersion(t *testing.T) {
	store := newCountingGroups()
	store.set("g", "a", "b") // version 1
	c := newGroupCache(context.Background(), store)
	c.offer("g", newMemberSet(Group{Version: 3}, []GroupMember{{UserID: "a", Role: RoleMember}}))
	_, err := c.refresh("g")
	require.NoError(t, err)
	require.Equal(t, int64(3), c.peek("g").version, "the older read is not cached")
	require.Len(t, c.peek("g").ids, 1)

	store.set("g", "a", "b", "c")
	store.set("g", "a", "b", "c", "d") // version 3, as cached: no news
	store.set("g", "c")                // version 4
	set, err := c.refresh("g")
	require.NoError(t, err)
	require.Equal(t, int64(4), set.version)
	require.Equal(t, []string{"c"}, c.peek("g").ids)
}
