package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth/account"
)

// profiledAccount is an account with every profile field set.
func profiledAccount(id, username, nickname string) account.Account {
	a := newAccount(id, username)
	a.Nickname = nickname
	a.Avatar = "https://cdn.example.com/" + id + ".png?size=128&v=2"
	a.Signature = "Signature of " + username + " ✓"
	a.Gender = im.GenderFemale
	a.Birth = 19991231
	a.UpdatedAt = baseTime().Add(90 * time.Minute)
	return a
}

// testAccountProfile: the profile fields, Deleted included, round trip
// through CreateAccount, with times compared to the microsecond.
func testAccountProfile(t *testing.T, h AccountsHarness) {
	s := h.open(t)
	full := profiledAccount("u1", "alice", "Alice")
	full.UpdatedAt = time.Date(2025, 7, 1, 8, 30, 0, 123_456_000, time.FixedZone("X", -7*3600))
	full.Birth = im.MinBirth
	deleted := profiledAccount("u2", "gone", "")
	deleted.Deleted, deleted.Disabled, deleted.Gender, deleted.Birth = true, true, im.GenderMale, im.MaxBirth
	negative := profiledAccount("u3", "old", "Old")
	negative.Birth = -2208988800000 // 1900-01-01 in Unix milliseconds
	for _, a := range []account.Account{full, deleted, negative} {
		if err := s.CreateAccount(t.Context(), a); err != nil {
			t.Fatalf("CreateAccount(%s): %v", a.Username, err)
		}
		checkAccount(t, s, a)
	}
}

func searcherOf(t *testing.T, s account.AccountStore) account.AccountSearcher {
	t.Helper()
	se, ok := s.(account.AccountSearcher)
	if !ok {
		t.Fatal("storetest: the store lost account.AccountSearcher")
	}
	return se
}

// checkSearch requires SearchAccounts(prefix, limit) to return the
// accounts with the ids want, in that order.
func checkSearch(t *testing.T, se account.AccountSearcher, prefix string, limit int, want ...string) {
	t.Helper()
	got, err := se.SearchAccounts(t.Context(), prefix, limit)
	if err != nil {
		t.Errorf("SearchAccounts(%q, %d): %v", prefix, limit, err)
		return
	}
	ids := make([]string, len(got))
	for i, a := range got {
		ids[i] = a.UserID
	}
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("SearchAccounts(%q, %d) = %q, want %q", prefix, limit, ids, want)
	}
}

// searchSetup stores accounts whose nicknames differ in case and share
// prefixes, one of them deleted.
func searchSetup(t *testing.T, h AccountsHarness) (account.AccountStore, map[string]account.Account) {
	s := h.open(t)
	accs := map[string]account.Account{}
	for _, a := range []account.Account{
		profiledAccount("u1", "smith", "Alice Smith"),
		profiledAccount("u2", "alina", "alina"),
		profiledAccount("u3", "upper", "ALICE"),
		profiledAccount("u0", "lower", "alice"), // the same key as u3: ordered by id
		profiledAccount("u4", "bob", "Bob"),
		profiledAccount("u5", "aa", "Ålesund"),
		profiledAccount("u6", "alfred", "Alfred"),
	} {
		if err := s.CreateAccount(t.Context(), a); err != nil {
			t.Fatalf("CreateAccount(%s): %v", a.Username, err)
		}
		accs[a.UserID] = a
	}
	// u7 is created deleted; u6 is deleted by an update when the store
	// can.
	gone := profiledAccount("u7", "gone", "Alfa")
	gone.Deleted, gone.Disabled = true, true
	if err := s.CreateAccount(t.Context(), gone); err != nil {
		t.Fatalf("CreateAccount(gone): %v", err)
	}
	accs["u7"] = gone
	if u, ok := s.(account.AccountUpdater); ok {
		yes := true
		a, err := u.UpdateAccount(t.Context(), "u6", account.AccountUpdate{Deleted: &yes})
		if err != nil {
			t.Fatalf("UpdateAccount(u6, Deleted): %v", err)
		}
		accs["u6"] = a
	}
	return s, accs
}

