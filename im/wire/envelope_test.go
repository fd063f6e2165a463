package wire_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return b
}

func TestAppendEnvelopeMatchesProtoMarshal(t *testing.T) {
	tests := []struct {
		name string
		f    wire.Frame
		ts   int64
	}{
		{"zero", wire.Frame{}, 0},
		{"heartbeat", wire.Frame{Command: imv1.CommandType_CMD_HEARTBEAT_RSP, Sequence: 1}, 1700000000000},
		{"push", wire.Frame{Command: imv1.CommandType_CMD_PUSH_MSG, Body: []byte("body")}, 1},
		{"extremes", wire.Frame{Command: 0x7FFFFFFF, Sequence: 0xFFFFFFFF, Body: bytes.Repeat([]byte{1}, 300)}, 1<<63 - 1},
		{"negative enum", wire.Frame{Command: -5, Sequence: 2}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := proto.MarshalOptions{Deterministic: true}.Marshal(&imv1.WebSocketMessage{
				Command: tt.f.Command, Sequence: tt.f.Sequence, Body: tt.f.Body, Timestamp: tt.ts,
			})
			require.NoError(t, err)
			got := wire.AppendEnvelope([]byte("x"), tt.f, tt.ts)
			require.Equal(t, "x", string(got[:1]))
			require.Equal(t, want, got[1:])
			require.LessOrEqual(t, len(got[1:])-len(tt.f.Body), wire.EnvelopeOverhead)
		})
	}
}

func TestDecodeEnvelope(t *testing.T) {
	env := func(m *imv1.WebSocketMessage) []byte { return mustMarshal(t, m) }
	tests := []struct {
		name    string
		in      []byte
		maxBody int
		want    wire.Frame
		target  error
	}{
		{"full", env(&imv1.WebSocketMessage{Command: 200, Sequence: 9, Body: []byte("abc"), Timestamp: 5}), 10,
			wire.Frame{Command: 200, Sequence: 9, Body: []byte("abc")}, nil},
		{"empty message", nil, 10, wire.Frame{}, nil},
		{"unknown command passes", env(&imv1.WebSocketMessage{Command: 4242, Sequence: 1}), 10,
			wire.Frame{Command: 4242, Sequence: 1}, nil},
		{"explicit empty body", []byte{0x1a, 0x00}, 10, wire.Frame{}, nil},
		{"body at the limit", env(&imv1.WebSocketMessage{Command: 200, Body: make([]byte, 10)}), 10,
			wire.Frame{Command: 200, Body: make([]byte, 10)}, nil},
		{"body over the limit", env(&imv1.WebSocketMessage{Command: 200, Body: make([]byte, 11)}), 10,
			wire.Frame{}, wire.ErrFrameTooLarge},
		{"truncated", env(&imv1.WebSocketMessage{Command: 200, Body: []byte("abc")})[:4], 10, wire.Frame{}, wire.ErrBadEnvelope},
		{"garbage", []byte{0xff, 0xff, 0xff}, 10, wire.Frame{}, wire.ErrBadEnvelope},
		{"json sent as binary", []byte(`{"command":"CMD_HEARTBEAT_REQ"}`), 10, wire.Frame{}, wire.ErrBadEnvelope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.DecodeEnvelope(tt.in, tt.maxBody)
			if tt.target != nil {
				require.ErrorIs(t, err, tt.target)
				require.ErrorIs(t, err, wire.ErrInvalidArgument)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want.Command, got.Command)
			require.Equal(t, tt.want.Sequence, got.Sequence)
			require.Equal(t, tt.want.Body, got.Body)
		})
	}
}

func TestDecodeEnvelopeCopiesBody(t *testing.T) {
	in := mustMarshal(t, &imv1.WebSocketMessage{Command: 200, Body: []byte("hello")})
	f, err := wire.DecodeEnvelope(in, 100)
	require.NoError(t, err)
	clear(in)
	require.Equal(t, "hello", string(f.Body), "the read buffer is reused: the body must not alias it")
}

// FuzzDecodeEnvelope feeds arbitrary bytes to DecodeEnvelope, which must
// never panic nor return a body over the limit, and checks that what it
// accepts survives being written and read again.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(mustMarshal(f, &imv1.WebSocketMessage{Command: 200, Sequence: 1, Body: []byte("\x0a\x00"), Timestamp: 5}))
	f.Add(mustMarshal(f, &imv1.WebSocketMessage{Command: 5}))
	f.Add([]byte{0xff, 0x01})
	f.Add([]byte(`{"command":"CMD_HEARTBEAT_REQ"}`))

	const maxBody = 1 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := wire.DecodeEnvelope(data, maxBody)
		if err != nil {
			if !errors.Is(err, wire.ErrInvalidArgument) {
				t.Fatalf("error %v does not wrap ErrInvalidArgument", err)
			}
			return
		}
		if len(fr.Body) > maxBody {
			t.Fatalf("body of %d bytes over the limit", len(fr.Body))
		}
		again, err := wire.DecodeEnvelope(wire.AppendEnvelope(nil, fr, 7), maxBody)
		if err != nil {
			t.Fatalf("re-reading %v: %v", fr, err)
		}
		if again.Command != fr.Command || again.Sequence != fr.Sequence || !bytes.Equal(again.Body, fr.Body) {
			t.Fatalf("%v became %v", fr, again)
		}
	})
}

// FuzzDecodeEnvelopeMatchesProto checks DecodeEnvelope against the generated
// code: it must accept exactly what proto.Unmarshal accepts, with the same
// command, sequence and body.
func FuzzDecodeEnvelopeMatchesProto(f *testing.F) {
	f.Add(mustMarshal(f, &imv1.WebSocketMessage{Command: 200, Sequence: 1, Body: []byte("\x0a\x00"), Timestamp: 5}))
	f.Add(mustMarshal(f, &imv1.WebSocketMessage{Command: -3, Sequence: 0xFFFFFFFF}))
	f.Add([]byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}) // command, 10-byte varint
	f.Add([]byte{0x10, 0x80, 0x80, 0x80, 0x80, 0x10})                               // sequence over 32 bits
	f.Add([]byte{0x1a, 0x01, 'a', 0x1a, 0x01, 'b'})                                 // body twice: the last wins
	f.Add([]byte{0x0a, 0x01, 'x'})                                                  // command with the bytes wire type
	f.Add([]byte{0x0b, 0x0c})                                                       // an empty group in field 1
	f.Add([]byte{0x0b, 0x14})                                                       // a group ended by another number
	f.Add([]byte{0x0c})                                                             // a stray end group
	f.Add([]byte{0x0e, 0x00})                                                       // reserved wire type
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x10, 0x00})                               // field number 2^29: out of range
	f.Add([]byte{0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00})                               // field number 2^29-1, varint
	f.Add([]byte{0x00})                                                             // field number 0
	f.Add([]byte{0x25, 1, 2, 3, 4, 0x29, 1, 2, 3, 4, 5, 6, 7, 8})                   // fixed32 and fixed64 unknowns

	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := wire.DecodeEnvelope(data, wire.MaxFrameSize)
		var want imv1.WebSocketMessage
		perr := proto.Unmarshal(data, &want)
		if (err == nil) != (perr == nil) {
			t.Fatalf("DecodeEnvelope: %v; proto.Unmarshal: %v", err, perr)
		}
		if err != nil {
			return
		}
		if got.Command != want.Command || got.Sequence != want.Sequence || !bytes.Equal(got.Body, want.Body) {
			t.Fatalf("DecodeEnvelope %v, proto.Unmarshal %v", got, &want)
		}
	})
}
