package websocket

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return b
}

func TestDecodeJSON(t *testing.T) {
	sendReq := &imv1.SendMessageRequest{Message: &imv1.MessageInfo{
		ClientMsgId: "c1", ConversationId: "single_a_b", MessageType: 1, Content: []byte("hi"), SendTime: 1700000000000,
	}}
	tests := []struct {
		name    string
		in      string
		maxBody int
		want    im.Frame
		target  error
	}{
		{"by name", `{"command":"CMD_SEND_MSG_REQ","sequence":3,"timestamp":0,"body":{"message":{"client_msg_id":"c1","conversation_id":"single_a_b","message_type":1,"content":"aGk=","send_time":"1700000000000"}}}`, 0,
			im.Frame{Command: 200, Sequence: 3, Body: mustMarshal(t, sendReq)}, nil},
		{"by number, json names, numbers for int64", `{"command":200,"sequence":3,"body":{"message":{"clientMsgId":"c1","conversationId":"single_a_b","messageType":1,"content":"aGk=","sendTime":1700000000000}}}`, 0,
			im.Frame{Command: 200, Sequence: 3, Body: mustMarshal(t, sendReq)}, nil},
		{"unknown fields ignored", `{"command":"CMD_HEARTBEAT_REQ","sequence":1,"extra":true,"body":{"client_time":"5","future_field":1}}`, 0,
			im.Frame{Command: 5, Sequence: 1, Body: mustMarshal(t, &imv1.HeartbeatRequest{ClientTime: 5})}, nil},
		{"no body", `{"command":"CMD_HEARTBEAT_REQ","sequence":1}`, 0, im.Frame{Command: 5, Sequence: 1}, nil},
		{"null body", `{"command":"CMD_HEARTBEAT_REQ","sequence":1,"body":null}`, 0, im.Frame{Command: 5, Sequence: 1}, nil},
		{"empty body", `{"command":"CMD_HEARTBEAT_REQ","sequence":1,"body":{}}`, 0, im.Frame{Command: 5, Sequence: 1}, nil},
		{"empty body, no message type", `{"command":"CMD_SYNC_FINISHED","body":{}}`, 0, im.Frame{Command: 302}, nil},
		{"no command", `{"sequence":7}`, 0, im.Frame{Sequence: 7}, nil},
		{"unknown number passes", `{"command":4242,"sequence":7}`, 0, im.Frame{Command: 4242, Sequence: 7}, nil},
		{"body of the wrong shape", `{"command":"CMD_SEND_MSG_REQ","sequence":4,"body":{"message":"not an object"}}`, 0,
			im.Frame{Command: 200, Sequence: 4, Body: invalidBody()}, nil},
		{"body not an object", `{"command":"CMD_SEND_MSG_REQ","sequence":4,"body":[1,2]}`, 0,
			im.Frame{Command: 200, Sequence: 4, Body: invalidBody()}, nil},
		{"bad base64", `{"command":"CMD_SEND_MSG_REQ","sequence":4,"body":{"message":{"content":"***"}}}`, 0,
			im.Frame{Command: 200, Sequence: 4, Body: invalidBody()}, nil},
		{"body for a command without message type", `{"command":"CMD_SYNC_FINISHED","sequence":4,"body":{"x":1}}`, 0,
			im.Frame{Command: 302, Sequence: 4, Body: invalidBody()}, nil},
		{"body for an unknown command", `{"command":4242,"sequence":4,"body":{"x":1}}`, 0,
			im.Frame{Command: 4242, Sequence: 4, Body: invalidBody()}, nil},
		{"body over the limit", `{"command":"CMD_HEARTBEAT_REQ","body":{"client_time":"1700000000000"}}`, 3, im.Frame{}, wire.ErrFrameTooLarge},
		{"not json", `hello`, 0, im.Frame{}, wire.ErrBadEnvelope},
		{"truncated", `{"command":"CMD_HEARTBEAT_REQ"`, 0, im.Frame{}, wire.ErrBadEnvelope},
		{"array", `[1]`, 0, im.Frame{}, wire.ErrBadEnvelope},
		{"unknown command name", `{"command":"CMD_NOPE","sequence":1}`, 0, im.Frame{}, wire.ErrBadEnvelope},
		{"lower-case command name", `{"command":"cmd_heartbeat_req","sequence":1}`, 0, im.Frame{}, wire.ErrBadEnvelope},
		{"command as object", `{"command":{},"sequence":1}`, 0, im.Frame{}, wire.ErrBadEnvelope},
		{"fractional command", `{"command":1.5}`, 0, im.Frame{}, wire.ErrBadEnvelope},
		{"command over int32", `{"command":4294967296}`, 0, im.Frame{}, wire.ErrBadEnvelope},
		{"negative sequence", `{"command":5,"sequence":-1}`, 0, im.Frame{}, wire.ErrBadEnvelope},
		{"sequence over uint32", `{"command":5,"sequence":4294967296}`, 0, im.Frame{}, wire.ErrBadEnvelope},
		{"sequence as string", `{"command":5,"sequence":"1"}`, 0, im.Frame{}, wire.ErrBadEnvelope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maxBody := tt.maxBody
			if maxBody == 0 {
				maxBody = im.MaxFrameSize
			}
			got, err := decodeJSON([]byte(tt.in), maxBody)
			if tt.target != nil {
				require.ErrorIs(t, err, tt.target)
				require.ErrorIs(t, err, im.ErrInvalidArgument)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want.Command, got.Command)
			require.Equal(t, tt.want.Sequence, got.Sequence)
			require.Equal(t, tt.want.Body, got.Body)
		})
	}
}

