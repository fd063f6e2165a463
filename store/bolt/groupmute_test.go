package bolt

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

var muteTime = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// muteGroup creates group g with alice its owner, bob an admin and carol
// and dave members.
func muteGroup(t *testing.T, s *Store) {
	t.Helper()
	g := im.Group{ID: "g", Name: "G", OwnerID: "alice", JoinPolicy: im.JoinApproval, CreatedAt: muteTime, UpdatedAt: muteTime}
	_, err := s.CreateGroup(t.Context(), g, []im.GroupMember{
		{UserID: "alice", Role: im.RoleOwner, JoinedAt: muteTime},
		{UserID: "bob", Role: im.RoleAdmin, JoinedAt: muteTime},
		{UserID: "carol", Role: im.RoleMember, JoinedAt: muteTime},
		{UserID: "dave", Role: im.RoleMember, JoinedAt: muteTime},
	}, im.AppendRequest{})
	require.NoError(t, err)
}

// sendTo appends a message of sender to group g, created at at, and
// returns its result's error.
func sendTo(t *testing.T, s *Store, sender string, at time.Time) error {
	t.Helper()
	n := time.Now().UnixNano()
	res, err := s.AppendMessages(t.Context(), []im.AppendRequest{{Message: im.Message{
		ConversationID: im.GroupConversationID("g"), ServerID: fmt.Sprintf("s%d", n), SenderID: sender,
		ClientMsgID: fmt.Sprintf("c%d", n), Content: []byte("hi"), CreatedAt: at,
	}, MemberOf: "g"}})
	require.NoError(t, err)
	return res[0].Err
}

func TestGroupMutes(t *testing.T) {
	s, path := newStore(t)
	ctx := t.Context()
	muteGroup(t, s)
	require.NoError(t, sendTo(t, s, "carol", muteTime))
	require.Equal(t, uint64(schemaVersion), fileVersion(t, s))

	// Muting carol keeps her join time and seq; she may not send before
	// her mute ends, and may after.
	before, err := s.GroupMember(ctx, "g", "carol")
	require.NoError(t, err)
	until := muteTime.Add(time.Hour)
	_, err = s.ChangeGroup(ctx, "g", im.GroupChange{Put: []im.GroupMember{{UserID: "carol", Role: im.RoleMember, JoinedAt: muteTime.Add(time.Minute), MutedUntil: until}}})
	require.NoError(t, err)
	require.Equal(t, uint64(schemaProfiles), fileVersion(t, s))
	m, err := s.GroupMember(ctx, "g", "carol")
	require.NoError(t, err)
	want := before
	want.MutedUntil = until
	require.Equal(t, want, m)

	err = sendTo(t, s, "carol", until.Add(-time.Nanosecond))
	require.ErrorIs(t, err, im.ErrMuted)
	require.ErrorIs(t, err, im.ErrPermissionDenied)
	require.NoError(t, sendTo(t, s, "carol", until))
	require.NoError(t, sendTo(t, s, "dave", muteTime))
	err = sendTo(t, s, "erin", muteTime) // not a member: denied, not muted
	require.ErrorIs(t, err, im.ErrPermissionDenied)
	require.NotErrorIs(t, err, im.ErrMuted)

	// MuteAll lets only admins and the owner send.
	g, err := s.Group(ctx, "g")
	require.NoError(t, err)
	g.MuteAll = true
	_, err = s.ChangeGroup(ctx, "g", im.GroupChange{Update: &g})
	require.NoError(t, err)
	require.ErrorIs(t, sendTo(t, s, "dave", muteTime), im.ErrMuted)
	require.ErrorIs(t, sendTo(t, s, "carol", until.Add(time.Hour)), im.ErrMuted)
	require.NoError(t, sendTo(t, s, "bob", muteTime))
	require.NoError(t, sendTo(t, s, "alice", muteTime))
	require.NoError(t, s.Check(ctx))

	// Both survive a reopen; unmuting carol (MutedUntil zero) and the
	// group lets her send at any time again.
	s = reopen(t, s, path)
	g, err = s.Group(ctx, "g")
	require.NoError(t, err)
	require.True(t, g.MuteAll)
	require.Equal(t, im.JoinApproval, g.JoinPolicy)
	m, err = s.GroupMember(ctx, "g", "carol")
	require.NoError(t, err)
	require.Equal(t, want, m)
	g.MuteAll = false
	_, err = s.ChangeGroup(ctx, "g", im.GroupChange{Update: &g, Put: []im.GroupMember{{UserID: "carol", Role: im.RoleMember}}})
	require.NoError(t, err)
	require.NoError(t, sendTo(t, s, "carol", muteTime))
	m, err = s.GroupMember(ctx, "g", "carol")
	require.NoError(t, err)
	require.Equal(t, before, m)
	require.NoError(t, s.Check(ctx))
}

