package bolt

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// oldStore copies testdata/v3.db (see fixture_test.go) into a new dir and
// returns its path.
func oldStore(t *testing.T) string {
	t.Helper()
	return fixtureStore(t, "testdata/v3.db.gz")
}

// fixtureStore copies the gzipped store at name into a new dir and returns
// its path.
func fixtureStore(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(name)
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	b, err := io.ReadAll(zr)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "im.db")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// requireFixture requires s to hold what v3Fixture wrote, and then n more
// messages of fixtureMessages.
func requireFixture(t *testing.T, s *Store, n int) {
	t.Helper()
	ctx := t.Context()
	a, err := s.AccountByUsername(ctx, "alice")
	require.NoError(t, err)
	require.Equal(t, fixtureAccount(), a)
	g, members, notice := fixtureGroup()
	gotG, gotMembers, err := s.GroupMembers(ctx, "g1")
	require.NoError(t, err)
	g.MemberCount, g.Version = 2, 1
	if s.strict {
		// v4.db was written with join seqs: the members joined at the
		// notice, seq 1. v3.db, before them, reads 0.
		for i := range members {
			members[i].JoinSeq = 1
		}
	}
	require.Equal(t, g, gotG)
	require.Equal(t, members, gotMembers)
	ns, err := s.Messages(ctx, notice.Message.ConversationID, 1, 0, 10)
	require.NoError(t, err)
	require.Len(t, ns, 1)
	require.Equal(t, notice.Message.Content, ns[0].Content)

	msgs, err := s.Messages(ctx, "si_u1_u2", 1, 0, 1000)
	require.NoError(t, err)
	want := fixtureMessages(0, n)
	require.Len(t, msgs, n)
	for i, m := range msgs {
		w := want[i][0].Message
		w.Seq = int64(i + 1)
		require.Equal(t, w, m)
	}
	c, err := s.Conversation(ctx, "si_u1_u2")
	require.NoError(t, err)
	require.Equal(t, int64(n), c.MaxSeq)
	convs, err := s.SyncConversations(ctx, "u2")
	require.NoError(t, err)
	require.Len(t, convs, 2)
}

func TestOldFormatStore(t *testing.T) {
	// A store written before records were sealed opens, reads back all it
	// holds (the last five messages from its log), finds its old
	// client_msg_ids as duplicates, and takes new, sealed records beside
	// the old ones, across a reopen.
	path := oldStore(t)
	s, err := Open(path, Options{})
	require.NoError(t, err)
	require.False(t, s.strict)
	require.Len(t, s.ID(), 32)
	id := s.ID()
	requireFixture(t, s, 45)
	res, err := s.AppendMessages(t.Context(), fixtureMessages(3, 4)[0])
	require.NoError(t, err)
	require.True(t, res[0].Duplicate)
	require.Equal(t, int64(4), res[0].Message.Seq)
	for _, b := range fixtureMessages(45, 50) {
		_, err := s.AppendMessages(t.Context(), b)
		require.NoError(t, err)
	}
	requireFixture(t, s, 50)
	require.NoError(t, s.Check(t.Context()))
	require.NoError(t, s.Close())

	s, err = Open(path, Options{})
	require.NoError(t, err)
	defer s.Close()
	require.False(t, s.strict)
	require.Equal(t, id, s.ID(), "the identity is kept")
	requireFixture(t, s, 50)
	require.NoError(t, s.Check(t.Context()))
	// New records are sealed, old ones are not.
	require.NoError(t, s.db.View(func(tx *bbolt.Tx) error {
		cb := tx.Bucket([]byte(bucketMsgs)).Bucket([]byte("si_u1_u2"))
		var k [8]byte
		require.NotEqual(t, byte(recordSealed), cb.Get(seqKey(&k, 1))[0])
		require.Equal(t, byte(recordSealed), cb.Get(seqKey(&k, 50))[0])
		return nil
	}))
}

// damageMessage rewrites message seq of conv in the closed store at path
// with fn's result, given its record.
func damageMessage(t *testing.T, path, conv string, seq uint64, fn func(v []byte) []byte) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Update(func(tx *bbolt.Tx) error {
		cb := tx.Bucket([]byte(bucketMsgs)).Bucket([]byte(conv))
		var k [8]byte
		return cb.Put(seqKey(&k, seq), fn(bytes.Clone(cb.Get(seqKey(&k, seq)))))
	}))
}

