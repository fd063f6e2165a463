package tcp_test

import (
	"io"
	"testing"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/transport/tcp"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// One address may hold MaxConnsPerIP connections; the next is closed at
// once, and closing one frees its slot. Loopback is not exempt.
func TestMaxConnsPerIP(t *testing.T) {
	_, addr := startStackWith(t, tcp.Options{MaxConnsPerIP: 3})
	var open []*client
	for range 3 {
		c := dialClient(t, addr)
		var rsp imv1.HeartbeatResponse
		c.call(imv1.CommandType_CMD_HEARTBEAT_REQ, &imv1.HeartbeatRequest{}, &rsp)
		open = append(open, c)
	}
	extra := dialClient(t, addr)
	_, err := extra.recv() // without writing, so the close is an EOF, not a reset
	require.ErrorIs(t, err, io.EOF)

	// Free a slot; the server notices the hang-up and then admits one more.
	require.NoError(t, open[0].c.Close())
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := dialClient(t, addr)
		var rsp imv1.HeartbeatResponse
		c.send(imv1.CommandType_CMD_HEARTBEAT_REQ, nil)
		f, err := c.recv()
		if err == nil {
			require.NoError(t, proto.Unmarshal(f.Body, &rsp))
			break
		}
		require.True(t, time.Now().Before(deadline), "no slot freed after 10 s")
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range open[1:] {
		var rsp imv1.HeartbeatResponse
		c.call(imv1.CommandType_CMD_HEARTBEAT_REQ, &imv1.HeartbeatRequest{}, &rsp)
	}
}
