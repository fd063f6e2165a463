package localfiles

import "io"

// WithWriter returns opts with w wrapping the temporary file Create copies
// content to.
func WithWriter(opts Options, w func(io.Writer) io.Writer) Options {
	opts.writer = w
	return opts
}
