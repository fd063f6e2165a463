package websocket

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	cws "github.com/coder/websocket"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/wire"
	"github.com/imserver/imserver/transport/internal/iplimit"
)

// SubprotocolJSON is the WebSocket subprotocol a client offers
// (Sec-WebSocket-Protocol) to exchange JSON envelopes in text messages
// instead of protobuf envelopes in binary messages.
const SubprotocolJSON = "imserver.v1.json"

// Options configures the handler. The zero value is ready to use.
type Options struct {
	// OriginPatterns lists further Origin hosts allowed to connect, as
	// path.Match patterns ("*.example.com"); a pattern with "://" is matched
	// against scheme and host. Requests without an Origin header (native
	// apps) and requests whose Origin host is the request's own Host (the
	// SDK's Starscream sends ws://host:port) are always allowed.
	OriginPatterns []string
	// MaxFrameSize bounds the body of one frame. A binary message may be
	// this plus the envelope, a JSON message twice this (JSON spells bytes
	// out); a larger message closes the connection with
	// StatusMessageTooBig. Zero means, and larger values are lowered to,
	// im.MaxFrameSize.
	MaxFrameSize int
	// MaxConnsPerIP bounds the WebSockets one remote IP address
	// (http.Request.RemoteAddr: behind a reverse proxy, the proxy's) may
	// hold open at once; an upgrade request over it is answered 429 Too
	// Many Requests without upgrading. Zero means 64; a negative value, no
	// limit. Loopback is counted like any other address.
	MaxConnsPerIP int
	// Logger receives connection-level logs; nil discards them.
	Logger *slog.Logger
}

type (
	serveFunc func(ctx context.Context, c im.Conn, info im.ConnInfo) error
	authFunc  func(ctx context.Context, token string) (im.Identity, error)
)

// Handler upgrades requests to WebSockets and runs each as a session of an
// im.Server. Its ServeHTTP returns once the upgrade is done; the session
// then runs on a goroutine of its own, which Shutdown and Close wait for.
type Handler struct {
	// core is the im.Server sessions run on; serve runs them instead when
	// core is nil (in tests).
	core    *im.Server
	serve   serveFunc
	auth    authFunc
	origins []string
	maxBody int
	log     *slog.Logger
	perIP   *iplimit.Limiter

	mu      sync.Mutex
	closed  bool          // Shutdown or Close was called: no new connections
	dropped bool          // Close was called: connections are dropped
	drained chan struct{} // made when closed is set; closed once conns is empty too
	// conns holds every connection from before its upgrade until its
	// goroutines are done; true once it is upgraded (and can be dropped).
	conns map[*conn]bool
}

// NewHandler returns a Handler that upgrades each request to a WebSocket and
// runs it as a session of srv. Mount it where clients dial, "/ws" for
// IM-iOS-SDK. It registers with srv (im.Server.RegisterTransport), so srv's
// Shutdown and Close stop it too.
func NewHandler(srv *im.Server, opts Options) *Handler {
	if srv == nil {
		panic("websocket: NewHandler with a nil *im.Server")
	}
	h := newHandler(srv.ServeConn, srv.Authenticate, opts)
	h.core = srv
	srv.RegisterTransport(h)
	return h
}

func newHandler(serve serveFunc, auth authFunc, opts Options) *Handler {
	h := &Handler{
		serve:   serve,
		auth:    auth,
		origins: slices.Clone(opts.OriginPatterns),
		maxBody: opts.MaxFrameSize,
		log:     opts.Logger,
		conns:   make(map[*conn]bool),
		perIP:   iplimit.New(opts.MaxConnsPerIP),
	}
	if h.maxBody <= 0 || h.maxBody > im.MaxFrameSize {
		h.maxBody = im.MaxFrameSize
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h
}

// ServeHTTP upgrades the request and starts its session. It returns once the
// session has started (or the request was refused), so that net/http's
// goroutine for the connection, whose stack is large and never shrinks,
// does not stay behind for the life of an idle WebSocket.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Counted before the token is checked, so that the cost of refusing
	// is all one address can make the server pay.
	release, ok := h.perIP.Acquire(r.RemoteAddr)
	if !ok {
		h.log.Debug("websocket: too many connections from one address; refused", "addr", r.RemoteAddr)
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many connections from this address", http.StatusTooManyRequests)
		return
	}
	running := false
	defer func() {
		if !running {
			release()
		}
	}()
	q := r.URL.Query()
	var id im.Identity
	if token := q.Get("token"); token != "" {
		// Refuse a bad token before upgrading, so the client sees a plain
		// HTTP status instead of a socket that closes after a frame. The
		// core takes the identity as verified and does not ask again.
		var err error
		if id, err = h.auth(r.Context(), token); err != nil {
			h.refuse(w, r, err)
			return
		}
	}

	// The conn exists before Accept so the ping hook has somewhere to
	// record pings; ws and json are set before anything reads. It is
	// tracked from before the upgrade, so that Shutdown also waits for a
	// connection whose client has its 101 while ServeHTTP is still here.
	c := newConn(h.maxBody, h.log)
	if !h.track(c) {
		h.refuse(w, r, im.ErrServerClosed)
		return
	}
	var rw http.ResponseWriter = &hijackWriter{ResponseWriter: w, wire: &c.wire}
	if !canHijack(w) {
		rw = w // Accept answers 501 itself
	}
	ws, err := cws.Accept(rw, r, &cws.AcceptOptions{
		Subprotocols:   []string{SubprotocolJSON},
		OriginPatterns: h.origins,
		OnPingReceived: c.onPing,
	})
	if err != nil {
		// Accept has written the response (403 for a foreign Origin, 426
		// for a request that is not an upgrade).
		h.untrack(c)
		h.log.Debug("websocket: upgrade refused", "addr", r.RemoteAddr, "err", err)
		return
	}
	c.ws = ws
	c.json = strings.EqualFold(ws.Subprotocol(), SubprotocolJSON)
	limit := int64(h.maxBody) + wire.EnvelopeOverhead
	if c.json {
		limit = 2*int64(h.maxBody) + 4<<10
	}
	ws.SetReadLimit(limit)

	info := im.ConnInfo{
		Transport:  "websocket",
		RemoteAddr: r.RemoteAddr,
		Identity:   id,
		Platform:   q.Get("platform"),
	}
	if !h.upgraded(c) {
		// Close was called during the upgrade.
		c.abort()
		h.untrack(c)
		return
	}
	// r.Context() ends when ServeHTTP returns; its values stay useful.
	running = true
	go h.run(context.WithoutCancel(r.Context()), c, info, release)
}

