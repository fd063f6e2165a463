package bolt

import (
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
)

func TestOpenFileWithoutGroupBuckets(t *testing.T) {
	// A file written before groups existed has schema version 3 and none
	// of their buckets: Open adds them, and keeps everything else.
	path := filepath.Join(t.TempDir(), "im.db")
	s, err := Open(path, Options{})
	require.NoError(t, err)
	ctx := t.Context()
	res, err := s.AppendMessages(ctx, []im.AppendRequest{{
		Message: im.Message{ConversationID: "group_g", ServerID: "s1", SenderID: "alice", ClientMsgID: "c1", Content: []byte("hello")},
		Members: []string{"alice"},
	}})
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
	require.NoError(t, s.CreateAccount(ctx, auth.Account{UserID: "alice", Username: "alice"}))
	require.NoError(t, s.Close())

	db, err := bbolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bbolt.Tx) error {
		for _, name := range addedBuckets() {
			if err := tx.DeleteBucket([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, db.Close())

	s, err = Open(path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	ms, err := s.Messages(ctx, "group_g", 1, 0, 10)
	require.NoError(t, err)
	require.Len(t, ms, 1)
	_, err = s.Account(ctx, "alice")
	require.NoError(t, err)

	_, err = s.Group(ctx, "g")
	require.ErrorIs(t, err, im.ErrNotFound)
	gs, err := s.UserGroups(ctx, "alice")
	require.NoError(t, err)
	require.Empty(t, gs)
	g := im.Group{ID: "g", Name: "G", OwnerID: "alice"}
	_, err = s.CreateGroup(ctx, g, []im.GroupMember{{UserID: "alice", Role: im.RoleOwner}}, im.AppendRequest{})
	require.NoError(t, err)
	gs, err = s.UserGroups(ctx, "alice")
	require.NoError(t, err)
	require.Equal(t, []string{"g"}, gs)

	// No new schema version: the file stays readable by the versions
	// before groups, which check only their own buckets.
	require.NoError(t, s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket([]byte(bucketMeta)).Get([]byte(keyVersion))
		require.Equal(t, uint64(schemaVersion), binary.BigEndian.Uint64(v))
		for _, name := range addedBuckets() {
			require.NotNil(t, tx.Bucket([]byte(name)), name)
		}
		return nil
	}))
}

func sampleGroup() im.Group {
	return im.Group{
		ID:           "g1",
		Name:         "Group ✓",
		FaceURL:      "https://example.com/g1.png",
		Introduction: "intro",
		Notification: "notice",
		Extra:        `{"k":1}`,
		OwnerID:      "alice",
		JoinPolicy:   im.JoinInviteOnly,
		History:      im.HistoryFull,
		MemberCount:  3,
		Version:      12,
		CreatedAt:    time.Date(2025, 1, 2, 3, 4, 5, 678_901_234, time.UTC),
		UpdatedAt:    time.Date(2025, 2, 3, 4, 5, 6, 7, time.UTC),
	}
}

func TestGroupRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		g    im.Group
	}{
		{"Full", sampleGroup()},
		{"Minimal", im.Group{ID: "g", Name: "n", OwnerID: "o"}},
		{"OldTime", im.Group{ID: "g", Name: "n", OwnerID: "o", CreatedAt: time.Date(1800, 1, 1, 0, 0, 0, 1, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeGroup(tt.g.ID, appendGroup(nil, &tt.g))
			require.NoError(t, err)
			require.True(t, got.CreatedAt.Equal(tt.g.CreatedAt), "CreatedAt %v, want %v", got.CreatedAt, tt.g.CreatedAt)
			require.True(t, got.UpdatedAt.Equal(tt.g.UpdatedAt), "UpdatedAt %v, want %v", got.UpdatedAt, tt.g.UpdatedAt)
			got.CreatedAt, got.UpdatedAt, tt.g.CreatedAt, tt.g.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			require.Equal(t, tt.g, got)
		})
	}
	for _, m := range []im.GroupMember{
		{UserID: "u", Role: im.RoleAdmin, JoinedAt: time.Unix(1_700_000_000, 123).UTC(), JoinSeq: 1 << 40},
		{UserID: "v", Role: im.RoleMember},
	} {
		got, err := decodeGroupMember(m.UserID, appendGroupMember(nil, &m))
		require.NoError(t, err)
		require.True(t, got.JoinedAt.Equal(m.JoinedAt))
		got.JoinedAt, m.JoinedAt = time.Time{}, time.Time{}
		require.Equal(t, m, got)
	}
}