func TestInvalidBodyDoesNotDecode(t *testing.T) {
	// The promise to the core: it fails whatever the message type.
	for cmd := range imv1.CommandType_name {
		if m := imv1.NewBody(imv1.CommandType(cmd)); m != nil {
			require.Error(t, proto.Unmarshal(invalidBody(), m), "command %d", cmd)
		}
	}
	a, b := invalidBody(), invalidBody()
	a[0] = 0
	require.Equal(t, byte(0xff), b[0], "each call returns its own slice")
}

// jsonOut is an envelope as the server writes it.
type jsonOut struct {
	Command   json.RawMessage `json:"command"`
	Sequence  uint32          `json:"sequence"`
	Timestamp int64           `json:"timestamp"`
	Body      json.RawMessage `json:"body"`
}

func parseOut(t *testing.T, p []byte) (jsonOut, map[string]json.RawMessage) {
	t.Helper()
	var out jsonOut
	require.NoError(t, json.Unmarshal(p, &out), "%s", p)
	var keys map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(p, &keys))
	return out, keys
}

func TestAppendJSON(t *testing.T) {
	rsp := &imv1.SendMessageResponse{ServerMsgId: "m1", ClientMsgId: "c1", Seq: 42, ServerTime: 1700000000000}

	t.Run("typed body", func(t *testing.T) {
		p, err := appendJSON(nil, im.Frame{Command: 201, Sequence: 3, Body: mustMarshal(t, rsp)}, 1234)
		require.NoError(t, err)
		out, _ := parseOut(t, p)
		require.JSONEq(t, `"CMD_SEND_MSG_RSP"`, string(out.Command))
		require.Equal(t, uint32(3), out.Sequence)
		require.Equal(t, int64(1234), out.Timestamp)
		var body map[string]any
		require.NoError(t, json.Unmarshal(out.Body, &body))
		require.Equal(t, "m1", body["server_msg_id"], "proto field names")
		require.Equal(t, "42", body["seq"], "int64 as protojson writes it")
		got := new(imv1.SendMessageResponse)
		require.NoError(t, protojson.Unmarshal(out.Body, got))
		require.True(t, proto.Equal(rsp, got))
	})

	t.Run("empty typed body", func(t *testing.T) {
		p, err := appendJSON(nil, im.Frame{Command: 6, Sequence: 1}, 1)
		require.NoError(t, err)
		out, _ := parseOut(t, p)
		require.JSONEq(t, `{}`, string(out.Body))
	})

	t.Run("no message type", func(t *testing.T) {
		p, err := appendJSON(nil, im.Frame{Command: 302}, 1)
		require.NoError(t, err)
		out, keys := parseOut(t, p)
		require.JSONEq(t, `"CMD_SYNC_FINISHED"`, string(out.Command))
		require.NotContains(t, keys, "body")
	})

	t.Run("unknown command by number", func(t *testing.T) {
		p, err := appendJSON(nil, im.Frame{Command: 4242, Sequence: 2}, 1)
		require.NoError(t, err)
		out, _ := parseOut(t, p)
		require.JSONEq(t, `4242`, string(out.Command))
	})

	t.Run("undecodable body", func(t *testing.T) {
		p, err := appendJSON(nil, im.Frame{Command: 201, Sequence: 5, Body: []byte{0xff}}, 1)
		require.ErrorIs(t, err, errUndecodableBody)
		out, keys := parseOut(t, p)
		require.Equal(t, uint32(5), out.Sequence, "the envelope still goes out")
		require.NotContains(t, keys, "body")
	})

	t.Run("body for a command without type", func(t *testing.T) {
		p, err := appendJSON(nil, im.Frame{Command: 302, Body: []byte{1}}, 1)
		require.ErrorIs(t, err, errUndecodableBody)
		parseOut(t, p)
	})

	t.Run("appends", func(t *testing.T) {
		p, err := appendJSON([]byte("prefix"), im.Frame{Command: 5}, 1)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(string(p), "prefix{"))
	})
}

