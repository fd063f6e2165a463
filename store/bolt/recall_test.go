package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

var recallTime = time.Date(2026, 3, 4, 5, 6, 7, 89, time.UTC)

// secretMsgs returns n one-message batches into conv whose Content, Extra
// and AttachedInfo hold strings found nowhere else (see secret).
func secretMsgs(conv string, n int, prefix string) [][]im.AppendRequest {
	out := make([][]im.AppendRequest, n)
	for i := range out {
		out[i] = []im.AppendRequest{{Message: im.Message{
			ConversationID: conv, ServerID: fmt.Sprintf("s-%s%d", prefix, i),
			SenderID: []string{"u1", "u2"}[i%2], ReceiverID: "peer", ClientMsgID: fmt.Sprintf("%s%d", prefix, i),
			Type: im.TextMessage, SendTime: int64(1000 + i), CreatedAt: fixtureTime.Add(time.Duration(i) * time.Second),
			Content: []byte(secret("content", prefix, i)), Extra: secret("extra", prefix, i), AttachedInfo: secret("attached", prefix, i),
		}, Members: []string{"u1", "u2"}}}
	}
	return out
}

func secret(field, prefix string, i int) string {
	return fmt.Sprintf("%s-of-%s%d-ZQX", field, prefix, i)
}

// tombstoneOf is what recalling m by by at recallTime stores.
func tombstoneOf(m im.Message, by string) im.Message {
	m.Content, m.Extra, m.AttachedInfo = nil, "", ""
	m.RevokedBy, m.RevokedAt = by, recallTime
	return m
}

// messageAt reads message seq of conv.
func messageAt(t *testing.T, s *Store, conv string, seq int64) im.Message {
	t.Helper()
	ms, err := s.Messages(t.Context(), conv, seq, seq, 1)
	require.NoError(t, err)
	require.Len(t, ms, 1)
	return ms[0]
}

// requireMessage requires message want.Seq of its conversation to be
// want, read by seq and by server id.
func requireMessage(t *testing.T, s *Store, want im.Message) {
	t.Helper()
	require.Equal(t, want, messageAt(t, s, want.ConversationID, want.Seq))
	got, err := s.MessageByServerID(t.Context(), want.ConversationID, want.ServerID)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// loggedRecord returns log record n's message, or false if the log does
// not have it.
func loggedRecord(t *testing.T, s *Store, n uint64) (im.Message, bool) {
	t.Helper()
	var m im.Message
	found := false
	require.NoError(t, s.db.View(func(tx *bbolt.Tx) error {
		var g, k [8]byte
		gb := tx.Bucket([]byte(bucketLog)).Bucket(seqKey(&g, n/logGeneration))
		if gb == nil {
			return nil
		}
		v := gb.Get(seqKey(&k, n))
		if v == nil {
			return nil
		}
		conv, seq, rec, err := decodeLogRecord(k[:], v, true)
		require.NoError(t, err)
		mv, err := readMessage(conv, seqKey(&k, seq), int64(seq), rec, true)
		require.NoError(t, err)
		m, found = mv.message(conv, string(mv.strs), bytes.Clone(mv.content)), true
		return nil
	}))
	if found && len(m.Content) == 0 {
		m.Content = nil
	}
	return m, found
}

// liveValues calls fn with every key and value of every bucket, nested
// ones included, of the bbolt file at path.
func liveValues(t *testing.T, path string, fn func(k, v []byte)) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	var walk func(b *bbolt.Bucket) error
	walk = func(b *bbolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			fn(k, v)
			if v == nil {
				return walk(b.Bucket(k))
			}
			return nil
		})
	}
	require.NoError(t, db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error { return walk(b) })
	}))
}

