// Package idletest holds what the transports' tests of idle connections
// share: how many to open, and how to count the goroutines and stack
// they leave.
package idletest

import (
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// Conns is how many idle connections the idle tests open: enough that
// one goroutine more per connection cannot hide among the server's own.
const Conns = 64

// RequireGoroutines waits for the goroutines of answered requests to
// return, and fails if more than want are left after that.
func RequireGoroutines(t testing.TB, want int) {
	t.Helper()
	// A writer returns just after its last write, which the client may
	// have read already: poll, within a bound, for them to be gone.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > want {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Fatalf("%d goroutines, want at most %d (one per idle connection):\n%s", n, want, b.String())
	}
}

// StackInUse returns the bytes of goroutine stacks in use, after a
// collection has returned those of goroutines that have ended.
func StackInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.StackInuse)
}
