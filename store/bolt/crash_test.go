package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/store/storetest"
)

// errInjected is the write failure the failpoints inject.
var errInjected = errors.New("injected write failure")

// TestCrash kills a process appending to the store, at random times and
// at the failpoints, and checks the store after each kill. Set
// STORETEST_CRASH_DURATION (and STORETEST_CRASH_CYCLES) to run longer.
func TestCrash(t *testing.T) {
	var dir string
	storetest.RunCrash(t, storetest.CrashHarness{
		Location: func(t *testing.T) string {
			dir = t.TempDir()
			return dir
		},
		Open: func(t *testing.T, dir string) storetest.CrashStore {
			s, err := bolt.Open(filepath.Join(dir, "im.db"), bolt.Options{Timeout: 10 * time.Second})
			require.NoError(t, err)
			if rand.IntN(10) == 0 {
				t.Cleanup(func() { require.NoError(t, s.Close()) })
			} else {
				// Leave the log to the next child as it is: Close would
				// empty it, and it must grow past a generation to be
				// trimmed.
				t.Cleanup(func() { require.NoError(t, bolt.Abandon(s)) })
			}
			return s
		},
		OpenChild: openArmed,
		Check: func(ctx context.Context, s storetest.CrashStore) error {
			return s.(*bolt.Store).Check(ctx)
		},
	})
	if b, err := os.ReadFile(filepath.Join(dir, failpointLog)); err == nil {
		counts := make(map[string]int)
		for l := range strings.Lines(string(b)) {
			counts[strings.TrimSpace(l)]++
		}
		t.Logf("kills by failpoint: %v", counts)
	}
}

// failpointLog is the file, beside the store's, where a child that kills
// itself at a failpoint says which.
const failpointLog = "failpoints"

// openArmed opens the store in a crash child with a small merger, so that
// merges, trims and aging happen within the child's short life, and arms
// one of these at random:
//
//   - nothing: only the parent's kill ends the process;
//   - a kill at the nth time a failpoint is reached, at once or, at the
//     point before a main-file commit, a moment later, which lands in the
//     middle of bbolt's writes and fsyncs;
//   - write failures: now and then a main-file or index-file commit
//     fails, which the store must survive and report.
//
// Now and then it deletes the index file first, so that Open rebuilds it,
// and the rebuild's failpoint can be reached.
func openArmed(t *testing.T, dir string) storetest.CrashStore {
	path := filepath.Join(dir, "im.db")
	if rand.IntN(8) == 0 {
		if err := os.Remove(path + bolt.IndexSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	// A short lag moves pending messages to their buckets for age within
	// the child's life; the default lets them outlive a log generation.
	maxLag := 1000
	if rand.IntN(2) == 0 {
		maxLag = 0
	}
	opts := bolt.WithMerger(bolt.Options{Timeout: 10 * time.Second}, 4096, 100*time.Millisecond, 64, maxLag)
	var (
		hook   func(point string) error
		opened atomic.Bool
	)
	switch r := rand.IntN(10); {
	case r < 3:
	case r < 8:
		point := bolt.FailPoints[rand.IntN(len(bolt.FailPoints))]
		// The nth time: commits come often, merges every 100 ms.
		n := int64(1)
		switch point {
		case bolt.FailCommit, bolt.FailCommitted:
			n += rand.Int64N(10)
		case bolt.FailIndexCommit, bolt.FailMergeDone:
			n += rand.Int64N(4)
		case bolt.FailRebuildChunk:
			// Reached only when Open rebuilds the index.
			if err := os.Remove(path + bolt.IndexSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
		}
		delay := point == bolt.FailCommit && rand.IntN(2) == 0
		name := point
		if delay {
			name += " (in the commit)"
		}
		var hits atomic.Int64
		hook = func(p string) error {
			if p != point || hits.Add(1) != n {
				return nil
			}
			if delay {
				go func() {
					time.Sleep(time.Duration(rand.Int64N(int64(3 * time.Millisecond))))
					killSelf(dir, name)
				}()
				return nil
			}
			killSelf(dir, name)
			return nil
		}
	default:
		fmt.Fprintln(os.Stderr, "crash child: write failures")
		hook = func(p string) error {
			// Not in Open, which would fail: only appends and merges.
			if opened.Load() && (p == bolt.FailCommit || p == bolt.FailIndexCommit) && rand.IntN(10) == 0 {
				return errInjected
			}
			return nil
		}
	}
	if hook != nil {
		opts = bolt.WithFailpoint(opts, hook)
	}
	s, err := bolt.Open(path, opts)
	require.NoError(t, err)
	opened.Store(true)
	return s
}

// killSelf ends the process at once, the way a crash would: no deferred
// call, no cleanup, no Close. It notes point in dir's failpointLog first.
func killSelf(dir, point string) {
	if f, err := os.OpenFile(filepath.Join(dir, failpointLog), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
		fmt.Fprintln(f, point)
		f.Close()
	}
	p, err := os.FindProcess(os.Getpid())
	if err == nil {
		if err = p.Kill(); err == nil {
			time.Sleep(time.Minute) // the signal is on its way
		}
	}
	panic(fmt.Sprintf("kill self: %v", err))
}
