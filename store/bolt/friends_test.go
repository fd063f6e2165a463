package bolt

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

var friendTime = time.Date(2026, 4, 5, 6, 7, 8, 9, time.UTC)

func relation(t *testing.T, s *Store, a, b string) im.Relation {
	t.Helper()
	r, err := s.Relation(t.Context(), a, b)
	require.NoError(t, err)
	return r
}

func TestFriends(t *testing.T) {
	s, path := newStore(t)
	ctx := t.Context()

	out, err := s.RequestFriend(ctx, im.FriendRequest{From: "alice", To: "bob", Message: "hi", CreatedAt: friendTime})
	require.NoError(t, err)
	require.Equal(t, im.FriendRequested, out)
	// Repeated: the message and time are replaced.
	out, err = s.RequestFriend(ctx, im.FriendRequest{From: "alice", To: "bob", Message: "hi again", CreatedAt: friendTime.Add(time.Second)})
	require.NoError(t, err)
	require.Equal(t, im.FriendRequested, out)
	_, err = s.RequestFriend(ctx, im.FriendRequest{From: "carol", To: "bob", CreatedAt: friendTime})
	require.NoError(t, err)
	_, err = s.RequestFriend(ctx, im.FriendRequest{From: "bob", To: "dave", CreatedAt: friendTime.Add(-time.Second)})
	require.NoError(t, err)

	in, outgoing, err := s.FriendRequests(ctx, "bob")
	require.NoError(t, err)
	require.Equal(t, []im.FriendRequest{
		{From: "carol", To: "bob", CreatedAt: friendTime},
		{From: "alice", To: "bob", Message: "hi again", CreatedAt: friendTime.Add(time.Second)},
	}, in)
	require.Equal(t, []im.FriendRequest{{From: "bob", To: "dave", CreatedAt: friendTime.Add(-time.Second)}}, outgoing)
	require.Equal(t, im.Relation{UserID: "bob", OtherID: "alice", RequestReceived: true}, relation(t, s, "bob", "alice"))
	require.Equal(t, im.Relation{UserID: "alice", OtherID: "bob", RequestSent: true}, relation(t, s, "alice", "bob"))

	f, err := s.AcceptFriend(ctx, "bob", "alice", friendTime.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, im.Friend{UserID: "bob", FriendID: "alice", CreatedAt: friendTime.Add(time.Minute)}, f)
	_, err = s.AcceptFriend(ctx, "bob", "alice", friendTime)
	require.ErrorIs(t, err, im.ErrNotFound)
	out, err = s.RequestFriend(ctx, im.FriendRequest{From: "alice", To: "bob", CreatedAt: friendTime})
	require.NoError(t, err)
	require.Equal(t, im.FriendAlready, out)

	require.NoError(t, s.RejectFriend(ctx, "bob", "carol"))
	require.ErrorIs(t, s.RejectFriend(ctx, "bob", "carol"), im.ErrNotFound)
	require.NoError(t, s.CancelFriendRequest(ctx, "bob", "dave"))
	require.ErrorIs(t, s.CancelFriendRequest(ctx, "bob", "dave"), im.ErrNotFound)
	in, outgoing, err = s.FriendRequests(ctx, "bob")
	require.NoError(t, err)
	require.NotNil(t, in)
	require.NotNil(t, outgoing)
	require.Empty(t, in)
	require.Empty(t, outgoing)

	f, err = s.SetFriendRemark(ctx, "alice", "bob", "Bobby ✓")
	require.NoError(t, err)
	require.Equal(t, im.Friend{UserID: "alice", FriendID: "bob", Remark: "Bobby ✓", CreatedAt: friendTime.Add(time.Minute)}, f)
	_, err = s.SetFriendRemark(ctx, "alice", "carol", "x")
	require.ErrorIs(t, err, im.ErrNotFound)
	_, err = s.AcceptFriend(ctx, "alice", "erin", friendTime)
	require.ErrorIs(t, err, im.ErrNotFound)
	out, err = s.RequestFriend(ctx, im.FriendRequest{From: "alice", To: "aaron", CreatedAt: friendTime})
	require.NoError(t, err)
	require.Equal(t, im.FriendRequested, out)
	_, err = s.AcceptFriend(ctx, "aaron", "alice", friendTime)
	require.NoError(t, err)
	require.NoError(t, s.Check(ctx))

	// Durable, both sides, each with its own remark, ordered by id.
	s = reopen(t, s, path)
	fs, err := s.Friends(ctx, "alice")
	require.NoError(t, err)
	require.Equal(t, []im.Friend{
		{UserID: "alice", FriendID: "aaron", CreatedAt: friendTime},
		{UserID: "alice", FriendID: "bob", Remark: "Bobby ✓", CreatedAt: friendTime.Add(time.Minute)},
	}, fs)
	fs, err = s.Friends(ctx, "bob")
	require.NoError(t, err)
	require.Equal(t, []im.Friend{{UserID: "bob", FriendID: "alice", CreatedAt: friendTime.Add(time.Minute)}}, fs)
	r := relation(t, s, "alice", "bob")
	require.True(t, r.Friends)
	require.Equal(t, "Bobby ✓", r.Friend.Remark)

	require.NoError(t, s.DeleteFriend(ctx, "bob", "alice"))
	require.ErrorIs(t, s.DeleteFriend(ctx, "alice", "bob"), im.ErrNotFound)
	fs, err = s.Friends(ctx, "bob")
	require.NoError(t, err)
	require.NotNil(t, fs)
	require.Empty(t, fs)
	require.Equal(t, im.Relation{UserID: "alice", OtherID: "bob"}, relation(t, s, "alice", "bob"))
	require.NoError(t, s.Check(ctx))
}

