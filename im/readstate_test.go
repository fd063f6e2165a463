package im_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/stretchr/testify/require"
)

// readStateStores are the stores the read-state tests run on.
var readStateStores = []struct {
	name   string
	memory bool
}{
	{"memstore", true},
	{"bolt", false},
}

func readStateServer(t *testing.T, memory bool, cfg im.Config) *imtest.Server {
	if cfg.GroupAddPolicy == nil {
		cfg.GroupAddPolicy = anyoneAdds
	}
	return imtest.NewServer(t, imtest.Options{Memory: memory, Config: cfg})
}

// readReceipt sends a READ_RECEIPT_REQ on c and returns the answer.
func readReceipt(t *testing.T, c *client.Client, conv string, ids ...string) *imv1.ReadReceiptResponse {
	t.Helper()
	rsp := new(imv1.ReadReceiptResponse)
	err := c.Request(testCtx(t), imv1.CommandType_CMD_READ_RECEIPT_REQ, &imv1.ReadReceiptRequest{ConversationId: conv, ServerMsgIds: ids}, rsp)
	if err != nil {
		var e *client.Error
		require.ErrorAs(t, err, &e, "read receipt")
	}
	return rsp
}

// readState asks c's server for c's user's state in conv.
func readState(t *testing.T, c *client.Client, conv string) *imv1.ConversationReadState {
	t.Helper()
	rsp := new(imv1.ReadStateResponse)
	require.NoError(t, c.Request(testCtx(t), imv1.CommandType_CMD_READ_STATE_REQ, &imv1.ReadStateRequest{ConversationIds: []string{conv}}, rsp))
	require.Len(t, rsp.States, 1)
	return rsp.States[0]
}

// nextReceipt waits for the next READ_RECEIPT_PUSH on c, skipping messages.
func nextReceipt(t *testing.T, c *client.Client) *imv1.ReadReceiptPush {
	t.Helper()
	for {
		p := nextPush(t, c)
		if rp, ok := p.Message.(*imv1.ReadReceiptPush); ok {
			return rp
		}
		require.Equal(t, imv1.CommandType_CMD_PUSH_MSG, p.Command, "push %v", p.Message)
	}
}

func TestReadReceipts(t *testing.T) {
	for _, st := range readStateStores {
		t.Run(st.name, func(t *testing.T) {
			for _, tr := range []string{client.TransportTCP, client.TransportWebSocket} {
				t.Run(tr, func(t *testing.T) { testReadReceipts(t, st.memory, tr) })
			}
		})
	}
}

func testReadReceipts(t *testing.T, memory bool, transport string) {
	srv := readStateServer(t, memory, im.Config{})
	a1 := srv.Dial(t, transport, alice)
	a2 := srv.Dial(t, client.TransportTCP, alice)
	b := srv.Dial(t, transport, bob)

	var ids []string
	for i := range 3 {
		ids = append(ids, sendText(t, b, alice, content(i)).ServerMsgId)
		nextMessage(t, a1)
		nextMessage(t, a2)
	}
	s := readState(t, a1, aliceBob)
	require.Equal(t, int64(3), s.Unread)
	require.Zero(t, s.ReadSeq)

	// Reading up to the second message: 501 to the reader, 502 to the
	// sender with the ids read and to the reader's other device.
	rsp := readReceipt(t, a1, aliceBob, ids[1])
	require.Equal(t, imv1.ErrorCode_ERR_SUCCESS, rsp.ErrorCode, rsp.ErrorMsg)
	got := nextReceipt(t, b)
	require.Equal(t, alice, got.UserId)
	require.Equal(t, aliceBob, got.ConversationId)
	require.Equal(t, ids[:2], got.ServerMsgIds)
	require.NotZero(t, got.ReadTime)
	other := nextReceipt(t, a2)
	require.Equal(t, alice, other.UserId)
	require.Equal(t, ids[:2], other.ServerMsgIds)
	s = readState(t, a2, aliceBob)
	require.Equal(t, int64(2), s.ReadSeq)
	require.Equal(t, int64(1), s.Unread)

	// The peer sees alice's position.
	s = readState(t, b, aliceBob)
	require.Equal(t, int64(2), s.PeerReadSeq)
	require.Equal(t, int64(3), s.ReadSeq, "sending reads")
	require.Zero(t, s.Unread)

	// An older id moves nothing and tells no one.
	rsp = readReceipt(t, a1, aliceBob, ids[0])
	require.Equal(t, imv1.ErrorCode_ERR_SUCCESS, rsp.ErrorCode)
	require.Equal(t, int64(2), readState(t, a1, aliceBob).ReadSeq)

	// No ids: everything up to now.
	rsp = readReceipt(t, a2, aliceBob)
	require.Equal(t, imv1.ErrorCode_ERR_SUCCESS, rsp.ErrorCode)
	require.Equal(t, ids[2:], nextReceipt(t, b).ServerMsgIds)
	require.Equal(t, ids[2:], nextReceipt(t, a1).ServerMsgIds)
	s = readState(t, a1, aliceBob)
	require.Equal(t, int64(3), s.ReadSeq)
	require.Zero(t, s.Unread)

	// Sending reads what came before: bob's message, then alice answers.
	sendText(t, b, alice, "more")
	nextMessage(t, a1)
	nextMessage(t, a2)
	require.Equal(t, int64(1), readState(t, a1, aliceBob).Unread)
	sendText(t, a1, bob, "answer")
	nextMessage(t, a2)
	nextMessage(t, b)
	s = readState(t, a2, aliceBob)
	require.Equal(t, int64(5), s.ReadSeq)
	require.Zero(t, s.Unread)
}

