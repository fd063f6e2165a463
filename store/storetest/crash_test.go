package storetest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/storetest"
)

// fileStore keeps messages in a file, a JSON line each, written once per
// batch and read back whole by openFileStore: the simplest store that
// survives a kill, for RunCrash to be checked against. bug, when set,
// breaks it the way a real store could be broken.
type fileStore struct {
	bug string

	mu      sync.Mutex
	f       *os.File
	convs   map[string][]im.Message
	dedup   map[[2]string]im.Message
	members map[string]map[string]bool
	appends int
	// With bug "seq-off-after-reopen": conversations whose next seq is
	// one too low.
	skew map[string]bool

	// With bug "ack-before-write": lines acknowledged but not written.
	unwritten []byte
	stop      chan struct{}
	done      chan struct{}
}

type fileRecord struct {
	Message im.Message
	Members []string
}

func openFileStore(path, bug string) (*fileStore, error) {
	s := &fileStore{
		bug:     bug,
		convs:   make(map[string][]im.Message),
		dedup:   make(map[[2]string]im.Message),
		members: make(map[string]map[string]bool),
	}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	// A last line without its newline was cut short by a crash: it goes.
	// Truncated, not rewritten: a kill in the middle of rewriting the file
	// would lose all of it.
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	if err := os.Truncate(path, int64(len(b))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r fileRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, err
		}
		s.apply(r)
	}
	if bug == "seq-off-after-reopen" {
		s.skew = make(map[string]bool)
		for id := range s.convs {
			s.skew[id] = true
		}
	}
	if bug == "no-dedup-after-reopen" {
		clear(s.dedup)
	}
	if s.f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err != nil {
		return nil, err
	}
	if bug == "ack-before-write" {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.writeLater()
	}
	return s, nil
}

func (s *fileStore) apply(r fileRecord) {
	m := r.Message
	if _, ok := s.convs[m.ConversationID]; !ok {
		for _, u := range r.Members {
			if s.members[u] == nil {
				s.members[u] = make(map[string]bool)
			}
			s.members[u][m.ConversationID] = true
		}
	}
	s.convs[m.ConversationID] = append(s.convs[m.ConversationID], m)
	s.dedup[[2]string{m.SenderID, m.ClientMsgID}] = m
}

// writeLater is the bug "ack-before-write": acknowledged batches are
// written only when the store closes, so a kill loses every one since it
// opened. (Written in the background at intervals, a kill could land just
// after a write and lose nothing; on a busy machine RunCrash then passed
// the bug now and then.)
func (s *fileStore) writeLater() {
	defer close(s.done)
	<-s.stop
	s.mu.Lock()
	_, _ = s.f.Write(s.unwritten)
	s.unwritten = s.unwritten[:0]
	s.mu.Unlock()
}

func (s *fileStore) Close() error {
	if s.stop != nil {
		close(s.stop)
		<-s.done
	}
	return s.f.Close()
}

func (s *fileStore) AppendMessages(ctx context.Context, batch []im.AppendRequest) ([]im.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appends++
	res := make([]im.AppendResult, len(batch))
	var lines []byte
	var recs []fileRecord
	fresh := make(map[[2]string]im.Message)
	for i, r := range batch {
		if err := im.ValidateAppend(r); err != nil {
			res[i].Err = err
			continue
		}
		key := [2]string{r.Message.SenderID, r.Message.ClientMsgID}
		if orig, ok := fresh[key]; ok {
			res[i] = im.AppendResult{Message: orig, Duplicate: true}
			continue
		}
		if orig, ok := s.dedup[key]; ok {
			res[i] = im.AppendResult{Message: orig, Duplicate: true}
			continue
		}
		m := r.Message
		m.Content = bytes.Clone(m.Content)
		m.Seq = int64(len(s.convs[m.ConversationID])) + 1
		if s.skew[m.ConversationID] {
			m.Seq--
		}
		for _, p := range recs {
			if p.Message.ConversationID == m.ConversationID {
				m.Seq++
			}
		}
		rec := fileRecord{Message: m, Members: r.Members}
		b, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		lines = append(append(lines, b...), '\n')
		recs = append(recs, rec)
		fresh[key] = m
		res[i].Message = m
	}
	switch {
	case s.bug == "ack-before-write":
		s.unwritten = append(s.unwritten, lines...)
	case s.bug == "write-then-fail" && s.appends%7 == 0:
		_, _ = s.f.Write(lines)
		for _, r := range recs {
			s.apply(r)
		}
		return nil, errors.New("failed after storing the batch")
	default:
		if _, err := s.f.Write(lines); err != nil {
			return nil, err
		}
	}
	for _, r := range recs {
		s.apply(r)
	}
	return res, nil
}

