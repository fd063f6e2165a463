package main

import (
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVersionLine(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/imserver/imserver", Version: "v0.0.0-20250601120000-abc123def456"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "abc123def4567890abc123def4567890abc12345"},
			{Key: "vcs.modified", Value: "false"},
		},
	}
	require.Equal(t, "imserver v0.0.0-20250601120000-abc123def456 (commit abc123def456, built with go1.26.8)", versionLine(bi, true))
	bi.Settings[2].Value = "true"
	require.Equal(t, "imserver v0.0.0-20250601120000-abc123def456 (commit abc123def456, modified, built with go1.26.8)", versionLine(bi, true))
	// go run and builds outside a repository have no commit.
	require.Equal(t, "imserver (devel) (commit unknown, built with go1.26.8)",
		versionLine(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, true))
	require.Equal(t, "imserver (no build information)", versionLine(nil, false))
}

func TestVersionFlag(t *testing.T) {
	// -version answers whatever else is given, even settings that would
	// be refused: it starts nothing.
	for _, args := range [][]string{{"-version"}, {"-version", "-store", "nope"}, {"-http", ":1", "-version=true"}} {
		_, err := parseConfig(args, func(string) string { return "" }, io.Discard)
		require.ErrorIs(t, err, errVersion, "%q", args)
	}
	_, err := parseConfig([]string{"-version=false", "-data", t.TempDir()}, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	// It is no setting: no variable turns it on.
	_, err = parseConfig([]string{"-data", t.TempDir()}, func(k string) string {
		if k == "IM_VERSION" {
			return "true"
		}
		return ""
	}, io.Discard)
	require.NoError(t, err)
	var help strings.Builder
	_, err = parseConfig([]string{"-h"}, func(string) string { return "" }, &help)
	require.ErrorIs(t, err, errHelp)
	require.Contains(t, help.String(), "-version")
}

// startLine returns the "imserver starting" line of logs.
func startLine(t *testing.T, logs string) string {
	t.Helper()
	var found []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `msg="imserver starting"`) {
			found = append(found, line)
		}
	}
	require.Len(t, found, 1, "one start line in:\n%s", logs)
	return found[0]
}

func TestStartLineAndHealth(t *testing.T) {
	logs := new(syncBuffer)
	l, _ := start(t, t.TempDir(), logs, "-jwt-secret", revokeSecret, "-send-rate", "7", "-metrics-token", "metrics-token-kept-private")
	line := startLine(t, logs.String())
	require.Contains(t, line, "version=")
	require.Contains(t, line, "store=bolt")
	require.Contains(t, line, "http=127.0.0.1:0")
	require.Contains(t, line, "debug=off")
	require.Contains(t, line, "settings.send-rate=7")
	require.Contains(t, line, "settings.jwt-secret=set")
	require.Contains(t, line, "settings.metrics-token=set")
	require.Contains(t, line, "settings.log-level=debug")
	require.NotContains(t, line, revokeSecret)
	require.NotContains(t, logs.String(), "metrics-token-kept-private")
	// Settings left at their defaults are not listed.
	require.NotContains(t, line, "settings.max-content")
	require.NotContains(t, line, "settings.store")

	base := "http://" + l.HTTP.String()
	for _, path := range []string{"/livez", "/readyz", "/health"} {
		rsp, err := http.Get(base + path)
		require.NoError(t, err)
		body, err := io.ReadAll(rsp.Body)
		rsp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, rsp.StatusCode, path)
		require.JSONEq(t, `{"code":0,"message":"ok"}`, string(body), path)
	}
}

// Every setting that holds a secret is among those the start line never
// shows: a new one is caught here rather than in an operator's logs.
func TestSecretSettingsAreRedacted(t *testing.T) {
	var c config
	for _, s := range settings(&c) {
		if (strings.Contains(s.name, "token") && s.name != "token-lifetime") || strings.Contains(s.name, "secret") || strings.Contains(s.name, "password") || s.name == "dsn" {
			if !secretSettings[s.name] {
				t.Errorf("-%s holds a secret but is not in secretSettings", s.name)
			}
		}
	}
}