func TestReadReceiptRefusals(t *testing.T) {
	srv := readStateServer(t, true, im.Config{ReadReceiptRate: -1})
	a := srv.Dial(t, client.TransportTCP, alice)
	b := srv.Dial(t, client.TransportTCP, bob)
	c := srv.Dial(t, client.TransportTCP, carol)
	id := sendText(t, b, alice, "hi").ServerMsgId
	nextMessage(t, a)
	g, err := srv.CreateGroup(testCtx(t), alice, im.GroupSpec{Name: "g"}, []string{bob})
	require.NoError(t, err)

	tooMany := make([]string, 501)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("id%d", i)
	}
	for _, tt := range []struct {
		name string
		c    *client.Client
		conv string
		ids  []string
		code imv1.ErrorCode
	}{
		{"not a member", c, aliceBob, nil, imv1.ErrorCode_ERR_PERMISSION_DENIED},
		{"not a member, with ids", c, aliceBob, []string{id}, imv1.ErrorCode_ERR_PERMISSION_DENIED},
		{"not a group member", c, im.GroupConversationID(g.ID), nil, imv1.ErrorCode_ERR_PERMISSION_DENIED},
		{"no such group", c, im.GroupConversationID("nope"), nil, imv1.ErrorCode_ERR_PERMISSION_DENIED},
		{"empty conversation", a, "", nil, imv1.ErrorCode_ERR_INVALID_PARAM},
		{"control character", a, "single_alice\x00bob", nil, imv1.ErrorCode_ERR_INVALID_PARAM},
		{"too many ids", a, aliceBob, tooMany, imv1.ErrorCode_ERR_INVALID_PARAM},
		{"empty id", a, aliceBob, []string{""}, imv1.ErrorCode_ERR_INVALID_PARAM},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rsp := readReceipt(t, tt.c, tt.conv, tt.ids...)
			require.Equal(t, tt.code, rsp.ErrorCode, rsp.ErrorMsg)
		})
	}
	// Nothing changed for anyone.
	st, err := srv.ReadStates(testCtx(t), alice, []string{aliceBob})
	require.NoError(t, err)
	require.Equal(t, int64(1), st[0].Unread)
	noReceipt(t, b)

	// Unknown ids change nothing and succeed.
	rsp := readReceipt(t, a, aliceBob, "unknown")
	require.Equal(t, imv1.ErrorCode_ERR_SUCCESS, rsp.ErrorCode)
	st, err = srv.ReadStates(testCtx(t), alice, []string{aliceBob})
	require.NoError(t, err)
	require.Equal(t, int64(1), st[0].Unread)
}

