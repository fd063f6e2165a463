package tcp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
	"github.com/stretchr/testify/require"
)

// session records what a fake core saw of one connection.
type session struct {
	info im.ConnInfo
	err  error // ServeConn's result
}

// fakeCore stands in for im.Server.ServeConn. It echoes every frame back,
// in batches of whatever it has read, until reading fails.
type fakeCore struct {
	mu       sync.Mutex
	sessions []session
	started  chan im.Conn
}

func newFakeCore() *fakeCore { return &fakeCore{started: make(chan im.Conn, 16)} }

func (fc *fakeCore) serve(ctx context.Context, c im.Conn, info im.ConnInfo) error {
	defer c.Close()
	fc.started <- c
	var err error
	for {
		var f im.Frame
		if f, err = c.ReadFrame(ctx); err != nil {
			break
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = c.WriteFrames(wctx, []im.Frame{f, {Command: f.Command, Sequence: f.Sequence + 1}})
		cancel()
		if err != nil {
			break
		}
	}
	fc.mu.Lock()
	fc.sessions = append(fc.sessions, session{info: info, err: err})
	fc.mu.Unlock()
	return err
}

func (fc *fakeCore) ended() []session {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return append([]session(nil), fc.sessions...)
}

// startServer serves on 127.0.0.1:0 and returns the address and a channel
// receiving Serve's result. The server is closed when the test ends.
func startServer(t *testing.T, s *Server) (string, <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		require.NoError(t, s.Close())
		require.ErrorIs(t, <-served, im.ErrServerClosed)
	})
	return l.Addr().String(), served
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func writeFrames(t *testing.T, w io.Writer, frames ...im.Frame) {
	t.Helper()
	var buf []byte
	for _, f := range frames {
		var err error
		buf, err = wire.AppendFrame(buf, f)
		require.NoError(t, err)
	}
	_, err := w.Write(buf)
	require.NoError(t, err)
}

func TestServerEcho(t *testing.T) {
	fc := newFakeCore()
	s := newServer(fc.serve, Options{})
	addr, _ := startServer(t, s)
	c := dial(t, addr)

	// Small frames, one that fills the write buffer, and bodies large
	// enough to take the unbuffered path.
	sent := []im.Frame{
		{Command: imv1.CommandType_CMD_HEARTBEAT_REQ, Sequence: 1},
		{Command: imv1.CommandType_CMD_SEND_MSG_REQ, Sequence: 3, Body: []byte("hello")},
		{Command: imv1.CommandType_CMD_SEND_MSG_REQ, Sequence: 5, Body: bytes.Repeat([]byte{7}, flushSize)},
		{Command: imv1.CommandType_CMD_SEND_MSG_REQ, Sequence: 7, Body: bytes.Repeat([]byte{8}, largeBody)},
		{Command: imv1.CommandType_CMD_SEND_MSG_REQ, Sequence: 9, Body: bytes.Repeat([]byte{9}, im.MaxFrameSize)},
	}
	go writeFrames(t, c, sent...)
	for _, want := range sent {
		got, err := wire.ReadFrame(c, 0)
		require.NoError(t, err)
		require.Equal(t, want.Command, got.Command)
		require.Equal(t, want.Sequence, got.Sequence)
		require.True(t, bytes.Equal(want.Body, got.Body))
		got, err = wire.ReadFrame(c, 0)
		require.NoError(t, err)
		require.Equal(t, want.Sequence+1, got.Sequence)
		require.Empty(t, got.Body)
	}

	require.NoError(t, c.Close())
	require.Eventually(t, func() bool { return len(fc.ended()) == 1 }, 5*time.Second, time.Millisecond)
	got := fc.ended()[0]
	require.Equal(t, "tcp", got.info.Transport)
	require.Equal(t, c.LocalAddr().String(), got.info.RemoteAddr)
	require.Empty(t, got.info.Token)
	require.ErrorIs(t, got.err, io.EOF)
}

