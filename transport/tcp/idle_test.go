package tcp_test

import (
	"fmt"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/transport/tcp"
)

// idleConns is how many idle connections the idle tests open: enough that
// one goroutine more per connection cannot hide among the server's own.
const idleConns = 64

// openIdle opens n connections to addr, each authenticated and done with
// a heartbeat, and leaves them idle.
func openIdle(t *testing.T, addr string, n int) []*client {
	t.Helper()
	cs := make([]*client, n)
	for i := range cs {
		c := dialClient(t, addr)
		c.auth(fmt.Sprintf("user%d", i))
		var hb imv1.HeartbeatResponse
		c.call(imv1.CommandType_CMD_HEARTBEAT_REQ, &imv1.HeartbeatRequest{ClientTime: 1}, &hb)
		cs[i] = c
	}
	return cs
}

// startIdleStack starts a stack and returns its address and how many
// goroutines the process has with one idle connection open: a connection
// answered first, so that the server's own goroutines have all started.
func startIdleStack(t *testing.T) (addr string, base int) {
	t.Helper()
	_, addr = startStackWith(t, tcp.Options{MaxConnsPerIP: -1})
	openIdle(t, addr, 1)
	return addr, runtime.NumGoroutine()
}

// TestIdleConnectionGoroutines checks that an idle, authenticated
// connection holds one goroutine, its reader: the writer and the
// goroutines requests are handled on exist only while there is work.
func TestIdleConnectionGoroutines(t *testing.T) {
	addr, base := startIdleStack(t)
	openIdle(t, addr, idleConns)
	requireGoroutines(t, base+idleConns)
}

// requireGoroutines waits for the goroutines of answered requests to
// return, and fails if more than want are left after that.
func requireGoroutines(t *testing.T, want int) {
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