func TestSealedRecords(t *testing.T) {
	// In a store created sealed, a damaged record, and one passed off as
	// unsealed, fail with im.ErrCorrupt naming the message; the others
	// still read.
	newStore := func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), "im.db")
		s, err := Open(path, Options{})
		require.NoError(t, err)
		require.True(t, s.strict)
		for _, b := range fixtureMessages(0, 40) {
			_, err := s.AppendMessages(t.Context(), b)
			require.NoError(t, err)
		}
		require.NoError(t, s.Close()) // every message in its bucket
		return path
	}
	for _, tt := range []struct {
		name   string
		damage func(v []byte) []byte
	}{
		{"BitFlipped", func(v []byte) []byte { v[len(v)/2] ^= 0x10; return v }},
		{"ChecksumFlipped", func(v []byte) []byte { v[len(v)-1] ^= 1; return v }},
		{"Unsealed", func(v []byte) []byte { return v[1 : len(v)-4] }},
		{"VersionByteFlipped", func(v []byte) []byte { v[0] = recordV1; return v }},
		{"MovedToAnotherSeq", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := newStore(t)
			if tt.damage != nil {
				damageMessage(t, path, "si_u1_u2", 7, tt.damage)
			} else {
				var moved []byte
				damageMessage(t, path, "si_u1_u2", 8, func(v []byte) []byte { moved = v; return v })
				damageMessage(t, path, "si_u1_u2", 7, func([]byte) []byte { return moved })
			}
			s, err := Open(path, Options{})
			require.NoError(t, err)
			defer s.Close()
			_, err = s.Messages(t.Context(), "si_u1_u2", 1, 0, 100)
			require.ErrorIs(t, err, im.ErrCorrupt)
			var ce *im.CorruptError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, "si_u1_u2", ce.Conversation)
			require.Equal(t, int64(7), ce.Seq)
			got, err := s.Messages(t.Context(), "si_u1_u2", 8, 0, 100)
			require.NoError(t, err)
			require.Len(t, got, 33)
			require.ErrorIs(t, s.Check(t.Context()), im.ErrCorrupt)
		})
	}
}

func TestOpenRefusesEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "im.db")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	_, err := Open(path, Options{})
	require.ErrorIs(t, err, im.ErrCorrupt)
	require.ErrorContains(t, err, "empty (0 bytes)")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Zero(t, fi.Size(), "left as it was")
}

func TestCheckFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "im.db")
	s, err := Open(path, Options{})
	require.NoError(t, err)
	for _, b := range fixtureMessages(0, 30) {
		_, err := s.AppendMessages(t.Context(), b)
		require.NoError(t, err)
	}
	id := s.ID()
	_, err = CheckFile(t.Context(), path, t.TempDir())
	require.ErrorContains(t, err, "open in another process")
	require.NoError(t, Abandon(s)) // messages in the log, as after a crash

	before, err := os.ReadFile(path)
	require.NoError(t, err)
	r, err := CheckFile(t.Context(), path, t.TempDir())
	require.NoError(t, err)
	require.Empty(t, r.Problems)
	require.Equal(t, id, r.ID)
	require.Equal(t, 30, r.Messages)
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, bytes.Equal(before, after), "CheckFile changed the file")

	// The messages are in the log only: damage one there.
	db, err := bbolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bbolt.Tx) error {
		gen := tx.Bucket([]byte(bucketLog)).Bucket(make([]byte, 8))
		var k [8]byte
		v := bytes.Clone(gen.Get(seqKey(&k, 5)))
		v[len(v)-6] ^= 4
		return gen.Put(seqKey(&k, 5), v)
	}))
	require.NoError(t, db.Close())
	r, err = CheckFile(t.Context(), path, t.TempDir())
	require.NoError(t, err)
	require.NotEmpty(t, r.Problems)
	require.ErrorIs(t, r.Problems[0], im.ErrCorrupt)
}

