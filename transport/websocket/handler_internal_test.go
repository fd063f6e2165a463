package websocket

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/transport/internal/idleread"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

// kickCommand makes the fake core end the session, as a kick would.
const kickCommand = imv1.CommandType_CMD_KICK_OUT

type ended struct {
	info   im.ConnInfo
	frames []im.Frame
	err    error
}

// fakeCore stands in for im.Server: it echoes every frame it reads, ends
// the session on kickCommand, and accepts the token "good".
type fakeCore struct {
	started chan *conn
	mu      sync.Mutex
	ends    []ended
	authErr error // what Authenticate returns for tokens other than "good"
}

func newFakeCore() *fakeCore {
	return &fakeCore{started: make(chan *conn, 16), authErr: fmt.Errorf("bad token: %w", im.ErrUnauthenticated)}
}

func (fc *fakeCore) authenticate(_ context.Context, token string) (im.Identity, error) {
	if token == "good" {
		return im.Identity{UserID: "u1"}, nil
	}
	return im.Identity{}, fc.authErr
}

func (fc *fakeCore) serve(ctx context.Context, c im.Conn, info im.ConnInfo) error {
	defer c.Close()
	fc.started <- c.(*conn)
	var frames []im.Frame
	var err error
	for {
		var f im.Frame
		if f, err = c.ReadFrame(ctx); err != nil {
			break
		}
		frames = append(frames, f)
		if f.Command == kickCommand {
			err = nil
			break
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = c.WriteFrames(wctx, []im.Frame{f})
		cancel()
		if err != nil {
			break
		}
	}
	fc.mu.Lock()
	fc.ends = append(fc.ends, ended{info: info, frames: frames, err: err})
	fc.mu.Unlock()
	return err
}

// waitEnded waits for n sessions to have ended and returns them.
func (fc *fakeCore) waitEnded(t *testing.T, n int) []ended {
	t.Helper()
	require.Eventually(t, func() bool {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		return len(fc.ends) >= n
	}, 10*time.Second, time.Millisecond)
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return append([]ended(nil), fc.ends...)
}

func startHandler(t *testing.T, fc *fakeCore, opts Options) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(newHandler(fc.serve, fc.authenticate, opts))
	t.Cleanup(ts.Close)
	return ts
}

func wsURL(ts *httptest.Server, query string) string {
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws" + query
}

func dial(t *testing.T, url string, opts *cws.DialOptions) *cws.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := cws.Dial(ctx, url, opts)
	require.NoError(t, err)
	if resp.Body != nil {
		resp.Body.Close()
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func readEnvelope(t *testing.T, c *cws.Conn) *imv1.WebSocketMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, p, err := c.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, cws.MessageBinary, typ)
	m := new(imv1.WebSocketMessage)
	require.NoError(t, proto.Unmarshal(p, m))
	return m
}

func write(t *testing.T, c *cws.Conn, typ cws.MessageType, p []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Write(ctx, typ, p))
}

// closeStatus reads until the connection closes and returns the status.
func closeStatus(t *testing.T, c *cws.Conn) cws.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return cws.CloseStatus(err)
		}
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	fc := newFakeCore()
	ts := startHandler(t, fc, Options{})
	c := dial(t, wsURL(ts, "?token=good&platform=iOS"), nil)
	require.Empty(t, c.Subprotocol())

	body := mustMarshal(t, &imv1.SendMessageRequest{Message: &imv1.MessageInfo{ClientMsgId: "c1", Content: []byte("hi")}})
	before := time.Now().UnixMilli()
	write(t, c, cws.MessageBinary, mustMarshal(t, &imv1.WebSocketMessage{
		Command: imv1.CommandType_CMD_SEND_MSG_REQ, Sequence: 7, Body: body, Timestamp: 1,
	}))
	got := readEnvelope(t, c)
	after := time.Now().UnixMilli()
	require.Equal(t, imv1.CommandType_CMD_SEND_MSG_REQ, got.Command)
	require.Equal(t, uint32(7), got.Sequence)
	require.Equal(t, body, got.Body)
	require.GreaterOrEqual(t, got.Timestamp, before, "stamped with the server's time, not the client's")
	require.LessOrEqual(t, got.Timestamp, after)

	write(t, c, cws.MessageBinary, mustMarshal(t, &imv1.WebSocketMessage{Command: kickCommand}))
	require.Equal(t, cws.StatusNormalClosure, closeStatus(t, c), "the core closed: normal closure")

	e := fc.waitEnded(t, 1)[0]
	require.NoError(t, e.err)
	require.Equal(t, "websocket", e.info.Transport)
	require.Equal(t, im.Identity{UserID: "u1"}, e.info.Identity, "the identity the token was verified as")
	require.Empty(t, e.info.Token, "verified already: the core need not check it again")
	require.Equal(t, "iOS", e.info.Platform)
	require.Contains(t, e.info.RemoteAddr, "127.0.0.1:")
	require.Len(t, e.frames, 2)
}

