package im

import (
	"encoding/binary"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// Sync responses are encoded by hand: a catch-up of many thousands of
// messages would otherwise build a MessageInfo per message (toWire), size
// it (proto.Size) and marshal it by reflection, checking every string's
// UTF-8 twice, and spend more on the garbage than on reading the store.
// The bytes are those proto.Marshal makes of the same response (fields in
// number order, zero values left out; syncwire_test.go compares them), so
// a client cannot tell the difference.

// Field numbers of im/imv1/imv1.proto used below.
const (
	fMsgServerID     = 1
	fMsgClientID     = 2
	fMsgConvID       = 3
	fMsgSenderID     = 4
	fMsgReceiverID   = 5
	fMsgGroupID      = 6
	fMsgType         = 7
	fMsgContent      = 8
	fMsgSendTime     = 9
	fMsgServerTime   = 10
	fMsgSeq          = 11
	fMsgCreateTime   = 14
	fMsgExtra        = 15
	fMsgIsRevoked    = 19
	fMsgRevokedBy    = 20
	fMsgRevokedTime  = 21
	fMsgAttachedInfo = 22
	fMsgConvType     = 23

	fConvMsgsID        = 1 // ConversationMessages.conversation_id
	fConvMsgsMessages  = 2
	fConvMsgsMaxSeq    = 3
	fConvMsgsSyncedSeq = 4
	fConvMsgsHasMore   = 5

	fBatchSyncConvs      = 3 // BatchSyncResponse.conversation_messages
	fBatchSyncServerTime = 4
	fBatchSyncTotal      = 5
)

func appendStringField(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytesField(b []byte, num protowire.Number, p []byte) []byte {
	if len(p) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, p)
}

// appendIntField appends an int32 or int64 field; negative values take ten
// bytes, as protobuf encodes them.
func appendIntField(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func appendBoolField(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return append(b, 1)
}

// appendMessageInfo appends m as the MessageInfo toWire makes of it.
func appendMessageInfo(b []byte, m *Message) []byte {
	conv := validUTF8(m.ConversationID)
	b = appendStringField(b, fMsgServerID, validUTF8(m.ServerID))
	b = appendStringField(b, fMsgClientID, validUTF8(m.ClientMsgID))
	b = appendStringField(b, fMsgConvID, conv)
	b = appendStringField(b, fMsgSenderID, validUTF8(m.SenderID))
	b = appendStringField(b, fMsgReceiverID, validUTF8(m.ReceiverID))
	if gid, ok := groupOf(conv); ok {
		b = appendStringField(b, fMsgGroupID, gid)
	}
	b = appendIntField(b, fMsgType, int64(int32(m.Type)))
	b = appendBytesField(b, fMsgContent, m.Content)
	b = appendIntField(b, fMsgSendTime, m.SendTime)
	b = appendIntField(b, fMsgServerTime, m.CreatedAt.UnixMilli())
	b = appendIntField(b, fMsgSeq, m.Seq)
	b = appendIntField(b, fMsgCreateTime, m.SendTime)
	b = appendStringField(b, fMsgExtra, validUTF8(m.Extra))
	if m.Revoked() {
		b = appendBoolField(b, fMsgIsRevoked, true)
		b = appendStringField(b, fMsgRevokedBy, validUTF8(m.RevokedBy))
		b = appendIntField(b, fMsgRevokedTime, m.RevokedAt.UnixMilli())
	}
	b = appendStringField(b, fMsgAttachedInfo, validUTF8(m.AttachedInfo))
	return appendIntField(b, fMsgConvType, int64(int32(ConversationTypeOf(conv))))
}

// syncEncoder builds the body of a BatchSyncResponse one conversation at a
// time. Its scratch buffers come from the Server's pool and go back to it
// (release); the body, which the session's queue takes, is allocated once
// per conversation at the size it needs.
type syncEncoder struct {
	body []byte // the response so far
	*wireScratch
}

// wireScratch is what the hand encoders reuse from one message or response
// to the next, through the Server's pool.
type wireScratch struct {
	conv []byte // the ConversationMessages being built
	msg  []byte // one MessageInfo
}

// maxKeptScratch bounds the scratch buffers kept for the next use.
const maxKeptScratch = 2 << 20

// getScratch takes scratch buffers from the Server's pool; putScratch
// gives them back, unless they grew too large to keep.
func (s *Server) getScratch() *wireScratch {
	sc, _ := s.scratch.Get().(*wireScratch)
	if sc == nil {
		sc = new(wireScratch)
	}
	return sc
}

func (s *Server) putScratch(sc *wireScratch) {
	if cap(sc.conv)+cap(sc.msg) <= maxKeptScratch {
		s.scratch.Put(sc)
	}
}

// newSyncEncoder returns an encoder whose body starts with head.
func (s *Server) newSyncEncoder(head []byte) syncEncoder {
	return syncEncoder{body: head, wireScratch: s.getScratch()}
}

// release returns the encoder's scratch buffers to the Server's pool.
func (s *Server) releaseSyncEncoder(e *syncEncoder) {
	s.putScratch(e.wireScratch)
	e.wireScratch = nil
}

// conversation appends one ConversationMessages to the body: the id, as
// many of msgs as fit in budget bytes (the first whatever its size when
// first is set, so that a sync always makes progress) and the seqs
// computed as the caller's ConversationMessages would have them. It
// returns how many messages it took and the budget left (0 once a message
// did not fit, so that nothing more is added).
func (e *syncEncoder) conversation(id string, from, to int64, msgs []Message, budget int, first bool) (n, left int) {
	e.conv = appendStringField(e.conv[:0], fConvMsgsID, validUTF8(id))
	synced := from - 1
	for i := range msgs {
		if budget <= 0 {
			break
		}
		e.msg = appendMessageInfo(e.msg[:0], &msgs[i])
		size := len(e.msg) + 8 // field tag and length prefix, as appendWithin counts
		if size > budget && !(first && i == 0) {
			budget = 0
			break
		}
		budget -= size
		e.conv = protowire.AppendTag(e.conv, fConvMsgsMessages, protowire.BytesType)
		e.conv = protowire.AppendBytes(e.conv, e.msg)
		synced = msgs[i].Seq
		n++
	}
	maxSeq, more := to, false
	if synced < to {
		// The SDK keeps max_seq as its cursor even when has_more is set,
		// so a truncated page must not claim more than it holds.
		maxSeq, more = synced, true
	}
	e.conv = appendIntField(e.conv, fConvMsgsMaxSeq, maxSeq)
	e.conv = appendIntField(e.conv, fConvMsgsSyncedSeq, synced)
	e.conv = appendBoolField(e.conv, fConvMsgsHasMore, more)
	// The body grows by what this entry needs, not by doubling: most
	// responses hold one large entry.
	e.body = slices.Grow(e.body, len(e.conv)+2*binary.MaxVarintLen64)
	e.body = protowire.AppendTag(e.body, fBatchSyncConvs, protowire.BytesType)
	e.body = protowire.AppendBytes(e.body, e.conv)
	return n, max(budget, 0)
}

// finish appends the response's server time and message count and returns
// the body.
func (e *syncEncoder) finish(serverTime int64, total int32) []byte {
	e.body = appendIntField(e.body, fBatchSyncServerTime, serverTime)
	e.body = appendIntField(e.body, fBatchSyncTotal, int64(total))
	return e.body
}
