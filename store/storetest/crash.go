package storetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
)

// CrashStore is the part of a store that RunCrash uses: messages and
// conversations, which is where durability and dedup live.
type CrashStore interface {
	im.MessageStore
	im.ConversationStore
}

// CrashHarness opens a store for RunCrash, in the parent process and in the
// children it kills.
type CrashHarness struct {
	// Location, if set, is called once, in the parent process, and returns
	// where the store keeps its data: a directory, a file, a DSN. Each
	// Open gets it. Nil means a new t.TempDir().
	Location func(t *testing.T) string
	// Open opens the store at loc, creating it the first time, and
	// arranges its release with t.Cleanup. It runs in the parent process
	// after each crash, on a subtest's t, and, unless OpenChild is set, in
	// the child process that is then killed. Required.
	Open func(t *testing.T, loc string) CrashStore
	// OpenChild, if set, opens the store in the child process instead of
	// Open: a store arms its own failpoints there (hooks that kill the
	// process at chosen points of a commit, or make a write fail).
	OpenChild func(t *testing.T, loc string) CrashStore
	// Check, if set, checks a store's own invariants (file consistency,
	// counters, indexes) on the store just reopened after a crash, before
	// RunCrash reads anything from it.
	Check func(ctx context.Context, s CrashStore) error
	// Cycles bounds the number of kills; zero means 500. Duration bounds
	// the time RunCrash takes; zero means 25 s, or 5 s with -test.short.
	// The environment variables CrashCyclesEnv and CrashDurationEnv
	// override both, to run longer than CI does.
	Cycles   int
	Duration time.Duration
}

// The environment variables that set CrashHarness.Cycles and
// CrashHarness.Duration (a time.ParseDuration string) for a run, e.g.
//
//	STORETEST_CRASH_CYCLES=100000 STORETEST_CRASH_DURATION=10m go test -run Crash ./store/bolt
const (
	CrashCyclesEnv   = "STORETEST_CRASH_CYCLES"
	CrashDurationEnv = "STORETEST_CRASH_DURATION"
)

// How the parent tells a re-executed test binary to be a load generator.
const (
	crashChildEnv  = "STORETEST_CRASH_CHILD" // the test's name
	crashLocEnv    = "STORETEST_CRASH_LOCATION"
	crashCycleEnv  = "STORETEST_CRASH_CYCLE"
	crashResendEnv = "STORETEST_CRASH_RESEND" // file of acknowledged keys to send again
	crashSeedEnv   = "STORETEST_CRASH_SEED"
)

const (
	crashWorkers  = 4
	crashSenders  = 6
	crashMaxBatch = 24
	// The parent kills a child at a random time up to this long after it
	// starts, which lands kills in its Open (recovery) too.
	crashMaxRun = 800 * time.Millisecond
	// A child that was never killed stops by itself after this long.
	crashChildLimit = time.Minute
	crashPage       = 500 // messages read per call when checking
	crashResendKeys = 300 // acknowledged keys a child gets to send again
	crashRecheck    = 200 // older keys sent again in each check
	crashMaxRepeat  = 2000
)

// crashConvs returns the conversations the load goes to: the first
// crashBusy busy, with long histories, the rest quiet, with a message now
// and then, which a store may keep somewhere else for a long time.
func crashConvs() []string {
	out := []string{"group_crash0", "group_crash1", "group_crash2", "group_crash3", "group_crash4", "single_u0_u1"}
	for i := range crashQuiet {
		out = append(out, fmt.Sprintf("group_quiet%02d", i))
	}
	return out
}

const (
	crashBusy  = 6
	crashQuiet = 24
	// crashUser is one of every conversation's members.
	crashUser = "u0"
)

// crashMembers returns every conversation's members.
func crashMembers() []string { return []string{crashUser, "u1", "u2", "u3", "u4", "u5"} }

