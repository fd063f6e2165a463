package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imv1"
)

func sampleOut() *outMsg {
	return &outMsg{
		serverMsgID: []byte("srv-1"),
		clientMsgID: []byte("run-42"),
		convID:      []byte("single_a_b"),
		senderID:    []byte("a"),
		receiverID:  []byte("b"),
		content:     []byte("\x00\x01hello"),
		sendTime:    1700000000000,
		serverTime:  1700000000001,
		seq:         300,
	}
}

// The hand encoder must produce what the generated code decodes.
func TestAppendWrappedDecodesWithGeneratedCode(t *testing.T) {
	m := sampleOut()
	var req imv1.SendMessageRequest
	require.NoError(t, proto.Unmarshal(appendWrapped(nil, m), &req))
	got := req.GetMessage()
	require.Equal(t, "srv-1", got.ServerMsgId)
	require.Equal(t, "run-42", got.ClientMsgId)
	require.Equal(t, "single_a_b", got.ConversationId)
	require.Equal(t, "a", got.SenderId)
	require.Equal(t, "b", got.ReceiverId)
	require.EqualValues(t, 1, got.MessageType)
	require.Equal(t, m.content, got.Content)
	require.EqualValues(t, 1700000000000, got.SendTime)
	require.EqualValues(t, 1700000000001, got.ServerTime)
	require.EqualValues(t, 300, got.Seq)
	require.EqualValues(t, 1, got.ConversationType)
	require.Equal(t, proto.Size(got), messageInfoSize(m))

	// Empty fields are left out, as proto3 does.
	empty := &outMsg{}
	require.Equal(t, proto.Size(&imv1.MessageInfo{MessageType: 1, ConversationType: 1}), messageInfoSize(empty))
}

// A group message carries its group_id and conversation_type 2, both
// ways.
func TestGroupMessageBothWays(t *testing.T) {
	m := sampleOut()
	m.convID, m.receiverID, m.groupID = []byte("group_g1"), nil, []byte("g1")
	var push imv1.PushMessage
	require.NoError(t, proto.Unmarshal(appendWrapped(nil, m), &push))
	got := push.GetMessage()
	require.Equal(t, "group_g1", got.ConversationId)
	require.Equal(t, "g1", got.GroupId)
	require.Empty(t, got.ReceiverId)
	require.EqualValues(t, convTypeGroup, got.ConversationType)
	require.Equal(t, proto.Size(got), messageInfoSize(m))

	body, err := proto.Marshal(&imv1.PushMessage{Message: &imv1.MessageInfo{
		ClientMsgId: "x-1", ConversationId: "group_g2", GroupId: "g2", Seq: 4, ConversationType: convTypeGroup,
	}})
	require.NoError(t, err)
	var in inMsg
	require.NoError(t, eachMessage(imv1.CommandType_CMD_PUSH_MSG, body, func(info []byte) error { return parseMessageInfo(info, &in) }))
	require.Equal(t, "g2", string(in.groupID))
	require.EqualValues(t, convTypeGroup, in.convType)
	require.EqualValues(t, 4, in.seq)
}

// The hand decoder must read what the generated code encodes.
func TestParseMessagesFromGeneratedCode(t *testing.T) {
	mi := func(id string, seq int64) *imv1.MessageInfo {
		return &imv1.MessageInfo{
			ServerMsgId: "s" + id, ClientMsgId: id, ConversationId: "single_a_b",
			SenderId: "a", ReceiverId: "b", Content: []byte("c" + id), Seq: seq,
			Extra: "ignored", ReadBy: []string{"x"}, IsRead: true, CreateTime: 5,
		}
	}
	push, err := proto.Marshal(&imv1.PushMessage{Message: mi("m1", 7)})
	require.NoError(t, err)
	batch, err := proto.Marshal(&imv1.BatchMessages{Messages: []*imv1.PushMessage{{Message: mi("m2", 8)}, {Message: mi("m3", 9)}}})
	require.NoError(t, err)

	tests := []struct {
		name string
		cmd  imv1.CommandType
		body []byte
		ids  []string
		seqs []int64
	}{
		{"push", imv1.CommandType_CMD_PUSH_MSG, push, []string{"m1"}, []int64{7}},
		{"batch", imv1.CommandType_CMD_BATCH_MSG, batch, []string{"m2", "m3"}, []int64{8, 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids []string
			var seqs []int64
			err := eachMessage(tt.cmd, tt.body, func(info []byte) error {
				var m inMsg
				if err := parseMessageInfo(info, &m); err != nil {
					return err
				}
				require.Equal(t, "s"+string(m.clientMsgID), string(m.serverMsgID))
				require.Equal(t, "single_a_b", string(m.convID))
				require.Equal(t, "a", string(m.senderID))
				require.Equal(t, "b", string(m.receiverID))
				require.Equal(t, "c"+string(m.clientMsgID), string(m.content))
				ids = append(ids, string(m.clientMsgID))
				seqs = append(seqs, m.seq)
				return nil
			})
			require.NoError(t, err)
			require.Equal(t, tt.ids, ids)
			require.Equal(t, tt.seqs, seqs)
		})
	}
	require.Error(t, eachMessage(imv1.CommandType_CMD_HEARTBEAT_RSP, nil, func([]byte) error { return nil }))
}

