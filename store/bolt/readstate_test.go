package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// sentMsgs returns one-message batches into conv, message i from
// senders[i], with contents unique to prefix.
func sentMsgs(conv, prefix string, senders []string) [][]im.AppendRequest {
	out := make([][]im.AppendRequest, len(senders))
	for i, u := range senders {
		out[i] = []im.AppendRequest{{Message: im.Message{
			ConversationID: conv, ServerID: fmt.Sprintf("s-%s%d", prefix, i),
			SenderID: u, ClientMsgID: fmt.Sprintf("%s%d", prefix, i),
			Content: []byte(fmt.Sprintf("%s-content-%d", prefix, i)),
		}, Members: []string{"u1", "u2", "u3", "u4"}}}
	}
	return out
}

// repeat returns n senders taken in turn from us.
func repeat(n int, us ...string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = us[i%len(us)]
	}
	return out
}

func stateOf(t *testing.T, s *Store, user, conv string) im.ReadState {
	t.Helper()
	st, err := s.ReadStates(t.Context(), user, []string{conv})
	require.NoError(t, err)
	require.Len(t, st, 1)
	require.Equal(t, user, st[0].UserID)
	require.Equal(t, conv, st[0].ConversationID)
	return st[0]
}

// requireStates requires conv's states to be want, through
// ConversationReadStates and ReadStates.
func requireStates(t *testing.T, s *Store, conv string, want ...im.ReadState) {
	t.Helper()
	got, err := s.ConversationReadStates(t.Context(), conv)
	require.NoError(t, err)
	if want == nil {
		want = []im.ReadState{}
	}
	require.Equal(t, want, got)
	for _, w := range want {
		require.Equal(t, w, stateOf(t, s, w.UserID, conv))
	}
}

// lastTx returns the id of the last transaction s committed.
func lastTx(t *testing.T, s *Store) int {
	t.Helper()
	var id int
	require.NoError(t, s.db.View(func(tx *bbolt.Tx) error { id = tx.ID(); return nil }))
	return id
}

// storedSent returns the sent position of user in conv as the file has it
// (0 if none): the messages' pending copies do not count.
func storedSent(t *testing.T, s *Store, conv, user string) int64 {
	t.Helper()
	var seq int64
	require.NoError(t, s.db.View(func(tx *bbolt.Tx) (err error) {
		seq, err = sentPosition(tx.Bucket([]byte(bucketMsgs)), convUserKey(nil, conv, user))
		return err
	}))
	return seq
}

func TestReadStateOfOwnMessages(t *testing.T) {
	// A sender has read her own messages as soon as AppendMessages
	// returns: from her pending messages while they wait, from the
	// position the merge records once they are in their bucket.
	dir := t.TempDir()
	path := filepath.Join(dir, "im.db")
	s, err := Open(path, Options{mergeInterval: time.Hour})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	const conv = "group_g"

	// 1 to 31 from u1, u2, u3 in turn: all pending.
	for i, b := range sentMsgs(conv, "a", repeat(31, "u1", "u2", "u3")) {
		res := appendAll(t, s, [][]im.AppendRequest{b})
		require.Equal(t, int64(i+1), res[0].Message.Seq)
		require.Equal(t, int64(i+1), stateOf(t, s, b[0].Message.SenderID, conv).Read, "message %d", i+1)
	}
	require.Zero(t, bucketLen(t, s, conv))
	require.Zero(t, storedSent(t, s, conv, "u1"))
	requireStates(t, s, conv,
		im.ReadState{UserID: "u1", ConversationID: conv, Read: 31},
		im.ReadState{UserID: "u2", ConversationID: conv, Read: 29},
		im.ReadState{UserID: "u3", ConversationID: conv, Read: 30})

	// 32 merges them all: the positions are in the file now.
	appendAll(t, s, sentMsgs(conv, "b", []string{"u2"}))
	require.Equal(t, 32, bucketLen(t, s, conv))
	require.Equal(t, int64(31), storedSent(t, s, conv, "u1"))
	require.Equal(t, int64(32), storedSent(t, s, conv, "u2"))
	require.Equal(t, int64(30), storedSent(t, s, conv, "u3"))

	// 33 to 40 from u4 only, pending: the others' positions come from
	// the file, u4's from memory, and u2's from both once she sends
	// again.
	appendAll(t, s, sentMsgs(conv, "c", repeat(8, "u4")))
	require.Equal(t, 32, bucketLen(t, s, conv))
	want := []im.ReadState{
		{UserID: "u1", ConversationID: conv, Read: 31},
		{UserID: "u2", ConversationID: conv, Read: 32},
		{UserID: "u3", ConversationID: conv, Read: 30},
		{UserID: "u4", ConversationID: conv, Read: 40},
	}
	requireStates(t, s, conv, want...)
	require.NoError(t, s.Check(t.Context()))

	// A crash keeps them as it keeps the messages.
	crashed := openCrashed(t, s, filepath.Join(dir, "crash.db"))
	requireStates(t, crashed, conv, want...)
	require.NoError(t, crashed.Check(t.Context()))

	// A receipt raises Read past her own messages, not below them.
	got, err := s.UpdateReadStates(t.Context(), []im.ReadState{
		{UserID: "u1", ConversationID: conv, Read: 35},
		{UserID: "u4", ConversationID: conv, Read: 3, Delivered: 39},
	})
	require.NoError(t, err)
	want[0].Read, want[3].Delivered = 35, 39
	require.Equal(t, []im.ReadState{want[0], want[3]}, got)
	requireStates(t, s, conv, want...)

	// Close moves the pending messages to the bucket, and u4's position
	// with them.
	require.NoError(t, s.Close())
	s, err = Open(path, Options{})
	require.NoError(t, err)
	require.Equal(t, 40, bucketLen(t, s, conv))
	require.Equal(t, int64(40), storedSent(t, s, conv, "u4"))
	requireStates(t, s, conv, want...)
	require.NoError(t, s.Check(t.Context()))
}

