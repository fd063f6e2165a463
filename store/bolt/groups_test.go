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
	require.NoError(t, s.CreateGroup(ctx, g, []im.GroupMember{{UserID: "alice", Role: im.RoleOwner}}))
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
		MemberCount:  3,
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
		{UserID: "u", Role: im.RoleAdmin, JoinedAt: time.Unix(1_700_000_000, 123).UTC()},
		{UserID: "v", Role: im.RoleMember},
	} {
		got, err := decodeGroupMember(m.UserID, appendGroupMember(nil, &m))
		require.NoError(t, err)
		require.True(t, got.JoinedAt.Equal(m.JoinedAt))
		got.JoinedAt, m.JoinedAt = time.Time{}, time.Time{}
		require.Equal(t, m, got)
	}
}

func TestDecodeGroupCorrupt(t *testing.T) {
	g := sampleGroup()
	good := appendGroup(nil, &g)
	for _, rec := range [][]byte{
		nil,
		{recordV1},
		append([]byte{2}, good[1:]...),
		good[:len(good)-1],
		append(good[:len(good):len(good)], 0),
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
		goodMember[:len(goodMember)-1],
		append(goodMember[:len(goodMember):len(goodMember)], 0),
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