func TestRecall(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "im.db")
	s, err := Open(path, Options{mergeAfter: 1 << 20, mergeInterval: time.Hour})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	ctx := t.Context()
	const conv = "single_u1_u2"
	// 40 messages: 1 to 32 in the bucket, and still in the log (their
	// dedup keys wait for the merger), 33 to 40 pending.
	batches := secretMsgs(conv, 40, "m")
	first := appendAll(t, s, batches)
	require.Equal(t, 32, bucketLen(t, s, conv))
	original := func(seq int64) im.Message {
		m, err := s.Messages(ctx, conv, seq, seq, 1)
		require.NoError(t, err)
		return m[0]
	}

	for _, tt := range []struct {
		name    string
		seq     int64
		pending bool
	}{
		{"Pending", 36, true},
		{"InBucketAndLog", 5, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := original(tt.seq)
			require.Equal(t, secret("content", "m", int(tt.seq-1)), string(m.Content))
			got, err := s.MessageByServerID(ctx, conv, m.ServerID)
			require.NoError(t, err)
			require.Equal(t, m, got)
			logKey, known, err := s.findLogged(ctx, conv, tt.seq)
			require.NoError(t, err)
			require.True(t, known)
			require.NotZero(t, logKey, "the log still holds it")
			_, pending := s.pend.get(conv, uint64(tt.seq))
			require.Equal(t, tt.pending, pending)

			want := tombstoneOf(m, "u2")
			got, err = s.RecallMessage(ctx, conv, tt.seq, "u2", recallTime.In(time.FixedZone("X", 3600)))
			require.NoError(t, err)
			require.True(t, got.Revoked())
			require.Equal(t, want, got)
			requireMessage(t, s, want)
			logged, ok := loggedRecord(t, s, logKey)
			require.True(t, ok)
			require.Equal(t, want, logged, "the log's copy is the tombstone too")

			// Recalling it again changes nothing, and commits nothing.
			before := lastTx(t, s)
			again, err := s.RecallMessage(ctx, conv, tt.seq, "u1", recallTime.Add(time.Hour))
			require.NoError(t, err)
			require.Equal(t, want, again)
			require.Equal(t, before, lastTx(t, s))

			// A resend is answered with the tombstone.
			res, err := s.AppendMessages(ctx, batches[tt.seq-1])
			require.NoError(t, err)
			require.True(t, res[0].Duplicate)
			require.Equal(t, want, res[0].Message)
			require.NoError(t, s.Check(ctx))
		})
	}
	// Its neighbours are untouched, and the sender still has read it.
	require.Equal(t, first[5].Message.ServerID, original(6).ServerID)
	require.Equal(t, secret("content", "m", 5), string(original(6).Content))
	require.Equal(t, int64(39), stateOf(t, s, "u1", conv).Read)

	// A crash keeps both tombstones: the pending one is read back from
	// the log.
	want5, want36 := messageAt(t, s, conv, 5), messageAt(t, s, conv, 36)
	crashed := openCrashed(t, s, filepath.Join(dir, "crash.db"))
	requireMessage(t, crashed, want5)
	requireMessage(t, crashed, want36)
	require.NoError(t, crashed.Check(ctx))

	// In a bucket only, as after Close, which empties the log.
	require.NoError(t, s.Close())
	s, err = Open(path, Options{})
	require.NoError(t, err)
	require.Zero(t, logLen(t, s.db))
	requireMessage(t, s, want5)
	requireMessage(t, s, want36)
	m := messageAt(t, s, conv, 7)
	got, err := s.RecallMessage(ctx, conv, 7, "u1", recallTime)
	require.NoError(t, err)
	require.Equal(t, tombstoneOf(m, "u1"), got)
	requireMessage(t, s, got)
	require.NoError(t, s.Check(ctx))
}

