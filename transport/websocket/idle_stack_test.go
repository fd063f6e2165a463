//go:build !race

package websocket_test

import (
	"runtime"
	"testing"

	"github.com/imserver/imserver/transport/internal/idletest"
)

// TestIdleConnectionStack checks that an idle WebSocket's goroutine
// waits with a stack of 4 KiB: requests that go deep (authentication,
// store reads) are not handled on it, and what is on it while it waits is
// small. The race detector's larger stack frames would not fit, so it is
// not run with -race.
func TestIdleConnectionStack(t *testing.T) {
	url, base := startIdleStack(t)
	before := idletest.StackInUse()
	cs := openIdle(t, url, idletest.Conns)
	idletest.RequireGoroutines(t, base+idletest.Conns)
	per := (idletest.StackInUse() - before) / idletest.Conns
	t.Logf("%d bytes of stack per idle connection", per)
	if per > 7<<10 {
		t.Errorf("%d bytes of stack per idle connection, want 4 KiB", per)
	}
	runtime.KeepAlive(cs)
}
