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

// A connection that does not authenticate in time, or breaks the protocol's
// rules, is closed with StatusPolicyViolation (1008).
func TestPolicyViolationCloseStatus(t *testing.T) {
	_, url := startStack(t, im.Config{AuthTimeout: 300 * time.Millisecond}, websocket.Options{})
	w := dialWS(t, url, nil)
	require.Equal(t, cws.StatusPolicyViolation, w.closeStatus())

	w = dialWS(t, url, nil)
	for range 4 {
		var rsp imv1.ConnectResponse
		w.call(imv1.CommandType_CMD_CONNECT_REQ, &imv1.ConnectRequest{}, &rsp)
		require.Equal(t, imv1.ErrorCode_ERR_AUTH_FAILED, rsp.ErrorCode)
	}
	require.Equal(t, cws.StatusPolicyViolation, w.closeStatus())

	// A session the server ends for other reasons closes normally.
	core, url := startStack(t, im.Config{}, websocket.Options{})
	w = dialWS(t, url+"?token=tok-alice", nil)
	var rsp imv1.HeartbeatResponse
	w.call(imv1.CommandType_CMD_HEARTBEAT_REQ, &imv1.HeartbeatRequest{}, &rsp)
	require.Equal(t, 1, core.Kick("alice", "test"))
	require.Equal(t, cws.StatusNormalClosure, w.closeStatus())
}