// testAccountSearch checks account.AccountSearcher; RunAccounts runs it when
// the store has it.
func testAccountSearch(t *testing.T, h AccountsHarness) {
	if _, ok := h.open(t).(account.AccountSearcher); !ok {
		t.Skip("storetest: the store does not implement account.AccountSearcher")
	}
	_, updatable := h.open(t).(account.AccountUpdater)
	t.Run("Prefix", func(t *testing.T) {
		s, _ := searchSetup(t, h)
		se := searcherOf(t, s)
		checkSearch(t, se, "ali", 10, "u0", "u3", "u1", "u2")
		checkSearch(t, se, "alice", 10, "u0", "u3", "u1")
		checkSearch(t, se, "alice ", 10, "u1")
		checkSearch(t, se, "b", 10, "u4")
		checkSearch(t, se, account.NicknameKey("ÅLE"), 10, "u5")
		checkSearch(t, se, "alicex", 10)
		checkSearch(t, se, "lice", 10) // a key's middle is no prefix
	})
	t.Run("Limit", func(t *testing.T) {
		s, _ := searchSetup(t, h)
		se := searcherOf(t, s)
		checkSearch(t, se, "ali", 1, "u0")
		checkSearch(t, se, "ali", 3, "u0", "u3", "u1")
		checkSearch(t, se, "a", 100, "u0", "u3", "u1", "u2")
	})
	t.Run("DeletedLeftOut", func(t *testing.T) {
		s, _ := searchSetup(t, h)
		se := searcherOf(t, s)
		checkSearch(t, se, "alfa", 10)
		if updatable {
			checkSearch(t, se, "alf", 10)
		}
	})
	t.Run("NicknameChangeMovesEntry", func(t *testing.T) {
		s, accs := searchSetup(t, h)
		u, ok := s.(account.AccountUpdater)
		if !ok {
			t.Skip("storetest: the store does not implement account.AccountUpdater")
		}
		se := searcherOf(t, s)
		zed := "Zed"
		if _, err := u.UpdateAccount(t.Context(), "u2", account.AccountUpdate{Nickname: &zed}); err != nil {
			t.Fatalf("UpdateAccount: %v", err)
		}
		checkSearch(t, se, "ali", 10, "u0", "u3", "u1")
		checkSearch(t, se, "ze", 10, "u2")
		// Undeleting puts an account back.
		no := false
		if _, err := u.UpdateAccount(t.Context(), "u6", account.AccountUpdate{Deleted: &no}); err != nil {
			t.Fatalf("UpdateAccount: %v", err)
		}
		checkSearch(t, se, "alf", 10, "u6")
		// Other fields leave the entry where it is.
		sig := "changed"
		if _, err := u.UpdateAccount(t.Context(), "u1", account.AccountUpdate{Signature: &sig}); err != nil {
			t.Fatalf("UpdateAccount: %v", err)
		}
		checkSearch(t, se, "alice", 10, "u0", "u3", "u1")
		_ = accs
	})
	t.Run("ReturnsAccounts", func(t *testing.T) {
		s, accs := searchSetup(t, h)
		got, err := searcherOf(t, s).SearchAccounts(t.Context(), "bob", 1)
		if err != nil || len(got) != 1 {
			t.Fatalf("SearchAccounts(bob) = %v, %v", got, err)
		}
		if d := accountDiff(got[0], accs["u4"]); d != "" {
			t.Errorf("SearchAccounts(bob): %s", d)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		s, _ := searchSetup(t, h)
		se := searcherOf(t, s)
		for _, c := range []struct {
			prefix string
			limit  int
		}{{"", 10}, {"ali", 0}, {"ali", -1}} {
			if got, err := se.SearchAccounts(t.Context(), c.prefix, c.limit); !isInvalid(err) {
				t.Errorf("SearchAccounts(%q, %d) = %d accounts, %v; want ErrInvalidArgument", c.prefix, c.limit, len(got), err)
			}
		}
	})
	t.Run("ByID", func(t *testing.T) {
		s, accs := searchSetup(t, h)
		se := searcherOf(t, s)
		got, err := se.AccountsByID(t.Context(), []string{"u3", "u9", "u1", "u3", "u7", "U1"})
		if err != nil {
			t.Fatalf("AccountsByID: %v", err)
		}
		want := []string{"u3", "u1", "u7"} // missing left out, each once, deleted included
		if len(got) != len(want) {
			t.Fatalf("AccountsByID returned %d accounts, want %q", len(got), want)
		}
		for i, id := range want {
			if d := accountDiff(got[i], accs[id]); d != "" {
				t.Errorf("AccountsByID[%d]: %s", i, d)
			}
		}
		if got, err := se.AccountsByID(t.Context(), nil); err != nil || len(got) != 0 {
			t.Errorf("AccountsByID(nil) = %v, %v; want none", got, err)
		}
		for _, bad := range []string{"", "u\xff", strings.Repeat("x", im.MaxIDLength+1)} {
			if got, err := se.AccountsByID(t.Context(), []string{"u1", bad}); !isInvalid(err) {
				t.Errorf("AccountsByID with %q = %v, %v; want ErrInvalidArgument", bad, got, err)
			}
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		s, _ := searchSetup(t, h)
		se := searcherOf(t, s)
		ctx := cancelled(t)
		if _, err := se.SearchAccounts(ctx, "ali", 10); !errors.Is(err, context.Canceled) {
			t.Errorf("SearchAccounts with a cancelled ctx: %v, want context.Canceled", err)
		}
		if _, err := se.AccountsByID(ctx, []string{"u1"}); !errors.Is(err, context.Canceled) {
			t.Errorf("AccountsByID with a cancelled ctx: %v, want context.Canceled", err)
		}
	})
	t.Run("Durability", func(t *testing.T) {
		if h.Reopen == nil {
			t.Skip("storetest: the harness cannot reopen a store")
		}
		s, accs := searchSetup(t, h)
		if u, ok := s.(account.AccountUpdater); ok {
			zed := "Zed"
			if _, err := u.UpdateAccount(t.Context(), "u2", account.AccountUpdate{Nickname: &zed}); err != nil {
				t.Fatalf("UpdateAccount: %v", err)
			}
		}
		s = h.Reopen(t, s)
		se := searcherOf(t, s)
		if updatable {
			checkSearch(t, se, "ali", 10, "u0", "u3", "u1")
			checkSearch(t, se, "ze", 10, "u2")
			checkSearch(t, se, "alf", 10)
		} else {
			checkSearch(t, se, "ali", 10, "u0", "u3", "u1", "u2")
		}
		checkSearch(t, se, "alfa", 10)
		got, err := se.AccountsByID(t.Context(), []string{"u7"})
		if err != nil || len(got) != 1 {
			t.Fatalf("AccountsByID(u7) after reopen = %v, %v", got, err)
		}
		if d := accountDiff(got[0], accs["u7"]); d != "" {
			t.Errorf("AccountsByID(u7) after reopen: %s", d)
		}
	})
}

// RevokedTokensHarness opens stores of revoked tokens for RunRevokedTokens.
type RevokedTokensHarness struct {
	// Open returns a fresh, empty store. It arranges the store's release
	// itself. Required.
	Open func(t *testing.T) account.RevokedTokens
	// Reopen, if set, closes s and opens the same data again; without it
	// the Durability subtest is skipped.
	Reopen func(t *testing.T, s account.RevokedTokens) account.RevokedTokens
}

func (h RevokedTokensHarness) open(t *testing.T) account.RevokedTokens {
	t.Helper()
	s := h.Open(t)
	if s == nil {
		t.Fatal("storetest: RevokedTokensHarness.Open returned nil")
	}
	return s
}

func checkRevoked(t *testing.T, s account.RevokedTokens, id string, want bool) {
	t.Helper()
	got, err := s.TokenRevoked(t.Context(), id)
	if err != nil {
		t.Errorf("TokenRevoked(%q): %v", id, err)
	} else if got != want {
		t.Errorf("TokenRevoked(%q) = %v, want %v", id, got, want)
	}
}

func revoke(t *testing.T, s account.RevokedTokens, id string, expires time.Time) {
	t.Helper()
	if err := s.RevokeToken(t.Context(), id, expires); err != nil {
		t.Fatalf("RevokeToken(%q): %v", id, err)
	}
}

// RunRevokedTokens checks the account.RevokedTokens that h opens, each rule in
// its own subtest: Revoke, Again, Expired, Invalid, Cancelled and
// Durability. RunTokenVersions calls it for a store that implements
// account.RevokedTokens beside account.TokenVersions.
func RunRevokedTokens(t *testing.T, h RevokedTokensHarness) {
	t.Helper()
	if h.Open == nil {
		t.Fatal("storetest: RevokedTokensHarness.Open is nil")
	}
	later := time.Now().Add(time.Hour)
	t.Run("Revoke", func(t *testing.T) {
		s := h.open(t)
		checkRevoked(t, s, "t1", false)
		revoke(t, s, "t1", later)
		checkRevoked(t, s, "t1", true)
		for _, other := range []string{"t", "T1", "t10", "t1 "} {
			checkRevoked(t, s, other, false)
		}
		long := strings.Repeat("j", account.MaxTokenIDLength)
		revoke(t, s, long, later)
		checkRevoked(t, s, long, true)
	})
	t.Run("Again", func(t *testing.T) {
		s := h.open(t)
		revoke(t, s, "t1", later)
		revoke(t, s, "t1", later)
		// An earlier expiry given again does not shorten the record.
		revoke(t, s, "t1", time.Now().Add(-time.Hour))
		checkRevoked(t, s, "t1", true)
	})
	t.Run("Expired", func(t *testing.T) {
		// Records past their expiry may be dropped at any time; dropping
		// them must not touch the live ones.
		s := h.open(t)
		revoke(t, s, "live1", later)
		past := time.Now().Add(-time.Hour)
		for i := range 50 {
			revoke(t, s, "old"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)), past)
		}
		revoke(t, s, "live2", later)
		if _, err := s.TokenRevoked(t.Context(), "oldaa"); err != nil {
			t.Errorf("TokenRevoked of an expired record: %v", err)
		}
		checkRevoked(t, s, "live1", true)
		checkRevoked(t, s, "live2", true)
	})
	t.Run("Invalid", func(t *testing.T) {
		s := h.open(t)
		for _, id := range []string{"", strings.Repeat("x", account.MaxTokenIDLength+1)} {
			if err := s.RevokeToken(t.Context(), id, later); !isInvalid(err) {
				t.Errorf("RevokeToken(%q): %v, want ErrInvalidArgument", id, err)
			}
			if got, err := s.TokenRevoked(t.Context(), id); !isInvalid(err) {
				t.Errorf("TokenRevoked(%q) = %v, %v; want ErrInvalidArgument", id, got, err)
			}
		}
		checkRevoked(t, s, "x", false)
		checkRevoked(t, s, strings.Repeat("x", account.MaxTokenIDLength), false)
	})
	t.Run("Cancelled", func(t *testing.T) {
		s := h.open(t)
		ctx := cancelled(t)
		if err := s.RevokeToken(ctx, "t1", later); !errors.Is(err, context.Canceled) {
			t.Errorf("RevokeToken with a cancelled ctx: %v, want context.Canceled", err)
		}
		if _, err := s.TokenRevoked(ctx, "t1"); !errors.Is(err, context.Canceled) {
			t.Errorf("TokenRevoked with a cancelled ctx: %v, want context.Canceled", err)
		}
		checkRevoked(t, s, "t1", false)
	})
	t.Run("Durability", func(t *testing.T) {
		if h.Reopen == nil {
			t.Skip("storetest: the harness cannot reopen a store")
		}
		s := h.open(t)
		revoke(t, s, "t1", later)
		s = h.Reopen(t, s)
		if s == nil {
			t.Fatal("storetest: Reopen returned nil")
		}
		checkRevoked(t, s, "t1", true)
		checkRevoked(t, s, "t2", false)
	})
}

// testStoreRevokedTokens runs RunRevokedTokens on the token version stores
// h opens when they implement account.RevokedTokens.
func testStoreRevokedTokens(t *testing.T, h TokenVersionsHarness) {
	if _, ok := h.open(t).(account.RevokedTokens); !ok {
		t.Skip("storetest: the store does not implement account.RevokedTokens")
	}
	rh := RevokedTokensHarness{
		Open: func(t *testing.T) account.RevokedTokens {
			s, ok := h.open(t).(account.RevokedTokens)
			if !ok {
				t.Fatal("storetest: TokenVersionsHarness.Open returned stores of different types")
			}
			return s
		},
	}
	if h.Reopen != nil {
		rh.Reopen = func(t *testing.T, s account.RevokedTokens) account.RevokedTokens {
			tv, ok := s.(account.TokenVersions)
			if !ok {
				t.Fatal("storetest: the revoked token store is no longer an account.TokenVersions")
			}
			r, ok := h.Reopen(t, tv).(account.RevokedTokens)
			if !ok {
				t.Fatal("storetest: Reopen returned a store without account.RevokedTokens")
			}
			return r
		}
	}
	RunRevokedTokens(t, rh)
}