func TestReadReceiptFlood(t *testing.T) {
	srv := readStateServer(t, true, im.Config{ReadReceiptRate: 2})
	a := srv.Dial(t, client.TransportTCP, alice)
	b := srv.Dial(t, client.TransportTCP, bob)
	sendText(t, b, alice, "hi")
	nextMessage(t, a)
	// Past 2/s with a burst of 4: SEND_TOO_FAST, and nothing stored for
	// the refused ones.
	codes := make(map[imv1.ErrorCode]int)
	for range 10 {
		codes[readReceipt(t, a, aliceBob, "unknown").ErrorCode]++
	}
	require.GreaterOrEqual(t, codes[imv1.ErrorCode_ERR_SEND_TOO_FAST], 5, "%v", codes)
	require.Equal(t, uint64(codes[imv1.ErrorCode_ERR_SEND_TOO_FAST]), srv.Stats().ReceiptsLimited)
	st, err := srv.ReadStates(testCtx(t), alice, []string{aliceBob})
	require.NoError(t, err)
	require.Equal(t, int64(1), st[0].Unread)
	// The connection is kept.
	require.NoError(t, a.Request(testCtx(t), imv1.CommandType_CMD_HEARTBEAT_REQ, &imv1.HeartbeatRequest{}, nil))
}

// noReceipt checks that no read receipt was pushed to c before the answer
// to a request made now.
func noReceipt(t *testing.T, c *client.Client) {
	t.Helper()
	require.NoError(t, c.Request(testCtx(t), imv1.CommandType_CMD_HEARTBEAT_REQ, &imv1.HeartbeatRequest{}, nil))
	for {
		select {
		case p := <-c.Pushes():
			_, isReceipt := p.Message.(*imv1.ReadReceiptPush)
			require.False(t, isReceipt, "unexpected receipt %v", p.Message)
		default:
			return
		}
	}
}

func TestDeliveryAcks(t *testing.T) {
	srv := readStateServer(t, true, im.Config{})
	a := srv.Dial(t, client.TransportTCP, alice)
	b := srv.Dial(t, client.TransportWebSocket, bob)
	b2 := srv.Dial(t, client.TransportTCP, bob)
	// b subscribes to delivery receipts; b2 does not.
	sub := new(imv1.ReadStateResponse)
	require.NoError(t, b.Request(testCtx(t), imv1.CommandType_CMD_READ_STATE_REQ, &imv1.ReadStateRequest{Receipts: imv1.ReceiptSubscribe_RECEIPTS_SUBSCRIBE}, sub))
	require.True(t, sub.Receipts)

	var last *imv1.MessageInfo
	for i := range 3 {
		sendText(t, b, alice, content(i))
		last = nextMessage(t, a)
		nextMessage(t, b2)
	}
	// The SDK's ack: server_msg_id, seq 0.
	require.NoError(t, a.SendFrame(testCtx(t), imv1.CommandType_CMD_MSG_ACK, &imv1.MessageAck{ServerMsgId: last.ServerMsgId}))
	for {
		p := nextPush(t, b)
		if d, ok := p.Message.(*imv1.DeliveryReceiptPush); ok {
			require.Equal(t, aliceBob, d.ConversationId)
			require.Equal(t, alice, d.UserId)
			require.Equal(t, last.Seq, d.DeliveredSeq)
			require.Zero(t, d.ReadSeq)
			break
		}
	}
	st := readState(t, b2, aliceBob)
	require.Equal(t, last.Seq, st.PeerDeliveredSeq)
	require.Zero(t, st.PeerReadSeq)
	require.Equal(t, int64(3), readState(t, a, aliceBob).Unread, "delivered is not read")

	// An ack for something never pushed to that connection, and garbage,
	// change nothing.
	require.NoError(t, a.SendFrame(testCtx(t), imv1.CommandType_CMD_MSG_ACK, &imv1.MessageAck{ServerMsgId: "nope", Seq: 99}))
	require.NoError(t, a.SendFrame(testCtx(t), imv1.CommandType_CMD_MSG_ACK, &imv1.MessageAck{}))

	// Reading tells the subscribed connection too, with the read position.
	require.Equal(t, imv1.ErrorCode_ERR_SUCCESS, readReceipt(t, a, aliceBob).ErrorCode)
	for {
		p := nextPush(t, b)
		if d, ok := p.Message.(*imv1.DeliveryReceiptPush); ok {
			require.Equal(t, int64(3), d.ReadSeq)
			require.Equal(t, int64(3), d.DeliveredSeq)
			break
		}
	}
	// b2 never subscribed: it saw only the SDK's 502.
	for {
		select {
		case p := <-b2.Pushes():
			_, isDelivery := p.Message.(*imv1.DeliveryReceiptPush)
			require.False(t, isDelivery, "delivery receipt to a connection that did not subscribe")
			continue
		default:
		}
		break
	}
	st = readState(t, b2, aliceBob)
	require.Equal(t, int64(3), st.PeerDeliveredSeq)
}

