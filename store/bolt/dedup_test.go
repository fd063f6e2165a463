package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// dedupMsgs returns n one-message batches, a sender each of three, into two
// conversations.
func dedupMsgs(n int, prefix string) [][]im.AppendRequest {
	out := make([][]im.AppendRequest, n)
	for i := range out {
		conv := "group_a"
		if i%2 == 1 {
			conv = "group_b"
		}
		out[i] = []im.AppendRequest{{Message: im.Message{
			ConversationID: conv, ServerID: fmt.Sprintf("s-%s%d", prefix, i),
			SenderID: fmt.Sprintf("u%d", i%3), ClientMsgID: fmt.Sprintf("%s%d", prefix, i),
			Content: []byte(prefix),
		}, Members: []string{"u0", "u1", "u2"}}}
	}
	return out
}

// inBatches joins one-message batches into batches of size.
func inBatches(msgs [][]im.AppendRequest, size int) [][]im.AppendRequest {
	var out [][]im.AppendRequest
	for i := 0; i < len(msgs); i += size {
		var b []im.AppendRequest
		for _, m := range msgs[i:min(i+size, len(msgs))] {
			b = append(b, m...)
		}
		out = append(out, b)
	}
	return out
}

// appendAll appends each batch and returns the stored messages.
func appendAll(t *testing.T, s *Store, batches [][]im.AppendRequest) []im.AppendResult {
	t.Helper()
	var out []im.AppendResult
	for _, b := range batches {
		res, err := s.AppendMessages(t.Context(), b)
		require.NoError(t, err)
		for _, r := range res {
			require.NoError(t, r.Err)
		}
		out = append(out, res...)
	}
	return out
}

// requireDuplicates sends batches again and requires each to come back as
// the duplicate of the message first stored.
func requireDuplicates(t *testing.T, s *Store, batches [][]im.AppendRequest, first []im.AppendResult) {
	t.Helper()
	again := appendAll(t, s, batches)
	require.Len(t, again, len(first))
	for i := range again {
		require.True(t, again[i].Duplicate, "message %d stored twice", i)
		require.Equal(t, first[i].Message.Seq, again[i].Message.Seq)
		require.Equal(t, first[i].Message.ServerID, again[i].Message.ServerID)
		require.Equal(t, first[i].Message.ConversationID, again[i].Message.ConversationID)
	}
}

func logLen(t *testing.T, db *bbolt.DB) int {
	t.Helper()
	n := 0
	require.NoError(t, db.View(func(tx *bbolt.Tx) error {
		log := tx.Bucket([]byte(bucketLog))
		return log.ForEachBucket(func(gen []byte) error {
			n += log.Bucket(gen).Stats().KeyN
			return nil
		})
	}))
	return n
}

func indexLen(t *testing.T, db *bbolt.DB) int {
	t.Helper()
	n := 0
	require.NoError(t, db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket([]byte(indexBucketDedup)).Stats().KeyN
		return nil
	}))
	return n
}

// openCrashed opens at path a copy of both of s's files, as a crash would
// leave them after s's last commit, and closes it at the end of the test.
func openCrashed(t *testing.T, s *Store, path string) *Store {
	t.Helper()
	require.NoError(t, s.db.View(func(tx *bbolt.Tx) error { return tx.CopyFile(path, 0o600) }))
	require.NoError(t, s.dedup.db.View(func(tx *bbolt.Tx) error { return tx.CopyFile(path+IndexSuffix, 0o600) }))
	s2, err := Open(path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s2.Close()) })
	return s2
}

func waitingLen(d *dedupIndex) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.waiting)
}

func TestDedupMergesInBackground(t *testing.T) {
	path := filepath.Join(t.TempDir(), "im.db")
	s, err := Open(path, Options{mergeAfter: 8, mergeInterval: 10 * time.Millisecond, maxLag: 1})
	require.NoError(t, err)
	defer s.Close()

	batches := dedupMsgs(100, "m")
	first := appendAll(t, s, batches)
	// The merger runs after every 8 keys; wait for it to catch up.
	require.Eventually(t, func() bool { return waitingLen(s.dedup) == 0 }, 10*time.Second, time.Millisecond)
	require.Equal(t, 100, indexLen(t, s.dedup.db))
	// Every key is now found in the index file, none in memory.
	requireDuplicates(t, s, batches, first)

	// Keys in memory and keys in the index file, in one batch.
	more := dedupMsgs(3, "n")
	moreFirst := appendAll(t, s, more)
	mixed := []im.AppendRequest{batches[7][0], more[1][0], batches[50][0], more[1][0]}
	res, err := s.AppendMessages(t.Context(), mixed)
	require.NoError(t, err)
	for i, want := range []im.AppendResult{first[7], moreFirst[1], first[50], moreFirst[1]} {
		require.True(t, res[i].Duplicate, i)
		require.Equal(t, want.Message.ServerID, res[i].Message.ServerID, i)
	}
}

