//go:build !unix

package idleread

import (
	"net"
	"syscall"
)

func rawConnOf(net.Conn) syscall.RawConn { return nil }

func (r *Reader) readRaw() { r.readChunk() }