func TestGroupReadBy(t *testing.T) {
	srv := readStateServer(t, true, im.Config{ReadByMaxMembers: 3})
	ctx := testCtx(t)
	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "g"}, []string{bob, carol})
	require.NoError(t, err)
	conv := im.GroupConversationID(g.ID)
	m, err := srv.SendMessage(ctx, im.SendRequest{SenderID: alice, ConversationID: conv, ClientMsgID: "m1", Type: im.TextMessage, Content: []byte("hi")})
	require.NoError(t, err)

	r, err := srv.ReadBy(ctx, alice, conv, m.ServerID)
	require.NoError(t, err)
	require.Equal(t, im.ReadReceipt{Seq: m.Seq, Unread: 2, UnreadBy: []string{bob, carol}, Listed: true}, r)

	_, err = srv.MarkRead(ctx, bob, conv, []string{m.ServerID})
	require.NoError(t, err)
	r, err = srv.ReadBy(ctx, alice, conv, m.ServerID)
	require.NoError(t, err)
	require.Equal(t, im.ReadReceipt{Seq: m.Seq, Read: 1, Unread: 1, ReadBy: []string{bob}, UnreadBy: []string{carol}, Listed: true}, r)

	// Carol answers, which reads it.
	_, err = srv.SendMessage(ctx, im.SendRequest{SenderID: carol, ConversationID: conv, ClientMsgID: "c1", Type: im.TextMessage, Content: []byte("yo")})
	require.NoError(t, err)
	r, err = srv.ReadBy(ctx, alice, conv, m.ServerID)
	require.NoError(t, err)
	require.Equal(t, 2, r.Read)

	// Over the size limit: counts only.
	err = srv.InviteToGroup(ctx, g.ID, alice, []string{"dave", "erin"})
	require.NoError(t, err)
	r, err = srv.ReadBy(ctx, alice, conv, m.ServerID)
	require.NoError(t, err)
	require.False(t, r.Listed)
	require.Nil(t, r.ReadBy)
	require.Equal(t, 2, r.Read)
	require.Equal(t, 0, r.Unread, "members who joined after it may not read it")

	// Only the sender asks; outsiders and unknown ids are refused.
	_, err = srv.ReadBy(ctx, bob, conv, m.ServerID)
	require.ErrorIs(t, err, im.ErrPermissionDenied)
	_, err = srv.ReadBy(ctx, "zed", conv, m.ServerID)
	require.ErrorIs(t, err, im.ErrPermissionDenied)
	_, err = srv.ReadBy(ctx, alice, conv, "nope")
	require.ErrorIs(t, err, im.ErrNotFound)

	// Over the wire.
	a := srv.Dial(t, client.TransportTCP, alice)
	rsp := new(imv1.ReadByResponse)
	require.NoError(t, a.Request(ctx, imv1.CommandType_CMD_READ_BY_REQ, &imv1.ReadByRequest{ConversationId: conv, ServerMsgId: m.ServerID}, rsp))
	require.Equal(t, int32(2), rsp.ReadCount)
	require.False(t, rsp.Listed)
	b := srv.Dial(t, client.TransportTCP, bob)
	err = b.Request(ctx, imv1.CommandType_CMD_READ_BY_REQ, &imv1.ReadByRequest{ConversationId: conv, ServerMsgId: m.ServerID}, new(imv1.ReadByResponse))
	var e *client.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, imv1.ErrorCode_ERR_PERMISSION_DENIED, e.Code)
}

