package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// cfParams is a short load for the centrifuge runs.
func cfParams(t *testing.T) loadParams {
	return loadParams{
		conns: 4, window: 4, size: 64, warmup: 100 * time.Millisecond, duration: 400 * time.Millisecond,
		drain: 10 * time.Second, dialParallel: 4, logf: t.Logf,
	}
}

// requireCFVerified checks a centrifuge run that must have passed.
func requireCFVerified(t *testing.T, rep *Report) {
	t.Helper()
	require.True(t, rep.OK, "%+v", rep)
	require.Zero(t, rep.Errors, "%v", rep.ErrorKinds)
	require.Zero(t, rep.Lost+rep.Duplicated+rep.OutOfOrder+rep.SeqErrors+rep.Gaps+rep.Unexpected)
	require.Positive(t, rep.TotalAcked)
	require.Equal(t, rep.TotalSent, rep.TotalAcked, "every publication answered")
	require.Equal(t, "centrifuge", rep.Target)
	require.Equal(t, transportWS, rep.Transport)
	require.Positive(t, rep.AckedPerSec)
	require.Positive(t, rep.DeliveredPerSec)
	require.Positive(t, rep.DeliverP99Ms)
}

// The direct and group loads against the in-process centrifuge server,
// with and without its history (offsets on every publication): every
// publication is answered and reaches its subscribers exactly once, in
// order.
func TestCentrifugePeer(t *testing.T) {
	for _, history := range []int{0, 1000} {
		cs, err := startCentrifuge("127.0.0.1:0", history)
		require.NoError(t, err)
		t.Run("direct/history="+strconv.Itoa(history), func(t *testing.T) {
			rep, err := runCentrifugeDirect(context.Background(), cfPeer{url: cs.url}, "d", cfParams(t))
			require.NoError(t, err)
			requireCFVerified(t, rep)
		})
		t.Run("direct/open-loop/history="+strconv.Itoa(history), func(t *testing.T) {
			p := cfParams(t)
			p.rate = 300
			rep, err := runCentrifugeDirect(context.Background(), cfPeer{url: cs.url}, "o", p)
			require.NoError(t, err)
			requireCFVerified(t, rep)
			require.LessOrEqual(t, rep.AckedPerSec, 450.0)
		})
		t.Run("group/history="+strconv.Itoa(history), func(t *testing.T) {
			s := groupShape{groups: 2, members: 5, senders: 2}
			rep, err := runCentrifugeGroup(context.Background(), cfPeer{url: cs.url}, s, "g", cfParams(t))
			require.NoError(t, err)
			requireCFVerified(t, rep)
			require.EqualValues(t, 10, rep.Conns)
			// No loss means every message reached the 4 other members;
			// the echo to its sender is left out.
			require.Greater(t, rep.DeliveredPerSec, rep.AckedPerSec)
		})
		cs.close()
	}
}

// A personal channel is its owner's only.
func TestCentrifugePersonalChannel(t *testing.T) {
	cs, err := startCentrifuge("127.0.0.1:0", 0)
	require.NoError(t, err)
	defer cs.close()
	_, err = dialCentrifugeAll(context.Background(), cs.url, []string{"alice"}, []string{cfUserPrefix + "bob"}, 1)
	require.ErrorContains(t, err, "permission denied")
}

