package websocket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	cws "github.com/coder/websocket"

	"github.com/imserver/imserver/im"
)

// A connection keeps its read and write buffers between messages only up to
// retainBuffer bytes: enough for the usual small frames, while a rare large
// message does not pin its memory to an idle connection.
const retainBuffer = 4 << 10

// conn is one WebSocket client: an im.Conn and im.KeepAliver over a
// coder/websocket connection.
type conn struct {
	ws      *cws.Conn
	json    bool // the client chose SubprotocolJSON
	maxBody int
	log     *slog.Logger

	lastPing atomic.Int64 // unix nanoseconds of the last ping; 0 if none

	rbuf bytes.Buffer // used by ReadFrame only
	// watched is the ctx ReadFrame last saw; stopWatch undoes the hook that
	// closes the connection when it ends. The core passes the same ctx to
	// every ReadFrame of a session, so the hook is set up once, not per
	// frame. Used by ReadFrame (and unwatch, after the session) only.
	watched   context.Context
	stopWatch func() bool
	wbuf      []byte // used by WriteFrames only

	closeOnce sync.Once
	closed    chan struct{} // closed when the close handshake is over
}

var (
	_ im.Conn       = (*conn)(nil)
	_ im.KeepAliver = (*conn)(nil)
)

func newConn(maxBody int, log *slog.Logger) *conn {
	return &conn{maxBody: maxBody, log: log, closed: make(chan struct{})}
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
	c.rbuf.Reset()
	if _, err := c.rbuf.ReadFrom(r); err != nil {
		// Over the read limit coder/websocket has closed the connection
		// with StatusMessageTooBig already.
		return im.Frame{}, c.readErr(ctx, err)
	}
	defer func() {
		if c.rbuf.Cap() > retainBuffer {
			c.rbuf = bytes.Buffer{}
		}
	}()

	var f im.Frame
	switch {
	case c.json && typ == cws.MessageText:
		f, err = decodeJSON(c.rbuf.Bytes(), c.maxBody)
	case !c.json && typ == cws.MessageBinary:
		f, err = decodeBinary(c.rbuf.Bytes(), c.maxBody)
	case c.json:
		c.closeWith(cws.StatusUnsupportedData, "binary message on the "+SubprotocolJSON+" subprotocol")
		return im.Frame{}, fmt.Errorf("websocket: binary message on the JSON subprotocol: %w", im.ErrInvalidArgument)
	default:
		c.closeWith(cws.StatusUnsupportedData, "text message without the "+SubprotocolJSON+" subprotocol")
		return im.Frame{}, fmt.Errorf("websocket: text message without the JSON subprotocol: %w", im.ErrInvalidArgument)
	}
	if err != nil {
		if errors.Is(err, errTooLarge) {
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
// time. ctx bounds the writes; when it ends, coder/websocket drops the
// connection, because a message may have been cut short.
func (c *conn) WriteFrames(ctx context.Context, frames []im.Frame) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now().UnixMilli()
	typ := cws.MessageBinary
	if c.json {
		typ = cws.MessageText
	}
	for _, f := range frames {
		if c.json {
			var err error
			c.wbuf, err = appendJSON(c.wbuf[:0], f, now)
			if err != nil {
				// A core bug, not the client's: send what there is.
				c.log.Error("websocket: frame without its JSON body", "cmd", f.Command, "err", err)
			}
		} else {
			c.wbuf = appendBinary(c.wbuf[:0], f, now)
		}
		if err := c.ws.Write(ctx, typ, c.wbuf); err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			return err
		}
	}
	if cap(c.wbuf) > retainBuffer {
		c.wbuf = nil
	}
	return nil
}

// Close closes the connection with StatusNormalClosure. The close handshake
// runs on a goroutine of its own, so that Close returns at once even when
// the client does not answer; ServeHTTP waits for it to finish.
func (c *conn) Close() error {
	c.closeWith(cws.StatusNormalClosure, "")
	return nil
}

// closeWith starts the close handshake with code and reason, the first time
// it or Close is called.
func (c *conn) closeWith(code cws.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		go func() {
			defer close(c.closed)
			_ = c.ws.Close(code, reason)
		}()
	})
}
