package tcp_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/transport/internal/idletest"
	"github.com/imserver/imserver/transport/tcp"
)

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
	openIdle(t, addr, idletest.Conns)
	idletest.RequireGoroutines(t, base+idletest.Conns)
}
