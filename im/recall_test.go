package im_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
	"github.com/imserver/imserver/store/memstore"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// sdkConn is a client shaped like IM-iOS-SDK: protobuf frames of im/imv1
// over the framed TCP protocol or WebSocket binary envelopes, read by a
// goroutine of its own so that a test can wait for a frame with a bound.
type sdkConn struct {
	t      *testing.T
	write  func(im.Frame) error
	frames chan im.Frame
	seq    uint32
	// pushes holds frames with sequence 0 read while waiting for a
	// response, in the order they arrived.
	pushes []im.Frame
}

// dialSDK connects to srv over transport ("tcp" or "websocket") and
// authenticates as user, as the SDK does.
func dialSDK(t *testing.T, srv *imtest.Server, transport, user string) *sdkConn {
	t.Helper()
	c := &sdkConn{t: t, frames: make(chan im.Frame, 64)}
	done, quit := make(chan struct{}), make(chan struct{})
	// deliver hands a frame read to the test, unless the test is over.
	deliver := func(f im.Frame) bool {
		select {
		case c.frames <- f:
			return true
		case <-quit:
			return false
		}
	}
	switch transport {
	case "tcp":
		nc, err := net.Dial("tcp", srv.TCPAddr)
		require.NoError(t, err)
		c.write = func(f im.Frame) error {
			b, err := wire.AppendFrame(nil, f)
			if err != nil {
				return err
			}
			_, err = nc.Write(b)
			return err
		}
		go func() {
			defer close(done)
			defer close(c.frames)
			for {
				f, err := wire.ReadFrame(nc, 0)
				if err != nil || !deliver(f) {
					return
				}
			}
		}()
		t.Cleanup(func() { close(quit); nc.Close(); <-done })
	case "websocket":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws, rsp, err := cws.Dial(ctx, srv.WSURL, nil)
		require.NoError(t, err)
		if rsp.Body != nil {
			rsp.Body.Close()
		}
		ws.SetReadLimit(2 * im.MaxFrameSize)
		c.write = func(f im.Frame) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return ws.Write(ctx, cws.MessageBinary, wire.AppendEnvelope(nil, f, time.Now().UnixMilli()))
		}
		go func() {
			defer close(done)
			defer close(c.frames)
			for {
				_, p, err := ws.Read(context.Background())
				if err != nil {
					return
				}
				f, err := wire.DecodeEnvelope(p, 0)
				if err != nil || !deliver(f) {
					return
				}
			}
		}()
		t.Cleanup(func() { close(quit); ws.CloseNow(); <-done })
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	rsp := new(imv1.AuthResponse)
	c.call(imv1.CommandType_CMD_AUTH_REQ, &imv1.AuthRequest{UserId: user, Token: srv.Token(t, user), Platform: "iOS"}, rsp)
	require.Zero(t, rsp.ErrorCode, rsp.ErrorMsg)
	return c
}

// recv returns the next frame, or false if none came within wait.
func (c *sdkConn) recv(wait time.Duration) (im.Frame, bool) {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatal("connection closed")
		}
		return f, true
	case <-time.After(wait):
		return im.Frame{}, false
	}
}

// call sends a request and decodes its response into rsp, keeping the
// pushes that came first; it returns the response's command.
func (c *sdkConn) call(cmd imv1.CommandType, req, rsp proto.Message) imv1.CommandType {
	c.t.Helper()
	body, err := proto.Marshal(req)
	require.NoError(c.t, err)
	return c.callRaw(cmd, body, rsp)
}

func (c *sdkConn) callRaw(cmd imv1.CommandType, body []byte, rsp proto.Message) imv1.CommandType {
	c.t.Helper()
	c.seq++
	require.NoError(c.t, c.write(im.Frame{Command: cmd, Sequence: c.seq, Body: body}))
	for {
		f, ok := c.recv(10 * time.Second)
		require.True(c.t, ok, "no response to %v within 10 s", cmd)
		if f.Sequence == 0 {
			c.pushes = append(c.pushes, f)
			continue
		}
		require.Equal(c.t, c.seq, f.Sequence, "responses come in order")
		require.NoError(c.t, proto.Unmarshal(f.Body, rsp), "decoding %v", f.Command)
		return f.Command
	}
}

// nextPush returns the next push, decoded.
func (c *sdkConn) nextPush() (imv1.CommandType, proto.Message) {
	c.t.Helper()
	var f im.Frame
	if len(c.pushes) > 0 {
		f, c.pushes = c.pushes[0], c.pushes[1:]
	} else {
		var ok bool
		f, ok = c.recv(10 * time.Second)
		require.True(c.t, ok, "no push within 10 s")
		require.Zero(c.t, f.Sequence, "a push, not a response")
	}
	m := imv1.NewBody(f.Command)
	require.NotNil(c.t, m, "push %v has no body type", f.Command)
	require.NoError(c.t, proto.Unmarshal(f.Body, m))
	return f.Command, m
}

