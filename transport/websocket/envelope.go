package websocket

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// The binary envelope, which the client speaks too, is package wire's
// (AppendEnvelope, DecodeEnvelope); the JSON envelope below is this
// transport's own. Its framing errors are wire's as well: a message that
// cannot be turned into a frame at all gives wire.ErrBadEnvelope, a body over
// the limit wire.ErrFrameTooLarge; both wrap im.ErrInvalidArgument and close
// the connection.

// invalidBody is what a JSON body that does not match its command's message
// becomes: a byte that starts a protobuf tag and never finishes it, so the
// core fails to decode the body and answers INVALID_PARAM, as it does for a
// bad protobuf body. Each call returns a new slice because the core may
// keep it.
func invalidBody() []byte { return []byte{0xff} }

// jsonEnvelope is the JSON form of imv1.WebSocketMessage. The body is the
// protojson of the command's message rather than base64 of its bytes; the
// client's timestamp, like the binary one, is ignored.
type jsonEnvelope struct {
	Command  json.RawMessage `json:"command"`
	Sequence uint32          `json:"sequence"`
	Body     json.RawMessage `json:"body"`
}

// decodeJSON turns a text message into a frame. An envelope that is not
// JSON, or whose command or sequence is not understood, is a framing error.
// A body that does not fit the command's message is not: it becomes
// invalidBody, for the core to answer.
func decodeJSON(p []byte, maxBody int) (im.Frame, error) {
	var env jsonEnvelope
	if err := json.Unmarshal(p, &env); err != nil {
		return im.Frame{}, fmt.Errorf("%w: %w", wire.ErrBadEnvelope, err)
	}
	cmd, err := parseCommand(env.Command)
	if err != nil {
		return im.Frame{}, err
	}
	body := jsonToProto(cmd, env.Body)
	if len(body) > maxBody {
		return im.Frame{}, fmt.Errorf("%w: %d bytes, limit %d", wire.ErrFrameTooLarge, len(body), maxBody)
	}
	return im.Frame{Command: cmd, Sequence: env.Sequence, Body: body}, nil
}

// parseCommand accepts a command as its enum name, as protojson writes it,
// or as its number. A number the protocol does not define passes through,
// as it would in a binary envelope, for the core to refuse; an unknown name
// is a framing error, since there is no number to pass on.
func parseCommand(raw json.RawMessage) (imv1.CommandType, error) {
	if len(raw) == 0 || isNull(raw) {
		return imv1.CommandType_CMD_UNKNOWN, nil
	}
	if raw[0] == '"' {
		var name string
		if err := json.Unmarshal(raw, &name); err != nil {
			return 0, fmt.Errorf("%w: command: %w", wire.ErrBadEnvelope, err)
		}
		v, ok := imv1.CommandType_value[name]
		if !ok {
			return 0, fmt.Errorf("%w: unknown command %q", wire.ErrBadEnvelope, name)
		}
		return imv1.CommandType(v), nil
	}
	var n int32
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fmt.Errorf("%w: command: %w", wire.ErrBadEnvelope, err)
	}
	return imv1.CommandType(n), nil
}

// jsonToProto converts a JSON body to the protobuf bytes of cmd's message.
// Unknown fields are ignored, as protobuf ignores unknown field numbers, so
// a client newer than the server still works.
func jsonToProto(cmd imv1.CommandType, raw json.RawMessage) []byte {
	if len(raw) == 0 || isNull(raw) {
		return nil
	}
	m := imv1.NewBody(cmd)
	if m == nil {
		// A command without a message type can only carry nothing.
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) == nil && len(obj) == 0 {
			return nil
		}
		return invalidBody()
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, m); err != nil {
		return invalidBody()
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return invalidBody()
	}
	if len(b) == 0 {
		return nil
	}
	return b
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// errUndecodableBody reports an outgoing body that does not decode as its
// command's message; the frame is then sent without its body.
var errUndecodableBody = errors.New("websocket: outgoing body does not decode as its command's message")

// appendJSON appends f as a JSON envelope stamped nowMS. The command is
// written by name when it has one. Commands with a message type always get
// a "body" object ({} when empty); others get none. If f.Body does not
// decode, the envelope is still written, without the body, and the error
// says so.
func appendJSON(dst []byte, f im.Frame, nowMS int64) ([]byte, error) {
	dst = append(dst, `{"command":`...)
	if name, ok := imv1.CommandType_name[int32(f.Command)]; ok {
		dst = strconv.AppendQuote(dst, name)
	} else {
		dst = strconv.AppendInt(dst, int64(f.Command), 10)
	}
	dst = append(dst, `,"sequence":`...)
	dst = strconv.AppendUint(dst, uint64(f.Sequence), 10)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, nowMS, 10)

	var bodyErr error
	if m := imv1.NewBody(f.Command); m != nil {
		if err := proto.Unmarshal(f.Body, m); err != nil {
			bodyErr = fmt.Errorf("%w: %s: %w", errUndecodableBody, f.Command, err)
		} else {
			// Field names as in the .proto, so the JSON reads like the
			// protocol documentation.
			withBody := append(dst, `,"body":`...)
			if out, err := (protojson.MarshalOptions{UseProtoNames: true}).MarshalAppend(withBody, m); err == nil {
				dst = out
			} else {
				bodyErr = fmt.Errorf("%w: %s: %w", errUndecodableBody, f.Command, err)
			}
		}
	} else if len(f.Body) > 0 {
		bodyErr = fmt.Errorf("%w: %s has no message type", errUndecodableBody, f.Command)
	}
	return append(dst, '}'), bodyErr
}
