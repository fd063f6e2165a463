package main

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/imserver/imserver/im/imv1"
)

// BenchmarkMessageCodec is what imbench's load path encodes and decodes per
// message (a send request, its response, the push, its acknowledgement),
// once with the hand-written protowire code of wire.go and once with the
// generated imv1 code. The difference is client CPU taken from the server
// under test on a shared machine; it is why wire.go exists.
func BenchmarkMessageCodec(b *testing.B) {
	m := sampleOut()
	rspBody := appendSendRsp(nil, m.serverMsgID, m.clientMsgID, m.seq, m.serverTime)
	pushBody := appendWrapped(nil, m)

	b.Run("protowire", func(b *testing.B) {
		var buf []byte
		var rsp sendRsp
		var in inMsg
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf = appendWrapped(buf[:0], m)
			if err := parseSendRsp(rspBody, &rsp); err != nil {
				b.Fatal(err)
			}
			if err := eachMessage(imv1.CommandType_CMD_PUSH_MSG, pushBody, func(info []byte) error {
				return parseMessageInfo(info, &in)
			}); err != nil {
				b.Fatal(err)
			}
			buf = appendMsgAck(buf[:0], in.serverMsgID)
		}
	})
	b.Run("imv1", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			req := &imv1.SendMessageRequest{Message: &imv1.MessageInfo{
				ClientMsgId: string(m.clientMsgID), ConversationId: string(m.convID),
				SenderId: string(m.senderID), ReceiverId: string(m.receiverID),
				MessageType: 1, Content: m.content, SendTime: m.sendTime, ConversationType: 1,
			}}
			var err error
			if buf, err = (proto.MarshalOptions{}).MarshalAppend(buf[:0], req); err != nil {
				b.Fatal(err)
			}
			var rsp imv1.SendMessageResponse
			if err := proto.Unmarshal(rspBody, &rsp); err != nil {
				b.Fatal(err)
			}
			var push imv1.PushMessage
			if err := proto.Unmarshal(pushBody, &push); err != nil {
				b.Fatal(err)
			}
			if buf, err = (proto.MarshalOptions{}).MarshalAppend(buf[:0], &imv1.MessageAck{ServerMsgId: push.GetMessage().GetServerMsgId()}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