// TestUnreadProperty checks unread counts against a model after random
// interleavings of sends, receipts (by id and "everything"), recalls and
// restarts, with two devices per user and a group among them.
func TestUnreadProperty(t *testing.T) {
	for _, st := range readStateStores {
		t.Run(st.name, func(t *testing.T) {
			for seed := range uint64(3) {
				t.Run(fmt.Sprint(seed), func(t *testing.T) { testUnreadProperty(t, st.memory, seed) })
			}
		})
	}
}

func testUnreadProperty(t *testing.T, memory bool, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 42))
	srv := readStateServer(t, memory, im.Config{ReadReceiptRate: -1, SendRate: -1})
	users := []string{alice, bob, carol}
	ctx := testCtx(t)
	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "g"}, []string{bob, carol})
	require.NoError(t, err)
	group := im.GroupConversationID(g.ID)
	convs := map[string][]string{ // conversation → members
		group:                               users,
		aliceBob:                            {alice, bob},
		im.SingleConversationID(bob, carol): {bob, carol},
	}
	convIDs := slices.Sorted(func(yield func(string) bool) {
		for c := range convs {
			if !yield(c) {
				return
			}
		}
	})

	// The model: each conversation's messages (sender, id) and each
	// user's read position.
	type msg struct{ sender, id string }
	msgs := map[string][]msg{group: {{alice, ""}}} // the group's creation notice
	read := map[[2]string]int64{{alice, group}: 1}
	unread := func(user, conv string) int64 {
		return int64(len(msgs[conv])) - read[[2]string{user, conv}]
	}

	dial := func() map[string][]*client.Client {
		devs := make(map[string][]*client.Client)
		for _, u := range users {
			devs[u] = []*client.Client{srv.Dial(t, client.TransportTCP, u), srv.Dial(t, client.TransportWebSocket, u)}
		}
		return devs
	}
	devs := dial()
	cmid, recalls := 0, 0
	for step := range 120 {
		conv := convIDs[rng.IntN(len(convIDs))]
		members := convs[conv]
		u := members[rng.IntN(len(members))]
		dev := devs[u][rng.IntN(2)]
		switch op := rng.IntN(11); {
		case op == 10: // recall one of her messages: it stays, unread or not
			var mine []string
			for _, m := range msgs[conv] {
				if m.sender == u && m.id != "" {
					mine = append(mine, m.id)
				}
			}
			if len(mine) == 0 {
				continue
			}
			_, err := srv.RecallMessage(ctx, u, conv, mine[rng.IntN(len(mine))])
			require.NoError(t, err)
			recalls++
		case op < 5: // send
			cmid++
			var m im.Message
			if strings.HasPrefix(conv, "group_") {
				m, err = srv.SendMessage(ctx, im.SendRequest{SenderID: u, ConversationID: conv, ClientMsgID: fmt.Sprint("p", cmid), Type: im.TextMessage, Content: []byte("x")})
				require.NoError(t, err)
			} else {
				peer := members[0]
				if peer == u {
					peer = members[1]
				}
				rsp := sendText(t, dev, peer, "x")
				m = im.Message{ServerID: rsp.ServerMsgId, Seq: rsp.Seq}
			}
			msgs[conv] = append(msgs[conv], msg{u, m.ServerID})
			require.Equal(t, int64(len(msgs[conv])), m.Seq)
			read[[2]string{u, conv}] = m.Seq
		case op < 7: // read everything
			require.Equal(t, imv1.ErrorCode_ERR_SUCCESS, readReceipt(t, dev, conv).ErrorCode)
			read[[2]string{u, conv}] = int64(len(msgs[conv]))
		case op < 9: // read up to a random message by id
			if len(msgs[conv]) == 0 {
				continue
			}
			i := rng.IntN(len(msgs[conv]))
			if msgs[conv][i].id == "" {
				continue
			}
			require.Equal(t, imv1.ErrorCode_ERR_SUCCESS, readReceipt(t, dev, conv, msgs[conv][i].id).ErrorCode)
			k := [2]string{u, conv}
			read[k] = max(read[k], int64(i+1))
		default: // restart
			srv = srv.Restart(t)
			devs = dial()
		}
		for _, user := range users {
			states, err := srv.ReadStates(ctx, user, nil)
			require.NoError(t, err)
			var total int64
			for _, st := range states {
				require.Equal(t, unread(user, st.ConversationID), st.Unread, "step %d: %s in %s", step, user, st.ConversationID)
				total += st.Unread
			}
			n, err := srv.UnreadCount(ctx, user)
			require.NoError(t, err)
			require.Equal(t, total, n)
		}
	}
	require.Positive(t, recalls, "no recall among the steps")
}

