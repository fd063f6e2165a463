package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
)

// testRecall checks im.RecallStore, when the store has it: a recalled
// message becomes a tombstone on every read path, dedup included, once and
// for good.
func testRecall(t *testing.T, h Harness) {
	if _, ok := open(t, h).(im.RecallStore); !ok {
		t.Skip("storetest: the store does not implement im.RecallStore")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness, s im.Store, rs im.RecallStore)
	}{
		{"Tombstone", testRecallTombstone},
		{"ByServerID", testMessageByServerID},
		{"Dedup", testRecallDedup},
		{"Idempotent", testRecallIdempotent},
		{"Concurrent", testRecallConcurrent},
		{"NotFound", testRecallNotFound},
		{"Invalid", testRecallInvalid},
		{"Cancelled", testRecallCancelled},
		{"Durability", testRecallDurability},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, h)
			rs := recallStore(t, s)
			tt.fn(t, h, s, rs)
		})
	}
}

// recallStore returns s as an im.RecallStore, failing t if it is none.
func recallStore(t *testing.T, s im.Store) im.RecallStore {
	t.Helper()
	rs, ok := s.(im.RecallStore)
	if !ok {
		t.Fatalf("storetest: the store %T does not implement im.RecallStore, though the first Harness.Open did", s)
	}
	return rs
}

// recallConv is the conversation of the recall fixture: recallOld
// messages appended in commits of ten, so that a store which keeps recent
// messages apart from older ones (in a log, a cache) has moved the first
// ones on, then one more, the newest, in a commit of its own.
const (
	recallConv  = "group_recall"
	recallOld   = 100
	recallNewer = recallOld + 1
	recallOther = "single_alice_bob"
)

// recallFixture fills s and returns recallConv's messages as stored, in
// seq order (index seq-1); recallOther gets three messages.
func recallFixture(t *testing.T, s im.Store) []im.Message {
	t.Helper()
	var want []im.Message
	for c := range recallOld / 10 {
		var batch []im.Message
		for i := range 10 {
			n := c*10 + i
			sender := []string{"alice", "bob", "carol"}[n%3]
			batch = append(batch, newMessage(recallConv, sender, fmt.Sprintf("r%03d", n)))
		}
		for _, r := range appendNew(t, s, req(batch...)) {
			want = append(want, r.Message)
		}
	}
	var other []im.AppendRequest
	for i := range 3 {
		other = append(other, im.AppendRequest{Message: newMessage(recallOther, "bob", fmt.Sprintf("o%d", i)), Members: []string{"alice", "bob"}})
	}
	appendNew(t, s, other)
	newest := newMessage(recallConv, "alice", "newest")
	want = append(want, appendNew(t, s, req(newest))[0].Message)
	for i, m := range want {
		if m.Seq != int64(i+1) {
			t.Fatalf("recall fixture: message %d stored with seq %d", i+1, m.Seq)
		}
	}
	return want
}

// recallTime is the n-th time the suite recalls at: microsecond precision
// with a sub-millisecond part, in a zone other than UTC, so that a store
// that keeps milliseconds only or compares locations is caught.
func recallTime(n int) time.Time {
	return baseTime().Add(time.Minute + time.Duration(n)*time.Millisecond + 321*time.Microsecond).In(time.FixedZone("UTC-3", -3*3600))
}

// tombstone returns m as a Store returns it once recalled by by at at.
func tombstone(m im.Message, by string, at time.Time) im.Message {
	m.Content, m.Extra, m.AttachedInfo = nil, "", ""
	m.RevokedBy, m.RevokedAt = by, at
	return m
}

// recall recalls seq of conv, failing t on error, and checks the result
// against want.
func recall(t *testing.T, rs im.RecallStore, conv string, seq int64, by string, at time.Time, want im.Message) {
	t.Helper()
	got, err := rs.RecallMessage(t.Context(), conv, seq, by, at)
	if err != nil {
		t.Fatalf("RecallMessage(%q, %d, %q): %v", conv, seq, by, err)
	}
	checkMessage(t, fmt.Sprintf("RecallMessage(%q, %d, %q)", conv, seq, by), got, want)
}

