package localfiles

import "io"

// WithWriter returns opts with w wrapping the temporary file Create copies
// content to.
func WithWriter(opts Options, w func(io.Writer) io.Writer) Options {
	opts.writer = w
	return opts
}

// CrossProcess tells whether the Store's locks keep out other processes
// on this platform.
const CrossProcess = crossProcess

// LockShard takes the lock of s's shard (two hex digits) and returns its
// unlock.
func LockShard(s *Store, shard string) (func(), error) { return s.lockShard(shard) }
