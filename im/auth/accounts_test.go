package auth

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/imserver/imserver/im"
)

var testEpoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a settable time source, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestAccounts returns Accounts over store with the clock, hashing at
// bcrypt's minimum cost: the cost is bcrypt's business, and at the real one
// these tests would take minutes under -race.
func newTestAccounts(t *testing.T, store AccountStore, clk *fakeClock, attempts int, window time.Duration) *Accounts {
	t.Helper()
	tokens, err := NewJWT(JWTConfig{Secret: []byte("k7Qm2vX9pL4sT8wZ1nB6cR3yH5dF0jGe"), Now: clk.now})
	require.NoError(t, err)
	a, err := NewAccounts(AccountsConfig{Store: store, Tokens: tokens, LoginAttempts: attempts, LoginWindow: window, Now: clk.now})
	require.NoError(t, err)
	a.cost = bcrypt.MinCost
	a.dummyHash = dummyHash(bcrypt.MinCost)
	return a
}

func TestNewAccountsConfig(t *testing.T) {
	tokens, err := NewJWT(JWTConfig{Secret: []byte("k7Qm2vX9pL4sT8wZ1nB6cR3yH5dF0jGe")})
	require.NoError(t, err)
	store := newTestStore(t)
	tests := []struct {
		name     string
		cfg      AccountsConfig
		wantCost int // 0: refused
	}{
		{"no store", AccountsConfig{Tokens: tokens}, 0},
		{"no tokens", AccountsConfig{Store: store}, 0},
		{"cost 9", AccountsConfig{Store: store, Tokens: tokens, BcryptCost: 9}, 0},
		{"cost 4", AccountsConfig{Store: store, Tokens: tokens, BcryptCost: bcrypt.MinCost}, 0},
		{"cost 32", AccountsConfig{Store: store, Tokens: tokens, BcryptCost: 32}, 0},
		{"negative attempts", AccountsConfig{Store: store, Tokens: tokens, LoginAttempts: -1}, 0},
		{"negative window", AccountsConfig{Store: store, Tokens: tokens, LoginWindow: -time.Second}, 0},
		{"negative client attempts", AccountsConfig{Store: store, Tokens: tokens, ClientAttempts: -1}, 0},
		{"negative subnet attempts", AccountsConfig{Store: store, Tokens: tokens, SubnetAttempts: -1}, 0},
		{"negative client window", AccountsConfig{Store: store, Tokens: tokens, ClientWindow: -time.Second}, 0},
		{"negative username failures", AccountsConfig{Store: store, Tokens: tokens, UsernameFailures: -1}, 0},
		{"negative username delay", AccountsConfig{Store: store, Tokens: tokens, UsernameDelay: -time.Second}, 0},
		{"negative max tracked", AccountsConfig{Store: store, Tokens: tokens, MaxTracked: -1}, 0},
		{"cost 10", AccountsConfig{Store: store, Tokens: tokens, BcryptCost: 10}, 10},
		{"defaults", AccountsConfig{Store: store, Tokens: tokens}, DefaultBcryptCost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewAccounts(tt.cfg)
			if tt.wantCost == 0 {
				require.Error(t, err)
				require.Nil(t, a)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantCost, a.cost)
			require.Equal(t, DefaultLoginAttempts, a.limit.max)
			require.Equal(t, DefaultLoginWindow, a.limit.window)
			cost, err := bcrypt.Cost(a.dummyHash)
			require.NoError(t, err)
			require.Equal(t, a.cost, cost)
		})
	}
}

// The hash compared against for unknown users must be one bcrypt accepts
// and works through at the configured cost, or unknown users would answer
// faster than wrong passwords.
func TestDummyHash(t *testing.T) {
	for _, cost := range []int{bcrypt.MinCost, MinBcryptCost, DefaultBcryptCost, bcrypt.MaxCost} {
		h := dummyHash(cost)
		require.Len(t, h, 60)
		got, err := bcrypt.Cost(h)
		require.NoError(t, err)
		require.Equal(t, cost, got)
	}
	// Only at the cheap cost: a full comparison, ending in a mismatch
	// rather than a parse error.
	err := bcrypt.CompareHashAndPassword(dummyHash(bcrypt.MinCost), []byte("password"))
	require.ErrorIs(t, err, bcrypt.ErrMismatchedHashAndPassword)
}