// checkAllReads requires every read path of s to return exactly want for
// conv (want[i] has seq i+1): Messages, MessagesBefore, MessageRanges when
// s is an im.SyncStore, and MessageByServerID for each message.
func checkAllReads(t *testing.T, s im.Store, conv string, want []im.Message) {
	t.Helper()
	checkMessages(t, "Messages("+conv+")", allMessages(t, s, conv), want)
	checkMaxSeq(t, s, conv, int64(len(want)))
	before, err := s.MessagesBefore(t.Context(), conv, 0, len(want)+10)
	if err != nil {
		t.Fatalf("MessagesBefore(%q): %v", conv, err)
	}
	checkMessages(t, "MessagesBefore("+conv+")", before, want)
	var ranges []im.MessageRange
	for i, m := range want {
		if m.Revoked() {
			// One message alone, by each read that selects by seq.
			seq := int64(i + 1)
			checkMessages(t, fmt.Sprintf("Messages(%q, %d, %d)", conv, seq, seq), messages(t, s, conv, seq, seq, 1), want[i:i+1])
			before, err := s.MessagesBefore(t.Context(), conv, seq+1, 1)
			if err != nil {
				t.Fatalf("MessagesBefore(%q, %d): %v", conv, seq+1, err)
			}
			checkMessages(t, fmt.Sprintf("MessagesBefore(%q, %d, 1)", conv, seq+1), before, want[i:i+1])
			ranges = append(ranges, im.MessageRange{ConversationID: conv, From: seq, To: seq})
		}
	}
	if ss, ok := s.(im.SyncStore); ok {
		ranges = append(ranges, im.MessageRange{ConversationID: conv, From: 1})
		pages, err := ss.MessageRanges(t.Context(), ranges, len(want)+10)
		if err != nil {
			t.Fatalf("MessageRanges: %v", err)
		}
		if len(pages) != len(ranges) {
			t.Fatalf("MessageRanges of %d ranges returned %d pages", len(ranges), len(pages))
		}
		for i, r := range ranges {
			w := want[r.From-1:]
			if r.To > 0 {
				w = want[r.From-1 : r.To]
			}
			checkMessages(t, fmt.Sprintf("MessageRanges range %+v", r), pages[i], w)
		}
	}
	rs := recallStore(t, s)
	for _, m := range want {
		got, err := rs.MessageByServerID(t.Context(), conv, m.ServerID)
		if err != nil {
			t.Errorf("MessageByServerID(%q, %q) (seq %d): %v", conv, m.ServerID, m.Seq, err)
			continue
		}
		checkMessage(t, fmt.Sprintf("MessageByServerID(%q, seq %d)", conv, m.Seq), got, m)
	}
}

// testRecallTombstone: a recalled message keeps everything but Content,
// Extra and AttachedInfo, which are gone from every read, and gains
// RevokedBy and RevokedAt, to the microsecond. Old and newest messages
// alike; the others are untouched.
func testRecallTombstone(t *testing.T, _ Harness, s im.Store, rs im.RecallStore) {
	want := recallFixture(t, s)
	other := allMessages(t, s, recallOther)

	want[2] = tombstone(want[2], "carol", recallTime(1))
	recall(t, rs, recallConv, 3, "carol", recallTime(1), want[2])
	want[recallNewer-1] = tombstone(want[recallNewer-1], "alice", recallTime(2))
	recall(t, rs, recallConv, recallNewer, "alice", recallTime(2), want[recallNewer-1])

	checkAllReads(t, s, recallConv, want)
	checkMessages(t, recallOther+" is untouched", allMessages(t, s, recallOther), other)
}

// testMessageByServerID: messages are found by ServerID in their own
// conversation only, the newest as well as old ones.
func testMessageByServerID(t *testing.T, _ Harness, s im.Store, rs im.RecallStore) {
	want := recallFixture(t, s)
	for _, seq := range []int64{1, 2, 50, recallOld, recallNewer} {
		m := want[seq-1]
		got, err := rs.MessageByServerID(t.Context(), recallConv, m.ServerID)
		if err != nil {
			t.Errorf("MessageByServerID(seq %d): %v", seq, err)
			continue
		}
		checkMessage(t, fmt.Sprintf("MessageByServerID(seq %d)", seq), got, m)
	}
	// Just appended, in a conversation with messages older than it.
	fresh := appendNew(t, s, req(newMessage(recallConv, "bob", "fresh")))[0].Message
	got, err := rs.MessageByServerID(t.Context(), recallConv, fresh.ServerID)
	if err != nil {
		t.Errorf("MessageByServerID of the message just appended: %v", err)
	} else {
		checkMessage(t, "MessageByServerID of the message just appended", got, fresh)
	}

	otherMsg := allMessages(t, s, recallOther)[0]
	for _, c := range []struct{ what, conv, id string }{
		{"an unknown id", recallConv, "srv:nothing"},
		{"an id of another conversation", recallConv, otherMsg.ServerID},
		{"an id in the wrong conversation", recallOther, want[0].ServerID},
		{"a conversation without messages", "group_none", want[0].ServerID},
		{"a prefix of an id", recallConv, want[0].ServerID[:len(want[0].ServerID)-1]},
	} {
		if m, err := rs.MessageByServerID(t.Context(), c.conv, c.id); !errors.Is(err, im.ErrNotFound) {
			t.Errorf("MessageByServerID of %s = seq %d, %v; want ErrNotFound", c.what, m.Seq, err)
		}
	}
	if m, err := rs.MessageByServerID(t.Context(), recallConv, ""); !errors.Is(err, im.ErrNotFound) && !errors.Is(err, im.ErrInvalidArgument) {
		t.Errorf("MessageByServerID of an empty id = seq %d, %v; want ErrNotFound or ErrInvalidArgument", m.Seq, err)
	}
}

