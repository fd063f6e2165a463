package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imtest"
)

// testServer is an in-process imserver like cmd/imserver's: recipients
// must exist, bcrypt is cheap, the rate limit is off (imbench measures
// speed, the limiter would only refuse), logs are dropped (a load run
// would flood t.Log).
type testServer = imtest.Server

func startServer(t *testing.T) *testServer {
	t.Helper()
	return imtest.NewServer(t, imtest.Options{
		Config:          im.Config{SendRate: -1, GroupAddsPerMinute: -1, GroupAddPolicy: anyoneAdds, Logger: slog.New(slog.DiscardHandler)},
		CheckRecipients: true,
	})
}

// bench runs imbench with args and returns its exit status, its JSON
// report and what it wrote to stderr.
func bench(t *testing.T, args ...string) (int, map[string]any, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := run(ctx, append([]string{"-json"}, args...), func(string) string { return "" }, &stdout, &stderr)
	var rep map[string]any
	if stdout.Len() > 0 {
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), stdout.String())
	}
	return code, rep, stderr.String()
}

func serverArgs(srv *testServer, transport string) []string {
	return []string{"-transport", transport, "-addr", srv.Addr(transport), "-http", srv.HTTPURL}
}

// requireVerified checks the fields every passing run has.
func requireVerified(t *testing.T, code int, rep map[string]any, stderr string) {
	t.Helper()
	require.Equal(t, exitOK, code, "%s\n%v", stderr, rep)
	for _, k := range []string{"errors", "lost", "duplicated", "out_of_order", "seq_errors", "gaps", "unexpected"} {
		require.EqualValues(t, 0, rep[k], "%s in %v", k, rep)
	}
	require.Equal(t, true, rep["ok"])
}

// short returns the flags of a short run followed by args.
func short(args ...string) []string {
	return append([]string{"-warmup", "200ms", "-duration", "700ms", "-drain", "10s", "-progress", "250ms"}, args...)
}

// TestAgainstImserver runs every scenario against one in-process server.
// The runs share their users through a -users-file, as repeated runs on
// a workstation would, so later runs also prove that verification holds
// when the conversations already have history.
func TestAgainstImserver(t *testing.T) {
	srv := startServer(t)
	shared := []string{"-users-file", filepath.Join(t.TempDir(), "users"), "-jwt-secret", string(srv.Secret)}
	common := func(transport string, args ...string) []string {
		return append(append(serverArgs(srv, transport), shared...), args...)
	}

	for _, transport := range []string{"tcp", "websocket"} {
		t.Run("direct/"+transport, func(t *testing.T) {
			args := common(transport, short("-scenario", "direct", "-conns", "4", "-window", "4", "-size", "64")...)
			code, rep, stderr := bench(t, args...)
			requireVerified(t, code, rep, stderr)
			for _, k := range []string{"scenario", "transport", "conns", "acked_per_sec", "delivered_per_sec", "ack_p50_ms", "ack_p99_ms", "deliver_p99_ms", "errors", "lost", "duplicated"} {
				require.Contains(t, rep, k)
			}
			require.Equal(t, "direct", rep["scenario"])
			require.Equal(t, transport, rep["transport"])
			require.EqualValues(t, 4, rep["conns"])
			require.Greater(t, rep["acked_per_sec"], 0.0)
			require.Greater(t, rep["delivered_per_sec"], 0.0)
			require.Greater(t, rep["ack_p99_ms"], 0.0)
			require.Greater(t, rep["deliver_p99_ms"], 0.0)
			require.GreaterOrEqual(t, rep["total_sent"], rep["sent"])
			require.NotContains(t, rep, "ratio")
			require.Contains(t, stderr, "measure", "progress lines")
		})
	}

	t.Run("direct/open-loop", func(t *testing.T) {
		code, rep, stderr := bench(t, common("tcp", short("-scenario", "direct", "-conns", "4", "-rate", "300", "-quiet")...)...)
		requireVerified(t, code, rep, stderr)
		require.Empty(t, stderr, "-quiet")
		require.EqualValues(t, 300, rep["rate"])
		// Open-loop sends on a schedule and never faster: even answers
		// bunched into the window cannot add up to half again the rate.
		require.Greater(t, rep["acked_per_sec"], 0.0)
		require.LessOrEqual(t, rep["acked_per_sec"], 450.0)
	})

	t.Run("direct/compare-raw", func(t *testing.T) {
		code, rep, stderr := bench(t, common("websocket", short("-scenario", "direct", "-conns", "2", "-compare-raw")...)...)
		requireVerified(t, code, rep, stderr)
		require.Greater(t, rep["raw_per_sec"], 0.0)
		require.Greater(t, rep["ratio"], 0.0)
		raw := rep["raw"].(map[string]any)
		require.Equal(t, "raw", raw["target"])
		require.EqualValues(t, 0, raw["lost"])
		require.InDelta(t, rep["acked_per_sec"].(float64)/rep["raw_per_sec"].(float64), rep["ratio"], 1e-9)
	})

	for _, transport := range []string{"tcp", "websocket"} {
		t.Run("sync/"+transport, func(t *testing.T) {
			// 1,200 messages take three pages of 500.
			code, rep, stderr := bench(t, common(transport, "-scenario", "sync", "-messages", "1200", "-window", "32")...)
			requireVerified(t, code, rep, stderr)
			require.EqualValues(t, 1200, rep["sync_messages"])
			require.EqualValues(t, 1200, rep["total_acked"])
			require.GreaterOrEqual(t, rep["sync_requests"], 3.0)
			require.Greater(t, rep["sync_per_sec"], 0.0)
		})
	}

	for _, transport := range []string{"tcp", "websocket"} {
		t.Run("connect/"+transport, func(t *testing.T) {
			code, rep, stderr := bench(t, common(transport, "-scenario", "connect", "-conns", "20", "-warmup", "100ms", "-duration", "300ms", "-compare-raw")...)
			requireVerified(t, code, rep, stderr)
			require.Greater(t, rep["connect_per_sec"], 0.0)
			require.Greater(t, rep["connect_p99_ms"], 0.0)
			require.Greater(t, rep["raw_per_sec"], 0.0)
			require.NotContains(t, rep, "server_rss_per_conn_bytes", "no -server-pid")
		})
	}
}

