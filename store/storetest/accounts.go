package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
)

func isInvalid(err error) bool { return errors.Is(err, im.ErrInvalidArgument) }

func newAccount(id, username string) im.Account {
	return im.Account{
		UserID:       id,
		Username:     username,
		Nickname:     "Nick " + username + " ✓",
		PasswordHash: []byte("$2a$10$" + strings.Repeat("h", 53)),
		CreatedAt:    baseTime(),
	}
}

func accountDiff(got, want im.Account) string {
	var d []string
	if got.UserID != want.UserID {
		d = append(d, fmt.Sprintf("UserID = %q, want %q", got.UserID, want.UserID))
	}
	if got.Username != want.Username {
		d = append(d, fmt.Sprintf("Username = %q, want %q", got.Username, want.Username))
	}
	if got.Nickname != want.Nickname {
		d = append(d, fmt.Sprintf("Nickname = %q, want %q", got.Nickname, want.Nickname))
	}
	if !bytes.Equal(got.PasswordHash, want.PasswordHash) {
		d = append(d, fmt.Sprintf("PasswordHash = %q, want %q", got.PasswordHash, want.PasswordHash))
	}
	if got.Disabled != want.Disabled {
		d = append(d, fmt.Sprintf("Disabled = %v, want %v", got.Disabled, want.Disabled))
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		d = append(d, fmt.Sprintf("CreatedAt = %v, want %v", got.CreatedAt, want.CreatedAt))
	}
	return strings.Join(d, "; ")
}

// checkAccount requires want to be readable both by id and by username.
func checkAccount(t *testing.T, s im.Store, want im.Account) {
	t.Helper()
	got, err := s.Account(t.Context(), want.UserID)
	if err != nil {
		t.Errorf("Account(%q): %v", want.UserID, err)
	} else if d := accountDiff(got, want); d != "" {
		t.Errorf("Account(%q): %s", want.UserID, d)
	}
	got, err = s.AccountByUsername(t.Context(), want.Username)
	if err != nil {
		t.Errorf("AccountByUsername(%q): %v", want.Username, err)
	} else if d := accountDiff(got, want); d != "" {
		t.Errorf("AccountByUsername(%q): %s", want.Username, d)
	}
}

// checkNoAccount requires neither the id nor the username to be stored;
// either may be "" to skip it.
func checkNoAccount(t *testing.T, s im.Store, userID, username string) {
	t.Helper()
	if userID != "" {
		if a, err := s.Account(t.Context(), userID); !errors.Is(err, im.ErrNotFound) {
			t.Errorf("Account(%q) = %+v, %v; want ErrNotFound", userID, a, err)
		}
	}
	if username != "" {
		if a, err := s.AccountByUsername(t.Context(), username); !errors.Is(err, im.ErrNotFound) {
			t.Errorf("AccountByUsername(%q) = %+v, %v; want ErrNotFound", username, a, err)
		}
	}
}

func testAccounts(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := t.Context()
	checkNoAccount(t, s, "u1", "alice")

	alice := newAccount("u1", "alice")
	alice.CreatedAt = time.Date(2024, 2, 29, 12, 0, 0, 123_456_000, time.FixedZone("CET", 3600))
	if err := s.CreateAccount(ctx, alice); err != nil {
		t.Fatalf("CreateAccount(alice): %v", err)
	}
	checkAccount(t, s, alice)

	// Optional fields empty, Disabled set.
	bare := im.Account{UserID: "u2", Username: "bare", Disabled: true, CreatedAt: baseTime()}
	if err := s.CreateAccount(ctx, bare); err != nil {
		t.Fatalf("CreateAccount(bare): %v", err)
	}
	checkAccount(t, s, bare)

	t.Run("UserIDTaken", func(t *testing.T) {
		err := s.CreateAccount(ctx, newAccount("u1", "alice2"))
		if !errors.Is(err, im.ErrConflict) {
			t.Errorf("CreateAccount with a taken UserID: %v, want ErrConflict", err)
		}
		checkNoAccount(t, s, "", "alice2")
		checkAccount(t, s, alice)
	})
	t.Run("UsernameTaken", func(t *testing.T) {
		err := s.CreateAccount(ctx, newAccount("u3", "alice"))
		if !errors.Is(err, im.ErrConflict) {
			t.Errorf("CreateAccount with a taken Username: %v, want ErrConflict", err)
		}
		checkNoAccount(t, s, "u3", "")
		checkAccount(t, s, alice)
	})
	t.Run("BothTaken", func(t *testing.T) {
		err := s.CreateAccount(ctx, newAccount("u1", "bare"))
		if !errors.Is(err, im.ErrConflict) {
			t.Errorf("CreateAccount with a taken UserID and Username: %v, want ErrConflict", err)
		}
		checkAccount(t, s, alice)
		checkAccount(t, s, bare)
	})
	t.Run("UsernameComparedExactly", func(t *testing.T) {
		upper := newAccount("u4", "Alice")
		if err := s.CreateAccount(ctx, upper); err != nil {
			t.Fatalf("CreateAccount(%q) next to %q: %v", upper.Username, alice.Username, err)
		}
		checkAccount(t, s, upper)
		checkAccount(t, s, alice)
		checkNoAccount(t, s, "U1", "ALICE")
	})
	t.Run("NotFound", func(t *testing.T) {
		checkNoAccount(t, s, "u9", "zoe")
		checkNoAccount(t, s, "u", "alic") // prefixes of stored keys
	})
}