func TestRegister(t *testing.T) {
	tests := []struct {
		name, username, password, nickname string
		wantNick                           string // "" when refused
	}{
		{"ok", "alice", "correct horse", "Alice A.", "Alice A."},
		{"nickname defaults to username", "bob.b-2_x", "password", "", "bob.b-2_x"},
		{"shortest username", "abc", "password", "", "abc"},
		{"longest username", strings.Repeat("z", 32), "password", "", strings.Repeat("z", 32)},
		{"64-character nickname", "carol", "password", strings.Repeat("名", 64), strings.Repeat("名", 64)},
		{"username too short", "ab", "password", "", ""},
		{"username too long", strings.Repeat("z", 33), "password", "", ""},
		{"username with space", "al ice", "password", "", ""},
		{"username with slash", "al/ice", "password", "", ""},
		{"username non-ASCII", "älice", "password", "", ""},
		{"empty username", "", "password", "", ""},
		{"password too short", "dave", "1234567", "", ""},
		{"empty password", "dave", "", "", ""},
		{"password 73 bytes", "dave", strings.Repeat("p", 73), "", ""},
		{"nickname too long", "dave", "password", strings.Repeat("名", 65), ""},
		{"nickname invalid UTF-8", "dave", "password", "d\xffve", ""},
		{"nickname with newline", "dave", "password", "da\nve", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newTestStore(t)
			a := newTestAccounts(t, store, &fakeClock{t: testEpoch}, 0, 0)
			acc, err := a.Register(context.Background(), tt.username, tt.password, tt.nickname)
			if tt.wantNick == "" {
				require.ErrorIs(t, err, im.ErrInvalidArgument)
				var ie *im.Error
				require.ErrorAs(t, err, &ie)
				if tt.password != "" {
					require.NotContains(t, err.Error(), tt.password, "the error must not echo the password")
				}
				_, err := store.AccountByUsername(context.Background(), tt.username)
				require.ErrorIs(t, err, im.ErrNotFound, "nothing stored")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.username, acc.Username)
			require.Equal(t, tt.wantNick, acc.Nickname)
			require.Equal(t, testEpoch, acc.CreatedAt)
			require.False(t, acc.Disabled)
			require.NoError(t, bcrypt.CompareHashAndPassword(acc.PasswordHash, []byte(tt.password)))
			require.NotContains(t, string(acc.PasswordHash), tt.password)

			stored, err := store.AccountByUsername(context.Background(), tt.username)
			require.NoError(t, err)
			require.Equal(t, acc.UserID, stored.UserID)
			require.Equal(t, acc.Nickname, stored.Nickname)
		})
	}
}

func TestRegisterUserIDs(t *testing.T) {
	a := newTestAccounts(t, newTestStore(t), &fakeClock{t: testEpoch}, 0, 0)
	idForm := regexp.MustCompile(`^u[a-z2-7]{16}$`)
	seen := map[string]bool{}
	for i := range 20 {
		name := fmt.Sprintf("user%02d", i)
		acc, err := a.Register(context.Background(), name, "password", "")
		require.NoError(t, err)
		require.Regexp(t, idForm, acc.UserID)
		require.NotEqual(t, name, acc.UserID)
		require.NoError(t, im.ValidateID("user id", acc.UserID))
		require.False(t, seen[acc.UserID], "duplicate id %s", acc.UserID)
		seen[acc.UserID] = true
	}
}

func TestRegisterTakenUsername(t *testing.T) {
	ctx := context.Background()
	a := newTestAccounts(t, newTestStore(t), &fakeClock{t: testEpoch}, 0, 0)
	first, err := a.Register(ctx, "alice", "password", "")
	require.NoError(t, err)

	_, err = a.Register(ctx, "alice", "another password", "Impostor")
	require.ErrorIs(t, err, im.ErrConflict)
	require.NotErrorIs(t, err, im.ErrInvalidArgument)

	// Case-sensitive: a different username.
	other, err := a.Register(ctx, "Alice", "password", "")
	require.NoError(t, err)
	require.NotEqual(t, first.UserID, other.UserID)

	// The original account is untouched.
	res, err := a.Login(ctx, "alice", "password")
	require.NoError(t, err)
	require.Equal(t, first.UserID, res.UserID)
}

// Concurrent registrations of one name: the store decides, exactly one wins,
// and the losers are told the name is taken.
func TestRegisterRace(t *testing.T) {
	a := newTestAccounts(t, newTestStore(t), &fakeClock{t: testEpoch}, 0, 0)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = a.Register(context.Background(), "popular", "password", "")
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
		} else {
			require.ErrorIs(t, err, im.ErrConflict)
		}
	}
	require.Equal(t, 1, wins)
}

func TestRegisterStoreError(t *testing.T) {
	boom := errors.New("disk on fire")
	a := newTestAccounts(t, failingStore{err: boom}, &fakeClock{t: testEpoch}, 0, 0)
	_, err := a.Register(context.Background(), "alice", "password", "")
	require.ErrorIs(t, err, boom)
	require.NotErrorIs(t, err, im.ErrConflict)
}