func TestSyntheticUsers(t *testing.T) {
	tests := []struct {
		name            string
		checkRecipients bool
		wantCode        int
	}{
		{"server without recipient check", false, exitOK},
		{"server with recipient check", true, exitFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := imtest.NewServer(t, imtest.Options{
				Config:          im.Config{SendRate: -1, GroupAddsPerMinute: -1, GroupAddPolicy: anyoneAdds, Logger: slog.New(slog.DiscardHandler)},
				CheckRecipients: tt.checkRecipients,
			})
			args := append(serverArgs(srv, "tcp"), "-scenario", "direct", "-conns", "2", "-warmup", "0s", "-duration", "300ms", "-synthetic-users", "-jwt-secret", string(srv.Secret), "-quiet")
			code, rep, stderr := bench(t, args...)
			require.Equal(t, tt.wantCode, code, stderr)
			if tt.wantCode == exitOK {
				requireVerified(t, code, rep, stderr)
				return
			}
			require.Positive(t, rep["error_kinds"].(map[string]any)["ERR_USER_NOT_EXIST"])
			require.EqualValues(t, 0, rep["acked"])
		})
	}
}

func TestConnectRegistersSharedUsers(t *testing.T) {
	srv := startServer(t)
	args := append(serverArgs(srv, "tcp"), "-scenario", "connect", "-conns", "6", "-sessions-per-user", "3", "-warmup", "0s", "-duration", "100ms")
	code, rep, stderr := bench(t, args...)
	requireVerified(t, code, rep, stderr)
	require.Contains(t, stderr, "registering 2 users")
}

func TestConnectReportsRefusedTokens(t *testing.T) {
	srv := startServer(t)
	wrong := "not-the-server-secret-k7Qm2vX9pL4s"
	for _, transport := range []string{"tcp", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			code, rep, stderr := bench(t, append(serverArgs(srv, transport), "-scenario", "connect", "-conns", "3", "-warmup", "0s", "-duration", "100ms", "-jwt-secret", wrong)...)
			require.Equal(t, exitFailed, code, stderr)
			require.Equal(t, false, rep["ok"])
			require.EqualValues(t, 3, rep["errors"])
			require.EqualValues(t, 3, rep["error_kinds"].(map[string]any)["auth refused"])
		})
	}
}

