package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
	bbolterrors "go.etcd.io/bbolt/errors"
)

// checkedStore returns a store with messages in every state: in their
// buckets and merged into the index, in their buckets with keys waiting,
// and pending in the log.
func checkedStore(t *testing.T) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "im.db")
	s, err := Open(path, Options{mergeAfter: 1 << 20, mergeInterval: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	appendAll(t, s, inBatches(dedupMsgs(100, "a"), 10)) // 50 a conversation: merged to buckets
	require.False(t, s.dedup.mergeOnce())
	appendAll(t, s, inBatches(dedupMsgs(70, "b"), 7)) // 35 more: 32 merged, 3 pending
	require.NotZero(t, waitingLen(s.dedup))
	require.NotEmpty(t, s.pend.snapshot("group_a"))
	require.NoError(t, s.Check(t.Context()))
	return s
}

func TestCheck(t *testing.T) {
	// damage breaks one invariant, through the files or memory.
	update := func(s *Store, fn func(tx *bbolt.Tx) error) error { return s.db.Update(fn) }
	tests := []struct {
		name   string
		damage func(t *testing.T, s *Store) error
		want   string
	}{
		{"Gap", func(t *testing.T, s *Store) error {
			return update(s, func(tx *bbolt.Tx) error {
				var k [8]byte
				return tx.Bucket([]byte(bucketMsgs)).Bucket([]byte("group_a")).Delete(seqKey(&k, 7))
			})
		}, `conversation "group_a": message key 0000000000000008 where seq 7 should be`},
		{"MaxSeq", func(t *testing.T, s *Store) error {
			return update(s, func(tx *bbolt.Tx) error {
				return tx.Bucket([]byte(bucketConvs)).Put([]byte("group_b"), appendSeqRecord(nil, []byte(bucketConvs), []byte("group_b"), 99))
			})
		}, `conversation "group_b": max seq 99, but messages 1 to 85`},
		{"PendingLost", func(t *testing.T, s *Store) error {
			s.pend.merged("group_a")
			return nil
		}, `conversation "group_a": max seq 85, but messages 1 to 68`},
		{"LogRecordDiffers", func(t *testing.T, s *Store) error {
			return update(s, func(tx *bbolt.Tx) error {
				var k [8]byte
				cb := tx.Bucket([]byte(bucketMsgs)).Bucket([]byte("group_b"))
				v := append([]byte(nil), cb.Get(seqKey(&k, 60))...)
				v[len(v)-1] ^= 1
				return cb.Put(seqKey(&k, 60), v)
			})
		}, `"group_b"/60 differs from its bucket's`},
		{"KeyNotIndexed", func(t *testing.T, s *Store) error {
			return s.dedup.db.Update(func(tx *bbolt.Tx) error {
				return tx.Bucket([]byte(indexBucketDedup)).Delete(dedupKey(nil, "u0", "a0"))
			})
		}, `message "group_a"/1: its key "u0\x00a0" is in no dedup index`},
		{"IndexPointsElsewhere", func(t *testing.T, s *Store) error {
			return s.dedup.db.Update(func(tx *bbolt.Tx) error {
				return tx.Bucket([]byte(indexBucketDedup)).Put(dedupKey(nil, "u0", "a0"), appendDedup(nil, "group_a", 2))
			})
		}, `dedup key "u0\x00a0" leads to "group_a"/2, whose key is "u2\x00a2"`},
		{"IndexPointsNowhere", func(t *testing.T, s *Store) error {
			return s.dedup.db.Update(func(tx *bbolt.Tx) error {
				return tx.Bucket([]byte(indexBucketDedup)).Put(dedupKey(nil, "u9", "z"), appendDedup(nil, "group_z", 1))
			})
		}, `dedup key "u9\x00z" leads to "group_z"/1, which does not exist`},
		{"WaitingKeyLost", func(t *testing.T, s *Store) error {
			s.dedup.mu.Lock()
			delete(s.dedup.recent, string(dedupKey(nil, "u0", "b0")))
			s.dedup.mu.Unlock()
			return nil
		}, `its key "u0\x00b0" is in no dedup index`},
		{"PairID", func(t *testing.T, s *Store) error {
			return s.dedup.db.Update(func(tx *bbolt.Tx) error {
				return tx.Bucket([]byte(indexBucketMeta)).Put([]byte(keyPairID), []byte("other"))
			})
		}, "the index file's pair id"},
		{"MergedPastLog", func(t *testing.T, s *Store) error {
			return s.dedup.db.Update(func(tx *bbolt.Tx) error {
				return putCounter(tx.Bucket([]byte(indexBucketMeta)), keyMergeThrough, 1000)
			})
		}, "the index file has merged through log key 1000"},
		{"NextLog", func(t *testing.T, s *Store) error {
			s.nextLog++
			return nil
		}, "the next log key is 172 in memory, 171 in the file"},
		{"SentPositionNotNewest", func(t *testing.T, s *Store) error {
			return update(s, func(tx *bbolt.Tx) error {
				k := convUserKey(nil, "group_a", "u0")
				return tx.Bucket([]byte(bucketMsgs)).Put(k, appendSeqRecord(nil, []byte(bucketMsgs), k, 2))
			})
		}, `conversation "group_a": sent position 2 of "u0", whose newest message in its bucket is 66`},
		{"SentPositionOfNoSender", func(t *testing.T, s *Store) error {
			return update(s, func(tx *bbolt.Tx) error {
				k := convUserKey(nil, "group_a", "u9")
				return tx.Bucket([]byte(bucketMsgs)).Put(k, appendSeqRecord(nil, []byte(bucketMsgs), k, 2))
			})
		}, `conversation "group_a": sent position 2 of "u9", who has no message in its bucket`},
		{"SentPositionWithoutConversation", func(t *testing.T, s *Store) error {
			return update(s, func(tx *bbolt.Tx) error {
				k := convUserKey(nil, "group_z", "u0")
				return tx.Bucket([]byte(bucketMsgs)).Put(k, appendSeqRecord(nil, []byte(bucketMsgs), k, 2))
			})
		}, `sent position "group_z\x00u0" in a conversation without a max seq`},
		{"SentPositionDamaged", func(t *testing.T, s *Store) error {
			return update(s, func(tx *bbolt.Tx) error {
				k := convUserKey(nil, "group_a", "u0")
				v := appendSeqRecord(nil, []byte(bucketMsgs), k, 66)
				v[3] ^= 1
				return tx.Bucket([]byte(bucketMsgs)).Put(k, v)
			})
		}, `sent position of "u0": stored data failed its integrity check`},
		{"ReadStatePastMaxSeq", func(t *testing.T, s *Store) error {
			return update(s, func(tx *bbolt.Tx) error {
				k := convUserKey(nil, "group_a", "u5")
				return tx.Bucket([]byte(bucketReadStates)).Put(k, seal(nil, bucketReadStates, k, func(b []byte) []byte { return appendReceipt(b, &receiptRecord{read: 86, delivered: 3}) }))
			})
		}, `read state of "u5" in "group_a": read 86, delivered 3, mentioned 0, past max seq 85`},
		{"ReadStateWithoutConversation", func(t *testing.T, s *Store) error {
			return update(s, func(tx *bbolt.Tx) error {
				k := convUserKey(nil, "group_z", "u5")
				return tx.Bucket([]byte(bucketReadStates)).Put(k, seal(nil, bucketReadStates, k, func(b []byte) []byte { return appendReceipt(b, &receiptRecord{read: 1}) }))
			})
		}, `read state of "u5" in "group_z", a conversation without a max seq`},
		{"ReadStateDamaged", func(t *testing.T, s *Store) error {
			return update(s, func(tx *bbolt.Tx) error {
				k := convUserKey(nil, "group_a", "u5")
				return tx.Bucket([]byte(bucketReadStates)).Put(k, appendReceipt(nil, &receiptRecord{read: 1}))
			})
		}, `read state of "u5": record without a checksum`},
		{"TombstoneInVersion4", func(t *testing.T, s *Store) error {
			if _, err := s.RecallMessage(t.Context(), "group_a", 4, "u1", time.Now()); err != nil {
				return err
			}
			return update(s, func(tx *bbolt.Tx) error {
				return putCounter(tx.Bucket([]byte(bucketMeta)), keyVersion, schemaVersion)
			})
		}, `conversation "group_a": message 4 is a tombstone in a file of schema version 4`},
		{"Membership", func(t *testing.T, s *Store) error {
			return update(s, func(tx *bbolt.Tx) error {
				return tx.Bucket([]byte(bucketMembers)).Put([]byte("u0\x00group_z"), nil)
			})
		}, `membership "u0\x00group_z" names no conversation`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := checkedStore(t)
			require.NoError(t, tt.damage(t, s))
			err := s.Check(t.Context())
			require.ErrorIs(t, err, errCorrupt)
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestCheckManyProblems(t *testing.T) {
	s := checkedStore(t)
	require.NoError(t, s.dedup.db.Update(func(tx *bbolt.Tx) error {
		return tx.DeleteBucket([]byte(indexBucketDedup))
	}))
	require.NoError(t, s.dedup.db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket([]byte(indexBucketDedup))
		return err
	}))
	err := s.Check(t.Context())
	require.ErrorIs(t, err, errCorrupt)
	var joined interface{ Unwrap() []error }
	require.True(t, errors.As(err, &joined))
	require.Len(t, joined.Unwrap(), maxProblems)
	require.Contains(t, err.Error(), "(and 80 more)") // the 100 merged keys
}

func TestCheckErrors(t *testing.T) {
	s := checkedStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, s.Check(ctx), context.Canceled)
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Check(t.Context()), bbolterrors.ErrDatabaseNotOpen)
}

func TestCheckWhileWriting(t *testing.T) {
	// Check agrees with appends and merges running around it.
	path := filepath.Join(t.TempDir(), "im.db")
	s, err := Open(path, Options{mergeAfter: 50, mergeInterval: time.Millisecond, maxLag: 20})
	require.NoError(t, err)
	defer s.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 40 {
			appendAll(t, s, inBatches(dedupMsgs(30, string(rune('a'+i%26))+string(rune('a'+i/26))), 5))
		}
	}()
	for {
		require.NoError(t, s.Check(t.Context()))
		select {
		case <-done:
			require.NoError(t, s.Check(t.Context()))
			return
		default:
		}
	}
}
