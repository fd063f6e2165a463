package bolt

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// convMsgs returns n one-message batches for conversation conv.
func convMsgs(conv string, n int, prefix string) [][]im.AppendRequest {
	out := make([][]im.AppendRequest, n)
	for i := range out {
		out[i] = []im.AppendRequest{{Message: im.Message{
			ConversationID: conv, ServerID: fmt.Sprintf("s-%s%d", prefix, i),
			SenderID: "u0", ClientMsgID: fmt.Sprintf("%s%d", prefix, i),
			Content: []byte(fmt.Sprintf("%s-%d", prefix, i)),
		}, Members: []string{"u0", "u1"}}}
	}
	return out
}

// bucketLen counts conv's messages in its bucket (not pending).
func bucketLen(t *testing.T, s *Store, conv string) int {
	t.Helper()
	n := 0
	require.NoError(t, s.db.View(func(tx *bbolt.Tx) error {
		if cb := tx.Bucket([]byte(bucketMsgs)).Bucket([]byte(conv)); cb != nil {
			n = cb.Stats().KeyN
		}
		return nil
	}))
	return n
}

// requireConversation requires conv to hold exactly the messages of first,
// in seq order, through every read method.
func requireConversation(t *testing.T, s *Store, conv string, first []im.AppendResult) {
	t.Helper()
	ctx := t.Context()
	c, err := s.Conversation(ctx, conv)
	require.NoError(t, err)
	require.Equal(t, int64(len(first)), c.MaxSeq)
	all, err := s.Messages(ctx, conv, 1, 0, 10_000)
	require.NoError(t, err)
	require.Len(t, all, len(first))
	for i, m := range all {
		require.Equal(t, int64(i+1), m.Seq)
		require.Equal(t, first[i].Message.ServerID, m.ServerID)
		require.Equal(t, first[i].Message.Content, m.Content)
	}
	// Every window, so that ranges across the bucket and the pending
	// messages are read too.
	for from := int64(1); from <= int64(len(first)); from += 7 {
		page, err := s.Messages(ctx, conv, from, from+9, 5)
		require.NoError(t, err)
		require.Equal(t, all[from-1:min(from-1+5, int64(len(all)))], page)
		before, err := s.MessagesBefore(ctx, conv, from+1, 4)
		require.NoError(t, err)
		require.Equal(t, all[max(from-4, 0):from], before)
	}
}

func TestPendingMessagesRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "im.db")
	s, err := Open(path, Options{})
	require.NoError(t, err)
	defer s.Close()

	// 40 messages: the first mergeAt moved to the bucket at once, the
	// rest pending.
	first := appendAll(t, s, convMsgs("single_u0_u1", 40, "p"))
	require.Equal(t, mergeAt, bucketLen(t, s, "single_u0_u1"))
	requireConversation(t, s, "single_u0_u1", first)

	// A conversation with pending messages only.
	few := appendAll(t, s, convMsgs("group_few", 3, "f"))
	require.Zero(t, bucketLen(t, s, "group_few"))
	requireConversation(t, s, "group_few", few)
	convs, err := s.UserConversations(t.Context(), "u1")
	require.NoError(t, err)
	require.Equal(t, []im.Conversation{{ID: "group_few", MaxSeq: 3}, {ID: "single_u0_u1", MaxSeq: 40}}, convs)

	// Messages returned are the caller's: changing one changes nothing.
	ms, err := s.Messages(t.Context(), "group_few", 1, 0, 10)
	require.NoError(t, err)
	ms[0].Content[0] = 'X'
	requireConversation(t, s, "group_few", few)

	// Nor does changing the content the caller appended.
	buf := []byte("mine")
	res, err := s.AppendMessages(t.Context(), []im.AppendRequest{{Message: im.Message{
		ConversationID: "group_few", ServerID: "s-own", SenderID: "u0", ClientMsgID: "own", Content: buf,
	}}})
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
	copy(buf, "XXXX")
	ms, err = s.Messages(t.Context(), "group_few", 4, 4, 1)
	require.NoError(t, err)
	require.Equal(t, []byte("mine"), ms[0].Content)

	// Duplicates of pending messages come back as such.
	requireDuplicates(t, s, convMsgs("group_few", 3, "f"), few)
}

func TestPendingMessagesAfterCrash(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "im.db")
	s, err := Open(path, Options{mergeInterval: time.Hour})
	require.NoError(t, err)
	defer s.Close()
	batches := convMsgs("group_g", 45, "c")
	first := appendAll(t, s, batches)
	require.Equal(t, mergeAt, bucketLen(t, s, "group_g"))

	s2 := openCrashed(t, s, filepath.Join(dir, "crash.db"))
	requireConversation(t, s2, "group_g", first)
	requireDuplicates(t, s2, batches, first)
	next := appendAll(t, s2, convMsgs("group_g", 1, "after"))
	require.Equal(t, int64(46), next[0].Message.Seq)
	requireConversation(t, s2, "group_g", append(first, next...))
}

func TestPendingMessagesAge(t *testing.T) {
	// A quiet conversation's messages move to its bucket once maxLag
	// messages have been logged after them, so the log stays bounded.
	path := filepath.Join(t.TempDir(), "im.db")
	s, err := Open(path, Options{maxLag: 10})
	require.NoError(t, err)
	defer s.Close()
	quiet := appendAll(t, s, convMsgs("group_quiet", 2, "q"))
	appendAll(t, s, convMsgs("group_busy", 8, "b"))
	require.Zero(t, bucketLen(t, s, "group_quiet"), "not old enough yet")
	appendAll(t, s, convMsgs("group_busy", 1, "b9"))
	require.Equal(t, 2, bucketLen(t, s, "group_quiet"))
	requireConversation(t, s, "group_quiet", quiet)
}

func TestCloseMovesPendingMessages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "im.db")
	s, err := Open(path, Options{})
	require.NoError(t, err)
	first := appendAll(t, s, convMsgs("group_g", 5, "k"))
	require.Zero(t, bucketLen(t, s, "group_g"))
	require.NoError(t, s.Close())

	s, err = Open(path, Options{})
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, 5, bucketLen(t, s, "group_g"))
	require.Zero(t, logLen(t, s.db))
	requireConversation(t, s, "group_g", first)
}

func TestPendingMessagesConsistentReads(t *testing.T) {
	// A reader never sees a max seq whose messages it cannot read, while
	// commits move messages between the log and the bucket.
	path := filepath.Join(t.TempDir(), "im.db")
	s, err := Open(path, Options{maxLag: 5})
	require.NoError(t, err)
	defer s.Close()

	const n = 300
	batches := convMsgs("group_g", n, "r")
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				c, err := s.Conversation(t.Context(), "group_g")
				if err != nil {
					continue // not created yet
				}
				ms, err := s.Messages(t.Context(), "group_g", 1, c.MaxSeq, n)
				if !(err == nil && int64(len(ms)) == c.MaxSeq) {
					t.Errorf("max seq %d, read %d messages, err %v", c.MaxSeq, len(ms), err)
					return
				}
			}
		})
	}
	appendAll(t, s, inBatches(batches, 3))
	close(done)
	wg.Wait()
}
