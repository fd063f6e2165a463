package websocket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	cws "github.com/coder/websocket"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/wire"
	"github.com/imserver/imserver/transport/internal/writeguard"
)

// Messages are read into and written from buffers shared by all
// connections, taken for one message or one batch, so that an idle
// connection holds none. A buffer goes back to the pool only up to
// poolBuffer bytes: enough for the usual small frames, while a rare large
// message does not pin its memory.
const poolBuffer = 64 << 10

var (
	readBufs  = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	writeBufs = sync.Pool{New: func() any { return new([]byte) }}
)

// conn is one WebSocket client: an im.Conn and im.KeepAliver over a
// coder/websocket connection.
type conn struct {
	ws      *cws.Conn
	wire    wireConn // what ws runs on, over the hijacked connection
	json    bool     // the client chose SubprotocolJSON
	maxBody int
	log     *slog.Logger

	lastPing atomic.Int64 // unix nanoseconds of the last ping; 0 if none

	// watched is the ctx ReadFrame last saw; stopWatch undoes the hook that
	// closes the connection when it ends. The core passes the same ctx to
	// every ReadFrame of a session, so the hook is set up once, not per
	// frame. Used by ReadFrame (and unwatch, after the session) only.
	watched   context.Context
	stopWatch func() bool

	// writes ties each write to its ctx: ctx ending during a write aborts
	// the connection.
	writes writeguard.Guard

	closeOnce sync.Once
	closing   sync.WaitGroup // the close handshake's goroutine
}

var (
	_ im.Conn       = (*conn)(nil)
	_ im.KeepAliver = (*conn)(nil)
)

func newConn(maxBody int, log *slog.Logger) *conn {
	c := &conn{maxBody: maxBody, log: log}
	c.writes.Abort = func(context.Context) { c.abort() }
	return c
}

// onPing is the AcceptOptions.OnPingReceived hook. The pong is still sent.
func (c *conn) onPing(context.Context, []byte) bool {
	c.lastPing.Store(time.Now().UnixNano())
	return true
}