func (s *fileStore) Messages(ctx context.Context, conv string, from, to int64, limit int) ([]im.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []im.Message{}
	for _, m := range s.convs[conv] {
		if m.Seq >= from && (to <= 0 || m.Seq <= to) && len(out) < limit {
			out = append(out, m)
		}
	}
	return out, nil
}

func (s *fileStore) MessagesBefore(ctx context.Context, conv string, before int64, limit int) ([]im.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []im.Message
	for _, m := range s.convs[conv] {
		if before <= 0 || m.Seq < before {
			out = append(out, m)
		}
	}
	return out[max(0, len(out)-limit):], nil
}

func (s *fileStore) Conversation(ctx context.Context, id string) (im.Conversation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms, ok := s.convs[id]
	if !ok {
		return im.Conversation{}, im.ErrNotFound
	}
	return im.Conversation{ID: id, MaxSeq: int64(len(ms))}, nil
}

func (s *fileStore) UserConversations(ctx context.Context, userID string) ([]im.Conversation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []im.Conversation{}
	for id := range s.members[userID] {
		out = append(out, im.Conversation{ID: id, MaxSeq: int64(len(s.convs[id]))})
	}
	return out, nil
}

// crashBugEnv names the bug fileStore has in a child process of
// TestCrashDetectsBugs.
const crashBugEnv = "STORETEST_CRASH_BUG"

func fileHarness(bug string) storetest.CrashHarness {
	return storetest.CrashHarness{
		Open: func(t *testing.T, dir string) storetest.CrashStore {
			s, err := openFileStore(filepath.Join(dir, "msgs"), bug)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Error(err)
				}
			})
			return s
		},
		Duration: 5 * time.Second,
	}
}

// TestCrashFileStore runs RunCrash against fileStore: a store that keeps
// what it acknowledges must pass.
func TestCrashFileStore(t *testing.T) {
	storetest.RunCrash(t, fileHarness(os.Getenv(crashBugEnv)))
}

// TestCrashDetectsBugs runs TestCrashFileStore in a child process with
// one bug at a time and requires RunCrash to fail, for the right reason.
func TestCrashDetectsBugs(t *testing.T) {
	if os.Getenv(crashBugEnv) != "" {
		t.Skip("in a child process")
	}
	if testing.Short() {
		t.Skip("runs RunCrash once per bug")
	}
	tests := []struct{ bug, want string }{
		{"ack-before-write", "is lost"},
		{"no-dedup-after-reopen", "not a duplicate"},
		{"seq-off-after-reopen", "where (u"},
		{"write-then-fail", "but the AppendMessages that sent it failed"},
	}
	for _, tt := range tests {
		t.Run(tt.bug, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashFileStore$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), crashBugEnv+"="+tt.bug, storetest.CrashDurationEnv+"=4s")
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("RunCrash passed a store with bug %q; output:\n%s", tt.bug, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("RunCrash failed for bug %q without saying %q; output:\n%s", tt.bug, tt.want, out)
			}
		})
	}
}

func ExampleRunCrash() {
	// A store's crash test is an ordinary test function; RunCrash runs
	// it again in the child processes it kills, so it must be the first
	// thing the function does. mystore stands for the store's package.
	testCrash := func(t *testing.T) {
		storetest.RunCrash(t, storetest.CrashHarness{
			Open: func(t *testing.T, dir string) storetest.CrashStore {
				s, err := openFileStore(filepath.Join(dir, "msgs"), "") // mystore.Open(dir)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			},
		})
	}
	_ = testCrash
}
