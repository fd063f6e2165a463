package tcp_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/transport/tcp"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// tokens accepts "tok-<user>" for any user.
func tokens(_ context.Context, token string) (im.Identity, error) {
	if u, ok := strings.CutPrefix(token, "tok-"); ok && u != "" {
		return im.Identity{UserID: u}, nil
	}
	return im.Identity{}, fmt.Errorf("unknown token: %w", im.ErrUnauthenticated)
}

// startStack runs a real core on a bbolt store behind a tcp.Server on
// 127.0.0.1:0. Cleanup shuts both down in the documented order.
func startStack(t *testing.T) (*im.Server, string) {
	t.Helper()
	return startStackWith(t, tcp.Options{})
}

func startStackWith(t *testing.T, opts tcp.Options) (*im.Server, string) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "im.db"), bolt.Options{})
	require.NoError(t, err)
	core, err := im.NewServer(im.Config{Store: st, Authenticator: im.AuthenticatorFunc(tokens)})
	require.NoError(t, err)
	ts := tcp.NewServer(core, opts)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- ts.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, core.Shutdown(ctx))
		require.NoError(t, ts.Shutdown(ctx))
		require.ErrorIs(t, <-served, im.ErrServerClosed)
		require.NoError(t, st.Close())
	})
	return core, l.Addr().String()
}

// client speaks the SDK's TCP framing with the codec under test.
type client struct {
	t   *testing.T
	c   net.Conn
	br  *bufio.Reader
	seq uint32
}

func dialClient(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *client) send(cmd imv1.CommandType, body []byte) uint32 {
	c.t.Helper()
	c.seq++
	enc, err := wire.AppendFrame(nil, im.Frame{Command: cmd, Sequence: c.seq, Body: body})
	require.NoError(c.t, err)
	_, err = c.c.Write(enc)
	require.NoError(c.t, err)
	return c.seq
}

func (c *client) recv() (im.Frame, error) {
	c.t.Helper()
	require.NoError(c.t, c.c.SetReadDeadline(time.Now().Add(10*time.Second)))
	return wire.ReadFrame(c.br, 0)
}

// call sends a request and decodes its response into out.
func (c *client) call(cmd imv1.CommandType, req proto.Message, out proto.Message) im.Frame {
	c.t.Helper()
	body, err := proto.Marshal(req)
	require.NoError(c.t, err)
	seq := c.send(cmd, body)
	f, err := c.recv()
	require.NoError(c.t, err)
	require.Equal(c.t, seq, f.Sequence)
	require.NoError(c.t, proto.Unmarshal(f.Body, out))
	return f
}

func (c *client) auth(user string) {
	c.t.Helper()
	var rsp imv1.AuthResponse
	f := c.call(imv1.CommandType_CMD_AUTH_REQ, &imv1.AuthRequest{UserId: user, Token: "tok-" + user, Platform: "iOS"}, &rsp)
	require.Equal(c.t, imv1.CommandType_CMD_AUTH_RSP, f.Command)
	require.Equal(c.t, imv1.ErrorCode_ERR_SUCCESS, rsp.ErrorCode, rsp.ErrorMsg)
}

// requireHangUp checks that the server closes the connection, after any
// frames still on their way.
func (c *client) requireHangUp() {
	c.t.Helper()
	for {
		_, err := c.recv()
		if err != nil {
			require.ErrorIs(c.t, err, io.EOF)
			return
		}
	}
}

func TestEndToEndMessage(t *testing.T) {
	_, addr := startStack(t)
	alice, bob := dialClient(t, addr), dialClient(t, addr)
	alice.auth("alice")
	bob.auth("bob")

	var hb imv1.HeartbeatResponse
	f := alice.call(imv1.CommandType_CMD_HEARTBEAT_REQ, &imv1.HeartbeatRequest{ClientTime: 1}, &hb)
	require.Equal(t, imv1.CommandType_CMD_HEARTBEAT_RSP, f.Command)
	require.NotZero(t, hb.ServerTime)

	var ack imv1.SendMessageResponse
	f = alice.call(imv1.CommandType_CMD_SEND_MSG_REQ, &imv1.SendMessageRequest{Message: &imv1.MessageInfo{
		ClientMsgId: "c1", ConversationId: "single_alice_bob", SenderId: "alice", ReceiverId: "bob",
		MessageType: 1, Content: []byte("hello over tcp"),
	}}, &ack)
	require.Equal(t, imv1.CommandType_CMD_SEND_MSG_RSP, f.Command)
	require.Equal(t, imv1.ErrorCode_ERR_SUCCESS, ack.ErrorCode, ack.ErrorMsg)
	require.Equal(t, int64(1), ack.Seq)

	push, err := bob.recv()
	require.NoError(t, err)
	require.Equal(t, imv1.CommandType_CMD_PUSH_MSG, push.Command)
	require.Zero(t, push.Sequence, "pushes carry sequence 0")
	var pm imv1.PushMessage
	require.NoError(t, proto.Unmarshal(push.Body, &pm))
	require.Equal(t, "hello over tcp", string(pm.GetMessage().GetContent()))
	require.Equal(t, ack.ServerMsgId, pm.GetMessage().GetServerMsgId())
}