// A group record written before versions reads as Version 1.
func TestDecodeGroupRecordV1(t *testing.T) {
	g := sampleGroup()
	v2 := appendGroup(nil, &g)
	// Version 1 is the same record without the version field, which
	// follows the six lengths, JoinPolicy and MemberCount (one byte each
	// here) and is one byte for 12.
	v1 := append([]byte{recordV1}, v2[1:9]...)
	v1 = append(v1, v2[10:]...)
	got, err := decodeGroup(g.ID, v1)
	require.NoError(t, err)
	require.Equal(t, int64(1), got.Version)
	require.Equal(t, g.Name, got.Name)
	require.Equal(t, g.MemberCount, got.MemberCount)
}

// Group and member records written before History and JoinSeq were
// appended to them read as HistoryFromJoin and JoinSeq 0 (a membership that
// reads the whole history).
func TestDecodeRecordsWithoutHistoryOrJoinSeq(t *testing.T) {
	g := sampleGroup()
	rec := appendGroup(nil, &g)
	old := rec[:len(rec)-1] // History 1 is one byte
	got, err := decodeGroup(g.ID, old)
	require.NoError(t, err)
	require.Equal(t, im.HistoryFromJoin, got.History)
	got.History = g.History
	require.Equal(t, g, got)

	m := im.GroupMember{UserID: "u", Role: im.RoleAdmin, JoinedAt: time.Unix(1_700_000_000, 0).UTC(), JoinSeq: 7}
	mrec := appendGroupMember(nil, &m)
	gotM, err := decodeGroupMember("u", mrec[:len(mrec)-1]) // JoinSeq 7 is one byte
	require.NoError(t, err)
	require.Zero(t, gotM.JoinSeq)
	gotM.JoinSeq = m.JoinSeq
	require.Equal(t, m, gotM)
}

func TestDecodeGroupCorrupt(t *testing.T) {
	g := sampleGroup()
	good := appendGroup(nil, &g)
	for _, rec := range [][]byte{
		nil,
		{recordV1},
		append([]byte{3}, good[1:]...),
		good[:len(good)-2], // into the strings: the last byte alone is History
		append(good[:len(good):len(good)], 0),
		append(good[:len(good)-1:len(good)-1], 0x80),               // History cut short
		binary.AppendVarint(good[:len(good)-1:len(good)-1], 1<<40), // History out of range
		append([]byte{recordV1}, binary.AppendUvarint(nil, 1<<62)...),
		func() []byte { // JoinPolicy out of range
			b := []byte{recordV1, 0, 0, 0, 0, 0, 0}
			b = binary.AppendVarint(b, 1<<40)
			b = binary.AppendUvarint(b, 0)
			return appendTime(appendTime(b, time.Time{}), time.Time{})
		}(),
	} {
		_, err := decodeGroup("g1", rec)
		require.ErrorIs(t, err, errCorrupt, "group record %x", rec)
	}
	m := im.GroupMember{UserID: "u", Role: im.RoleOwner}
	goodMember := appendGroupMember(nil, &m)
	for _, rec := range [][]byte{
		nil,
		{recordV1},
		append([]byte{2}, goodMember[1:]...),
		goodMember[:len(goodMember)-2], // into JoinedAt: the last byte alone is JoinSeq
		append(goodMember[:len(goodMember):len(goodMember)], 0),
		append(goodMember[:len(goodMember)-1:len(goodMember)-1], 0x80),        // JoinSeq cut short
		appendTime(binary.AppendVarint([]byte{recordV1}, 1<<40), time.Time{}), // Role out of range
	} {
		_, err := decodeGroupMember("u", rec)
		require.ErrorIs(t, err, errCorrupt, "member record %x", rec)
	}
}