// BenchmarkSeal measures what sealing adds to a typical message record:
// the checksum on write (Seal) and its verification on read (Unseal).
func BenchmarkSeal(b *testing.B) {
	m := fixtureMessages(0, 1)[0][0].Message
	m.Seq = 1
	m.Content = []byte(`{"text":"See you at the station at nine, the train leaves at 9:20 from platform 4."}`)
	rec := sealedMessage(nil, &m)
	var k [8]byte
	key := seqKey(&k, 1)
	b.Run("Seal", func(b *testing.B) {
		buf := make([]byte, 0, len(rec))
		b.SetBytes(int64(len(rec)))
		for b.Loop() {
			buf = sealedMessage(buf[:0], &m)
		}
	})
	b.Run("Unseal", func(b *testing.B) {
		b.SetBytes(int64(len(rec)))
		for b.Loop() {
			if _, err := unseal(rec, m.ConversationID, key, true); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestLostLastMessages(t *testing.T) {
	// A bucket that lost its last keys (a page's element count damaged,
	// say) reads as an error, not as a shorter conversation.
	path := filepath.Join(t.TempDir(), "im.db")
	s, err := Open(path, Options{})
	require.NoError(t, err)
	for _, b := range fixtureMessages(0, 40) {
		_, err := s.AppendMessages(t.Context(), b)
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	db, err := bbolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bbolt.Tx) error {
		var k [8]byte
		return tx.Bucket([]byte(bucketMsgs)).Bucket([]byte("si_u1_u2")).Delete(seqKey(&k, 40))
	}))
	require.NoError(t, db.Close())
	s, err = Open(path, Options{})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Messages(t.Context(), "si_u1_u2", 30, 0, 100)
	require.ErrorIs(t, err, im.ErrCorrupt)
	_, err = s.MessagesBefore(t.Context(), "si_u1_u2", 0, 5)
	require.ErrorIs(t, err, im.ErrCorrupt)
}

func TestOldFormatReadStatesAndRecall(t *testing.T) {
	// A store written before read states and recall existed reads no
	// sent positions for the messages it merged, only those its log still
	// holds (the last five, from u1 and u2 in turn), no receipts and no
	// tombstones; it takes all three from then on, across a reopen.
	for _, name := range []string{"v3", "v4"} {
		t.Run(name, func(t *testing.T) {
			path := fixtureStore(t, "testdata/"+name+".db.gz")
			s, err := Open(path, Options{})
			require.NoError(t, err)
			defer func() { require.NoError(t, s.Close()) }()
			require.Equal(t, name == "v4", s.strict)
			ctx := t.Context()
			requireFixture(t, s, 45)
			msgs, err := s.Messages(ctx, "si_u1_u2", 1, 0, 100)
			require.NoError(t, err)
			for _, m := range msgs {
				require.False(t, m.Revoked())
				require.Zero(t, m.RevokedAt)
			}
			_, _, notice := fixtureGroup()
			group := notice.Message.ConversationID
			for _, u := range []string{"u1", "u2"} {
				for _, conv := range []string{"si_u1_u2", group} {
					require.Zero(t, storedSent(t, s, conv, u), "%s in %s", u, conv)
				}
			}
			// The group's notice, from u1, was merged before: no position.
			requireStates(t, s, group)
			pending := []im.ReadState{
				{UserID: "u1", ConversationID: "si_u1_u2", Read: 45},
				{UserID: "u2", ConversationID: "si_u1_u2", Read: 44},
			}
			requireStates(t, s, "si_u1_u2", pending...)
			require.NoError(t, s.Check(ctx))

			// Old records are recalled like new ones, in the bucket and in
			// the log; the first recall raises the schema version, so that
			// older versions refuse a file they would find damaged.
			require.Equal(t, uint64(schemaVersion), fileVersion(t, s))
			for _, seq := range []int64{3, 43} {
				m := messageAt(t, s, "si_u1_u2", seq)
				got, err := s.RecallMessage(ctx, "si_u1_u2", seq, "u1", recallTime)
				require.NoError(t, err)
				require.Equal(t, tombstoneOf(m, "u1"), got)
				requireMessage(t, s, got)
			}
			require.Equal(t, uint64(schemaTombstones), fileVersion(t, s))
			states, err := s.UpdateReadStates(ctx, []im.ReadState{{UserID: "u2", ConversationID: group, Read: 1, Delivered: 1}})
			require.NoError(t, err)
			require.Equal(t, []im.ReadState{{UserID: "u2", ConversationID: group, Read: 1, Delivered: 1}}, states)
			require.NoError(t, s.Check(ctx))
			want3, want43 := messageAt(t, s, "si_u1_u2", 3), messageAt(t, s, "si_u1_u2", 43)

			// Close moves the last five to their bucket, and their senders'
			// positions with them.
			require.NoError(t, s.Close())
			s, err = Open(path, Options{})
			require.NoError(t, err)
			require.Equal(t, int64(45), storedSent(t, s, "si_u1_u2", "u1"))
			require.Equal(t, int64(44), storedSent(t, s, "si_u1_u2", "u2"))
			requireStates(t, s, "si_u1_u2", pending...)
			requireStates(t, s, group, im.ReadState{UserID: "u2", ConversationID: group, Read: 1, Delivered: 1})
			requireMessage(t, s, want3)
			requireMessage(t, s, want43)
			require.NoError(t, s.Check(ctx))
		})
	}
}

// fileVersion returns the schema version of s's main file.
func fileVersion(t *testing.T, s *Store) uint64 {
	t.Helper()
	var v uint64
	require.NoError(t, s.db.View(func(tx *bbolt.Tx) error {
		v = counter(tx.Bucket([]byte(bucketMeta)), keyVersion)
		return nil
	}))
	return v
}