func TestPasswordLengthEdges(t *testing.T) {
	ctx := context.Background()
	a := newTestAccounts(t, newTestStore(t), &fakeClock{t: testEpoch}, 100, time.Hour)
	pw71 := strings.Repeat("a", 70) + "1"
	pw72 := strings.Repeat("b", 71) + "2"
	pw73 := strings.Repeat("c", 72) + "3"
	require.Len(t, pw71, 71)
	require.Len(t, pw72, 72)
	require.Len(t, pw73, 73)

	_, err := a.Register(ctx, "user71", pw71, "")
	require.NoError(t, err)
	_, err = a.Register(ctx, "user72", pw72, "")
	require.NoError(t, err)
	_, err = a.Register(ctx, "user73", pw73, "")
	require.ErrorIs(t, err, im.ErrInvalidArgument)

	// 72 bytes counted as bytes, not characters: 24 three-byte runes fit,
	// one more does not.
	_, err = a.Register(ctx, "runes72", strings.Repeat("密", 24), "")
	require.NoError(t, err)
	_, err = a.Register(ctx, "runes75", strings.Repeat("密", 25), "")
	require.ErrorIs(t, err, im.ErrInvalidArgument)

	_, err = a.Login(ctx, "user71", pw71)
	require.NoError(t, err)
	_, err = a.Login(ctx, "user72", pw72)
	require.NoError(t, err)
	_, err = a.Login(ctx, "user71", pw71[:70])
	require.ErrorIs(t, err, im.ErrUnauthenticated)
	// bcrypt alone would accept this: it ignores bytes past 72.
	_, err = a.Login(ctx, "user72", pw72+"x")
	require.ErrorIs(t, err, im.ErrUnauthenticated)
	_, err = a.Login(ctx, "runes72", strings.Repeat("密", 24))
	require.NoError(t, err)
}

func TestLogin(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{t: testEpoch}
	a := newTestAccounts(t, newTestStore(t), clk, 0, 0)
	acc, err := a.Register(ctx, "alice", "correct horse", "")
	require.NoError(t, err)

	res, err := a.Login(ctx, "alice", "correct horse")
	require.NoError(t, err)
	require.Equal(t, acc.UserID, res.UserID)
	require.Equal(t, testEpoch.Add(DefaultLifetime), res.Expires)

	id, err := a.tokens.Authenticate(ctx, res.Token)
	require.NoError(t, err)
	require.Equal(t, acc.UserID, id.UserID)
	require.True(t, res.Expires.Equal(id.Expires))

	_, err = a.Login(ctx, "Alice", "correct horse")
	require.ErrorIs(t, err, im.ErrUnauthenticated, "usernames are case-sensitive")
}

// A wrong password, an unknown user, a disabled account and an oversized
// password must be indistinguishable to the caller.
func TestLoginFailuresLookAlike(t *testing.T) {
	ctx := context.Background()
	store := newTestStore(t)
	a := newTestAccounts(t, store, &fakeClock{t: testEpoch}, 100, time.Hour)
	_, err := a.Register(ctx, "alice", "correct horse", "")
	require.NoError(t, err)
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	require.NoError(t, err)
	require.NoError(t, store.CreateAccount(ctx, Account{
		UserID: "ubanned", Username: "banned", Nickname: "banned", PasswordHash: hash, Disabled: true, CreatedAt: testEpoch,
	}))

	_, want := a.Login(ctx, "alice", "wrong horse")
	require.ErrorIs(t, want, im.ErrUnauthenticated)
	require.NotErrorIs(t, want, im.ErrTokenExpired)
	var wantIE *im.Error
	require.ErrorAs(t, want, &wantIE)

	cases := []struct{ name, username, password string }{
		{"unknown user", "nobody", "correct horse"},
		{"disabled account, right password", "banned", "correct horse"},
		{"disabled account, wrong password", "banned", "wrong horse"},
		{"empty password", "alice", ""},
		{"password over 72 bytes", "alice", strings.Repeat("x", 100)},
		{"invalid username", "a", "correct horse"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := a.Login(ctx, c.username, c.password)
			require.Empty(t, res.Token)
			require.Error(t, err)
			require.Equal(t, want.Error(), err.Error())
			var ie *im.Error
			require.ErrorAs(t, err, &ie)
			require.Equal(t, wantIE.Code, ie.Code)
			require.Equal(t, wantIE.Msg, ie.Msg)
			require.ErrorIs(t, err, im.ErrUnauthenticated)
		})
	}
}

