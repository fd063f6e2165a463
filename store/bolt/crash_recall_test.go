package bolt_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/store/storetest"
)

// The crash test of read states and recall: a child process appends,
// recalls and sends receipts, reporting each call that returned, and is
// killed with SIGKILL, by the parent at a random time or by a failpoint
// (openArmed) at a chosen point of a commit; the parent reopens the store
// and requires that Check passes and that everything acknowledged is
// there: every sender has read each of her acknowledged messages, every
// acknowledged recall left a tombstone without the message's content,
// every acknowledged receipt's positions are reached; and that no message
// is a tombstone whose recall was never asked for.

const (
	rsChildEnv = "BOLT_RS_CRASH_CHILD" // the child's seed
	rsDirEnv   = "BOLT_RS_CRASH_DIR"
)

var rsConvs = []string{"group_r0", "group_r1", "single_u0_u1", "group_quiet"}

// rsSenders send messages; rsReaders only send receipts, so that a
// sender's Read comes from her messages alone.
var (
	rsSenders = []string{"u0", "u1", "u2"}
	rsReaders = []string{"r0", "r1"}
)

func rsContent(conv, cmid string) string { return "said-in-" + conv + "-" + cmid }

func TestCrashReadStatesAndRecall(t *testing.T) {
	if seed := os.Getenv(rsChildEnv); seed != "" {
		n, _ := strconv.ParseUint(seed, 10, 64)
		runRSChild(t, os.Getenv(rsDirEnv), n)
		return
	}
	switch runtime.GOOS {
	case "linux", "darwin", "freebsd", "netbsd", "openbsd", "dragonfly":
	default:
		t.Skipf("kills a child process with SIGKILL, which %s does not have", runtime.GOOS)
	}
	dur := 10 * time.Second
	if testing.Short() {
		dur = 3 * time.Second
	}
	if v := os.Getenv(storetest.CrashDurationEnv); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err)
		dur = d
	}
	dir := t.TempDir()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	st := rsState{
		sent:     make(map[rsMsg]string),
		recalled: make(map[rsMsg]bool),
		asked:    make(map[rsMsg]bool),
		receipts: make(map[[2]string][3]int64),
	}
	start := time.Now()
	cycles, acks := 0, 0
	for time.Since(start) < dur {
		cycles++
		lines, out, err := rsRunChild(t, dir, rng.Uint64(), time.Duration(rng.Int64N(int64(600*time.Millisecond))))
		require.NoError(t, err, "cycle %d; child output:\n%s", cycles, out)
		acks += len(lines)
		if !t.Run(fmt.Sprintf("Cycle%d", cycles), func(t *testing.T) {
			st.record(t, lines)
			st.verify(t, dir)
		}) {
			t.Logf("child output:\n%s", out)
			return
		}
	}
	t.Logf("%d kills, %d reported calls, %d messages, %d recalls, %d receipts acknowledged", cycles, acks, len(st.sent), len(st.recalled), len(st.receipts))
}

type rsMsg struct {
	conv string
	seq  int64
}

// rsState is what the parent knows, carried from cycle to cycle.
type rsState struct {
	sent     map[rsMsg]string       // acknowledged message → sender
	recalled map[rsMsg]bool         // acknowledged recalls
	asked    map[rsMsg]bool         // recalls asked for, acknowledged or not
	receipts map[[2]string][3]int64 // (user, conv) → the greatest acknowledged (Read, Delivered, Mentioned)
}

// The child's report, a line each, on file descriptor 3:
//
//	a <conv> <seq> <sender>                   a message acknowledged (new)
//	i <conv> <seq>                            a recall about to be asked for
//	r <conv> <seq>                            the recall acknowledged
//	s <user> <conv> <read> <delivered> <mentioned>  a receipt's state acknowledged

func (st *rsState) record(t *testing.T, lines []string) {
	for _, l := range lines {
		f := strings.Fields(l)
		num := func(i int) int64 {
			n, err := strconv.ParseInt(f[i], 10, 64)
			require.NoError(t, err, l)
			return n
		}
		switch {
		case len(f) == 4 && f[0] == "a":
			st.sent[rsMsg{f[1], num(2)}] = f[3]
		case len(f) == 3 && f[0] == "i":
			st.asked[rsMsg{f[1], num(2)}] = true
		case len(f) == 3 && f[0] == "r":
			st.recalled[rsMsg{f[1], num(2)}] = true
		case len(f) == 6 && f[0] == "s":
			k := [2]string{f[1], f[2]}
			p := st.receipts[k]
			st.receipts[k] = [3]int64{max(p[0], num(3)), max(p[1], num(4)), max(p[2], num(5))}
		default:
			t.Fatalf("child report %q", l)
		}
	}
}