func TestEndToEndBadBodyKeepsConnection(t *testing.T) {
	_, addr := startStack(t)
	c := dialClient(t, addr)
	c.auth("alice")
	seq := c.send(imv1.CommandType_CMD_SEND_MSG_REQ, []byte{0xff})
	f, err := c.recv()
	require.NoError(t, err)
	require.Equal(t, seq, f.Sequence)
	var rsp imv1.SendMessageResponse
	require.NoError(t, proto.Unmarshal(f.Body, &rsp))
	require.Equal(t, imv1.ErrorCode_ERR_INVALID_PARAM, rsp.ErrorCode)

	var hb imv1.HeartbeatResponse
	c.call(imv1.CommandType_CMD_HEARTBEAT_REQ, &imv1.HeartbeatRequest{}, &hb)
	require.NotZero(t, hb.ServerTime, "the connection is still served")
}

func TestEndToEndBadFramingCloses(t *testing.T) {
	tests := []struct {
		name string
		enc  func() []byte
	}{
		{"bad magic", func() []byte { return []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n") }},
		{"bad checksum", func() []byte {
			b, _ := wire.AppendFrame(nil, im.Frame{Command: 5, Sequence: 9})
			b[14] ^= 0x80
			return b
		}},
		{"over 1 MiB", func() []byte { return rawHeader(0xEF89, 1, 0, 200, 9, im.MaxFrameSize+1) }},
		{"version 2", func() []byte { return rawHeader(0xEF89, 2, 0, 5, 9, 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := startStack(t)
			c := dialClient(t, addr)
			c.auth("alice")
			_, err := c.c.Write(tt.enc())
			require.NoError(t, err)
			c.requireHangUp()
		})
	}
}

func TestEndToEndAuthFailureIsAnswered(t *testing.T) {
	_, addr := startStack(t)
	c := dialClient(t, addr)
	var rsp imv1.AuthResponse
	c.call(imv1.CommandType_CMD_AUTH_REQ, &imv1.AuthRequest{UserId: "alice", Token: "forged"}, &rsp)
	require.Equal(t, imv1.ErrorCode_ERR_AUTH_FAILED, rsp.ErrorCode)
	c.requireHangUp()
}

func TestEndToEndKick(t *testing.T) {
	core, addr := startStack(t)
	c := dialClient(t, addr)
	c.auth("bob")
	require.Equal(t, 1, core.Kick("bob", "account disabled"))
	f, err := c.recv()
	require.NoError(t, err)
	require.Equal(t, imv1.CommandType_CMD_KICK_OUT, f.Command)
	var k imv1.KickOutNotification
	require.NoError(t, proto.Unmarshal(f.Body, &k))
	require.Equal(t, "account disabled", k.Message)
	c.requireHangUp()
}

func TestEndToEndShutdown(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "im.db"), bolt.Options{})
	require.NoError(t, err)
	defer st.Close()
	core, err := im.NewServer(im.Config{Store: st, Authenticator: im.AuthenticatorFunc(tokens)})
	require.NoError(t, err)
	ts := tcp.NewServer(core, tcp.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- ts.Serve(l) }()

	var clients []*client
	for _, u := range []string{"alice", "bob", "carol"} {
		c := dialClient(t, l.Addr().String())
		c.auth(u)
		clients = append(clients, c)
	}
	clients = append(clients, dialClient(t, l.Addr().String())) // never authenticates

	// Clients close their side when the server does, as the SDK does.
	hungUp := make(chan error, len(clients))
	for _, c := range clients {
		require.NoError(t, c.c.SetReadDeadline(time.Now().Add(10*time.Second)))
		go func() {
			_, err := io.Copy(io.Discard, c.c)
			c.c.Close()
			hungUp <- err
		}()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, core.Shutdown(ctx))
	require.NoError(t, ts.Shutdown(ctx))
	require.ErrorIs(t, <-served, im.ErrServerClosed)
	for range clients {
		require.NoError(t, <-hungUp, "the server closed the connection cleanly")
	}
	_, err = net.Dial("tcp", l.Addr().String())
	require.Error(t, err)
	require.False(t, errors.Is(err, im.ErrServerClosed))
}

// rawHeader builds a frame header field by field, with a correct checksum,
// for headers wire.AppendFrame refuses to write.
func rawHeader(magic uint16, version, flags byte, cmd uint16, seq, length uint32) []byte {
	h := binary.BigEndian.AppendUint16(nil, magic)
	h = append(h, version, flags)
	h = binary.BigEndian.AppendUint16(h, cmd)
	h = binary.BigEndian.AppendUint32(h, seq)
	h = binary.BigEndian.AppendUint32(h, length)
	crc := uint16(0xFFFF) // CRC-16/CCITT-FALSE, bit by bit
	for _, b := range h {
		for i := 7; i >= 0; i-- {
			bit := (crc>>15)&1 ^ uint16(b>>i)&1
			crc <<= 1
			if bit != 0 {
				crc ^= 0x1021
			}
		}
	}
	return binary.BigEndian.AppendUint16(h, crc)
}
