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

func sampleMessage() im.Message {
	return im.Message{
		ConversationID: "group_g",
		Seq:            7,
		ServerID:       "srv-1",
		SenderID:       "alice",
		ReceiverID:     "bob",
		ClientMsgID:    "c-1",
		Type:           im.CustomMessage,
		Content:        []byte{0, 1, 2, 0xff},
		Extra:          "extra ✓",
		AttachedInfo:   "attached",
		SendTime:       -12345,
		CreatedAt:      time.Date(2025, 1, 2, 3, 4, 5, 678_901_234, time.UTC),
	}
}

func TestMessageRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		msg  im.Message
	}{
		{"Full", sampleMessage()},
		{"Empty", im.Message{ConversationID: "c", Seq: 1}},
		{"NegativeTypeAndOldTime", im.Message{ConversationID: "c", Seq: 1, Type: -3, CreatedAt: time.Date(1800, 1, 1, 0, 0, 0, 1, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := appendMessage(nil, &tt.msg)
			require.LessOrEqual(t, len(rec), messageSize(&tt.msg))
			got, err := decodeMessage(tt.msg.ConversationID, tt.msg.Seq, rec)
			require.NoError(t, err)
			require.True(t, got.CreatedAt.Equal(tt.msg.CreatedAt), "CreatedAt %v, want %v", got.CreatedAt, tt.msg.CreatedAt)
			got.CreatedAt, tt.msg.CreatedAt = time.Time{}, time.Time{}
			require.Equal(t, tt.msg, got)

			// The decoded message shares no memory with the record.
			for i := range rec {
				rec[i] = 'X'
			}
			require.Equal(t, tt.msg, got)
		})
	}
}

func TestAccountRecordRoundTrip(t *testing.T) {
	tests := []auth.Account{
		{UserID: "u1", Username: "alice", Nickname: "Alice ✓", PasswordHash: []byte("hash"), Disabled: true, CreatedAt: time.Unix(1_700_000_000, 123).UTC()},
		{UserID: "u2", Username: "b"},
	}
	for _, a := range tests {
		t.Run(a.UserID, func(t *testing.T) {
			got, err := decodeAccount(a.UserID, appendAccount(nil, &a))
			require.NoError(t, err)
			require.True(t, got.CreatedAt.Equal(a.CreatedAt))
			got.CreatedAt, a.CreatedAt = time.Time{}, time.Time{}
			require.Equal(t, a, got)
		})
	}
}

func TestDecodeCorrupt(t *testing.T) {
	msg := sampleMessage()
	good := appendMessage(nil, &msg)
	acct := auth.Account{UserID: "u", Username: "alice", PasswordHash: []byte("h")}
	goodAcct := appendAccount(nil, &acct)
	hugeLen := append([]byte{recordV1}, binary.AppendUvarint(nil, 1<<62)...)
	tests := []struct {
		name string
		rec  []byte
	}{
		{"Empty", nil},
		{"UnknownVersion", append([]byte{99}, good[1:]...)},
		{"VersionOnly", []byte{recordV1}},
		{"Truncated", good[:len(good)/2]},
		{"HugeLength", hugeLen},
		{"BadNanoseconds", func() []byte {
			m := im.Message{}
			b := []byte{recordV1, 0, 0, 0, 0, 0, 0}
			b = binary.AppendVarint(b, int64(m.Type))
			b = binary.AppendVarint(b, 0)
			b = binary.AppendVarint(b, 0)
			return binary.AppendUvarint(b, uint64(time.Second))
		}()},
		{"TypeOutOfRange", func() []byte {
			b := []byte{recordV1, 0, 0, 0, 0, 0, 0}
			b = binary.AppendVarint(b, 1<<40)
			b = binary.AppendVarint(b, 0)
			b = binary.AppendVarint(b, 0)
			return binary.AppendUvarint(b, 0)
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeMessage("c", 1, tt.rec)
			require.ErrorIs(t, err, errCorrupt)
		})
	}
	for _, rec := range [][]byte{nil, goodAcct[:len(goodAcct)-1], append(goodAcct, 0), append([]byte{2}, goodAcct[1:]...)} {
		_, err := decodeAccount("u", rec)
		require.ErrorIs(t, err, errCorrupt, "account record %x", rec)
	}
	for _, v := range [][]byte{nil, make([]byte, 7), make([]byte, 8), make([]byte, 9)} {
		_, err := decodeSeq(v)
		require.ErrorIs(t, err, errCorrupt, "seq %x", v)
	}
	_, _, err := decodeDedup(make([]byte, 8))
	require.ErrorIs(t, err, errCorrupt)
}

