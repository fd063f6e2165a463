package bolt

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
)

// newStore opens a new store in a temporary dir and closes it at the end
// of the test; it returns the store and its path.
func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "im.db")
	s, err := Open(path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s, path
}

// reopen closes s and opens its file again.
func reopen(t *testing.T, s *Store, path string) *Store {
	t.Helper()
	require.NoError(t, s.Close())
	s, err := Open(path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

var profileTime = time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)

func TestAccountProfileRecord(t *testing.T) {
	for _, a := range []auth.Account{
		{UserID: "u", Username: "n", Nickname: "Nick", PasswordHash: []byte("h"), Disabled: true, CreatedAt: profileTime},
		{UserID: "u", Username: "n", Nickname: "Nick", CreatedAt: profileTime, Avatar: "https://a/b.png", Signature: "hi ✓",
			Gender: im.GenderFemale, Birth: im.MinBirth, UpdatedAt: profileTime.Add(time.Hour), Deleted: true, Disabled: true},
		{UserID: "u", Username: "n", Birth: -1},
	} {
		rec := appendAccount(nil, &a)
		require.Equal(t, accountV2(&a), rec[0] == accountRecordV2)
		got, err := decodeAccount(a.UserID, rec)
		require.NoError(t, err)
		require.Equal(t, a, got)
		for i := range rec {
			if _, err := decodeAccount(a.UserID, rec[:i]); err == nil && i > 0 {
				// A cut that still decodes must be at no field boundary
				// the decoder would accept.
				t.Fatalf("record cut to %d of %d bytes decodes", i, len(rec))
			}
		}
	}
	// A version 1 record may not carry the Deleted flag.
	a := auth.Account{UserID: "u", Username: "n"}
	rec := appendAccount(nil, &a)
	rec[4] |= flagDeleted
	_, err := decodeAccount("u", rec)
	require.ErrorIs(t, err, errCorrupt)
}

func TestAccountProfile(t *testing.T) {
	// The profile's fields are stored, survive a reopen, and the first
	// account with one raises the schema version; accounts without one
	// leave it as older versions read it.
	s, path := newStore(t)
	ctx := t.Context()
	require.NoError(t, s.CreateAccount(ctx, auth.Account{UserID: "u1", Username: "alice", Nickname: "Alice", CreatedAt: profileTime}))
	require.Equal(t, uint64(schemaVersion), fileVersion(t, s))
	_, err := s.UpdateAccount(ctx, "u1", auth.AccountUpdate{Nickname: new("Alicia")})
	require.NoError(t, err)
	require.Equal(t, uint64(schemaVersion), fileVersion(t, s))

	got, err := s.UpdateAccount(ctx, "u1", auth.AccountUpdate{
		Avatar: new("https://example.com/a.png"), Signature: new("hello"), Gender: new(im.GenderFemale),
		Birth: new(int64(20000101)), UpdatedAt: profileTime.Add(time.Minute).In(time.FixedZone("x", 3600)),
	})
	require.NoError(t, err)
	want := auth.Account{UserID: "u1", Username: "alice", Nickname: "Alicia", CreatedAt: profileTime,
		Avatar: "https://example.com/a.png", Signature: "hello", Gender: im.GenderFemale, Birth: 20000101, UpdatedAt: profileTime.Add(time.Minute)}
	require.Equal(t, want, got)
	require.Equal(t, uint64(schemaProfiles), fileVersion(t, s))

	// Fields left nil stay; UpdatedAt zero stays.
	got, err = s.UpdateAccount(ctx, "u1", auth.AccountUpdate{Signature: new("")})
	require.NoError(t, err)
	want.Signature = ""
	require.Equal(t, want, got)

	// A bad update changes nothing.
	_, err = s.UpdateAccount(ctx, "u1", auth.AccountUpdate{Gender: new(im.Gender(7))})
	require.ErrorIs(t, err, im.ErrInvalidArgument)
	_, err = s.UpdateAccount(ctx, "u1", auth.AccountUpdate{Birth: new(im.MaxBirth + 1)})
	require.ErrorIs(t, err, im.ErrInvalidArgument)
	require.NoError(t, s.Check(ctx))

	s = reopen(t, s, path)
	got, err = s.Account(ctx, "u1")
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, uint64(schemaProfiles), fileVersion(t, s))
	require.NoError(t, s.Check(ctx))
}

// searchIDs returns the ids SearchAccounts finds.
func searchIDs(t *testing.T, s *Store, prefix string, limit int) []string {
	t.Helper()
	as, err := s.SearchAccounts(t.Context(), prefix, limit)
	require.NoError(t, err)
	ids := []string{}
	for _, a := range as {
		ids = append(ids, a.UserID)
	}
	return ids
}

