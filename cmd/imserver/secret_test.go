package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// runFails runs the server on dir and returns the error it stops with,
// failing the test if it starts instead.
func runFails(t *testing.T, dir string, extra ...string) error {
	t.Helper()
	logs := new(syncBuffer)
	args := append([]string{"-data", dir, "-http", "127.0.0.1:0", "-ws", "", "-tcp", "127.0.0.1:0"}, extra...)
	cfg, err := parseConfig(args, func(string) string { return "" }, logs)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan listeners, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, logs, func(l listeners) { ready <- l }) }()
	select {
	case <-ready:
		cancel()
		<-done
		t.Fatal("the server started")
		return nil
	case err := <-done:
		require.Error(t, err)
		return err
	}
}

// writeSecret writes secret to dir/jwt.secret with mode perm, whatever the
// umask.
func writeSecret(t *testing.T, dir, secret string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, "jwt.secret")
	require.NoError(t, os.WriteFile(path, []byte(secret+"\n"), perm))
	require.NoError(t, os.Chmod(path, perm))
	return path
}

func TestSecretFileReadableByOthersIsRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("mode bits do not describe Windows permissions")
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	secret := hex.EncodeToString(raw)
	for _, perm := range []os.FileMode{0o644, 0o640, 0o604, 0o620, 0o666} {
		t.Run(perm.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := writeSecret(t, dir, secret, perm)
			err := runFails(t, dir)
			require.ErrorContains(t, err, path)
			require.ErrorContains(t, err, "chmod 600 "+path, "the error tells the fix")
			fi, statErr := os.Stat(path)
			require.NoError(t, statErr)
			require.Equal(t, perm, fi.Mode().Perm(), "the file is left as it was")

			// Once fixed, the server starts with it.
			require.NoError(t, os.Chmod(path, 0o600))
			_, stop := start(t, dir, new(syncBuffer))
			stop()
		})
	}
}

func TestGuessableSecretIsRefused(t *testing.T) {
	for _, secret := range []string{strings.Repeat("a", 32), strings.Repeat("changeme", 4), "changeme" + strings.Repeat("0", 24), strings.Repeat("changeme-please!", 2)} {
		t.Run(secret, func(t *testing.T) {
			_, err := parseConfig([]string{"-jwt-secret", secret}, func(string) string { return "" }, new(syncBuffer))
			require.ErrorContains(t, err, "-jwt-secret")
			require.ErrorContains(t, err, "guessable")
			_, err = parseConfig(nil, func(k string) string {
				if k == "IM_JWT_SECRET" {
					return secret
				}
				return ""
			}, new(syncBuffer))
			require.ErrorContains(t, err, "guessable", "from the environment too")

			dir := t.TempDir()
			path := writeSecret(t, dir, secret, 0o600)
			err = runFails(t, dir)
			require.ErrorContains(t, err, path)
			require.ErrorContains(t, err, "guessable")
			require.ErrorContains(t, err, "openssl rand")
		})
	}
}