func TestReadStateMergedByAge(t *testing.T) {
	// A quiet conversation's messages move to their bucket for age, in a
	// commit that does not touch the conversation: its position moves
	// with them.
	s, err := Open(filepath.Join(t.TempDir(), "im.db"), Options{maxLag: 10})
	require.NoError(t, err)
	defer s.Close()
	appendAll(t, s, sentMsgs("group_quiet", "q", []string{"u1", "u2"}))
	appendAll(t, s, sentMsgs("group_busy", "b", repeat(9, "u3")))
	require.Equal(t, 2, bucketLen(t, s, "group_quiet"))
	require.Equal(t, int64(1), storedSent(t, s, "group_quiet", "u1"))
	require.Equal(t, int64(2), storedSent(t, s, "group_quiet", "u2"))
	requireStates(t, s, "group_quiet",
		im.ReadState{UserID: "u1", ConversationID: "group_quiet", Read: 1},
		im.ReadState{UserID: "u2", ConversationID: "group_quiet", Read: 2})
	require.NoError(t, s.Check(t.Context()))
}

func TestReadStateManySenders(t *testing.T) {
	// A batch with more senders in one conversation than the merge keeps
	// in a slice, each several times.
	s, err := Open(filepath.Join(t.TempDir(), "im.db"), Options{})
	require.NoError(t, err)
	defer s.Close()
	var senders []string
	for i := range 60 {
		senders = append(senders, fmt.Sprintf("w%02d", i%20))
	}
	appendAll(t, s, inBatches(sentMsgs("group_big", "m", senders), 60))
	require.Equal(t, 60, bucketLen(t, s, "group_big"))
	for i := range 20 {
		u := fmt.Sprintf("w%02d", i)
		require.Equal(t, int64(41+i), storedSent(t, s, "group_big", u), u)
		require.Equal(t, int64(41+i), stateOf(t, s, u, "group_big").Read, u)
	}
	states, err := s.ConversationReadStates(t.Context(), "group_big")
	require.NoError(t, err)
	require.Len(t, states, 20)
	require.NoError(t, s.Check(t.Context()))
}