// RunCrash checks that a store keeps every message it acknowledged, and
// nothing else, when its process is killed at any point: in the middle of
// a commit, of a background merge, of recovery.
//
// It re-executes the test binary (os.Args[0]) with -test.run set to the
// calling test and an environment variable that makes RunCrash, called
// again there, a load generator: it opens the store, and several
// goroutines append batches to a few conversations, resending some
// (sender, client_msg_id) pairs already acknowledged, in this run or an
// earlier one, and writing each result to the parent once
// AppendMessages has returned. The parent kills the child with SIGKILL at a
// random time (or the store's own failpoints, armed by OpenChild, kill it
// first), reopens the store and requires that:
//
//   - every acknowledged message is there, unchanged, at its seq, and a
//     message seen after one crash is still there after the next;
//   - each conversation's seqs run from 1 to its Conversation MaxSeq
//     without a gap, and every stored message is one that was sent, once;
//   - a batch whose AppendMessages failed left nothing behind;
//   - sending an acknowledged (sender, client_msg_id) again gives
//     Duplicate with the original seq, and changes no MaxSeq;
//   - h.Check, if set, passes.
//
// Then it starts the next child on the same data, cycle after cycle,
// until h.Cycles or h.Duration runs out. Each check is a subtest, Cycle1,
// Cycle2, …, whose t is the one Open gets, so its cleanups close the store
// before the next child starts.
//
// A kill only ends the process: what the store had written to the
// operating system survives, so this proves crash safety, not safety
// against power loss (which depends on fsync, and on disks honouring it).
// RunCrash runs only where a process can be sent SIGKILL (Linux, macOS, the
// BSDs); elsewhere it skips.
//
// The calling test must run RunCrash in every process, before anything
// that should not run in the child (the child runs the same test function,
// with the same flags -test.run selects it by).
func RunCrash(t *testing.T, h CrashHarness) {
	t.Helper()
	if h.Open == nil {
		t.Fatal("storetest: CrashHarness.Open is nil")
	}
	if name := os.Getenv(crashChildEnv); name != "" {
		if name != t.Name() {
			t.Skipf("storetest: a crash child of %s", name)
		}
		runCrashChild(t, h)
		return
	}
	switch runtime.GOOS {
	case "linux", "darwin", "freebsd", "netbsd", "openbsd", "dragonfly", "solaris", "illumos", "aix":
	default:
		t.Skipf("storetest: RunCrash kills child processes with SIGKILL, which %s does not have", runtime.GOOS)
	}
	runCrashParent(t, h)
}

// crashKey is a dedup key: (sender, client_msg_id).
type crashKey struct{ sender, cmid string }

// crashMessage returns the message the load sends for k: every field is a
// function of k, so that a stored message can be checked without knowing
// whether it was acknowledged, and a resend is the same message.
func crashMessage(k crashKey) im.Message {
	f := fnv.New64a()
	io.WriteString(f, k.sender)
	f.Write([]byte{0})
	io.WriteString(f, k.cmid)
	h := f.Sum64()
	size := int(h>>8) % 400
	if h%50 == 0 {
		size = 8<<10 + int(h>>16)%(24<<10) // now and then one larger than a page
	}
	content := make([]byte, size)
	x := h | 1
	for i := range content {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		content[i] = byte(x)
	}
	var conv string // one of crashConvs
	switch {
	case h%16 == 0:
		conv = fmt.Sprintf("group_quiet%02d", (h>>32)%crashQuiet)
	case h%crashBusy == crashBusy-1:
		conv = "single_u0_u1"
	default:
		conv = fmt.Sprintf("group_crash%d", h%crashBusy)
	}
	return im.Message{
		ConversationID: conv,
		ServerID:       "srv-" + k.sender + "-" + k.cmid,
		SenderID:       k.sender,
		ReceiverID:     "peer",
		ClientMsgID:    k.cmid,
		Type:           im.TextMessage,
		Content:        content,
		Extra:          `{"h":"` + strconv.FormatUint(h, 16) + `"}`,
		SendTime:       int64(h >> 24),
		CreatedAt:      baseTime().Add(time.Duration(h%1_000_000) * time.Microsecond),
	}
}