func FuzzDecodeMessage(f *testing.F) {
	msg := sampleMessage()
	f.Add(appendMessage(nil, &msg))
	f.Add([]byte{recordV1})
	f.Fuzz(func(t *testing.T, rec []byte) {
		m, err := decodeMessage("c", 1, rec)
		if err != nil {
			return
		}
		// What decodes survives a round trip (the bytes may differ: a
		// varint can be written in more than one way).
		again, err := decodeMessage("c", 1, appendMessage(nil, &m))
		require.NoError(t, err)
		require.True(t, again.CreatedAt.Equal(m.CreatedAt))
		again.CreatedAt, m.CreatedAt = time.Time{}, time.Time{}
		require.Equal(t, m, again)
	})
}

func FuzzDecodeAccount(f *testing.F) {
	a := auth.Account{UserID: "u", Username: "alice", Nickname: "A", PasswordHash: []byte("h"), Disabled: true}
	f.Add(appendAccount(nil, &a))
	f.Fuzz(func(t *testing.T, rec []byte) {
		a, err := decodeAccount("u", rec)
		if err != nil {
			return
		}
		again, err := decodeAccount("u", appendAccount(nil, &a))
		require.NoError(t, err)
		require.True(t, again.CreatedAt.Equal(a.CreatedAt))
		again.CreatedAt, a.CreatedAt = time.Time{}, time.Time{}
		require.Equal(t, a, again)
	})
}

// corruptStore fills a store, lets damage change its main file with bbolt
// directly, and reopens it.
func corruptStore(t *testing.T, damage func(tx *bbolt.Tx) error) *Store {
	t.Helper()
	return corruptFile(t, "", damage)
}

// corruptIndex is corruptStore for the dedup index file. The store was
// closed cleanly, so the index holds every key and the log none.
func corruptIndex(t *testing.T, damage func(tx *bbolt.Tx) error) *Store {
	t.Helper()
	return corruptFile(t, IndexSuffix, damage)
}

