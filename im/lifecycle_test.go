package im_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/transport/tcp"
	"github.com/imserver/imserver/transport/websocket"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

// plainTokens accepts "tok-<user>" for any user.
func plainTokens(_ context.Context, token string) (im.Identity, error) {
	if u, ok := strings.CutPrefix(token, "tok-"); ok && u != "" {
		return im.Identity{UserID: u}, nil
	}
	return im.Identity{}, fmt.Errorf("unknown token: %w", im.ErrUnauthenticated)
}

// A host with its own mux and http.Server, the WebSocket handler mounted
// on it and a TCP listener beside: one im.Server.Shutdown stops accepting on
// both, drains the sessions and returns once nothing of imserver's runs.
func TestOneShutdownStopsEverything(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	st, err := bolt.Open(filepath.Join(t.TempDir(), "im.db"), bolt.Options{})
	require.NoError(t, err)
	defer st.Close()
	var mu sync.Mutex
	var reasons []error
	srv, err := im.NewServer(im.Config{
		Store:         st,
		Authenticator: im.AuthenticatorFunc(plainTokens),
		OnDisconnect: func(_ im.SessionInfo, err error) {
			mu.Lock()
			reasons = append(reasons, err)
			mu.Unlock()
		},
	})
	require.NoError(t, err)

	// The host's own server, with a route of its own.
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello") })
	mux.Handle("/ws", websocket.NewHandler(srv, websocket.Options{}))
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	httpDone := make(chan error, 1)
	go func() { httpDone <- hs.Serve(hl) }()

	tl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tcpDone := make(chan error, 1)
	go func() { tcpDone <- tcp.NewServer(srv, tcp.Options{}).Serve(tl) }()

	wsURL := "ws://" + hl.Addr().String() + "/ws"
	ctx := testCtx(t)
	a, err := client.Dial(ctx, client.Options{Transport: client.TransportTCP, Addr: tl.Addr().String(), UserID: alice, Token: "tok-" + alice})
	require.NoError(t, err)
	defer a.Close()
	b, err := client.Dial(ctx, client.Options{Transport: client.TransportWebSocket, Addr: wsURL, UserID: bob, Token: "tok-" + bob})
	require.NoError(t, err)
	defer b.Close()
	sendText(t, a, bob, "before shutdown")
	require.Equal(t, "before shutdown", string(nextMessage(t, b).Content))

	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(sctx))

	// Both sessions ended, with ErrServerClosed, and both clients saw it.
	for _, c := range []*client.Client{a, b} {
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("a client is still connected after Shutdown")
		}
	}
	mu.Lock()
	require.Len(t, reasons, 2)
	for _, r := range reasons {
		require.ErrorIs(t, r, im.ErrServerClosed)
	}
	mu.Unlock()
	select {
	case err := <-tcpDone:
		require.ErrorIs(t, err, im.ErrServerClosed, "the TCP listener was closed")
	case <-time.After(10 * time.Second):
		t.Fatal("the TCP server still serves after Shutdown")
	}
	_, err = net.DialTimeout("tcp", tl.Addr().String(), time.Second)
	require.Error(t, err, "nothing accepts on the TCP port")

	// The host's server still serves its own routes; new WebSockets are
	// refused before the upgrade.
	rsp, err := http.Get("http://" + hl.Addr().String() + "/hello")
	require.NoError(t, err)
	body, _ := io.ReadAll(rsp.Body)
	rsp.Body.Close()
	require.Equal(t, "hello", string(body))
	_, rsp, err = cws.Dial(sctx, wsURL+"?token=tok-"+carol, nil)
	require.Error(t, err)
	require.Equal(t, http.StatusServiceUnavailable, rsp.StatusCode)
	rsp.Body.Close()

	require.NoError(t, hs.Shutdown(sctx))
	require.ErrorIs(t, <-httpDone, http.ErrServerClosed)
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
	// goleak (deferred) checks that nothing is left running.
}

// A transport created after Shutdown is closed at once.
func TestTransportAfterShutdownIsClosed(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	srv.Stop()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.ErrorIs(t, tcp.NewServer(srv.Server, tcp.Options{}).Serve(l), im.ErrServerClosed)
}

type ctxKey struct{}