func TestSearchAccounts(t *testing.T) {
	s, path := newStore(t)
	ctx := t.Context()
	for _, a := range [][2]string{
		{"u1", "Alice"}, {"u2", "alicia"}, {"u3", "ALBERT"}, {"u4", "Bob"}, {"u5", "al"}, {"u6", "alice"},
		{"u7", "Alina"}, {"u8", "ak"}, {"u9", "am"}, {"u0", "ÄLIX"},
	} {
		require.NoError(t, s.CreateAccount(ctx, auth.Account{UserID: a[0], Username: "name-" + a[0], Nickname: a[1]}))
	}
	// Ordered by the folded nickname, then the id; bounded by the prefix
	// on both sides ("ak" and "am" are just outside "al").
	require.Equal(t, []string{"u5", "u3", "u1", "u6", "u2", "u7"}, searchIDs(t, s, "al", 50))
	require.Equal(t, []string{"u5", "u3"}, searchIDs(t, s, "al", 2))
	require.Equal(t, []string{"u1", "u6", "u2"}, searchIDs(t, s, auth.NicknameKey("ALIC"), 50))
	require.Equal(t, []string{"u1", "u6"}, searchIDs(t, s, "alice", 50))
	require.Equal(t, []string{"u0"}, searchIDs(t, s, auth.NicknameKey("Äl"), 50))
	require.Empty(t, searchIDs(t, s, "alicez", 50))
	require.Empty(t, searchIDs(t, s, "zz", 50))
	require.Equal(t, []string{"u4"}, searchIDs(t, s, "b", 50))

	// A deleted account leaves the index, a renamed one moves in it, and
	// one undeleted comes back.
	_, err := s.UpdateAccount(ctx, "u1", auth.AccountUpdate{Deleted: new(true), Disabled: new(true)})
	require.NoError(t, err)
	_, err = s.UpdateAccount(ctx, "u6", auth.AccountUpdate{Nickname: new("Zed")})
	require.NoError(t, err)
	_, err = s.UpdateAccount(ctx, "u4", auth.AccountUpdate{Disabled: new(true)}) // disabled is still found
	require.NoError(t, err)
	require.Equal(t, []string{"u2"}, searchIDs(t, s, "alic", 50))
	require.Equal(t, []string{"u6"}, searchIDs(t, s, "z", 50))
	require.Equal(t, []string{"u4"}, searchIDs(t, s, "bo", 50))
	require.NoError(t, s.Check(ctx))

	s = reopen(t, s, path)
	require.Equal(t, []string{"u2"}, searchIDs(t, s, "alic", 50))
	_, err = s.UpdateAccount(ctx, "u1", auth.AccountUpdate{Deleted: new(false)})
	require.NoError(t, err)
	require.Equal(t, []string{"u1", "u2"}, searchIDs(t, s, "alic", 50))
	require.NoError(t, s.Check(ctx))

	for _, bad := range []struct {
		prefix string
		limit  int
	}{{"", 1}, {"al", 0}, {"al", -1}, {"al\x00u", 5}} {
		_, err := s.SearchAccounts(ctx, bad.prefix, bad.limit)
		require.ErrorIs(t, err, im.ErrInvalidArgument, "%q %d", bad.prefix, bad.limit)
	}
}

func TestSearchAccountsReadsOnlyThePrefix(t *testing.T) {
	// The search seeks to its prefix: an account outside it is never
	// read, as its damaged record shows, while a search that reaches it
	// reports the damage.
	s, _ := newStore(t)
	ctx := t.Context()
	require.NoError(t, s.CreateAccount(ctx, auth.Account{UserID: "u1", Username: "alice", Nickname: "Alice"}))
	require.NoError(t, s.CreateAccount(ctx, auth.Account{UserID: "u2", Username: "zed", Nickname: "Zed"}))
	require.NoError(t, s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucketAccounts))
		v := append([]byte(nil), b.Get([]byte("u2"))...)
		v[len(v)-1] ^= 1
		return b.Put([]byte("u2"), v)
	}))
	require.Equal(t, []string{"u1"}, searchIDs(t, s, "a", 50))
	_, err := s.SearchAccounts(ctx, "z", 50)
	require.ErrorIs(t, err, im.ErrCorrupt)
}