func TestJSONRoundTripOverSocket(t *testing.T) {
	fc := newFakeCore()
	ts := startHandler(t, fc, Options{})
	c := dial(t, wsURL(ts, ""), &cws.DialOptions{Subprotocols: []string{"other", SubprotocolJSON}})
	require.Equal(t, SubprotocolJSON, c.Subprotocol())

	write(t, c, cws.MessageText, []byte(`{"command":"CMD_SEND_MSG_REQ","sequence":3,"timestamp":0,
		"body":{"message":{"client_msg_id":"c1","conversation_id":"single_a_b","content":"aGk="}}}`))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, p, err := c.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, cws.MessageText, typ)
	var out struct {
		Command   string `json:"command"`
		Sequence  uint32 `json:"sequence"`
		Timestamp int64  `json:"timestamp"`
		Body      struct {
			Message struct {
				ClientMsgID    string `json:"client_msg_id"`
				ConversationID string `json:"conversation_id"`
				Content        string `json:"content"`
			} `json:"message"`
		} `json:"body"`
	}
	require.NoError(t, json.Unmarshal(p, &out), "%s", p)
	require.Equal(t, "CMD_SEND_MSG_REQ", out.Command)
	require.Equal(t, uint32(3), out.Sequence)
	require.NotZero(t, out.Timestamp)
	require.Equal(t, "c1", out.Body.Message.ClientMsgID)
	require.Equal(t, "single_a_b", out.Body.Message.ConversationID)
	require.Equal(t, "aGk=", out.Body.Message.Content)

	// The core saw protobuf.
	write(t, c, cws.MessageText, []byte(`{"command":"CMD_KICK_OUT"}`))
	require.Equal(t, cws.StatusNormalClosure, closeStatus(t, c))
	e := fc.waitEnded(t, 1)[0]
	var req imv1.SendMessageRequest
	require.NoError(t, proto.Unmarshal(e.frames[0].Body, &req))
	require.Equal(t, "c1", req.GetMessage().GetClientMsgId())
	require.Equal(t, []byte("hi"), req.GetMessage().GetContent())
}

func TestJSONBadBodyReachesCore(t *testing.T) {
	fc := newFakeCore()
	ts := startHandler(t, fc, Options{})
	c := dial(t, wsURL(ts, ""), &cws.DialOptions{Subprotocols: []string{SubprotocolJSON}})

	write(t, c, cws.MessageText, []byte(`{"command":"CMD_SEND_MSG_REQ","sequence":9,"body":{"message":42}}`))
	// The connection stays open: the echo comes back.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, p, err := c.Read(ctx)
	require.NoError(t, err)
	require.Contains(t, string(p), `"sequence":9`)

	write(t, c, cws.MessageText, []byte(`{"command":"CMD_KICK_OUT"}`))
	require.Equal(t, cws.StatusNormalClosure, closeStatus(t, c))
	e := fc.waitEnded(t, 1)[0]
	require.Equal(t, imv1.CommandType_CMD_SEND_MSG_REQ, e.frames[0].Command)
	require.Error(t, proto.Unmarshal(e.frames[0].Body, new(imv1.SendMessageRequest)))
}