// testRecallDedup: a resend of a recalled message's (sender,
// client_msg_id) is a duplicate answered with the tombstone, alone or
// within a batch, and stores nothing.
func testRecallDedup(t *testing.T, _ Harness, s im.Store, rs im.RecallStore) {
	want := recallFixture(t, s)
	orig := want[4] // old
	want[4] = tombstone(orig, orig.SenderID, recallTime(1))
	recall(t, rs, recallConv, 5, orig.SenderID, recallTime(1), want[4])
	newest := want[recallNewer-1]
	want[recallNewer-1] = tombstone(newest, newest.SenderID, recallTime(2))
	recall(t, rs, recallConv, recallNewer, newest.SenderID, recallTime(2), want[recallNewer-1])

	// The client resends the message as it first sent it, with a new
	// server id as a Server gives every attempt.
	resend := func(m im.Message) im.Message {
		m.Seq = 0
		m.ServerID += ":again"
		m.RevokedBy, m.RevokedAt = "", time.Time{}
		return m
	}
	r := appendOK(t, s, req(resend(orig)))[0]
	if r.Err != nil || !r.Duplicate {
		t.Fatalf("resend of a recalled message: Err=%v Duplicate=%v, want a duplicate", r.Err, r.Duplicate)
	}
	checkMessage(t, "resend of a recalled message", r.Message, want[4])

	// In a batch, around a new message, which takes the next seq.
	next := newMessage(recallConv, "dave", "next")
	res := appendOK(t, s, req(resend(newest), next, resend(orig)))
	want = append(want, withSeq(next, recallNewer+1))
	for i, w := range []struct {
		msg im.Message
		dup bool
	}{{want[recallNewer-1], true}, {want[recallNewer], false}, {want[4], true}} {
		if res[i].Err != nil || res[i].Duplicate != w.dup {
			t.Errorf("batch result %d: Err=%v Duplicate=%v, want Duplicate=%v", i, res[i].Err, res[i].Duplicate, w.dup)
			continue
		}
		checkMessage(t, fmt.Sprintf("batch result %d", i), res[i].Message, w.msg)
	}
	checkAllReads(t, s, recallConv, want)
}

// testRecallIdempotent: recalling a tombstone changes nothing, whoever asks
// and when: the first recall's RevokedBy and RevokedAt stay.
func testRecallIdempotent(t *testing.T, _ Harness, s im.Store, rs im.RecallStore) {
	want := recallFixture(t, s)
	for i, seq := range []int64{6, recallNewer} {
		first := tombstone(want[seq-1], "alice", recallTime(2*i))
		recall(t, rs, recallConv, seq, "alice", recallTime(2*i), first)
		recall(t, rs, recallConv, seq, "bob", recallTime(2*i+1), first)
		recall(t, rs, recallConv, seq, "alice", recallTime(2*i+1), first)
		want[seq-1] = first
	}
	checkAllReads(t, s, recallConv, want)
}