// messageHash digests every field of m, for the child to report and the
// parent to compare.
func messageHash(m im.Message) uint64 {
	f := fnv.New64a()
	fmt.Fprintf(f, "%s\x00%d\x00%s\x00%s\x00%s\x00%s\x00%d\x00%q\x00%s\x00%s\x00%d\x00%d",
		m.ConversationID, m.Seq, m.ServerID, m.SenderID, m.ReceiverID, m.ClientMsgID, m.Type,
		m.Content, m.Extra, m.AttachedInfo, m.SendTime, m.CreatedAt.UnixMicro())
	return f.Sum64()
}

// The child's report, a line each, on file descriptor 3:
//
//	o                                                    the store is open
//	a <sender> <cmid> <conv> <seq> <server id> <dup> <hash>  acknowledged
//	f <sender> <cmid>                                    AppendMessages failed
//	e <sender> <cmid> <error>                            the request was refused
//
// The hash is messageHash of the message AppendMessages returned.
//
// The ids the load uses hold no spaces. A line cut short by the kill is
// ignored.

func runCrashChild(t *testing.T, h CrashHarness) {
	report := os.NewFile(3, "crash-report")
	if report == nil {
		t.Fatal("storetest: crash child without its report pipe")
	}
	// The parent holds the other end of stdin: if it dies, so does this
	// process, rather than loading the store for nobody.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	cycle, _ := strconv.Atoi(os.Getenv(crashCycleEnv))
	seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	resend, err := readCrashKeys(os.Getenv(crashResendEnv))
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	open := h.Open
	if h.OpenChild != nil {
		open = h.OpenChild
	}
	s := open(t, os.Getenv(crashLocEnv))
	var mu sync.Mutex
	write := func(b []byte) {
		mu.Lock()
		defer mu.Unlock()
		if _, err := report.Write(b); err != nil {
			os.Exit(4) // the parent is gone
		}
	}
	write([]byte("o\n"))

	ctx := t.Context()
	end := time.Now().Add(crashChildLimit)
	var wg sync.WaitGroup
	for w := range crashWorkers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			var mine []crashKey // acknowledged to this worker
			n := 0
			var line []byte
			for time.Now().Before(end) {
				size := 1 + rng.IntN(crashMaxBatch)
				keys := make([]crashKey, 0, size)
				batch := make([]im.AppendRequest, 0, size)
				for range size {
					var k crashKey
					switch r := rng.IntN(100); {
					case r < 6 && len(mine) > 0:
						k = mine[rng.IntN(len(mine))]
					case r < 10 && len(resend) > 0:
						k = resend[rng.IntN(len(resend))]
					case r < 13 && len(keys) > 0:
						k = keys[rng.IntN(len(keys))] // twice in one batch
					default:
						k = crashKey{"u" + strconv.Itoa(rng.IntN(crashSenders)), fmt.Sprintf("c%d.w%d.%d", cycle, w, n)}
						n++
					}
					keys = append(keys, k)
					batch = append(batch, im.AppendRequest{Message: crashMessage(k), Members: crashMembers()})
				}
				res, err := s.AppendMessages(ctx, batch)
				line = line[:0]
				for i, k := range keys {
					switch {
					case err != nil:
						line = fmt.Appendf(line, "f %s %s\n", k.sender, k.cmid)
					case i >= len(res):
						line = fmt.Appendf(line, "e %s %s %d results for %d requests\n", k.sender, k.cmid, len(res), len(keys))
					case res[i].Err != nil:
						line = fmt.Appendf(line, "e %s %s %q\n", k.sender, k.cmid, res[i].Err.Error())
					default:
						m := res[i].Message
						line = fmt.Appendf(line, "a %s %s %s %d %s %t %x\n", k.sender, k.cmid, m.ConversationID, m.Seq, m.ServerID, res[i].Duplicate, messageHash(m))
						mine = append(mine, k)
					}
				}
				write(line)
			}
		})
	}
	wg.Wait()
}