// LastKeepAlive reports when the client last sent a ping, so that the
// core's idle timeout counts pings (IM-iOS-SDK sends only pings on an
// otherwise quiet WebSocket).
func (c *conn) LastKeepAlive() time.Time {
	if ns := c.lastPing.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// ReadFrame reads the next message and converts it to a frame. Ending ctx
// closes the connection as Close does, and the error is then ctx.Err(). A
// message that cannot be framed closes the connection with a status saying
// why.
func (c *conn) ReadFrame(ctx context.Context) (im.Frame, error) {
	if err := ctx.Err(); err != nil {
		return im.Frame{}, err
	}
	// ctx is not given to coder/websocket, which would drop the connection
	// without a close frame when it ends. Close sends one, and the read
	// returns when the client answers it or coder/websocket stops waiting.
	if ctx != c.watched {
		c.unwatch()
		c.watched, c.stopWatch = ctx, context.AfterFunc(ctx, func() { _ = c.Close() })
	}

	typ, r, err := c.ws.Reader(context.Background())
	if err != nil {
		return im.Frame{}, c.readErr(ctx, err)
	}
	return c.readMessage(ctx, typ, r)
}

// readMessage reads the message Reader began and converts it to a frame.
// It is apart from ReadFrame so that ReadFrame's frame, which is on the
// stack under every wait for a message and under the pongs coder/websocket
// writes from there, stays small: with this one's too, an idle connection
// that is pinged needed an 8 KiB stack instead of 4.
func (c *conn) readMessage(ctx context.Context, typ cws.MessageType, r io.Reader) (im.Frame, error) {
	// Taken only now that a message has begun: an idle connection waits in
	// Reader without a buffer.
	buf := readBufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= poolBuffer {
			buf.Reset()
			readBufs.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(r); err != nil {
		// Over the read limit coder/websocket has closed the connection
		// with StatusMessageTooBig already.
		return im.Frame{}, c.readErr(ctx, err)
	}

	// Both decoders copy what they keep: buf goes back to the pool.
	var (
		f   im.Frame
		err error
	)
	switch {
	case c.json && typ == cws.MessageText:
		f, err = decodeJSON(buf.Bytes(), c.maxBody)
	case !c.json && typ == cws.MessageBinary:
		f, err = wire.DecodeEnvelope(buf.Bytes(), c.maxBody)
	case c.json:
		c.closeWith(cws.StatusUnsupportedData, "binary message on the "+SubprotocolJSON+" subprotocol")
		return im.Frame{}, fmt.Errorf("websocket: binary message on the JSON subprotocol: %w", im.ErrInvalidArgument)
	default:
		c.closeWith(cws.StatusUnsupportedData, "text message without the "+SubprotocolJSON+" subprotocol")
		return im.Frame{}, fmt.Errorf("websocket: text message without the JSON subprotocol: %w", im.ErrInvalidArgument)
	}
	if err != nil {
		if errors.Is(err, wire.ErrFrameTooLarge) {
			c.closeWith(cws.StatusMessageTooBig, "frame body too large")
		} else {
			c.closeWith(cws.StatusInvalidFramePayloadData, "malformed envelope")
		}
		return im.Frame{}, err
	}
	return f, nil
}

// unwatch removes ReadFrame's hook on its ctx; the handler calls it when
// the session is over.
func (c *conn) unwatch() {
	if c.stopWatch != nil {
		c.stopWatch()
		c.stopWatch = nil
	}
}

// readErr is the error ReadFrame returns for a failed read: ctx's error if
// ctx ended it.
func (c *conn) readErr(ctx context.Context, err error) error {
	_ = c.Close()
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// WriteFrames writes each frame as one message, stamped with the current
// time, and all of them with one write. ctx bounds the writes; when it ends,
// or the write fails, the connection is dropped, because a message may have
// been cut short.
func (c *conn) WriteFrames(ctx context.Context, frames []im.Frame) error {
	// coder/websocket only frames the messages into the batch; the writes
	// to the socket, which are what can block, are wireConn's. One hook on
	// ctx bounds them all, where coder/websocket would set one up per
	// message.
	if err := c.writes.Begin(ctx); err != nil {
		return err
	}
	defer c.writes.End()
	c.wire.startBatch()
	err := c.writeFrames(frames)
	// Even after an error the batch holds whole frames, unless the socket
	// has failed already: coder/websocket cuts a frame short only on a
	// failed write or a closed socket. It may end in the close frame, when
	// the close handshake began meanwhile and refused the next frame.
	if werr := c.wire.endBatch(); werr != nil {
		c.abort()
		if err == nil {
			err = werr
		}
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return err
	}
	return nil
}

func (c *conn) writeFrames(frames []im.Frame) error {
	now := time.Now().UnixMilli()
	bp := writeBufs.Get().(*[]byte)
	buf := *bp
	defer func() {
		if cap(buf) <= poolBuffer {
			*bp = buf[:0]
			writeBufs.Put(bp)
		}
	}()
	format := any(binaryFormat{})
	if c.json {
		format = jsonFormat{}
	}
	for _, f := range frames {
		var msg []byte
		if f.Shared != nil {
			msg = f.Shared.Get(format)
		}
		if msg == nil {
			buf, msg = c.encode(buf[:0], f, now)
			if f.Shared != nil {
				// The first connection to write a push encodes it for
				// all: the copy is the only one, however many
				// connections send it.
				msg = f.Shared.Put(format, bytes.Clone(msg))
			}
		}
		if err := c.wire.writeMessage(msg); err != nil {
			return err
		}
	}
	return nil
}

// The formats a frame is encoded in for im.Frame.Shared: a whole WebSocket
// message, header included, for each subprotocol.
type (
	binaryFormat struct{}
	jsonFormat   struct{}
)

// encode appends f to buf as a whole WebSocket message stamped nowMS, and
// returns buf and the message, which is in buf.
//
// The server writes its data messages itself, not through coder/websocket,
// so that a push to many connections is framed once (see wireConn); a
// server's frames are not masked, and compression is never negotiated, so
// a message is a header and the envelope as it is.
func (c *conn) encode(buf []byte, f im.Frame, nowMS int64) (all, msg []byte) {
	buf = append(buf, make([]byte, maxHeader)...) // room for the header, filled in once the length is known
	op := byte(opBinary)
	if c.json {
		op = opText
		var err error
		buf, err = appendJSON(buf, f, nowMS)
		if err != nil {
			// A core bug, not the client's: send what there is.
			c.log.Error("websocket: frame without its JSON body", "cmd", f.Command, "err", err)
		}
	} else {
		buf = wire.AppendEnvelope(buf, f, nowMS)
	}
	n := len(buf) - maxHeader
	start := maxHeader - headerSize(n)
	putHeader(buf[start:maxHeader], op, n)
	return buf, buf[start:]
}

// Close closes the connection with StatusNormalClosure. The close handshake
// runs on a goroutine of its own, so that Close returns at once even when
// the client does not answer; the Handler waits for it to finish.
func (c *conn) Close() error {
	c.closeWith(cws.StatusNormalClosure, "")
	return nil
}

// CloseWithReason closes the connection as Close does, with
// StatusPolicyViolation (1008) when the core ends it for breaking the
// protocol's rules: no authentication in time (im.ErrAuthTimeout), or
// requests no correct client sends (im.ErrProtocolAbuse).
func (c *conn) CloseWithReason(reason error) error {
	switch {
	case errors.Is(reason, im.ErrAuthTimeout):
		c.closeWith(cws.StatusPolicyViolation, "no authentication in time")
	case errors.Is(reason, im.ErrProtocolAbuse):
		c.closeWith(cws.StatusPolicyViolation, "protocol abuse")
	default:
		c.closeWith(cws.StatusNormalClosure, "")
	}
	return nil
}

// closeWith starts the close handshake with code and reason, the first time
// it or Close is called.
func (c *conn) closeWith(code cws.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		c.closing.Add(1)
		go func() {
			defer c.closing.Done()
			_ = c.ws.Close(code, reason)
		}()
	})
}

// closeAndWait closes the connection as Close does and waits until the close
// handshake is over.
func (c *conn) closeAndWait() {
	_ = c.Close()
	c.closing.Wait()
}

// abort drops the connection without a close handshake, cutting short one
// in progress: reads and writes fail at once, and so does the handshake.
func (c *conn) abort() {
	_ = c.wire.Conn.Close()
}