func TestFramingErrorsClose(t *testing.T) {
	tests := []struct {
		name   string
		json   bool
		typ    cws.MessageType
		msg    []byte
		status cws.StatusCode
	}{
		{"bad binary envelope", false, cws.MessageBinary, []byte{0xff, 0xff}, cws.StatusInvalidFramePayloadData},
		{"text without subprotocol", false, cws.MessageText, []byte(`{"command":5}`), cws.StatusUnsupportedData},
		{"binary on the JSON subprotocol", true, cws.MessageBinary, []byte{0x08, 0x05}, cws.StatusUnsupportedData},
		{"not JSON", true, cws.MessageText, []byte(`hello`), cws.StatusInvalidFramePayloadData},
		{"unknown command name", true, cws.MessageText, []byte(`{"command":"CMD_NOPE","sequence":1}`), cws.StatusInvalidFramePayloadData},
		{"binary body over the limit", false, cws.MessageBinary,
			mustMarshal(t, &imv1.WebSocketMessage{Command: 200, Body: make([]byte, 101)}), cws.StatusMessageTooBig},
		{"binary message over the read limit", false, cws.MessageBinary, make([]byte, 1000), cws.StatusMessageTooBig},
		{"JSON message over the read limit", true, cws.MessageText, []byte(`{"command":5,"body":{"client_time":"` + strings.Repeat("1", 5000) + `"}}`), cws.StatusMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := newFakeCore()
			ts := startHandler(t, fc, Options{MaxFrameSize: 100})
			var opts *cws.DialOptions
			if tt.json {
				opts = &cws.DialOptions{Subprotocols: []string{SubprotocolJSON}}
			}
			c := dial(t, wsURL(ts, ""), opts)
			write(t, c, tt.typ, tt.msg)
			require.Equal(t, tt.status, closeStatus(t, c))
			e := fc.waitEnded(t, 1)[0]
			require.Error(t, e.err)
			require.Empty(t, e.frames)
			if strings.Contains(tt.name, "read limit") {
				require.ErrorIs(t, e.err, cws.ErrMessageTooBig)
			} else {
				require.ErrorIs(t, e.err, im.ErrInvalidArgument)
			}
		})
	}
}

func TestMaxFrameSizeAllowsFullBody(t *testing.T) {
	fc := newFakeCore()
	ts := startHandler(t, fc, Options{})
	c := dial(t, wsURL(ts, ""), nil)
	c.SetReadLimit(2 * im.MaxFrameSize)
	body := make([]byte, im.MaxFrameSize)
	write(t, c, cws.MessageBinary, mustMarshal(t, &imv1.WebSocketMessage{
		Command: 0x7FFFFFFF, Sequence: 0xFFFFFFFF, Body: body, Timestamp: 1<<63 - 1,
	}))
	got := readEnvelope(t, c)
	require.Len(t, got.Body, im.MaxFrameSize)
}

func TestOrigin(t *testing.T) {
	fc := newFakeCore()
	ts := startHandler(t, fc, Options{OriginPatterns: []string{"*.example.com", "https://trusted.example.org"}})
	host := strings.TrimPrefix(ts.URL, "http://")
	tests := []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"ws://" + host, true}, // what Starscream sends for ws://host:port/ws
		{"http://" + host, true},
		{"https://app.example.com", true},
		{"https://trusted.example.org", true},
		{"http://trusted.example.org", false}, // the pattern names the scheme
		{"https://evil.example.net", false},
		{"https://example.com.evil.net", false},
		{"null", false},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, resp, err := cws.Dial(ctx, wsURL(ts, ""), &cws.DialOptions{HTTPHeader: h})
			if resp != nil && resp.Body != nil {
				defer resp.Body.Close()
			}
			if !tt.ok {
				require.Error(t, err)
				require.Equal(t, http.StatusForbidden, resp.StatusCode)
				return
			}
			require.NoError(t, err)
			defer c.CloseNow()
			write(t, c, cws.MessageBinary, mustMarshal(t, &imv1.WebSocketMessage{Command: 5, Sequence: 1}))
			require.Equal(t, uint32(1), readEnvelope(t, c).Sequence)
			require.NoError(t, c.Close(cws.StatusNormalClosure, ""))
		})
	}
}

