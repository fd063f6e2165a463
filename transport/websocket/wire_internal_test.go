package websocket

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// tcpPair returns the two ends of a loopback TCP connection, the first
// counting its writes.
func tcpPair(t *testing.T) (*countingConn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	b := <-accepted
	require.NotNil(t, b)
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return &countingConn{Conn: a}, b
}

// frameLike writes p through bw as coder/websocket writes a frame: a short
// header, the payload, then a flush.
func frameLike(t *testing.T, bw *bufio.Writer, p []byte) {
	t.Helper()
	_, err := bw.Write([]byte{0x82, 0x7f})
	require.NoError(t, err)
	_, err = bw.Write(p)
	require.NoError(t, err)
	require.NoError(t, bw.Flush())
}

func TestWireBatchIsOneWrite(t *testing.T) {
	cc, peer := tcpPair(t)
	w := &wireConn{Conn: cc}
	bw := bufio.NewWriterSize(w, frameWriteSize)
	var want bytes.Buffer
	w.startBatch()
	for i := range 20 {
		p := bytes.Repeat([]byte{byte(i)}, 50*i)
		frameLike(t, bw, p)
		want.Write([]byte{0x82, 0x7f})
		want.Write(p)
	}
	require.Zero(t, cc.writes.Load(), "nothing is written while the batch gathers")
	require.NoError(t, w.endBatch())
	require.EqualValues(t, 1, cc.writes.Load())

	// Outside a batch, a control frame is one write of its own.
	ctrl := bytes.Repeat([]byte{'c'}, 125)
	frameLike(t, bw, ctrl)
	want.Write([]byte{0x82, 0x7f})
	want.Write(ctrl)
	require.EqualValues(t, 2, cc.writes.Load())

	got := make([]byte, want.Len())
	_, err := io.ReadFull(peer, got)
	require.NoError(t, err)
	require.Equal(t, want.Bytes(), got)
}

func TestWireBatchLargeAndConcurrentWrites(t *testing.T) {
	// A large frame goes out from where it is; a write from another
	// goroutine during the batch (a pong) joins it between whole writes.
	cc, peer := tcpPair(t)
	w := &wireConn{Conn: cc}
	var want bytes.Buffer
	read := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(peer)
		read <- b
	}()
	w.startBatch()
	var wg sync.WaitGroup
	for i := range 40 {
		p := bytes.Repeat([]byte{byte(i)}, i*flushSize/10)
		_, err := w.Write(p)
		require.NoError(t, err)
		want.Write(p)
		if i%10 == 0 {
			// Serialized with the batch, as coder/websocket's write lock
			// serializes frames.
			var perr error
			wg.Go(func() { _, perr = w.Write([]byte("pong")) })
			wg.Wait()
			require.NoError(t, perr)
			want.WriteString("pong")
		}
	}
	require.NoError(t, w.endBatch())
	require.NoError(t, cc.Conn.(*net.TCPConn).CloseWrite())
	require.Equal(t, want.Bytes(), <-read)
}

func TestWireRefusesMessagesAfterCloseFrame(t *testing.T) {
	// The server frames its data messages itself: once coder/websocket
	// has written the close frame, nothing may follow it.
	cc, peer := tcpPair(t)
	w := &wireConn{Conn: cc}
	bw := bufio.NewWriterSize(w, frameWriteSize)
	msg := []byte{finBit | opBinary, 3, 'a', 'b', 'c'}
	closeFrame := []byte{finBit | opClose, 2, 0x03, 0xe8} // 1000, normal closure

	w.startBatch()
	require.NoError(t, w.writeMessage(msg))
	_, err := bw.Write(closeFrame)
	require.NoError(t, err)
	require.NoError(t, bw.Flush())
	require.ErrorIs(t, w.writeMessage(msg), net.ErrClosed)
	require.NoError(t, w.endBatch())

	got := make([]byte, len(msg)+len(closeFrame))
	_, err = io.ReadFull(peer, got)
	require.NoError(t, err)
	require.Equal(t, append(append([]byte(nil), msg...), closeFrame...), got)
}

func TestHeaderSizes(t *testing.T) {
	for _, n := range []int{0, 125, 126, 0xffff, 0x10000} {
		h := make([]byte, headerSize(n))
		putHeader(h, opBinary, n)
		require.Equal(t, byte(finBit|opBinary), h[0])
		switch {
		case n <= 125:
			require.Equal(t, []byte{finBit | opBinary, byte(n)}, h)
		case n <= 0xffff:
			require.Equal(t, []byte{finBit | opBinary, 126, byte(n >> 8), byte(n)}, h)
		default:
			require.Equal(t, []byte{finBit | opBinary, 127, 0, 0, 0, 0, 0, byte(n >> 16), byte(n >> 8), byte(n)}, h)
		}
	}
}
