package websocket_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/transport/internal/idletest"
	"github.com/imserver/imserver/transport/websocket"
)

// openIdle opens n WebSockets to url, each authenticated by its ?token=
// and again by an AuthRequest (as IM-iOS-SDK does), done with a ping and a
// heartbeat, and leaves them idle.
func openIdle(t *testing.T, url string, n int) []*wsClient {
	t.Helper()
	cs := make([]*wsClient, n)
	for i := range cs {
		user := fmt.Sprintf("user%d", i)
		c := dialWS(t, url+"?token=tok-"+user, nil)
		var auth imv1.AuthResponse
		c.call(imv1.CommandType_CMD_AUTH_REQ, &imv1.AuthRequest{UserId: user, Token: "tok-" + user, Platform: "iOS"}, &auth)
		require.Equal(t, imv1.ErrorCode_ERR_SUCCESS, auth.ErrorCode, auth.ErrorMsg)
		// The pong is read by the heartbeats' reads: a Ping needs a
		// reader to see it.
		pinged := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			pinged <- c.c.Ping(ctx)
		}()
		for done := false; !done; {
			var hb imv1.HeartbeatResponse
			c.call(imv1.CommandType_CMD_HEARTBEAT_REQ, &imv1.HeartbeatRequest{ClientTime: 1}, &hb)
			select {
			case err := <-pinged:
				require.NoError(t, err)
				done = true
			default:
			}
		}
		cs[i] = c
	}
	return cs
}

// startIdleStack starts a stack and returns its URL and how many
// goroutines the process has with one idle connection open: a connection
// answered first, so that the server's own goroutines have all started.
func startIdleStack(t *testing.T) (url string, base int) {
	t.Helper()
	_, url = startStack(t, im.Config{}, websocket.Options{MaxConnsPerIP: -1})
	openIdle(t, url, 1)
	return url, runtime.NumGoroutine()
}

// TestIdleConnectionGoroutines checks that an idle, authenticated
// WebSocket holds one goroutine, its reader: net/http's goroutine returns
// after the upgrade, and the writer, the close handshake and the
// goroutines requests are handled on exist only while there is work.
func TestIdleConnectionGoroutines(t *testing.T) {
	url, base := startIdleStack(t)
	openIdle(t, url, idletest.Conns)
	idletest.RequireGoroutines(t, base+idletest.Conns)
}
