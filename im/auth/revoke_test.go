package auth_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/store/memstore"
)

func TestJWTTokenVersion(t *testing.T) {
	c := &clock{t: testEpoch}
	j := newJWT(t, c)
	ctx := t.Context()

	tok, _, err := j.IssueVersion("alice", 3)
	require.NoError(t, err)
	claims, err := j.Verify(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, "alice", claims.UserID)
	require.True(t, claims.Expires.Equal(testEpoch.Add(time.Hour)), "expires %v", claims.Expires)
	require.Equal(t, int64(3), claims.Version)

	tok, _, err = j.Issue("alice")
	require.NoError(t, err)
	claims, err = j.Verify(ctx, tok)
	require.NoError(t, err)
	require.Zero(t, claims.Version, "Issue is version 0")

	_, _, err = j.IssueVersion("alice", -1)
	require.ErrorIs(t, err, im.ErrInvalidArgument)

	// Made elsewhere: a negative or non-numeric "tv" is refused.
	for _, tv := range []any{-1, "1", 1.5} {
		cl := goodClaims()
		cl["tv"] = tv
		_, err := j.Verify(ctx, handMade(t, hs256(), cl, testSecret, sha256.New))
		require.ErrorIs(t, err, im.ErrUnauthenticated, "tv %v", tv)
	}
	cl := goodClaims()
	cl["tv"] = 7
	claims, err = j.Verify(ctx, handMade(t, hs256(), cl, testSecret, sha256.New))
	require.NoError(t, err)
	require.Equal(t, int64(7), claims.Version)
}

func TestNewGuardAndRevokerConfig(t *testing.T) {
	j := newJWT(t, &clock{t: testEpoch})
	s := memstore.New()
	_, err := auth.NewGuard(auth.GuardConfig{Versions: s})
	require.ErrorContains(t, err, "Tokens")
	_, err = auth.NewGuard(auth.GuardConfig{Tokens: j})
	require.ErrorContains(t, err, "Versions")
	_, err = auth.NewRevoker(auth.RevokerConfig{})
	require.ErrorContains(t, err, "Versions")
}

// refusedWith requires err to be the Guard's refusal sentinel with the
// message a client is shown.
func refusedWith(t *testing.T, err, sentinel error, msg string) {
	t.Helper()
	require.ErrorIs(t, err, sentinel)
	require.ErrorIs(t, err, im.ErrUnauthenticated)
	var e *im.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, im.CodeUnauthenticated, e.Code)
	require.Equal(t, msg, e.Msg)
}

func TestGuard(t *testing.T) {
	ctx := t.Context()
	c := &clock{t: testEpoch}
	j := newJWT(t, c)
	s := memstore.New()
	require.NoError(t, s.CreateAccount(ctx, auth.Account{UserID: "alice", Username: "alice"}))
	require.NoError(t, s.CreateAccount(ctx, auth.Account{UserID: "dora", Username: "dora", Disabled: true}))
	withAccounts, err := auth.NewGuard(auth.GuardConfig{Tokens: j, Versions: s, Accounts: s})
	require.NoError(t, err)
	versionsOnly, err := auth.NewGuard(auth.GuardConfig{Tokens: j, Versions: s})
	require.NoError(t, err)
	issue := func(user string, v int64) string {
		tok, _, err := j.IssueVersion(user, v)
		require.NoError(t, err)
		return tok
	}

	id, err := withAccounts.Authenticate(ctx, issue("alice", 0))
	require.NoError(t, err)
	require.Equal(t, "alice", id.UserID)
	require.True(t, id.Expires.Equal(testEpoch.Add(time.Hour)), "expires %v", id.Expires)

	_, err = withAccounts.Authenticate(ctx, issue("ghost", 0))
	refusedWith(t, err, auth.ErrNoAccount, "unknown account")
	_, err = withAccounts.Authenticate(ctx, issue("dora", 0))
	refusedWith(t, err, auth.ErrAccountDisabled, "account disabled")
	_, err = versionsOnly.Authenticate(ctx, issue("ghost", 0))
	require.NoError(t, err, "without Accounts a user needs no account")

	// A bump refuses what came before and accepts what comes after.
	old := issue("alice", 0)
	_, err = s.BumpTokenVersion(ctx, "alice")
	require.NoError(t, err)
	for _, g := range []*auth.Guard{withAccounts, versionsOnly} {
		_, err = g.Authenticate(ctx, old)
		refusedWith(t, err, auth.ErrTokenRevoked, "token revoked")
		_, err = g.Authenticate(ctx, issue("alice", 1))
		require.NoError(t, err)
		_, err = g.Authenticate(ctx, issue("alice", 2))
		require.NoError(t, err, "a version ahead of the store's is one the store lost, not a forgery")
	}

	// The JWT's own refusals pass through.
	c.t = testEpoch.Add(2 * time.Hour)
	_, err = withAccounts.Authenticate(ctx, issue("alice", 1))
	require.NoError(t, err)
	c.t = testEpoch.Add(4 * time.Hour)
	_, err = withAccounts.Authenticate(ctx, old)
	require.ErrorIs(t, err, im.ErrTokenExpired)
	_, err = withAccounts.Authenticate(ctx, "junk")
	require.ErrorIs(t, err, im.ErrUnauthenticated)
}

