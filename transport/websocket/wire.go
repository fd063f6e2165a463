package websocket

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net"
	"net/http"
	"sync"

	"github.com/imserver/imserver/transport/internal/idleread"
)

// Buffer sizes under coder/websocket. net/http hands a hijacked connection
// over with a 4 KiB bufio.Reader and a 4 KiB bufio.Writer, which
// coder/websocket would keep for the connection's whole life: most of an
// idle connection's memory. These replace them.
const (
	// idleReadSize is the bufio.Reader coder/websocket reads through where
	// a read cannot wait for data without a buffer to read into (TLS, or not
	// a unix system): the one read buffer an idle connection then holds. A
	// message up to about this size arrives with one read.
	idleReadSize = 512
	// rawReadSize is that bufio.Reader where reads wait without a buffer
	// (idleread.Reader.WaitsUnbuffered): bufio's minimum, since everything
	// goes through the pooled chunks.
	rawReadSize = 16
	// frameWriteSize is the bufio.Writer coder/websocket writes frames
	// through. It holds any control frame a server sends (at most 127
	// bytes) whole, so a pong is one write; data frames pass through it
	// into a batch.
	frameWriteSize = 128
	// flushSize is how much a batch gathers before it is written out; a
	// write this large goes out from where it is, without a copy.
	flushSize = 32 << 10
)

// wireConn is the net.Conn coder/websocket runs on after the upgrade.
//
// Reading goes through an idleread.Reader, as the TCP transport's does: on
// plain TCP on unix systems, reads wait for data without a buffer and then
// read into a pooled chunk, which is given back as soon as coder/websocket
// has taken its bytes, so an idle connection holds none. Elsewhere a
// connection waiting for a message reads into the small bufio.Reader only;
// when a read fills its buffer, more is probably waiting, and the next read
// goes into a chunk. A chunk is then held while idle only when a read that
// filled its buffer happened to end exactly where the client paused.
//
// Writing: the server's data messages are framed here, not by
// coder/websocket (conn.encode), so that a push to many connections is
// framed once and its bytes shared (im.Frame.Shared). Between startBatch
// and endBatch (WriteFrames) they are gathered in a pooled buffer and
// written with one write, however many there are. coder/websocket writes
// only control frames (pongs and the close frame, which it sends on its
// own); they go straight to the socket, or join the batch if one is being
// gathered.
type wireConn struct {
	net.Conn

	// rd is the read side, used by coder/websocket's reader only (under
	// its read lock).
	rd *idleread.Reader

	wmu   sync.Mutex
	batch *[]byte // from writeBufs while a batch is gathered
	// closeSent is set once coder/websocket has written the close frame.
	closeSent bool
}

func (w *wireConn) Read(p []byte) (int, error) { return w.rd.Read(p) }

// Write is what coder/websocket writes through: only control frames (pongs
// and the close frame), since the server's data messages go through
// writeMessage. Each is one call, because it fits in the bufio.Writer in
// between (frameWriteSize), so its first byte tells a close frame, after
// which writeMessage refuses, as coder/websocket would.
func (w *wireConn) Write(p []byte) (int, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if len(p) > 0 && p[0]&0x0f == opClose {
		w.closeSent = true
	}
	if w.batch == nil {
		return w.Conn.Write(p)
	}
	if err := w.gatherLocked(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// gatherLocked adds p to the batch, writing the batch out once it holds
// flushSize bytes. Called with wmu held, between startBatch and endBatch.
func (w *wireConn) gatherLocked(p []byte) error {
	if len(p) >= flushSize {
		// One writev for what is gathered and p, on plain TCP.
		bufs := net.Buffers{*w.batch, p}
		*w.batch = (*w.batch)[:0]
		_, err := bufs.WriteTo(w.Conn)
		return err
	}
	*w.batch = append(*w.batch, p...)
	if len(*w.batch) >= flushSize {
		_, err := w.Conn.Write(*w.batch)
		*w.batch = (*w.batch)[:0]
		return err
	}
	return nil
}

// startBatch makes writes gather until endBatch. Only WriteFrames calls it,
// and its calls never overlap.
func (w *wireConn) startBatch() {
	bp := writeBufs.Get().(*[]byte)
	w.wmu.Lock()
	w.batch = bp
	w.wmu.Unlock()
}

// endBatch writes what was gathered and stops gathering.
func (w *wireConn) endBatch() error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	bp := w.batch
	w.batch = nil
	var err error
	if len(*bp) > 0 {
		_, err = w.Conn.Write(*bp)
	}
	if cap(*bp) <= poolBuffer {
		*bp = (*bp)[:0]
		writeBufs.Put(bp)
	}
	return err
}

// hijackWriter is the http.ResponseWriter given to coder/websocket's Accept.
// Its Hijack hands over wire, set up over the hijacked connection with small
// buffers instead of net/http's.
type hijackWriter struct {
	http.ResponseWriter
	wire *wireConn
}

func (hw *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(hw.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// net/http has sent the 101 already; anything else in its writer
	// would be ours to send.
	if err := brw.Writer.Flush(); err != nil {
		_ = nc.Close()
		return nil, nil, err
	}
	w := hw.wire
	var early []byte
	if n := brw.Reader.Buffered(); n > 0 {
		// Frames the client sent right behind its request, without waiting
		// for the 101, that net/http read along with it.
		b, _ := brw.Reader.Peek(n)
		early = bytes.Clone(b)
	}
	w.Conn, w.rd = nc, idleread.NewBuffered(nc, early)
	readSize := idleReadSize
	if w.rd.WaitsUnbuffered() {
		readSize = rawReadSize
	}
	return w, bufio.NewReadWriter(bufio.NewReaderSize(w, readSize), bufio.NewWriterSize(w, frameWriteSize)), nil
}

func (hw *hijackWriter) Unwrap() http.ResponseWriter { return hw.ResponseWriter }

// canHijack reports whether w, or a writer it wraps, is an http.Hijacker.
func canHijack(w http.ResponseWriter) bool {
	for {
		switch t := w.(type) {
		case http.Hijacker:
			return true
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return false
		}
	}
}

// WebSocket framing (RFC 6455, section 5.2) of the data messages the server
// writes itself: one final frame, unmasked, no extension bits.
const (
	opText    = 0x1
	opBinary  = 0x2
	opClose   = 0x8
	finBit    = 0x80
	maxHeader = 10 // 2 bytes, and 8 of extended length
)

// headerSize is the length of the header of a frame carrying n bytes.
func headerSize(n int) int {
	switch {
	case n <= 125:
		return 2
	case n <= 0xffff:
		return 4
	}
	return 10
}

// putHeader writes into h, headerSize(n) bytes long, the header of a final,
// unmasked frame of opcode op carrying n bytes.
func putHeader(h []byte, op byte, n int) {
	h[0] = finBit | op
	switch len(h) {
	case 2:
		h[1] = byte(n)
	case 4:
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
	default:
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
	}
}

// writeMessage writes msg, a whole WebSocket message, as part of the batch
// being gathered (WriteFrames), or refuses it once a close frame has gone
// out: nothing may follow one.
func (w *wireConn) writeMessage(msg []byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.closeSent {
		return net.ErrClosed
	}
	return w.gatherLocked(msg)
}
