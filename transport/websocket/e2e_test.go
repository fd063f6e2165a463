package websocket_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/transport/websocket"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

// tokens accepts "tok-<user>" for any user.
func tokens(_ context.Context, token string) (im.Identity, error) {
	if u, ok := strings.CutPrefix(token, "tok-"); ok && u != "" {
		return im.Identity{UserID: u}, nil
	}
	return im.Identity{}, fmt.Errorf("unknown token: %w", im.ErrUnauthenticated)
}

// startStack runs a real core on a bbolt store with the handler mounted at
// /ws of an httptest server, and returns the core and the ws:// URL.
func startStack(t *testing.T, cfg im.Config, opts websocket.Options) (*im.Server, string) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "im.db"), bolt.Options{})
	require.NoError(t, err)
	cfg.Store, cfg.Authenticator = st, im.AuthenticatorFunc(tokens)
	core, err := im.NewServer(cfg)
	require.NoError(t, err)
	mux := http.NewServeMux()
	wsh := websocket.NewHandler(core, opts)
	mux.Handle("/ws", wsh)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, core.Shutdown(ctx)) // ends the sessions
		require.NoError(t, wsh.Shutdown(ctx))  // waits for them: net/http does not track WebSockets
		hs.Close()
		require.NoError(t, st.Close())
	})
	return core, "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
}

type wsClient struct {
	t   *testing.T
	c   *cws.Conn
	seq uint32
}

func dialWS(t *testing.T, url string, opts *cws.DialOptions) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := cws.Dial(ctx, url, opts)
	require.NoError(t, err)
	if resp.Body != nil {
		resp.Body.Close()
	}
	c.SetReadLimit(2 * im.MaxFrameSize)
	t.Cleanup(func() { c.CloseNow() })
	return &wsClient{t: t, c: c}
}

func (w *wsClient) write(typ cws.MessageType, p []byte) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(w.t, w.c.Write(ctx, typ, p))
}

func (w *wsClient) read() (cws.MessageType, []byte, error) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return w.c.Read(ctx)
}

// call sends a binary request and decodes the response into out.
func (w *wsClient) call(cmd imv1.CommandType, req, out proto.Message) *imv1.WebSocketMessage {
	w.t.Helper()
	w.seq++
	body, err := proto.Marshal(req)
	require.NoError(w.t, err)
	env, err := proto.Marshal(&imv1.WebSocketMessage{Command: cmd, Sequence: w.seq, Body: body, Timestamp: time.Now().UnixMilli()})
	require.NoError(w.t, err)
	w.write(cws.MessageBinary, env)
	m := w.recv()
	require.Equal(w.t, w.seq, m.Sequence)
	require.NoError(w.t, proto.Unmarshal(m.Body, out))
	return m
}

func (w *wsClient) recv() *imv1.WebSocketMessage {
	w.t.Helper()
	typ, p, err := w.read()
	require.NoError(w.t, err)
	require.Equal(w.t, cws.MessageBinary, typ)
	m := new(imv1.WebSocketMessage)
	require.NoError(w.t, proto.Unmarshal(p, m))
	return m
}

// closeStatus reads until the server closes and returns its close status.
func (w *wsClient) closeStatus() cws.StatusCode {
	w.t.Helper()
	for {
		if _, _, err := w.read(); err != nil {
			return cws.CloseStatus(err)
		}
	}
}

// jsonEnvelope is an envelope as the JSON subprotocol carries it.
type jsonEnvelope struct {
	Command   string          `json:"command"`
	Sequence  uint32          `json:"sequence"`
	Timestamp int64           `json:"timestamp"`
	Body      json.RawMessage `json:"body"`
}

func (w *wsClient) recvJSON() jsonEnvelope {
	w.t.Helper()
	typ, p, err := w.read()
	require.NoError(w.t, err)
	require.Equal(w.t, cws.MessageText, typ)
	var env jsonEnvelope
	require.NoError(w.t, json.Unmarshal(p, &env), "%s", p)
	return env
}