func TestGroupMuteRecords(t *testing.T) {
	g := sampleGroup()
	g.MuteAll = true
	got, err := decodeGroup(g.ID, appendGroup(nil, &g))
	require.NoError(t, err)
	require.Equal(t, g, got)
	g.MuteAll = false
	plain := appendGroup(nil, &g)
	for _, rec := range [][]byte{append(plain[:len(plain):len(plain)], 0), append(plain[:len(plain):len(plain)], 3), append(plain[:len(plain):len(plain)], 1, 1)} {
		_, err := decodeGroup(g.ID, rec)
		require.ErrorIs(t, err, errCorrupt, "%x", rec)
	}

	m := im.GroupMember{UserID: "u", Role: im.RoleMember, JoinedAt: muteTime, JoinSeq: 3, MutedUntil: muteTime.Add(time.Hour)}
	gotM, err := decodeGroupMember("u", appendGroupMember(nil, &m))
	require.NoError(t, err)
	require.Equal(t, m, gotM)
	m.MutedUntil = time.Time{}
	rec := appendGroupMember(nil, &m)
	_, err = decodeGroupMember("u", appendTime(rec, time.Time{})) // a zero mute is never written
	require.ErrorIs(t, err, errCorrupt)
}

func TestCheckMutesNeedTheirSchema(t *testing.T) {
	// A mute in a file that older versions still open is reported.
	s, _ := newStore(t)
	muteGroup(t, s)
	_, err := s.ChangeGroup(t.Context(), "g", im.GroupChange{Put: []im.GroupMember{{UserID: "carol", Role: im.RoleMember, MutedUntil: muteTime}}})
	require.NoError(t, err)
	require.NoError(t, s.Check(t.Context()))
	require.NoError(t, s.db.Update(func(tx *bbolt.Tx) error {
		return putCounter(tx.Bucket([]byte(bucketMeta)), keyVersion, schemaVersion)
	}))
	require.ErrorContains(t, s.Check(t.Context()), "MutedUntil in a file of schema version 4")
}

func joinIDs(t *testing.T, s *Store, group string) []string {
	t.Helper()
	rs, err := s.JoinRequests(t.Context(), group)
	require.NoError(t, err)
	ids := []string{}
	for _, r := range rs {
		ids = append(ids, r.UserID)
	}
	return ids
}

