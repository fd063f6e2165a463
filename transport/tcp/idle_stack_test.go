//go:build !race

package tcp_test

import (
	"runtime"
	"testing"
)

// TestIdleConnectionStack checks that an idle connection's goroutine
// waits with a stack of 4 KiB: requests that go deep (authentication,
// store reads) are not handled on it, and what is on it while it waits is
// small. The race detector's larger stack frames would not fit, so it is
// not run with -race.
func TestIdleConnectionStack(t *testing.T) {
	addr, base := startIdleStack(t)
	before := stackInUse()
	cs := openIdle(t, addr, idleConns)
	requireGoroutines(t, base+idleConns)
	per := (stackInUse() - before) / idleConns
	t.Logf("%d bytes of stack per idle connection", per)
	if per > 7<<10 {
		t.Errorf("%d bytes of stack per idle connection, want 4 KiB", per)
	}
	runtime.KeepAlive(cs)
}

// stackInUse returns the bytes of goroutine stacks in use, after a
// collection has returned those of goroutines that have ended.
func stackInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.StackInuse)
}
