package wire

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

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
// limit ErrFrameTooLarge. It accepts and refuses exactly what proto.Unmarshal
// does (unknown fields are skipped, the last of a repeated field wins),
// without its reflection: every message a server reads over WebSocket, and
// every one a load generator reads, goes through here.
func DecodeEnvelope(p []byte, maxBody int) (Frame, error) {
	var f Frame
	var body []byte
	for b := p; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return Frame{}, fmt.Errorf("%w: %w", ErrBadEnvelope, protowire.ParseError(n))
		}
		if num > protowire.MaxValidNumber {
			return Frame{}, fmt.Errorf("%w: field number %d out of range", ErrBadEnvelope, num)
		}
		b = b[n:]
		switch {
		case typ == protowire.VarintType && (num == fieldCommand || num == fieldSequence || num == fieldTimestamp):
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return Frame{}, fmt.Errorf("%w: %w", ErrBadEnvelope, protowire.ParseError(n))
			}
			switch num {
			case fieldCommand:
				f.Command = imv1.CommandType(int32(v)) // as protobuf decodes an enum
			case fieldSequence:
				f.Sequence = uint32(v)
			}
			b = b[n:]
		case typ == protowire.BytesType && num == fieldBody:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return Frame{}, fmt.Errorf("%w: %w", ErrBadEnvelope, protowire.ParseError(n))
			}
			body = v
			b = b[n:]
		default:
			// An unknown field, or a known one with another wire type, which
			// protobuf also keeps as unknown: skipped.
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return Frame{}, fmt.Errorf("%w: %w", ErrBadEnvelope, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	if limit := bodyLimit(maxBody); len(body) > limit {
		return Frame{}, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(body), limit)
	}
	if len(body) > 0 {
		f.Body = bytes.Clone(body)
	}
	return f, nil
}