// Values a host puts in the connection's context through ConnContext reach
// the Authenticator and BeforeSend of that connection.
func TestConnContextReachesHooks(t *testing.T) {
	var mu sync.Mutex
	var authSaw, beforeSendSaw []any
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{
		Authenticator: im.AuthenticatorFunc(func(ctx context.Context, token string) (im.Identity, error) {
			mu.Lock()
			authSaw = append(authSaw, ctx.Value(ctxKey{}))
			mu.Unlock()
			return plainTokens(ctx, token)
		}),
		ConnContext: func(ctx context.Context, info im.ConnInfo) context.Context {
			return context.WithValue(ctx, ctxKey{}, info.Transport+" from "+strings.Split(info.RemoteAddr, ":")[0])
		},
		BeforeSend: func(ctx context.Context, m *im.Message) error {
			mu.Lock()
			beforeSendSaw = append(beforeSendSaw, ctx.Value(ctxKey{}))
			mu.Unlock()
			return nil
		},
	}})
	r := dialRaw(t, srv.TCPAddr)
	require.Zero(t, r.auth(alice, "tok-"+alice).ErrorCode)
	require.Zero(t, r.send(textTo(bob, "c1", "hi")).ErrorCode)
	w := srv.DialWith(t, client.Options{Transport: client.TransportWebSocket, UserID: bob, Token: "tok-" + bob})
	sendText(t, w, alice, "hello")

	mu.Lock()
	defer mu.Unlock()
	// The WebSocket's ?token= is checked before the upgrade, on the
	// request's context; its AuthRequest goes through the session's.
	require.Equal(t, []any{"tcp from 127.0.0.1", nil, "websocket from 127.0.0.1"}, authSaw)
	require.Equal(t, []any{"tcp from 127.0.0.1", "websocket from 127.0.0.1"}, beforeSendSaw)
}

func TestConnContextReturningNilRefusesTheConnection(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{
		ConnContext: func(context.Context, im.ConnInfo) context.Context { return nil },
	}})
	r := dialRaw(t, srv.TCPAddr)
	r.writeMsg(imv1.CommandType_CMD_HEARTBEAT_REQ, &imv1.HeartbeatRequest{})
	r.expectClosed()
	require.Empty(t, srv.Sessions(alice))
}

// A WebSocket whose ?token= was verified before the upgrade is not verified
// a second time by the core.
func TestWebSocketTokenIsAuthenticatedOnce(t *testing.T) {
	var calls atomic.Int32
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{
		Authenticator: im.AuthenticatorFunc(func(ctx context.Context, token string) (im.Identity, error) {
			calls.Add(1)
			return plainTokens(ctx, token)
		}),
	}})
	ctx := testCtx(t)
	c, rsp, err := cws.Dial(ctx, srv.WSURL+"?token=tok-"+alice+"&platform=iOS", nil)
	require.NoError(t, err)
	if rsp.Body != nil {
		rsp.Body.Close()
	}
	defer c.CloseNow()
	c.SetReadLimit(2 * im.MaxFrameSize)

	// A request that needs a session: answered, so the ?token= logged it in.
	body, err := proto.Marshal(&imv1.BatchSyncRequest{})
	require.NoError(t, err)
	env, err := proto.Marshal(&imv1.WebSocketMessage{Command: imv1.CommandType_CMD_BATCH_SYNC_REQ, Sequence: 1, Body: body})
	require.NoError(t, err)
	require.NoError(t, c.Write(ctx, cws.MessageBinary, env))
	_, p, err := c.Read(ctx)
	require.NoError(t, err)
	var got imv1.WebSocketMessage
	require.NoError(t, proto.Unmarshal(p, &got))
	var sync imv1.BatchSyncResponse
	require.NoError(t, proto.Unmarshal(got.Body, &sync))
	require.Zero(t, sync.ErrorCode, sync.ErrorMsg)
	require.Len(t, srv.Sessions(alice), 1)
	require.Equal(t, "iOS", srv.Sessions(alice)[0].Platform)
	require.EqualValues(t, 1, calls.Load(), "the Authenticator is asked once per connection")
}

// chanConn is an im.Conn fed by the test, for calling ServeConn directly.
type chanConn struct {
	in     chan im.Frame
	closed chan struct{}
	once   sync.Once
}

func newChanConn() *chanConn {
	return &chanConn{in: make(chan im.Frame), closed: make(chan struct{})}
}

func (c *chanConn) ReadFrame(ctx context.Context) (im.Frame, error) {
	select {
	case f := <-c.in:
		return f, nil
	case <-c.closed:
		return im.Frame{}, net.ErrClosed
	case <-ctx.Done():
		return im.Frame{}, ctx.Err()
	}
}

func (c *chanConn) WriteFrames(context.Context, []im.Frame) error { return nil }