func (st *rsState) verify(t *testing.T, dir string) {
	ctx := t.Context()
	s, err := bolt.Open(filepath.Join(dir, "im.db"), bolt.Options{Timeout: 10 * time.Second})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	require.NoError(t, s.Check(ctx), "Check after the crash")
	stored := make(map[rsMsg]im.Message)
	for _, conv := range rsConvs {
		ms, err := s.Messages(ctx, conv, 1, 0, 1<<20)
		require.NoError(t, err)
		for _, m := range ms {
			stored[rsMsg{conv, m.Seq}] = m
			if m.Revoked() {
				require.True(t, st.asked[rsMsg{conv, m.Seq}], "%s/%d is a tombstone, but its recall was never asked for", conv, m.Seq)
				require.Nil(t, m.Content)
				require.Empty(t, m.Extra)
				require.Equal(t, "u9", m.RevokedBy)
			} else {
				require.Equal(t, rsContent(conv, m.ClientMsgID), string(m.Content), "%s/%d", conv, m.Seq)
			}
		}
	}
	for k, sender := range st.sent {
		m, ok := stored[k]
		require.True(t, ok, "acknowledged message %s/%d is lost", k.conv, k.seq)
		require.Equal(t, sender, m.SenderID)
		rs, err := s.ReadStates(ctx, sender, []string{k.conv})
		require.NoError(t, err)
		require.GreaterOrEqual(t, rs[0].Read, k.seq, "%s has not read her own %s/%d", sender, k.conv, k.seq)
	}
	for k := range st.recalled {
		m := stored[k]
		require.True(t, m.Revoked(), "the acknowledged recall of %s/%d is lost", k.conv, k.seq)
	}
	for k, p := range st.receipts {
		rs, err := s.ReadStates(ctx, k[0], []string{k[1]})
		require.NoError(t, err)
		require.GreaterOrEqual(t, rs[0].Read, p[0], "%s's acknowledged read in %s is lost", k[0], k[1])
		require.GreaterOrEqual(t, rs[0].Delivered, p[1], "%s's acknowledged delivery in %s is lost", k[0], k[1])
		require.GreaterOrEqual(t, rs[0].Mentioned, p[2], "%s's acknowledged mention in %s is lost", k[0], k[1])
	}
}

// rsRunChild runs a child on dir and kills it killAfter after its store is
// open, unless a failpoint kills it first; it returns the complete lines
// the child reported.
func rsRunChild(t *testing.T, dir string, seed uint64, killAfter time.Duration) (lines []string, out []byte, err error) {
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), rsChildEnv+"="+strconv.FormatUint(seed, 10), rsDirEnv+"="+dir)
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer pr.Close()
	cmd.ExtraFiles = []*os.File{pw}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		pw.Close()
		return nil, nil, err
	}
	defer stdin.Close()
	var output strings.Builder
	var outMu sync.Mutex
	cmd.Stdout = writerFunc(func(p []byte) (int, error) { outMu.Lock(); defer outMu.Unlock(); return output.Write(p) })
	cmd.Stderr = cmd.Stdout
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return nil, nil, err
	}
	opened := make(chan struct{})
	read := make(chan []string, 1)
	go func() {
		var ls []string
		r := bufio.NewReader(pr)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				break // a last line without its newline was cut short
			}
			if l == "o\n" {
				close(opened)
				continue
			}
			ls = append(ls, strings.TrimSuffix(l, "\n"))
		}
		read <- ls
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case <-opened:
		select {
		case <-time.After(killAfter):
			_ = cmd.Process.Kill()
			err = <-waited
		case err = <-waited:
		}
	case err = <-waited:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		err = <-waited
	}
	lines = <-read
	outMu.Lock()
	defer outMu.Unlock()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != -1 {
		return nil, []byte(output.String()), fmt.Errorf("the child was not killed but ended with %v", err)
	}
	return lines, []byte(output.String()), nil
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func runRSChild(t *testing.T, dir string, seed uint64) {
	report := os.NewFile(3, "report")
	go func() {
		// The parent holds stdin: if it dies, so does this process.
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	s := openArmed(t, dir).(*bolt.Store)
	var mu sync.Mutex
	write := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if _, err := fmt.Fprintf(report, format, args...); err != nil {
			os.Exit(4)
		}
	}
	write("o\n")
	ctx := t.Context()
	end := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			n := 0
			for time.Now().Before(end) {
				conv := rsConvs[rng.IntN(len(rsConvs))]
				switch r := rng.IntN(10); {
				case r < 6:
					batch := make([]im.AppendRequest, 1+rng.IntN(8))
					for i := range batch {
						cmid := fmt.Sprintf("%d.%d.%d", seed%1_000_000, w, n)
						n++
						c := rsConvs[rng.IntN(len(rsConvs))]
						batch[i] = im.AppendRequest{Message: im.Message{
							ConversationID: c, ServerID: "s-" + cmid, SenderID: rsSenders[rng.IntN(len(rsSenders))],
							ClientMsgID: cmid, Content: []byte(rsContent(c, cmid)), Extra: "x-" + cmid,
						}, Members: append(rsSenders[:len(rsSenders):len(rsSenders)], rsReaders...)}
					}
					res, err := s.AppendMessages(ctx, batch)
					if err != nil {
						continue // a failure the hook injected
					}
					for _, r := range res {
						if r.Err == nil && !r.Duplicate {
							write("a %s %d %s\n", r.Message.ConversationID, r.Message.Seq, r.Message.SenderID)
						}
					}
				case r < 8:
					c, err := s.Conversation(ctx, conv)
					if err != nil {
						continue // no message yet
					}
					seq := 1 + rng.Int64N(c.MaxSeq)
					write("i %s %d\n", conv, seq)
					if _, err := s.RecallMessage(ctx, conv, seq, "u9", time.Now()); err == nil {
						write("r %s %d\n", conv, seq)
					}
				default:
					states := make([]im.ReadState, 1+rng.IntN(3))
					for i := range states {
						states[i] = im.ReadState{UserID: rsReaders[rng.IntN(len(rsReaders))], ConversationID: rsConvs[rng.IntN(len(rsConvs))],
							Read: rng.Int64N(60), Delivered: rng.Int64N(60), Mentioned: rng.Int64N(60), UpdatedAt: time.Now()}
					}
					got, err := s.UpdateReadStates(ctx, states)
					if err != nil {
						continue
					}
					for _, g := range got {
						write("s %s %s %d %d %d\n", g.UserID, g.ConversationID, g.Read, g.Delivered, g.Mentioned)
					}
				}
			}
		})
	}
	wg.Wait()
}
