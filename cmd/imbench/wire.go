package main

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// The load path encodes and decodes the few messages it needs by hand with
// protowire: the generic proto reflection would cost the client more CPU
// than the server it measures, on a machine the two share.
// BenchmarkMessageCodec (wire_bench_test.go) measures one message's worth
// (send request, response, push, acknowledgement): 0.8 µs and no
// allocation by hand against 3.8 µs or more and 14 allocations with the
// generated code, on a loaded 2-core machine. The frames around these
// bodies, TCP or WebSocket, are package wire's, as the server's are.
// Field numbers are those of im/imv1/imv1.proto; wire_test.go checks each
// function against the generated code.

// Field numbers used below.
const (
	fMsgServerID    = 1
	fMsgClientID    = 2
	fMsgConvID      = 3
	fMsgSenderID    = 4
	fMsgReceiverID  = 5
	fMsgGroupID     = 6
	fMsgType        = 7
	fMsgContent     = 8
	fMsgSendTime    = 9
	fMsgServerTime  = 10
	fMsgSeq         = 11
	fMsgConvType    = 23
	fWrapMessage    = 1 // SendMessageRequest.message, PushMessage.message, BatchMessages.messages
	fRspErrorCode   = 1
	fRspErrorMsg    = 2
	fRspServerMsgID = 3
	fRspClientMsgID = 4
	fRspSeq         = 5
	fRspServerTime  = 6
	fAckServerMsgID = 1
)

// MessageInfo.conversation_type values.
const (
	convTypeSingle = 1
	convTypeGroup  = 2
)

var errBadWire = errors.New("imbench: malformed protobuf")

// outMsg is the part of a MessageInfo imbench sends or relays.
type outMsg struct {
	serverMsgID []byte
	clientMsgID []byte
	convID      []byte
	senderID    []byte
	receiverID  []byte
	groupID     []byte // set for a group conversation
	content     []byte
	sendTime    int64 // ms
	serverTime  int64 // ms
	seq         int64
}

func appendBytes(b []byte, num protowire.Number, p []byte) []byte {
	if len(p) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, p)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// messageInfoSize is the encoded size of m as a MessageInfo.
func messageInfoSize(m *outMsg) int {
	n := 0
	str := func(num protowire.Number, p []byte) {
		if len(p) > 0 {
			n += protowire.SizeTag(num) + protowire.SizeBytes(len(p))
		}
	}
	vi := func(num protowire.Number, v uint64) {
		if v != 0 {
			n += protowire.SizeTag(num) + protowire.SizeVarint(v)
		}
	}
	str(fMsgServerID, m.serverMsgID)
	str(fMsgClientID, m.clientMsgID)
	str(fMsgConvID, m.convID)
	str(fMsgSenderID, m.senderID)
	str(fMsgReceiverID, m.receiverID)
	str(fMsgGroupID, m.groupID)
	vi(fMsgType, 1)
	str(fMsgContent, m.content)
	vi(fMsgSendTime, uint64(m.sendTime))
	vi(fMsgServerTime, uint64(m.serverTime))
	vi(fMsgSeq, uint64(m.seq))
	vi(fMsgConvType, m.convType())
	return n
}

// convType is m's conversation_type: group when it names a group, else
// one-to-one.
func (m *outMsg) convType() uint64 {
	if len(m.groupID) > 0 {
		return convTypeGroup
	}
	return convTypeSingle
}

// appendMessageInfo appends m as a text message of a one-to-one
// conversation, or of a group when m.groupID is set.
func appendMessageInfo(b []byte, m *outMsg) []byte {
	b = appendBytes(b, fMsgServerID, m.serverMsgID)
	b = appendBytes(b, fMsgClientID, m.clientMsgID)
	b = appendBytes(b, fMsgConvID, m.convID)
	b = appendBytes(b, fMsgSenderID, m.senderID)
	b = appendBytes(b, fMsgReceiverID, m.receiverID)
	b = appendBytes(b, fMsgGroupID, m.groupID)
	b = appendVarint(b, fMsgType, 1) // text
	b = appendBytes(b, fMsgContent, m.content)
	b = appendVarint(b, fMsgSendTime, uint64(m.sendTime))
	b = appendVarint(b, fMsgServerTime, uint64(m.serverTime))
	b = appendVarint(b, fMsgSeq, uint64(m.seq))
	b = appendVarint(b, fMsgConvType, m.convType())
	return b
}

// appendWrapped appends m as field 1 of a wrapper message: a
// SendMessageRequest or a PushMessage, which share that layout.
func appendWrapped(b []byte, m *outMsg) []byte {
	b = protowire.AppendTag(b, fWrapMessage, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(messageInfoSize(m)))
	return appendMessageInfo(b, m)
}

// inMsg is the part of a MessageInfo imbench reads. Every slice aliases
// the decoded buffer: use it before the connection's next read.
type inMsg struct {
	serverMsgID []byte
	clientMsgID []byte
	convID      []byte
	senderID    []byte
	receiverID  []byte
	groupID     []byte
	content     []byte
	seq         int64
	convType    int32
}