func readCrashKeys(path string) ([]crashKey, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []crashKey
	for l := range strings.Lines(string(b)) {
		if sender, cmid, ok := strings.Cut(strings.TrimSpace(l), " "); ok {
			out = append(out, crashKey{sender, cmid})
		}
	}
	return out, nil
}

// crashAck is what the parent knows of a stored message.
type crashAck struct {
	conv string
	seq  int64
}

type convSeq struct {
	conv string
	seq  int64
}

// crashState is the parent's knowledge, carried from cycle to cycle.
type crashState struct {
	acked  map[crashKey]crashAck // acknowledged, or seen after a crash
	at     map[convSeq]crashKey  // the reverse of acked
	failed map[crashKey]bool     // AppendMessages failed, never acknowledged
	fresh  []crashKey            // acknowledged or seen first in this cycle

	cycles, selfKills, opened, acks, dups, fails, seen, rechecked int
}

func runCrashParent(t *testing.T, h CrashHarness) {
	cycles, dur := h.Cycles, h.Duration
	if cycles <= 0 {
		cycles = 500
	}
	if dur <= 0 {
		dur = 25 * time.Second
		if testing.Short() {
			dur = 5 * time.Second
		}
	}
	if v := os.Getenv(CrashCyclesEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("storetest: %s=%q: want a positive number", CrashCyclesEnv, v)
		}
		cycles = n
	}
	if v := os.Getenv(CrashDurationEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("storetest: %s=%q: want a positive duration such as 10m", CrashDurationEnv, v)
		}
		dur = d
	}
	var loc string
	if h.Location != nil {
		loc = h.Location(t)
	} else {
		loc = t.TempDir()
	}
	resendPath := t.TempDir() + string(os.PathSeparator) + "resend"
	seed := rand.Uint64()
	t.Logf("storetest: crash seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	st := &crashState{
		acked:  make(map[crashKey]crashAck),
		at:     make(map[convSeq]crashKey),
		failed: make(map[crashKey]bool),
	}
	start := time.Now()
	for cycle := 1; cycle <= cycles && time.Since(start) < dur; cycle++ {
		// One kill in four counts from the child's start, and lands in its
		// Open (recovery) as often as not; the rest from the end of Open.
		fromOpen := rng.IntN(4) != 0
		lines, self, out, err := crashChild(t, loc, cycle, rng.Uint64(), resendPath, time.Duration(rng.Int64N(int64(crashMaxRun))), fromOpen)
		if err != nil {
			t.Fatalf("storetest: crash cycle %d: %v\nchild output:\n%s", cycle, err, out)
		}
		st.cycles++
		if self {
			st.selfKills++
		}
		st.fresh = st.fresh[:0]
		if !t.Run(fmt.Sprintf("Cycle%d", cycle), func(t *testing.T) {
			st.record(t, lines)
			if t.Failed() {
				t.Logf("child output:\n%s", out)
				return
			}
			st.verify(t, h, loc, rng)
		}) {
			return
		}
		if err := st.writeResend(resendPath, rng); err != nil {
			t.Fatalf("storetest: %v", err)
		}
	}
	t.Logf("storetest: %d crash cycles in %v: %d kills by the test, %d by the store's failpoints; %d child opens completed; "+
		"%d acknowledged results (%d duplicates), %d failed appends; %d stored messages checked, %d acknowledged keys sent again",
		st.cycles, time.Since(start).Round(time.Millisecond), st.cycles-st.selfKills, st.selfKills, st.opened,
		st.acks, st.dups, st.fails, st.seen, st.rechecked)
}