func testInvalidAccounts(t *testing.T, h Harness) {
	long := strings.Repeat("x", im.MaxIDLength+1)
	tests := []struct {
		name   string
		modify func(a *im.Account)
	}{
		{"EmptyUserID", func(a *im.Account) { a.UserID = "" }},
		{"LongUserID", func(a *im.Account) { a.UserID = long }},
		{"BadUTF8UserID", func(a *im.Account) { a.UserID = "u\xff" }},
		{"ControlUserID", func(a *im.Account) { a.UserID = "u\x00" }},
		{"EmptyUsername", func(a *im.Account) { a.Username = "" }},
		{"LongUsername", func(a *im.Account) { a.Username = long }},
		{"BadUTF8Username", func(a *im.Account) { a.Username = "\xfe" }},
		{"ControlUsername", func(a *im.Account) { a.Username = "al\tice" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, h)
			a := newAccount("u1", "alice")
			tt.modify(&a)
			if err := s.CreateAccount(t.Context(), a); !isInvalid(err) {
				t.Errorf("CreateAccount: %v, want ErrInvalidArgument", err)
			}
			// Whichever field was valid was not written either.
			checkNoAccount(t, s, "u1", "alice")
			fixed := newAccount("u1", "alice")
			if err := s.CreateAccount(t.Context(), fixed); err != nil {
				t.Fatalf("CreateAccount after a refused one: %v", err)
			}
			checkAccount(t, s, fixed)
		})
	}
	t.Run("LongestValid", func(t *testing.T) {
		s := open(t, h)
		a := newAccount(strings.Repeat("i", im.MaxIDLength), strings.Repeat("ü", im.MaxIDLength/2))
		if err := s.CreateAccount(t.Context(), a); err != nil {
			t.Fatalf("CreateAccount: %v", err)
		}
		checkAccount(t, s, a)
	})
}

// testCancelled: a cancelled ctx makes every method fail with an error
// wrapping context.Canceled, and a write store nothing.
func testCancelled(t *testing.T, h Harness) {
	s := open(t, h)
	appendNew(t, s, []im.AppendRequest{{Message: newMessage("group_x", "alice", "c1"), Members: []string{"alice"}}})
	if err := s.CreateAccount(t.Context(), newAccount("u1", "alice")); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}

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
	check("CreateAccount", s.CreateAccount(ctx, newAccount("u2", "bob")))
	_, err = s.Account(ctx, "u1")
	check("Account", err)
	_, err = s.AccountByUsername(ctx, "alice")
	check("AccountByUsername", err)

	// Nothing was written.
	checkSeqs(t, "group_x", allMessages(t, s, "group_x"), 1)
	checkMaxSeq(t, s, "group_x", 1)
	checkNoConversation(t, s, "group_y")
	checkUserConversations(t, s, "bob", map[string]int64{})
	checkNoAccount(t, s, "u2", "bob")
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
	alice := newAccount("u1", "alice")
	if err := s.CreateAccount(t.Context(), alice); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}

	s = h.Reopen(t, s)
	if s == nil {
		t.Fatal("storetest: Harness.Reopen returned nil")
	}

	checkMessages(t, "group_p after reopen", allMessages(t, s, "group_p"), want)
	checkMaxSeq(t, s, "group_p", 3)
	checkMaxSeq(t, s, "single_alice_bob", 3)
	checkUserConversations(t, s, "bob", map[string]int64{"group_p": 3, "single_alice_bob": 3})
	checkAccount(t, s, alice)
	if err := s.CreateAccount(t.Context(), newAccount("u1", "other")); !errors.Is(err, im.ErrConflict) {
		t.Errorf("CreateAccount with a taken UserID after reopen: %v, want ErrConflict", err)
	}

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