func FuzzDecodeGroup(f *testing.F) {
	g := sampleGroup()
	f.Add(appendGroup(nil, &g))
	f.Add([]byte{recordV1})
	f.Fuzz(func(t *testing.T, rec []byte) {
		g, err := decodeGroup("g", rec)
		if err != nil {
			return
		}
		again, err := decodeGroup("g", appendGroup(nil, &g))
		require.NoError(t, err)
		require.True(t, again.CreatedAt.Equal(g.CreatedAt))
		require.True(t, again.UpdatedAt.Equal(g.UpdatedAt))
		again.CreatedAt, again.UpdatedAt, g.CreatedAt, g.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		require.Equal(t, g, again)
	})
}

// A group change and its notice are one transaction: a crash right after
// it (a copy of the files as they are) keeps both, the notice read back
// from the log with its dedup key, and a refused change leaves neither.
func TestGroupChangeAndNoticeAfterCrash(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "im.db"), Options{mergeAfter: 1 << 20, mergeInterval: time.Hour})
	require.NoError(t, err)
	defer s.Close()
	ctx := t.Context()
	conv := im.GroupConversationID("g1")
	notice := func(cmid string) im.AppendRequest {
		return im.AppendRequest{Message: im.Message{ConversationID: conv, ServerID: "s-" + cmid, SenderID: "alice", ClientMsgID: cmid, Type: im.NotificationMessage, Content: []byte(cmid)}}
	}
	g := im.Group{ID: "g1", Name: "G", OwnerID: "alice"}
	r, err := s.CreateGroup(ctx, g, []im.GroupMember{{UserID: "alice", Role: im.RoleOwner}}, notice("created"))
	require.NoError(t, err)
	require.Equal(t, int64(1), r.Message.Seq)
	r, err = s.ChangeGroup(ctx, "g1", im.GroupChange{Version: 1, Put: []im.GroupMember{{UserID: "bob", Role: im.RoleMember}}, Notice: notice("joined")})
	require.NoError(t, err)
	require.Equal(t, int64(2), r.Message.Seq)
	require.Equal(t, int64(2), r.GroupVersion)
	_, err = s.ChangeGroup(ctx, "g1", im.GroupChange{Version: 1, Remove: []string{"bob"}, Notice: notice("stale")})
	require.ErrorIs(t, err, im.ErrConflict)
	require.Equal(t, 2, logLen(t, s.db), "two notices and no more are logged")

	s2 := openCrashed(t, s, filepath.Join(dir, "crash.db"))
	got, members, err := s2.GroupMembers(ctx, "g1")
	require.NoError(t, err)
	require.Equal(t, int64(2), got.Version)
	require.Len(t, members, 2)
	ms, err := s2.Messages(ctx, conv, 1, 0, 10)
	require.NoError(t, err)
	require.Len(t, ms, 2)
	require.Equal(t, "joined", ms[1].ClientMsgID)
	// The notice's key came back with it.
	_, err = s2.ChangeGroup(ctx, "g1", im.GroupChange{Version: 2, Remove: []string{"bob"}, Notice: notice("joined")})
	require.ErrorIs(t, err, im.ErrConflict)
	r, err = s2.ChangeGroup(ctx, "g1", im.GroupChange{Version: 2, Remove: []string{"bob"}, Notice: notice("kicked")})
	require.NoError(t, err)
	require.Equal(t, int64(3), r.Message.Seq)
}
