// Package storetest checks an im.Store implementation against the rules
// written in the im package's Store documentation, the way testing/fstest
// checks an fs.FS. A store's own test is a few lines:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, storetest.Harness{
//			Open: func(t *testing.T) im.Store {
//				s, err := mystore.Open(t.TempDir())
//				if err != nil {
//					t.Fatal(err)
//				}
//				t.Cleanup(func() { s.Close() })
//				return s
//			},
//		})
//	}
//
// Run reports every broken rule as a failure of a named subtest
// (ConcurrentAppend, Dedup/Concurrent, MessagesBefore, Durability,
// Groups/Change/MemberOf, Sync/Conversations, Recall/Dedup,
// Accounts/CreateAndRead, …),
// so one rule can be rerun with go test -run. RunBenchmarks measures the
// operations the server's hot paths use.
//
// # What the suite assumes beyond the interface docs
//
//   - Message.CreatedAt, Message.RevokedAt, Account.CreatedAt,
//     Group.CreatedAt, Group.UpdatedAt and GroupMember.JoinedAt keep at
//     least microsecond precision; the suite only writes times truncated
//     to the microsecond and compares them with time.Time.Equal, so the
//     location may change.
//   - A nil and an empty Message.Content are the same.
//   - SenderID, ClientMsgID, member ids, Account.UserID and
//     Account.Username are refused with ErrInvalidArgument unless
//     im.ValidateID accepts them. ConversationID is refused unless it is 1
//     to im.MaxConversationIDLen bytes of printable UTF-8 (the id of a
//     one-to-one conversation between two users with the longest ids must
//     fit). ServerID is refused when empty.
//   - A GroupChange whose Remove holds an id that im.ValidateID does not
//     accept is refused with ErrInvalidArgument, removing nobody. A change
//     whose group id is invalid may give ErrNotFound instead of
//     ErrInvalidArgument, as no group can have that id.
//   - A group may have no members: CreateGroup takes an empty list, and a
//     group whose owner is not a member may be emptied, with MemberCount
//     0. ChangeGroup gives ErrNotFound for a missing group even when the
//     change is empty.
//   - Groups/Change/MaxMembersConcurrent runs 40 unconditional joins at
//     once per group: a store must check the limit in the transaction that
//     writes, not rely on the version check.
//
// # Crash safety
//
// RunCrash checks what the conformance suite cannot: that a store keeps
// what it acknowledged when its process dies at any moment. It re-executes
// the test binary as a child process that loads the store, kills it with
// SIGKILL, over and over, and checks the store after each kill: every
// acknowledged message present at its seq, seqs without gaps, nothing left
// by a failed append, dedup intact, and the store's own Check, if it has
// one. The test that calls it looks like any other:
//
//	func TestCrash(t *testing.T) {
//		storetest.RunCrash(t, storetest.CrashHarness{
//			Open: func(t *testing.T, dir string) storetest.CrashStore {
//				s, err := mystore.Open(dir)
//				if err != nil {
//					t.Fatal(err)
//				}
//				t.Cleanup(func() { s.Close() })
//				return s
//			},
//		})
//	}
//
// The child runs the same test function, so RunCrash must come first in
// it (a TestMain that starts servers or checks for leaked goroutines runs
// in the child too, which is harmless: the child never gets to its end).
// A store can arm failpoints in CrashHarness.OpenChild, to kill the child
// at chosen points of a commit or make writes fail; store/bolt does. A
// default run takes about 25 s; CrashDurationEnv and CrashCyclesEnv make
// it run longer:
//
//	STORETEST_CRASH_DURATION=10m go test -run Crash ./mystore
//
// A kill leaves the operating system's page cache in place, so this
// proves safety against a process crash, not against a power failure.
//
// # Concurrency
//
// Run opens a fresh store for each test case and runs the cases one at a
// time; it never calls t.Parallel. Within a case, the store under test is
// called from many goroutines at once.
//
// # Optional parts
//
// A Store that implements auth.AccountStore is checked against its rules
// too, in the Accounts subtest, with auth.AccountUpdater in Accounts/Update
// and auth.TokenVersions in Accounts/TokenVersions when it has them; a
// store of accounts alone runs RunAccounts, one of token versions alone
// RunTokenVersions.
// A Store that implements im.SyncStore is checked in the Sync subtest:
// its answers must equal what the required methods answer. One that
// implements im.RecallStore is checked in the Recall subtest: a recalled
// message reads as its tombstone through Messages, MessagesBefore,
// MessageRanges, MessageByServerID and the dedup of a resend, before and
// after Reopen, and RevokedAt keeps microseconds like CreatedAt. One that
// implements im.ReadStateStore is checked in the ReadState subtest, and
// one that implements im.ConversationSettingsStore in the Settings
// subtest, which assumes UpdatedAt keeps microseconds, as above. One that
// implements im.FriendStore is checked in the Friends subtest (request
// outcomes, two requests that meet, blocks, ordering, invalid input, a
// race of mutual requests, durability), which assumes the times of
// friendships, requests and blocks keep microseconds too.
//
// # File stores
//
// RunFiles checks a files.Store (store/localfiles, memstore.Files) the
// same way, from a FilesHarness: content read back whole and by ranges,
// the size limit to the byte, nothing left by a refused or failed Create
// (too large, a failing reader, a cancelled ctx), ErrConflict, invalid
// ids refused by every method, Update's fields and atomicity, Delete,
// List and durability across Reopen, and a 64 MiB file streamed in and
// checked by hash.
//
// # Dependencies
//
// The package imports only im, im/auth, im/files and the standard
// library, so a third-party store inherits little by running it.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
)