func TestRecallMessageStoredMeanwhile(t *testing.T) {
	// A message stored, and moved to its bucket, between the search of
	// the log and the recall's transaction is looked for in the log again
	// in the transaction.
	s, err := Open(filepath.Join(t.TempDir(), "im.db"), Options{mergeAfter: 1 << 20, mergeInterval: time.Hour})
	require.NoError(t, err)
	defer s.Close()
	const conv = "group_g"
	_, known, err := s.findLogged(t.Context(), conv, 3)
	require.NoError(t, err)
	require.False(t, known)
	appendAll(t, s, secretMsgs(conv, mergeAt, "m"))
	require.Equal(t, mergeAt, bucketLen(t, s, conv))
	logKey, err := func() (uint64, error) {
		tx, err := s.db.Begin(false)
		require.NoError(t, err)
		defer tx.Rollback()
		return findLoggedTx(t.Context(), tx, conv, 3, true)
	}()
	require.NoError(t, err)
	require.NotZero(t, logKey)
	_, err = s.RecallMessage(t.Context(), conv, 3, "u1", recallTime)
	require.NoError(t, err)
	logged, ok := loggedRecord(t, s, logKey)
	require.True(t, ok)
	require.True(t, logged.Revoked())
	require.NoError(t, s.Check(t.Context()))
}

func TestRecallErasesContent(t *testing.T) {
	// After a recall and Close, no record of either file holds what the
	// message said: not its bucket's, not the log's.
	path := filepath.Join(t.TempDir(), "im.db")
	s, err := Open(path, Options{mergeAfter: 1 << 20, mergeInterval: time.Hour})
	require.NoError(t, err)
	ctx := t.Context()
	const conv = "group_e"
	appendAll(t, s, secretMsgs(conv, 40, "e"))
	for _, seq := range []int64{3, 38} { // in the bucket and in the log; pending
		_, err := s.RecallMessage(ctx, conv, seq, "u1", recallTime)
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())

	found := map[string]bool{}
	for _, file := range []string{path, path + IndexSuffix} {
		liveValues(t, file, func(k, v []byte) {
			for _, seq := range []int{3, 38, 4, 39} {
				for _, f := range []string{"content", "extra", "attached"} {
					sec := secret(f, "e", seq-1)
					if bytes.Contains(v, []byte(sec)) || bytes.Contains(k, []byte(sec)) {
						found[sec] = true
					}
				}
			}
		})
	}
	for _, seq := range []int{4, 39} { // not recalled: the walk sees them
		for _, f := range []string{"content", "extra", "attached"} {
			require.True(t, found[secret(f, "e", seq-1)], "%s of %d", f, seq)
		}
	}
	for _, seq := range []int{3, 38} {
		for _, f := range []string{"content", "extra", "attached"} {
			require.False(t, found[secret(f, "e", seq-1)], "%s of recalled %d is still stored", f, seq)
		}
	}
	// The file's bytes may still hold them, in pages freed by the recall's
	// commit that no commit has reused yet (see recall.go): bbolt does not
	// overwrite a page it frees, so that is not tested here.
}

