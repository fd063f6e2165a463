package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imtest"
)

// groupArgs is a small group layout: 2 groups of 5 members, 2 senders in
// each.
func groupArgs(args ...string) []string {
	return append([]string{"-scenario", "group", "-groups", "2", "-members", "5", "-senders", "2"}, args...)
}

func TestGroupAgainstImserver(t *testing.T) {
	srv := startServer(t)
	// The runs share their users, so later runs' members also belong to
	// the groups of earlier runs, which have history.
	shared := []string{"-users-file", filepath.Join(t.TempDir(), "users"), "-jwt-secret", string(srv.Secret)}
	common := func(transport string, args ...string) []string {
		return append(append(serverArgs(srv, transport), shared...), args...)
	}

	for _, transport := range []string{"tcp", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			code, rep, stderr := bench(t, common(transport, short(groupArgs("-window", "4", "-size", "64")...)...)...)
			requireVerified(t, code, rep, stderr)
			require.Equal(t, "group", rep["scenario"])
			require.Equal(t, transport, rep["transport"])
			require.EqualValues(t, 10, rep["conns"])
			require.EqualValues(t, 2, rep["groups"])
			require.EqualValues(t, 5, rep["members"])
			require.EqualValues(t, 2, rep["senders"])
			require.Greater(t, rep["acked_per_sec"], 0.0)
			require.Greater(t, rep["delivered_per_sec"], rep["acked_per_sec"], "each message reaches 4 members")
			require.Greater(t, rep["ack_p99_ms"], 0.0)
			require.Greater(t, rep["deliver_p99_ms"], 0.0)
			require.Greater(t, rep["total_acked"], 0.0)
			require.NotContains(t, rep, "ratio")
			require.Contains(t, stderr, "creating 2 group(s) of 5 members")
		})
	}

	t.Run("open-loop", func(t *testing.T) {
		code, rep, stderr := bench(t, common("tcp", short(groupArgs("-rate", "200", "-quiet")...)...)...)
		requireVerified(t, code, rep, stderr)
		require.Empty(t, stderr, "-quiet")
		require.EqualValues(t, 200, rep["rate"])
		require.Greater(t, rep["acked_per_sec"], 0.0)
		require.LessOrEqual(t, rep["acked_per_sec"], 300.0, "the rate is the total over all senders")
	})

	t.Run("compare-raw", func(t *testing.T) {
		code, rep, stderr := bench(t, common("websocket", short(groupArgs("-compare-raw")...)...)...)
		requireVerified(t, code, rep, stderr)
		raw := rep["raw"].(map[string]any)
		require.Equal(t, "raw", raw["target"])
		require.Equal(t, "group", raw["scenario"])
		require.EqualValues(t, 0, raw["lost"])
		require.Equal(t, true, raw["ok"])
		require.Greater(t, rep["raw_per_sec"], 0.0)
		require.Equal(t, raw["delivered_per_sec"], rep["raw_per_sec"], "deliveries/s is the headline")
		require.InDelta(t, rep["delivered_per_sec"].(float64)/rep["raw_per_sec"].(float64), rep["ratio"], 1e-9)
	})
}

func TestGroupSyntheticUsers(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{SendRate: -1, GroupAddsPerMinute: -1, GroupAddPolicy: anyoneAdds, Logger: slog.New(slog.DiscardHandler)}})
	args := append(serverArgs(srv, "tcp"), groupArgs("-warmup", "0s", "-duration", "300ms", "-synthetic-users", "-jwt-secret", string(srv.Secret), "-quiet")...)
	code, rep, stderr := bench(t, args...)
	requireVerified(t, code, rep, stderr)
}

// rawGroups makes the groups of shape on rs: group i is "g<i>", its
// members "g<i>-m<j>".
func rawGroups(rs *rawServer, s groupShape) []benchGroup {
	groups := make([]benchGroup, s.groups)
	for i := range groups {
		g := &groups[i]
		g.id = fmt.Sprintf("g%d", i)
		var ids []string
		for j := range s.members {
			u := benchUser{UserID: fmt.Sprintf("g%d-m%d", i, j), Token: "x"}
			g.members = append(g.members, u)
			ids = append(ids, u.UserID)
		}
		rs.setGroup(g.id, ids)
	}
	return groups
}

