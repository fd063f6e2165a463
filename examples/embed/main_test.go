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
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", t.TempDir(), func(a net.Addr) { addrs <- a }) }()
	base := "http://" + (<-addrs).String()
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

	_, err := alice.Send(dctx, client.Outgoing{ReceiverID: "bob", Type: im.TextMessage, Content: []byte("hello from the embedded server")})
	require.NoError(t, err)
	p := <-bob.Pushes()
	require.Equal(t, "hello from the embedded server", string(p.Message.(*imv1.PushMessage).Message.Content))

	_, err = alice.Send(dctx, client.Outgoing{ReceiverID: "bob", Type: im.TextMessage, Content: []byte(strings.Repeat("x", 1001))})
	require.ErrorIs(t, err, im.ErrPermissionDenied, "the host's moderation hook refuses it")

	_, err = client.Dial(dctx, client.Options{Transport: client.TransportWebSocket, Addr: "ws" + strings.TrimPrefix(base, "http") + "/ws", UserID: "mallory", Token: "guess"})
	require.ErrorIs(t, err, im.ErrUnauthenticated)

	// The SDK's group calls take the backend's session token too.
	req, err := http.NewRequestWithContext(dctx, http.MethodPost, base+"/api/group/create", strings.NewReader(`{"groupName":"team","memberUserIDs":["bob"]}`))
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
	_, err = alice.Send(dctx, client.Outgoing{ConversationID: conv, Type: im.TextMessage, Content: []byte("hello team")})
	require.NoError(t, err)
	p = <-bob.Pushes()
	require.Equal(t, "hello team", string(p.Message.(*imv1.PushMessage).Message.Content))
}