// The books catch a peer that loses or repeats publications: the same
// checks as for imserver, fed as a centrifuge connection feeds them.
func TestCentrifugeBooksCatchFaults(t *testing.T) {
	t.Run("direct", func(t *testing.T) {
		l := &ledger{perSide: true}
		for range 3 {
			n := l.sent(0, 0)
			_, ok := l.ack(0, n, 0)
			require.True(t, ok)
		}
		l.delivered(1, 0, 1)
		l.delivered(1, 2, 3)
		l.delivered(1, 2, 3)
		v := l.verify()
		require.EqualValues(t, 1, v.Lost)
		require.EqualValues(t, 1, v.Duplicated)
		require.EqualValues(t, 1, v.Gaps, "seq 2 never seen")
	})
	t.Run("direct/both sides count from 1", func(t *testing.T) {
		l := &ledger{perSide: true}
		for side := range 2 {
			n := l.sent(side, 0)
			l.ack(side, n, 0)
			l.delivered(1-side, n, 1)
		}
		require.Zero(t, l.verify().failures())
	})
	t.Run("group/order per sender", func(t *testing.T) {
		b := newGroupBook(3)
		for range 2 {
			n := b.member(0).sent(0)
			b.member(0).acked(n, 0)
		}
		n := b.member(1).sent(0)
		b.member(1).acked(n, 0)
		// Member 2 gets sender 1's message between sender 0's: fine;
		// then sender 0's in the wrong order: not.
		b.member(2).delivered(0, 0)
		b.member(2).delivered(2, 0)
		b.member(2).delivered(1, 0)
		b.member(1).delivered(1, 0)
		b.member(1).delivered(0, 0)
		b.member(0).delivered(2, 0)
		v := b.verify()
		require.EqualValues(t, 1, v.OutOfOrder)
		require.Zero(t, v.Lost+v.Duplicated+v.SeqErrors+v.Gaps+v.Unexpected)
	})
}

// -compare-centrifuge puts the peer's column beside imserver's and raw's.
func TestCompareCentrifuge(t *testing.T) {
	srv := startServer(t)
	shared := []string{"-users-file", filepath.Join(t.TempDir(), "users"), "-jwt-secret", string(srv.Secret)}
	t.Run("direct", func(t *testing.T) {
		args := append(append(serverArgs(srv, "tcp"), shared...), short("-scenario", "direct", "-conns", "4", "-compare-raw", "-compare-centrifuge", "-centrifuge-history", "100")...)
		code, rep, stderr := bench(t, args...)
		requireVerified(t, code, rep, stderr)
		cf := rep["centrifuge"].(map[string]any)
		require.Equal(t, "centrifuge", cf["target"])
		require.Equal(t, "websocket", cf["transport"])
		require.EqualValues(t, 100, cf["history"])
		require.Equal(t, true, cf["ok"])
		require.Contains(t, rep, "raw")
		require.InDelta(t, rep["acked_per_sec"].(float64)/rep["centrifuge_per_sec"].(float64), rep["centrifuge_ratio"], 1e-9)
	})
	t.Run("group", func(t *testing.T) {
		args := append(append(serverArgs(srv, "websocket"), shared...), short(groupArgs("-compare-centrifuge")...)...)
		code, rep, stderr := bench(t, args...)
		requireVerified(t, code, rep, stderr)
		cf := rep["centrifuge"].(map[string]any)
		require.Equal(t, "group", cf["scenario"])
		require.Equal(t, cf["delivered_per_sec"], rep["centrifuge_per_sec"], "deliveries/s is the headline")
		require.NotContains(t, rep, "raw")
	})
}

func TestCentrifugeTable(t *testing.T) {
	imRep := &Report{Scenario: "group", Target: "imserver", Transport: "tcp", Conns: 10, Groups: 2, Members: 5, Senders: 2, Window: 8, Size: 128, DurationSec: 2, AckedPerSec: 50, DeliveredPerSec: 200, OK: true,
		ServerCPUSec: ptr(0.003), ClientCPUSec: ptr(0.001)}
	imRep.compare(&Report{Scenario: "group", Target: "raw", DurationSec: 2, DeliveredPerSec: 400, OK: true})
	imRep.comparePeer(&Report{Scenario: "group", Target: "centrifuge", DurationSec: 2, DeliveredPerSec: 100, OK: true, CFHistory: 50, ClientCPUSec: ptr(0.002)})
	var out bytes.Buffer
	require.NoError(t, writeTable(&out, imRep))
	s := out.String()
	require.Regexp(t, `imserver +raw +centrifuge +ratio +÷centrifuge`, s)
	require.Regexp(t, `delivered/s +200 +400 +100 +0\.500 +2\.000`, s)
	// Server and imbench CPU together per delivery: 4 ms over 400
	// deliveries; the peer's is all imbench's, 2 ms over 200; raw's is
	// not known here.
	require.Regexp(t, `CPU µs per delivery +10\.0 +- +10\.0`, s)
	require.Contains(t, s, "history of 50 publications")
	require.Contains(t, s, "centrifuge runs inside imbench")
	require.Contains(t, s, "PASS")
	imRep.Centrifuge.CFOwnProcess = true
	out.Reset()
	require.NoError(t, writeTable(&out, imRep))
	require.Contains(t, out.String(), "centrifuge runs in a process of its own")
}

func TestCentrifugeFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-scenario", "connect", "-compare-centrifuge"}, "-compare-centrifuge applies"},
		{[]string{"-compare-centrifuge", "-size", "8"}, "-size 16"},
		{[]string{"-centrifuge-history", "-1"}, "-centrifuge-history"},
		{[]string{"-centrifuge-url", "ws://127.0.0.1:8000/connection/websocket", "-centrifuge-pid", "1"}, "-centrifuge-url applies with -compare-centrifuge"},
		{[]string{"-compare-centrifuge", "-centrifuge-url", "ws://127.0.0.1:8000/connection/websocket"}, "needs -centrifuge-pid"},
		{[]string{"-compare-centrifuge", "-centrifuge-url", "ws://10.1.2.3:8000/connection/websocket", "-centrifuge-pid", "1"}, "not a loopback address"},
		{[]string{"-compare-centrifuge", "-centrifuge-url", "ws://127.0.0.1:8000/connection/websocket", "-centrifuge-pid", "1", "-centrifuge-history", "5"}, "the serving imbench keeps the history"},
		{[]string{"-centrifuge-pid", "1"}, "-centrifuge-pid applies with -centrifuge-url"},
		{[]string{"-serve-centrifuge", "10.1.2.3:8000"}, "not a loopback address"},
	} {
		code, _, stderr := bench(t, tt.args...)
		require.Equal(t, exitUsage, code)
		require.Contains(t, stderr, tt.want)
	}
}

// An imbench serving the peer (-serve-centrifuge) and another comparing
// with it (-centrifuge-url): the peer's CPU time is read from its process,
// not counted in the comparing imbench's.
func TestCentrifugeOwnProcess(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	served := make(chan int, 1)
	go func() {
		served <- run(ctx, []string{"-serve-centrifuge", "127.0.0.1:0"}, func(string) string { return "" }, out, out)
	}()
	var url string
	require.Eventually(t, func() bool {
		m := regexp.MustCompile(`centrifuge peer at (ws://\S+) `).FindStringSubmatch(out.String())
		if m != nil {
			url = m[1]
		}
		return m != nil
	}, 10*time.Second, 10*time.Millisecond, "the peer says where it listens")

	shared := []string{"-users-file", filepath.Join(t.TempDir(), "users"), "-jwt-secret", string(srv.Secret)}
	// The peer runs in this test's process, whose CPU time /proc reports.
	args := append(append(serverArgs(srv, "websocket"), shared...), short(groupArgs("-compare-centrifuge",
		"-centrifuge-url", url, "-centrifuge-pid", strconv.Itoa(os.Getpid()))...)...)
	code, rep, stderr := bench(t, args...)
	requireVerified(t, code, rep, stderr)
	cf := rep["centrifuge"].(map[string]any)
	require.Equal(t, true, cf["ok"])
	require.Contains(t, cf, "server_cpu_sec", "the peer's CPU time, from its process")
	require.Contains(t, cf, "server_rss_bytes")
	require.Equal(t, true, cf["own_process"])

	cancel()
	select {
	case code := <-served:
		require.Equal(t, exitOK, code)
	case <-time.After(10 * time.Second):
		t.Fatal("the serving imbench did not stop when interrupted")
	}
}

// lockedBuffer is a bytes.Buffer that one goroutine writes while another
// reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
