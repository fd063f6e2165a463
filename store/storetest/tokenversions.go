package storetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth/account"
)

// TokenVersionsHarness opens stores of token versions for RunTokenVersions.
type TokenVersionsHarness struct {
	// Open returns a fresh, empty store. It arranges the store's release
	// itself. Required.
	Open func(t *testing.T) account.TokenVersions
	// Reopen, if set, closes s and opens the same data again; without it
	// the Durability subtest is skipped.
	Reopen func(t *testing.T, s account.TokenVersions) account.TokenVersions
}

func (h TokenVersionsHarness) open(t *testing.T) account.TokenVersions {
	t.Helper()
	s := h.Open(t)
	if s == nil {
		t.Fatal("storetest: TokenVersionsHarness.Open returned nil")
	}
	return s
}

// RunTokenVersions checks the account.TokenVersions that h opens, each rule in
// its own subtest: Unknown, Bump, Concurrent, Invalid, Cancelled and
// Durability; and RevokedTokens (RunRevokedTokens) when the store also
// implements account.RevokedTokens. RunAccounts calls it for an account store that implements
// account.TokenVersions; a store of token versions alone runs it on its own.
func RunTokenVersions(t *testing.T, h TokenVersionsHarness) {
	t.Helper()
	if h.Open == nil {
		t.Fatal("storetest: TokenVersionsHarness.Open is nil")
	}
	t.Run("Unknown", func(t *testing.T) {
		s := h.open(t)
		checkVersion(t, s, "never", 0)
	})
	t.Run("Bump", func(t *testing.T) { testBump(t, h) })
	t.Run("Concurrent", func(t *testing.T) { testBumpConcurrent(t, h) })
	t.Run("Invalid", func(t *testing.T) { testBumpInvalid(t, h) })
	t.Run("Cancelled", func(t *testing.T) { testBumpCancelled(t, h) })
	t.Run("Durability", func(t *testing.T) { testBumpDurability(t, h) })
	t.Run("RevokedTokens", func(t *testing.T) { testStoreRevokedTokens(t, h) })
}

func checkVersion(t *testing.T, s account.TokenVersions, userID string, want int64) {
	t.Helper()
	got, err := s.TokenVersion(t.Context(), userID)
	if err != nil {
		t.Errorf("TokenVersion(%q): %v", userID, err)
	} else if got != want {
		t.Errorf("TokenVersion(%q) = %d, want %d", userID, got, want)
	}
}

func bump(t *testing.T, s account.TokenVersions, userID string, want int64) {
	t.Helper()
	got, err := s.BumpTokenVersion(t.Context(), userID)
	if err != nil {
		t.Fatalf("BumpTokenVersion(%q): %v", userID, err)
	}
	if got != want {
		t.Errorf("BumpTokenVersion(%q) = %d, want %d", userID, got, want)
	}
}

// testBump: each bump adds one and returns the new version; versions are
// per user, with ids compared exactly.
func testBump(t *testing.T, h TokenVersionsHarness) {
	s := h.open(t)
	for want := int64(1); want <= 3; want++ {
		bump(t, s, "u1", want)
		checkVersion(t, s, "u1", want)
	}
	bump(t, s, "u10", 1)
	checkVersion(t, s, "u1", 3)
	for _, other := range []string{"u", "U1", "u10", "u100", "u1 "} {
		want := int64(0)
		if other == "u10" {
			want = 1
		}
		checkVersion(t, s, other, want)
	}
	long := strings.Repeat("v", im.MaxIDLength)
	bump(t, s, long, 1)
	checkVersion(t, s, long, 1)
}

