package websocket

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// TestSharedPushEncodedOnce writes the same pushes, sharing their
// encodings, to several connections: every binary client gets the same
// bytes (the timestamp of the first encoding too), the JSON client gets
// its own format, and each header length (7-bit, 16-bit and 64-bit
// payload lengths) decodes.
func TestSharedPushEncodedOnce(t *testing.T) {
	var frames []im.Frame
	for _, n := range []int{10, 1000, 70000} {
		body := mustMarshal(t, &imv1.PushMessage{Message: &imv1.MessageInfo{
			ServerMsgId: "s1", ConversationId: "group_g1", SenderId: "alice", GroupId: "g1",
			Content: bytes.Repeat([]byte{'x'}, n), Seq: int64(n),
		}})
		frames = append(frames, im.Frame{Command: imv1.CommandType_CMD_PUSH_MSG, Body: body, Shared: new(wire.Encodings)})
	}
	serve := func(ctx context.Context, c im.Conn, _ im.ConnInfo) error {
		defer c.Close()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.WriteFrames(wctx, frames)
		cancel()
		if err != nil {
			return err
		}
		_, err = c.ReadFrame(ctx) // until the client goes
		return err
	}
	ts := httptest.NewServer(newHandler(serve, newFakeCore().authenticate, Options{}))
	t.Cleanup(ts.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var first [][]byte
	for range 3 {
		c := dial(t, wsURL(ts, ""), nil)
		c.SetReadLimit(1 << 20)
		for i, f := range frames {
			typ, p, err := c.Read(ctx)
			require.NoError(t, err)
			require.Equal(t, cws.MessageBinary, typ)
			got, err := wire.DecodeEnvelope(p, im.MaxFrameSize)
			require.NoError(t, err)
			require.Equal(t, f.Command, got.Command)
			require.Equal(t, f.Body, got.Body)
			if len(first) <= i {
				first = append(first, p)
			} else {
				require.Equal(t, first[i], p, "every connection sends the bytes encoded first")
			}
		}
	}

	jc := dial(t, wsURL(ts, ""), &cws.DialOptions{Subprotocols: []string{SubprotocolJSON}})
	jc.SetReadLimit(1 << 20)
	for _, f := range frames {
		typ, p, err := jc.Read(ctx)
		require.NoError(t, err)
		require.Equal(t, cws.MessageText, typ)
		var env struct {
			Command string `json:"command"`
			Body    struct {
				Message struct {
					Content []byte `json:"content"`
				} `json:"message"`
			} `json:"body"`
		}
		require.NoError(t, json.Unmarshal(p, &env))
		require.Equal(t, "CMD_PUSH_MSG", env.Command)
		require.NotEmpty(t, env.Body.Message.Content)
		require.NotNil(t, f.Shared.Get(binaryFormat{}))
		require.NotNil(t, f.Shared.Get(jsonFormat{}))
	}
}
