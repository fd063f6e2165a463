package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im/auth"
)

func newUserSource(t *testing.T, srv *testServer, file string, minter *auth.JWT) *userSource {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(c.CloseIdleConnections)
	return &userSource{httpBase: srv.HTTPURL, runID: "t" + strings.ToLower(t.Name()[len(t.Name())-3:]), parallel: 2, file: file, minter: minter, client: c, log: t.Logf}
}

func TestUsersRegisteredAndCached(t *testing.T) {
	srv := startServer(t)
	file := filepath.Join(t.TempDir(), "users")
	ctx := context.Background()

	src := newUserSource(t, srv, file, nil)
	first, err := src.registered(ctx, 2)
	require.NoError(t, err)
	require.Len(t, first, 2)
	for _, u := range first {
		id, err := srv.Tokens.Authenticate(ctx, u.Token)
		require.NoError(t, err)
		require.Equal(t, u.UserID, id.UserID)
		require.True(t, u.Expires.After(time.Now()))
	}

	// A second source (another run) reuses the two and registers one more.
	src2 := newUserSource(t, srv, file, nil)
	src2.runID = "second"
	more, err := src2.registered(ctx, 3)
	require.NoError(t, err)
	for i := range first {
		require.Equal(t, first[i].UserID, more[i].UserID)
		require.Equal(t, first[i].Token, more[i].Token)
		require.True(t, first[i].Expires.Equal(more[i].Expires))
	}
	require.Contains(t, more[2].Username, "bench-second-")
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, 3, strings.Count(string(b), "\n"))

	// With the secret, an expired cached token is minted again, without
	// a login.
	expired := more[0]
	expired.Expires = time.Now().Add(-time.Minute)
	minted, err := newUserSource(t, srv, "", srv.Tokens).refresh(ctx, expired)
	require.NoError(t, err)
	id, err := srv.Tokens.Authenticate(ctx, minted.Token)
	require.NoError(t, err)
	require.Equal(t, expired.UserID, id.UserID)
}

func TestUsersBadInput(t *testing.T) {
	srv := startServer(t)
	ctx := context.Background()

	file := filepath.Join(t.TempDir(), "users")
	require.NoError(t, os.WriteFile(file, []byte("{\"userID\":\"a\",\"token\":\"x\",\"expires\":\"2999-01-01T00:00:00Z\"}\nnot json\n"), 0o600))
	_, err := newUserSource(t, srv, file, nil).registered(ctx, 1)
	require.ErrorContains(t, err, ":2: not a cached user")

	_, err = newUserSource(t, srv, "", nil).synthetic(2)
	require.Error(t, err, "synthetic users need a secret")

	// An expired cached user without a password cannot be renewed.
	_, err = newUserSource(t, srv, "", nil).refresh(ctx, benchUser{UserID: "u1", Expires: time.Now()})
	require.ErrorContains(t, err, "delete the -users-file")

	// A taken username is reported with the API's message.
	src := newUserSource(t, srv, "", nil)
	_, err = src.register(ctx, "taken-name")
	require.NoError(t, err)
	_, err = src.register(ctx, "taken-name")
	require.ErrorContains(t, err, "taken")
}