func TestFriendsInvalidInput(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	_, err := s.RequestFriend(ctx, im.FriendRequest{From: "alice", To: "bob"})
	require.NoError(t, err)
	long := strings.Repeat("x", im.MaxFriendMessageLen+1)
	for name, call := range map[string]func() error{
		"RequestSelf":  func() error { _, err := s.RequestFriend(ctx, im.FriendRequest{From: "a", To: "a"}); return err },
		"RequestBadID": func() error { _, err := s.RequestFriend(ctx, im.FriendRequest{From: "a\x00", To: "b"}); return err },
		"RequestEmpty": func() error { _, err := s.RequestFriend(ctx, im.FriendRequest{From: "", To: "b"}); return err },
		"RequestLong": func() error {
			_, err := s.RequestFriend(ctx, im.FriendRequest{From: "bob", To: "alice", Message: long})
			return err
		},
		"RequestControl": func() error {
			_, err := s.RequestFriend(ctx, im.FriendRequest{From: "bob", To: "alice", Message: "a\nb"})
			return err
		},
		"AcceptSelf": func() error { _, err := s.AcceptFriend(ctx, "bob", "bob", friendTime); return err },
		"Reject":     func() error { return s.RejectFriend(ctx, "bob", "") },
		"Cancel":     func() error { return s.CancelFriendRequest(ctx, "alice", "alice") },
		"Delete":     func() error { return s.DeleteFriend(ctx, "alice", "b\x00b") },
		"Remark":     func() error { _, err := s.SetFriendRemark(ctx, "alice", "bob", strings.Repeat("r", 65)); return err },
		"Friends":    func() error { _, err := s.Friends(ctx, ""); return err },
		"Requests":   func() error { _, _, err := s.FriendRequests(ctx, "x\x00"); return err },
		"Relation":   func() error { _, err := s.Relation(ctx, "a", "a"); return err },
		"Block":      func() error { return s.Block(ctx, "bob", "bob", friendTime) },
		"Unblock":    func() error { return s.Unblock(ctx, "", "bob") },
		"Blocks":     func() error { _, err := s.Blocks(ctx, ""); return err },
		"Remove":     func() error { return s.RemoveUserRelations(ctx, "") },
	} {
		require.ErrorIs(t, call(), im.ErrInvalidArgument, name)
	}
	// Nothing changed.
	require.Equal(t, im.Relation{UserID: "bob", OtherID: "alice", RequestReceived: true}, relation(t, s, "bob", "alice"))
	in, _, err := s.FriendRequests(ctx, "bob")
	require.NoError(t, err)
	require.Equal(t, []im.FriendRequest{{From: "alice", To: "bob", CreatedAt: time.Time{}}}, in)
}

