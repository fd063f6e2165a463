package tcp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/wire"
	"github.com/imserver/imserver/transport/internal/idleread"
	"github.com/imserver/imserver/transport/internal/writeguard"
)

const (
	// Write batching: frames are gathered into a pooled buffer and written
	// when it holds flushSize bytes; a body of largeBody bytes or more is
	// written straight from the frame, after its header, without a copy.
	flushSize = 32 << 10
	largeBody = 16 << 10

	// After Close, the connection's goroutine waits up to lingerTimeout,
	// reading and discarding at most lingerBytes, for the client to close
	// its side before the socket is closed.
	lingerTimeout = time.Second
	lingerBytes   = 256 << 10
)

// errClosed is what ReadFrame and WriteFrames return after Close.
var errClosed = fmt.Errorf("tcp: connection closed: %w", net.ErrClosed)

// conn is one client connection: an im.Conn over a net.Conn.
//
// Closing happens in two steps. Close, called by the core from any
// goroutine, shuts down the sending side (FIN after the data already
// queued) and unblocks the reader and writer at once. The socket itself is
// closed by the connection's goroutine once the session is over (finish),
// after the client has closed its side or lingerTimeout has passed. Closing
// the socket while the client's bytes sit unread would make the kernel send
// RST, which can destroy the last frames (a KICK_OUT, say) before the client
// reads them.
type conn struct {
	nc net.Conn
	// br parses headers in place; it is wire.HeaderSize (16) bytes, the
	// least bufio allows, over rd, which reads into pooled chunks held only
	// while they hold bytes not read yet. An idle connection holds no read
	// buffer.
	br      *bufio.Reader
	rd      *idleread.Reader
	maxBody int
	bufs    *sync.Pool // of *[]byte, shared by a Server's connections

	// cancel ends the context the connection's session runs under; set by
	// the Server before the connection is shared.
	cancel context.CancelFunc
	// release frees the connection's slot in its address's count (see
	// Options.MaxConnsPerIP) once its goroutine is done.
	release func()

	// watched is the ctx ReadFrame last saw; stopWatch undoes the hook that
	// closes the connection when it ends. The core passes the same ctx to
	// every ReadFrame of a session, so the hook is set up once, not per
	// frame. Only the reading goroutine touches these two.
	watched   context.Context
	stopWatch func() bool

	// writes ties each write to its ctx: the ctx's deadline becomes the
	// socket's, and a cancellation during a write closes the connection.
	writes writeguard.Guard

	closing   atomic.Bool // Close was called
	closeOnce sync.Once
	hardOnce  sync.Once
	hardErr   error
}

var _ im.Conn = (*conn)(nil)

func newConn(nc net.Conn, maxBody int, bufs *sync.Pool) *conn {
	rd := idleread.New(nc)
	c := &conn{
		nc:      nc,
		br:      bufio.NewReaderSize(rd, wire.HeaderSize),
		rd:      rd,
		maxBody: maxBody,
		bufs:    bufs,
	}
	c.writes.Setup = func(ctx context.Context) error {
		deadline, _ := ctx.Deadline() // the zero time clears an earlier deadline
		if err := c.nc.SetWriteDeadline(deadline); err != nil {
			_ = c.hardClose()
			return err
		}
		return nil
	}
	// The deadline already bounds a write; only a cancellation needs the
	// connection closed under the writer's feet.
	c.writes.Abort = func(ctx context.Context) {
		if errors.Is(ctx.Err(), context.Canceled) {
			_ = c.hardClose()
		}
	}
	return c
}

// ReadFrame reads the next frame. Ending ctx closes the connection, and the
// error is then ctx.Err(). Any other error closes it too: after a bad header
// or a half-read frame the stream cannot be resumed.
func (c *conn) ReadFrame(ctx context.Context) (im.Frame, error) {
	if err := ctx.Err(); err != nil {
		return im.Frame{}, err
	}
	if ctx != c.watched {
		if c.stopWatch != nil {
			c.stopWatch()
		}
		c.watched, c.stopWatch = ctx, context.AfterFunc(ctx, func() { _ = c.Close() })
	}
	f, err := c.readFrame()
	if cerr := ctx.Err(); cerr != nil {
		_ = c.Close()
		return im.Frame{}, cerr
	}
	if err != nil {
		if c.closing.Load() {
			return im.Frame{}, errClosed
		}
		// The client hung up or broke the framing: nothing is left to
		// deliver, so no lingering either.
		_ = c.hardClose()
		return im.Frame{}, err
	}
	return f, nil
}

func (c *conn) readFrame() (im.Frame, error) {
	// c.br is a *bufio.Reader, so the header is parsed in its buffer: no
	// allocation per frame besides the body.
	return wire.ReadFrame(c.br, c.maxBody)
}

// WriteFrames writes frames with as few writes as it can. ctx's deadline
// becomes the write deadline; cancelling ctx closes the connection. When ctx
// ended the write, the error is ctx.Err() (or wraps
// context.DeadlineExceeded). Any error closes the connection, since a frame
// may have been cut short.
func (c *conn) WriteFrames(ctx context.Context, frames []im.Frame) error {
	if c.closing.Load() {
		return errClosed
	}
	if err := c.writes.Begin(ctx); err != nil {
		return err
	}
	defer c.writes.End()
	if err := c.writeFrames(frames); err != nil {
		_ = c.hardClose()
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if c.closing.Load() {
				return errClosed
			}
			// The socket's deadline fired a moment before ctx's timer.
			return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		return err
	}
	return nil
}

func (c *conn) writeFrames(frames []im.Frame) error {
	bp := c.bufs.Get().(*[]byte)
	buf := (*bp)[:0]
	defer func() {
		*bp = buf[:0]
		c.bufs.Put(bp)
	}()

	var err error
	for _, f := range frames {
		if len(f.Body) < largeBody {
			if buf, err = wire.AppendFrame(buf, f); err != nil {
				return err
			}
			if len(buf) >= flushSize {
				if _, err := c.nc.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
			continue
		}
		if buf, err = wire.AppendHeader(buf, f); err != nil {
			return err
		}
		// One writev for what is buffered plus the body, on plain TCP.
		bufs := net.Buffers{buf, f.Body}
		if _, err := bufs.WriteTo(c.nc); err != nil {
			return err
		}
		buf = buf[:0]
	}
	if len(buf) > 0 {
		if _, err := c.nc.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the connection: it sends FIN after the data already written
// and makes ReadFrame and WriteFrames return at once. It never blocks, and
// only the first call does anything.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		tc, ok := c.nc.(*net.TCPConn)
		if !ok {
			// TLS would need a close_notify, a write that can block.
			_ = c.hardClose()
			return
		}
		past := time.Unix(1, 0)
		_ = tc.SetDeadline(past)
		if tc.CloseWrite() != nil {
			_ = c.hardClose()
		}
	})
	return nil
}

// finish closes the socket once the session is over, after giving the
// client lingerTimeout to read the last frames and close its side.
func (c *conn) finish() {
	if c.stopWatch != nil {
		c.stopWatch() // the session is over; its ctx no longer matters
	}
	_ = c.Close()
	c.rd.Release() // nothing read from here on is a frame
	if err := c.nc.SetReadDeadline(time.Now().Add(lingerTimeout)); err == nil {
		_, _ = io.CopyN(io.Discard, c.nc, lingerBytes)
	}
	_ = c.hardClose()
}

// hardClose closes the socket now.
func (c *conn) hardClose() error {
	c.hardOnce.Do(func() {
		c.hardErr = c.nc.Close()
	})
	return c.hardErr
}
