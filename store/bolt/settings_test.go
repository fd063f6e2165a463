package bolt

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

func TestSettingsInOldFormatStore(t *testing.T) {
	// A store written before records were sealed, and before settings,
	// opens with a settings bucket, takes settings clamped to its old
	// messages, and keeps them, sealed, across a reopen.
	path := oldStore(t)
	s, err := Open(path, Options{})
	require.NoError(t, err)
	require.False(t, s.strict)
	ctx := t.Context()
	at := time.Date(2026, 2, 3, 4, 5, 6, 7_000, time.UTC)
	want := im.ConversationSettings{UserID: "u1", ConversationID: "si_u1_u2", Pinned: true, ClearedUpTo: 45, HiddenUpTo: 12, UpdatedAt: at}
	got, err := s.UpdateConversationSettings(ctx, "u1", "si_u1_u2", im.SettingsChange{
		Pinned: new(true), HiddenUpTo: new(int64(12)), ClearedUpTo: new(int64(99)), At: at,
	})
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.NoError(t, s.Check(ctx))
	requireFixture(t, s, 45)
	require.NoError(t, s.Close())

	s, err = Open(path, Options{})
	require.NoError(t, err)
	defer s.Close()
	all, err := s.ChangedSettings(ctx, "u1", time.Time{})
	require.NoError(t, err)
	require.Equal(t, []im.ConversationSettings{want}, all)
	require.NoError(t, s.Check(ctx))
	require.NoError(t, s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket([]byte(bucketSettings)).Get(settingsKey("u1", "si_u1_u2"))
		require.Equal(t, byte(recordSealed), v[0])
		return nil
	}))
}

func TestOpenFileWithoutSettingsBucket(t *testing.T) {
	// A file of this schema version written before settings: Open adds
	// the bucket and keeps the version, so the versions before settings
	// still open the file.
	path := filepath.Join(t.TempDir(), "im.db")
	s, err := Open(path, Options{})
	require.NoError(t, err)
	appendAll(t, s, inBatches(dedupMsgs(10, "a"), 5))
	require.NoError(t, s.Close())
	db, err := bbolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte(bucketSettings)) }))
	require.NoError(t, db.Close())

	s, err = Open(path, Options{})
	require.NoError(t, err)
	defer s.Close()
	ctx := t.Context()
	got, err := s.ConversationSettings(ctx, "u1", []string{"group_a"})
	require.NoError(t, err)
	require.Equal(t, []im.ConversationSettings{{UserID: "u1", ConversationID: "group_a"}}, got)
	st, err := s.UpdateConversationSettings(ctx, "u1", "group_a", im.SettingsChange{Muted: new(true), At: time.Now()})
	require.NoError(t, err)
	require.True(t, st.Muted)
	require.NoError(t, s.Check(ctx))
	require.NoError(t, s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket([]byte(bucketMeta)).Get([]byte(keyVersion))
		require.Equal(t, uint64(schemaVersion), binary.BigEndian.Uint64(v))
		return nil
	}))
}

func TestSettingsRecordRoundTrip(t *testing.T) {
	for _, st := range []im.ConversationSettings{
		{UpdatedAt: time.Unix(1, 0).UTC()},
		{Pinned: true, UpdatedAt: time.Date(2025, 3, 14, 15, 9, 26, 535_897_000, time.UTC)},
		{Muted: true, HiddenUpTo: 1, ClearedUpTo: 1 << 62, UpdatedAt: time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC)},
		{Pinned: true, Muted: true, HiddenUpTo: 300, ClearedUpTo: 299, UpdatedAt: time.Date(9999, 1, 1, 0, 0, 0, 1, time.UTC)},
	} {
		got, err := decodeSettings(appendSettings(nil, &st))
		require.NoError(t, err)
		require.Equal(t, st, got)
	}
}

func TestSettingsRecordMalformed(t *testing.T) {
	good := appendSettings(nil, &im.ConversationSettings{Pinned: true, HiddenUpTo: 3, UpdatedAt: time.Unix(1e9, 5).UTC()})
	tests := map[string][]byte{
		"Empty":        nil,
		"Version":      append([]byte{2}, good[1:]...),
		"UnknownFlag":  append([]byte{recordV1, 4}, good[2:]...),
		"Truncated":    good[:len(good)-1],
		"Trailing":     append(bytes.Clone(good), 0),
		"SeqTooBig":    appendTime(binary.AppendUvarint(binary.AppendUvarint([]byte{recordV1, 0}, 0), 1<<63), time.Unix(1, 0)),
		"Nanoseconds":  appendSettingsWith(func(b []byte) []byte { return binary.AppendUvarint(binary.AppendVarint(b, 1), 1e9) }),
		"ZeroTime":     appendSettings(nil, &im.ConversationSettings{}),
		"OnlyVersion":  {recordV1},
		"OnlyFlags":    {recordV1, flagMuted},
		"NoUpdatedAt":  {recordV1, 0, 0, 0},
		"HalfUpdateAt": {recordV1, 0, 0, 0, 2},
	}
	for name, rec := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := decodeSettings(rec)
			require.ErrorIs(t, err, im.ErrCorrupt)
		})
	}
}

// appendSettingsWith is a record with zero seqs and no flags whose time is
// what at appends.
func appendSettingsWith(at func([]byte) []byte) []byte {
	return at([]byte{recordV1, 0, 0, 0})
}