func TestUpdateReadStates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "im.db")
	s, err := Open(path, Options{})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	ctx := t.Context()
	const conv = "group_g"
	appendAll(t, s, sentMsgs(conv, "m", repeat(10, "u0")))
	update := func(states ...im.ReadState) []im.ReadState {
		t.Helper()
		got, err := s.UpdateReadStates(ctx, states)
		require.NoError(t, err)
		return got
	}
	st := func(user, conv string, read, delivered int64) im.ReadState {
		return im.ReadState{UserID: user, ConversationID: conv, Read: read, Delivered: delivered}
	}

	require.Equal(t, []im.ReadState{st("u1", conv, 3, 5)}, update(st("u1", conv, 3, 5)))

	t.Run("ForwardOnly", func(t *testing.T) {
		before := lastTx(t, s)
		require.Equal(t, []im.ReadState{st("u1", conv, 3, 5)}, update(st("u1", conv, 2, 1)))
		require.Equal(t, []im.ReadState{st("u1", conv, 3, 5)}, update(st("u1", conv, 0, 0)))
		require.Equal(t, before, lastTx(t, s), "a batch that changes nothing commits nothing")
		require.Equal(t, []im.ReadState{st("u1", conv, 4, 5)}, update(st("u1", conv, 4, 0)))
		require.Equal(t, before+1, lastTx(t, s))
	})
	t.Run("ClampedToMaxSeq", func(t *testing.T) {
		require.Equal(t, []im.ReadState{st("u1", conv, 10, 10)}, update(st("u1", conv, 100, 11)))
		// Once the conversation grows, the receipt can follow.
		appendAll(t, s, sentMsgs(conv, "n", []string{"u0", "u0"}))
		require.Equal(t, []im.ReadState{st("u1", conv, 11, 12)}, update(st("u1", conv, 11, 100)))
	})
	t.Run("NoMessages", func(t *testing.T) {
		require.Equal(t, []im.ReadState{st("u1", "group_none", 0, 0)}, update(st("u1", "group_none", 5, 5)))
		requireStates(t, s, "group_none")
		require.NoError(t, s.db.View(func(tx *bbolt.Tx) error {
			require.Nil(t, tx.Bucket([]byte(bucketReadStates)).Get(convUserKey(nil, "group_none", "u1")))
			return nil
		}))
	})
	t.Run("Combined", func(t *testing.T) {
		// States of one user and conversation combine, and each answer
		// is the state after the commit.
		got := update(st("u2", conv, 4, 0), st("u3", conv, 0, 2), st("u2", conv, 0, 7), st("u2", conv, 6, 2))
		require.Equal(t, []im.ReadState{st("u2", conv, 6, 7), st("u3", conv, 0, 2), st("u2", conv, 6, 7), st("u2", conv, 6, 7)}, got)
	})
	t.Run("OwnMessagesCount", func(t *testing.T) {
		// u0 sent everything: a receipt from her reports her messages.
		require.Equal(t, []im.ReadState{st("u0", conv, 12, 3)}, update(st("u0", conv, 3, 3)))
	})
	t.Run("MentionedAndUpdatedAt", func(t *testing.T) {
		// Mentioned moves like the others; the time is that of the last
		// state of the batch that moved a position, and a state that
		// moves nothing leaves it.
		t1, t2, t3 := recallTime, recallTime.Add(time.Second), recallTime.Add(time.Minute)
		got := update(
			im.ReadState{UserID: "u4", ConversationID: conv, Mentioned: 5, UpdatedAt: t1},
			im.ReadState{UserID: "u4", ConversationID: conv, Read: 2, UpdatedAt: t2},
			im.ReadState{UserID: "u4", ConversationID: conv, Mentioned: 4, Read: 1, UpdatedAt: t3},
			im.ReadState{UserID: "u4", ConversationID: conv, Mentioned: 99},
		)
		want := im.ReadState{UserID: "u4", ConversationID: conv, Read: 2, Mentioned: 12}
		require.Equal(t, []im.ReadState{want, want, want, want}, got, "the last mover had no time")
		got = update(im.ReadState{UserID: "u4", ConversationID: conv, Delivered: 3, UpdatedAt: t2.In(time.FixedZone("X", -3600))})
		want.Delivered, want.UpdatedAt = 3, t2
		require.Equal(t, []im.ReadState{want}, got)
		got = update(im.ReadState{UserID: "u4", ConversationID: conv, Delivered: 1, Mentioned: 3, UpdatedAt: t3})
		require.Equal(t, []im.ReadState{want}, got, "nothing moved: the time stays")
		// Her own message moves Read, not the time.
		appendAll(t, s, sentMsgs(conv, "own", []string{"u4"}))
		want.Read = 13
		require.Equal(t, want, stateOf(t, s, "u4", conv))
		// A receipt below it still moves the receipt's own Read, and so
		// the time (as memstore does).
		update(im.ReadState{UserID: "u4", ConversationID: conv, Read: 11, UpdatedAt: t1})
		want.UpdatedAt = t1
		require.Equal(t, want, stateOf(t, s, "u4", conv))
	})
	t.Run("Empty", func(t *testing.T) {
		before := lastTx(t, s)
		got, err := s.UpdateReadStates(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, got)
		require.Equal(t, before, lastTx(t, s))
	})

	want := []im.ReadState{st("u0", conv, 12, 3), st("u1", conv, 11, 12), st("u2", conv, 6, 7), st("u3", conv, 0, 2),
		{UserID: "u4", ConversationID: conv, Read: 13, Delivered: 3, Mentioned: 12, UpdatedAt: recallTime}}
	requireStates(t, s, conv, want...)
	got, err := s.ReadStates(ctx, "u2", []string{conv, "group_none", "single_u1_u2", conv})
	require.NoError(t, err)
	require.Equal(t, []im.ReadState{st("u2", conv, 6, 7), st("u2", "group_none", 0, 0), st("u2", "single_u1_u2", 0, 0), st("u2", conv, 6, 7)}, got)
	got, err = s.ReadStates(ctx, "u2", nil)
	require.NoError(t, err)
	require.Empty(t, got)
	require.NoError(t, s.Check(ctx))

	// Receipts are durable: after a crash and after a reopen.
	crashed := openCrashed(t, s, filepath.Join(dir, "crash.db"))
	requireStates(t, crashed, conv, want...)
	require.NoError(t, s.Close())
	s, err = Open(path, Options{})
	require.NoError(t, err)
	requireStates(t, s, conv, want...)
	require.NoError(t, s.Check(ctx))
}