func TestMentions(t *testing.T) {
	srv := readStateServer(t, true, im.Config{})
	ctx := testCtx(t)
	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "g"}, []string{bob, carol})
	require.NoError(t, err)
	conv := im.GroupConversationID(g.ID)
	send := func(from, extra string) im.Message {
		t.Helper()
		m, err := srv.SendMessage(ctx, im.SendRequest{SenderID: from, ConversationID: conv, Type: im.TextMessage, Content: []byte("hey"), Extra: extra})
		require.NoError(t, err)
		return m
	}
	mentioned := func(user string) bool {
		t.Helper()
		st, err := srv.ReadStates(ctx, user, []string{conv})
		require.NoError(t, err)
		return st[0].Mentioned
	}
	// A mention of carol and of a stranger; bob, the sender, is never
	// flagged by his own message.
	send(bob, `{"mentionUserIDs":["carol","zed","bob"]}`)
	eventually(t, func() bool { return mentioned(carol) }, "carol not flagged")
	require.False(t, mentioned(bob))
	require.False(t, mentioned(alice))

	// Reading clears it; over the wire the flag is in the read state.
	c := srv.Dial(t, client.TransportTCP, carol)
	require.True(t, readState(t, c, conv).Mentioned)
	require.Equal(t, imv1.ErrorCode_ERR_SUCCESS, readReceipt(t, c, conv).ErrorCode)
	require.False(t, readState(t, c, conv).Mentioned)

	// Everyone: only from the owner or an admin.
	send(bob, `{"mentionAll":true}`)
	m := send(alice, `{"mentionAll":true}`)
	eventually(t, func() bool { return mentioned(bob) && mentioned(carol) }, "mention of all not flagged")
	require.False(t, mentioned(alice), "bob may not mention everyone") // stored no later than alice's
	// A later message without a mention keeps the flag until read.
	send(bob, `{"other":1}`)
	_, err = srv.MarkRead(ctx, carol, conv, []string{m.ServerID})
	require.NoError(t, err)
	require.False(t, mentioned(carol))

	// At most 100 ids are read: a 101st is not mentioned.
	ids := make([]string, 0, 101)
	for i := range 100 {
		ids = append(ids, fmt.Sprintf("%q", fmt.Sprint("u", i)))
	}
	ids = append(ids, `"carol"`)
	_, err = srv.MarkRead(ctx, bob, conv, nil)
	require.NoError(t, err)
	require.False(t, mentioned(bob))
	send(bob, `{"mentionUserIDs":[`+strings.Join(ids, ",")+`]}`)
	send(alice, `{"mentionUserIDs":["bob"]}`)
	eventually(t, func() bool { return mentioned(bob) }, "bob not flagged")
	require.False(t, mentioned(carol), "the 101st id was read") // stored no later than bob's

	// Malformed extra mentions no one.
	send(carol, `{"mentionUserIDs": 5}`)
	send(carol, `not json "mention`)
	st, err := srv.ReadStates(ctx, alice, []string{conv})
	require.NoError(t, err)
	require.False(t, st[0].Mentioned)
}