func TestAccountsByID(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	for _, id := range []string{"u1", "u2", "u3"} {
		require.NoError(t, s.CreateAccount(ctx, auth.Account{UserID: id, Username: "n" + id, Nickname: id}))
	}
	as, err := s.AccountsByID(ctx, []string{"u3", "nobody", "u1", "u3"})
	require.NoError(t, err)
	require.Len(t, as, 2)
	require.Equal(t, "u3", as[0].UserID)
	require.Equal(t, "u1", as[1].UserID)
	as, err = s.AccountsByID(ctx, nil)
	require.NoError(t, err)
	require.NotNil(t, as)
	require.Empty(t, as)
	_, err = s.AccountsByID(ctx, []string{"u1", "bad\x00id"})
	require.ErrorIs(t, err, im.ErrInvalidArgument)
	_, err = s.AccountsByID(ctx, []string{""})
	require.ErrorIs(t, err, im.ErrInvalidArgument)
}

// putRawAccount writes a's record without the nickname index, as a version
// of this package from before it would.
func putRawAccount(t *testing.T, path string, a auth.Account) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bbolt.Tx) error {
		k := []byte(a.UserID)
		if err := tx.Bucket([]byte(bucketAccounts)).Put(k, seal(nil, bucketAccounts, k, func(b []byte) []byte { return appendAccount(b, &a) })); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketUsernames)).Put([]byte(a.Username), sealIn(bucketUsernames, []byte(a.Username), k))
	}))
	require.NoError(t, db.Close())
}

func TestNicknameIndexOfOlderFiles(t *testing.T) {
	// A file from before the index (v4.db) is searchable once opened.
	path := fixtureStore(t, "testdata/v4.db.gz")
	s, err := Open(path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	require.Equal(t, []string{"u1"}, searchIDs(t, s, "ali", 50))
	require.Equal(t, uint64(schemaVersion), fileVersion(t, s))
	require.NoError(t, s.Check(ctx))
	require.NoError(t, s.Close())

	// An older version, which the file's schema version still lets in,
	// adds and renames accounts without the index: the next Open puts
	// them right.
	putRawAccount(t, path, auth.Account{UserID: "u2", Username: "bob", Nickname: "Bob"})
	putRawAccount(t, path, auth.Account{UserID: "u1", Username: "alice", Nickname: "Carol", PasswordHash: []byte("not-a-real-hash"), CreatedAt: fixtureTime})
	s, err = Open(path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	require.Empty(t, searchIDs(t, s, "ali", 50))
	require.Equal(t, []string{"u2"}, searchIDs(t, s, "bo", 50))
	require.Equal(t, []string{"u1"}, searchIDs(t, s, "car", 50))
	require.NoError(t, s.Check(ctx))

	// Once a profile raised the schema version, older versions cannot
	// open the file, and Open trusts the index: damage to it is Check's
	// to report.
	_, err = s.UpdateAccount(ctx, "u2", auth.AccountUpdate{Signature: new("hi")})
	require.NoError(t, err)
	require.Equal(t, uint64(schemaProfiles), fileVersion(t, s))
	require.NoError(t, s.Close())
	putRawAccount(t, path, auth.Account{UserID: "u3", Username: "dave", Nickname: "Dave"})
	s, err = Open(path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	require.Empty(t, searchIDs(t, s, "da", 50))
	err = s.Check(ctx)
	require.ErrorIs(t, err, im.ErrCorrupt)
	require.ErrorContains(t, err, `account "u3": its nickname "Dave" is not in the nickname index`)
}

func TestCheckNicknameIndex(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(tx *bbolt.Tx) error
		want   string
	}{
		{"Missing", func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte(bucketNicknames)).Delete(idKey("alice", "u1"))
		}, `account "u1": its nickname "Alice" is not in the nickname index`},
		{"Stale", func(tx *bbolt.Tx) error {
			k := idKey("bob", "u1")
			return tx.Bucket([]byte(bucketNicknames)).Put(k, seal(nil, bucketNicknames, k, nil))
		}, `nickname index key "bob\x00u1" is not that of account "u1"`},
		{"NoAccount", func(tx *bbolt.Tx) error {
			k := idKey("bob", "u9")
			return tx.Bucket([]byte(bucketNicknames)).Put(k, seal(nil, bucketNicknames, k, nil))
		}, `nickname index key "bob\x00u9" names no account`},
		{"Unsealed", func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte(bucketNicknames)).Put(idKey("alice", "u1"), []byte{1})
		}, `nickname index "alice\x00u1"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			require.NoError(t, s.CreateAccount(t.Context(), auth.Account{UserID: "u1", Username: "alice", Nickname: "Alice"}))
			require.NoError(t, s.db.Update(tt.damage))
			err := s.Check(t.Context())
			require.ErrorIs(t, err, im.ErrCorrupt)
			require.True(t, strings.Contains(err.Error(), tt.want), "%v", err)
		})
	}
}