// recallPush returns the next push, which must be a REVOKE_MSG_PUSH.
func (c *sdkConn) recallPush() *imv1.RevokeMessagePush {
	c.t.Helper()
	cmd, m := c.nextPush()
	require.Equal(c.t, imv1.CommandType_CMD_REVOKE_MSG_PUSH, cmd)
	return m.(*imv1.RevokeMessagePush)
}

// messagePush returns the next push, which must be a PUSH_MSG.
func (c *sdkConn) messagePush() *imv1.MessageInfo {
	c.t.Helper()
	cmd, m := c.nextPush()
	require.Equal(c.t, imv1.CommandType_CMD_PUSH_MSG, cmd)
	return m.(*imv1.PushMessage).Message
}

// noPush checks that nothing arrives for a short while.
func (c *sdkConn) noPush() {
	c.t.Helper()
	require.Empty(c.t, c.pushes)
	if f, ok := c.recv(300 * time.Millisecond); ok {
		c.t.Fatalf("unexpected frame %v", f.Command)
	}
}

func (c *sdkConn) send(m *imv1.MessageInfo) *imv1.SendMessageResponse {
	c.t.Helper()
	rsp := new(imv1.SendMessageResponse)
	require.Equal(c.t, imv1.CommandType_CMD_SEND_MSG_RSP, c.call(imv1.CommandType_CMD_SEND_MSG_REQ, &imv1.SendMessageRequest{Message: m}, rsp))
	return rsp
}

func (c *sdkConn) recall(conv, id string) *imv1.RevokeMessageResponse {
	c.t.Helper()
	rsp := new(imv1.RevokeMessageResponse)
	require.Equal(c.t, imv1.CommandType_CMD_REVOKE_MSG_RSP, c.call(imv1.CommandType_CMD_REVOKE_MSG_REQ, &imv1.RevokeMessageRequest{ServerMsgId: id, ConversationId: conv}, rsp))
	return rsp
}

func (c *sdkConn) batchSync(states ...*imv1.ConversationSyncState) *imv1.BatchSyncResponse {
	c.t.Helper()
	rsp := new(imv1.BatchSyncResponse)
	c.call(imv1.CommandType_CMD_BATCH_SYNC_REQ, &imv1.BatchSyncRequest{ConversationStates: states, MaxCountPerConversation: 100}, rsp)
	require.Zero(c.t, rsp.ErrorCode, rsp.ErrorMsg)
	return rsp
}

// synced returns conv's messages from a full BATCH_SYNC.
func (c *sdkConn) synced(conv string) []*imv1.MessageInfo {
	c.t.Helper()
	for _, cm := range c.batchSync().ConversationMessages {
		if cm.ConversationId == conv {
			return cm.Messages
		}
	}
	c.t.Fatalf("BATCH_SYNC has no %s", conv)
	return nil
}

func (c *sdkConn) syncRange(conv string, from int64) []*imv1.MessageInfo {
	c.t.Helper()
	rsp := new(imv1.SyncRangeResponse)
	c.call(imv1.CommandType_CMD_SYNC_RANGE_REQ, &imv1.SyncRangeRequest{RequestId: "r", ConversationId: conv, StartSeq: from}, rsp)
	require.Zero(c.t, rsp.ErrorCode, rsp.ErrorMsg)
	return rsp.Messages
}

// recallServer runs a server on a store/memstore, which implements
// im.RecallStore.
func recallServer(t *testing.T, cfg im.Config) *imtest.Server {
	if cfg.GroupAddPolicy == nil {
		cfg.GroupAddPolicy = anyoneAdds
	}
	return imtest.NewServer(t, imtest.Options{Config: cfg})
}

// storeAged stores a message sent age ago directly in srv's Store, as the
// Server would have: messages older than the recall window without
// waiting for it.
func storeAged(t *testing.T, srv *imtest.Server, conv, sender, cmid string, age time.Duration) im.Message {
	t.Helper()
	receiver := ""
	if p, ok := strings.CutPrefix(conv, "single_"); ok {
		receiver = strings.TrimSuffix(strings.TrimPrefix(p, sender+"_"), "_"+sender)
	}
	members := []string{sender}
	if receiver != "" {
		members = append(members, receiver)
	}
	created := time.Now().Add(-age).Truncate(time.Millisecond)
	res, err := srv.Store.AppendMessages(testCtx(t), []im.AppendRequest{{
		Message: im.Message{
			ConversationID: conv,
			ServerID:       "aged-" + cmid,
			SenderID:       sender,
			ReceiverID:     receiver,
			ClientMsgID:    cmid,
			Type:           im.TextMessage,
			Content:        []byte("aged " + cmid),
			Extra:          "x",
			SendTime:       created.UnixMilli(),
			CreatedAt:      created,
		},
		Members: members,
	}})
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
	require.False(t, res[0].Duplicate)
	return res[0].Message
}