// crashChild runs one load generator and kills it killAfter after its
// start, or after its store is open if fromOpen, unless it dies first (a
// failpoint of the store). It returns the complete lines it reported,
// whether it died by itself, and its output.
func crashChild(t *testing.T, loc string, cycle int, seed uint64, resend string, killAfter time.Duration, fromOpen bool) (lines []string, self bool, out []byte, err error) {
	cmd := exec.Command(os.Args[0], "-test.run="+runPattern(t.Name()), "-test.count=1")
	cmd.Env = append(os.Environ(),
		crashChildEnv+"="+t.Name(),
		crashLocEnv+"="+loc,
		crashCycleEnv+"="+strconv.Itoa(cycle),
		crashSeedEnv+"="+strconv.FormatUint(seed, 10),
	)
	if _, err := os.Stat(resend); err == nil {
		cmd.Env = append(cmd.Env, crashResendEnv+"="+resend)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, false, nil, err
	}
	defer pr.Close()
	cmd.ExtraFiles = []*os.File{pw}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		pw.Close()
		return nil, false, nil, err
	}
	defer stdin.Close()
	var output tail
	cmd.Stdout, cmd.Stderr = &output, &output
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return nil, false, nil, err
	}
	read := make(chan []string, 1)
	opened := make(chan struct{})
	go func() {
		var ls []string
		r := bufio.NewReaderSize(pr, 64<<10)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				break // a last line without its newline was cut short
			}
			if l == "o\n" {
				close(opened)
			}
			ls = append(ls, l[:len(l)-1])
		}
		read <- ls
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	if fromOpen {
		select {
		case <-opened:
		case err = <-waited:
			lines = <-read
			return crashEnded(lines, true, output.bytes(), err)
		case <-time.After(crashChildLimit):
			_ = cmd.Process.Kill()
			<-waited
			<-read
			return nil, false, output.bytes(), fmt.Errorf("the store did not open within %v", crashChildLimit)
		}
	}
	timer := time.NewTimer(killAfter)
	defer timer.Stop()
	select {
	case <-timer.C:
		if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return nil, false, output.bytes(), fmt.Errorf("kill: %w", err)
		}
		err = <-waited
	case err = <-waited:
		self = true
	}
	lines = <-read
	return crashEnded(lines, self, output.bytes(), err)
}

// crashEnded checks how a child ended: by a signal, as it should.
func crashEnded(lines []string, self bool, out []byte, err error) ([]string, bool, []byte, error) {
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != -1 {
		// Not ended by a signal: it failed, or stopped by itself.
		return nil, false, out, fmt.Errorf("the child was not killed but ended with %v", err)
	}
	return lines, self, out, nil
}

// runPattern is a -test.run pattern that selects exactly the test name.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// tail keeps the last 64 KiB written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - 64<<10; over > 0 {
		w.buf = slices.Delete(w.buf, 0, over)
	}
	return len(p), nil
}

func (w *tail) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf)
}

// record takes in a child's report, checking that its results agree with
// each other and with what earlier children were told.
func (st *crashState) record(t *testing.T, lines []string) {
	problems := 0
	fail := func(format string, args ...any) {
		t.Helper()
		if problems++; problems <= 20 {
			t.Errorf(format, args...)
		}
	}
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) == 1 && f[0] == "o":
			st.opened++
		case len(f) == 3 && f[0] == "f":
			k := crashKey{f[1], f[2]}
			st.fails++
			if _, ok := st.acked[k]; !ok {
				st.failed[k] = true
			}
		case len(f) >= 3 && f[0] == "e":
			fail("AppendMessages refused valid request (%s, %s): %s", f[1], f[2], strings.Join(f[3:], " "))
		case len(f) == 8 && f[0] == "a":
			k := crashKey{f[1], f[2]}
			seq, err1 := strconv.ParseInt(f[4], 10, 64)
			dup, err2 := strconv.ParseBool(f[6])
			hash, err3 := strconv.ParseUint(f[7], 16, 64)
			if err := errors.Join(err1, err2, err3); err != nil {
				fail("child report %q: %v", l, err)
				continue
			}
			st.acks++
			if dup {
				st.dups++
			}
			want := crashMessage(k)
			want.Seq = seq
			if f[3] != want.ConversationID || f[5] != want.ServerID || hash != messageHash(want) {
				fail("AppendMessages for (%s, %s) returned %s/%d, not the message sent", k.sender, k.cmid, f[3], seq)
				continue
			}
			st.learn(fail, k, crashAck{f[3], seq}, dup, "acknowledged")
		default:
			fail("child report %q: malformed", l)
		}
	}
}