// runRawGroup runs a short group load of shape against a raw server with
// fault.
func runRawGroup(t *testing.T, transport string, s groupShape, fault func(seq int64, to []byte) (drop, dup bool)) *Report {
	t.Helper()
	rs, err := startRaw(transport)
	require.NoError(t, err)
	defer rs.close()
	rs.fault = fault
	d := newDialer(transport, rs.addr(), nil)
	defer d.close()
	rep, err := runGroup(context.Background(), target{name: "raw", dialer: d}, rawGroups(rs, s), s, "f", loadParams{
		window: 4, size: 16, warmup: 0, duration: 300 * time.Millisecond, drain: 2 * time.Second,
		dialParallel: 4, logf: t.Logf,
	})
	require.NoError(t, err)
	return rep
}

func TestGroupRawProbe(t *testing.T) {
	for _, transport := range []string{"tcp", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			rep := runRawGroup(t, transport, groupShape{groups: 2, members: 5, senders: 2}, nil)
			require.True(t, rep.OK, "%+v", rep)
			require.Zero(t, rep.Errors)
			require.Positive(t, rep.TotalAcked)
			require.Greater(t, rep.DeliveredPerSec, rep.AckedPerSec)
			require.Equal(t, 10, rep.Conns)
		})
	}
}

// A server that loses or repeats a single delivery to one member must
// fail the run, and be counted exactly.
func TestFaultyServerFailsGroup(t *testing.T) {
	tests := []struct {
		name           string
		fault          func(seq int64, to []byte) (drop, dup bool)
		lost, repeated int64
	}{
		// Seq 5 of group 0 is sent by member 0 or 1, never by member 3.
		{"drops one delivery", func(seq int64, to []byte) (bool, bool) {
			return seq == 5 && string(to) == "g0-m3", false
		}, 1, 0},
		{"duplicates one delivery", func(seq int64, to []byte) (bool, bool) {
			return false, seq == 5 && string(to) == "g1-m4"
		}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := runRawGroup(t, transportTCP, groupShape{groups: 2, members: 5, senders: 2}, tt.fault)
			require.False(t, rep.OK)
			require.Equal(t, tt.lost, rep.Lost)
			require.Equal(t, tt.repeated, rep.Duplicated)
			require.Zero(t, rep.OutOfOrder+rep.SeqErrors+rep.Gaps+rep.Unexpected+rep.Errors)
			var out bytes.Buffer
			require.NoError(t, writeTable(&out, rep))
			require.Contains(t, out.String(), "FAIL")
		})
	}
}

func TestGroupFlags(t *testing.T) {
	getenv := func(string) string { return "" }
	c, err := parseConfig(groupArgs(), getenv, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, 10, c.Conns, "one connection per member")
	c, err = parseConfig(groupArgs("-conns", "10"), getenv, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, 10, c.Conns)
	c, err = parseConfig([]string{"-scenario", "group"}, getenv, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, config{Groups: 1, Members: 1000, Senders: 10, Conns: 1000}, config{Groups: c.Groups, Members: c.Members, Senders: c.Senders, Conns: c.Conns}, "defaults")

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"conns disagree", groupArgs("-conns", "9"), "leave -conns out"},
		{"no groups", groupArgs("-groups", "0"), "-groups must be"},
		{"one member", groupArgs("-members", "1"), "-members must be"},
		{"no senders", groupArgs("-senders", "0"), "-senders must be"},
		{"more senders than members", groupArgs("-senders", "6"), "-senders must be"},
		{"too many connections", groupArgs("-groups", "100000", "-members", "1000"), "at most"},
		{"groups outside group", []string{"-scenario", "direct", "-groups", "2"}, "-groups applies to -scenario group only"},
		{"senders outside group", []string{"-scenario", "connect", "-senders", "2"}, "-senders applies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, getenv, &stdout, &stderr)
			require.Equal(t, exitUsage, code)
			require.Contains(t, stderr.String(), tt.want)
			require.Empty(t, stdout.String())
		})
	}
}

func TestGroupTable(t *testing.T) {
	rep := &Report{Scenario: "group", Target: "imserver", Transport: "tcp", Conns: 10, Groups: 2, Members: 5, Senders: 2, Window: 8, Size: 128, DurationSec: 1, AckedPerSec: 50, DeliveredPerSec: 200, OK: true}
	rep.compare(&Report{Scenario: "group", Target: "raw", Transport: "tcp", AckedPerSec: 100, DeliveredPerSec: 400, OK: true})
	var out bytes.Buffer
	require.NoError(t, writeTable(&out, rep))
	s := out.String()
	require.Contains(t, s, "2 groups of 5 members")
	require.Regexp(t, `delivered/s\s+200\s+400\s+0\.500`, s)
	require.Contains(t, s, "PASS: every acknowledged message reached every other member")
	require.InDelta(t, 0.5, *rep.Ratio, 1e-12)
}