// stored returns conv's messages as the Store holds them.
func stored(t *testing.T, srv *imtest.Server, conv string) []im.Message {
	t.Helper()
	ms, err := srv.Store.Messages(testCtx(t), conv, 1, 0, 1000)
	require.NoError(t, err)
	return ms
}

// requireTombstone checks w, a message as sync returns it, against the
// message as sent (orig, as the Store first held it) and the recall.
func requireTombstone(t *testing.T, w *imv1.MessageInfo, orig im.Message, by string, at int64) {
	t.Helper()
	require.True(t, w.IsRevoked, "is_revoked")
	require.Equal(t, by, w.RevokedBy)
	require.Equal(t, at, w.RevokedTime)
	require.Empty(t, w.Content)
	require.Empty(t, w.Extra)
	require.Empty(t, w.AttachedInfo)
	require.Equal(t, orig.Seq, w.Seq)
	require.Equal(t, orig.ServerID, w.ServerMsgId)
	require.Equal(t, orig.ClientMsgID, w.ClientMsgId)
	require.Equal(t, orig.SenderID, w.SenderId)
	require.Equal(t, orig.ConversationID, w.ConversationId)
	require.Equal(t, int32(orig.Type), w.MessageType)
	require.Equal(t, orig.CreatedAt.UnixMilli(), w.ServerTime)
	require.Equal(t, orig.SendTime, w.SendTime)
}

// requireRecallPush checks a REVOKE_MSG_PUSH.
func requireRecallPush(t *testing.T, p *imv1.RevokeMessagePush, conv, id, by string, from, to time.Time) {
	t.Helper()
	require.Equal(t, conv, p.ConversationId)
	require.Equal(t, id, p.ServerMsgId)
	require.Equal(t, by, p.RevokedBy)
	require.GreaterOrEqual(t, p.RevokedTime, from.UnixMilli())
	require.LessOrEqual(t, p.RevokedTime, to.UnixMilli())
}

// clientRecallPush waits for the next push on c, which must be a recall.
func clientRecallPush(t *testing.T, c *client.Client) *imv1.RevokeMessagePush {
	t.Helper()
	p := nextPush(t, c)
	require.Equal(t, imv1.CommandType_CMD_REVOKE_MSG_PUSH, p.Command)
	return p.Message.(*imv1.RevokeMessagePush)
}

// A sender recalls her message within the window: 206 to her, 207 to every
// session of both users (the requesting one and her other device
// included), and the message is a tombstone in BATCH_SYNC and SYNC_RANGE
// from then on, with its seq, ids and times, without its content.
func TestRecallOwnMessageReachesEveryDevice(t *testing.T) {
	for _, tc := range []struct{ requester, other string }{{"tcp", "websocket"}, {"websocket", "tcp"}} {
		t.Run("requester over "+tc.requester, func(t *testing.T) {
			srv := recallServer(t, im.Config{})
			a1 := dialSDK(t, srv, tc.requester, alice)
			a2 := srv.Dial(t, tc.other, alice)
			b1 := dialSDK(t, srv, tc.other, bob)
			b2 := srv.Dial(t, tc.requester, bob)

			secret := textTo(bob, "m1", "secret")
			secret.Extra, secret.AttachedInfo = `{"mention":"bob"}`, "attached"
			ack := a1.send(secret)
			require.Zero(t, ack.ErrorCode, ack.ErrorMsg)
			require.Zero(t, a1.send(textTo(bob, "m2", "kept")).ErrorCode)
			require.Equal(t, "secret", string(b1.messagePush().Content))
			require.Equal(t, "kept", string(b1.messagePush().Content))
			for _, c := range []*client.Client{a2, b2} {
				require.Equal(t, "secret", string(nextMessage(t, c).Content))
				require.Equal(t, "kept", string(nextMessage(t, c).Content))
			}
			orig := stored(t, srv, aliceBob)[0]

			before := time.Now()
			rsp := a1.recall(aliceBob, ack.ServerMsgId)
			after := time.Now()
			require.Zero(t, rsp.ErrorCode, rsp.ErrorMsg)
			// The requesting connection has its push, before the response.
			require.Len(t, a1.pushes, 1)
			p := a1.recallPush()
			requireRecallPush(t, p, aliceBob, ack.ServerMsgId, alice, before, after)
			require.True(t, proto.Equal(p, b1.recallPush()))
			for _, c := range []*client.Client{a2, b2} {
				require.True(t, proto.Equal(p, clientRecallPush(t, c)))
			}

			// The tombstone, whichever way it is read, and by either user.
			fresh := dialSDK(t, srv, tc.requester, bob)
			for _, c := range []*sdkConn{fresh, a1, b1} {
				for _, msgs := range [][]*imv1.MessageInfo{c.synced(aliceBob), c.syncRange(aliceBob, 1)} {
					require.Len(t, msgs, 2)
					requireTombstone(t, msgs[0], orig, alice, p.RevokedTime)
					require.Equal(t, bob, msgs[0].ReceiverId)
					require.Equal(t, "kept", string(msgs[1].Content))
					require.False(t, msgs[1].IsRevoked)
				}
			}
			got := stored(t, srv, aliceBob)[0]
			require.True(t, got.Revoked())
			require.Empty(t, got.Content)
			require.Equal(t, p.RevokedTime, got.RevokedAt.UnixMilli())
			for _, c := range []*sdkConn{a1, b1} {
				c.noPush()
			}
			noPush(t, a2)
		})
	}
}

