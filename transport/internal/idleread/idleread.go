// Package idleread reads a connection through buffers that are held only
// while bytes wait in them, so that a connection waiting for its next
// message holds no read buffer at all.
//
// A bufio.Reader in front of a connection keeps its buffer for the
// connection's whole life, though most connections of a chat server are
// idle nearly all of it. A Reader instead waits for data without a buffer
// (on plain sockets of unix systems; see New), then reads into a chunk
// taken from a pool, and gives the chunk back as soon as its bytes are
// passed on. It costs the same system calls as a bufio.Reader of ChunkSize.
//
// Both transports read through it: the TCP transport's frames and the
// WebSocket connections under coder/websocket.
package idleread

import (
	"net"
	"sync"
	"syscall"
)

// ChunkSize is the size of the pooled chunks reads go into. A read of at
// least this much goes straight into the caller's buffer.
const ChunkSize = 4 << 10

var chunks = sync.Pool{New: func() any { b := make([]byte, ChunkSize); return &b }}

// Reader is an io.Reader over a net.Conn. It is not safe for concurrent
// use: one goroutine reads.
type Reader struct {
	nc      net.Conn
	raw     syscall.RawConn // nil where waiting without a buffer is not supported
	pending []byte          // read ahead and not passed on yet
	chunk   *[]byte         // the pooled buffer pending is in; nil if none
	err     error           // the error that came with pending, for after it
	full    bool            // without raw: the last read filled its buffer
}

// New returns a Reader of nc. On plain sockets of unix systems it waits
// for data without holding a buffer. Elsewhere (TLS, which buffers records
// itself, or other systems) a read waits in the caller's buffer, and goes
// into a chunk, held while it waits, only after a read that filled the
// caller's buffer (see WaitsUnbuffered).
func New(nc net.Conn) *Reader {
	return &Reader{nc: nc, raw: rawConnOf(nc)}
}

// NewBuffered is New for a connection some of whose bytes were read
// already, such as those an HTTP server read along with a request it then
// let go of (a WebSocket upgrade): Read passes buffered on first.
func NewBuffered(nc net.Conn, buffered []byte) *Reader {
	r := New(nc)
	r.pending = buffered
	return r
}

// WaitsUnbuffered reports whether a read waits for data without a buffer.
// Where it does not, a caller reading through a bufio.Reader should give
// it a buffer of its own large enough for a typical message: reads go
// straight into it while messages are small, and into a chunk only once
// one fills it, when more is probably waiting.
func (r *Reader) WaitsUnbuffered() bool { return r.raw != nil }

// Read reads into p what is pending, or what one read of the connection
// returns.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(r.pending) == 0 && r.err == nil {
		switch {
		case len(p) >= ChunkSize:
			return r.nc.Read(p)
		case r.raw != nil:
			r.readRaw()
		case r.full:
			r.readChunk()
		default:
			// Waiting in the caller's buffer holds no chunk while idle;
			// once a read fills it, the next goes into a chunk, so that a
			// burst still costs few reads.
			n, err := r.nc.Read(p)
			r.full = n == len(p)
			return n, err
		}
	}
	if len(r.pending) > 0 {
		n := copy(p, r.pending)
		r.pending = r.pending[n:]
		if len(r.pending) == 0 {
			r.release()
		}
		return n, nil
	}
	err := r.err
	r.err = nil
	return 0, err
}

// Buffered returns how many bytes are read ahead, ready for Read without
// touching the connection.
func (r *Reader) Buffered() int { return len(r.pending) }

// Release gives back the chunk held, dropping what it holds: for when the
// connection is done.
func (r *Reader) Release() {
	r.pending = nil
	r.release()
}

func (r *Reader) release() {
	if r.chunk != nil {
		chunks.Put(r.chunk)
		r.chunk, r.pending = nil, nil
	}
}

// readChunk reads into a chunk, holding it while the read waits: where a
// read cannot wait without a buffer, and the last one filled its buffer.
func (r *Reader) readChunk() {
	bp := chunks.Get().(*[]byte)
	n, err := r.nc.Read(*bp)
	r.err, r.full = err, n == len(*bp)
	if n == 0 {
		chunks.Put(bp)
		return
	}
	r.chunk, r.pending = bp, (*bp)[:n]
}
