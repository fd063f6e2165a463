package bolt

import (
	"errors"
	"time"
)

// FailPoints lists the points a failpoint hook is called at.
var FailPoints = []string{failCommit, failCommitted, failIndexCommit, failMergeChunk, failMergeDone, failRebuildChunk}

// The points; the hook's error is returned as a failed write at
// FailCommit and FailIndexCommit.
const (
	FailCommit       = failCommit
	FailCommitted    = failCommitted
	FailIndexCommit  = failIndexCommit
	FailMergeChunk   = failMergeChunk
	FailMergeDone    = failMergeDone
	FailRebuildChunk = failRebuildChunk
)

// WithFailpoint returns opts with hook called at each failpoint.
func WithFailpoint(opts Options, hook func(point string) error) Options {
	opts.hook = hook
	return opts
}

// WithMerger returns opts with the merger and aging tuned: a merge once
// mergeAfter keys wait or every interval, in transactions of minChunk
// keys or more, and a conversation's pending messages moved to its bucket
// after maxLag log keys.
func WithMerger(opts Options, mergeAfter int, interval time.Duration, minChunk, maxLag int) Options {
	opts.mergeAfter, opts.mergeInterval, opts.minChunk, opts.maxLag = mergeAfter, interval, minChunk, maxLag
	return opts
}

// Abandon releases s's files the way a crash would leave them, but
// between writes: it stops the merger and closes both files without
// merging the keys waiting or emptying the log, as Close does.
func Abandon(s *Store) error {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	s.dedup.closeOnce.Do(func() { close(s.dedup.stop) })
	<-s.dedup.done
	return errors.Join(s.dedup.db.Close(), s.db.Close())
}