func TestStarscreamOriginOnSDKPort(t *testing.T) {
	// The SDK dials ws://host:8081/ws and sends exactly this Origin; the
	// Host header is what the server sees, whatever it listens on.
	fc := newFakeCore()
	ts := startHandler(t, fc, Options{})
	c := dial(t, wsURL(ts, ""), &cws.DialOptions{
		Host:       "im.example.com:8081",
		HTTPHeader: http.Header{"Origin": {"ws://im.example.com:8081"}},
	})
	write(t, c, cws.MessageBinary, mustMarshal(t, &imv1.WebSocketMessage{Command: 5, Sequence: 2}))
	require.Equal(t, uint32(2), readEnvelope(t, c).Sequence)
}

func TestTokenRefused(t *testing.T) {
	tests := []struct {
		name    string
		authErr error
		status  int
		text    string
	}{
		{"bad token", fmt.Errorf("signature: %w", im.ErrUnauthenticated), http.StatusUnauthorized, "authentication failed"},
		{"expired token", im.ErrTokenExpired, http.StatusUnauthorized, "token expired"},
		{"revoked token", &im.Error{Code: im.CodeUnauthenticated, Msg: "token revoked", Err: im.ErrUnauthenticated}, http.StatusUnauthorized, "token revoked"},
		{"refusal with another code", &im.Error{Code: im.CodeInvalidArgument, Msg: "internal detail", Err: im.ErrInvalidArgument}, http.StatusUnauthorized, "authentication failed"},
		{"malformed token", fmt.Errorf("segments: %w", im.ErrInvalidArgument), http.StatusUnauthorized, "authentication failed"},
		{"server closed", im.ErrServerClosed, http.StatusServiceUnavailable, "server shutting down"},
		{"backend down", errors.New("connection refused"), http.StatusServiceUnavailable, "authentication unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := newFakeCore()
			fc.authErr = tt.authErr
			ts := startHandler(t, fc, Options{})

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, resp, err := cws.Dial(ctx, wsURL(ts, "?token=bad"), nil)
			require.Error(t, err)
			require.Equal(t, tt.status, resp.StatusCode)
			text, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, tt.text, strings.TrimSpace(string(text)))
			require.NotContains(t, string(text), "bad", "the token is not echoed")
			require.Empty(t, fc.started, "no session for a refused token")
		})
	}
}

func TestNoTokenIsTheCoresBusiness(t *testing.T) {
	fc := newFakeCore()
	ts := startHandler(t, fc, Options{})
	c := dial(t, wsURL(ts, "?token="), nil)
	write(t, c, cws.MessageBinary, mustMarshal(t, &imv1.WebSocketMessage{Command: kickCommand}))
	require.Equal(t, cws.StatusNormalClosure, closeStatus(t, c))
	e := fc.waitEnded(t, 1)[0]
	require.Empty(t, e.info.Token)
	require.Empty(t, e.info.Identity.UserID)
	require.Empty(t, e.info.Platform)
}

func TestPlainHTTPRequestRefused(t *testing.T) {
	fc := newFakeCore()
	ts := startHandler(t, fc, Options{})
	resp, err := http.Get(ts.URL + "/ws")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUpgradeRequired, resp.StatusCode)
	require.Empty(t, fc.started)
}

func TestPingsAreKeepAlive(t *testing.T) {
	fc := newFakeCore()
	ts := startHandler(t, fc, Options{})
	c := dial(t, wsURL(ts, ""), nil)
	sc := <-fc.started
	require.True(t, sc.LastKeepAlive().IsZero(), "no ping yet")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	readCtx := c.CloseRead(ctx) // the client must read to see the pong
	before := time.Now()
	require.NoError(t, c.Ping(ctx))
	got := sc.LastKeepAlive()
	require.False(t, got.Before(before), "ping at %v recorded as %v", before, got)
	require.False(t, got.After(time.Now()))
	require.NoError(t, c.Close(cws.StatusNormalClosure, ""))
	<-readCtx.Done()
}