func TestReadStatesInvalid(t *testing.T) {
	// Bad input is refused, and nothing of its batch is stored.
	s, err := Open(filepath.Join(t.TempDir(), "im.db"), Options{})
	require.NoError(t, err)
	defer s.Close()
	ctx := t.Context()
	const conv = "group_g"
	appendAll(t, s, sentMsgs(conv, "m", repeat(5, "u0")))
	valid := im.ReadState{UserID: "u1", ConversationID: conv, Read: 2, Delivered: 3}
	for _, tt := range []struct {
		name string
		bad  im.ReadState
	}{
		{"NoUser", im.ReadState{ConversationID: conv, Read: 1}},
		{"UserWithZeroByte", im.ReadState{UserID: "u\x001", ConversationID: conv, Read: 1}},
		{"NoConversation", im.ReadState{UserID: "u1", Read: 1}},
		{"ConversationWithControl", im.ReadState{UserID: "u1", ConversationID: "group\n", Read: 1}},
		{"NegativeRead", im.ReadState{UserID: "u1", ConversationID: conv, Read: -1}},
		{"NegativeDelivered", im.ReadState{UserID: "u1", ConversationID: conv, Delivered: -1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := lastTx(t, s)
			_, err := s.UpdateReadStates(ctx, []im.ReadState{valid, tt.bad})
			require.ErrorIs(t, err, im.ErrInvalidArgument)
			require.Equal(t, before, lastTx(t, s))
			requireStates(t, s, conv, im.ReadState{UserID: "u0", ConversationID: conv, Read: 5})
		})
	}
	_, err = s.ReadStates(ctx, "", []string{conv})
	require.ErrorIs(t, err, im.ErrInvalidArgument)
	_, err = s.ReadStates(ctx, "u1", []string{conv, ""})
	require.ErrorIs(t, err, im.ErrInvalidArgument)
	_, err = s.ConversationReadStates(ctx, "")
	require.ErrorIs(t, err, im.ErrInvalidArgument)
}

func TestReadStatesCancelled(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "im.db"), Options{})
	require.NoError(t, err)
	defer s.Close()
	const conv = "group_g"
	appendAll(t, s, sentMsgs(conv, "m", repeat(5, "u0")))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	before := lastTx(t, s)
	_, err = s.UpdateReadStates(ctx, []im.ReadState{{UserID: "u1", ConversationID: conv, Read: 2}})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, before, lastTx(t, s))
	_, err = s.ReadStates(ctx, "u1", []string{conv})
	require.ErrorIs(t, err, context.Canceled)
	_, err = s.ConversationReadStates(ctx, conv)
	require.ErrorIs(t, err, context.Canceled)
	requireStates(t, s, conv, im.ReadState{UserID: "u0", ConversationID: conv, Read: 5})
}

func TestReadStateRecord(t *testing.T) {
	for _, r := range []receiptRecord{
		{},
		{read: 1},
		{delivered: 7, updated: recallTime},
		{read: 1 << 40, delivered: 1<<62 + 3, mentioned: 5, updated: time.Date(1969, 1, 1, 0, 0, 0, 1, time.UTC)},
	} {
		got, err := decodeReceiptRecord(appendReceipt(nil, &r))
		require.NoError(t, err)
		require.Equal(t, r, got) // == for the zero time too
	}
	good := appendReceipt(nil, &receiptRecord{read: 5, delivered: 6, mentioned: 2, updated: recallTime})
	for _, rec := range [][]byte{nil, {recordV1}, good[:len(good)-1], append(good, 0), append([]byte{2}, good[1:]...),
		append([]byte{recordV1}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0, 0)} {
		_, err := decodeReceiptRecord(rec)
		require.ErrorIs(t, err, errCorrupt, "%x", rec)
	}
}