// failingVersions fails every call; a Guard must not call that a bad token.
type failingVersions struct{ err error }

func (f failingVersions) TokenVersion(context.Context, string) (int64, error) { return 0, f.err }
func (f failingVersions) BumpTokenVersion(context.Context, string) (int64, error) {
	return 0, f.err
}

func TestGuardStoreError(t *testing.T) {
	j := newJWT(t, &clock{t: testEpoch})
	down := errors.New("database down")
	g, err := auth.NewGuard(auth.GuardConfig{Tokens: j, Versions: failingVersions{down}})
	require.NoError(t, err)
	tok, _, err := j.Issue("alice")
	require.NoError(t, err)
	_, err = g.Authenticate(t.Context(), tok)
	require.ErrorIs(t, err, down)
	require.NotErrorIs(t, err, im.ErrUnauthenticated, "the token could not be checked; it is not bad")

	r, err := auth.NewRevoker(auth.RevokerConfig{Versions: failingVersions{down}, Kick: func(string, string) int {
		t.Error("kicked although the revocation failed")
		return 0
	}})
	require.NoError(t, err)
	_, err = r.RevokeTokens(t.Context(), "alice")
	require.ErrorIs(t, err, down)
}

func TestRevoker(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	require.NoError(t, s.CreateAccount(ctx, auth.Account{UserID: "alice", Username: "alice"}))
	var (
		mu     sync.Mutex
		kicked []string
	)
	kick := func(user, reason string) int {
		mu.Lock()
		defer mu.Unlock()
		kicked = append(kicked, user+": "+reason)
		return 1
	}
	r, err := auth.NewRevoker(auth.RevokerConfig{Versions: s, Accounts: s, Kick: kick})
	require.NoError(t, err)

	v, err := r.RevokeTokens(ctx, "alice")
	require.NoError(t, err)
	require.Equal(t, int64(1), v)
	v, err = r.RevokeTokens(ctx, "bench-7") // no account: fine
	require.NoError(t, err)
	require.Equal(t, int64(1), v)

	a, err := r.DisableAccount(ctx, "alice")
	require.NoError(t, err)
	require.True(t, a.Disabled)
	v, err = s.TokenVersion(ctx, "alice")
	require.NoError(t, err)
	require.Equal(t, int64(2), v, "disabling revokes too")
	a, err = r.EnableAccount(ctx, "alice")
	require.NoError(t, err)
	require.False(t, a.Disabled)
	require.Equal(t, []string{"alice: tokens revoked", "bench-7: tokens revoked", "alice: account disabled"}, kicked,
		"enabling kicks nobody")

	// Refusals change nothing and kick nobody.
	kicked = nil
	_, err = r.RevokeTokens(ctx, "")
	require.ErrorIs(t, err, im.ErrInvalidArgument)
	_, err = r.RevokeTokens(ctx, "a\x00b")
	require.ErrorIs(t, err, im.ErrInvalidArgument)
	_, err = r.DisableAccount(ctx, "nobody")
	require.ErrorIs(t, err, im.ErrNotFound)
	v, err = s.TokenVersion(ctx, "nobody")
	require.NoError(t, err)
	require.Zero(t, v, "a refused disable revokes nothing")
	require.Empty(t, kicked)

	noAccounts, err := auth.NewRevoker(auth.RevokerConfig{Versions: s})
	require.NoError(t, err)
	_, err = noAccounts.DisableAccount(ctx, "alice")
	require.ErrorContains(t, err, "AccountUpdater")
	_, err = noAccounts.RevokeTokens(ctx, "alice")
	require.NoError(t, err, "without Kick, revoking still works")
}

// Login issues tokens at the user's current version, so that they pass a
// Guard after a revocation.
func TestLoginAfterRevocation(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	j := newJWT(t, &clock{t: testEpoch})
	accounts, err := auth.NewAccounts(auth.AccountsConfig{Store: s, Tokens: j, BcryptCost: auth.MinBcryptCost})
	require.NoError(t, err)
	g, err := auth.NewGuard(auth.GuardConfig{Tokens: j, Versions: s, Accounts: s})
	require.NoError(t, err)
	acc, err := accounts.Register(ctx, "alice", "a good password", "")
	require.NoError(t, err)
	before, err := accounts.Login(ctx, "alice", "a good password")
	require.NoError(t, err)
	_, err = s.BumpTokenVersion(ctx, acc.UserID)
	require.NoError(t, err)
	after, err := accounts.Login(ctx, "alice", "a good password")
	require.NoError(t, err)
	_, err = g.Authenticate(ctx, before.Token)
	require.ErrorIs(t, err, auth.ErrTokenRevoked)
	id, err := g.Authenticate(ctx, after.Token)
	require.NoError(t, err)
	require.Equal(t, acc.UserID, id.UserID)
}