func TestReadCancelClosesNormally(t *testing.T) {
	readErr := make(chan error, 1)
	h := newHandler(func(ctx context.Context, c im.Conn, _ im.ConnInfo) error {
		rctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(20*time.Millisecond, cancel)
		_, err := c.ReadFrame(rctx)
		readErr <- err
		return err
	}, newFakeCore().authenticate, Options{})
	ts := httptest.NewServer(h)
	defer ts.Close()
	c := dial(t, wsURL(ts, ""), nil)
	require.Equal(t, cws.StatusNormalClosure, closeStatus(t, c))
	require.ErrorIs(t, <-readErr, context.Canceled)
}

func TestWriteAfterCancel(t *testing.T) {
	writeErr := make(chan error, 1)
	h := newHandler(func(ctx context.Context, c im.Conn, _ im.ConnInfo) error {
		defer c.Close()
		wctx, cancel := context.WithCancel(ctx)
		cancel()
		err := c.WriteFrames(wctx, []im.Frame{{Command: 5}})
		writeErr <- err
		_, err = c.ReadFrame(ctx) // still usable: nothing was written
		return err
	}, newFakeCore().authenticate, Options{})
	ts := httptest.NewServer(h)
	defer ts.Close()
	c := dial(t, wsURL(ts, ""), nil)
	require.ErrorIs(t, <-writeErr, context.Canceled)
	require.NoError(t, c.Close(cws.StatusNormalClosure, ""))
}

// The core reuses one ctx for many writes: its deadline passing, or its
// cancellation, between writes must not touch the connection.
func TestWriteCtxEndingBetweenWrites(t *testing.T) {
	done := make(chan error, 1)
	h := newHandler(func(ctx context.Context, c im.Conn, _ im.ConnInfo) error {
		defer c.Close()
		short, cancelShort := context.WithTimeout(ctx, 30*time.Millisecond)
		defer cancelShort()
		cancelled, cancel := context.WithCancel(ctx)
		err := errors.Join(
			c.WriteFrames(short, []im.Frame{{Command: 5, Sequence: 1}}),
			c.WriteFrames(short, []im.Frame{{Command: 5, Sequence: 2}}),
			c.WriteFrames(cancelled, []im.Frame{{Command: 5, Sequence: 3}}),
		)
		cancel()
		<-short.Done()
		// Both contexts have ended; their hooks run on goroutines of
		// their own, so give them a bounded while to let go.
		for deadline := time.Now().Add(5 * time.Second); c.(*conn).writes.Holds(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				err = errors.Join(err, errors.New("an ended write context is still held"))
				break
			}
		}
		err = errors.Join(err, c.WriteFrames(ctx, []im.Frame{{Command: 5, Sequence: 4}}))
		done <- err
		_, err = c.ReadFrame(ctx)
		return err
	}, newFakeCore().authenticate, Options{})
	ts := httptest.NewServer(h)
	defer ts.Close()
	c := dial(t, wsURL(ts, ""), nil)
	require.NoError(t, <-done)
	for seq := uint32(1); seq <= 4; seq++ {
		require.Equal(t, seq, readEnvelope(t, c).Sequence)
	}
	require.NoError(t, c.Close(cws.StatusNormalClosure, ""))
}

type ctxKey struct{}

