//go:build unix

package idleread

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

// readRaw reads into a chunk taken only once data is there: the runtime's
// poller parks the goroutine until the socket is readable, as it does in
// net.Conn.Read (deadlines included), but no buffer is held meanwhile.
func (r *Reader) readRaw() {
	var (
		bp  *[]byte
		n   int
		err error
	)
	rerr := r.raw.Read(func(fd uintptr) bool {
		bp = chunks.Get().(*[]byte)
		for {
			n, err = syscall.Read(int(fd), *bp)
			if !errors.Is(err, syscall.EINTR) {
				break
			}
		}
		if errors.Is(err, syscall.EAGAIN) {
			chunks.Put(bp)
			bp = nil
			return false // wait for data without the chunk
		}
		return true
	})
	switch {
	case rerr != nil: // closed, or past a deadline
		err = rerr
	case err != nil:
		err = os.NewSyscallError("read", err)
	case n == 0:
		err = io.EOF
	}
	if err != nil {
		if bp != nil {
			chunks.Put(bp)
		}
		r.err = err
		return
	}
	r.chunk, r.pending = bp, (*bp)[:n]
}