func TestCheckSettings(t *testing.T) {
	// A store with settings passes Check; each damage to a settings record
	// is reported, and reading it is an error wrapping im.ErrCorrupt.
	put := func(s *Store, k, v []byte) error {
		return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket([]byte(bucketSettings)).Put(k, v) })
	}
	sealed := func(k []byte, st im.ConversationSettings) []byte {
		return seal(nil, bucketSettings, k, func(b []byte) []byte { return appendSettings(b, &st) })
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k := settingsKey("u1", "group_a")
	tests := []struct {
		name   string
		damage func(t *testing.T, s *Store) error
		want   string
		read   bool // whether reading u1's settings of group_a fails
	}{
		{"BitFlipped", func(t *testing.T, s *Store) error {
			var v []byte
			require.NoError(t, s.db.View(func(tx *bbolt.Tx) error {
				v = bytes.Clone(tx.Bucket([]byte(bucketSettings)).Get(k))
				return nil
			}))
			v[3] ^= 0x20
			return put(s, k, v)
		}, `conversation "group_a": settings of "u1": stored data failed its integrity check`, true},
		{"Unsealed", func(t *testing.T, s *Store) error {
			return put(s, k, appendSettings(nil, &im.ConversationSettings{Muted: true, UpdatedAt: at}))
		}, `conversation "group_a": settings of "u1": record without a checksum`, true},
		{"MovedToAnotherUser", func(t *testing.T, s *Store) error {
			return put(s, k, sealed(settingsKey("u2", "group_a"), im.ConversationSettings{Muted: true, UpdatedAt: at}))
		}, `conversation "group_a": settings of "u1": stored data failed its integrity check`, true},
		{"Undecodable", func(t *testing.T, s *Store) error {
			return put(s, k, sealBytes(nil, bucketSettings, k, []byte{recordV1, 9}))
		}, `conversation "group_a": settings of "u1": bolt: corrupt record`, true},
		{"PastMaxSeq", func(t *testing.T, s *Store) error {
			return put(s, k, sealed(k, im.ConversationSettings{ClearedUpTo: 86, UpdatedAt: at}))
		}, `settings of "u1" in "group_a": hidden up to 0, cleared up to 86, past the max seq 85`, false},
		{"NoConversation", func(t *testing.T, s *Store) error {
			k := settingsKey("u1", "group_z")
			return put(s, k, sealed(k, im.ConversationSettings{HiddenUpTo: 1, UpdatedAt: at}))
		}, `settings of "u1" in "group_z": hidden up to 1, cleared up to 0, past the max seq 0`, false},
		{"Key", func(t *testing.T, s *Store) error {
			bad := []byte("u1group_a")
			return put(s, bad, sealed(bad, im.ConversationSettings{Pinned: true, UpdatedAt: at}))
		}, `settings key "u1group_a" names no user and conversation`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := checkedStore(t)
			ctx := t.Context()
			_, err := s.UpdateConversationSettings(ctx, "u1", "group_a", im.SettingsChange{Pinned: new(true), ClearedUpTo: new(int64(40)), At: at})
			require.NoError(t, err)
			_, err = s.UpdateConversationSettings(ctx, "u2", "group_b", im.SettingsChange{HiddenUpTo: new(int64(85)), At: at})
			require.NoError(t, err)
			require.NoError(t, s.Check(ctx))

			require.NoError(t, tt.damage(t, s))
			err = s.Check(ctx)
			require.ErrorIs(t, err, im.ErrCorrupt)
			require.Contains(t, err.Error(), tt.want)

			_, rerr := s.ConversationSettings(ctx, "u1", []string{"group_b", "group_a"})
			_, cerr := s.ChangedSettings(ctx, "u1", time.Time{})
			_, uerr := s.UpdateConversationSettings(ctx, "u1", "group_a", im.SettingsChange{Muted: new(true), At: at.Add(time.Hour)})
			for _, err := range []error{rerr, cerr, uerr} {
				if tt.read {
					require.ErrorIs(t, err, im.ErrCorrupt)
					var ce *im.CorruptError
					require.ErrorAs(t, err, &ce)
					require.Equal(t, "group_a", ce.Conversation)
				} else {
					require.NoError(t, err)
				}
			}
			// Another user's settings still read.
			got, err := s.ConversationSettings(ctx, "u2", []string{"group_b"})
			require.NoError(t, err)
			require.Equal(t, int64(85), got[0].HiddenUpTo)
		})
	}
}

func TestCheckFileSettings(t *testing.T) {
	// imserver check (CheckFile) reports a damaged settings record of a
	// closed store.
	path := filepath.Join(t.TempDir(), "im.db")
	s, err := Open(path, Options{})
	require.NoError(t, err)
	appendAll(t, s, inBatches(dedupMsgs(10, "a"), 5))
	_, err = s.UpdateConversationSettings(t.Context(), "u1", "group_a", im.SettingsChange{Muted: new(true), At: time.Now()})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	r, err := CheckFile(t.Context(), path, t.TempDir())
	require.NoError(t, err)
	require.Empty(t, r.Problems)

	db, err := bbolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucketSettings))
		k := settingsKey("u1", "group_a")
		v := bytes.Clone(b.Get(k))
		v[2] ^= flagPinned
		return b.Put(k, v)
	}))
	require.NoError(t, db.Close())
	r, err = CheckFile(t.Context(), path, t.TempDir())
	require.NoError(t, err)
	require.Len(t, r.Problems, 1)
	require.ErrorIs(t, r.Problems[0], im.ErrCorrupt)
	require.ErrorContains(t, r.Problems[0], `settings of "u1"`)
}
