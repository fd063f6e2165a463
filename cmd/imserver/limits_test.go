package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imv1"
	"github.com/stretchr/testify/require"
)

// waitClosed reads c until the server closes it and returns how long that
// took; it fails the test if c is still open after limit.
func waitClosed(t *testing.T, c net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	require.NoError(t, c.SetReadDeadline(start.Add(limit)))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", limit)
	}
	return time.Since(start)
}

// A request body trickled a byte at a time and an idle keep-alive
// connection are both closed once the HTTP timeouts run out.
func TestHTTPTimeouts(t *testing.T) {
	l, _ := start(t, t.TempDir(), new(syncBuffer), "-http-read-timeout", "400ms", "-http-idle-timeout", "400ms")

	// Trickle: 64 bytes promised, one sent every 100 ms.
	c, err := net.Dial("tcp", l.HTTP.String())
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n")
	require.NoError(t, err)
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for range 64 {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte{' '}); err != nil {
				return
			}
		}
	}()
	waitClosed(t, c, 5*time.Second)
	close(stop)
	<-trickled

	// Idle keep-alive: one request answered, then nothing.
	c2, err := net.Dial("tcp", l.HTTP.String())
	require.NoError(t, err)
	defer c2.Close()
	_, err = io.WriteString(c2, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(c2)
	require.NoError(t, c2.SetReadDeadline(time.Now().Add(5*time.Second)))
	rsp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, rsp.Body)
	rsp.Body.Close()
	require.False(t, rsp.Close, "the server meant to keep the connection")
	took := waitClosed(t, c2, 5*time.Second)
	require.Greater(t, took, 200*time.Millisecond, "closed before the idle timeout")

	// A WebSocket lives past the HTTP timeouts of its upgrade request.
	tok := registerAndLogin(t, "http://"+l.HTTP.String(), "carol")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, err := client.Dial(ctx, client.Options{Transport: client.TransportWebSocket, Addr: "ws://" + l.WS.String() + "/ws", UserID: tok.UserID, Token: tok.Token})
	require.NoError(t, err)
	defer ws.Close()
	time.Sleep(time.Second) // past both timeouts, on purpose: nothing to poll for
	var hb imv1.HeartbeatResponse
	require.NoError(t, ws.Request(ctx, imv1.CommandType_CMD_HEARTBEAT_REQ, &imv1.HeartbeatRequest{}, &hb))
	require.NotZero(t, hb.ServerTime)
}

type login struct{ Token, UserID string }

func registerAndLogin(t *testing.T, base, user string) login {
	t.Helper()
	e := post(t, base+"/api/auth/register", map[string]string{"username": user, "password": "secret-" + user, "nickname": user})
	require.Zero(t, e.Code, e.Message)
	e = post(t, base+"/api/auth/login", map[string]string{"username": user, "password": "secret-" + user, "platform": "iOS"})
	require.Zero(t, e.Code, e.Message)
	var out login
	require.NoError(t, json.NewDecoder(bytes.NewReader(e.Data)).Decode(&out))
	return out
}

// -max-conns-per-ip bounds the TCP connections and the WebSockets of one
// address, loopback included.
func TestMaxConnsPerIPFlag(t *testing.T) {
	l, _ := start(t, t.TempDir(), new(syncBuffer), "-max-conns-per-ip", "2")
	for range 2 {
		c, err := net.Dial("tcp", l.TCP.String())
		require.NoError(t, err)
		defer c.Close()
	}
	c, err := net.Dial("tcp", l.TCP.String())
	require.NoError(t, err)
	defer c.Close()
	waitClosed(t, c, 5*time.Second)

	for range 2 {
		c, err := net.Dial("tcp", l.WS.String())
		require.NoError(t, err)
		defer c.Close()
		_, err = io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		require.NoError(t, err)
		rsp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusSwitchingProtocols, rsp.StatusCode)
	}
	rsp, err := http.Get("http://" + l.WS.String() + "/ws")
	require.NoError(t, err)
	rsp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, rsp.StatusCode)

	_, err = parseConfig([]string{"-max-conns-per-ip", "0"}, func(string) string { return "" }, new(bytes.Buffer))
	require.ErrorContains(t, err, "-max-conns-per-ip")
	_, err = parseConfig([]string{"-http-idle-timeout", "0s"}, func(string) string { return "" }, new(bytes.Buffer))
	require.ErrorContains(t, err, "-http-idle-timeout")
}