func TestLoginStoreError(t *testing.T) {
	boom := errors.New("disk on fire")
	a := newTestAccounts(t, failingStore{err: boom}, &fakeClock{t: testEpoch}, 2, time.Hour)
	for range 5 {
		_, err := a.Login(context.Background(), "alice", "password")
		require.ErrorIs(t, err, boom)
		require.NotErrorIs(t, err, im.ErrUnauthenticated)
		// An outage is not the user's failure: it must not lock them out.
		require.NotErrorIs(t, err, im.ErrRateLimited)
	}
}

func TestLoginRateLimit(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{t: testEpoch}
	const attempts, window = 3, time.Minute
	a := newTestAccounts(t, newTestStore(t), clk, attempts, window)
	_, err := a.Register(ctx, "alice", "correct horse", "")
	require.NoError(t, err)
	_, err = a.Register(ctx, "bob", "battery staple", "")
	require.NoError(t, err)

	fail := func(username string) {
		t.Helper()
		_, err := a.Login(ctx, username, "wrong password")
		require.ErrorIs(t, err, im.ErrUnauthenticated)
		require.NotErrorIs(t, err, im.ErrRateLimited)
	}
	limited := func(username, password string) {
		t.Helper()
		_, err := a.Login(ctx, username, password)
		require.ErrorIs(t, err, im.ErrRateLimited)
		require.NotErrorIs(t, err, im.ErrUnauthenticated)
	}

	for range attempts {
		fail("alice")
	}
	// Refused even with the right password: that is the point.
	limited("alice", "correct horse")
	limited("alice", "wrong password")

	// Other usernames are unaffected.
	_, err = a.Login(ctx, "bob", "battery staple")
	require.NoError(t, err)

	// Refused attempts do not extend the window.
	clk.advance(window - time.Second)
	limited("alice", "correct horse")
	clk.advance(time.Second)
	res, err := a.Login(ctx, "alice", "correct horse")
	require.NoError(t, err)
	require.NotEmpty(t, res.Token)

	// A success clears the count: attempts-1 failures, a success, then a
	// full allowance again.
	for range attempts - 1 {
		fail("alice")
	}
	_, err = a.Login(ctx, "alice", "correct horse")
	require.NoError(t, err)
	for range attempts {
		fail("alice")
	}
	limited("alice", "correct horse")

	// Unknown usernames are limited the same way, so the limiter does not
	// reveal which names exist.
	for range attempts {
		_, err := a.Login(ctx, "nobody", "whatever1")
		require.ErrorIs(t, err, im.ErrUnauthenticated)
	}
	limited("nobody", "whatever1")
}

// Concurrent guesses cannot outrun the count: each is charged before its
// password is checked.
func TestLoginRateLimitConcurrent(t *testing.T) {
	ctx := context.Background()
	const attempts = 3
	a := newTestAccounts(t, newTestStore(t), &fakeClock{t: testEpoch}, attempts, time.Hour)
	_, err := a.Register(ctx, "alice", "correct horse", "")
	require.NoError(t, err)

	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = a.Login(ctx, "alice", "wrong password") })
	}
	wg.Wait()
	var unauth, limited int
	for _, err := range errs {
		switch {
		case errors.Is(err, im.ErrRateLimited):
			limited++
		case errors.Is(err, im.ErrUnauthenticated):
			unauth++
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	require.Equal(t, attempts, unauth)
	require.Equal(t, n-attempts, limited)
}

func TestUserExists(t *testing.T) {
	ctx := context.Background()
	store := newTestStore(t)
	a := newTestAccounts(t, store, &fakeClock{t: testEpoch}, 0, 0)
	acc, err := a.Register(ctx, "alice", "correct horse", "")
	require.NoError(t, err)
	require.NoError(t, store.CreateAccount(ctx, Account{
		UserID: "ubanned", Username: "banned", Nickname: "banned", PasswordHash: acc.PasswordHash, Disabled: true, CreatedAt: testEpoch,
	}))

	tests := []struct {
		id   string
		want bool
	}{
		{acc.UserID, true},
		{"ubanned", true},
		{"alice", false}, // a username is not a user id
		{"unobody", false},
		{"", false},
		{"bad\nid", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.id), func(t *testing.T) {
			ok, err := a.UserExists(ctx, tt.id)
			require.NoError(t, err)
			require.Equal(t, tt.want, ok)
		})
	}

	boom := errors.New("disk on fire")
	broken := newTestAccounts(t, failingStore{err: boom}, &fakeClock{t: testEpoch}, 0, 0)
	_, err = broken.UserExists(ctx, "ualice")
	require.ErrorIs(t, err, boom)
}