// Every refusal answers with its code and changes nothing: no tombstone,
// no push.
func TestRecallRefusalsChangeNothing(t *testing.T) {
	srv := recallServer(t, im.Config{})
	a := dialSDK(t, srv, "tcp", alice)
	b := dialSDK(t, srv, "websocket", bob)
	c := dialSDK(t, srv, "tcp", carol)
	bobClient := srv.Dial(t, "tcp", bob)

	mine := a.send(textTo(bob, "mine", "hi bob"))
	require.Zero(t, mine.ErrorCode)
	require.Equal(t, "hi bob", string(b.messagePush().Content))
	require.Equal(t, "hi bob", string(nextMessage(t, bobClient).Content))
	aged := storeAged(t, srv, aliceBob, alice, "aged", 3*time.Minute)
	elsewhere := a.send(textTo(carol, "to-carol", "hi carol"))
	require.Zero(t, elsewhere.ErrorCode)
	require.Equal(t, "hi carol", string(c.messagePush().Content))

	bad := []struct {
		name string
		from *sdkConn
		conv string
		id   string
		code imv1.ErrorCode
		msg  string
	}{
		{"another user's message", b, aliceBob, mine.ServerMsgId, imv1.ErrorCode_ERR_PERMISSION_DENIED, "only the sender may recall a message"},
		{"past the window", a, aliceBob, aged.ServerID, imv1.ErrorCode_ERR_PERMISSION_DENIED, "the time to recall this message has passed: messages may be recalled for 2m0s after sending"},
		{"unknown id", a, aliceBob, "0123456789abcdef0123456789abcdef", imv1.ErrorCode_ERR_CONVERSATION_NOT_EXIST, "message does not exist"},
		{"id of another conversation", a, aliceBob, elsewhere.ServerMsgId, imv1.ErrorCode_ERR_CONVERSATION_NOT_EXIST, "message does not exist"},
		{"not a member", c, aliceBob, mine.ServerMsgId, imv1.ErrorCode_ERR_PERMISSION_DENIED, "not a member of this conversation"},
		{"empty id", a, aliceBob, "", imv1.ErrorCode_ERR_INVALID_PARAM, "conversation_id and server_msg_id are required"},
		{"empty conversation", a, "", mine.ServerMsgId, imv1.ErrorCode_ERR_INVALID_PARAM, "conversation_id and server_msg_id are required"},
		{"id with a control character", a, aliceBob, "id\n", imv1.ErrorCode_ERR_INVALID_PARAM, "server_msg_id must be 1 to 128 bytes of printable UTF-8"},
		{"conversation id too long", a, "single_" + strings.Repeat("a", 300), mine.ServerMsgId, imv1.ErrorCode_ERR_INVALID_PARAM, "conversation_id is too long"},
		{"unknown form", a, "chat_alice_bob", mine.ServerMsgId, imv1.ErrorCode_ERR_INVALID_PARAM, "conversation_id has an unknown form"},
		{"system conversation", a, im.SystemConversationID(alice), mine.ServerMsgId, imv1.ErrorCode_ERR_PERMISSION_DENIED, "messages of system conversations cannot be recalled"},
		{"someone else's system conversation", a, im.SystemConversationID(bob), mine.ServerMsgId, imv1.ErrorCode_ERR_PERMISSION_DENIED, "not a member of this conversation"},
		{"chatroom", a, "chatroom_lobby", mine.ServerMsgId, imv1.ErrorCode_ERR_CONVERSATION_NOT_EXIST, "conversation does not exist"},
		{"missing group", a, im.GroupConversationID("0123456789abcdef0123456789abcdef"), mine.ServerMsgId, imv1.ErrorCode_ERR_CONVERSATION_NOT_EXIST, "group does not exist"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			rsp := tc.from.recall(tc.conv, tc.id)
			require.Equal(t, tc.code, rsp.ErrorCode)
			require.Equal(t, tc.msg, rsp.ErrorMsg)
		})
	}
	t.Run("malformed body", func(t *testing.T) {
		rsp := new(imv1.RevokeMessageResponse)
		require.Equal(t, imv1.CommandType_CMD_REVOKE_MSG_RSP, a.callRaw(imv1.CommandType_CMD_REVOKE_MSG_REQ, []byte{0xff, 0xff}, rsp))
		require.Equal(t, imv1.ErrorCode_ERR_INVALID_PARAM, rsp.ErrorCode)
	})

	for _, conv := range []string{aliceBob, im.SingleConversationID(alice, carol)} {
		for _, m := range stored(t, srv, conv) {
			require.False(t, m.Revoked(), "%s seq %d", conv, m.Seq)
			require.NotEmpty(t, m.Content)
		}
	}
	for _, s := range []*sdkConn{a, b, c} {
		s.noPush()
	}
	noPush(t, bobClient)
	// The connections are still open and answer.
	require.Equal(t, "hi bob", string(b.synced(aliceBob)[0].Content))
}