func TestEndToEndBinaryAndJSON(t *testing.T) {
	_, url := startStack(t, im.Config{}, websocket.Options{})

	// Alice is the SDK: binary envelopes, token in the URL and in AUTH.
	alice := dialWS(t, url+"?token=tok-alice&platform=iOS", &cws.DialOptions{
		// Starscream's Origin: the dialed URL's scheme and host.
		HTTPHeader: http.Header{"Origin": {"ws://" + strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/ws")}},
	})
	var auth imv1.AuthResponse
	alice.call(imv1.CommandType_CMD_AUTH_REQ, &imv1.AuthRequest{UserId: "alice", Token: "tok-alice", Platform: "iOS"}, &auth)
	require.Equal(t, imv1.ErrorCode_ERR_SUCCESS, auth.ErrorCode, auth.ErrorMsg)

	// Bob is a developer with wscat: JSON, token only in the URL.
	bob := dialWS(t, url+"?token=tok-bob", &cws.DialOptions{Subprotocols: []string{websocket.SubprotocolJSON}})
	bob.write(cws.MessageText, []byte(`{"command":"CMD_HEARTBEAT_REQ","sequence":1,"body":{"client_time":"5"}}`))
	hb := bob.recvJSON()
	require.Equal(t, "CMD_HEARTBEAT_RSP", hb.Command)
	require.Equal(t, uint32(1), hb.Sequence)
	require.Contains(t, string(hb.Body), "server_time")

	var ack imv1.SendMessageResponse
	before := time.Now().UnixMilli()
	m := alice.call(imv1.CommandType_CMD_SEND_MSG_REQ, &imv1.SendMessageRequest{Message: &imv1.MessageInfo{
		ClientMsgId: "c1", ConversationId: "single_alice_bob", MessageType: 1, Content: []byte("hi bob"),
	}}, &ack)
	require.Equal(t, imv1.CommandType_CMD_SEND_MSG_RSP, m.Command)
	require.Equal(t, imv1.ErrorCode_ERR_SUCCESS, ack.ErrorCode, ack.ErrorMsg)
	require.GreaterOrEqual(t, m.Timestamp, before)

	push := bob.recvJSON()
	require.Equal(t, "CMD_PUSH_MSG", push.Command)
	require.Zero(t, push.Sequence)
	var pm struct {
		Message struct {
			ServerMsgID string `json:"server_msg_id"`
			SenderID    string `json:"sender_id"`
			Content     []byte `json:"content"` // base64 in protojson
			Seq         string `json:"seq"`
		} `json:"message"`
	}
	require.NoError(t, json.Unmarshal(push.Body, &pm))
	require.Equal(t, "hi bob", string(pm.Message.Content))
	require.Equal(t, "alice", pm.Message.SenderID)
	require.Equal(t, ack.ServerMsgId, pm.Message.ServerMsgID)
	require.Equal(t, "1", pm.Message.Seq)

	// Bob answers in JSON; a bad body is the core's to answer.
	bob.write(cws.MessageText, []byte(`{"command":"CMD_SEND_MSG_REQ","sequence":2,"body":{"message":{"content":"not base64!"}}}`))
	bad := bob.recvJSON()
	require.Equal(t, "CMD_SEND_MSG_RSP", bad.Command)
	require.Equal(t, uint32(2), bad.Sequence)
	require.Contains(t, string(bad.Body), "ERR_INVALID_PARAM")

	bob.write(cws.MessageText, []byte(`{"command":"CMD_SEND_MSG_REQ","sequence":3,"body":{"message":{"client_msg_id":"b1","conversation_id":"single_alice_bob","message_type":1,"content":"aGkgYWxpY2U="}}}`))
	ok := bob.recvJSON()
	require.Equal(t, "CMD_SEND_MSG_RSP", ok.Command)
	require.NotContains(t, string(ok.Body), "error_code", "success leaves the zero code out")
	got := alice.recv()
	require.Equal(t, imv1.CommandType_CMD_PUSH_MSG, got.Command)
	var apm imv1.PushMessage
	require.NoError(t, proto.Unmarshal(got.Body, &apm))
	require.Equal(t, "hi alice", string(apm.GetMessage().GetContent()))
}

func TestEndToEndTokenRefused(t *testing.T) {
	_, url := startStack(t, im.Config{}, websocket.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp, err := cws.Dial(ctx, url+"?token=forged", nil)
	require.Error(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "authentication failed", strings.TrimSpace(string(body)))
}

func TestEndToEndFramingErrorsClose(t *testing.T) {
	_, url := startStack(t, im.Config{}, websocket.Options{})

	big := dialWS(t, url+"?token=tok-alice", nil)
	big.write(cws.MessageBinary, make([]byte, im.MaxFrameSize+1000))
	require.Equal(t, cws.StatusMessageTooBig, big.closeStatus())

	bad := dialWS(t, url+"?token=tok-alice", &cws.DialOptions{Subprotocols: []string{websocket.SubprotocolJSON}})
	bad.write(cws.MessageText, []byte(`{"command":"CMD_NOT_A_COMMAND"}`))
	require.Equal(t, cws.StatusInvalidFramePayloadData, bad.closeStatus())
}

func TestEndToEndPingsKeepAlive(t *testing.T) {
	const idle = 400 * time.Millisecond
	_, url := startStack(t, im.Config{IdleTimeout: idle}, websocket.Options{})

	pinged := dialWS(t, url+"?token=tok-alice", nil)
	quiet := dialWS(t, url+"?token=tok-bob", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pingedRead := pinged.c.CloseRead(ctx) // reads pongs, and sees the close
	quietRead := quiet.c.CloseRead(ctx)

	// Pings alone, well inside the idle timeout, keep one session open
	// while the quiet one is closed, and for a few idle periods more.
	ping := func() {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		defer pcancel()
		require.NoError(t, pinged.c.Ping(pctx))
		time.Sleep(idle / 4)
	}
	for quietRead.Err() == nil {
		ping()
	}
	for range 8 {
		ping()
	}
	require.NoError(t, pingedRead.Err(), "the pinged session is still open")

	// Without pings it goes too.
	<-pingedRead.Done()
	require.NoError(t, ctx.Err(), "closed by the idle timeout, not by the test's deadline")
}

func TestEndToEndKickClosesNormally(t *testing.T) {
	core, url := startStack(t, im.Config{}, websocket.Options{})
	c := dialWS(t, url+"?token=tok-bob", nil)
	var hb imv1.HeartbeatResponse
	c.call(imv1.CommandType_CMD_HEARTBEAT_REQ, &imv1.HeartbeatRequest{}, &hb) // the session is up
	require.Equal(t, 1, core.Kick("bob", "bye"))
	m := c.recv()
	require.Equal(t, imv1.CommandType_CMD_KICK_OUT, m.Command)
	require.Equal(t, cws.StatusNormalClosure, c.closeStatus())
}

func TestEndToEndShutdownOrder(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	st, err := bolt.Open(filepath.Join(t.TempDir(), "im.db"), bolt.Options{})
	require.NoError(t, err)
	defer st.Close()
	core, err := im.NewServer(im.Config{Store: st, Authenticator: im.AuthenticatorFunc(tokens)})
	require.NoError(t, err)
	wsh := websocket.NewHandler(core, websocket.Options{})
	hs := httptest.NewServer(wsh)
	url := "ws" + strings.TrimPrefix(hs.URL, "http")

	var clients []*wsClient
	for _, u := range []string{"alice", "bob"} {
		clients = append(clients, dialWS(t, url+"?token=tok-"+u, nil))
	}
	clients = append(clients, dialWS(t, url, nil)) // not authenticated yet

	// Clients keep reading, as real ones do, so they answer the close
	// handshake.
	statuses := make(chan cws.StatusCode, len(clients))
	for _, c := range clients {
		go func() {
			for {
				if _, _, err := c.c.Read(context.Background()); err != nil {
					statuses <- cws.CloseStatus(err)
					return
				}
			}
		}()
	}

	// One call: the core stops the handler it registered with, ends the
	// sessions and waits for their goroutines and close handshakes.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, core.Shutdown(ctx))
	for range clients {
		require.Equal(t, cws.StatusNormalClosure, <-statuses)
	}
	for _, c := range clients {
		c.c.CloseNow()
	}

	// A connection after the shutdown is refused before the upgrade.
	_, resp, err := cws.Dial(ctx, url, nil)
	require.Error(t, err)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	resp.Body.Close()
	require.NoError(t, wsh.Shutdown(ctx), "the handler's own Shutdown has nothing left to do")
	hs.Close()
}