// testRecallConcurrent: many recalls of one message at once; exactly one
// wins, and every call returns its tombstone.
func testRecallConcurrent(t *testing.T, _ Harness, s im.Store, rs im.RecallStore) {
	want := recallFixture(t, s)
	const callers = 16
	var (
		wg      sync.WaitGroup
		results [callers]im.Message
		errs    [callers]error
		start   = make(chan struct{})
	)
	for i := range callers {
		wg.Go(func() {
			<-start
			results[i], errs[i] = rs.RecallMessage(t.Context(), recallConv, 7, fmt.Sprintf("user%02d", i), recallTime(i))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("RecallMessage by caller %d: %v", i, err)
		}
	}
	first := results[0]
	if !first.Revoked() {
		t.Fatalf("RecallMessage returned a message that is not recalled: RevokedBy %q", first.RevokedBy)
	}
	var winner int
	if _, err := fmt.Sscanf(first.RevokedBy, "user%02d", &winner); err != nil || winner < 0 || winner >= callers {
		t.Fatalf("RevokedBy = %q, which no caller gave", first.RevokedBy)
	}
	want[6] = tombstone(want[6], first.RevokedBy, recallTime(winner))
	for i, r := range results {
		checkMessage(t, fmt.Sprintf("RecallMessage by caller %d", i), r, want[6])
	}
	checkAllReads(t, s, recallConv, want)
}

// testRecallNotFound: seqs no message has are ErrNotFound, and nothing
// changes.
func testRecallNotFound(t *testing.T, _ Harness, s im.Store, rs im.RecallStore) {
	want := recallFixture(t, s)
	for _, c := range []struct {
		conv string
		seq  int64
	}{
		{recallConv, 0},
		{recallConv, -1},
		{recallConv, recallNewer + 1},
		{recallConv, 1 << 40},
		{"group_none", 1},
		{recallOther, 4},
	} {
		if m, err := rs.RecallMessage(t.Context(), c.conv, c.seq, "alice", recallTime(1)); !errors.Is(err, im.ErrNotFound) {
			t.Errorf("RecallMessage(%q, %d) = seq %d, %v; want ErrNotFound", c.conv, c.seq, m.Seq, err)
		}
	}
	checkAllReads(t, s, recallConv, want)
	checkNoConversation(t, s, "group_none")
	checkMaxSeq(t, s, recallOther, 3)
}

// testRecallInvalid: an invalid by or a zero time is ErrInvalidArgument,
// and the message stays as it was.
func testRecallInvalid(t *testing.T, _ Harness, s im.Store, rs im.RecallStore) {
	want := recallFixture(t, s)
	for _, c := range []struct {
		name string
		by   string
		at   time.Time
	}{
		{"EmptyBy", "", recallTime(1)},
		{"ControlBy", "bad\nid", recallTime(1)},
		{"LongBy", strings.Repeat("x", im.MaxIDLength+1), recallTime(1)},
		{"ZeroTime", "alice", time.Time{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, seq := range []int64{8, recallNewer} {
				if m, err := rs.RecallMessage(t.Context(), recallConv, seq, c.by, c.at); !errors.Is(err, im.ErrInvalidArgument) {
					t.Errorf("RecallMessage(seq %d, by %q, at %v) = RevokedBy %q, %v; want ErrInvalidArgument", seq, c.by, c.at, m.RevokedBy, err)
				}
			}
			checkAllReads(t, s, recallConv, want)
		})
	}
}

// testRecallCancelled: a cancelled ctx fails both methods with an error
// wrapping context.Canceled, and recalls nothing.
func testRecallCancelled(t *testing.T, _ Harness, s im.Store, rs im.RecallStore) {
	want := recallFixture(t, s)
	ctx := cancelled(t)
	if _, err := rs.MessageByServerID(ctx, recallConv, want[0].ServerID); !errors.Is(err, context.Canceled) {
		t.Errorf("MessageByServerID with a cancelled ctx: %v, want context.Canceled", err)
	}
	for _, seq := range []int64{9, recallNewer} {
		if _, err := rs.RecallMessage(ctx, recallConv, seq, "alice", recallTime(1)); !errors.Is(err, context.Canceled) {
			t.Errorf("RecallMessage(seq %d) with a cancelled ctx: %v, want context.Canceled", seq, err)
		}
	}
	checkAllReads(t, s, recallConv, want)
}

// testRecallDurability: tombstones survive reopening, on every read path
// and in the dedup index, and stay the first recall's.
func testRecallDurability(t *testing.T, h Harness, s im.Store, rs im.RecallStore) {
	if h.Reopen == nil {
		t.Skip("storetest: Harness.Reopen is not set")
	}
	want := recallFixture(t, s)
	orig := want[9]
	want[9] = tombstone(orig, "bob", recallTime(1))
	recall(t, rs, recallConv, 10, "bob", recallTime(1), want[9])
	want[recallNewer-1] = tombstone(want[recallNewer-1], "alice", recallTime(2))
	recall(t, rs, recallConv, recallNewer, "alice", recallTime(2), want[recallNewer-1])

	reopen := func() {
		t.Helper()
		s = h.Reopen(t, s)
		if s == nil {
			t.Fatal("storetest: Harness.Reopen returned nil")
		}
		rs = recallStore(t, s)
	}
	reopen()
	checkAllReads(t, s, recallConv, want)
	orig.Seq, orig.ServerID = 0, "srv:retry"
	r := appendOK(t, s, req(orig))[0]
	if r.Err != nil || !r.Duplicate {
		t.Fatalf("resend of a recalled message after reopen: Err=%v Duplicate=%v, want a duplicate", r.Err, r.Duplicate)
	}
	checkMessage(t, "resend of a recalled message after reopen", r.Message, want[9])

	// Still the first recall's, and recalls go on after reopening.
	recall(t, rs, recallConv, 10, "carol", recallTime(3), want[9])
	want[10] = tombstone(want[10], "carol", recallTime(4))
	recall(t, rs, recallConv, 11, "carol", recallTime(4), want[10])
	reopen()
	checkAllReads(t, s, recallConv, want)
}
