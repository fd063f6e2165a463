package websocket_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/transport/websocket"
	"github.com/stretchr/testify/require"
)

// One address may hold MaxConnsPerIP WebSockets; the next upgrade is
// answered 429 before upgrading, and closing one frees its slot. Loopback
// is not exempt.
func TestMaxConnsPerIP(t *testing.T) {
	_, url := startStack(t, im.Config{}, websocket.Options{MaxConnsPerIP: 2})
	a := dialWS(t, url, nil)
	b := dialWS(t, url, nil)

	dial := func() (*cws.Conn, *http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, resp, err := cws.Dial(ctx, url, nil)
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		return c, resp, err
	}
	_, resp, err := dial()
	require.Error(t, err)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)

	require.NoError(t, a.c.Close(cws.StatusNormalClosure, ""))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _, err := dial()
		if err == nil {
			c.CloseNow()
			break
		}
		require.True(t, time.Now().Before(deadline), "no slot freed after 10 s: %v", err)
		time.Sleep(20 * time.Millisecond)
	}
	var rsp imv1.HeartbeatResponse
	b.call(imv1.CommandType_CMD_HEARTBEAT_REQ, &imv1.HeartbeatRequest{}, &rsp)
	require.NotZero(t, rsp.ServerTime)
}
