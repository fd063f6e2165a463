package im_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/store/bolt"
)

// elsewhereStore is a Store shared with "another server": before the next
// ChangeGroup of this one is stored, it runs meanwhile, which changes the
// group straight in the store, as another process would.
type elsewhereStore struct {
	*bolt.Store
	mu        sync.Mutex
	meanwhile func(s *bolt.Store)
}

func (s *elsewhereStore) ChangeGroup(ctx context.Context, id string, ch im.GroupChange) (im.AppendResult, error) {
	s.mu.Lock()
	f := s.meanwhile
	s.meanwhile = nil
	s.mu.Unlock()
	if f != nil {
		f(s.Store)
	}
	return s.Store.ChangeGroup(ctx, id, ch)
}

func (s *elsewhereStore) then(f func(s *bolt.Store)) {
	s.mu.Lock()
	s.meanwhile = f
	s.mu.Unlock()
}

func newElsewhereServer(t *testing.T, cfg im.Config) (*imtest.Server, *elsewhereStore) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "im.db"), bolt.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	es := &elsewhereStore{Store: st}
	cfg.Store = es
	cfg.GroupAddPolicy = anyoneAdds
	return imtest.NewServer(t, imtest.Options{Config: cfg}), es
}

// A change is decided on the group's version: if another server changed
// the group before it is stored, it is decided again on the new state, so
// an admin demoted meanwhile kicks nobody.
func TestGroupChangeIsDecidedAgainAfterAnotherServersChange(t *testing.T) {
	srv, store := newElsewhereServer(t, im.Config{})
	ctx := testCtx(t)
	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "g"}, []string{bob, carol})
	require.NoError(t, err)
	require.NoError(t, srv.SetGroupRole(ctx, g.ID, alice, bob, im.RoleAdmin))

	store.then(func(s *bolt.Store) {
		_, err := s.ChangeGroup(ctx, g.ID, im.GroupChange{Put: []im.GroupMember{{UserID: bob, Role: im.RoleMember}}})
		require.NoError(t, err)
	})
	err = srv.KickFromGroup(ctx, g.ID, bob, []string{carol})
	require.ErrorIs(t, err, im.ErrPermissionDenied, "bob is no admin any more")
	members, err := srv.GroupMembers(ctx, g.ID, alice)
	require.NoError(t, err)
	require.Len(t, members, 3, "carol is still a member")

	// And a change that still holds on the new state goes through, on it.
	store.then(func(s *bolt.Store) {
		_, err := s.ChangeGroup(ctx, g.ID, im.GroupChange{Put: []im.GroupMember{{UserID: dave, Role: im.RoleMember}}})
		require.NoError(t, err)
	})
	require.NoError(t, srv.KickFromGroup(ctx, g.ID, alice, []string{carol}))
	got, err := srv.Group(ctx, g.ID, alice)
	require.NoError(t, err)
	require.Equal(t, 3, got.MemberCount, "alice, bob and dave")
}

// A join decided when there was room is refused if another server filled
// the group meanwhile.
func TestGroupJoinStopsAtTheLimitAfterAnotherServersJoin(t *testing.T) {
	srv, store := newElsewhereServer(t, im.Config{MaxGroupMembers: 3})
	ctx := testCtx(t)
	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "g", JoinPolicy: im.JoinOpen}, []string{bob})
	require.NoError(t, err)
	store.then(func(s *bolt.Store) {
		_, err := s.ChangeGroup(ctx, g.ID, im.GroupChange{MaxMembers: 3, Put: []im.GroupMember{{UserID: dave, Role: im.RoleMember}}})
		require.NoError(t, err)
	})
	_, err = srv.JoinGroup(ctx, g.ID, carol)
	require.True(t, errors.Is(err, im.ErrLimitExceeded), "join: %v", err)
	got, err := srv.Group(ctx, g.ID, alice)
	require.NoError(t, err)
	require.Equal(t, 3, got.MemberCount)
}

// A member removed by another server is refused at commit, though this
// server's cache still lists her, and is pushed nothing more: the commit of
// the next group message reports the new version and the members are read
// again before it is pushed.
func TestGroupMemberRemovedElsewhereCannotSendNorIsPushed(t *testing.T) {
	srv, store := newElsewhereServer(t, im.Config{})
	ctx := testCtx(t)
	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "g"}, []string{bob, carol})
	require.NoError(t, err)
	b := srv.Dial(t, "tcp", bob)
	c := srv.Dial(t, "tcp", carol)
	_, err = sendToGroup(t, c, g.ID, "cached")
	require.NoError(t, err)

	_, err = store.Store.ChangeGroup(ctx, g.ID, im.GroupChange{Remove: []string{carol}})
	require.NoError(t, err)
	_, err = sendToGroup(t, c, g.ID, "after")
	var e *client.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, imv1.ErrorCode_ERR_PERMISSION_DENIED, e.Code)

	_, err = sendToGroup(t, b, g.ID, "secret")
	require.NoError(t, err)
	sendText(t, b, carol, "marker")
	for {
		m := nextMessage(t, c)
		require.NotEqual(t, "secret", string(m.Content), "a removed member was pushed a group message")
		if string(m.Content) == "marker" {
			break
		}
	}
	_, err = c.SyncRange(ctx, im.GroupConversationID(g.ID), 1, 0, 100)
	require.ErrorAs(t, err, &e)
	require.Equal(t, imv1.ErrorCode_ERR_PERMISSION_DENIED, e.Code)
}

// A member added by another server sends through this one, whose cache
// does not list her yet, and is pushed the group's messages from then on.
func TestGroupMemberAddedElsewhereSendsAndIsPushed(t *testing.T) {
	srv, store := newElsewhereServer(t, im.Config{})
	ctx := testCtx(t)
	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "g"}, []string{bob})
	require.NoError(t, err)
	b := srv.Dial(t, "tcp", bob)
	_, err = sendToGroup(t, b, g.ID, "cached") // the cache has alice and bob
	require.NoError(t, err)

	_, err = store.Store.ChangeGroup(ctx, g.ID, im.GroupChange{Put: []im.GroupMember{{UserID: carol, Role: im.RoleMember}}})
	require.NoError(t, err)
	c := srv.Dial(t, "tcp", carol)
	_, err = sendToGroup(t, c, g.ID, "hello from carol")
	require.NoError(t, err, "a member added elsewhere sends")
	_, err = sendToGroup(t, b, g.ID, "welcome")
	require.NoError(t, err)
	for {
		m := nextMessage(t, c)
		if string(m.Content) == "welcome" {
			break
		}
	}
}
