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
}

// New returns a Reader of nc. On plain sockets of unix systems it waits
// for data without holding a buffer; elsewhere (TLS, which buffers records
// itself, or other systems) a read waiting for data holds a chunk, as a
// bufio.Reader would.
func New(nc net.Conn) *Reader {
	return &Reader{nc: nc, raw: rawConnOf(nc)}
}

// Read reads into p what is pending, or what one read of the connection
// returns.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(r.pending) == 0 && r.err == nil {
		if len(p) >= ChunkSize {
			return r.nc.Read(p)
		}
		if r.raw != nil {
			r.readRaw()
		} else {
			r.readChunk()
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

// readChunk reads into a chunk, holding it while the read waits.
func (r *Reader) readChunk() {
	bp := chunks.Get().(*[]byte)
	n, err := r.nc.Read(*bp)
	r.err = err
	if n == 0 {
		chunks.Put(bp)
		return
	}
	r.chunk, r.pending = bp, (*bp)[:n]
}