// With a window of its own, a message is refused once it is older than
// the window, judged on the server's clock; a negative window is no
// limit.
func TestRecallWindow(t *testing.T) {
	t.Run("configured", func(t *testing.T) {
		const window = 300 * time.Millisecond
		srv := recallServer(t, im.Config{RecallWindow: window})
		a := srv.Dial(t, "tcp", alice)
		b := srv.Dial(t, "websocket", bob)
		ack := sendText(t, a, bob, "soon regretted")
		nextMessage(t, b)
		// Until the server's clock is past the window: the message's
		// server_time is that clock's, to the millisecond.
		deadline := time.UnixMilli(ack.ServerTime).Add(window + 5*time.Millisecond)
		eventually(t, func() bool { return time.Now().After(deadline) }, "the window did not pass")
		err := a.Recall(testCtx(t), aliceBob, ack.ServerMsgId)
		require.ErrorIs(t, err, im.ErrPermissionDenied)
		require.ErrorContains(t, err, "messages may be recalled for 300ms after sending")
		require.False(t, stored(t, srv, aliceBob)[0].Revoked())
		noPush(t, b)
	})
	t.Run("unlimited", func(t *testing.T) {
		srv := recallServer(t, im.Config{RecallWindow: -1})
		a := srv.Dial(t, "tcp", alice)
		b := srv.Dial(t, "websocket", bob)
		old := storeAged(t, srv, aliceBob, alice, "last-year", 365*24*time.Hour)
		require.NoError(t, a.Recall(testCtx(t), aliceBob, old.ServerID))
		require.Equal(t, old.ServerID, clientRecallPush(t, b).ServerMsgId)
		require.Equal(t, old.ServerID, clientRecallPush(t, a).ServerMsgId)
		require.True(t, stored(t, srv, aliceBob)[0].Revoked())
	})
}

