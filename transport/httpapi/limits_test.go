package httpapi_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/transport/httpapi"
)

// countingStore counts username lookups, which Login and Register make
// before any bcrypt work: a refused attempt that made none hashed nothing.
type countingStore struct {
	auth.AccountStore
	lookups atomic.Int64
}

func (c *countingStore) AccountByUsername(ctx context.Context, username string) (auth.Account, error) {
	c.lookups.Add(1)
	return c.AccountStore.AccountByUsername(ctx, username)
}

type limitEnv struct {
	url      string
	store    *countingStore
	accounts *auth.Accounts
}

// setupLimits serves register and login with Accounts configured by edit,
// on a fixed clock, so that windows never pass during a test.
func setupLimits(t *testing.T, edit func(*auth.AccountsConfig)) *limitEnv {
	t.Helper()
	now := func() time.Time { return testEpoch }
	tokens, err := auth.NewJWT(auth.JWTConfig{Secret: []byte("http-test-secret-k7Qm2vX9pL4sT8wZ"), Lifetime: time.Hour, Now: now})
	require.NoError(t, err)
	store := &countingStore{AccountStore: newTestStore(t)}
	cfg := auth.AccountsConfig{
		Store:        store,
		Tokens:       tokens,
		BcryptCost:   auth.MinBcryptCost,
		LoginWindow:  time.Hour,
		ClientWindow: time.Hour,
		Now:          now,
	}
	edit(&cfg)
	accounts, err := auth.NewAccounts(cfg)
	require.NoError(t, err)
	srv := &http.Server{Handler: httpapi.NewHandler(httpapi.Options{Accounts: accounts})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &limitEnv{url: "http://" + ln.Addr().String(), store: store, accounts: accounts}
}

// from returns a client whose connections come from the loopback address
// ip, so that one test can play several clients.
func from(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func (e *limitEnv) login(t *testing.T, c *http.Client, username, password string) response {
	t.Helper()
	return doRequest(t, c, http.MethodPost, e.url+"/api/auth/login", http.Header{"Content-Type": {"application/json"}},
		jsonBody(t, map[string]string{"username": username, "password": password, "platform": "iOS"}))
}

func (e *limitEnv) register(t *testing.T, c *http.Client, username, password string) response {
	t.Helper()
	return doRequest(t, c, http.MethodPost, e.url+"/api/auth/register", http.Header{"Content-Type": {"application/json"}},
		jsonBody(t, map[string]string{"username": username, "password": password}))
}

// requireThrottled checks a refusal for too many attempts: HTTP 200 with
// code 201 in the envelope, as the SDK reads it, and a Retry-After in
// whole seconds.
func requireThrottled(t *testing.T, r response) {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, 201, r.code, "body %s", r.raw)
	require.Contains(t, r.message, "try again later")
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", r.header.Get("Retry-After"))
	require.Positive(t, secs)
}

// A client address over its limit, or one in a subnet over its limit, is
// refused before its username is even looked up, so before any hashing;
// an unknown username costs no more than that.
func TestLoginLimitPerAddressBeforeHashing(t *testing.T) {
	e := setupLimits(t, func(c *auth.AccountsConfig) {
		c.ClientAttempts = 3
		c.SubnetAttempts = 5
	})
	a := from(t, "127.0.0.2")
	for range 3 {
		require.Equal(t, 100, e.login(t, a, "ghost", "whatever1").code)
	}
	require.EqualValues(t, 3, e.store.lookups.Load())
	r := e.login(t, a, "ghost", "whatever1")
	requireThrottled(t, r)
	require.Equal(t, "3600", r.header.Get("Retry-After"), "the client window is an hour")
	requireThrottled(t, e.register(t, a, "newuser", "correct horse"))
	require.EqualValues(t, 3, e.store.lookups.Load(), "refused attempts made no lookup and no hash")

	// Another address of the same /24 has its own count, but the subnet's
	// 5 are then used up.
	b := from(t, "127.0.0.3")
	for range 2 {
		require.Equal(t, 100, e.login(t, b, "ghost", "whatever1").code)
	}
	requireThrottled(t, e.login(t, b, "ghost", "whatever1"))
	require.EqualValues(t, 5, e.store.lookups.Load())

	// Another subnet is unaffected.
	require.Equal(t, 0, e.register(t, from(t, "127.0.1.2"), "newuser", "correct horse").code)
}

// Wrong passwords from one address lock that address out of the account;
// the owner, from another address, still logs in, only delayed once the
// failures from all addresses pass the per-username ceiling.
func TestLoginAttackerDoesNotLockOutOwner(t *testing.T) {
	const delay = 100 * time.Millisecond
	e := setupLimits(t, func(c *auth.AccountsConfig) {
		c.LoginAttempts = 2
		c.UsernameFailures = 3
		c.UsernameDelay = delay
	})
	owner := from(t, "127.0.2.1")
	require.Equal(t, 0, e.register(t, owner, "alice", "correct horse").code)

	attacker := from(t, "127.0.0.2")
	for range 2 {
		require.Equal(t, 100, e.login(t, attacker, "alice", "wrong guess").code)
	}
	// Locked out even with the right password: the attacker's address is.
	requireThrottled(t, e.login(t, attacker, "alice", "correct horse"))

	// A second attacker elsewhere gets its own two guesses, which takes
	// the failures for alice past the ceiling of 3.
	other := from(t, "127.0.1.2")
	for range 2 {
		require.Equal(t, 100, e.login(t, other, "alice", "wrong guess").code)
	}

	start := time.Now()
	r := e.login(t, owner, "alice", "correct horse")
	require.Equal(t, 0, r.code, "body %s", r.raw)
	require.GreaterOrEqual(t, time.Since(start), delay, "past the ceiling every attempt waits")

	// The attacker is still refused.
	requireThrottled(t, e.login(t, attacker, "alice", "correct horse"))
}

// Spraying junk usernames fills the limits' tables but cannot flush a
// lock in force, and the tables stay within their bound.
func TestLoginSprayKeepsLocks(t *testing.T) {
	// 64 keys a table, four a shard: room for the few keys before the
	// spray wherever they hash (with one a shard, two of them could meet
	// and the second be refused), and far fewer than the spray's 200.
	const maxTracked = 64
	e := setupLimits(t, func(c *auth.AccountsConfig) {
		c.LoginAttempts = 2
		c.ClientAttempts = 10000
		c.SubnetAttempts = 10000
		c.UsernameDelay = time.Millisecond
		c.MaxTracked = maxTracked
	})
	require.Equal(t, 0, e.register(t, from(t, "127.0.2.1"), "alice", "correct horse").code)
	attacker := from(t, "127.0.0.2")
	for range 2 {
		require.Equal(t, 100, e.login(t, attacker, "alice", "wrong guess").code)
	}
	requireThrottled(t, e.login(t, attacker, "alice", "correct horse"))

	sprayer := from(t, "127.0.0.3")
	refused := 0
	for i := range 200 {
		r := e.login(t, sprayer, fmt.Sprintf("junk%d", i), "whatever1")
		switch r.code {
		case 100:
		case 201:
			refused++
		default:
			t.Fatalf("unexpected answer %s", r.raw)
		}
	}
	require.Positive(t, refused, "a full table refuses new keys rather than forget old ones")
	require.LessOrEqual(t, e.accounts.Tracked(), 4*maxTracked)
	requireThrottled(t, e.login(t, attacker, "alice", "correct horse"))
}