func TestRecallInvalid(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "im.db"), Options{})
	require.NoError(t, err)
	defer s.Close()
	ctx := t.Context()
	const conv = "group_g"
	appendAll(t, s, secretMsgs(conv, 3, "m"))
	appendAll(t, s, secretMsgs("group_other", 1, "o"))
	m2 := messageAt(t, s, conv, 2)
	unchanged := func() {
		t.Helper()
		require.Equal(t, m2, messageAt(t, s, conv, 2))
	}
	for _, tt := range []struct {
		name string
		conv string
		seq  int64
		by   string
		at   time.Time
		want error
	}{
		{"NoBy", conv, 2, "", recallTime, im.ErrInvalidArgument},
		{"ByWithZeroByte", conv, 2, "u\x001", recallTime, im.ErrInvalidArgument},
		{"ZeroTime", conv, 2, "u1", time.Time{}, im.ErrInvalidArgument},
		{"BadConversation", "", 2, "u1", recallTime, im.ErrInvalidArgument},
		{"SeqZero", conv, 0, "u1", recallTime, im.ErrNotFound},
		{"SeqNegative", conv, -2, "u1", recallTime, im.ErrNotFound},
		{"SeqPastEnd", conv, 4, "u1", recallTime, im.ErrNotFound},
		{"NoConversation", "group_none", 1, "u1", recallTime, im.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := lastTx(t, s)
			_, err := s.RecallMessage(ctx, tt.conv, tt.seq, tt.by, tt.at)
			require.ErrorIs(t, err, tt.want)
			require.Equal(t, before, lastTx(t, s))
			unchanged()
		})
	}
	t.Run("Cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.RecallMessage(cctx, conv, 2, "u1", recallTime)
		require.ErrorIs(t, err, context.Canceled)
		_, err = s.MessageByServerID(cctx, conv, m2.ServerID)
		require.ErrorIs(t, err, context.Canceled)
		unchanged()
	})
	t.Run("ServerID", func(t *testing.T) {
		_, err := s.MessageByServerID(ctx, conv, "s-nothing")
		require.ErrorIs(t, err, im.ErrNotFound)
		_, err = s.MessageByServerID(ctx, conv, "s-o0") // group_other's
		require.ErrorIs(t, err, im.ErrNotFound)
		_, err = s.MessageByServerID(ctx, "group_none", "s-m0")
		require.ErrorIs(t, err, im.ErrNotFound)
		_, err = s.MessageByServerID(ctx, conv, "")
		require.ErrorIs(t, err, im.ErrInvalidArgument)
		_, err = s.MessageByServerID(ctx, "", "s-m0")
		require.ErrorIs(t, err, im.ErrInvalidArgument)
	})
}

func TestAppendRefusesTombstoneFields(t *testing.T) {
	// Only RecallMessage makes a tombstone: a message appended with its
	// fields set is refused, and nothing of it is stored.
	s, err := Open(filepath.Join(t.TempDir(), "im.db"), Options{})
	require.NoError(t, err)
	defer s.Close()
	b := secretMsgs("group_g", 1, "m")
	b[0][0].Message.RevokedBy, b[0][0].Message.RevokedAt = "u1", recallTime
	res, err := s.AppendMessages(t.Context(), b[0])
	require.NoError(t, err)
	require.ErrorIs(t, res[0].Err, im.ErrInvalidArgument)
	_, err = s.Conversation(t.Context(), "group_g")
	require.ErrorIs(t, err, im.ErrNotFound)
	require.NoError(t, s.Check(t.Context()))
}