// learn records that k is stored at a; dup says the store called it a
// duplicate.
func (st *crashState) learn(fail func(string, ...any), k crashKey, a crashAck, dup bool, how string) {
	if prev, ok := st.acked[k]; ok {
		if prev != a {
			fail("(%s, %s) %s at %s/%d, but it was stored at %s/%d", k.sender, k.cmid, how, a.conv, a.seq, prev.conv, prev.seq)
		} else if !dup && how == "acknowledged" {
			fail("(%s, %s) acknowledged as new at %s/%d again: stored twice", k.sender, k.cmid, a.conv, a.seq)
		}
		return
	}
	if other, ok := st.at[convSeq(a)]; ok && other != k {
		fail("(%s, %s) %s at %s/%d, where (%s, %s) was stored", k.sender, k.cmid, how, a.conv, a.seq, other.sender, other.cmid)
		return
	}
	st.acked[k] = a
	st.at[convSeq(a)] = k
	delete(st.failed, k)
	st.fresh = append(st.fresh, k)
}

// verify reopens the store after a crash and checks it against st.
func (st *crashState) verify(t *testing.T, h CrashHarness, loc string, rng *rand.Rand) {
	ctx := t.Context()
	s := h.Open(t, loc)
	if s == nil {
		t.Fatal("storetest: CrashHarness.Open returned nil")
	}
	if h.Check != nil {
		if err := h.Check(ctx, s); err != nil {
			t.Fatalf("Check after the crash: %v", err)
		}
	}
	problems := 0
	fail := func(format string, args ...any) {
		t.Helper()
		if problems++; problems <= 20 {
			t.Errorf(format, args...)
		}
	}

	found := make(map[crashKey]crashAck)
	maxSeq := make(map[string]int64)
	for _, conv := range crashConvs() {
		c, err := s.Conversation(ctx, conv)
		switch {
		case errors.Is(err, im.ErrNotFound):
		case err != nil:
			t.Fatalf("Conversation(%q): %v", conv, err)
		default:
			maxSeq[conv] = c.MaxSeq
		}
		want := int64(1)
		for {
			ms, err := s.Messages(ctx, conv, want, 0, crashPage)
			if err != nil {
				t.Fatalf("Messages(%q, %d): %v", conv, want, err)
			}
			for _, m := range ms {
				if m.Seq != want {
					t.Fatalf("%s: seq %d where %d should be: a gap", conv, m.Seq, want)
				}
				want++
				k := crashKey{m.SenderID, m.ClientMsgID}
				sent := crashMessage(k)
				sent.Seq = m.Seq
				if d := messageDiff(m, sent); d != "" {
					fail("%s/%d is not the message sent: %s", conv, m.Seq, d)
					continue
				}
				if prev, ok := found[k]; ok {
					fail("(%s, %s) stored twice: at %s/%d and %s/%d", k.sender, k.cmid, prev.conv, prev.seq, conv, m.Seq)
					continue
				}
				found[k] = crashAck{conv, m.Seq}
				st.seen++
			}
			if len(ms) < crashPage {
				break
			}
		}
		if got := want - 1; got != maxSeq[conv] {
			fail("%s: Conversation MaxSeq %d, but messages 1 to %d", conv, maxSeq[conv], got)
		}
		if n := min(maxSeq[conv], 5); n > 0 {
			last, err := s.MessagesBefore(ctx, conv, 0, int(n))
			if err != nil {
				t.Fatalf("MessagesBefore(%q): %v", conv, err)
			}
			if got := seqs(last); !slices.Equal(got, seqRange(maxSeq[conv]-n+1, maxSeq[conv])) {
				fail("%s: MessagesBefore(0, %d) gives seqs %v with MaxSeq %d", conv, n, got, maxSeq[conv])
			}
		}
	}
	uc, err := s.UserConversations(ctx, crashUser)
	if err != nil {
		t.Fatalf("UserConversations: %v", err)
	}
	listed := make(map[string]int64)
	for _, c := range uc {
		listed[c.ID] = c.MaxSeq
	}
	for conv, n := range maxSeq {
		if got, ok := listed[conv]; !ok || got != n {
			fail("UserConversations(%q) lists %s with MaxSeq %d (listed: %t), want %d", crashUser, conv, got, ok, n)
		}
	}

	lost := 0
	for k, a := range st.acked {
		f, ok := found[k]
		switch {
		case !ok:
			if lost++; lost <= 10 {
				fail("(%s, %s), acknowledged at %s/%d, is lost", k.sender, k.cmid, a.conv, a.seq)
			}
		case f != a:
			fail("(%s, %s), acknowledged at %s/%d, is at %s/%d", k.sender, k.cmid, a.conv, a.seq, f.conv, f.seq)
		}
	}
	if lost > 0 {
		fail("%d acknowledged messages lost in all", lost)
	}
	for k := range st.failed {
		if f, ok := found[k]; ok {
			fail("(%s, %s) is stored at %s/%d, but the AppendMessages that sent it failed", k.sender, k.cmid, f.conv, f.seq)
		}
	}
	if t.Failed() {
		return
	}
	// The messages in flight when the child died are known now: they must
	// stay.
	for k, a := range found {
		st.learn(fail, k, a, true, "found")
	}

	// Dedup: every key first known in this cycle, and some older ones.
	keys := slices.Clone(st.fresh)
	if len(keys) > crashMaxRepeat {
		rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		keys = keys[:crashMaxRepeat]
	}
	all := make([]crashKey, 0, len(st.acked))
	for k := range st.acked {
		all = append(all, k)
	}
	slices.SortFunc(all, func(a, b crashKey) int { return strings.Compare(a.sender+"\x00"+a.cmid, b.sender+"\x00"+b.cmid) })
	for range min(crashRecheck, len(all)) {
		keys = append(keys, all[rng.IntN(len(all))])
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		batch := make([]im.AppendRequest, n)
		for i, k := range keys[:n] {
			batch[i] = im.AppendRequest{Message: crashMessage(k), Members: crashMembers()}
		}
		res, err := s.AppendMessages(ctx, batch)
		if err != nil {
			t.Fatalf("AppendMessages of acknowledged messages: %v", err)
		}
		for i, k := range keys[:n] {
			a := st.acked[k]
			want := crashMessage(k)
			want.Seq = a.seq
			if i >= len(res) || res[i].Err != nil || !res[i].Duplicate {
				fail("(%s, %s), stored at %s/%d, sent again: not a duplicate", k.sender, k.cmid, a.conv, a.seq)
			} else if d := messageDiff(res[i].Message, want); d != "" {
				fail("(%s, %s) sent again: the duplicate's message: %s", k.sender, k.cmid, d)
			}
		}
		st.rechecked += n
		keys = keys[n:]
	}
	for conv, n := range maxSeq {
		if c, err := s.Conversation(ctx, conv); err != nil || c.MaxSeq != n {
			fail("%s: after duplicates, Conversation = %+v, %v; want MaxSeq %d", conv, c, err, n)
		}
	}
}

// writeResend writes a sample of the acknowledged keys for the next child
// to send again.
func (st *crashState) writeResend(path string, rng *rand.Rand) error {
	var b strings.Builder
	n := 0
	for k := range st.acked { // map order: a different sample each time
		if n == crashResendKeys {
			break
		}
		if rng.IntN(2) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s %s\n", k.sender, k.cmid)
		n++
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}