func TestJoinRequests(t *testing.T) {
	s, path := newStore(t)
	ctx := t.Context()
	muteGroup(t, s)
	for i, u := range []string{"erin", "frank", "gina", "hank"} {
		n, err := s.PutJoinRequest(ctx, im.GroupJoinRequest{GroupID: "g", UserID: u, Message: "let me in " + u, CreatedAt: muteTime.Add(time.Duration(3-i%2) * time.Minute)})
		require.NoError(t, err)
		require.Equal(t, i+1, n)
	}
	require.Equal(t, uint64(schemaProfiles), fileVersion(t, s))
	// Again: replaced, still four.
	n, err := s.PutJoinRequest(ctx, im.GroupJoinRequest{GroupID: "g", UserID: "hank", Message: "please", CreatedAt: muteTime})
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.Equal(t, []string{"hank", "frank", "erin", "gina"}, joinIDs(t, s, "g")) // by time, then id
	r, err := s.JoinRequest(ctx, "g", "hank")
	require.NoError(t, err)
	require.Equal(t, im.GroupJoinRequest{GroupID: "g", UserID: "hank", Message: "please", CreatedAt: muteTime}, r)

	_, err = s.PutJoinRequest(ctx, im.GroupJoinRequest{GroupID: "g", UserID: "carol"})
	require.ErrorIs(t, err, im.ErrConflict)
	_, err = s.PutJoinRequest(ctx, im.GroupJoinRequest{GroupID: "nogroup", UserID: "erin"})
	require.ErrorIs(t, err, im.ErrNotFound)
	for _, bad := range []im.GroupJoinRequest{
		{GroupID: "", UserID: "erin"}, {GroupID: "g", UserID: "e\x00"}, {GroupID: "g", UserID: "ivan", Message: "a\x01"},
	} {
		_, err := s.PutJoinRequest(ctx, bad)
		require.ErrorIs(t, err, im.ErrInvalidArgument, "%+v", bad)
	}
	_, err = s.JoinRequest(ctx, "g", "ivan")
	require.ErrorIs(t, err, im.ErrNotFound)
	_, err = s.JoinRequests(ctx, "")
	require.ErrorIs(t, err, im.ErrInvalidArgument)
	require.ErrorIs(t, s.DeleteJoinRequest(ctx, "g", ""), im.ErrInvalidArgument)
	require.Equal(t, []string{}, joinIDs(t, s, "other"))

	// Deleting one; putting a user into the group removes hers in the
	// same commit.
	require.NoError(t, s.DeleteJoinRequest(ctx, "g", "gina"))
	require.ErrorIs(t, s.DeleteJoinRequest(ctx, "g", "gina"), im.ErrNotFound)
	_, err = s.ChangeGroup(ctx, "g", im.GroupChange{Put: []im.GroupMember{{UserID: "frank", Role: im.RoleMember, JoinedAt: muteTime}}})
	require.NoError(t, err)
	require.Equal(t, []string{"hank", "erin"}, joinIDs(t, s, "g"))
	require.NoError(t, s.Check(ctx))

	s = reopen(t, s, path)
	require.Equal(t, []string{"hank", "erin"}, joinIDs(t, s, "g"))
	// A second group's requests stay when the first is deleted with its
	// own.
	_, err = s.CreateGroup(ctx, im.Group{ID: "g2", Name: "G2", OwnerID: "alice"}, []im.GroupMember{{UserID: "alice", Role: im.RoleOwner}}, im.AppendRequest{})
	require.NoError(t, err)
	_, err = s.PutJoinRequest(ctx, im.GroupJoinRequest{GroupID: "g2", UserID: "erin"})
	require.NoError(t, err)
	_, err = s.ChangeGroup(ctx, "g", im.GroupChange{Delete: true})
	require.NoError(t, err)
	require.Equal(t, []string{}, joinIDs(t, s, "g"))
	require.Equal(t, []string{"erin"}, joinIDs(t, s, "g2"))
	require.NoError(t, s.Check(ctx))
}

func TestCheckJoinRequests(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(tx *bbolt.Tx) error
		want   string
	}{
		{"OfMember", func(tx *bbolt.Tx) error {
			k := idKey("g", "carol")
			return tx.Bucket([]byte(bucketJoinRequests)).Put(k, sealIn(bucketJoinRequests, k, appendNote(nil, muteTime, "")))
		}, `join request of "carol" to "g", who is a member`},
		{"NoGroup", func(tx *bbolt.Tx) error {
			k := idKey("gone", "erin")
			return tx.Bucket([]byte(bucketJoinRequests)).Put(k, sealIn(bucketJoinRequests, k, appendNote(nil, muteTime, "")))
		}, `join request of "erin" to "gone", a group that does not exist`},
		{"OldSchema", func(tx *bbolt.Tx) error {
			return putCounter(tx.Bucket([]byte(bucketMeta)), keyVersion, schemaTombstones)
		}, `join request "g\x00erin" in a file of schema version 5`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			muteGroup(t, s)
			_, err := s.PutJoinRequest(t.Context(), im.GroupJoinRequest{GroupID: "g", UserID: "erin"})
			require.NoError(t, err)
			require.NoError(t, s.db.Update(tt.damage))
			err = s.Check(t.Context())
			require.ErrorIs(t, err, im.ErrCorrupt)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
