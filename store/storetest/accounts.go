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
	"github.com/imserver/imserver/im/auth/account"
)

func isInvalid(err error) bool { return errors.Is(err, im.ErrInvalidArgument) }

func newAccount(id, username string) account.Account {
	return account.Account{
		UserID:       id,
		Username:     username,
		Nickname:     "Nick " + username + " ✓",
		PasswordHash: []byte("$2a$10$" + strings.Repeat("h", 53)),
		CreatedAt:    baseTime(),
	}
}

func accountDiff(got, want account.Account) string {
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
	if got.Avatar != want.Avatar {
		d = append(d, fmt.Sprintf("Avatar = %q, want %q", got.Avatar, want.Avatar))
	}
	if got.Signature != want.Signature {
		d = append(d, fmt.Sprintf("Signature = %q, want %q", got.Signature, want.Signature))
	}
	if got.Gender != want.Gender {
		d = append(d, fmt.Sprintf("Gender = %d, want %d", got.Gender, want.Gender))
	}
	if got.Birth != want.Birth {
		d = append(d, fmt.Sprintf("Birth = %d, want %d", got.Birth, want.Birth))
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		d = append(d, fmt.Sprintf("UpdatedAt = %v, want %v", got.UpdatedAt, want.UpdatedAt))
	}
	if got.Deleted != want.Deleted {
		d = append(d, fmt.Sprintf("Deleted = %v, want %v", got.Deleted, want.Deleted))
	}
	return strings.Join(d, "; ")
}

