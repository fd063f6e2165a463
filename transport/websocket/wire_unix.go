//go:build unix

package websocket

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// rawConnOf returns the syscall.RawConn of nc if it is a plain socket.
func rawConnOf(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// readChunkRaw reads into a pooled chunk, taken only once data is there: the
// runtime's poller parks the goroutine until the socket is readable, as it
// does in net.Conn.Read, but no buffer is held meanwhile. It costs the same
// system calls as net.Conn.Read.
func (w *wireConn) readChunkRaw() {
	var (
		bp  *[]byte
		n   int
		err error
	)
	rerr := w.raw.Read(func(fd uintptr) bool {
		bp = readChunks.Get().(*[]byte)
		for {
			n, err = syscall.Read(int(fd), *bp)
			if !errors.Is(err, syscall.EINTR) {
				break
			}
		}
		if errors.Is(err, syscall.EAGAIN) {
			readChunks.Put(bp)
			bp = nil
			return false // wait for data without the chunk
		}
		return true
	})
	switch {
	case rerr != nil: // closed, say
		err = rerr
	case err != nil:
		err = os.NewSyscallError("read", err)
	case n == 0:
		err = io.EOF
	}
	if err != nil {
		if bp != nil {
			readChunks.Put(bp)
		}
		w.rerr = err
		return
	}
	w.chunk, w.pending = bp, (*bp)[:n]
}
