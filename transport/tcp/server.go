package tcp

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/transport/internal/iplimit"
)

// defaultAddr is the address ListenAndServe uses for an empty addr: the port
// IM-iOS-SDK's TCP transport dials by default.
const defaultAddr = ":8082"

// Accept errors that are temporary (out of file descriptors, say) are retried
// after a pause that doubles from minAcceptDelay up to maxAcceptDelay.
const (
	minAcceptDelay   = 5 * time.Millisecond
	maxAcceptDelay   = time.Second
	handshakeTimeout = 10 * time.Second
)

// Options configures a Server. The zero value is ready to use.
type Options struct {
	// TLSConfig, if set, makes the server speak TLS (the SDK's tcps://
	// URLs); it needs Certificates or GetCertificate. It is cloned. A
	// client must finish the TLS handshake within 10 seconds.
	TLSConfig *tls.Config
	// MaxFrameSize bounds the body of a frame read from a client; a larger
	// frame closes the connection. Zero means, and larger values are
	// lowered to, im.MaxFrameSize.
	MaxFrameSize int
	// MaxConnsPerIP bounds the connections one remote IP address may hold
	// open at once; a connection over it is closed as soon as it is
	// accepted. Zero means 64; a negative value, no limit. Loopback is
	// counted like any other address.
	MaxConnsPerIP int
	// Logger receives connection-level logs; nil discards them.
	Logger *slog.Logger
}

// serveFunc runs one session: im.Server.ServeConn in production.
type serveFunc func(ctx context.Context, c im.Conn, info im.ConnInfo) error

// Server accepts TCP connections and hands each to an im.Server.
type Server struct {
	serve   serveFunc
	tls     *tls.Config
	maxBody int
	log     *slog.Logger
	bufs    sync.Pool // write buffers, *[]byte
	perIP   *iplimit.Limiter

	mu        sync.Mutex
	closed    bool          // Shutdown or Close was called
	done      chan struct{} // closed with closed, to cut accept back-off short
	drained   chan struct{} // closed once closed is set and conns is empty
	listeners map[*net.Listener]struct{}
	conns     map[*conn]struct{}
}

// NewServer returns a Server that runs every connection it accepts as a
// session of srv. It starts nothing; call Serve or ListenAndServe. It
// registers with srv (im.Server.RegisterTransport), so srv's Shutdown and
// Close stop it too.
func NewServer(srv *im.Server, opts Options) *Server {
	if srv == nil {
		panic("tcp: NewServer with a nil *im.Server")
	}
	s := newServer(srv.ServeConn, opts)
	srv.RegisterTransport(s)
	return s
}

func newServer(serve serveFunc, opts Options) *Server {
	s := &Server{
		serve:     serve,
		maxBody:   opts.MaxFrameSize, // wire.ReadFrame resolves zero and values over the limit
		log:       opts.Logger,
		done:      make(chan struct{}),
		listeners: make(map[*net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
		perIP:     iplimit.New(opts.MaxConnsPerIP),
	}
	if opts.TLSConfig != nil {
		s.tls = opts.TLSConfig.Clone()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.bufs.New = func() any { return new([]byte) }
	return s
}

// ListenAndServe listens on the TCP address addr (":8082" if empty) and
// calls Serve.
func (s *Server) ListenAndServe(addr string) error {
	if s.isClosed() {
		return im.ErrServerClosed
	}
	if addr == "" {
		addr = defaultAddr
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// Serve accepts connections on l and serves each on a goroutine of its own
// until Shutdown or Close. It always returns a non-nil error and closes l;
// after Shutdown or Close the error is im.ErrServerClosed. Serve may be
// called for several listeners at once.
func (s *Server) Serve(l net.Listener) error {
	if s.tls != nil {
		l = tls.NewListener(l, s.tls)
	}
	if !s.trackListener(&l) {
		_ = l.Close()
		return im.ErrServerClosed
	}
	defer s.untrackListener(&l)

	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return im.ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if !errors.As(err, &te) || !te.Temporary() {
				return err
			}
			delay = min(max(2*delay, minAcceptDelay), maxAcceptDelay)
			s.log.Warn("tcp: accept failed; retrying", "err", err, "delay", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return im.ErrServerClosed
			}
			continue
		}
		delay = 0
		s.startConn(nc)
	}
}

// startConn runs nc's session on a tracked goroutine, or closes nc if the
// server is closing.
func (s *Server) startConn(nc net.Conn) {
	release, ok := s.perIP.Acquire(nc.RemoteAddr().String())
	if !ok {
		s.log.Debug("tcp: too many connections from one address; closed", "addr", nc.RemoteAddr().String())
		_ = nc.Close()
		return
	}
	c := newConn(nc, s.maxBody, &s.bufs)
	c.release = release
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		_ = c.hardClose()
		release()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	go s.serveConn(ctx, c)
}

func (s *Server) serveConn(ctx context.Context, c *conn) {
	defer s.untrackConn(c)
	defer c.release()
	defer c.finish()
	defer c.cancel()
	addr := c.nc.RemoteAddr().String()
	if tc, ok := c.nc.(*tls.Conn); ok {
		// Handshake here rather than lazily in the first read, so that a
		// client that fails TLS never reaches the core.
		hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			s.log.Debug("tcp: TLS handshake failed", "addr", addr, "err", err)
			return
		}
	}
	err := s.serve(ctx, c, im.ConnInfo{Transport: "tcp", RemoteAddr: addr})
	s.log.Debug("tcp: connection ended", "addr", addr, "err", err)
}

// Shutdown stops accepting connections and waits until every connection's
// goroutine has returned, or until ctx is done (then it returns ctx.Err()
// and the connections stay open; call Close to drop them). A goroutine
// returns when its session has ended and the client has closed its side,
// or a second after that.
//
// Shutdown does not end sessions: the im.Server does that, and its own
// Shutdown calls this one, so a host calls only the im.Server's.
func (s *Server) Shutdown(ctx context.Context) error {
	drained := s.beginClose()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes all listeners and connections now and waits for the
// connections' goroutines to return, which they do as soon as the im.Server
// notices its connection is gone.
func (s *Server) Close() error {
	drained := s.beginClose()
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.cancel()
		_ = c.hardClose()
	}
	<-drained
	return nil
}

// beginClose marks the server closed and closes its listeners, once, and
// returns the channel closed when no connection goroutine is left.
func (s *Server) beginClose() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.done)
		s.drained = make(chan struct{})
		if len(s.conns) == 0 {
			close(s.drained)
		}
		for l := range s.listeners {
			_ = (*l).Close()
		}
	}
	return s.drained
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) trackListener(l *net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.listeners[l] = struct{}{}
	return true
}

func (s *Server) untrackListener(l *net.Listener) {
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
	_ = (*l).Close()
}

func (s *Server) untrackConn(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	// No connection is added once closed is set, so this is reached once.
	if s.closed && len(s.conns) == 0 {
		close(s.drained)
	}
}
