package im

import (
	"bytes"
	"errors"
	"unicode/utf8"

	"github.com/imserver/imserver/im/imv1"
	"google.golang.org/protobuf/encoding/protowire"
)

// The send request is the one frame every message costs, so it is decoded
// by hand: proto.Unmarshal allocates the two structs and every string and
// bytes field the client set, which made decoding a sixth of the
// allocations of a message on its way through the server. What it accepts
// and refuses is what proto.Unmarshal does for imv1.SendMessageRequest
// (sendcodec_test.go compares the two): every string field, read or not,
// must be valid UTF-8; a field with a wire type other than its own is an
// unknown field, skipped; a message field that occurs twice is merged, the
// last value of each scalar winning.

// MessageInfo field numbers (im/imv1/imv1.proto).
const (
	fInfoServerMsgID  = 1
	fInfoClientMsgID  = 2
	fInfoConvID       = 3
	fInfoSenderID     = 4
	fInfoReceiverID   = 5
	fInfoGroupID      = 6
	fInfoType         = 7
	fInfoContent      = 8
	fInfoSendTime     = 9
	fInfoReadBy       = 16
	fInfoExtra        = 15
	fInfoRevokedBy    = 20
	fInfoAttachedInfo = 22

	fSendMessage = 1 // SendMessageRequest.message
)

// sendFields are the fields of a SendMessageRequest's message the server
// reads; present reports whether the message was there at all.
type sendFields struct {
	present                                    bool
	clientMsgID, conv, receiver, extra, attach string
	typ                                        int32
	content                                    []byte
	sendTime                                   int64
}

var errSendWire = errors.New("malformed SendMessageRequest")

// decodeSendRequest decodes a SendMessageRequest body. The strings and the
// content it returns are copies: b is not kept.
func decodeSendRequest(b []byte) (sendFields, error) {
	var sf sendFields
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return sendFields{}, errSendWire
		}
		b = b[n:]
		if num == fSendMessage && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return sendFields{}, errSendWire
			}
			b = b[n:]
			sf.present = true
			if err := sf.decodeInfo(v); err != nil {
				return sendFields{}, err
			}
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return sendFields{}, errSendWire
		}
		b = b[n:]
	}
	return sf, nil
}

// decodeInfo merges the MessageInfo encoded in b into sf.
func (sf *sendFields) decodeInfo(b []byte) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errSendWire
		}
		b = b[n:]
		switch {
		case typ == protowire.BytesType && isInfoString(num):
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errSendWire
			}
			b = b[n:]
			if !utf8.Valid(v) {
				return errSendWire
			}
			switch num {
			case fInfoClientMsgID:
				sf.clientMsgID = string(v)
			case fInfoConvID:
				sf.conv = string(v)
			case fInfoReceiverID:
				sf.receiver = string(v)
			case fInfoExtra:
				sf.extra = string(v)
			case fInfoAttachedInfo:
				sf.attach = string(v)
			}
		case typ == protowire.BytesType && num == fInfoContent:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errSendWire
			}
			b = b[n:]
			sf.content = bytes.Clone(v)
		case typ == protowire.VarintType && (num == fInfoType || num == fInfoSendTime):
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return errSendWire
			}
			b = b[n:]
			if num == fInfoType {
				sf.typ = int32(v)
			} else {
				sf.sendTime = int64(v)
			}
		default:
			// Every other field, and a known one with a wire type not its
			// own, which protobuf keeps as an unknown field.
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return errSendWire
			}
			b = b[n:]
		}
	}
	return nil
}

// isInfoString reports whether MessageInfo's field num is a string, which
// protobuf requires to be valid UTF-8.
func isInfoString(num protowire.Number) bool {
	switch num {
	case fInfoServerMsgID, fInfoClientMsgID, fInfoConvID, fInfoSenderID, fInfoReceiverID,
		fInfoGroupID, fInfoExtra, fInfoReadBy, fInfoRevokedBy, fInfoAttachedInfo:
		return true
	}
	return false
}