func TestJSONRoundTrip(t *testing.T) {
	frames := []im.Frame{
		{Command: 200, Sequence: 1, Body: mustMarshal(t, &imv1.SendMessageRequest{Message: &imv1.MessageInfo{
			ClientMsgId: "c", ConversationId: "group_g1", Content: []byte{0, 1, 2, 0xff}, MessageType: 100, Extra: "ünïcode",
		}})},
		{Command: 301, Sequence: 2, Body: mustMarshal(t, &imv1.BatchSyncResponse{
			ConversationMessages: []*imv1.ConversationMessages{{ConversationId: "x", MaxSeq: 9, HasMore: true}},
			ServerTime:           1 << 40,
		})},
		{Command: 5, Sequence: 3},
		{Command: 4242, Sequence: 4},
	}
	for _, f := range frames {
		t.Run(f.Command.String(), func(t *testing.T) {
			p, err := appendJSON(nil, f, 99)
			require.NoError(t, err)
			got, err := decodeJSON(p, im.MaxFrameSize)
			require.NoError(t, err)
			require.Equal(t, f.Command, got.Command)
			require.Equal(t, f.Sequence, got.Sequence)
			requireSameBody(t, f.Command, f.Body, got.Body)
		})
	}
}

// requireSameBody compares two bodies as messages, since equal messages
// need not serialize to equal bytes.
func requireSameBody(t *testing.T, cmd imv1.CommandType, want, got []byte) {
	t.Helper()
	mw, mg := imv1.NewBody(cmd), imv1.NewBody(cmd)
	if mw == nil {
		require.Equal(t, len(want), len(got))
		require.True(t, bytes.Equal(want, got))
		return
	}
	require.NoError(t, proto.Unmarshal(want, mw))
	require.NoError(t, proto.Unmarshal(got, mg))
	require.True(t, proto.Equal(mw, mg), "want %v, got %v", mw, mg)
}

