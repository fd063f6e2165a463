package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/imserver/imserver/im"
)

// testCancelled: a cancelled ctx makes every method of im.Store fail with an error
// wrapping context.Canceled, and a write store nothing.
func testCancelled(t *testing.T, h Harness) {
	s := open(t, h)
	appendNew(t, s, []im.AppendRequest{{Message: newMessage("group_x", "alice", "c1"), Members: []string{"alice"}}})

	ctx := cancelled(t)
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled ctx: %v, want context.Canceled", what, err)
		}
	}
	_, err := s.AppendMessages(ctx, []im.AppendRequest{
		{Message: newMessage("group_x", "alice", "c2")},
		{Message: newMessage("group_y", "bob", "c3"), Members: []string{"bob"}},
	})
	check("AppendMessages", err)
	_, err = s.Messages(ctx, "group_x", 1, 0, 10)
	check("Messages", err)
	_, err = s.MessagesBefore(ctx, "group_x", 0, 10)
	check("MessagesBefore", err)
	_, err = s.Conversation(ctx, "group_x")
	check("Conversation", err)
	_, err = s.UserConversations(ctx, "alice")
	check("UserConversations", err)

	// Nothing was written.
	checkSeqs(t, "group_x", allMessages(t, s, "group_x"), 1)
	checkMaxSeq(t, s, "group_x", 1)
	checkNoConversation(t, s, "group_y")
	checkUserConversations(t, s, "bob", map[string]int64{})
	// Nor was a dedup entry: the same messages go through afterwards.
	res := appendNew(t, s, req(newMessage("group_x", "alice", "c2"), newMessage("group_y", "bob", "c3")))
	if res[0].Message.Seq != 2 || res[1].Message.Seq != 1 {
		t.Errorf("after the cancelled append, seqs %d and %d, want 2 and 1", res[0].Message.Seq, res[1].Message.Seq)
	}
}

// testDurability: everything survives closing and reopening the store.
func testDurability(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("storetest: Harness.Reopen is not set")
	}
	s := open(t, h)
	var want []im.Message
	for i := range 3 {
		batch := []im.AppendRequest{
			{Message: newMessage("group_p", "alice", fmt.Sprintf("a%d", i)), Members: []string{"alice", "bob"}},
			{Message: newMessage("single_alice_bob", "bob", fmt.Sprintf("b%d", i)), Members: []string{"alice", "bob"}},
		}
		for j, r := range appendNew(t, s, batch) {
			if j == 0 {
				want = append(want, r.Message)
			}
		}
	}

	s = h.Reopen(t, s)
	if s == nil {
		t.Fatal("storetest: Harness.Reopen returned nil")
	}

	checkMessages(t, "group_p after reopen", allMessages(t, s, "group_p"), want)
	checkMaxSeq(t, s, "group_p", 3)
	checkMaxSeq(t, s, "single_alice_bob", 3)
	checkUserConversations(t, s, "bob", map[string]int64{"group_p": 3, "single_alice_bob": 3})

	// The dedup index survived, and seqs continue.
	retry := newMessage("group_p", "alice", "a1")
	retry.ServerID = "srv:retry"
	next := newMessage("group_p", "alice", "a3")
	res := appendOK(t, s, req(retry, next))
	if !res[0].Duplicate {
		t.Errorf("retry after reopen: Duplicate=%v Err=%v, want a duplicate", res[0].Duplicate, res[0].Err)
	}
	checkMessage(t, "retry after reopen", res[0].Message, want[1])
	if res[1].Err != nil || res[1].Duplicate {
		t.Fatalf("next after reopen: Err=%v Duplicate=%v", res[1].Err, res[1].Duplicate)
	}
	checkMessage(t, "next after reopen", res[1].Message, withSeq(next, 4))

	// And once more, to see the writes made after the first reopen.
	s = h.Reopen(t, s)
	if s == nil {
		t.Fatal("storetest: Harness.Reopen returned nil")
	}
	checkMessages(t, "group_p after second reopen", allMessages(t, s, "group_p"), append(want, withSeq(next, 4)))
}
