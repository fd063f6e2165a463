package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
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
	storetest.RunCrash(t, storetest.CrashHarness{
		Open: func(t *testing.T, dir string) storetest.CrashStore {
			s, err := bolt.Open(filepath.Join(dir, "im.db"), bolt.Options{Timeout: 10 * time.Second})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, s.Close()) })
			return s
		},
		OpenChild: openArmed,
		Check: func(ctx context.Context, s storetest.CrashStore) error {
			return s.(*bolt.Store).Check(ctx)
		},
	})
}

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
	opts := bolt.WithMerger(bolt.Options{Timeout: 10 * time.Second}, 4096, 100*time.Millisecond, 1000)
	var hook func(point string) error
	switch r := rand.IntN(10); {
	case r < 3:
	case r < 8:
		point := bolt.FailPoints[rand.IntN(len(bolt.FailPoints))]
		n := 1 + rand.Int64N(20)
		delay := point == bolt.FailCommit && rand.IntN(2) == 0
		fmt.Fprintf(os.Stderr, "crash child: kill at %s #%d (delayed %t)\n", point, n, delay)
		var hits atomic.Int64
		hook = func(p string) error {
			if p != point || hits.Add(1) != n {
				return nil
			}
			if delay {
				go func() {
					time.Sleep(time.Duration(rand.Int64N(int64(3 * time.Millisecond))))
					killSelf()
				}()
				return nil
			}
			killSelf()
			return nil
		}
	default:
		fmt.Fprintln(os.Stderr, "crash child: write failures")
		hook = func(p string) error {
			if (p == bolt.FailCommit || p == bolt.FailIndexCommit) && rand.IntN(10) == 0 {
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
	return s
}

// killSelf ends the process at once, the way a crash would: no deferred
// call, no cleanup, no Close.
func killSelf() {
	p, err := os.FindProcess(os.Getpid())
	if err == nil {
		if err = p.Kill(); err == nil {
			time.Sleep(time.Minute) // the signal is on its way
		}
	}
	panic(fmt.Sprintf("kill self: %v", err))
}