func TestFriendRequestsCrossing(t *testing.T) {
	// Two users who ask each other at once end as one friendship with no
	// request left, whichever commits first.
	for range 20 {
		s, _ := newStore(t)
		ctx := t.Context()
		var wg sync.WaitGroup
		outs := make([]im.FriendOutcome, 2)
		errs := make([]error, 2)
		for i, p := range [2][2]string{{"alice", "bob"}, {"bob", "alice"}} {
			wg.Go(func() {
				outs[i], errs[i] = s.RequestFriend(ctx, im.FriendRequest{From: p[0], To: p[1], CreatedAt: friendTime})
			})
		}
		wg.Wait()
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])
		require.ElementsMatch(t, []im.FriendOutcome{im.FriendRequested, im.FriendAccepted}, outs)
		for _, p := range [2][2]string{{"alice", "bob"}, {"bob", "alice"}} {
			require.Equal(t, im.Relation{UserID: p[0], OtherID: p[1], Friends: true, Friend: im.Friend{UserID: p[0], FriendID: p[1], CreatedAt: friendTime}}, relation(t, s, p[0], p[1]))
		}
		require.NoError(t, s.Check(ctx))
		require.NoError(t, s.Close())
	}
}

func TestBlocks(t *testing.T) {
	s, path := newStore(t)
	ctx := t.Context()
	_, err := s.RequestFriend(ctx, im.FriendRequest{From: "alice", To: "bob", CreatedAt: friendTime})
	require.NoError(t, err)
	_, err = s.AcceptFriend(ctx, "bob", "alice", friendTime)
	require.NoError(t, err)
	_, err = s.RequestFriend(ctx, im.FriendRequest{From: "carol", To: "alice", CreatedAt: friendTime})
	require.NoError(t, err)
	_, err = s.RequestFriend(ctx, im.FriendRequest{From: "alice", To: "dave", CreatedAt: friendTime})
	require.NoError(t, err)

	// A block ends the friendship and the requests, either way, at once.
	require.NoError(t, s.Block(ctx, "bob", "alice", friendTime.Add(time.Hour)))
	require.NoError(t, s.Block(ctx, "alice", "carol", friendTime.Add(time.Hour)))
	require.NoError(t, s.Block(ctx, "dave", "alice", friendTime.Add(time.Hour)))
	require.NoError(t, s.Block(ctx, "bob", "alice", friendTime.Add(2*time.Hour))) // again: nothing changes
	require.Equal(t, im.Relation{UserID: "alice", OtherID: "bob", BlockedBy: true}, relation(t, s, "alice", "bob"))
	require.Equal(t, im.Relation{UserID: "alice", OtherID: "carol", Blocking: true}, relation(t, s, "alice", "carol"))
	require.Equal(t, im.Relation{UserID: "alice", OtherID: "dave", BlockedBy: true}, relation(t, s, "alice", "dave"))
	fs, err := s.Friends(ctx, "alice")
	require.NoError(t, err)
	require.Empty(t, fs)
	in, outgoing, err := s.FriendRequests(ctx, "alice")
	require.NoError(t, err)
	require.Empty(t, in)
	require.Empty(t, outgoing)

	// Nobody asks across a block, either way, and nothing is written.
	for _, p := range [][2]string{{"alice", "bob"}, {"bob", "alice"}, {"carol", "alice"}} {
		_, err := s.RequestFriend(ctx, im.FriendRequest{From: p[0], To: p[1], CreatedAt: friendTime})
		require.ErrorIs(t, err, im.ErrPermissionDenied, "%v", p)
	}
	in, _, err = s.FriendRequests(ctx, "alice")
	require.NoError(t, err)
	require.Empty(t, in)

	require.NoError(t, s.Block(ctx, "alice", "bob", friendTime))
	s = reopen(t, s, path)
	bs, err := s.Blocks(ctx, "alice")
	require.NoError(t, err)
	require.Equal(t, []im.Block{
		{BlockerID: "alice", BlockedID: "bob", CreatedAt: friendTime},
		{BlockerID: "alice", BlockedID: "carol", CreatedAt: friendTime.Add(time.Hour)},
	}, bs)
	bs, err = s.Blocks(ctx, "bob")
	require.NoError(t, err)
	require.Equal(t, []im.Block{{BlockerID: "bob", BlockedID: "alice", CreatedAt: friendTime.Add(time.Hour)}}, bs)

	// Unblocking one side leaves the other's block.
	require.NoError(t, s.Unblock(ctx, "bob", "alice"))
	require.NoError(t, s.Unblock(ctx, "bob", "alice")) // none: nothing happens
	require.Equal(t, im.Relation{UserID: "bob", OtherID: "alice", BlockedBy: true}, relation(t, s, "bob", "alice"))
	_, err = s.RequestFriend(ctx, im.FriendRequest{From: "bob", To: "alice", CreatedAt: friendTime})
	require.ErrorIs(t, err, im.ErrPermissionDenied)
	require.NoError(t, s.Unblock(ctx, "alice", "bob"))
	out, err := s.RequestFriend(ctx, im.FriendRequest{From: "bob", To: "alice", CreatedAt: friendTime})
	require.NoError(t, err)
	require.Equal(t, im.FriendRequested, out)
	bs, err = s.Blocks(ctx, "bob")
	require.NoError(t, err)
	require.NotNil(t, bs)
	require.Empty(t, bs)
	require.NoError(t, s.Check(ctx))
}

