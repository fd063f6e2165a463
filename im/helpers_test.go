package im_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	alice = "alice"
	bob   = "bob"
	carol = "carol"
)

var aliceBob = im.SingleConversationID(alice, bob)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// sendText sends content from c to receiver and fails the test on error.
func sendText(t *testing.T, c *client.Client, receiver, content string) *imv1.SendMessageResponse {
	t.Helper()
	rsp, err := c.Send(testCtx(t), client.Outgoing{ReceiverID: receiver, Type: im.TextMessage, Content: []byte(content)})
	require.NoError(t, err)
	return rsp
}

// nextMessage waits for the next pushed message on c.
func nextMessage(t *testing.T, c *client.Client) *imv1.MessageInfo {
	t.Helper()
	for {
		select {
		case p := <-c.Pushes():
			if pm, ok := p.Message.(*imv1.PushMessage); ok {
				return pm.Message
			}
			t.Fatalf("unexpected push %v", p.Command)
		case <-time.After(10 * time.Second):
			t.Fatal("no push within 10 s")
		}
	}
}

// nextPush waits for the next push of any kind on c.
func nextPush(t *testing.T, c *client.Client) client.Push {
	t.Helper()
	select {
	case p := <-c.Pushes():
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no push within 10 s")
	}
	return client.Push{}
}

// noPush checks that nothing is pushed to c for a short while.
func noPush(t *testing.T, c *client.Client) {
	t.Helper()
	select {
	case p := <-c.Pushes():
		t.Fatalf("unexpected push %v: %v", p.Command, p.Message)
	case <-time.After(300 * time.Millisecond):
	}
}

// raw is a bare TCP connection speaking frames, for what the client won't
// send: malformed input, requests before auth, a client that never reads.
type raw struct {
	t   *testing.T
	nc  net.Conn
	seq uint32
}

func dialRaw(t *testing.T, addr string) *raw {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	return &raw{t: t, nc: nc}
}

func (r *raw) writeBytes(b []byte) {
	r.t.Helper()
	require.NoError(r.t, r.nc.SetWriteDeadline(time.Now().Add(5*time.Second)))
	_, err := r.nc.Write(b)
	require.NoError(r.t, err)
}

// write sends a frame with the next sequence and returns that sequence.
func (r *raw) write(cmd imv1.CommandType, body []byte) uint32 {
	r.t.Helper()
	r.seq++
	b, err := wire.AppendFrame(nil, im.Frame{Command: cmd, Sequence: r.seq, Body: body})
	require.NoError(r.t, err)
	r.writeBytes(b)
	return r.seq
}

func (r *raw) writeMsg(cmd imv1.CommandType, m proto.Message) uint32 {
	r.t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(r.t, err)
	return r.write(cmd, b)
}

func (r *raw) read() im.Frame {
	r.t.Helper()
	require.NoError(r.t, r.nc.SetReadDeadline(time.Now().Add(10*time.Second)))
	f, err := wire.ReadFrame(r.nc, 0)
	require.NoError(r.t, err)
	return f
}

// response reads frames until the response to seq, decoding it into m, and
// returns its command. Pushes on the way are skipped.
func (r *raw) response(seq uint32, m proto.Message) imv1.CommandType {
	r.t.Helper()
	for {
		f := r.read()
		if f.Sequence != seq {
			continue
		}
		require.NoError(r.t, proto.Unmarshal(f.Body, m), "decoding %v", f.Command)
		return f.Command
	}
}

// call writes a request and reads its response.
func (r *raw) call(cmd imv1.CommandType, req, rsp proto.Message) imv1.CommandType {
	r.t.Helper()
	return r.response(r.writeMsg(cmd, req), rsp)
}

func (r *raw) auth(user, token string) *imv1.AuthResponse {
	r.t.Helper()
	rsp := new(imv1.AuthResponse)
	cmd := r.call(imv1.CommandType_CMD_AUTH_REQ, &imv1.AuthRequest{UserId: user, Token: token, Platform: "iOS"}, rsp)
	require.Equal(r.t, imv1.CommandType_CMD_AUTH_RSP, cmd)
	return rsp
}

// expectClosed reads until the server closes the connection.
func (r *raw) expectClosed() {
	r.t.Helper()
	require.NoError(r.t, r.nc.SetReadDeadline(time.Now().Add(10*time.Second)))
	for {
		if _, err := wire.ReadFrame(r.nc, 0); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.t.Fatal("connection still open after 10 s")
			}
			return
		}
	}
}

// alive checks that the connection still answers a heartbeat.
func (r *raw) alive() {
	r.t.Helper()
	rsp := new(imv1.HeartbeatResponse)
	cmd := r.call(imv1.CommandType_CMD_HEARTBEAT_REQ, &imv1.HeartbeatRequest{ClientTime: 1}, rsp)
	require.Equal(r.t, imv1.CommandType_CMD_HEARTBEAT_RSP, cmd)
	require.NotZero(r.t, rsp.ServerTime)
}

func (r *raw) send(m *imv1.MessageInfo) *imv1.SendMessageResponse {
	r.t.Helper()
	rsp := new(imv1.SendMessageResponse)
	cmd := r.call(imv1.CommandType_CMD_SEND_MSG_REQ, &imv1.SendMessageRequest{Message: m}, rsp)
	require.Equal(r.t, imv1.CommandType_CMD_SEND_MSG_RSP, cmd)
	return rsp
}

func textTo(receiver, cmid, content string) *imv1.MessageInfo {
	return &imv1.MessageInfo{ClientMsgId: cmid, ReceiverId: receiver, MessageType: int32(im.TextMessage), Content: []byte(content)}
}

func seqs(msgs []*imv1.MessageInfo) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

func upTo(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func content(i int) string { return fmt.Sprintf("message %d", i) }

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// anyoneAdds is a Config.GroupAddPolicy that lets anyone add anyone to a
// group, for tests of what groups do once their members are in.
func anyoneAdds(context.Context, string, string) error { return nil }
