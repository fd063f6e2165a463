package im

import (
	"bytes"
	"errors"
	"unicode/utf8"

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

// encodePush returns the body of the PushMessage carrying m, the bytes
// proto.Marshal makes of toWire(m), in a buffer of its exact size: the
// MessageInfo is encoded by the sync's encoder (appendMessageInfo) into a
// pooled scratch buffer and copied behind its tag and length. One
// allocation, where toWire and proto.Marshal make a MessageInfo and walk
// its fields twice through generic code.
func (s *Server) encodePush(m *Message) []byte {
	sc := s.getScratch()
	sc.msg = appendMessageInfo(sc.msg[:0], m)
	b := make([]byte, 0, 1+protowire.SizeBytes(len(sc.msg)))
	b = protowire.AppendTag(b, fSendMessage, protowire.BytesType) // PushMessage.message
	b = protowire.AppendBytes(b, sc.msg)
	s.putScratch(sc)
	return b
}