func TestRemoveUserRelations(t *testing.T) {
	s, path := newStore(t)
	ctx := t.Context()
	befriend := func(a, b string) {
		_, err := s.RequestFriend(ctx, im.FriendRequest{From: a, To: b, CreatedAt: friendTime})
		require.NoError(t, err)
		_, err = s.AcceptFriend(ctx, b, a, friendTime)
		require.NoError(t, err)
	}
	befriend("alice", "bob")
	befriend("alice", "carol")
	befriend("bob", "carol")
	_, err := s.RequestFriend(ctx, im.FriendRequest{From: "alice", To: "dave", CreatedAt: friendTime})
	require.NoError(t, err)
	_, err = s.RequestFriend(ctx, im.FriendRequest{From: "erin", To: "alice", CreatedAt: friendTime})
	require.NoError(t, err)
	_, err = s.RequestFriend(ctx, im.FriendRequest{From: "erin", To: "bob", CreatedAt: friendTime})
	require.NoError(t, err)
	require.NoError(t, s.Block(ctx, "alice", "frank", friendTime))
	require.NoError(t, s.Block(ctx, "gina", "alice", friendTime))
	require.NoError(t, s.Block(ctx, "gina", "bob", friendTime))

	require.NoError(t, s.RemoveUserRelations(ctx, "alice"))
	require.NoError(t, s.RemoveUserRelations(ctx, "alice")) // nothing left: nothing happens
	s = reopen(t, s, path)
	for _, o := range []string{"bob", "carol", "dave", "erin", "frank", "gina"} {
		require.Equal(t, im.Relation{UserID: "alice", OtherID: o}, relation(t, s, "alice", o), o)
	}
	fs, err := s.Friends(ctx, "bob")
	require.NoError(t, err)
	require.Equal(t, []im.Friend{{UserID: "bob", FriendID: "carol", CreatedAt: friendTime}}, fs)
	in, _, err := s.FriendRequests(ctx, "bob")
	require.NoError(t, err)
	require.Equal(t, []im.FriendRequest{{From: "erin", To: "bob", CreatedAt: friendTime}}, in)
	bs, err := s.Blocks(ctx, "gina")
	require.NoError(t, err)
	require.Equal(t, []im.Block{{BlockerID: "gina", BlockedID: "bob", CreatedAt: friendTime}}, bs)
	require.NoError(t, s.Check(ctx))
}