// In a group, the owner and admins recall any member's message, past the
// window too, and every session of every member is told; a member recalls
// only her own, within the window; nobody recalls a group notice; and an
// admin who may not read a message (it precedes her joining) cannot find
// it.
func TestRecallInGroup(t *testing.T) {
	srv := recallServer(t, im.Config{})
	ctx := testCtx(t)
	const dave, erin = "dave", "erin"
	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "g", JoinPolicy: im.JoinInviteOnly}, []string{bob, carol, dave})
	require.NoError(t, err)
	require.NoError(t, srv.SetGroupRole(ctx, g.ID, alice, bob, im.RoleAdmin))
	conv := im.GroupConversationID(g.ID)

	a1 := dialSDK(t, srv, "tcp", alice)
	a2 := srv.Dial(t, "websocket", alice)
	b1 := dialSDK(t, srv, "websocket", bob)
	c1 := dialSDK(t, srv, "tcp", carol)
	d1 := srv.Dial(t, "tcp", dave)
	for _, c := range []*client.Client{a2, d1} {
		// Holding the notices, they have no gap to repair by push.
		_, err := c.SyncAll(ctx)
		require.NoError(t, err)
	}

	recent := c1.send(&imv1.MessageInfo{ClientMsgId: "recent", ConversationId: conv, MessageType: int32(im.TextMessage), Content: []byte("recent")})
	require.Zero(t, recent.ErrorCode, recent.ErrorMsg)
	aged := storeAged(t, srv, conv, carol, "aged", time.Hour)
	for _, s := range []*sdkConn{a1, b1} {
		require.Equal(t, "recent", string(s.messagePush().Content))
	}
	require.Equal(t, "recent", string(nextMessage(t, a2).Content))
	require.Equal(t, "recent", string(nextMessage(t, d1).Content))

	// Refused: a member recalling another's message, the sender past the
	// window, anyone recalling a notice (seq 1: the group's creation).
	notice := stored(t, srv, conv)[0]
	require.Equal(t, im.NotificationMessage, notice.Type)
	err = d1.Recall(ctx, conv, recent.ServerMsgId)
	require.ErrorIs(t, err, im.ErrPermissionDenied)
	require.ErrorContains(t, err, "only the sender, the group's owner or its admins may recall a message")
	rsp := c1.recall(conv, aged.ServerID)
	require.Equal(t, imv1.ErrorCode_ERR_PERMISSION_DENIED, rsp.ErrorCode)
	require.Contains(t, rsp.ErrorMsg, "has passed")
	for _, s := range []*sdkConn{a1, b1} {
		rsp := s.recall(conv, notice.ServerID)
		require.Equal(t, imv1.ErrorCode_ERR_PERMISSION_DENIED, rsp.ErrorCode)
		require.Equal(t, "notices of group changes cannot be recalled", rsp.ErrorMsg)
	}
	for _, m := range stored(t, srv, conv) {
		require.False(t, m.Revoked())
	}

	// The admin recalls the member's message of an hour ago; the owner
	// her recent one.
	for _, step := range []struct {
		by   *sdkConn
		who  string
		id   string
		orig im.Message
	}{
		{b1, bob, aged.ServerID, aged},
		{a1, alice, recent.ServerMsgId, stored(t, srv, conv)[recent.Seq-1]},
	} {
		before := time.Now()
		rsp := step.by.recall(conv, step.id)
		after := time.Now()
		require.Zero(t, rsp.ErrorCode, rsp.ErrorMsg)
		p := step.by.recallPush()
		requireRecallPush(t, p, conv, step.id, step.who, before, after)
		for _, s := range []*sdkConn{a1, b1, c1} {
			if s != step.by {
				require.True(t, proto.Equal(p, s.recallPush()))
			}
		}
		for _, c := range []*client.Client{a2, d1} {
			require.True(t, proto.Equal(p, clientRecallPush(t, c)))
		}
		synced := c1.synced(conv)
		requireTombstone(t, synced[step.orig.Seq-1], step.orig, step.who, p.RevokedTime)
	}

	// erin joins later, as an admin, and sees nothing from before her
	// joining (the group's history starts at it for her): those messages
	// do not exist as far as she can tell.
	require.NoError(t, srv.InviteToGroup(ctx, g.ID, alice, []string{erin}))
	require.NoError(t, srv.SetGroupRole(ctx, g.ID, alice, erin, im.RoleAdmin))
	later := storeAged(t, srv, conv, carol, "after-erin", time.Hour)
	e := srv.Dial(t, "tcp", erin)
	err = e.Recall(ctx, conv, recent.ServerMsgId)
	require.ErrorIs(t, err, im.ErrNotFound)
	require.ErrorContains(t, err, "message does not exist")
	require.NoError(t, e.Recall(ctx, conv, later.ServerID))
}

// A user outside an invite-only group is answered exactly as for a group
// that does not exist, over the socket and through the Go API, even with
// the id of a real message of the group; outside an open group, she is
// told she is not a member. Nothing changes.
func TestRecallInGroupAsOutsiderLooksMissing(t *testing.T) {
	srv := recallServer(t, im.Config{})
	ctx := testCtx(t)
	const dave = "dave"
	private, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "private", JoinPolicy: im.JoinInviteOnly}, []string{bob, carol})
	require.NoError(t, err)
	open, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "open"}, []string{bob})
	require.NoError(t, err)
	inPrivate, err := srv.SendMessage(ctx, im.SendRequest{SenderID: bob, ConversationID: im.GroupConversationID(private.ID), Type: im.TextMessage, Content: []byte("private")})
	require.NoError(t, err)
	inOpen, err := srv.SendMessage(ctx, im.SendRequest{SenderID: bob, ConversationID: im.GroupConversationID(open.ID), Type: im.TextMessage, Content: []byte("open")})
	require.NoError(t, err)
	require.NoError(t, srv.LeaveGroup(ctx, private.ID, carol))
	missing := im.GroupConversationID("0123456789abcdef0123456789abcdef")

	for _, u := range []string{dave, carol} {
		s := dialSDK(t, srv, "tcp", u)
		want := s.recall(missing, inPrivate.ServerID)
		got := s.recall(im.GroupConversationID(private.ID), inPrivate.ServerID)
		require.Equal(t, imv1.ErrorCode_ERR_CONVERSATION_NOT_EXIST, got.ErrorCode)
		require.True(t, proto.Equal(want, got), "%s: %v, want the answer for no group %v", u, got, want)

		goWant := goRecall(ctx, srv, u, missing, inPrivate.ServerID)
		goGot := goRecall(ctx, srv, u, im.GroupConversationID(private.ID), inPrivate.ServerID)
		require.ErrorIs(t, goGot, im.ErrNotFound)
		require.Equal(t, goWant.Error(), goGot.Error())

		rsp := s.recall(im.GroupConversationID(open.ID), inOpen.ServerID)
		require.Equal(t, imv1.ErrorCode_ERR_PERMISSION_DENIED, rsp.ErrorCode)
		require.Equal(t, "not a member of this group", rsp.ErrorMsg)
	}
	for _, g := range []string{private.ID, open.ID} {
		for _, m := range stored(t, srv, im.GroupConversationID(g)) {
			require.False(t, m.Revoked())
		}
	}
}

