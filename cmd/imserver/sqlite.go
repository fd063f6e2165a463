//go:build sqlite

package main

// The pure-Go SQLite driver for -store sqlite. It is left out of the default
// build because compiling it (a C library translated to Go) adds 40% to a
// cold build's CPU time and 300 MB to its peak memory:
// go build -tags sqlite ./cmd/imserver links it.
// docs/PERFORMANCE.md ("Building") has the figures.
import _ "modernc.org/sqlite"