func TestSendResponseBothWays(t *testing.T) {
	b, err := proto.Marshal(&imv1.SendMessageResponse{ErrorCode: imv1.ErrorCode_ERR_SEND_TOO_FAST, ErrorMsg: "slow down", ClientMsgId: "x-9", Seq: 77, ServerTime: 3})
	require.NoError(t, err)
	var r sendRsp
	require.NoError(t, parseSendRsp(b, &r))
	require.Equal(t, imv1.ErrorCode_ERR_SEND_TOO_FAST, r.code)
	require.Equal(t, "x-9", string(r.clientMsgID))
	require.EqualValues(t, 77, r.seq)
	require.Equal(t, imv1.ErrorCode_ERR_SEND_TOO_FAST, errorCodeOf(b))

	var back imv1.SendMessageResponse
	require.NoError(t, proto.Unmarshal(appendSendRsp(nil, []byte("r5"), []byte("x-9"), 5, 6), &back))
	require.Equal(t, "r5", back.ServerMsgId)
	require.Equal(t, "x-9", back.ClientMsgId)
	require.EqualValues(t, 5, back.Seq)
	require.EqualValues(t, 6, back.ServerTime)
	require.Equal(t, imv1.ErrorCode_ERR_SUCCESS, back.ErrorCode)

	var ack imv1.MessageAck
	require.NoError(t, proto.Unmarshal(appendMsgAck(nil, []byte("srv")), &ack))
	require.Equal(t, "srv", ack.ServerMsgId)
}

func TestMalformedInputIsAnError(t *testing.T) {
	bad := [][]byte{
		{0x0a},             // a length-delimited field with no length
		{0x0a, 0x05, 'a'},  // a length past the end
		{0x08},             // a varint with no bytes
		{0x08, 0xff, 0xff}, // an unterminated varint
		{0x00},             // field number 0
	}
	for _, b := range bad {
		var m inMsg
		require.Error(t, parseMessageInfo(b, &m), "%x", b)
		var r sendRsp
		require.Error(t, parseSendRsp(b, &r), "%x", b)
		require.Error(t, eachMessage(imv1.CommandType_CMD_PUSH_MSG, b, func([]byte) error { return nil }), "%x", b)
	}
}

func TestFrameBatch(t *testing.T) {
	var b frameBatch
	for i := range 100 { // enough to move the buffer while it grows
		from := b.mark()
		b.buf = append(b.buf, bytes.Repeat([]byte{byte(i)}, 50)...)
		b.done(imv1.CommandType_CMD_MSG_ACK, uint32(i), from)
	}
	frames := b.list()
	require.Len(t, frames, 100)
	for i, f := range frames {
		require.Equal(t, im.Frame{Command: imv1.CommandType_CMD_MSG_ACK, Sequence: uint32(i), Body: bytes.Repeat([]byte{byte(i)}, 50)}, f)
	}
	b.reset()
	require.Zero(t, b.len())
	require.Empty(t, b.list())
}

func TestParseMsgNum(t *testing.T) {
	prefix := []byte("abcd-")
	tests := []struct {
		id string
		n  int
		ok bool
	}{
		{"abcd-0", 0, true},
		{"abcd-123456", 123456, true},
		{"abcd-", 0, false},
		{"abce-1", 0, false},
		{"abcd-1x", 0, false},
		{"abcd-1234567890", 0, false}, // too long to be ours
		{"", 0, false},
	}
	for _, tt := range tests {
		n, ok := parseMsgNum([]byte(tt.id), prefix)
		require.Equal(t, tt.ok, ok, tt.id)
		require.Equal(t, tt.n, n, tt.id)
	}
}
