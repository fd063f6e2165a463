package wire

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/imserver/imserver/im/imv1"
)

// Field numbers of imv1.WebSocketMessage.
const (
	fieldCommand   protowire.Number = 1
	fieldSequence  protowire.Number = 2
	fieldBody      protowire.Number = 3
	fieldTimestamp protowire.Number = 4
)

// EnvelopeOverhead bounds what a binary WebSocket envelope adds to its
// body: four tags, a command and a timestamp of up to ten varint bytes
// each, a sequence of up to five and a body length of up to five. A read
// limit of the body limit plus EnvelopeOverhead admits every envelope
// DecodeEnvelope would accept.
const EnvelopeOverhead = 4 + 10 + 5 + 5 + 10

// ErrBadEnvelope is what DecodeEnvelope returns for bytes that are not a
// WebSocketMessage. It wraps ErrInvalidArgument.
var ErrBadEnvelope = fmt.Errorf("wire: malformed envelope: %w", ErrInvalidArgument)

// AppendEnvelope appends f as a serialized imv1.WebSocketMessage, the body of
// one binary WebSocket message, stamped nowMS (milliseconds since the Unix
// epoch; 0 leaves the timestamp out). It writes what proto.Marshal would,
// without copying the body into a message first.
func AppendEnvelope(dst []byte, f Frame, nowMS int64) []byte {
	if f.Command != 0 {
		dst = protowire.AppendTag(dst, fieldCommand, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(int64(f.Command))) // enums are sign-extended
	}
	if f.Sequence != 0 {
		dst = protowire.AppendTag(dst, fieldSequence, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(f.Sequence))
	}
	if len(f.Body) > 0 {
		dst = protowire.AppendTag(dst, fieldBody, protowire.BytesType)
		dst = protowire.AppendBytes(dst, f.Body)
	}
	if nowMS != 0 {
		dst = protowire.AppendTag(dst, fieldTimestamp, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(nowMS))
	}
	return dst
}

// DecodeEnvelope turns the body of a binary WebSocket message, a serialized
// imv1.WebSocketMessage, into a frame. maxBody bounds the frame's body as
// in ReadFrame. The envelope's timestamp is the sender's clock and is
// dropped. The frame's Body is a copy (nil when empty), so p may be reused.
//
// Bytes that are not a WebSocketMessage give ErrBadEnvelope, a body over the
// limit ErrFrameTooLarge.
func DecodeEnvelope(p []byte, maxBody int) (Frame, error) {
	var m imv1.WebSocketMessage
	if err := proto.Unmarshal(p, &m); err != nil {
		return Frame{}, fmt.Errorf("%w: %w", ErrBadEnvelope, err)
	}
	if limit := bodyLimit(maxBody); len(m.Body) > limit {
		return Frame{}, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(m.Body), limit)
	}
	f := Frame{Command: m.Command, Sequence: m.Sequence, Body: m.Body}
	if len(f.Body) == 0 {
		f.Body = nil
	}
	return f, nil
}
