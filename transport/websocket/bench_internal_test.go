package websocket

import (
	"bytes"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imv1"
	"google.golang.org/protobuf/proto"
)

// benchPush is a PUSH_MSG frame with a short text message, the commonest
// frame a server writes.
func benchPush(b *testing.B) im.Frame {
	body, err := proto.Marshal(&imv1.PushMessage{Message: &imv1.MessageInfo{
		ServerMsgId: "0123456789abcdef0123456789abcdef", ClientMsgId: "c1", ConversationId: "single_alice_bob",
		SenderId: "alice", ReceiverId: "bob", MessageType: 1, Content: bytes.Repeat([]byte{'x'}, 128), Seq: 42, ConversationType: 1,
	}})
	if err != nil {
		b.Fatal(err)
	}
	return im.Frame{Command: imv1.CommandType_CMD_PUSH_MSG, Body: body}
}

func BenchmarkEnvelopeBinary(b *testing.B) {
	f := benchPush(b)
	b.Run("encode", func(b *testing.B) {
		buf := make([]byte, 0, 1024)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf = appendBinary(buf[:0], f, 1700000000000)
		}
	})
	b.Run("decode", func(b *testing.B) {
		p := appendBinary(nil, f, 1700000000000)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := decodeBinary(p, im.MaxFrameSize); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkEnvelopeJSON(b *testing.B) {
	f := benchPush(b)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := appendJSON(nil, f, 1700000000000); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		p, err := appendJSON(nil, f, 1700000000000)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := decodeJSON(p, im.MaxFrameSize); err != nil {
				b.Fatal(err)
			}
		}
	})
}