func TestSessionOutlivesServeHTTP(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	release := make(chan struct{})
	sessionCtx := make(chan context.Context, 1)
	h := newHandler(func(ctx context.Context, c im.Conn, _ im.ConnInfo) error {
		<-release
		sessionCtx <- ctx
		return c.Close()
	}, newFakeCore().authenticate, Options{})
	returned := make(chan struct{}, 2)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, "from middleware")))
		returned <- struct{}{}
	}))
	defer ts.Close()
	c := dial(t, wsURL(ts, ""), nil)
	select {
	case <-returned: // net/http's goroutine is free while the session runs
	case <-time.After(10 * time.Second):
		t.Fatal("ServeHTTP did not return after the upgrade")
	}

	shutdown := make(chan error, 1)
	go func() { shutdown <- h.Shutdown(context.Background()) }()
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) while a session was running", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	ctx := <-sessionCtx
	require.NoError(t, ctx.Err(), "the session's ctx does not end with ServeHTTP")
	require.Equal(t, "from middleware", ctx.Value(ctxKey{}), "the request's values are kept")
	require.Equal(t, cws.StatusNormalClosure, closeStatus(t, c))
	require.NoError(t, <-shutdown)

	// Shut down: no more upgrades.
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp, err := cws.Dial(dctx, wsURL(ts, ""), nil)
	require.Error(t, err)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	resp.Body.Close()
	require.NoError(t, h.Shutdown(dctx), "Shutdown may be called again")
}

// slowHijack holds an upgrade after the 101 has gone to the client, until
// release is closed.
type slowHijack struct {
	http.ResponseWriter
	hijacked, release chan struct{}
}

func (s *slowHijack) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	close(s.hijacked)
	<-s.release
	return nc, brw, err
}

func TestShutdownDuringUpgrade(t *testing.T) {
	for _, drop := range []bool{false, true} {
		name := "Shutdown"
		if drop {
			name = "Close"
		}
		t.Run(name, func(t *testing.T) {
			fc := newFakeCore()
			h := newHandler(fc.serve, fc.authenticate, Options{})
			hijacked, release := make(chan struct{}), make(chan struct{})
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(&slowHijack{ResponseWriter: w, hijacked: hijacked, release: release}, r)
			}))
			defer ts.Close()
			c := dial(t, wsURL(ts, ""), nil) // has its 101
			<-hijacked

			done := make(chan error, 1)
			go func() {
				if drop {
					done <- h.Close()
				} else {
					done <- h.Shutdown(context.Background())
				}
			}()
			select {
			case err := <-done:
				t.Fatalf("%s returned (%v) during an upgrade", name, err)
			case <-time.After(20 * time.Millisecond):
			}
			close(release)
			if drop {
				require.NoError(t, <-done)
				require.Equal(t, cws.StatusCode(-1), closeStatus(t, c), "dropped, without a close frame")
				require.Empty(t, fc.started, "no session")
				return
			}
			<-fc.started
			write(t, c, cws.MessageBinary, mustMarshal(t, &imv1.WebSocketMessage{Command: kickCommand}))
			require.Equal(t, cws.StatusNormalClosure, closeStatus(t, c))
			require.NoError(t, <-done)
		})
	}
}

// rawUpgrade dials ts and sends a WebSocket upgrade request for /ws followed
// at once, in the same write, by after. It returns the connection and a
// reader positioned after the 101 response.
func rawUpgrade(t *testing.T, ts *httptest.Server, after []byte) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", ts.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	req := "GET /ws HTTP/1.1\r\nHost: " + ts.Listener.Addr().String() + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	_, err = nc.Write(append([]byte(req), after...))
	require.NoError(t, err)
	require.NoError(t, nc.SetDeadline(time.Now().Add(10*time.Second)))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	return nc, br
}

// clientFrame is a masked frame, as a client sends it.
func clientFrame(opcode byte, payload []byte) []byte {
	b := []byte{0x80 | opcode}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// readServerFrame reads one unmasked frame, as a server sends it.
func readServerFrame(t *testing.T, r io.Reader) (opcode byte, payload []byte) {
	t.Helper()
	var h [2]byte
	_, err := io.ReadFull(r, h[:])
	require.NoError(t, err)
	require.NotZero(t, h[0]&0x80, "fin")
	require.Zero(t, h[1]&0x80, "servers do not mask")
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		_, err = io.ReadFull(r, l[:])
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		_, err = io.ReadFull(r, l[:])
		n = binary.BigEndian.Uint64(l[:])
	}
	require.NoError(t, err)
	payload = make([]byte, n)
	_, err = io.ReadFull(r, payload)
	require.NoError(t, err)
	return h[0] & 0x0f, payload
}