func TestRawScenario(t *testing.T) {
	for _, transport := range []string{"tcp", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			code, rep, stderr := bench(t, append([]string{"-scenario", "raw", "-transport", transport, "-conns", "4", "-size", "1000"}, short()...)...)
			requireVerified(t, code, rep, stderr)
			require.Equal(t, "raw", rep["scenario"])
			require.Greater(t, rep["acked_per_sec"], 0.0)
		})
	}
}

// A server that drops or repeats pushes must fail the run, not give a
// number.
func TestFaultyServerFails(t *testing.T) {
	tests := []struct {
		name  string
		fault func(seq int64, to []byte) (drop, dup bool)
		check func(t *testing.T, rep *Report)
	}{
		{"drops", func(seq int64, _ []byte) (bool, bool) { return seq%50 == 7, false }, func(t *testing.T, rep *Report) {
			require.Positive(t, rep.Lost)
			require.Positive(t, rep.Gaps+rep.OutOfOrder+rep.Lost)
		}},
		{"duplicates", func(seq int64, _ []byte) (bool, bool) { return false, seq%50 == 7 }, func(t *testing.T, rep *Report) {
			require.Positive(t, rep.Duplicated)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := startRaw(transportTCP)
			require.NoError(t, err)
			defer rs.close()
			rs.fault = tt.fault
			d := newDialer(transportTCP, rs.addr(), nil)
			defer d.close()
			users := []benchUser{{UserID: "a", Token: "x"}, {UserID: "b", Token: "x"}}
			rep, err := runDirect(context.Background(), target{name: "raw", dialer: d}, users, "f", loadParams{
				conns: 2, window: 4, size: 16, warmup: 0, duration: 300 * time.Millisecond, drain: 300 * time.Millisecond,
				dialParallel: 2, logf: t.Logf,
			})
			require.NoError(t, err)
			require.False(t, rep.OK)
			tt.check(t, rep)
			var out bytes.Buffer
			require.NoError(t, writeTable(&out, rep))
			require.Contains(t, out.String(), "FAIL")
		})
	}
}

func TestBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"remote address", []string{"-addr", "10.1.2.3:8082"}, "not a loopback address"},
		{"remote http", []string{"-http", "http://example.com:8080"}, "not a loopback address"},
		{"odd conns", []string{"-conns", "3"}, "must be even"},
		{"unknown scenario", []string{"-scenario", "nope"}, "-scenario must be"},
		{"transport", []string{"-transport", "udp"}, "-transport must be"},
		{"tiny size", []string{"-size", "4"}, "-size"},
		{"sync compare", []string{"-scenario", "sync", "-compare-raw"}, "-compare-raw applies"},
		{"zero duration", []string{"-duration", "0s"}, "-duration"},
		{"stray argument", []string{"extra"}, "unexpected argument"},
		{"unknown flag", []string{"-bogus"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, func(string) string { return "" }, &stdout, &stderr)
			require.Equal(t, exitUsage, code)
			require.Contains(t, stderr.String(), tt.want)
			require.Empty(t, stdout.String())
		})
	}
}

func TestLoopbackNames(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:1", "localhost:1", "[::1]:1", "127.9.9.9:80"} {
		require.NoError(t, checkLoopback("-addr", ok, false), ok)
	}
	require.NoError(t, checkLoopback("-addr", "ws://localhost:8081/ws", true))
	require.Error(t, checkLoopback("-addr", "wss://127.0.0.1:8081/ws", true), "no TLS")
	require.Error(t, checkLoopback("-addr", "192.168.1.1:80", false))
}

func TestTableShowsRatio(t *testing.T) {
	rep := &Report{Scenario: "direct", Target: "imserver", Transport: "tcp", Conns: 2, Window: 8, Size: 128, DurationSec: 1, AckedPerSec: 50, DeliveredPerSec: 50, OK: true}
	rep.compare(&Report{Scenario: "direct", Target: "raw", Transport: "tcp", AckedPerSec: 200, DeliveredPerSec: 200, OK: true})
	var out bytes.Buffer
	require.NoError(t, writeTable(&out, rep))
	s := out.String()
	require.Contains(t, s, "ratio")
	require.Regexp(t, `acked/s\s+50\s+200\s+0\.250`, s)
	require.Contains(t, s, "PASS")
	require.InDelta(t, 0.25, *rep.Ratio, 1e-12)
}

// anyoneAdds lets bench users, strangers to one another, make groups, as
// imserver's -group-add-anyone does.
func anyoneAdds(context.Context, string, string) error { return nil }
