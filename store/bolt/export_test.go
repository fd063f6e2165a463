package bolt

import "time"

// FailPoints lists the points a failpoint hook is called at.
var FailPoints = []string{failCommit, failCommitted, failIndexCommit, failMergeChunk, failMergeDone, failRebuildChunk}

// The points whose hook error is returned as a failed write.
const (
	FailCommit      = failCommit
	FailIndexCommit = failIndexCommit
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