// run runs c's session and then waits for the close handshake, so that a
// connection's goroutines are all done when run returns.
//
// Its frame is under every wait of the session for a message, and under
// the pongs coder/websocket writes from there, for the connection's whole
// life: it does little else, and calls ServeConn directly, because a method
// value's wrapper would add a frame copying the ConnInfo once more. With
// them all small, an idle connection's goroutine keeps a 4 KiB stack.
func (h *Handler) run(ctx context.Context, c *conn, info im.ConnInfo, release func()) {
	var err error
	if h.core != nil {
		err = h.core.ServeConn(ctx, c, info)
	} else {
		err = h.serve(ctx, c, info)
	}
	h.ended(c, info.RemoteAddr, err, release)
}

// ended is the rest of run, once the session is over.
func (h *Handler) ended(c *conn, addr string, err error, release func()) {
	defer release()
	defer h.untrack(c)
	c.unwatch() // ServeConn has returned: no more ReadFrame calls
	c.closeAndWait()
	h.log.Debug("websocket: connection ended", "addr", addr, "err", err)
}

// Shutdown makes the handler refuse new connections (503) and waits until
// every connection it upgraded is over: its session has returned and its
// close handshake has finished, or until ctx is done (then it returns
// ctx.Err(); Close drops what is left). A close handshake takes a round
// trip, or a few seconds if the client does not answer.
//
// Shutdown does not end sessions: the im.Server does that, and its own
// Shutdown calls this one, so a host calls only the im.Server's (then its
// http.Server's, for its other handlers).
func (h *Handler) Shutdown(ctx context.Context) error {
	drained := h.beginClose()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close makes the handler refuse new connections, closes every connection
// it upgraded at once, without a close handshake, and waits for their
// goroutines, which return as soon as their sessions notice. It may be
// called more than once, and after Shutdown.
func (h *Handler) Close() error {
	drained := h.beginClose()
	h.mu.Lock()
	h.dropped = true
	conns := make([]*conn, 0, len(h.conns))
	for c, upgraded := range h.conns {
		if upgraded {
			conns = append(conns, c)
		}
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.abort()
	}
	<-drained
	return nil
}

func (h *Handler) beginClose() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		h.drained = make(chan struct{})
		if len(h.conns) == 0 {
			close(h.drained)
		}
	}
	return h.drained
}

// track registers c, before its upgrade, unless the handler is closed.
func (h *Handler) track(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns[c] = false
	return true
}

// upgraded marks c as upgraded, for Close to drop, unless Close was called
// meanwhile.
func (h *Handler) upgraded(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dropped {
		return false
	}
	h.conns[c] = true
	return true
}

func (h *Handler) untrack(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, c)
	if h.closed && len(h.conns) == 0 {
		close(h.drained)
	}
}

// refuse answers a request refused before the upgrade: its ?token= was
// refused, or the server is shutting down.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, im.ErrTokenExpired):
		http.Error(w, "token expired", http.StatusUnauthorized)
	case errors.Is(err, im.ErrUnauthenticated), errors.Is(err, im.ErrInvalidArgument):
		// An *im.Error's Msg is safe to show, and tells the client what
		// TCP's AUTH_RSP would ("token revoked", "account disabled").
		msg := "authentication failed"
		if e := (*im.Error)(nil); errors.As(err, &e) && e.Code == im.CodeUnauthenticated && e.Msg != "" {
			msg = e.Msg
		}
		http.Error(w, msg, http.StatusUnauthorized)
	case errors.Is(err, im.ErrServerClosed):
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
	default:
		// Not a verdict on the token (the host's user store is down, say):
		// the client should retry, not discard its token.
		h.log.Warn("websocket: cannot verify token", "addr", r.RemoteAddr, "err", err)
		http.Error(w, "authentication unavailable", http.StatusServiceUnavailable)
	}
}