// parseMessageInfo decodes the fields of a MessageInfo that imbench uses.
func parseMessageInfo(b []byte, m *inMsg) error {
	*m = inMsg{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v uint64, p []byte) {
		switch {
		case num == fMsgServerID && typ == protowire.BytesType:
			m.serverMsgID = p
		case num == fMsgClientID && typ == protowire.BytesType:
			m.clientMsgID = p
		case num == fMsgConvID && typ == protowire.BytesType:
			m.convID = p
		case num == fMsgSenderID && typ == protowire.BytesType:
			m.senderID = p
		case num == fMsgReceiverID && typ == protowire.BytesType:
			m.receiverID = p
		case num == fMsgGroupID && typ == protowire.BytesType:
			m.groupID = p
		case num == fMsgContent && typ == protowire.BytesType:
			m.content = p
		case num == fMsgSeq && typ == protowire.VarintType:
			m.seq = int64(v)
		case num == fMsgConvType && typ == protowire.VarintType:
			m.convType = int32(v)
		}
	})
}

// eachMessage calls fn with the encoded MessageInfo of every message in a
// PushMessage (one) or a BatchMessages (several) body.
func eachMessage(cmd imv1.CommandType, body []byte, fn func(info []byte) error) error {
	switch cmd {
	case imv1.CommandType_CMD_PUSH_MSG, imv1.CommandType_CMD_SEND_MSG_REQ:
		return eachSubmessage(body, fWrapMessage, fn)
	case imv1.CommandType_CMD_BATCH_MSG:
		return eachSubmessage(body, fWrapMessage, func(push []byte) error {
			return eachSubmessage(push, fWrapMessage, fn)
		})
	}
	return fmt.Errorf("imbench: %v carries no message", cmd)
}

func eachSubmessage(b []byte, want protowire.Number, fn func([]byte) error) error {
	var ferr error
	err := eachField(b, func(num protowire.Number, typ protowire.Type, _ uint64, p []byte) {
		if ferr == nil && num == want && typ == protowire.BytesType {
			ferr = fn(p)
		}
	})
	if err != nil {
		return err
	}
	return ferr
}

// sendRsp is the part of a SendMessageResponse imbench reads.
type sendRsp struct {
	code        imv1.ErrorCode
	clientMsgID []byte // aliases the buffer
	seq         int64
}

func parseSendRsp(b []byte, r *sendRsp) error {
	*r = sendRsp{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v uint64, p []byte) {
		switch {
		case num == fRspErrorCode && typ == protowire.VarintType:
			r.code = imv1.ErrorCode(int32(v))
		case num == fRspClientMsgID && typ == protowire.BytesType:
			r.clientMsgID = p
		case num == fRspSeq && typ == protowire.VarintType:
			r.seq = int64(v)
		}
	})
}

// appendSendRsp appends a successful SendMessageResponse (the raw server's
// acknowledgement).
func appendSendRsp(b []byte, serverMsgID, clientMsgID []byte, seq, serverTime int64) []byte {
	b = appendBytes(b, fRspServerMsgID, serverMsgID)
	b = appendBytes(b, fRspClientMsgID, clientMsgID)
	b = appendVarint(b, fRspSeq, uint64(seq))
	b = appendVarint(b, fRspServerTime, uint64(serverTime))
	return b
}

// errorCodeOf reads field 1 (error_code) of any response body; every
// response type of the protocol, ErrorResponse included, has it there.
func errorCodeOf(b []byte) imv1.ErrorCode {
	var code imv1.ErrorCode
	_ = eachField(b, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) {
		if num == fRspErrorCode && typ == protowire.VarintType {
			code = imv1.ErrorCode(int32(v))
		}
	})
	return code
}

// appendMsgAck appends a MessageAck for serverMsgID (seq 0, as the SDK
// sends it).
func appendMsgAck(b []byte, serverMsgID []byte) []byte {
	return appendBytes(b, fAckServerMsgID, serverMsgID)
}

// eachField walks the top-level fields of an encoded message. For varint
// fields fn gets v; for length-delimited ones p (aliasing b); other wire
// types are skipped.
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v uint64, p []byte)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %w", errBadWire, protowire.ParseError(n))
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return fmt.Errorf("%w: %w", errBadWire, protowire.ParseError(n))
			}
			fn(num, typ, v, nil)
			b = b[n:]
		case protowire.BytesType:
			p, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("%w: %w", errBadWire, protowire.ParseError(n))
			}
			fn(num, typ, 0, p)
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("%w: %w", errBadWire, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return nil
}

// frameBatch assembles several frames in one buffer. The buffer may move as
// it grows, so frames are cut from it only once it is complete:
//
//	from := b.mark()
//	b.buf = appendX(b.buf, …)
//	b.done(cmd, seq, from)
type frameBatch struct {
	buf    []byte
	spans  []frameSpan
	frames []wire.Frame
}

type frameSpan struct {
	cmd      imv1.CommandType
	seq      uint32
	from, to int
}

func (b *frameBatch) reset() {
	b.buf, b.spans = b.buf[:0], b.spans[:0]
}

func (b *frameBatch) mark() int { return len(b.buf) }

func (b *frameBatch) done(cmd imv1.CommandType, seq uint32, from int) {
	b.spans = append(b.spans, frameSpan{cmd, seq, from, len(b.buf)})
}

func (b *frameBatch) len() int { return len(b.spans) }

// list returns the frames; their bodies alias the buffer until reset.
func (b *frameBatch) list() []wire.Frame {
	b.frames = b.frames[:0]
	for _, s := range b.spans {
		b.frames = append(b.frames, wire.Frame{Command: s.cmd, Sequence: s.seq, Body: b.buf[s.from:s.to]})
	}
	return b.frames
}