func TestDedupAfterCrash(t *testing.T) {
	// A crash leaves keys in the log that were never merged: a snapshot of
	// both files taken while the store runs is what a crash leaves.
	dir := t.TempDir()
	path := filepath.Join(dir, "im.db")
	s, err := Open(path, Options{mergeAfter: 1 << 20, mergeInterval: time.Hour})
	require.NoError(t, err)
	defer s.Close()
	batches := dedupMsgs(50, "c")
	first := appendAll(t, s, batches)
	require.Equal(t, 50, logLen(t, s.db))

	s2 := openCrashed(t, s, filepath.Join(dir, "crash.db"))
	require.Equal(t, 50, waitingLen(s2.dedup)+indexLen(t, s2.dedup.db), "the log was read back")
	requireDuplicates(t, s2, batches, first)
	// New messages continue the seqs, and the log's keys continue after
	// those read back.
	next := appendAll(t, s2, dedupMsgs(2, "after"))
	require.Equal(t, int64(26), next[0].Message.Seq)
	require.False(t, next[0].Duplicate)
}

func TestDedupCleanCloseEmptiesLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "im.db")
	s, err := Open(path, Options{mergeAfter: 1 << 20})
	require.NoError(t, err)
	batches := dedupMsgs(40, "k")
	first := appendAll(t, s, batches)
	require.NoError(t, s.Close())

	s, err = Open(path, Options{})
	require.NoError(t, err)
	defer s.Close()
	require.Zero(t, logLen(t, s.db))
	require.Zero(t, waitingLen(s.dedup))
	require.Equal(t, 40, indexLen(t, s.dedup.db))
	requireDuplicates(t, s, batches, first)
}

func TestDedupIndexRebuilt(t *testing.T) {
	// more stores 20 messages more, the "later" ones.
	more := func(t *testing.T, path string) {
		s, err := Open(path, Options{})
		require.NoError(t, err)
		appendAll(t, s, dedupMsgs(20, "later"))
		require.NoError(t, s.Close())
	}
	copyFile := func(t *testing.T, from, to string) {
		data, err := os.ReadFile(from)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(to, data, 0o600))
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
		keys   int // in the index after the reopen
	}{
		{"IndexNewerThanMain", func(t *testing.T, path string) {
			// The main file is restored from a backup taken before the
			// later messages; the index file has them.
			copyFile(t, path, path+".bak")
			more(t, path)
			copyFile(t, path+".bak", path)
		}, 30},
		{"IndexOlderThanMain", func(t *testing.T, path string) {
			// The index file is restored from a backup taken before the
			// later messages; the main file has trimmed them from its log.
			copyFile(t, path+IndexSuffix, path+".bak")
			more(t, path)
			copyFile(t, path+".bak", path+IndexSuffix)
		}, 50},
		{"Deleted", func(t *testing.T, path string) {
			require.NoError(t, os.Remove(path+IndexSuffix))
		}, 30},
		{"FromAnotherStore", func(t *testing.T, path string) {
			other := filepath.Join(t.TempDir(), "other.db")
			s, err := Open(other, Options{})
			require.NoError(t, err)
			appendAll(t, s, dedupMsgs(3, "other"))
			require.NoError(t, s.Close())
			data, err := os.ReadFile(other + IndexSuffix)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path+IndexSuffix, data, 0o600))
		}, 30},
		{"SchemaVersion1", func(t *testing.T, path string) {
			// Version 1 kept the index in the main file, as "dedup".
			db, err := bbolt.Open(path, 0o600, nil)
			require.NoError(t, err)
			require.NoError(t, db.Update(func(tx *bbolt.Tx) error {
				meta := tx.Bucket([]byte(bucketMeta))
				require.NoError(t, meta.Put([]byte(keyVersion), binary.BigEndian.AppendUint64(nil, 1)))
				require.NoError(t, meta.Delete([]byte(keyPairID)))
				require.NoError(t, tx.DeleteBucket([]byte(bucketLog)))
				b, err := tx.CreateBucket([]byte(bucketDedupV1))
				require.NoError(t, err)
				return b.Put([]byte("u0\x00k0"), appendDedup(nil, "group_a", 1))
			}))
			require.NoError(t, db.Close())
			require.NoError(t, os.Remove(path+IndexSuffix))
		}, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "im.db")
			s, err := Open(path, Options{})
			require.NoError(t, err)
			batches := dedupMsgs(30, "k")
			first := appendAll(t, s, batches)
			require.NoError(t, s.Close())

			tt.damage(t, path)

			s, err = Open(path, Options{})
			require.NoError(t, err)
			defer s.Close()
			require.Equal(t, tt.keys, indexLen(t, s.dedup.db), "the index holds this store's keys only")
			requireDuplicates(t, s, batches, first)
			require.NoError(t, s.db.View(func(tx *bbolt.Tx) error {
				require.Nil(t, tx.Bucket([]byte(bucketDedupV1)))
				return nil
			}))
		})
	}
}