func TestRecallWhileWriting(t *testing.T) {
	// Recalls, appends, merges by count and by age, and receipts, all at
	// once; Check agrees with what they leave.
	s, err := Open(filepath.Join(t.TempDir(), "im.db"), Options{mergeAfter: 50, mergeInterval: time.Millisecond, maxLag: 20})
	require.NoError(t, err)
	defer s.Close()
	ctx := t.Context()
	convs := []string{"group_a", "group_b", "group_c"}
	var wg sync.WaitGroup
	for i, conv := range convs {
		wg.Go(func() {
			for j := range 10 {
				appendAll(t, s, inBatches(secretMsgs(conv, 12, fmt.Sprintf("w%d.%d.", i, j)), 4))
			}
		})
	}
	recalled := make(map[string]map[int64]bool)
	for _, conv := range convs {
		recalled[conv] = make(map[int64]bool)
	}
	wg.Go(func() {
		for n := 0; n < 200; n++ {
			conv := convs[n%len(convs)]
			c, err := s.Conversation(ctx, conv)
			if err != nil {
				continue // not created yet
			}
			seq := 1 + int64(n*7)%c.MaxSeq
			if _, err := s.RecallMessage(ctx, conv, seq, "u1", recallTime); err != nil {
				t.Error(err)
				return
			}
			recalled[conv][seq] = true
			if _, err := s.UpdateReadStates(ctx, []im.ReadState{{UserID: "u3", ConversationID: conv, Read: seq, Delivered: c.MaxSeq}}); err != nil {
				t.Error(err)
				return
			}
			if n%20 == 0 {
				if err := s.Check(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	wg.Wait()
	require.NoError(t, s.Check(ctx))
	for conv, seqs := range recalled {
		ms, err := s.Messages(ctx, conv, 1, 0, 1000)
		require.NoError(t, err)
		require.Len(t, ms, 120)
		for _, m := range ms {
			require.Equal(t, seqs[m.Seq], m.Revoked(), "%s/%d", conv, m.Seq)
			require.Equal(t, seqs[m.Seq], m.Content == nil, "%s/%d", conv, m.Seq)
		}
		require.Equal(t, int64(120), max(stateOf(t, s, "u1", conv).Read, stateOf(t, s, "u2", conv).Read))
	}
}

func TestTombstoneRecord(t *testing.T) {
	m := sampleMessage()
	m.Content, m.Extra, m.AttachedInfo = nil, "", ""
	m.RevokedBy, m.RevokedAt = "admin ✓", recallTime
	rec := appendMessage(nil, &m)
	require.Equal(t, byte(messageRecordV2), rec[0])
	require.LessOrEqual(t, len(rec), messageSize(&m))
	got, err := decodeMessage(m.ConversationID, m.Seq, rec)
	require.NoError(t, err)
	require.Equal(t, m, got)

	// A version 2 record may carry content (the codec does not judge),
	// and must name who recalled it.
	m.Content = []byte("x")
	got, err = decodeMessage(m.ConversationID, m.Seq, appendMessage(nil, &m))
	require.NoError(t, err)
	require.Equal(t, m, got)
	m.RevokedBy = "x"
	rec = appendMessage(nil, &m)
	i := bytes.LastIndexByte(rec, 'x')
	noBy := append([]byte{messageRecordV2}, rec[1:]...)
	noBy[7] = 0 // RevokedBy's length
	noBy = append(noBy[:i-1], noBy[i:]...)
	_, err = decodeMessage(m.ConversationID, m.Seq, noBy)
	require.ErrorIs(t, err, errCorrupt)
	_, err = decodeMessage(m.ConversationID, m.Seq, rec[:20])
	require.ErrorIs(t, err, errCorrupt)
}

func TestRecallAndReceiptFailedCommit(t *testing.T) {
	// A commit that fails (a write or fsync error) leaves the message as
	// it was, in memory and in the file, and stores no receipt.
	dir := t.TempDir()
	var armed atomic.Bool // the merger calls the hook too
	errWrite := errors.New("injected write failure")
	s, err := Open(filepath.Join(dir, "im.db"), Options{mergeAfter: 1 << 20, mergeInterval: time.Hour, hook: func(point string) error {
		if armed.Load() && point == failCommit {
			return errWrite
		}
		return nil
	}})
	require.NoError(t, err)
	defer s.Close()
	ctx := t.Context()
	const conv = "group_f"
	appendAll(t, s, secretMsgs(conv, 40, "f"))
	pending, merged := messageAt(t, s, conv, 38), messageAt(t, s, conv, 4)
	armed.Store(true)
	for _, seq := range []int64{38, 4} {
		_, err := s.RecallMessage(ctx, conv, seq, "u1", recallTime)
		require.ErrorIs(t, err, errWrite)
	}
	_, err = s.UpdateReadStates(ctx, []im.ReadState{{UserID: "u3", ConversationID: conv, Read: 5}})
	require.ErrorIs(t, err, errWrite)
	armed.Store(false)
	requireMessage(t, s, pending)
	requireMessage(t, s, merged)
	require.Zero(t, stateOf(t, s, "u3", conv).Read)
	require.NoError(t, s.Check(ctx))
	crashed := openCrashed(t, s, filepath.Join(dir, "crash.db"))
	requireMessage(t, crashed, pending)
	requireMessage(t, crashed, merged)
	require.Zero(t, stateOf(t, crashed, "u3", conv).Read)

	// And once writes work again, the recall does.
	got, err := s.RecallMessage(ctx, conv, 38, "u1", recallTime)
	require.NoError(t, err)
	require.Equal(t, tombstoneOf(pending, "u1"), got)
	require.NoError(t, s.Check(ctx))
}
