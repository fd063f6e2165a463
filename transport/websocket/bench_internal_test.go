package websocket

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	cws "github.com/coder/websocket"

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

// BenchmarkEcho sends messages to an echoing session over a loopback
// socket: pipelined (a writer runs ahead of the reader), and one at a time,
// where each message arrives at a connection that is waiting for it.
func BenchmarkEcho(b *testing.B) {
	echo := func(ctx context.Context, c im.Conn, _ im.ConnInfo) error {
		defer c.Close()
		for {
			f, err := c.ReadFrame(ctx)
			if err != nil {
				return err
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = c.WriteFrames(wctx, []im.Frame{f})
			cancel()
			if err != nil {
				return err
			}
		}
	}
	for _, bc := range []struct {
		name      string
		body      int
		pipelined bool
	}{
		{"pipelined/128B", 128, true},
		{"one-at-a-time/128B", 128, false},
		{"one-at-a-time/4KiB", 4 << 10, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newHandler(echo, newFakeCore().authenticate, Options{})
			ts := httptest.NewServer(h)
			defer func() {
				ts.Close()
				_ = h.Close()
			}()
			ctx := context.Background()
			c, _, err := cws.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			msg, err := proto.Marshal(&imv1.WebSocketMessage{Command: 5, Sequence: 1, Body: bytes.Repeat([]byte{'x'}, bc.body)})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			b.ResetTimer()
			sent := make(chan error, 1)
			if bc.pipelined {
				go func() {
					for range b.N {
						if err := c.Write(ctx, cws.MessageBinary, msg); err != nil {
							sent <- err
							return
						}
					}
					sent <- nil
				}()
			}
			for range b.N {
				if !bc.pipelined {
					if err := c.Write(ctx, cws.MessageBinary, msg); err != nil {
						b.Fatal(err)
					}
				}
				if _, _, err := c.Read(ctx); err != nil {
					b.Fatal(err)
				}
			}
			if bc.pipelined {
				if err := <-sent; err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