// The Go client's read-state calls, against a real server.
func TestClientReadState(t *testing.T) {
	srv := readStateServer(t, true, im.Config{})
	ctx := testCtx(t)
	a := srv.Dial(t, client.TransportWebSocket, alice)
	b := srv.Dial(t, client.TransportTCP, bob)
	sub, err := b.ReadState(ctx, imv1.ReceiptSubscribe_RECEIPTS_SUBSCRIBE)
	require.NoError(t, err)
	require.True(t, sub.Receipts)
	require.Zero(t, sub.TotalUnread)

	sent := sendText(t, b, alice, "hello")
	m := nextMessage(t, a)
	require.NoError(t, a.Ack(ctx, m.ServerMsgId))
	var d *imv1.DeliveryReceiptPush
	for d == nil {
		d, _ = nextPush(t, b).Message.(*imv1.DeliveryReceiptPush)
	}
	require.Equal(t, sent.Seq, d.DeliveredSeq)

	rsp, err := a.ReadState(ctx, imv1.ReceiptSubscribe_RECEIPTS_UNCHANGED)
	require.NoError(t, err)
	require.Equal(t, int64(1), rsp.TotalUnread)
	require.False(t, rsp.Receipts)
	require.NoError(t, a.MarkRead(ctx, aliceBob, m.ServerMsgId))
	rsp, err = a.ReadState(ctx, imv1.ReceiptSubscribe_RECEIPTS_UNCHANGED, aliceBob)
	require.NoError(t, err)
	require.Zero(t, rsp.TotalUnread)
	require.Equal(t, sent.Seq, rsp.States[0].ReadSeq)

	by, err := b.ReadBy(ctx, aliceBob, sent.ServerMsgId)
	require.NoError(t, err)
	require.Equal(t, []string{alice}, by.ReadUserIds)
	require.True(t, by.Listed)

	// Refusals come back as errors with the server's code.
	var e *client.Error
	_, err = a.ReadBy(ctx, aliceBob, sent.ServerMsgId)
	require.ErrorAs(t, err, &e)
	require.Equal(t, imv1.ErrorCode_ERR_PERMISSION_DENIED, e.Code)
	err = a.MarkRead(ctx, im.SingleConversationID(bob, carol))
	require.ErrorAs(t, err, &e)
	require.Equal(t, imv1.ErrorCode_ERR_PERMISSION_DENIED, e.Code)
	tooMany := make([]string, 101)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("single_alice_u%d", i)
	}
	_, err = a.ReadState(ctx, imv1.ReceiptSubscribe_RECEIPTS_UNCHANGED, tooMany...)
	require.ErrorAs(t, err, &e)
	require.Equal(t, imv1.ErrorCode_ERR_INVALID_PARAM, e.Code)
}

// Acks are stored once a second; a graceful shutdown stores what was
// gathered, so a restart forgets none. An ack of a push the connection no
// longer remembers (over 64 ago) changes nothing.
func TestDeliveryAcksSurviveShutdown(t *testing.T) {
	srv := readStateServer(t, false, im.Config{SendRate: -1})
	ctx := testCtx(t)
	a := srv.Dial(t, client.TransportTCP, alice)
	var pushed []*imv1.MessageInfo
	for i := range 70 {
		_, err := srv.SendMessage(ctx, im.SendRequest{SenderID: bob, ReceiverID: alice, Type: im.TextMessage, Content: []byte(content(i))})
		require.NoError(t, err)
		pushed = append(pushed, nextMessage(t, a))
	}
	// The first push is 70 back: forgotten.
	require.NoError(t, a.Ack(ctx, pushed[0].ServerMsgId))
	require.NoError(t, a.Ack(ctx, pushed[9].ServerMsgId))
	eventually(t, func() bool {
		st, err := srv.ReadStates(ctx, bob, []string{aliceBob})
		require.NoError(t, err)
		return st[0].PeerDelivered == pushed[9].Seq
	}, "the ack was not counted")
	st, err := srv.ReadStates(ctx, bob, []string{aliceBob})
	require.NoError(t, err)
	require.Equal(t, pushed[9].Seq, st[0].PeerDelivered, "an ack of a forgotten push moved nothing")

	srv = srv.Restart(t)
	states, err := srv.Store.(im.ReadStateStore).ReadStates(ctx, alice, []string{aliceBob})
	require.NoError(t, err)
	require.Equal(t, pushed[9].Seq, states[0].Delivered)
}
