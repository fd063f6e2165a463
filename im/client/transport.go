package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// transport moves frames over one network connection. readFrame is called by
// the reader goroutine only; writeFrame calls are serialized by conn.wmu;
// close may be called at any time, more than once, and unblocks both.
type transport interface {
	readFrame() (wire.Frame, error)
	writeFrame(ctx context.Context, f wire.Frame) error
	close()
}

// pinger is a transport with a keep-alive of its own (WebSocket ping), used
// instead of HEARTBEAT_REQ.
type pinger interface {
	ping(ctx context.Context) error
}

// defaultWriteTimeout bounds a write whose ctx has no deadline, so that a
// peer that stopped reading cannot hold the writer forever.
const defaultWriteTimeout = 10 * time.Second

// maxKeptWriteBuf is the largest write buffer kept between frames; a larger
// one (a big message) is dropped after use rather than held for the life of
// the connection.
const maxKeptWriteBuf = 64 << 10

func dialTransport(ctx context.Context, o *Options) (transport, error) {
	if o.Transport == TransportWebSocket {
		return dialWebSocket(ctx, o)
	}
	return dialTCP(ctx, o)
}

type tcpTransport struct {
	nc  net.Conn
	br  *bufio.Reader
	buf []byte // write buffer, guarded by conn.wmu
}

func dialTCP(ctx context.Context, o *Options) (transport, error) {
	var nc net.Conn
	var err error
	if o.TLSConfig != nil {
		d := tls.Dialer{Config: o.TLSConfig}
		nc, err = d.DialContext(ctx, "tcp", o.Addr)
	} else {
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", o.Addr)
	}
	if err != nil {
		return nil, err
	}
	return &tcpTransport{nc: nc, br: bufio.NewReaderSize(nc, 32<<10)}, nil
}

func (t *tcpTransport) readFrame() (wire.Frame, error) {
	return wire.ReadFrame(t.br, wire.MaxFrameSize)
}

func (t *tcpTransport) writeFrame(ctx context.Context, f wire.Frame) error {
	buf, err := wire.AppendFrame(t.buf[:0], f)
	if err != nil {
		return err
	}
	if cap(buf) <= maxKeptWriteBuf {
		t.buf = buf
	}
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(defaultWriteTimeout)
	}
	if err := t.nc.SetWriteDeadline(d); err != nil {
		return err
	}
	_, err = t.nc.Write(buf)
	return err
}

func (t *tcpTransport) close() { t.nc.Close() }

type wsTransport struct {
	c *websocket.Conn
}

func dialWebSocket(ctx context.Context, o *Options) (transport, error) {
	u, err := url.Parse(o.Addr)
	if err != nil {
		return nil, err
	}
	// The token goes in the URL as well as in AuthRequest, as IM-iOS-SDK
	// does, so servers that authenticate at the handshake accept us.
	q := u.Query()
	q.Set("token", o.Token)
	u.RawQuery = q.Encode()
	c, rsp, err := websocket.Dial(ctx, u.String(), nil)
	if err != nil {
		if rsp != nil && rsp.StatusCode == http.StatusUnauthorized {
			return nil, handshakeRefused(rsp)
		}
		return nil, err
	}
	// A frame body may be MaxFrameSize; the envelope adds a few bytes.
	c.SetReadLimit(wire.MaxFrameSize + 64)
	return &wsTransport{c: c}, nil
}

func (t *wsTransport) readFrame() (wire.Frame, error) {
	typ, data, err := t.c.Read(context.Background())
	if err != nil {
		return wire.Frame{}, err
	}
	if typ != websocket.MessageBinary {
		return wire.Frame{}, errors.New("client: text WebSocket message on a binary connection")
	}
	f, err := wire.DecodeEnvelope(data, wire.MaxFrameSize)
	if err != nil {
		return wire.Frame{}, fmt.Errorf("client: bad WebSocket envelope: %w", err)
	}
	return f, nil
}

func (t *wsTransport) writeFrame(ctx context.Context, f wire.Frame) error {
	data := wire.AppendEnvelope(nil, f, time.Now().UnixMilli())
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultWriteTimeout)
		defer cancel()
	}
	return t.c.Write(ctx, websocket.MessageBinary, data)
}

func (t *wsTransport) ping(ctx context.Context) error { return t.c.Ping(ctx) }

func (t *wsTransport) close() { t.c.CloseNow() }

// handshakeRefused turns a WebSocket handshake that the server refused with
// 401 (it checks ?token= before upgrading) into the *Error an AuthResponse
// would have given, so callers see one kind of error for a bad token.
func handshakeRefused(rsp *http.Response) error {
	defer rsp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(rsp.Body, 256))
	msg := strings.TrimSpace(string(b))
	if strings.Contains(strings.ToLower(msg), "expired") {
		return &Error{Code: imv1.ErrorCode_ERR_TOKEN_EXPIRED, Msg: msg}
	}
	return &Error{Code: imv1.ErrorCode_ERR_AUTH_FAILED, Msg: msg}
}