func TestPipelinedFramesAfterUpgrade(t *testing.T) {
	// A client that does not wait for the 101 before its first frames: net/
	// http reads them along with the request, and they must not be lost
	// when the connection is handed over. The second frame is larger than
	// the buffer the connection keeps for reading.
	fc := newFakeCore()
	ts := startHandler(t, fc, Options{})
	var frames []byte
	for i, body := range [][]byte{[]byte("one"), bytes.Repeat([]byte("x"), 2*idleReadSize), nil} {
		cmd := imv1.CommandType_CMD_SEND_MSG_REQ
		if body == nil {
			cmd = kickCommand
		}
		frames = append(frames, clientFrame(2, mustMarshal(t, &imv1.WebSocketMessage{Command: cmd, Sequence: uint32(i + 1), Body: body}))...)
	}
	_, br := rawUpgrade(t, ts, frames)

	for seq := uint32(1); seq <= 2; seq++ {
		op, p := readServerFrame(t, br)
		require.Equal(t, byte(2), op)
		var m imv1.WebSocketMessage
		require.NoError(t, proto.Unmarshal(p, &m))
		require.Equal(t, seq, m.Sequence)
	}
	op, p := readServerFrame(t, br)
	require.Equal(t, byte(8), op, "the kick closes the connection")
	require.Equal(t, uint16(cws.StatusNormalClosure), binary.BigEndian.Uint16(p))
	e := fc.waitEnded(t, 1)[0]
	require.Len(t, e.frames, 3)
	require.Len(t, e.frames[1].Body, 2*idleReadSize)
}

