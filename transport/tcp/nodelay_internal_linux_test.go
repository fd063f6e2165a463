package tcp

import (
	"context"
	"net"
	"syscall"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/stretchr/testify/require"
)

func TestNoDelayStaysOn(t *testing.T) {
	got := make(chan int, 1)
	s := newServer(func(ctx context.Context, c im.Conn, _ im.ConnInfo) error {
		defer c.Close()
		raw, err := c.(*conn).nc.(*net.TCPConn).SyscallConn()
		if err != nil {
			got <- -1
			return err
		}
		v := -1
		_ = raw.Control(func(fd uintptr) {
			v, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
		})
		got <- v
		return nil
	}, Options{})
	addr, _ := startServer(t, s)
	dial(t, addr)
	require.Equal(t, 1, <-got)
}
