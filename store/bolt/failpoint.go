package bolt

// A failpoint is a hook that tests set through Options to crash the
// process, or make a write fail, at a named point of a commit, a merge or
// a rebuild: the points where a crash leaves the two files, the log and
// memory in different states. It is nil outside tests.
type failpoint func(point string) error

// The points. Where the hook's error can stand for a failed write, it is
// returned as one; elsewhere it is ignored, and only a crash matters.
const (
	// A main-file write transaction is ready to commit; an error fails
	// it, as a failed write or fsync would.
	failCommit = "commit"
	// It has committed, and memory (pending messages, dedup keys, log
	// counters) does not know yet; the caller has no answer.
	failCommitted = "committed"
	// An index-file transaction (a merge chunk or a rebuild's) is ready
	// to commit; an error fails it.
	failIndexCommit = "index-commit"
	// A merge has committed a chunk and more follow.
	failMergeChunk = "merge-chunk"
	// A merge has committed its last chunk; the log is not trimmed yet.
	failMergeDone = "merge-done"
	// A rebuild of the index has committed a chunk; the pair id that
	// marks it complete is not written yet.
	failRebuildChunk = "rebuild-chunk"
)

func (f failpoint) at(point string) error {
	if f == nil {
		return nil
	}
	return f(point)
}