func (c *chanConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// Each way a session ends reaches OnDisconnect (or, for a connection that
// never had a session, ServeConn's result) as an error errors.Is matches.
func TestDisconnectReasons(t *testing.T) {
	type ended struct {
		info im.SessionInfo
		err  error
	}
	newServer := func(t *testing.T, cfg im.Config) (*imtest.Server, chan ended) {
		ch := make(chan ended, 16)
		cfg.Authenticator = im.AuthenticatorFunc(plainTokens)
		cfg.OnDisconnect = func(s im.SessionInfo, err error) { ch <- ended{s, err} }
		return imtest.NewServer(t, imtest.Options{Config: cfg}), ch
	}
	next := func(t *testing.T, ch chan ended) ended {
		t.Helper()
		select {
		case e := <-ch:
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no OnDisconnect within 10 s")
		}
		return ended{}
	}

	t.Run("idle", func(t *testing.T) {
		srv, ch := newServer(t, im.Config{IdleTimeout: 200 * time.Millisecond})
		r := dialRaw(t, srv.TCPAddr)
		require.Zero(t, r.auth(alice, "tok-"+alice).ErrorCode)
		e := next(t, ch)
		require.ErrorIs(t, e.err, im.ErrIdle)
		require.Equal(t, alice, e.info.UserID)
	})
	t.Run("kicked", func(t *testing.T) {
		srv, ch := newServer(t, im.Config{})
		r := dialRaw(t, srv.TCPAddr)
		require.Zero(t, r.auth(alice, "tok-"+alice).ErrorCode)
		require.Equal(t, 1, srv.Kick(alice, "account suspended"))
		e := next(t, ch)
		require.ErrorIs(t, e.err, im.ErrKicked)
		require.NotErrorIs(t, e.err, im.ErrLoggedInElsewhere)
		require.Contains(t, e.err.Error(), "account suspended")
	})
	t.Run("logged in elsewhere", func(t *testing.T) {
		srv, ch := newServer(t, im.Config{DevicePolicy: im.OneSession})
		first := dialRaw(t, srv.TCPAddr)
		require.Zero(t, first.auth(alice, "tok-"+alice).ErrorCode)
		second := dialRaw(t, srv.TCPAddr)
		require.Zero(t, second.auth(alice, "tok-"+alice).ErrorCode)
		e := next(t, ch)
		require.ErrorIs(t, e.err, im.ErrLoggedInElsewhere)
		require.ErrorIs(t, e.err, im.ErrKicked)
	})
	t.Run("auth failed", func(t *testing.T) {
		srv, ch := newServer(t, im.Config{})
		r := dialRaw(t, srv.TCPAddr)
		require.Zero(t, r.auth(alice, "tok-"+alice).ErrorCode)
		require.NotZero(t, r.auth(alice, "forged").ErrorCode)
		e := next(t, ch)
		require.ErrorIs(t, e.err, im.ErrAuthFailed)
		require.ErrorIs(t, e.err, im.ErrUnauthenticated, "and why")
	})
	t.Run("slow consumer", func(t *testing.T) {
		srv, ch := newServer(t, im.Config{SendQueue: 4, SendRate: -1})
		slow := dialRaw(t, srv.TCPAddr)
		require.Zero(t, slow.auth(bob, "tok-"+bob).ErrorCode)
		require.NoError(t, slow.nc.(interface{ SetReadBuffer(int) error }).SetReadBuffer(4096))
		big := make([]byte, 60<<10)
		for i := 0; i < 200 && len(srv.Sessions(bob)) > 0; i++ {
			_, err := srv.SendMessage(testCtx(t), im.SendRequest{SenderID: alice, ReceiverID: bob, Type: im.FileMessage, Content: big})
			require.NoError(t, err)
		}
		require.ErrorIs(t, next(t, ch).err, im.ErrSlowConsumer)
	})
	t.Run("server closed", func(t *testing.T) {
		srv, ch := newServer(t, im.Config{})
		r := dialRaw(t, srv.TCPAddr)
		require.Zero(t, r.auth(alice, "tok-"+alice).ErrorCode)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		require.ErrorIs(t, next(t, ch).err, im.ErrServerClosed)
	})
	t.Run("auth timeout", func(t *testing.T) {
		srv, ch := newServer(t, im.Config{AuthTimeout: 100 * time.Millisecond})
		err := srv.ServeConn(testCtx(t), newChanConn(), im.ConnInfo{Transport: "test"})
		require.ErrorIs(t, err, im.ErrAuthTimeout)
		require.Empty(t, ch, "no session, so no OnDisconnect")
	})
	t.Run("refused handshake token", func(t *testing.T) {
		srv, ch := newServer(t, im.Config{})
		err := srv.ServeConn(testCtx(t), newChanConn(), im.ConnInfo{Transport: "test", Token: "forged"})
		require.ErrorIs(t, err, im.ErrAuthFailed)
		require.ErrorIs(t, err, im.ErrUnauthenticated)
		require.Empty(t, ch)
	})
	t.Run("handshake identity", func(t *testing.T) {
		srv, ch := newServer(t, im.Config{})
		c := newChanConn()
		done := make(chan error, 1)
		go func() {
			done <- srv.ServeConn(testCtx(t), c, im.ConnInfo{Transport: "test", Identity: im.Identity{UserID: alice}})
		}()
		eventually(t, func() bool { return len(srv.Sessions(alice)) == 1 }, "the verified identity did not make a session")
		require.Equal(t, 1, srv.Kick(alice, "bye"))
		require.NoError(t, <-done, "a kick is a normal end")
		require.ErrorIs(t, next(t, ch).err, im.ErrKicked)

		err := srv.ServeConn(testCtx(t), newChanConn(), im.ConnInfo{Transport: "test", Identity: im.Identity{UserID: "bad\x00id"}})
		require.ErrorIs(t, err, im.ErrAuthFailed, "an identity the core cannot use is refused")
	})
}
