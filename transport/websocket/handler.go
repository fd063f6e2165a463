package websocket

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	cws "github.com/coder/websocket"

	"github.com/imserver/imserver/im"
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
	// Logger receives connection-level logs; nil discards them.
	Logger *slog.Logger
}

type (
	serveFunc func(ctx context.Context, c im.Conn, info im.ConnInfo) error
	authFunc  func(ctx context.Context, token string) (im.Identity, error)
)

type handler struct {
	serve   serveFunc
	auth    authFunc
	origins []string
	maxBody int
	log     *slog.Logger
}

// NewHandler returns an http.Handler that upgrades each request to a
// WebSocket and runs it as a session of srv. Mount it where clients dial,
// "/ws" for IM-iOS-SDK.
func NewHandler(srv *im.Server, opts Options) http.Handler {
	if srv == nil {
		panic("websocket: NewHandler with a nil *im.Server")
	}
	return newHandler(srv.ServeConn, srv.Authenticate, opts)
}

func newHandler(serve serveFunc, auth authFunc, opts Options) *handler {
	h := &handler{
		serve:   serve,
		auth:    auth,
		origins: slices.Clone(opts.OriginPatterns),
		maxBody: opts.MaxFrameSize,
		log:     opts.Logger,
	}
	if h.maxBody <= 0 || h.maxBody > im.MaxFrameSize {
		h.maxBody = im.MaxFrameSize
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h
}

// ServeHTTP runs one connection and returns when its session has ended and
// the close handshake is over.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	token := q.Get("token")
	if token != "" {
		// Refuse a bad token before upgrading, so the client sees a plain
		// HTTP status instead of a socket that closes after a frame.
		if _, err := h.auth(r.Context(), token); err != nil {
			h.refuse(w, r, err)
			return
		}
	}

	// The conn exists before Accept so the ping hook has somewhere to
	// record pings; ws and json are set before anything reads.
	c := newConn(h.maxBody, h.log)
	ws, err := cws.Accept(w, r, &cws.AcceptOptions{
		Subprotocols:   []string{SubprotocolJSON},
		OriginPatterns: h.origins,
		OnPingReceived: c.onPing,
	})
	if err != nil {
		// Accept has written the response (403 for a foreign Origin, 426
		// for a request that is not an upgrade).
		h.log.Debug("websocket: upgrade refused", "addr", r.RemoteAddr, "err", err)
		return
	}
	c.ws = ws
	c.json = strings.EqualFold(ws.Subprotocol(), SubprotocolJSON)
	limit := int64(h.maxBody) + envelopeOverhead
	if c.json {
		limit = 2*int64(h.maxBody) + 4<<10
	}
	ws.SetReadLimit(limit)

	info := im.ConnInfo{
		Transport:  "websocket",
		RemoteAddr: r.RemoteAddr,
		Token:      token,
		Platform:   q.Get("platform"),
	}
	err = h.serve(r.Context(), c, info)
	c.unwatch() // ServeConn has returned: no more ReadFrame calls
	_ = c.Close()
	<-c.closed
	h.log.Debug("websocket: connection ended", "addr", r.RemoteAddr, "err", err)
}

// refuse answers a request whose ?token= was refused.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, im.ErrTokenExpired):
		http.Error(w, "token expired", http.StatusUnauthorized)
	case errors.Is(err, im.ErrUnauthenticated), errors.Is(err, im.ErrInvalidArgument):
		http.Error(w, "authentication failed", http.StatusUnauthorized)
	case errors.Is(err, im.ErrServerClosed):
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
	default:
		// Not a verdict on the token (the host's user store is down, say):
		// the client should retry, not discard its token.
		h.log.Warn("websocket: cannot verify token", "addr", r.RemoteAddr, "err", err)
		http.Error(w, "authentication unavailable", http.StatusServiceUnavailable)
	}
}