func TestFriendsCancelledContext(t *testing.T) {
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.RequestFriend(ctx, im.FriendRequest{From: "alice", To: "bob"})
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, s.Block(ctx, "alice", "bob", friendTime), context.Canceled)
	_, err = s.Friends(ctx, "alice")
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, im.Relation{UserID: "alice", OtherID: "bob"}, relation(t, s, "alice", "bob"))
}

func TestCheckFriends(t *testing.T) {
	put := func(bucket string, k []byte, rec []byte) func(tx *bbolt.Tx) error {
		return func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte(bucket)).Put(k, sealIn(bucket, k, rec))
		}
	}
	del := func(bucket string, k []byte) func(tx *bbolt.Tx) error {
		return func(tx *bbolt.Tx) error { return tx.Bucket([]byte(bucket)).Delete(k) }
	}
	for _, tt := range []struct {
		name   string
		damage func(tx *bbolt.Tx) error
		want   string
	}{
		{"OneSided", del(bucketFriends, idKey("bob", "alice")), `friendship "alice\x00bob": the other side, of "bob", is missing`},
		{"BlockBesideFriendship", put(bucketBlocks, idKey("alice", "bob"), appendNote(nil, friendTime, "")), `friendship "alice\x00bob": a block stands beside it`},
		{"RequestBesideFriendship", put(bucketFriendRequests, idKey("alice", "bob"), appendNote(nil, friendTime, "")), `friendship "alice\x00bob": a request stands beside it`},
		{"BlockBesideRequest", put(bucketBlocks, idKey("dave", "carol"), appendNote(nil, friendTime, "")), `friend request "carol\x00dave": a block stands beside it`},
		{"RequestNotIndexed", del(bucketFriendRequestsTo, idKey("dave", "carol")), `it is missing from the index of requests by receiver`},
		{"IndexWithoutRequest", put(bucketFriendRequestsTo, idKey("dave", "erin"), nil), `friend request index "dave\x00erin": it names no request`},
		{"BlockNotIndexed", del(bucketBlockedBy, idKey("gina", "frank")), `block "frank\x00gina": it is missing from the index`},
		{"SelfPair", put(bucketFriends, idKey("x", "x"), appendNote(nil, friendTime, "")), `friendship key "x\x00x" names no two users`},
		{"Damaged", put(bucketBlocks, idKey("frank", "gina"), []byte{9}), `block "frank\x00gina"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			ctx := t.Context()
			_, err := s.RequestFriend(ctx, im.FriendRequest{From: "alice", To: "bob", CreatedAt: friendTime})
			require.NoError(t, err)
			_, err = s.AcceptFriend(ctx, "bob", "alice", friendTime)
			require.NoError(t, err)
			_, err = s.RequestFriend(ctx, im.FriendRequest{From: "carol", To: "dave", CreatedAt: friendTime})
			require.NoError(t, err)
			require.NoError(t, s.Block(ctx, "frank", "gina", friendTime))
			require.NoError(t, s.Check(ctx))
			require.NoError(t, s.db.Update(tt.damage))
			err = s.Check(ctx)
			require.ErrorIs(t, err, im.ErrCorrupt)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