// countingStore counts Account lookups.
type countingStore struct {
	AccountStore
	lookups atomic.Int64
}

func (c *countingStore) Account(ctx context.Context, id string) (Account, error) {
	c.lookups.Add(1)
	return c.AccountStore.Account(ctx, id)
}

func TestUserExistsCachesYes(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{AccountStore: newTestStore(t)}
	a := newTestAccounts(t, store, &fakeClock{t: testEpoch}, 0, 0)
	acc, err := a.Register(ctx, "alice", "correct horse", "")
	require.NoError(t, err)
	before := store.lookups.Load()
	for range 5 {
		ok, err := a.UserExists(ctx, acc.UserID)
		require.NoError(t, err)
		require.True(t, ok)
	}
	require.Equal(t, before+1, store.lookups.Load(), "one store read, then the cache")

	// No is not cached: a user registering later exists at once.
	for range 2 {
		ok, err := a.UserExists(ctx, "ulater")
		require.NoError(t, err)
		require.False(t, ok)
	}
	require.Equal(t, before+3, store.lookups.Load())
	require.NoError(t, store.CreateAccount(ctx, Account{UserID: "ulater", Username: "later", Nickname: "later", PasswordHash: acc.PasswordHash, CreatedAt: testEpoch}))
	ok, err := a.UserExists(ctx, "ulater")
	require.NoError(t, err)
	require.True(t, ok)
}

func TestBcryptRunsAtMostOnePerCPU(t *testing.T) {
	store := newTestStore(t)
	a := newTestAccounts(t, store, &fakeClock{t: testEpoch}, 2, time.Minute)
	ctx := context.Background()
	_, err := a.Register(ctx, "alice", "correct horse", "")
	require.NoError(t, err)

	// Every turn taken: work waits, and gives up with its ctx.
	for range cap(a.hashing) {
		a.hashing <- struct{}{}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = a.Login(short, "alice", "correct horse")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	_, err = a.Register(short, "bob", "correct horse", "")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	for range cap(a.hashing) {
		<-a.hashing
	}

	// A login that never ran does not count against the limit of 2.
	for range 2 {
		_, err = a.Login(ctx, "alice", "wrong password")
		require.ErrorIs(t, err, im.ErrUnauthenticated)
	}
	_, err = a.Login(ctx, "alice", "correct horse")
	require.ErrorIs(t, err, im.ErrRateLimited, "two failures reach the limit")
}

func TestValidateAccount(t *testing.T) {
	long := strings.Repeat("x", im.MaxIDLength+1)
	tests := []struct {
		name string
		a    Account
		ok   bool
	}{
		{"valid", Account{UserID: "u1", Username: "alice"}, true},
		{"only ids matter", Account{UserID: "u1", Username: "a", Nickname: "\x00"}, true},
		{"empty user id", Account{Username: "alice"}, false},
		{"empty username", Account{UserID: "u1"}, false},
		{"long user id", Account{UserID: long, Username: "alice"}, false},
		{"control in username", Account{UserID: "u1", Username: "al\tice"}, false},
		{"bad UTF-8 user id", Account{UserID: "u\xff", Username: "alice"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateAccount(tt.a)
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, im.ErrInvalidArgument)
			}
		})
	}
}

// A yes is trusted for a minute, then read again: an account deleted by
// another process sharing the store stops existing here within it.
func TestUserExistsRereadsAfterAMinute(t *testing.T) {
	ctx := context.Background()
	mem := newTestStore(t)
	store := &countingStore{AccountStore: mem}
	clock := &fakeClock{t: testEpoch}
	a := newTestAccounts(t, store, clock, 0, 0)
	acc, err := a.Register(ctx, "alice", "correct horse", "")
	require.NoError(t, err)
	ok, err := a.UserExists(ctx, acc.UserID)
	require.NoError(t, err)
	require.True(t, ok)

	// Deleted elsewhere: this Accounts is not told.
	deleted := true
	_, err = mem.(AccountUpdater).UpdateAccount(ctx, acc.UserID, AccountUpdate{Deleted: &deleted, Disabled: &deleted})
	require.NoError(t, err)
	before := store.lookups.Load()
	clock.advance(knownTTL - time.Second)
	ok, err = a.UserExists(ctx, acc.UserID)
	require.NoError(t, err)
	require.True(t, ok, "within the minute the cached yes stands")
	require.Equal(t, before, store.lookups.Load())
	clock.advance(time.Second)
	ok, err = a.UserExists(ctx, acc.UserID)
	require.NoError(t, err)
	require.False(t, ok, "after a minute the account is read again")
}