func TestServerClosesOnBadFrame(t *testing.T) {
	tests := []struct {
		name   string
		enc    func() []byte
		target error
	}{
		{"bad magic", func() []byte { return []byte("GET / HTTP/1.1\r\n\r\n") }, wire.ErrBadMagic},
		{"bad checksum", func() []byte {
			b, _ := wire.AppendFrame(nil, im.Frame{Command: 200, Sequence: 1})
			b[15] ^= 1
			return b
		}, wire.ErrBadChecksum},
		{"over the limit", func() []byte {
			b, _ := wire.AppendFrame(nil, im.Frame{Command: 200, Sequence: 1, Body: make([]byte, 101)})
			return b
		}, wire.ErrFrameTooLarge},
		{"truncated", func() []byte {
			b, _ := wire.AppendFrame(nil, im.Frame{Command: 200, Sequence: 1, Body: make([]byte, 10)})
			return b[:20]
		}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := newFakeCore()
			s := newServer(fc.serve, Options{MaxFrameSize: 100})
			addr, _ := startServer(t, s)
			c := dial(t, addr)
			_, err := c.Write(tt.enc())
			require.NoError(t, err)
			if tt.target == io.ErrUnexpectedEOF {
				require.NoError(t, c.(*net.TCPConn).CloseWrite())
			}

			// The server hangs up without answering.
			require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
			n, err := c.Read(make([]byte, 1))
			require.Zero(t, n)
			require.ErrorIs(t, err, io.EOF)

			require.Eventually(t, func() bool { return len(fc.ended()) == 1 }, 5*time.Second, time.Millisecond)
			require.ErrorIs(t, fc.ended()[0].err, tt.target)
		})
	}
}

func TestConnReadCancel(t *testing.T) {
	readErr := make(chan error, 1)
	s := newServer(func(ctx context.Context, c im.Conn, _ im.ConnInfo) error {
		rctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(10*time.Millisecond, cancel)
		_, err := c.ReadFrame(rctx)
		readErr <- err
		// The connection is unusable now: a cancelled read may have
		// consumed part of a frame.
		_, err2 := c.ReadFrame(ctx)
		require.Error(t, err2)
		return err
	}, Options{})
	addr, _ := startServer(t, s)
	c := dial(t, addr)
	require.ErrorIs(t, <-readErr, context.Canceled)
	n, err := c.Read(make([]byte, 1))
	require.Zero(t, n)
	require.ErrorIs(t, err, io.EOF)
}

func TestConnReadCancelledBefore(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := newConn(a, 0, &sync.Pool{New: func() any { return new([]byte) }})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.ReadFrame(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, c.WriteFrames(ctx, []im.Frame{{Command: 5}}), context.Canceled)
	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "Close may be called again")
}

func TestConnWriteDeadline(t *testing.T) {
	writeErr := make(chan error, 1)
	s := newServer(func(ctx context.Context, c im.Conn, _ im.ConnInfo) error {
		defer c.Close()
		// The client never reads: sooner or later the socket buffers are
		// full and the write deadline passes.
		body := make([]byte, im.MaxFrameSize)
		batch := []im.Frame{{Command: 202, Body: body}, {Command: 202, Body: body}}
		for range 1000 {
			wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			err := c.WriteFrames(wctx, batch)
			cancel()
			if err != nil {
				writeErr <- err
				return err
			}
		}
		writeErr <- errors.New("1000 MiB written to a client that reads nothing")
		return nil
	}, Options{})
	addr, _ := startServer(t, s)
	c := dial(t, addr)
	err := <-writeErr
	require.ErrorIs(t, err, context.DeadlineExceeded)
	_, err = io.Copy(io.Discard, c)
	require.NoError(t, err, "the server hung up after the failed write")
}

func TestConnWriteCancel(t *testing.T) {
	writeErr := make(chan error, 1)
	s := newServer(func(ctx context.Context, c im.Conn, _ im.ConnInfo) error {
		body := make([]byte, im.MaxFrameSize)
		wctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(20*time.Millisecond, cancel)
		var err error
		for range 1000 {
			if err = c.WriteFrames(wctx, []im.Frame{{Command: 202, Body: body}}); err != nil {
				break
			}
		}
		writeErr <- err
		return err
	}, Options{})
	addr, _ := startServer(t, s)
	dial(t, addr)
	require.ErrorIs(t, <-writeErr, context.Canceled)
}

func TestConnWriteRejectsBadFrame(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := newConn(a, 0, &sync.Pool{New: func() any { return new([]byte) }})
	err := c.WriteFrames(context.Background(), []im.Frame{{Command: 202, Body: make([]byte, im.MaxFrameSize+1)}})
	require.ErrorIs(t, err, wire.ErrFrameTooLarge)
	_, err = b.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "a failed write closes the connection")
}

