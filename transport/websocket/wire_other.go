//go:build !unix

package websocket

import (
	"net"
	"syscall"
)

// rawConnOf returns nil: readChunkRaw is for unix systems.
func rawConnOf(net.Conn) syscall.RawConn { return nil }

func (w *wireConn) readChunkRaw() { panic("websocket: readChunkRaw without a RawConn") }
