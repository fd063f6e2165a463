package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/im/client"
)

const revokeSecret = "revoke-test-secret-Q7m2vX9pL4sT8wZ1nB6"

// tokenCheck presents token on one transport of l and returns nil if the
// server accepts it, or the message the server refused it with.
type tokenCheck func(t *testing.T, l listeners, userID, token string) error

// refusal is a token the server refused, with the message it gave.
type refusal struct{ msg string }

func (r refusal) Error() string { return "refused: " + r.msg }

// transports checks a token over TCP, WebSocket and the HTTP API.
var transports = map[string]tokenCheck{
	"tcp": func(t *testing.T, l listeners, u, tok string) error {
		return dialCheck(t, client.TransportTCP, l.TCP.String(), u, tok)
	},
	"websocket": func(t *testing.T, l listeners, u, tok string) error {
		return dialCheck(t, client.TransportWebSocket, "ws://"+l.WS.String()+"/ws", u, tok)
	},
	"http": httpCheck,
}

func dialCheck(t *testing.T, transport, addr, userID, token string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{Transport: transport, Addr: addr, UserID: userID, Token: token})
	if err == nil {
		c.Close()
		return nil
	}
	var ce *client.Error
	require.ErrorAs(t, err, &ce, "a refusal, not a failure")
	require.ErrorIs(t, err, im.ErrUnauthenticated)
	return refusal{ce.Msg}
}

func httpCheck(t *testing.T, l listeners, _, token string) error {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+l.HTTP.String()+"/api/group/joined", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	rsp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer rsp.Body.Close()
	var e envelope
	require.NoError(t, json.NewDecoder(rsp.Body).Decode(&e))
	if e.Code == 0 {
		return nil
	}
	require.Equal(t, 100, e.Code, e.Message)
	return refusal{e.Message}
}

// requireRefused requires every transport to refuse token with msg.
func requireRefused(t *testing.T, l listeners, userID, token, msg string) {
	t.Helper()
	for name, check := range transports {
		err := check(t, l, userID, token)
		require.Equal(t, refusal{msg}, err, "%s: the token must be refused with %q", name, msg)
	}
}

func requireAccepted(t *testing.T, l listeners, userID, token string) {
	t.Helper()
	for name, check := range transports {
		require.NoError(t, check(t, l, userID, token), "%s: the token must be accepted", name)
	}
}

func loginAs(t *testing.T, base, user string) login {
	t.Helper()
	e := post(t, base+"/api/auth/login", map[string]string{"username": user, "password": "secret-" + user})
	require.Zero(t, e.Code, e.Message)
	var out login
	require.NoError(t, json.Unmarshal(e.Data, &out))
	return out
}

func mint(t *testing.T, userID string, version int64) string {
	t.Helper()
	j, err := auth.NewJWT(auth.JWTConfig{Secret: []byte(revokeSecret)})
	require.NoError(t, err)
	tok, _, err := j.IssueVersion(userID, version)
	require.NoError(t, err)
	return tok
}

// With built-in accounts, the default, a validly signed token of a user id
// that has no account is refused everywhere.
func TestTokenWithoutAccountIsRefused(t *testing.T) {
	l, _ := start(t, t.TempDir(), new(syncBuffer), "-jwt-secret", revokeSecret, "-bcrypt-cost", "10")
	requireRefused(t, l, "ghost", mint(t, "ghost", 0), "unknown account")
	alice := registerAndLogin(t, "http://"+l.HTTP.String(), "alice")
	requireAccepted(t, l, alice.UserID, alice.Token)
}

// Revoking a user's tokens kicks their open sessions at once and refuses
// the old tokens on every transport; a fresh login works. Revocations
// survive a restart.
func TestRevokedTokensAreRefused(t *testing.T) {
	dir := t.TempDir()
	logs := new(syncBuffer)
	l, stop := start(t, dir, logs, "-bcrypt-cost", "10")
	base := "http://" + l.HTTP.String()
	alice := registerAndLogin(t, base, "alice")
	requireAccepted(t, l, alice.UserID, alice.Token)
	sessions := openSessions(t, l, alice)

	v, err := l.Revoker.RevokeTokens(t.Context(), alice.UserID)
	require.NoError(t, err)
	require.Equal(t, int64(1), v)
	requireKicked(t, sessions, auth.KickTokensRevoked)
	requireRefused(t, l, alice.UserID, alice.Token, "token revoked")

	fresh := loginAs(t, base, "alice")
	requireAccepted(t, l, alice.UserID, fresh.Token)

	stop()
	l, _ = start(t, dir, logs, "-bcrypt-cost", "10")
	requireRefused(t, l, alice.UserID, alice.Token, "token revoked")
	requireAccepted(t, l, alice.UserID, fresh.Token)
}