// encodePush returns the body of the PushMessage carrying w, encoded as
// proto.Marshal encodes it (fields in order, zero values left out) in a
// buffer of its exact size: one allocation, where proto.Marshal walks the
// message's fields twice through its generic code. Its strings must be
// valid UTF-8, as toWire makes them.
func encodePush(w *imv1.MessageInfo) []byte {
	n := infoSize(w)
	b := make([]byte, 0, 1+protowire.SizeBytes(n))
	b = protowire.AppendTag(b, fSendMessage, protowire.BytesType) // PushMessage.message
	b = protowire.AppendVarint(b, uint64(n))
	return appendInfo(b, w)
}

// infoSize is the size of MessageInfo w encoded; appendInfo appends it.
// Both take the fields in the order of their numbers.
func infoSize(w *imv1.MessageInfo) int {
	n := 0
	str := func(s string) {
		if s != "" {
			n += 1 + protowire.SizeBytes(len(s))
		}
	}
	num := func(num protowire.Number, v uint64) {
		if v != 0 {
			n += protowire.SizeTag(num) + protowire.SizeVarint(v)
		}
	}
	str(w.ServerMsgId)
	str(w.ClientMsgId)
	str(w.ConversationId)
	str(w.SenderId)
	str(w.ReceiverId)
	str(w.GroupId)
	num(7, uint64(int64(w.MessageType)))
	if len(w.Content) > 0 {
		n += 1 + protowire.SizeBytes(len(w.Content))
	}
	num(9, uint64(w.SendTime))
	num(10, uint64(w.ServerTime))
	num(11, uint64(w.Seq))
	num(12, uint64(int64(w.Status)))
	num(13, boolBit(w.IsRead))
	num(14, uint64(w.CreateTime))
	str(w.Extra)
	for _, s := range w.ReadBy {
		n += 2 + protowire.SizeBytes(len(s))
	}
	num(17, uint64(w.ReadTime))
	num(18, boolBit(w.IsDeleted))
	num(19, boolBit(w.IsRevoked))
	if w.RevokedBy != "" {
		n += 2 + protowire.SizeBytes(len(w.RevokedBy))
	}
	num(21, uint64(w.RevokedTime))
	if w.AttachedInfo != "" {
		n += 2 + protowire.SizeBytes(len(w.AttachedInfo))
	}
	num(23, uint64(int64(w.ConversationType)))
	return n
}

func appendInfo(b []byte, w *imv1.MessageInfo) []byte {
	str := func(num protowire.Number, s string) {
		if s != "" {
			b = protowire.AppendTag(b, num, protowire.BytesType)
			b = protowire.AppendString(b, s)
		}
	}
	num := func(num protowire.Number, v uint64) {
		if v != 0 {
			b = protowire.AppendTag(b, num, protowire.VarintType)
			b = protowire.AppendVarint(b, v)
		}
	}
	str(1, w.ServerMsgId)
	str(2, w.ClientMsgId)
	str(3, w.ConversationId)
	str(4, w.SenderId)
	str(5, w.ReceiverId)
	str(6, w.GroupId)
	num(7, uint64(int64(w.MessageType)))
	if len(w.Content) > 0 {
		b = protowire.AppendTag(b, 8, protowire.BytesType)
		b = protowire.AppendBytes(b, w.Content)
	}
	num(9, uint64(w.SendTime))
	num(10, uint64(w.ServerTime))
	num(11, uint64(w.Seq))
	num(12, uint64(int64(w.Status)))
	num(13, boolBit(w.IsRead))
	num(14, uint64(w.CreateTime))
	str(15, w.Extra)
	for _, s := range w.ReadBy {
		b = protowire.AppendTag(b, 16, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	num(17, uint64(w.ReadTime))
	num(18, boolBit(w.IsDeleted))
	num(19, boolBit(w.IsRevoked))
	str(20, w.RevokedBy)
	num(21, uint64(w.RevokedTime))
	str(22, w.AttachedInfo)
	num(23, uint64(int64(w.ConversationType)))
	return b
}

func boolBit(v bool) uint64 {
	if v {
		return 1
	}
	return 0
}