func goRecall(ctx context.Context, srv *imtest.Server, user, conv, id string) error {
	_, err := srv.RecallMessage(ctx, user, conv, id)
	return err
}

// A second recall of a tombstone succeeds, changes nothing and pushes
// nothing; the first recall's time and author stay. The other user still
// may not recall it.
func TestRecallAgainIsIdempotent(t *testing.T) {
	srv := recallServer(t, im.Config{})
	ctx := testCtx(t)
	a := srv.Dial(t, "tcp", alice)
	b := srv.Dial(t, "websocket", bob)
	ack := sendText(t, a, bob, "oops")
	nextMessage(t, b)

	require.NoError(t, a.Recall(ctx, aliceBob, ack.ServerMsgId))
	first := clientRecallPush(t, b)
	require.Equal(t, first.RevokedTime, clientRecallPush(t, a).RevokedTime)
	tomb := stored(t, srv, aliceBob)[0]

	require.NoError(t, a.Recall(ctx, aliceBob, ack.ServerMsgId))
	m, err := srv.RecallMessage(ctx, alice, aliceBob, ack.ServerMsgId)
	require.NoError(t, err)
	require.Equal(t, tomb, m)
	require.ErrorIs(t, b.Recall(ctx, aliceBob, ack.ServerMsgId), im.ErrPermissionDenied)
	noPush(t, a)
	noPush(t, b)
	require.Equal(t, []im.Message{tomb}, stored(t, srv, aliceBob))
}

// A resend of a recalled message's client_msg_id, as the SDK makes after
// reconnecting, gets the original acknowledgement; its content is not
// stored again, pushed, or synced.
func TestResendAfterRecallGetsTheTombstone(t *testing.T) {
	for _, transport := range []string{"tcp", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			srv := recallServer(t, im.Config{})
			a := dialSDK(t, srv, transport, alice)
			b := dialSDK(t, srv, transport, bob)
			msg := textTo(bob, "cmid-1", "secret")
			ack := a.send(msg)
			require.Zero(t, ack.ErrorCode)
			b.messagePush()
			require.Zero(t, a.recall(aliceBob, ack.ServerMsgId).ErrorCode)
			a.recallPush()
			b.recallPush()

			again := a.send(msg)
			require.Zero(t, again.ErrorCode, again.ErrorMsg)
			require.Equal(t, ack.ServerMsgId, again.ServerMsgId)
			require.Equal(t, ack.Seq, again.Seq)
			require.Equal(t, ack.ServerTime, again.ServerTime)
			require.Equal(t, "cmid-1", again.ClientMsgId)
			b.noPush()

			synced := b.synced(aliceBob)
			require.Len(t, synced, 1)
			require.True(t, synced[0].IsRevoked)
			require.Empty(t, synced[0].Content)
			ms := stored(t, srv, aliceBob)
			require.Len(t, ms, 1)
			require.Empty(t, ms[0].Content)

			// The same client_msg_id in another conversation is still
			// a different message.
			other := textTo(carol, "cmid-1", "secret")
			require.Equal(t, imv1.ErrorCode_ERR_INVALID_PARAM, a.send(other).ErrorCode)
		})
	}
}

// The Go API recalls with the same rules and pushes, and returns the
// tombstone.
func TestRecallGoAPI(t *testing.T) {
	srv := recallServer(t, im.Config{})
	ctx := testCtx(t)
	a := srv.Dial(t, "tcp", alice)
	b := srv.Dial(t, "websocket", bob)
	sent, err := srv.SendMessage(ctx, im.SendRequest{SenderID: alice, ReceiverID: bob, Type: im.TextMessage, Content: []byte("hi"), Extra: "e"})
	require.NoError(t, err)
	nextMessage(t, a)
	nextMessage(t, b)

	for _, c := range []struct {
		user, conv, id string
		want           error
	}{
		{"", aliceBob, sent.ServerID, im.ErrInvalidArgument},
		{"bad\x00id", aliceBob, sent.ServerID, im.ErrInvalidArgument},
		{bob, aliceBob, sent.ServerID, im.ErrPermissionDenied},
		{carol, aliceBob, sent.ServerID, im.ErrPermissionDenied},
		{alice, aliceBob, "unknown", im.ErrNotFound},
		{alice, aliceBob, "", im.ErrInvalidArgument},
	} {
		_, err := srv.RecallMessage(ctx, c.user, c.conv, c.id)
		require.ErrorIs(t, err, c.want, "%+v", c)
	}
	noPush(t, b)

	before := time.Now()
	m, err := srv.RecallMessage(ctx, alice, aliceBob, sent.ServerID)
	after := time.Now()
	require.NoError(t, err)
	want := sent
	want.Content, want.Extra = nil, ""
	want.RevokedBy, want.RevokedAt = alice, m.RevokedAt
	require.Equal(t, want, m)
	require.False(t, m.RevokedAt.Before(before.Truncate(time.Millisecond)))
	require.False(t, m.RevokedAt.After(after))
	require.Equal(t, m.RevokedAt, m.RevokedAt.Truncate(time.Millisecond), "milliseconds, as the wire carries them")
	for _, c := range []*client.Client{a, b} {
		p := clientRecallPush(t, c)
		require.Equal(t, m.RevokedAt.UnixMilli(), p.RevokedTime)
		require.Equal(t, sent.ServerID, p.ServerMsgId)
	}

	// Host calls are not rate limited.
	for range 3 * 20 {
		_, err := srv.RecallMessage(ctx, alice, aliceBob, "unknown")
		require.ErrorIs(t, err, im.ErrNotFound)
	}
}