// A disabled account's token is refused and its sessions are kicked;
// enabled again, it needs a new login, as its old tokens stay revoked.
func TestDisabledAccount(t *testing.T) {
	l, _ := start(t, t.TempDir(), new(syncBuffer), "-bcrypt-cost", "10")
	base := "http://" + l.HTTP.String()
	alice := registerAndLogin(t, base, "alice")
	bob := registerAndLogin(t, base, "bob")
	sessions := openSessions(t, l, alice)
	bobs := openSessions(t, l, bob)

	a, err := l.Revoker.DisableAccount(t.Context(), alice.UserID)
	require.NoError(t, err)
	require.True(t, a.Disabled)
	requireKicked(t, sessions, auth.KickAccountDisabled)
	requireRefused(t, l, alice.UserID, alice.Token, "account disabled")
	e := post(t, base+"/api/auth/login", map[string]string{"username": "alice", "password": "secret-alice"})
	require.Equal(t, 100, e.Code, "a disabled account cannot log in")

	for _, c := range bobs {
		require.NoError(t, c.Err(), "another user's sessions stay open")
	}
	requireAccepted(t, l, bob.UserID, bob.Token)

	_, err = l.Revoker.EnableAccount(t.Context(), alice.UserID)
	require.NoError(t, err)
	requireRefused(t, l, alice.UserID, alice.Token, "token revoked")
	requireAccepted(t, l, alice.UserID, loginAs(t, base, "alice").Token)

	_, err = l.Revoker.DisableAccount(t.Context(), "nobody")
	require.ErrorIs(t, err, im.ErrNotFound)
	_, err = l.Revoker.DisableAccount(t.Context(), "")
	require.ErrorIs(t, err, im.ErrInvalidArgument)
}

// With -check-recipients=false, tokens minted elsewhere for users without
// an account keep working, and can be revoked all the same: the minting
// backend then issues at the new version.
func TestSyntheticUsersCanBeRevoked(t *testing.T) {
	dir := t.TempDir()
	logs := new(syncBuffer)
	l, stop := start(t, dir, logs, "-jwt-secret", revokeSecret, "-check-recipients=false")
	old := mint(t, "bench-1", 0)
	requireAccepted(t, l, "bench-1", old)
	requireAccepted(t, l, "bench-2", mint(t, "bench-2", 0))
	sessions := openSessions(t, l, login{Token: old, UserID: "bench-1"})

	v, err := l.Revoker.RevokeTokens(t.Context(), "bench-1")
	require.NoError(t, err)
	requireKicked(t, sessions, auth.KickTokensRevoked)
	requireRefused(t, l, "bench-1", old, "token revoked")
	requireAccepted(t, l, "bench-1", mint(t, "bench-1", v))
	requireAccepted(t, l, "bench-2", mint(t, "bench-2", 0))

	stop()
	l, _ = start(t, dir, logs, "-jwt-secret", revokeSecret, "-check-recipients=false")
	requireRefused(t, l, "bench-1", old, "token revoked")
	requireAccepted(t, l, "bench-1", mint(t, "bench-1", v))
}

// openSessions connects u over TCP and WebSocket.
func openSessions(t *testing.T, l listeners, u login) []*client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*client.Client
	for tr, addr := range map[string]string{client.TransportTCP: l.TCP.String(), client.TransportWebSocket: "ws://" + l.WS.String() + "/ws"} {
		c, err := client.Dial(ctx, client.Options{Transport: tr, Addr: addr, UserID: u.UserID, Token: u.Token, Platform: tr})
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		out = append(out, c)
	}
	return out
}

// requireKicked requires each client to end, kicked out with reason.
func requireKicked(t *testing.T, cs []*client.Client, reason string) {
	t.Helper()
	for _, c := range cs {
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the session was not kicked within 10 s")
		}
		err := c.Err()
		require.True(t, errors.Is(err, client.ErrKicked), "ended with %v, want a kick", err)
		require.Contains(t, err.Error(), reason)
	}
}
