package bolt

import "time"

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
// mergeAfter keys wait or every interval, and a conversation's pending
// messages moved to its bucket after maxLag log keys.
func WithMerger(opts Options, mergeAfter int, interval time.Duration, maxLag int) Options {
	opts.mergeAfter, opts.mergeInterval, opts.maxLag = mergeAfter, interval, maxLag
	return opts
}