// FuzzDecodeJSON feeds arbitrary bytes to the JSON envelope decoder, which
// must never panic nor return a body over the limit, and checks that what it
// accepts survives being written and read again. (The binary envelope is
// fuzzed in package wire.)
func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"command":"CMD_SEND_MSG_REQ","sequence":3,"body":{"message":{"client_msg_id":"c1","content":"aGk="}}}`))
	f.Add([]byte(`{"command":5,"sequence":1,"body":{"client_time":"5"}}`))
	f.Add([]byte(`{"command":"CMD_NOPE"}`))
	f.Add([]byte(`{"command":302,"body":{"a":[1,{"b":null}]}}`))
	f.Add([]byte(`null`))
	f.Add([]byte{0xff, 0x01})

	const maxBody = 1 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		if fr, err := decodeJSON(data, maxBody); err == nil {
			if len(fr.Body) > maxBody {
				t.Fatalf("json: body of %d bytes over the limit", len(fr.Body))
			}
			p, bodyErr := appendJSON(nil, fr, 7)
			again, err := decodeJSON(p, im.MaxFrameSize)
			if err != nil {
				t.Fatalf("json: re-reading %s: %v", p, err)
			}
			if again.Command != fr.Command || again.Sequence != fr.Sequence {
				t.Fatalf("json: %v became %v", fr, again)
			}
			if bodyErr == nil {
				requireSameBody(t, fr.Command, fr.Body, again.Body)
			}
		} else if !errors.Is(err, im.ErrInvalidArgument) {
			t.Fatalf("json: error %v does not wrap im.ErrInvalidArgument", err)
		}
	})
}

// TestJSONBodyShapes pins the protojson shapes docs/PROTOCOL.md §2.5
// promises, in both directions.
func TestJSONBodyShapes(t *testing.T) {
	decode := func(t *testing.T, in string, m proto.Message) {
		t.Helper()
		f, err := decodeJSON([]byte(in), im.MaxFrameSize)
		require.NoError(t, err)
		require.NotEqual(t, invalidBody(), f.Body, "%s refused", in)
		require.NoError(t, proto.Unmarshal(f.Body, m))
	}

	t.Run("input", func(t *testing.T) {
		for _, tt := range []struct {
			name, body string
			want       proto.Message
		}{
			{"enum by name", `{"user_ids":["a"],"subscribe":"PRESENCE_SUBSCRIBE"}`, &imv1.OnlineStatusRequest{UserIds: []string{"a"}, Subscribe: imv1.PresenceSubscribe_PRESENCE_SUBSCRIBE}},
			{"enum by number", `{"userIds":["a"],"subscribe":2}`, &imv1.OnlineStatusRequest{UserIds: []string{"a"}, Subscribe: imv1.PresenceSubscribe_PRESENCE_UNSUBSCRIBE}},
			{"unknown enum name ignored", `{"user_ids":["a"],"subscribe":"PRESENCE_LATER"}`, &imv1.OnlineStatusRequest{UserIds: []string{"a"}}},
			{"null is the zero value", `{"user_ids":["a"],"subscribe":null}`, &imv1.OnlineStatusRequest{UserIds: []string{"a"}}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				got := new(imv1.OnlineStatusRequest)
				decode(t, `{"command":"CMD_ONLINE_STATUS_REQ","sequence":1,"body":`+tt.body+`}`, got)
				require.True(t, proto.Equal(tt.want, got), "got %v", got)
			})
		}
		t.Run("32-bit integers as strings too", func(t *testing.T) {
			got := new(imv1.SendMessageRequest)
			decode(t, `{"command":"CMD_SEND_MSG_REQ","sequence":1,"body":{"message":{"message_type":"1","send_time":"-5"}}}`, got)
			require.Equal(t, int32(1), got.Message.MessageType)
			require.Equal(t, int64(-5), got.Message.SendTime)
		})
		t.Run("base64 variants", func(t *testing.T) {
			for _, c := range []string{"+/8=", "-_8=", "-_8", "+/8"} { // 0xfb 0xff in std, URL-safe, unpadded
				got := new(imv1.SendMessageRequest)
				decode(t, `{"command":"CMD_SEND_MSG_REQ","sequence":1,"body":{"message":{"content":"`+c+`"}}}`, got)
				require.Equal(t, []byte{0xfb, 0xff}, got.Message.Content, c)
			}
		})
		for _, bad := range []string{
			`{"message":{"send_time":1.5}}`,                   // not an integer
			`{"message":{"send_time":"9223372036854775808"}}`, // over int64
			`{"message":{"message_type":"x"}}`,
			`{"message":{"content":"not base64!"}}`,
			`{"message":{"client_msg_id":1}}`, // a number for a string
		} {
			t.Run("refused "+bad, func(t *testing.T) {
				f, err := decodeJSON([]byte(`{"command":"CMD_SEND_MSG_REQ","sequence":1,"body":`+bad+`}`), im.MaxFrameSize)
				require.NoError(t, err)
				require.Equal(t, invalidBody(), f.Body)
			})
		}
	})

	t.Run("output", func(t *testing.T) {
		rsp := &imv1.OnlineStatusResponse{
			ErrorCode: imv1.ErrorCode_ERR_INVALID_PARAM,
			Statuses:  []*imv1.UserStatus{{UserId: "a", Online: true, Version: 1 << 62}},
		}
		p, err := appendJSON(nil, im.Frame{Command: imv1.CommandType_CMD_ONLINE_STATUS_RSP, Sequence: 1, Body: mustMarshal(t, rsp)}, 1)
		require.NoError(t, err)
		out, _ := parseOut(t, p)
		var body map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(out.Body, &body))
		require.JSONEq(t, `"ERR_INVALID_PARAM"`, string(body["error_code"]), "enums by name")
		require.NotContains(t, body, "error_msg", "zero values left out")
		var statuses []map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(body["statuses"], &statuses))
		require.JSONEq(t, `"4611686018427387904"`, string(statuses[0]["version"]), "uint64 as a string")
		require.JSONEq(t, `true`, string(statuses[0]["online"]))
		require.NotContains(t, statuses[0], "last_seen")
		require.NotContains(t, statuses[0], "devices", "empty lists left out")
	})
}