// recallOnly hides every optional capability of the Store it wraps,
// RecallStore included.
type recallOnly struct{ im.Store }

// A Store without RecallStore: recall requests answer ERR_UNKNOWN saying
// so, and the Go API ErrUnsupported.
func TestRecallUnsupportedStore(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{Store: recallOnly{memstore.New()}}})
	ctx := testCtx(t)
	a := srv.Dial(t, "tcp", alice)
	ack := sendText(t, a, bob, "hi")
	err := a.Recall(ctx, aliceBob, ack.ServerMsgId)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, imv1.ErrorCode_ERR_UNKNOWN, ce.Code)
	require.Equal(t, "recall is not supported by this server's store", ce.Msg)
	_, err = srv.RecallMessage(ctx, alice, aliceBob, ack.ServerMsgId)
	require.ErrorIs(t, err, im.ErrUnsupported)
	noPush(t, a)
}

// Recall requests are limited per user, across connections; a refusal
// keeps the connection.
func TestRecallRateLimit(t *testing.T) {
	srv := recallServer(t, im.Config{})
	conns := []*sdkConn{dialSDK(t, srv, "tcp", alice), dialSDK(t, srv, "websocket", alice)}
	limited := 0
	for i := range 60 {
		rsp := conns[i%2].recall(aliceBob, "0123456789abcdef0123456789abcdef")
		switch rsp.ErrorCode {
		case imv1.ErrorCode_ERR_SEND_TOO_FAST:
			require.Equal(t, "recalling too fast", rsp.ErrorMsg)
			limited++
		case imv1.ErrorCode_ERR_CONVERSATION_NOT_EXIST:
		default:
			t.Fatalf("recall %d: %v %s", i, rsp.ErrorCode, rsp.ErrorMsg)
		}
	}
	require.Greater(t, limited, 0)
	require.Less(t, limited, 60-19, "a burst of 20 goes through")
	for _, c := range conns {
		c.batchSync()
	}
	// Another user has a bucket of her own.
	require.Equal(t, imv1.ErrorCode_ERR_CONVERSATION_NOT_EXIST, dialSDK(t, srv, "tcp", bob).recall(aliceBob, "x").ErrorCode)
}

// AfterRecall gets each recalled message once, as it was before the
// recall, from the socket and from the Go API; a panic in it fails
// nothing.
func TestAfterRecall(t *testing.T) {
	got := make(chan im.Message, 4)
	srv := recallServer(t, im.Config{AfterRecall: func(ctx context.Context, m im.Message) {
		require.NotNil(t, ctx)
		got <- m
		if string(m.Content) == "panic" {
			panic("host bug")
		}
	}})
	ctx := testCtx(t)
	a := srv.Dial(t, "tcp", alice)
	ack := sendText(t, a, bob, "oops")
	require.NoError(t, a.Recall(ctx, aliceBob, ack.ServerMsgId))
	m := <-got
	require.Equal(t, ack.ServerMsgId, m.ServerID)
	require.Equal(t, "oops", string(m.Content))
	require.False(t, m.Revoked())

	// Again: nothing new is recalled, the hook is not called.
	require.NoError(t, a.Recall(ctx, aliceBob, ack.ServerMsgId))
	_, err := srv.RecallMessage(ctx, alice, aliceBob, ack.ServerMsgId)
	require.NoError(t, err)
	require.Empty(t, got)

	sent, err := srv.SendMessage(ctx, im.SendRequest{SenderID: alice, ReceiverID: bob, Type: im.TextMessage, Content: []byte("panic")})
	require.NoError(t, err)
	tomb, err := srv.RecallMessage(ctx, alice, aliceBob, sent.ServerID)
	require.NoError(t, err)
	require.True(t, tomb.Revoked())
	require.Equal(t, "panic", string((<-got).Content))
	require.NoError(t, a.Recall(ctx, aliceBob, ack.ServerMsgId), "the connection lives on")
}