// testBumpConcurrent: concurrent bumps of one user, its first one
// included, each raise the version by one and return different versions;
// none is lost.
func testBumpConcurrent(t *testing.T, h TokenVersionsHarness) {
	s := h.open(t)
	const n = 24
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		got  []int64
		errs []error
	)
	for range n {
		wg.Go(func() {
			v, err := s.BumpTokenVersion(t.Context(), "alice")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			got = append(got, v)
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d concurrent bumps failed, first: %v", len(errs), n, errs[0])
	}
	slices.Sort(got)
	for i, v := range got {
		if v != int64(i+1) {
			t.Fatalf("concurrent bumps returned %v, want 1 to %d once each", got, n)
		}
	}
	checkVersion(t, s, "alice", n)
}

// testBumpInvalid: an id im.ValidateID refuses gives ErrInvalidArgument
// from both methods, and the bump writes nothing.
func testBumpInvalid(t *testing.T, h TokenVersionsHarness) {
	s := h.open(t)
	for _, id := range []string{"", strings.Repeat("x", im.MaxIDLength+1), "u\xff", "u\x00"} {
		if v, err := s.BumpTokenVersion(t.Context(), id); !isInvalid(err) {
			t.Errorf("BumpTokenVersion(%q) = %d, %v; want ErrInvalidArgument", id, v, err)
		}
		if v, err := s.TokenVersion(t.Context(), id); !isInvalid(err) {
			t.Errorf("TokenVersion(%q) = %d, %v; want ErrInvalidArgument", id, v, err)
		}
	}
	// "u" is a prefix of the refused ids; it was not bumped.
	checkVersion(t, s, "u", 0)
}

// testBumpCancelled: a cancelled ctx fails both methods with an error
// wrapping context.Canceled, and the bump writes nothing.
func testBumpCancelled(t *testing.T, h TokenVersionsHarness) {
	s := h.open(t)
	bump(t, s, "u1", 1)
	ctx := cancelled(t)
	if _, err := s.BumpTokenVersion(ctx, "u1"); !errors.Is(err, context.Canceled) {
		t.Errorf("BumpTokenVersion with a cancelled ctx: %v, want context.Canceled", err)
	}
	if _, err := s.TokenVersion(ctx, "u1"); !errors.Is(err, context.Canceled) {
		t.Errorf("TokenVersion with a cancelled ctx: %v, want context.Canceled", err)
	}
	checkVersion(t, s, "u1", 1)
}

// testBumpDurability: versions survive closing and reopening the store.
func testBumpDurability(t *testing.T, h TokenVersionsHarness) {
	if h.Reopen == nil {
		t.Skip("storetest: the harness cannot reopen a store")
	}
	s := h.open(t)
	bump(t, s, "u1", 1)
	bump(t, s, "u1", 2)
	bump(t, s, "u2", 1)
	s = h.Reopen(t, s)
	if s == nil {
		t.Fatal("storetest: Reopen returned nil")
	}
	checkVersion(t, s, "u1", 2)
	checkVersion(t, s, "u2", 1)
	bump(t, s, "u1", 3)
}

// testUpdateAccount checks account.AccountUpdater; RunAccounts runs it when
// the store has it.
func testUpdateAccount(t *testing.T, h AccountsHarness) {
	if _, ok := h.open(t).(account.AccountUpdater); !ok {
		t.Skip("storetest: the store does not implement account.AccountUpdater")
	}
	setup := func(t *testing.T) (account.AccountUpdater, account.AccountStore, account.Account, account.Account) {
		s := h.open(t)
		alice, bob := newAccount("u1", "alice"), newAccount("u2", "bob")
		for _, a := range []account.Account{alice, bob} {
			if err := s.CreateAccount(t.Context(), a); err != nil {
				t.Fatalf("CreateAccount(%s): %v", a.Username, err)
			}
		}
		return s.(account.AccountUpdater), s, alice, bob
	}
	update := func(t *testing.T, u account.AccountUpdater, s account.AccountStore, userID string, upd account.AccountUpdate, want account.Account) {
		t.Helper()
		got, err := u.UpdateAccount(t.Context(), userID, upd)
		if err != nil {
			t.Fatalf("UpdateAccount(%q): %v", userID, err)
		}
		if d := accountDiff(got, want); d != "" {
			t.Errorf("UpdateAccount(%q) returned: %s", userID, d)
		}
		checkAccount(t, s, want)
	}
	yes, no := true, false
	t.Run("Fields", func(t *testing.T) {
		u, s, alice, bob := setup(t)
		alice.Disabled = true
		update(t, u, s, "u1", account.AccountUpdate{Disabled: &yes}, alice)
		nick := "Alice ✓✓"
		alice.Nickname = nick
		update(t, u, s, "u1", account.AccountUpdate{Nickname: &nick}, alice)
		alice.PasswordHash = []byte("$2a$10$" + strings.Repeat("n", 53))
		update(t, u, s, "u1", account.AccountUpdate{PasswordHash: alice.PasswordHash}, alice)
		alice.Disabled = false
		update(t, u, s, "u1", account.AccountUpdate{Disabled: &no}, alice)
		update(t, u, s, "u1", account.AccountUpdate{}, alice)
		empty := ""
		alice.Nickname, alice.Disabled = "", true
		update(t, u, s, "u1", account.AccountUpdate{Nickname: &empty, Disabled: &yes}, alice)
		checkAccount(t, s, bob)
	})
	t.Run("ProfileFields", func(t *testing.T) {
		u, s, alice, bob := setup(t)
		avatar, sig, gender, birth := "https://example.com/a.png", "Hi ✓", im.GenderFemale, int64(19900101)
		at := baseTime().Add(time.Hour)
		alice.Avatar, alice.Signature, alice.Gender, alice.Birth, alice.UpdatedAt = avatar, sig, gender, birth, at
		update(t, u, s, "u1", account.AccountUpdate{Avatar: &avatar, Signature: &sig, Gender: &gender, Birth: &birth, UpdatedAt: at}, alice)
		// Fields left nil, and a zero UpdatedAt, stay as they are.
		nick := "Alice again"
		alice.Nickname = nick
		update(t, u, s, "u1", account.AccountUpdate{Nickname: &nick}, alice)
		empty, unknown, zero := "", im.GenderUnknown, int64(0)
		alice.Avatar, alice.Signature, alice.Gender, alice.Birth = "", "", im.GenderUnknown, 0
		update(t, u, s, "u1", account.AccountUpdate{Avatar: &empty, Signature: &empty, Gender: &unknown, Birth: &zero}, alice)
		alice.Deleted, alice.Disabled = true, true
		update(t, u, s, "u1", account.AccountUpdate{Deleted: &yes, Disabled: &yes}, alice)
		alice.Deleted = false
		update(t, u, s, "u1", account.AccountUpdate{Deleted: &no}, alice)
		checkAccount(t, s, bob)
	})
	t.Run("InvalidProfile", func(t *testing.T) {
		u, s, alice, _ := setup(t)
		ctl, longSig, longAvatar := "a\x07b", strings.Repeat("s", im.MaxSignatureLen+1), "https://x/"+strings.Repeat("a", im.MaxAvatarLen)
		badGender, early, late := im.Gender(3), im.MinBirth-1, im.MaxBirth+1
		nick := "fine"
		for name, upd := range map[string]account.AccountUpdate{
			"ControlSignature": {Signature: &ctl, Nickname: &nick},
			"LongSignature":    {Signature: &longSig, Nickname: &nick},
			"ControlAvatar":    {Avatar: &ctl, Nickname: &nick},
			"LongAvatar":       {Avatar: &longAvatar, Nickname: &nick},
			"UnknownGender":    {Gender: &badGender, Nickname: &nick},
			"EarlyBirth":       {Birth: &early, Nickname: &nick},
			"LateBirth":        {Birth: &late, Nickname: &nick},
		} {
			if _, err := u.UpdateAccount(t.Context(), "u1", upd); !isInvalid(err) {
				t.Errorf("%s: UpdateAccount: %v, want ErrInvalidArgument", name, err)
			}
		}
		checkAccount(t, s, alice)
	})
	t.Run("NotFound", func(t *testing.T) {
		u, s, alice, _ := setup(t)
		for _, id := range []string{"u9", "u", "alice", ""} {
			if a, err := u.UpdateAccount(t.Context(), id, account.AccountUpdate{Disabled: &yes}); !errors.Is(err, im.ErrNotFound) && !isInvalid(err) {
				t.Errorf("UpdateAccount(%q) = %+v, %v; want ErrNotFound", id, a, err)
			}
		}
		checkNoAccount(t, s, "u9", "")
		checkAccount(t, s, alice)
	})
	t.Run("Invalid", func(t *testing.T) {
		u, s, alice, _ := setup(t)
		bidi := "evil\u202e"
		for name, upd := range map[string]account.AccountUpdate{
			"BidiNickname": {Nickname: &bidi, Disabled: &yes},
			"EmptyHash":    {PasswordHash: []byte{}, Disabled: &yes},
		} {
			if _, err := u.UpdateAccount(t.Context(), "u1", upd); !isInvalid(err) {
				t.Errorf("%s: UpdateAccount: %v, want ErrInvalidArgument", name, err)
			}
		}
		checkAccount(t, s, alice)
	})
	t.Run("Cancelled", func(t *testing.T) {
		u, s, alice, _ := setup(t)
		if _, err := u.UpdateAccount(cancelled(t), "u1", account.AccountUpdate{Disabled: &yes}); !errors.Is(err, context.Canceled) {
			t.Errorf("UpdateAccount with a cancelled ctx: %v, want context.Canceled", err)
		}
		checkAccount(t, s, alice)
	})
	t.Run("Durability", func(t *testing.T) {
		if h.Reopen == nil {
			t.Skip("storetest: the harness cannot reopen a store")
		}
		u, s, alice, _ := setup(t)
		alice.Disabled = true
		update(t, u, s, "u1", account.AccountUpdate{Disabled: &yes}, alice)
		avatar, gender, birth := "https://example.com/b.png", im.GenderMale, int64(-86400000)
		alice.Avatar, alice.Gender, alice.Birth, alice.UpdatedAt, alice.Deleted = avatar, gender, birth, baseTime().Add(time.Minute), true
		update(t, u, s, "u1", account.AccountUpdate{Avatar: &avatar, Gender: &gender, Birth: &birth, UpdatedAt: alice.UpdatedAt, Deleted: &yes}, alice)
		s = h.Reopen(t, s)
		checkAccount(t, s, alice)
	})
}

// testStoreTokenVersions runs RunTokenVersions on the account stores h
// opens when they implement account.TokenVersions.
func testStoreTokenVersions(t *testing.T, h AccountsHarness) {
	if _, ok := h.open(t).(account.TokenVersions); !ok {
		t.Skip("storetest: the store does not implement account.TokenVersions")
	}
	th := TokenVersionsHarness{
		Open: func(t *testing.T) account.TokenVersions {
			s, ok := h.open(t).(account.TokenVersions)
			if !ok {
				t.Fatal("storetest: AccountsHarness.Open returned stores of different types")
			}
			return s
		},
	}
	if h.Reopen != nil {
		th.Reopen = func(t *testing.T, s account.TokenVersions) account.TokenVersions {
			as, ok := s.(account.AccountStore)
			if !ok {
				t.Fatal("storetest: the token version store is no longer an account.AccountStore")
			}
			r, ok := h.Reopen(t, as).(account.TokenVersions)
			if !ok {
				t.Fatal("storetest: Reopen returned a store without account.TokenVersions")
			}
			return r
		}
	}
	RunTokenVersions(t, th)
}