// Harness opens stores for the suite.
type Harness struct {
	// Open returns a fresh, empty store. It arranges the store's release
	// itself (typically with t.Cleanup). Required.
	Open func(t *testing.T) im.Store
	// Reopen, if set, closes s and opens the same data again, to check that
	// everything survives (persistent stores). The store it returns is
	// released by the harness too. Without it the Durability subtest is
	// skipped.
	Reopen func(t *testing.T, s im.Store) im.Store
}

// Run checks the store that h opens against every rule of im.Store, each
// in its own subtest.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Open == nil {
		t.Fatal("storetest: Harness.Open is nil")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"EmptyBatch", testEmptyBatch},
		{"AppendAssignsSeq", testAppendAssignsSeq},
		{"RoundTrip", testRoundTrip},
		{"ConcurrentAppend", testConcurrentAppend},
		{"Dedup", testDedup},
		{"Members", testMembers},
		{"Conversation", testConversation},
		{"Messages", testMessages},
		{"MessagesBefore", testMessagesBefore},
		{"InvalidMessages", testInvalidMessages},
		{"Groups", testGroups},
		{"Cancelled", testCancelled},
		{"Durability", testDurability},
		{"Accounts", testStoreAccounts},
		{"Sync", testSync},
		{"ReadState", testReadState},
		{"Recall", testRecall},
		{"Settings", testSettings},
		{"Friends", testFriends},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, h) })
	}
}

// baseTime is the CreatedAt of the suite's messages: microsecond precision,
// with a sub-millisecond part so that a store keeping only milliseconds is
// caught.
func baseTime() time.Time { return time.Date(2025, 3, 14, 15, 9, 26, 535_897_000, time.UTC) }

// open returns a fresh store from h, failing t if the harness returns nil.
func open(t *testing.T, h Harness) im.Store {
	t.Helper()
	s := h.Open(t)
	if s == nil {
		t.Fatal("storetest: Harness.Open returned nil")
	}
	return s
}

