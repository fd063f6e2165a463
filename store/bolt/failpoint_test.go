package bolt

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCrashMidMergeKeepsLog(t *testing.T) {
	// A crash while a merge is between its transactions, after an append
	// trimmed what it could, loses no dedup key: the append does not trim
	// the keys the merge has not committed (trimTo moves once all have),
	// and if it did, Open would find the index behind the log's trim and
	// rebuild it. Either defence alone passes this test.
	dir := t.TempDir()
	paused, resume := make(chan struct{}), make(chan struct{})
	hits := 0
	opts := Options{
		mergeAfter: 1 << 20, mergeInterval: time.Hour, minChunk: 64, maxLag: 1,
		hook: func(point string) error {
			if point == failMergeChunk {
				if hits++; hits == 1 {
					close(paused)
					<-resume
				}
			}
			return nil
		},
	}
	s, err := Open(filepath.Join(dir, "im.db"), opts)
	require.NoError(t, err)
	defer s.Close()

	batches := inBatches(dedupMsgs(logGeneration+100, "m"), 500)
	first := appendAll(t, s, batches)
	merged := make(chan struct{})
	go func() {
		defer close(merged)
		s.dedup.mergeOnce()
	}()
	<-paused
	// One chunk is in the index file; this append trims what it may.
	more := dedupMsgs(1, "after")
	moreFirst := appendAll(t, s, more)

	s2 := openCrashed(t, s, filepath.Join(dir, "crash.db"))
	close(resume)
	<-merged
	require.NoError(t, s2.Check(t.Context()))
	requireDuplicates(t, s2, batches, first)
	requireDuplicates(t, s2, more, moreFirst)
}
