package im

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/imserver/imserver/im/imv1"
)

// sendFieldsOf is what the server read from a SendMessageRequest before it
// was decoded by hand.
func sendFieldsOf(req *imv1.SendMessageRequest) sendFields {
	mi := req.GetMessage()
	if mi == nil {
		return sendFields{}
	}
	return sendFields{
		present:     true,
		clientMsgID: mi.ClientMsgId,
		conv:        mi.ConversationId,
		receiver:    mi.ReceiverId,
		extra:       mi.Extra,
		attach:      mi.AttachedInfo,
		typ:         mi.MessageType,
		content:     mi.Content,
		sendTime:    mi.SendTime,
	}
}

// checkSendDecode requires decodeSendRequest to accept and refuse b as
// proto.Unmarshal does, and to read the same fields.
func checkSendDecode(t *testing.T, b []byte) {
	t.Helper()
	var req imv1.SendMessageRequest
	perr := proto.Unmarshal(b, &req)
	got, err := decodeSendRequest(b)
	if perr != nil {
		require.Error(t, err, "proto refuses %x: %v", b, perr)
		return
	}
	require.NoError(t, err, "proto accepts %x", b)
	want := sendFieldsOf(&req)
	require.Equal(t, len(want.content), len(got.content))
	require.True(t, bytes.Equal(want.content, got.content))
	want.content, got.content = nil, nil
	require.Equal(t, want, got)
}

func sendSeeds(t testing.TB) [][]byte {
	full := &imv1.MessageInfo{
		ServerMsgId: "s1", ClientMsgId: "c1", ConversationId: "single_a_b", SenderId: "a",
		ReceiverId: "b", GroupId: "g", MessageType: 1, Content: []byte("hello"), SendTime: 1700000000000,
		ServerTime: 5, Seq: 7, Status: 2, IsRead: true, CreateTime: 9, Extra: "x", ReadBy: []string{"u1", "u2"},
		ReadTime: 3, IsDeleted: true, IsRevoked: true, RevokedBy: "r", RevokedTime: 4, AttachedInfo: "att",
		ConversationType: 1,
	}
	var seeds [][]byte
	for _, m := range []*imv1.SendMessageRequest{
		{},
		{Message: &imv1.MessageInfo{}},
		{Message: &imv1.MessageInfo{ClientMsgId: "c", ReceiverId: "b", Content: []byte{0}, MessageType: -3}},
		{Message: full},
	} {
		b, err := proto.Marshal(m)
		require.NoError(t, err)
		seeds = append(seeds, b)
	}
	info, err := proto.Marshal(full)
	require.NoError(t, err)
	wrap := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			b = protowire.AppendBytes(b, p)
		}
		return b
	}
	str := func(num protowire.Number, s string) []byte {
		b := protowire.AppendTag(nil, num, protowire.BytesType)
		return protowire.AppendString(b, s)
	}
	varint := func(num protowire.Number, v uint64) []byte {
		b := protowire.AppendTag(nil, num, protowire.VarintType)
		return protowire.AppendVarint(b, v)
	}
	seeds = append(seeds,
		wrap(info, str(fInfoClientMsgID, "second"), varint(fInfoType, 0)), // merged: the last wins
		wrap(str(fInfoSenderID, "\xff")),                                  // invalid UTF-8 in a field not read
		wrap(str(fInfoReadBy, "\xc0")),
		wrap(str(fInfoClientMsgID, "\xe2\x82")),
		wrap(varint(fInfoClientMsgID, 5)),                    // a string field as a varint: unknown
		wrap(str(fInfoType, "\xff")),                         // a varint field as bytes: unknown
		wrap(varint(fInfoType, 1<<40|3)),                     // int32 from a wide varint
		wrap(varint(99, 1), str(100, "\xff")),                // unknown fields; not checked for UTF-8
		append(varint(1, 4), wrap(str(fInfoConvID, "c"))...), // message field as a varint: unknown
		varint(2, 1),
		[]byte{0x0a, 0x05, 0x12},                  // truncated
		[]byte{0x00},                              // field number 0
		[]byte{0x0a, 0x02, 0x08, 0x80},            // truncated varint inside
		[]byte{0x0b, 0x0c},                        // an empty group
		[]byte{0x0c},                              // an end group alone
		wrap([]byte{0x43, 0x44}),                  // group inside the message
		wrap(append(str(fInfoContent, ""), 0x44)), // stray end group
	)
	return seeds
}

func TestDecodeSendRequestAsProto(t *testing.T) {
	for _, b := range sendSeeds(t) {
		checkSendDecode(t, b)
	}
}

func FuzzDecodeSendRequest(f *testing.F) {
	for _, b := range sendSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(checkSendDecode)
}

func TestSendAckAsProto(t *testing.T) {
	at := time.UnixMilli(1700000000123)
	for _, tc := range []struct {
		client string
		m      Message
	}{
		{"c1", Message{ServerID: "s1", Seq: 1, CreatedAt: at}},
		{"", Message{}},
		{"c\xff", Message{ServerID: "s\xc0x", Seq: 1 << 40, CreatedAt: time.UnixMilli(-5)}},
	} {
		want, err := proto.Marshal(&imv1.SendMessageResponse{
			ServerMsgId: validUTF8(tc.m.ServerID),
			ClientMsgId: validUTF8(tc.client),
			Seq:         tc.m.Seq,
			ServerTime:  tc.m.CreatedAt.UnixMilli(),
		})
		require.NoError(t, err)
		got := encodeSendAck(tc.client, tc.m)
		require.Equal(t, want, got)
		require.Equal(t, len(got), cap(got), "sized exactly")
	}
}

func TestPushAsProto(t *testing.T) {
	srv := new(Server)
	at := time.UnixMilli(1700000000123)
	for _, m := range []Message{
		{},
		{ConversationID: "single_a_b", ServerID: "s1", SenderID: "a", ReceiverID: "b", ClientMsgID: "c1",
			Type: 1, Content: []byte("hello"), SendTime: 5, Seq: 9, CreatedAt: at, Extra: "x", AttachedInfo: "y"},
		{ConversationID: "group_g1", ServerID: "s\xff", SenderID: "a", Type: -2, Content: make([]byte, 300),
			SendTime: -1, Seq: 1 << 50, CreatedAt: at, RevokedBy: "r", RevokedAt: at},
	} {
		want, err := proto.Marshal(&imv1.PushMessage{Message: toWire(m)})
		require.NoError(t, err)
		got := srv.encodePush(&m)
		require.Equal(t, want, got)
		require.Equal(t, len(got), cap(got), "sized exactly")
	}
}
