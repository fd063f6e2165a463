package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imv1"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEmbeddedChat(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan [2]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, "127.0.0.1:0", "127.0.0.1:0", t.TempDir(), func(h, t net.Addr) { addrs <- [2]net.Addr{h, t} })
	}()
	a := <-addrs
	base, tcpAddr := "http://"+a[0].String(), a[1].String()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	login := func(user string) string {
		rsp, err := http.Get(base + "/login?user=" + user)
		require.NoError(t, err)
		defer rsp.Body.Close()
		b, err := io.ReadAll(rsp.Body)
		require.NoError(t, err)
		return strings.TrimSpace(string(b))
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	dial := func(user string) *client.Client {
		c, err := client.Dial(dctx, client.Options{Transport: client.TransportWebSocket, Addr: "ws" + strings.TrimPrefix(base, "http") + "/ws", UserID: user, Token: login(user)})
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	alice, bob := dial("alice"), dial("bob")
	// A native client over TCP, knowing only its token: the server's
	// answer tells it who it is.
	carol, err := client.Dial(dctx, client.Options{Addr: tcpAddr, Token: login("carol")})
	require.NoError(t, err)
	defer carol.Close()
	require.Equal(t, "carol", carol.UserID())

	_, err = alice.Send(dctx, client.Outgoing{ReceiverID: "bob", Type: im.TextMessage, Content: []byte("hello from the embedded server")})
	require.NoError(t, err)
	p := <-bob.Pushes()
	require.Equal(t, "hello from the embedded server", string(p.Message.(*imv1.PushMessage).Message.Content))

	_, err = alice.Send(dctx, client.Outgoing{ReceiverID: "bob", Type: im.TextMessage, Content: []byte(strings.Repeat("x", 1001))})
	require.ErrorIs(t, err, im.ErrPermissionDenied, "the host's moderation hook refuses it")

	_, err = client.Dial(dctx, client.Options{Transport: client.TransportWebSocket, Addr: "ws" + strings.TrimPrefix(base, "http") + "/ws", UserID: "mallory", Token: "guess"})
	require.ErrorIs(t, err, im.ErrUnauthenticated)

	_, err = carol.Send(dctx, client.Outgoing{ReceiverID: "alice", Type: im.TextMessage, Content: []byte("hi alice, over TCP")})
	require.NoError(t, err)
	p = <-alice.Pushes()
	require.Equal(t, "carol", p.Message.(*imv1.PushMessage).Message.SenderId)

	// The SDK's group calls take the backend's session token too.
	req, err := http.NewRequestWithContext(dctx, http.MethodPost, base+"/chat/api/group/create", strings.NewReader(`{"groupName":"team","memberUserIDs":["bob","carol"]}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+login("alice"))
	rsp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer rsp.Body.Close()
	var created struct {
		Code int
		Data struct{ GroupID string }
	}
	require.NoError(t, json.NewDecoder(rsp.Body).Decode(&created))
	require.Zero(t, created.Code)
	conv := im.GroupConversationID(created.Data.GroupID)
	p = <-bob.Pushes()
	require.Equal(t, conv, p.Message.(*imv1.PushMessage).Message.ConversationId, "bob hears of the new group")
	require.Equal(t, conv, (<-carol.Pushes()).Message.(*imv1.PushMessage).Message.ConversationId, "and carol, over TCP")
	_, err = alice.Send(dctx, client.Outgoing{ConversationID: conv, Type: im.TextMessage, Content: []byte("hello team")})
	require.NoError(t, err)
	p = <-bob.Pushes()
	require.Equal(t, "hello team", string(p.Message.(*imv1.PushMessage).Message.Content))
	p = <-carol.Pushes()
	require.Equal(t, "hello team", string(p.Message.(*imv1.PushMessage).Message.Content))

	get := func(path, token string) (int, string) {
		req, err := http.NewRequestWithContext(dctx, http.MethodGet, base+path, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rsp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer rsp.Body.Close()
		b, err := io.ReadAll(rsp.Body)
		require.NoError(t, err)
		return rsp.StatusCode, string(b)
	}
	code, body := get("/chat/health", "")
	require.Equal(t, http.StatusOK, code, "health under the backend's prefix")
	require.JSONEq(t, `{"code":0,"message":"ok"}`, body)
	code, _ = get("/health", "")
	require.Equal(t, http.StatusNotFound, code, "nothing of the API outside the prefix")
	code, body = get("/admin/chat/metrics", login("ops"))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "imserver_")
	code, _ = get("/admin/chat/metrics", login("alice"))
	require.Equal(t, http.StatusForbidden, code, "metrics only for the backend's operators")
}
