package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/coder/websocket"

	"github.com/imserver/imserver/im/wire"
)

// Transport names for -transport.
const (
	transportTCP = "tcp"
	transportWS  = "websocket"
)

// link moves frames over one connection, client or server side, TCP or
// WebSocket. recv and pending are called by the connection's reader only;
// send calls are serialized by the caller; close may be called any time,
// more than once, and unblocks the others.
type link interface {
	// recv returns the next frame. Its Body may alias a buffer that the
	// next recv reuses.
	recv() (wire.Frame, error)
	// pending reports whether a whole frame is already buffered, so that
	// recv will not block: the raw server flushes its replies only when
	// none is.
	pending() bool
	// send writes frames in order, as few writes as the transport allows.
	send(frames []wire.Frame) error
	close()
}

// tcpLink is the IM-iOS-SDK TCP framing (package wire's codec).
type tcpLink struct {
	nc   net.Conn
	br   *bufio.Reader
	wbuf []byte
}

func newTCPLink(nc net.Conn) *tcpLink {
	return &tcpLink{nc: nc, br: bufio.NewReaderSize(nc, 32<<10)}
}

func (l *tcpLink) recv() (wire.Frame, error) { return wire.ReadFrame(l.br, wire.MaxFrameSize) }

func (l *tcpLink) pending() bool {
	if l.br.Buffered() < wire.HeaderSize {
		return false
	}
	hdr, err := l.br.Peek(wire.HeaderSize)
	if err != nil {
		return false
	}
	// Bytes 10-13 of the header are the body length.
	return l.br.Buffered() >= wire.HeaderSize+int(binary.BigEndian.Uint32(hdr[10:14]))
}

func (l *tcpLink) send(frames []wire.Frame) error {
	b := l.wbuf[:0]
	for _, f := range frames {
		var err error
		if b, err = wire.AppendFrame(b, f); err != nil {
			return err
		}
	}
	_, err := l.nc.Write(b)
	if cap(b) <= 256<<10 {
		l.wbuf = b
	}
	return err
}

func (l *tcpLink) close() { l.nc.Close() }

// wsLink is one protobuf WebSocketMessage envelope per binary message.
type wsLink struct {
	c    *websocket.Conn
	rbuf []byte
	wbuf []byte
}

func newWSLink(c *websocket.Conn) *wsLink {
	c.SetReadLimit(wire.MaxFrameSize + 64)
	return &wsLink{c: c}
}

func (l *wsLink) recv() (wire.Frame, error) {
	typ, r, err := l.c.Reader(context.Background())
	if err != nil {
		return wire.Frame{}, err
	}
	if typ != websocket.MessageBinary {
		return wire.Frame{}, errors.New("imbench: text message on a binary WebSocket")
	}
	b := l.rbuf[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return wire.Frame{}, err
		}
	}
	if cap(b) <= 256<<10 {
		l.rbuf = b
	}
	return wire.DecodeEnvelope(b, wire.MaxFrameSize)
}

// pending is always false: coder/websocket does not say whether another
// message is buffered.
func (l *wsLink) pending() bool { return false }

func (l *wsLink) send(frames []wire.Frame) error {
	now := time.Now().UnixMilli()
	for _, f := range frames {
		l.wbuf = wire.AppendEnvelope(l.wbuf[:0], f, now)
		if err := l.c.Write(context.Background(), websocket.MessageBinary, l.wbuf); err != nil {
			return err
		}
	}
	if cap(l.wbuf) > 256<<10 {
		l.wbuf = nil
	}
	return nil
}

func (l *wsLink) close() { l.c.CloseNow() }

// dialer opens client links from one of several loopback source
// addresses, round robin, so that more connections fit than one source
// address has ephemeral ports.
type dialer struct {
	transport string
	addr      string // host:port for TCP; ws:// URL for WebSocket
	sources   []net.IP
	clients   []*http.Client // one per source, WebSocket only
}

func newDialer(transport, addr string, sources []net.IP) *dialer {
	d := &dialer{transport: transport, addr: addr, sources: sources}
	if transport == transportWS {
		ips := sources
		if len(ips) == 0 {
			ips = []net.IP{nil} // one client, source left to the kernel
		}
		for _, ip := range ips {
			nd := &net.Dialer{Timeout: 10 * time.Second}
			if ip != nil {
				nd.LocalAddr = &net.TCPAddr{IP: ip}
			}
			d.clients = append(d.clients, &http.Client{Transport: &http.Transport{
				DialContext:       nd.DialContext,
				DisableKeepAlives: true,
				Proxy:             nil,
			}})
		}
	}
	return d
}

// close releases the HTTP transports' idle connections.
func (d *dialer) close() {
	for _, c := range d.clients {
		c.CloseIdleConnections()
	}
}

// dial connects connection number i (which picks the source address).
// token goes into the WebSocket URL, as IM-iOS-SDK sends it.
func (d *dialer) dial(ctx context.Context, i int, token string) (link, error) {
	if d.transport == transportWS {
		u, err := url.Parse(d.addr)
		if err != nil {
			return nil, err
		}
		if token != "" {
			q := u.Query()
			q.Set("token", token)
			u.RawQuery = q.Encode()
		}
		c, rsp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: d.clients[i%len(d.clients)]})
		if err != nil {
			if rsp != nil && rsp.StatusCode == http.StatusUnauthorized {
				// The server checked ?token= before upgrading.
				return nil, fmt.Errorf("%w: websocket handshake: HTTP 401", errAuth)
			}
			if rsp != nil {
				return nil, fmt.Errorf("websocket handshake: HTTP %d: %w", rsp.StatusCode, err)
			}
			return nil, err
		}
		return newWSLink(c), nil
	}
	nd := net.Dialer{Timeout: 10 * time.Second}
	if len(d.sources) > 0 {
		nd.LocalAddr = &net.TCPAddr{IP: d.sources[i%len(d.sources)]}
	}
	nc, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, err
	}
	return newTCPLink(nc), nil
}