// newMessage returns a message with every field a server sets filled in,
// distinct per (conv, sender, cmid).
func newMessage(conv, sender, cmid string) im.Message {
	return im.Message{
		ConversationID: conv,
		ServerID:       "srv:" + conv + ":" + sender + ":" + cmid,
		SenderID:       sender,
		ReceiverID:     "peer",
		ClientMsgID:    cmid,
		Type:           im.TextMessage,
		Content:        []byte("text " + cmid),
		Extra:          `{"k":"` + cmid + `"}`,
		AttachedInfo:   "info",
		SendTime:       1_741_964_966_535,
		CreatedAt:      baseTime(),
	}
}

// req wraps messages into append requests without members.
func req(ms ...im.Message) []im.AppendRequest {
	out := make([]im.AppendRequest, len(ms))
	for i, m := range ms {
		out[i] = im.AppendRequest{Message: m}
	}
	return out
}

// withSeq returns m as the store should hand it back after assigning seq.
func withSeq(m im.Message, seq int64) im.Message {
	m.Seq = seq
	return m
}

// appendOK appends batch, failing t on a call error or a result-count
// mismatch; per-request errors are left to the caller.
func appendOK(t *testing.T, s im.Store, batch []im.AppendRequest) []im.AppendResult {
	t.Helper()
	res, err := s.AppendMessages(t.Context(), batch)
	if err != nil {
		t.Fatalf("AppendMessages: %v", err)
	}
	if len(res) != len(batch) {
		t.Fatalf("AppendMessages returned %d results for %d requests", len(res), len(batch))
	}
	return res
}

// appendNew appends batch and requires every request to be stored as new.
func appendNew(t *testing.T, s im.Store, batch []im.AppendRequest) []im.AppendResult {
	t.Helper()
	res := appendOK(t, s, batch)
	for i, r := range res {
		if r.Err != nil || r.Duplicate {
			t.Fatalf("AppendMessages result %d: Err=%v Duplicate=%v, want a newly stored message", i, r.Err, r.Duplicate)
		}
	}
	return res
}

// messages reads conv's messages in [from, to], failing t on error.
func messages(t *testing.T, s im.Store, conv string, from, to int64, limit int) []im.Message {
	t.Helper()
	ms, err := s.Messages(t.Context(), conv, from, to, limit)
	if err != nil {
		t.Fatalf("Messages(%q, %d, %d, %d): %v", conv, from, to, limit, err)
	}
	return ms
}

// allMessages reads every message of conv.
func allMessages(t *testing.T, s im.Store, conv string) []im.Message {
	t.Helper()
	return messages(t, s, conv, 1, 0, 100_000)
}

// messageDiff describes how got differs from want, or returns "".
func messageDiff(got, want im.Message) string {
	var d []string
	field := func(name string, g, w any) {
		d = append(d, fmt.Sprintf("%s = %#v, want %#v", name, g, w))
	}
	if got.ConversationID != want.ConversationID {
		field("ConversationID", got.ConversationID, want.ConversationID)
	}
	if got.Seq != want.Seq {
		field("Seq", got.Seq, want.Seq)
	}
	if got.ServerID != want.ServerID {
		field("ServerID", got.ServerID, want.ServerID)
	}
	if got.SenderID != want.SenderID {
		field("SenderID", got.SenderID, want.SenderID)
	}
	if got.ReceiverID != want.ReceiverID {
		field("ReceiverID", got.ReceiverID, want.ReceiverID)
	}
	if got.ClientMsgID != want.ClientMsgID {
		field("ClientMsgID", got.ClientMsgID, want.ClientMsgID)
	}
	if got.Type != want.Type {
		field("Type", got.Type, want.Type)
	}
	if !bytes.Equal(got.Content, want.Content) {
		field("Content", got.Content, want.Content)
	}
	if got.Extra != want.Extra {
		field("Extra", got.Extra, want.Extra)
	}
	if got.AttachedInfo != want.AttachedInfo {
		field("AttachedInfo", got.AttachedInfo, want.AttachedInfo)
	}
	if got.SendTime != want.SendTime {
		field("SendTime", got.SendTime, want.SendTime)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		d = append(d, fmt.Sprintf("CreatedAt = %v, want %v", got.CreatedAt, want.CreatedAt))
	}
	if got.RevokedBy != want.RevokedBy {
		field("RevokedBy", got.RevokedBy, want.RevokedBy)
	}
	if !got.RevokedAt.Equal(want.RevokedAt) {
		d = append(d, fmt.Sprintf("RevokedAt = %v, want %v", got.RevokedAt, want.RevokedAt))
	}
	return strings.Join(d, "; ")
}