func corruptFile(t *testing.T, suffix string, damage func(tx *bbolt.Tx) error) *Store {
	t.Helper()
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
	require.NoError(t, s.CreateAccount(ctx, auth.Account{UserID: "u1", Username: "alice"}))
	_, err = s.CreateGroup(ctx, im.Group{ID: "g1", Name: "G", OwnerID: "zed"}, []im.GroupMember{{UserID: "alice", Role: im.RoleMember}}, im.AppendRequest{})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	db, err := bbolt.Open(path+suffix, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(damage))
	require.NoError(t, db.Close())

	s, err = Open(path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func put(bucket string, nested, key, value []byte) func(tx *bbolt.Tx) error {
	return func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if nested != nil {
			b = b.Bucket(nested)
		}
		return b.Put(key, value)
	}
}

func TestCorruptRecords(t *testing.T) {
	var k [8]byte
	ctx := t.Context()
	retry := []im.AppendRequest{{Message: im.Message{ConversationID: "group_g", ServerID: "s2", SenderID: "alice", ClientMsgID: "c1"}}}
	next := []im.AppendRequest{{Message: im.Message{ConversationID: "group_g", ServerID: "s3", SenderID: "bob", ClientMsgID: "c9"}}}
	tests := []struct {
		name   string
		index  bool // damage is to the dedup index's file
		damage func(tx *bbolt.Tx) error
		call   func(s *Store) error
	}{
		{"MessageRecord", false, put(bucketMsgs, []byte("group_g"), seqKey(&k, 1), []byte{recordV1, 0xff}), func(s *Store) error {
			_, err := s.Messages(ctx, "group_g", 1, 0, 10)
			return err
		}},
		{"MessageRecordBefore", false, put(bucketMsgs, []byte("group_g"), seqKey(&k, 1), []byte{7}), func(s *Store) error {
			_, err := s.MessagesBefore(ctx, "group_g", 0, 10)
			return err
		}},
		{"MessageKey", false, func(tx *bbolt.Tx) error {
			if err := put(bucketConvs, nil, []byte("group_g"), binary.BigEndian.AppendUint64(nil, 5))(tx); err != nil {
				return err
			}
			return put(bucketMsgs, []byte("group_g"), []byte("short"), []byte{recordV1})(tx)
		}, func(s *Store) error {
			_, err := s.Messages(ctx, "group_g", 1, 0, 10)
			return err
		}},
		{"MaxSeq", false, put(bucketConvs, nil, []byte("group_g"), []byte{1, 2}), func(s *Store) error {
			_, err := s.Conversation(ctx, "group_g")
			return err
		}},
		{"MaxSeqOnAppend", false, put(bucketConvs, nil, []byte("group_g"), []byte{1, 2}), func(s *Store) error {
			_, err := s.AppendMessages(ctx, next)
			return err
		}},
		{"MaxSeqOnSync", false, put(bucketConvs, nil, []byte("group_g"), nil), func(s *Store) error {
			_, err := s.UserConversations(ctx, "alice")
			return err
		}},
		{"MembershipWithoutConversation", false, put(bucketMembers, nil, []byte("alice\x00group_gone"), []byte{}), func(s *Store) error {
			_, err := s.UserConversations(ctx, "alice")
			return err
		}},
		{"GroupRecord", false, put(bucketGroups, nil, []byte("g1"), []byte{recordV1, 5}), func(s *Store) error {
			_, err := s.Group(ctx, "g1")
			return err
		}},
		{"GroupRecordOnUpdate", false, put(bucketGroups, nil, []byte("g1"), []byte{7}), func(s *Store) error {
			_, err := s.ChangeGroup(ctx, "g1", im.GroupChange{Update: &im.Group{ID: "g1", Name: "G2", OwnerID: "alice"}})
			return err
		}},
		{"GroupRecordOnPut", false, put(bucketGroups, nil, []byte("g1"), nil), func(s *Store) error {
			_, err := s.ChangeGroup(ctx, "g1", im.GroupChange{Put: []im.GroupMember{{UserID: "bob", Role: im.RoleMember}}})
			return err
		}},
		{"GroupMemberRecord", false, put(bucketGroupMembers, nil, []byte("g1\x00alice"), []byte{recordV1}), func(s *Store) error {
			_, _, err := s.GroupMembers(ctx, "g1")
			return err
		}},
		{"GroupMemberRecordOnPut", false, put(bucketGroupMembers, nil, []byte("g1\x00alice"), []byte{recordV1}), func(s *Store) error {
			_, err := s.ChangeGroup(ctx, "g1", im.GroupChange{Put: []im.GroupMember{{UserID: "alice", Role: im.RoleAdmin}}})
			return err
		}},
		{"GroupMemberCount", false, func(tx *bbolt.Tx) error {
			// A second member the count does not know of.
			if err := put(bucketGroupMembers, nil, []byte("g1\x00bob"), appendGroupMember(nil, &im.GroupMember{UserID: "bob", Role: im.RoleMember}))(tx); err != nil {
				return err
			}
			return put(bucketUserGroups, nil, []byte("bob\x00g1"), []byte{})(tx)
		}, func(s *Store) error {
			_, err := s.ChangeGroup(ctx, "g1", im.GroupChange{Remove: []string{"alice", "bob"}})
			return err
		}},
		{"DedupRecord", true, put(indexBucketDedup, nil, []byte("alice\x00c1"), []byte{1}), func(s *Store) error {
			_, err := s.AppendMessages(ctx, retry)
			return err
		}},
		{"DedupTarget", true, put(indexBucketDedup, nil, []byte("alice\x00c1"), appendDedup(nil, "group_gone", 1)), func(s *Store) error {
			_, err := s.AppendMessages(ctx, retry)
			return err
		}},
		{"DedupTargetMessage", true, put(indexBucketDedup, nil, []byte("alice\x00c1"), appendDedup(nil, "group_g", 5)), func(s *Store) error {
			_, err := s.AppendMessages(ctx, retry)
			return err
		}},
		{"AccountRecord", false, put(bucketAccounts, nil, []byte("u1"), []byte{recordV1, 5}), func(s *Store) error {
			_, err := s.Account(ctx, "u1")
			return err
		}},
		{"UsernameIndex", false, put(bucketUsernames, nil, []byte("alice"), []byte("u-gone")), func(s *Store) error {
			_, err := s.AccountByUsername(ctx, "alice")
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			open := corruptStore
			if tt.index {
				open = corruptIndex
			}
			s := open(t, tt.damage)
			err := tt.call(s)
			require.ErrorIs(t, err, errCorrupt)
			require.NotErrorIs(t, err, im.ErrNotFound)
		})
	}
}

func TestCorruptAppendStoresNothing(t *testing.T) {
	// A batch that meets a corrupt record is rolled back whole, so the
	// valid message before it is not stored either.
	s := corruptIndex(t, put(indexBucketDedup, nil, []byte("alice\x00c1"), []byte{1}))
	ctx := t.Context()
	_, err := s.AppendMessages(ctx, []im.AppendRequest{
		{Message: im.Message{ConversationID: "group_new", ServerID: "s2", SenderID: "bob", ClientMsgID: "c2"}},
		{Message: im.Message{ConversationID: "group_g", ServerID: "s3", SenderID: "alice", ClientMsgID: "c1"}},
	})
	require.ErrorIs(t, err, errCorrupt)
	_, err = s.Conversation(ctx, "group_new")
	require.ErrorIs(t, err, im.ErrNotFound)
}

func TestOpenRefusesForeignFiles(t *testing.T) {
	tests := []struct {
		name   string
		damage func(tx *bbolt.Tx) error
	}{
		{"NewerSchema", func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte(bucketMeta)).Put([]byte(keyVersion), binary.BigEndian.AppendUint64(nil, schemaNewest+1))
		}},
		{"BadSchemaRecord", func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte(bucketMeta)).Put([]byte(keyVersion), []byte{1})
		}},
		{"MissingBucket", func(tx *bbolt.Tx) error {
			return tx.DeleteBucket([]byte(bucketConvs))
		}},
		{"OtherApplication", func(tx *bbolt.Tx) error {
			return tx.DeleteBucket([]byte(bucketMeta))
		}},
		{"DedupLogRecord", func(tx *bbolt.Tx) error {
			gen, err := tx.Bucket([]byte(bucketLog)).CreateBucketIfNotExists(seqKey(new([8]byte), 0))
			if err != nil {
				return err
			}
			return gen.Put(seqKey(new([8]byte), 1), []byte{200})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "im.db")
			s, err := Open(path, Options{})
			require.NoError(t, err)
			require.NoError(t, s.Close())
			db, err := bbolt.Open(path, 0o600, nil)
			require.NoError(t, err)
			require.NoError(t, db.Update(tt.damage))
			require.NoError(t, db.Close())

			s, err = Open(path, Options{Timeout: -1})
			require.Error(t, err)
			require.Nil(t, s)
			// The lock was released despite the failure.
			db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
			require.NoError(t, err)
			require.NoError(t, db.Close())
		})
	}
}