func TestBurstOfMixedSizes(t *testing.T) {
	// Messages of all sizes, sent without waiting and echoed back in
	// batches: they cross the small read buffer, the pooled read chunks
	// and the write batches in every way.
	fc := newFakeCore()
	ts := startHandler(t, fc, Options{})
	c := dial(t, wsURL(ts, ""), nil)
	c.SetReadLimit(2 * im.MaxFrameSize)
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := make([]int, 400)
	for i := range sizes {
		switch i % 4 {
		case 0:
			sizes[i] = rng.IntN(64)
		case 1:
			sizes[i] = rng.IntN(2 * idleReadSize)
		case 2:
			sizes[i] = rng.IntN(3 * idleread.ChunkSize)
		default:
			sizes[i] = rng.IntN(2 * flushSize)
		}
	}
	body := func(i int) []byte {
		b := make([]byte, sizes[i])
		for j := range b {
			b[j] = byte(i + j)
		}
		return b
	}
	sent := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i := range sizes {
			env, err := proto.Marshal(&imv1.WebSocketMessage{Command: 5, Sequence: uint32(i + 1), Body: body(i)})
			if err == nil {
				err = c.Write(ctx, cws.MessageBinary, env)
			}
			if err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	for i := range sizes {
		got := readEnvelope(t, c)
		require.Equal(t, uint32(i+1), got.Sequence)
		require.Equal(t, len(body(i)), len(got.Body), "message %d", i)
		if len(got.Body) > 0 {
			require.Equal(t, body(i), got.Body, "message %d", i)
		}
	}
	require.NoError(t, <-sent)
}

func TestPingsDuringWrites(t *testing.T) {
	// Pongs join the batches being written and go out between whole
	// frames. The server stays at most a few batches ahead of the client,
	// which says when it has read one: a pong queued behind megabytes of
	// frames (a slow client, under the race detector) would take longer
	// to reach it than its ping may wait.
	const batchLen, ahead = 50, 4
	h := newHandler(func(ctx context.Context, c im.Conn, _ im.ConnInfo) error {
		ctx, cancel := context.WithCancel(ctx)
		read, gone := make(chan struct{}), make(chan struct{})
		// The reader is gone before the handler returns: it may be
		// waiting to report a frame nobody will take.
		defer func() {
			cancel()
			c.Close()
			<-gone
		}()
		go func() { // answers pings
			defer close(gone)
			for {
				if _, err := c.ReadFrame(ctx); err != nil {
					return
				}
				select {
				case read <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}()
		for n, seq := 0, uint32(1); ; n++ {
			if n >= ahead {
				select {
				case <-read:
				case <-gone:
					return net.ErrClosed
				}
			}
			batch := make([]im.Frame, batchLen)
			for j := range batch {
				batch[j] = im.Frame{Command: 5, Sequence: seq, Body: make([]byte, 1000)}
				seq++
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := c.WriteFrames(wctx, batch)
			cancel()
			if err != nil {
				return err
			}
		}
	}, newFakeCore().authenticate, Options{})
	ts := httptest.NewServer(h)
	defer ts.Close()
	c := dial(t, wsURL(ts, ""), nil)
	pinged := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for range 5 {
			if err := c.Ping(ctx); err != nil {
				pinged <- err
				return
			}
		}
		pinged <- nil
	}()
	for seq := uint32(1); ; seq++ {
		require.Equal(t, seq, readEnvelope(t, c).Sequence)
		if seq%batchLen == 0 {
			write(t, c, cws.MessageBinary, mustMarshal(t, &imv1.WebSocketMessage{Command: 5}))
		}
		select {
		case err := <-pinged:
			require.NoError(t, err)
			c.CloseNow()
			require.NoError(t, h.Shutdown(context.Background()))
			return
		default:
		}
	}
}

func TestWriteTimeoutDropsConnection(t *testing.T) {
	writeErr := make(chan error, 1)
	h := newHandler(func(ctx context.Context, c im.Conn, _ im.ConnInfo) error {
		defer c.Close()
		big := []im.Frame{{Command: 5, Body: make([]byte, 256<<10)}}
		for {
			wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			err := c.WriteFrames(wctx, big)
			cancel()
			if err != nil {
				writeErr <- err
				return err
			}
		}
	}, newFakeCore().authenticate, Options{})
	ts := httptest.NewServer(h)
	defer ts.Close()
	nc, _ := rawUpgrade(t, ts, nil) // and never reads
	select {
	case err := <-writeErr:
		require.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(10 * time.Second):
		t.Fatal("WriteFrames to a client that does not read did not time out")
	}
	// Dropped: after the unread data, the client finds the connection
	// closed rather than a close handshake.
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err := io.Copy(io.Discard, nc)
	require.NoError(t, err, "EOF, not a timeout")
	require.NoError(t, h.Shutdown(context.Background()))
}

func TestCloseCutsCloseHandshake(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	served := make(chan struct{})
	h := newHandler(func(ctx context.Context, c im.Conn, _ im.ConnInfo) error {
		close(served)
		return c.Close()
	}, newFakeCore().authenticate, Options{})
	ts := httptest.NewServer(h)
	defer ts.Close()
	nc, br := rawUpgrade(t, ts, nil)
	<-served
	op, _ := readServerFrame(t, br)
	require.Equal(t, byte(8), op)
	// The client never answers the close frame: the handshake waits.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, h.Shutdown(ctx), context.DeadlineExceeded)

	start := time.Now()
	require.NoError(t, h.Close())
	require.Less(t, time.Since(start), 2*time.Second, "Close does not wait out the handshake")
	_, err := io.Copy(io.Discard, br)
	require.NoError(t, err, "the connection is closed")
	nc.Close()
	ts.Close()
}

func TestCloseEndsSessions(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	fc := newFakeCore()
	h := newHandler(fc.serve, fc.authenticate, Options{})
	ts := httptest.NewServer(h)
	defer ts.Close()
	var clients []*cws.Conn
	for range 3 {
		clients = append(clients, dial(t, wsURL(ts, ""), nil))
		<-fc.started
	}
	require.NoError(t, h.Close())
	for _, e := range fc.waitEnded(t, 3) {
		require.Error(t, e.err)
	}
	for _, c := range clients {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _, err := c.Read(ctx)
		cancel()
		require.Error(t, err)
		c.CloseNow()
	}
	require.NoError(t, h.Close(), "Close may be called again")
	ts.Close()
}