// checkMessage reports a difference between got and want as an error.
func checkMessage(t *testing.T, what string, got, want im.Message) {
	t.Helper()
	if d := messageDiff(got, want); d != "" {
		t.Errorf("%s: %s", what, d)
	}
}

// checkMessages compares two lists of messages element by element.
func checkMessages(t *testing.T, what string, got, want []im.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d messages (seqs %v), want %d (seqs %v)", what, len(got), seqs(got), len(want), seqs(want))
		return
	}
	for i := range got {
		checkMessage(t, fmt.Sprintf("%s[%d]", what, i), got[i], want[i])
	}
}

// checkSeqs requires ms to be exactly the messages with the given seqs.
func checkSeqs(t *testing.T, what string, ms []im.Message, want ...int64) {
	t.Helper()
	if got := seqs(ms); !slices.Equal(got, want) {
		t.Errorf("%s: seqs %v, want %v", what, got, want)
	}
}

func seqs(ms []im.Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

// seqRange returns lo, lo+1, …, hi.
func seqRange(lo, hi int64) []int64 {
	var out []int64
	for s := lo; s <= hi; s++ {
		out = append(out, s)
	}
	return out
}

// checkMaxSeq requires conversation conv to exist with MaxSeq want.
func checkMaxSeq(t *testing.T, s im.Store, conv string, want int64) {
	t.Helper()
	c, err := s.Conversation(t.Context(), conv)
	if err != nil {
		t.Errorf("Conversation(%q): %v", conv, err)
		return
	}
	if c.ID != conv || c.MaxSeq != want {
		t.Errorf("Conversation(%q) = %+v, want ID %q MaxSeq %d", conv, c, conv, want)
	}
}

// checkNoConversation requires conv never to have been written to.
func checkNoConversation(t *testing.T, s im.Store, conv string) {
	t.Helper()
	if c, err := s.Conversation(t.Context(), conv); !errors.Is(err, im.ErrNotFound) {
		t.Errorf("Conversation(%q) = %+v, %v; want ErrNotFound", conv, c, err)
	}
	if ms, err := s.Messages(t.Context(), conv, 1, 0, 100); err != nil || len(ms) != 0 {
		t.Errorf("Messages(%q) = %d messages, %v; want none", conv, len(ms), err)
	}
}

// userConversations returns userID's conversations as id → MaxSeq.
func userConversations(t *testing.T, s im.Store, userID string) map[string]int64 {
	t.Helper()
	cs, err := s.UserConversations(t.Context(), userID)
	if err != nil {
		t.Fatalf("UserConversations(%q): %v", userID, err)
	}
	out := make(map[string]int64, len(cs))
	for _, c := range cs {
		if _, dup := out[c.ID]; dup {
			t.Errorf("UserConversations(%q) lists %q twice", userID, c.ID)
		}
		out[c.ID] = c.MaxSeq
	}
	return out
}

// checkUserConversations requires userID's conversations to be exactly want.
func checkUserConversations(t *testing.T, s im.Store, userID string, want map[string]int64) {
	t.Helper()
	got := userConversations(t, s, userID)
	if len(got) != len(want) {
		t.Errorf("UserConversations(%q) = %v, want %v", userID, got, want)
		return
	}
	for id, seq := range want {
		if g, ok := got[id]; !ok || g != seq {
			t.Errorf("UserConversations(%q) = %v, want %v", userID, got, want)
			return
		}
	}
}

// cancelled returns a context that is already cancelled.
func cancelled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}