func TestShutdownWaitsForConnections(t *testing.T) {
	fc := newFakeCore()
	s := newServer(fc.serve, Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()

	c := dial(t, l.Addr().String())
	<-fc.started

	// The session is still running: Shutdown stops accepting, then gives
	// up when its context does.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, s.Shutdown(ctx), context.DeadlineExceeded)
	require.ErrorIs(t, <-served, im.ErrServerClosed)
	_, err = net.Dial("tcp", l.Addr().String())
	require.Error(t, err, "the listener is closed")

	// The established connection still works.
	writeFrames(t, c, im.Frame{Command: 5, Sequence: 1})
	f, err := wire.ReadFrame(c, 0)
	require.NoError(t, err)
	require.Equal(t, uint32(1), f.Sequence)

	// Once the session ends, Shutdown returns.
	require.NoError(t, c.Close())
	require.NoError(t, s.Shutdown(context.Background()))
	require.Len(t, fc.ended(), 1)

	require.NoError(t, s.Shutdown(context.Background()), "Shutdown is idempotent")
	require.NoError(t, s.Close())
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.ErrorIs(t, s.Serve(l2), im.ErrServerClosed)
	_, err = l2.Accept()
	require.Error(t, err, "Serve closes the listener it refuses")
	require.ErrorIs(t, s.ListenAndServe("127.0.0.1:0"), im.ErrServerClosed)
}

func TestCloseDropsConnections(t *testing.T) {
	fc := newFakeCore()
	s := newServer(fc.serve, Options{})
	l1, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 2)
	go func() { served <- s.Serve(l1) }()
	go func() { served <- s.Serve(l2) }()

	var clients []net.Conn
	for _, addr := range []string{l1.Addr().String(), l2.Addr().String(), l1.Addr().String()} {
		clients = append(clients, dial(t, addr))
		<-fc.started
	}
	require.NoError(t, s.Close())
	// Close waited for every session.
	require.Len(t, fc.ended(), 3)
	for _, c := range clients {
		_, err := c.Read(make([]byte, 1))
		require.ErrorIs(t, err, io.EOF)
	}
	require.ErrorIs(t, <-served, im.ErrServerClosed)
	require.ErrorIs(t, <-served, im.ErrServerClosed)
	require.NoError(t, s.Close(), "Close is idempotent")
}

func TestListenAndServe(t *testing.T) {
	fc := newFakeCore()
	s := newServer(fc.serve, Options{})
	served := make(chan error, 1)
	go func() { served <- s.ListenAndServe("127.0.0.1:0") }()
	// The address is not reported, so just check the server stops.
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.listeners) == 1
	}, 5*time.Second, time.Millisecond)
	require.NoError(t, s.Shutdown(context.Background()))
	require.ErrorIs(t, <-served, im.ErrServerClosed)

	require.Error(t, newServer(fc.serve, Options{}).ListenAndServe("127.0.0.1:-1"))
}

// flakyListener fails its first Accepts with temporary errors.
type flakyListener struct {
	net.Listener
	mu        sync.Mutex
	temporary int
	fatal     error
}

type tempErr struct{}

func (tempErr) Error() string   { return "temporary accept failure" }
func (tempErr) Temporary() bool { return true }
func (tempErr) Timeout() bool   { return false }

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.temporary > 0 {
		l.temporary--
		return nil, tempErr{}
	}
	if l.fatal != nil {
		return nil, l.fatal
	}
	return l.Listener.Accept()
}

func TestServeRetriesTemporaryErrors(t *testing.T) {
	fc := newFakeCore()
	s := newServer(fc.serve, Options{})
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := &flakyListener{Listener: inner, temporary: 4}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	c := dial(t, inner.Addr().String())
	writeFrames(t, c, im.Frame{Command: 5, Sequence: 42})
	f, err := wire.ReadFrame(c, 0)
	require.NoError(t, err)
	require.Equal(t, uint32(42), f.Sequence)
	require.NoError(t, s.Close())
	require.ErrorIs(t, <-served, im.ErrServerClosed)
}

func TestServeShutdownDuringBackoff(t *testing.T) {
	s := newServer(newFakeCore().serve, Options{})
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := &flakyListener{Listener: inner, temporary: 1 << 30}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	require.Eventually(t, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.temporary < 1<<30-3 // backing off by now
	}, 30*time.Second, time.Millisecond)
	require.NoError(t, s.Shutdown(context.Background()))
	require.ErrorIs(t, <-served, im.ErrServerClosed)
}

func TestServeReturnsFatalError(t *testing.T) {
	s := newServer(newFakeCore().serve, Options{})
	defer s.Close()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	boom := errors.New("boom")
	require.ErrorIs(t, s.Serve(&flakyListener{Listener: inner, fatal: boom}), boom)
	_, err = inner.Accept()
	require.ErrorIs(t, err, net.ErrClosed, "Serve closes its listener")
}

func TestServerTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	fc := newFakeCore()
	s := newServer(fc.serve, Options{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	addr, _ := startServer(t, s)

	t.Run("round trip", func(t *testing.T) {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		require.NoError(t, err)
		defer c.Close()
		writeFrames(t, c, im.Frame{Command: 200, Sequence: 8, Body: []byte("secret")})
		f, err := wire.ReadFrame(c, 0)
		require.NoError(t, err)
		require.Equal(t, "secret", string(f.Body))
	})

	t.Run("plain client never reaches the core", func(t *testing.T) {
		before := len(fc.started)
		c := dial(t, addr)
		writeFrames(t, c, im.Frame{Command: 5, Sequence: 1}, im.Frame{Command: 5, Sequence: 2})
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err := io.ReadAll(c)
		require.NoError(t, err, "the server hangs up")
		require.Equal(t, before, len(fc.started))
	})
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "imserver test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestCloseDeliversLastFrames checks that frames written just before Close
// reach a client whose own bytes the server never read: closing such a
// socket outright would answer with RST and could destroy them.
func TestCloseDeliversLastFrames(t *testing.T) {
	clientSent := make(chan struct{})
	served := make(chan struct{})
	// Big enough that part of it still waits in the server's send queue,
	// which RST would throw away, when Close is called.
	kick := im.Frame{Command: imv1.CommandType_CMD_KICK_OUT, Body: bytes.Repeat([]byte{'k'}, 256<<10)}
	s := newServer(func(ctx context.Context, c im.Conn, _ im.ConnInfo) error {
		defer close(served)
		if _, err := c.ReadFrame(ctx); err != nil {
			return err
		}
		<-clientSent
		if err := c.WriteFrames(ctx, []im.Frame{kick}); err != nil {
			return err
		}
		return c.Close()
	}, Options{})
	addr, _ := startServer(t, s)
	c := dial(t, addr)
	require.NoError(t, c.(*net.TCPConn).SetReadBuffer(64<<10))
	writeFrames(t, c, im.Frame{Command: 5, Sequence: 1})
	for i := range 20 {
		writeFrames(t, c, im.Frame{Command: 5, Sequence: uint32(i + 2), Body: make([]byte, 1000)})
	}
	close(clientSent)
	<-served
	// A wait for something that must not happen: no event marks a RST
	// that never comes. Loopback delivers one in microseconds; a shorter
	// wait could only let a bad close pass, never fail a good one.
	time.Sleep(20 * time.Millisecond)

	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	f, err := wire.ReadFrame(c, 0)
	require.NoError(t, err)
	require.Equal(t, kick.Command, f.Command)
	require.Equal(t, kick.Body, f.Body)
	_, err = wire.ReadFrame(c, 0)
	require.ErrorIs(t, err, io.EOF)
}

func TestCloseUnblocksReadAndWrite(t *testing.T) {
	results := make(chan error, 2)
	s := newServer(func(ctx context.Context, c im.Conn, _ im.ConnInfo) error {
		go func() {
			// A writer stuck on a client that does not read.
			body := make([]byte, im.MaxFrameSize)
			for {
				if err := c.WriteFrames(ctx, []im.Frame{{Command: 202, Body: body}}); err != nil {
					results <- err
					return
				}
			}
		}()
		time.AfterFunc(50*time.Millisecond, func() { _ = c.Close() })
		_, err := c.ReadFrame(ctx)
		results <- err
		return err
	}, Options{})
	addr, _ := startServer(t, s)
	dial(t, addr)
	for range 2 {
		err := <-results
		require.Error(t, err)
		require.False(t, errors.Is(err, context.DeadlineExceeded), "unblocked by Close, not by a timeout: %v", err)
	}
}

// The core reuses one ctx for many writes: its deadline passing, or its
// cancellation, between writes must not touch the connection.
func TestConnWriteCtxEndingBetweenWrites(t *testing.T) {
	done := make(chan error, 1)
	s := newServer(func(ctx context.Context, c im.Conn, _ im.ConnInfo) error {
		short, cancelShort := context.WithTimeout(ctx, 30*time.Millisecond)
		defer cancelShort()
		cancelled, cancel := context.WithCancel(ctx)
		err := errors.Join(
			c.WriteFrames(short, []im.Frame{{Command: 202, Sequence: 1}}),
			c.WriteFrames(short, []im.Frame{{Command: 202, Sequence: 2}}),
			c.WriteFrames(cancelled, []im.Frame{{Command: 202, Sequence: 3}}),
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
		err = errors.Join(err, c.WriteFrames(ctx, []im.Frame{{Command: 202, Sequence: 4}}))
		done <- err
		<-ctx.Done()
		return err
	}, Options{})
	addr, _ := startServer(t, s)
	c := dial(t, addr)
	require.NoError(t, <-done)
	for seq := uint32(1); seq <= 4; seq++ {
		f, err := wire.ReadFrame(c, 0)
		require.NoError(t, err)
		require.Equal(t, seq, f.Sequence)
	}
}