// checkAccount requires want to be readable both by id and by username.
func checkAccount(t *testing.T, s account.AccountStore, want account.Account) {
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
func checkNoAccount(t *testing.T, s account.AccountStore, userID, username string) {
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

func testAccounts(t *testing.T, h AccountsHarness) {
	s := h.open(t)
	ctx := t.Context()
	checkNoAccount(t, s, "u1", "alice")

	alice := newAccount("u1", "alice")
	alice.CreatedAt = time.Date(2024, 2, 29, 12, 0, 0, 123_456_000, time.FixedZone("CET", 3600))
	if err := s.CreateAccount(ctx, alice); err != nil {
		t.Fatalf("CreateAccount(alice): %v", err)
	}
	checkAccount(t, s, alice)

	// Optional fields empty, Disabled set.
	bare := account.Account{UserID: "u2", Username: "bare", Disabled: true, CreatedAt: baseTime()}
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

func testInvalidAccounts(t *testing.T, h AccountsHarness) {
	long := strings.Repeat("x", im.MaxIDLength+1)
	tests := []struct {
		name   string
		modify func(a *account.Account)
	}{
		{"EmptyUserID", func(a *account.Account) { a.UserID = "" }},
		{"LongUserID", func(a *account.Account) { a.UserID = long }},
		{"BadUTF8UserID", func(a *account.Account) { a.UserID = "u\xff" }},
		{"ControlUserID", func(a *account.Account) { a.UserID = "u\x00" }},
		{"EmptyUsername", func(a *account.Account) { a.Username = "" }},
		{"LongUsername", func(a *account.Account) { a.Username = long }},
		{"BadUTF8Username", func(a *account.Account) { a.Username = "\xfe" }},
		{"ControlUsername", func(a *account.Account) { a.Username = "al\tice" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := h.open(t)
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
		s := h.open(t)
		a := newAccount(strings.Repeat("i", im.MaxIDLength), strings.Repeat("ü", im.MaxIDLength/2))
		if err := s.CreateAccount(t.Context(), a); err != nil {
			t.Fatalf("CreateAccount: %v", err)
		}
		checkAccount(t, s, a)
	})
}

// AccountsHarness opens account stores for RunAccounts.
type AccountsHarness struct {
	// Open returns a fresh, empty store. It arranges the store's release
	// itself (typically with t.Cleanup). Required.
	Open func(t *testing.T) account.AccountStore
	// Reopen, if set, closes s and opens the same data again; without it
	// the Durability subtest is skipped.
	Reopen func(t *testing.T, s account.AccountStore) account.AccountStore
}

func (h AccountsHarness) open(t *testing.T) account.AccountStore {
	t.Helper()
	s := h.Open(t)
	if s == nil {
		t.Fatal("storetest: AccountsHarness.Open returned nil")
	}
	return s
}

// RunAccounts checks the account.AccountStore that h opens against every rule
// of its documentation, each in its own subtest: CreateAndRead,
// Invalid, Cancelled and Durability; and its optional parts when it has
// them: Update (account.AccountUpdater), Search (account.AccountSearcher),
// and TokenVersions (RunTokenVersions, with RunRevokedTokens).
// Run calls it for a Store that implements account.AccountStore; a store that
// keeps only accounts runs it on its own.
func RunAccounts(t *testing.T, h AccountsHarness) {
	t.Helper()
	if h.Open == nil {
		t.Fatal("storetest: AccountsHarness.Open is nil")
	}
	t.Run("CreateAndRead", func(t *testing.T) { testAccounts(t, h) })
	t.Run("Profile", func(t *testing.T) { testAccountProfile(t, h) })
	t.Run("Invalid", func(t *testing.T) { testInvalidAccounts(t, h) })
	t.Run("Cancelled", func(t *testing.T) { testAccountsCancelled(t, h) })
	t.Run("Durability", func(t *testing.T) { testAccountsDurability(t, h) })
	t.Run("Update", func(t *testing.T) { testUpdateAccount(t, h) })
	t.Run("Search", func(t *testing.T) { testAccountSearch(t, h) })
	t.Run("TokenVersions", func(t *testing.T) { testStoreTokenVersions(t, h) })
}

// testStoreAccounts runs RunAccounts on the stores h opens when they
// implement account.AccountStore, and skips otherwise: accounts are an optional
// part of a Store.
func testStoreAccounts(t *testing.T, h Harness) {
	if _, ok := open(t, h).(account.AccountStore); !ok {
		t.Skip("storetest: the store does not implement account.AccountStore")
	}
	ah := AccountsHarness{
		Open: func(t *testing.T) account.AccountStore {
			s, ok := open(t, h).(account.AccountStore)
			if !ok {
				t.Fatal("storetest: Harness.Open returned stores of different types")
			}
			return s
		},
	}
	if h.Reopen != nil {
		ah.Reopen = func(t *testing.T, s account.AccountStore) account.AccountStore {
			is, ok := s.(im.Store)
			if !ok {
				t.Fatal("storetest: the account store is no longer an im.Store")
			}
			r, ok := h.Reopen(t, is).(account.AccountStore)
			if !ok {
				t.Fatal("storetest: Harness.Reopen returned a store without account.AccountStore")
			}
			return r
		}
	}
	RunAccounts(t, ah)
}

// testAccountsCancelled: a cancelled ctx makes every method fail with an
// error wrapping context.Canceled, and CreateAccount store nothing.
func testAccountsCancelled(t *testing.T, h AccountsHarness) {
	s := h.open(t)
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
	check("CreateAccount", s.CreateAccount(ctx, newAccount("u2", "bob")))
	_, err := s.Account(ctx, "u1")
	check("Account", err)
	_, err = s.AccountByUsername(ctx, "alice")
	check("AccountByUsername", err)
	checkNoAccount(t, s, "u2", "bob")
	if err := s.CreateAccount(t.Context(), newAccount("u2", "bob")); err != nil {
		t.Errorf("CreateAccount after the cancelled one: %v", err)
	}
}

// testAccountsDurability: accounts survive closing and reopening the store.
func testAccountsDurability(t *testing.T, h AccountsHarness) {
	if h.Reopen == nil {
		t.Skip("storetest: the harness cannot reopen a store")
	}
	s := h.open(t)
	alice := newAccount("u1", "alice")
	if err := s.CreateAccount(t.Context(), alice); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	s = h.Reopen(t, s)
	if s == nil {
		t.Fatal("storetest: Reopen returned nil")
	}
	checkAccount(t, s, alice)
	if err := s.CreateAccount(t.Context(), newAccount("u1", "other")); !errors.Is(err, im.ErrConflict) {
		t.Errorf("CreateAccount with a taken UserID after reopen: %v, want ErrConflict", err)
	}
	if err := s.CreateAccount(t.Context(), newAccount("u2", "alice")); !errors.Is(err, im.ErrConflict) {
		t.Errorf("CreateAccount with a taken Username after reopen: %v, want ErrConflict", err)
	}
}