func TestDedupBackpressure(t *testing.T) {
	// While the merger cannot write, appends stop once maxWaiting keys
	// wait, and give up when their ctx ends, storing nothing.
	path := filepath.Join(t.TempDir(), "im.db")
	s, err := Open(path, Options{mergeAfter: 1 << 20, maxWaiting: 4, mergeInterval: time.Hour})
	require.NoError(t, err)
	defer s.Close()

	tx, err := s.dedup.db.Begin(true) // holds the index file's writer lock
	require.NoError(t, err)
	released := false
	defer func() {
		if !released {
			require.NoError(t, tx.Rollback())
		}
	}()
	first := appendAll(t, s, dedupMsgs(4, "p"))

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	blocked := dedupMsgs(5, "q")[4]
	_, err = s.AppendMessages(ctx, blocked)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	c, err := s.Conversation(t.Context(), "group_a")
	require.NoError(t, err)
	require.Equal(t, int64(2), c.MaxSeq, "nothing stored")

	// Once the merger can write, appends go on.
	done := make(chan error, 1)
	go func() {
		_, err := s.AppendMessages(t.Context(), blocked)
		done <- err
	}()
	require.NoError(t, tx.Rollback())
	released = true
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("append still waits after the merger caught up")
	}
	requireDuplicates(t, s, dedupMsgs(4, "p"), first)
}

func TestDedupLogTrimmedByGeneration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "im.db")
	s, err := Open(path, Options{mergeAfter: 1000, mergeInterval: 10 * time.Millisecond, maxLag: 1})
	require.NoError(t, err)
	defer s.Close()

	const n = 3*logGeneration + 100
	batches := inBatches(dedupMsgs(n, "g"), 500)
	first := appendAll(t, s, batches)
	require.Eventually(t, func() bool { return waitingLen(s.dedup) == 0 }, 10*time.Second, time.Millisecond)
	requireDuplicates(t, s, batches, first) // and trims the log

	gens := 0
	require.NoError(t, s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketLog)).ForEachBucket(func([]byte) error {
			gens++
			return nil
		})
	}))
	require.Zero(t, gens, "every generation was merged, so deleted")
	require.Equal(t, n, indexLen(t, s.dedup.db))

	// The log goes on after its generations were deleted.
	next := appendAll(t, s, dedupMsgs(1, "after"))
	require.False(t, next[0].Duplicate)
	require.Equal(t, 1, logLen(t, s.db))
}

func TestDedupMergeInChunks(t *testing.T) {
	// A merge of three chunks' worth of keys, in three transactions, leaves
	// them all in the index and none in memory.
	path := filepath.Join(t.TempDir(), "im.db")
	s, err := Open(path, Options{mergeAfter: 1 << 20, mergeInterval: time.Hour, maxLag: 1})
	require.NoError(t, err)
	defer s.Close()

	const n = 2*minMergeChunk + 100
	batches := inBatches(dedupMsgs(n, "x"), 500)
	first := appendAll(t, s, batches)
	require.Equal(t, n, waitingLen(s.dedup))

	require.False(t, s.dedup.mergeOnce())
	require.Zero(t, waitingLen(s.dedup))
	require.Equal(t, n, indexLen(t, s.dedup.db))
	require.Equal(t, uint64(n), s.dedup.trimTo.Load())
	requireDuplicates(t, s, batches, first)
}
