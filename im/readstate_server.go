package im

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Read receipts, delivery receipts and unread counts, on a Store with
// ReadStateStore. A user's read position in a conversation moves forward
// only, by her receipts and by her own messages (the Store's rule); unread
// is what lies after it (Unread). A receipt is one Store commit whatever
// it covers; delivery acks, which the SDK sends for every message it
// receives, are gathered for ackFlushInterval and stored together.

const (
	// readScan bounds the messages a receipt reads: the ids it names are
	// looked for among the newest readScan messages after the reader's
	// position, and the senders told of a receipt are those of the newest
	// readScan messages it covers.
	readScan = 500
	// maxReceiptIDs bounds the server_msg_ids of one READ_RECEIPT_REQ.
	maxReceiptIDs = 500
	// ackRing is how many recent pushes a session remembers to map a
	// MSG_ACK's server_msg_id to its conversation and seq. An ack for an
	// older push is ignored: delivery positions only move forward, so the
	// next ack makes up for it.
	ackRing = 64
	// ackFlushInterval is how long delivery acks (and mentions) are
	// gathered before they are stored in one commit. The SDK acks every
	// message it receives: stored one by one, or every 100 ms, they cost
	// the single writer a commit of thousands of keys that often, which
	// under load took a tenth of the send throughput. Delivery receipts
	// are pushed at once, without waiting for it.
	ackFlushInterval = time.Second
	// maxStateConversations bounds the conversations one ReadStates call
	// names; the peer positions of one-to-one conversations are reported
	// only when they are named.
	maxStateConversations = 100
)

// ConversationReadState is a user's read state in one conversation.
type ConversationReadState struct {
	ConversationID string
	MaxSeq         int64
	// Read is her read position; Delivered, at least Read, how far her
	// devices have received.
	Read, Delivered int64
	// Unread counts the messages by others after Read that she may read.
	Unread int64
	// Mentioned is set while a message after Read mentions her.
	Mentioned bool
	// PeerRead and PeerDelivered are, in a one-to-one conversation named
	// in the call, the other member's positions: how far the user's own
	// messages have been read and delivered.
	PeerRead, PeerDelivered int64
}

// ReadReceipt tells who has read one message.
type ReadReceipt struct {
	Seq int64
	// Read and Unread count the members who may read the message (the
	// conversation's members now, its sender excluded, and in a group
	// that shows new members only what follows their joining, those who
	// joined before it) by whether they have read it.
	Read, Unread int
	// ReadBy and UnreadBy list them, sorted, when Listed: in one-to-one
	// conversations and groups of at most Config.ReadByMaxMembers
	// members.
	ReadBy, UnreadBy []string
	Listed           bool
}

// errNoReadState answers read-state requests on a Store without
// ReadStateStore.
var errNoReadState = errorf(CodeUnknown, ErrUnsupported, "read receipts are not supported by this server's store")

func (s *Server) handleReadReceipt(sess *session, f Frame) {
	var req imv1.ReadReceiptRequest
	if err := proto.Unmarshal(f.Body, &req); err != nil {
		s.respondError(sess, f, errMalformed(err))
		return
	}
	if s.reads != nil && !s.receipts.allow(sess.user, time.Now()) {
		s.stats.receiptsLimited.Add(1)
		s.respondError(sess, f, errorf(CodeRateLimited, ErrRateLimited, "sending read receipts too fast"))
		return
	}
	if _, err := s.markRead(sess.ctx, sess.user, req.ConversationId, req.ServerMsgIds, sess); err != nil {
		s.respondError(sess, f, err)
		return
	}
	sess.respond(imv1.CommandType_CMD_READ_RECEIPT_RSP, f.Sequence, &imv1.ReadReceiptResponse{})
}

// MarkRead moves userID's read position in conversation conv forward, as a
// READ_RECEIPT_REQ from one of her devices does: to the newest of the
// messages serverMsgIDs names (looked for among the newest 500 after her
// position; ids not found there change nothing), or with no ids to the
// conversation's newest message. Senders of the messages it covers and
// userID's devices are pushed a READ_RECEIPT_PUSH. It returns her state
// after. ErrPermissionDenied if she is not a member of conv, ErrUnsupported
// on a Store without ReadStateStore.
func (s *Server) MarkRead(ctx context.Context, userID, conv string, serverMsgIDs []string) (ReadState, error) {
	if !validID(userID) {
		return ReadState{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "invalid user id")
	}
	return s.markRead(ctx, userID, conv, serverMsgIDs, nil)
}

func (s *Server) markRead(ctx context.Context, user, conv string, ids []string, origin *session) (_ ReadState, err error) {
	if s.reads == nil {
		return ReadState{}, errNoReadState
	}
	if err := ValidateConversationID(conv); err != nil {
		return ReadState{}, err
	}
	if len(ids) > maxReceiptIDs {
		return ReadState{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "at most %d server_msg_ids per read receipt", maxReceiptIDs)
	}
	for _, id := range ids {
		if !validID(id) {
			return ReadState{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "invalid server_msg_id")
		}
	}
	ok, err := s.isMember(ctx, conv, user)
	if err != nil {
		return ReadState{}, err
	}
	if !ok {
		return ReadState{}, errorf(CodePermissionDenied, ErrPermissionDenied, "not a member of this conversation")
	}
	c, err := s.conversation(ctx, conv)
	if err != nil {
		return ReadState{}, err
	}
	defer s.recoverStore("ReadStates", &err)
	cur, err := s.reads.ReadStates(ctx, user, []string{conv})
	if err != nil {
		return ReadState{}, err
	}
	if len(cur) != 1 {
		return ReadState{}, errorf(CodeUnknown, ErrCorrupt, "store returned %d read states for one conversation", len(cur))
	}
	before := cur[0]
	// The messages after her position, newest readScan of them: where
	// the named ids are looked for, and who is told.
	var after []Message
	if c.MaxSeq > before.Read {
		after, err = s.store.Messages(ctx, conv, max(before.Read+1, c.MaxSeq-readScan+1), c.MaxSeq, readScan)
		if err != nil {
			return ReadState{}, err
		}
	}
	target := c.MaxSeq
	if len(ids) > 0 {
		target = 0
		for _, m := range after {
			if slices.Contains(ids, m.ServerID) {
				target = max(target, m.Seq)
			}
		}
	}
	if target <= before.Read {
		return before, nil
	}
	out, err := s.reads.UpdateReadStates(ctx, []ReadState{{UserID: user, ConversationID: conv, Read: target, UpdatedAt: time.Now()}})
	if err != nil {
		return ReadState{}, err
	}
	if len(out) != 1 {
		return ReadState{}, errorf(CodeUnknown, ErrCorrupt, "store returned %d read states for one", len(out))
	}
	st := out[0]
	covered := slices.DeleteFunc(after, func(m Message) bool { return m.Seq > st.Read || m.SenderID == user })
	s.pushReadReceipt(user, conv, covered, origin)
	if peer, ok := peerOf(conv, user); ok {
		s.pushDelivery(peer, st)
	}
	return st, nil
}

// pushReadReceipt tells the senders of the covered messages that user read
// them (each its own messages' ids), and user's other devices all of them,
// which the SDK takes as "read on another device".
func (s *Server) pushReadReceipt(user, conv string, covered []Message, origin *session) {
	if len(covered) == 0 {
		return
	}
	now := time.Now().UnixMilli()
	bySender := make(map[string][]string)
	all := make([]string, 0, len(covered))
	for _, m := range covered {
		bySender[m.SenderID] = append(bySender[m.SenderID], m.ServerID)
		all = append(all, m.ServerID)
	}
	push := func(to string, ids []string, skip *session) {
		body, err := proto.Marshal(&imv1.ReadReceiptPush{ServerMsgIds: ids, ConversationId: conv, UserId: user, ReadTime: now})
		if err != nil {
			s.log.Error("marshal read receipt", "conv", conv, "err", err)
			return
		}
		f := Frame{Command: imv1.CommandType_CMD_READ_RECEIPT_PUSH, Body: body}
		s.hub.each(to, func(sess *session) {
			if sess != skip {
				sess.enqueue(f)
			}
		})
	}
	for sender, ids := range bySender {
		push(sender, ids, nil)
	}
	push(user, all, origin)
}

// pushDelivery tells the connections of peer that subscribed to receipts
// how far st.UserID has received and read their one-to-one conversation.
// It runs for every ack the SDK sends, so the push is encoded only once a
// subscribed connection is found, which most acks never find.
func (s *Server) pushDelivery(peer string, st ReadState) {
	var f Frame
	s.hub.each(peer, func(sess *session) {
		if !sess.receipts.Load() {
			return
		}
		if f.Body == nil {
			body, err := proto.Marshal(&imv1.DeliveryReceiptPush{
				ConversationId: st.ConversationID,
				UserId:         st.UserID,
				DeliveredSeq:   max(st.Delivered, st.Read),
				ReadSeq:        st.Read,
			})
			if err != nil {
				return
			}
			f = Frame{Command: imv1.CommandType_CMD_DELIVERY_RECEIPT_PUSH, Body: body}
		}
		sess.enqueue(f)
	})
}

// pushRef is what a session remembers of a message it was pushed.
type pushRef struct {
	serverID, conv string
	seq            int64
}

// ackRef returns the conversation and seq of the message with serverID
// among the session's recent pushes, newest first: a client acks what it
// has just been pushed.
func (s *session) ackRef(serverID []byte) (pushRef, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.acks == nil {
		return pushRef{}, false
	}
	for n := range ackRing {
		if r := s.acks[(s.ackNext-1-n+ackRing)%ackRing]; r.serverID == string(serverID) {
			return r, true
		}
	}
	return pushRef{}, false
}

// handleMsgAck records that a message reached one of the user's devices.
func (s *Server) handleMsgAck(sess *session, f Frame) {
	if s.reads == nil {
		return
	}
	id, ok := ackedID(f.Body)
	if !ok {
		return
	}
	r, ok := sess.ackRef(id)
	if !ok || !s.delivered.add(sess.user, r.conv, r.seq) {
		return
	}
	if peer, ok := peerOf(r.conv, sess.user); ok && s.receiptSubs.Load() > 0 {
		// Told now, stored at the next flush; read_seq 0 is no news.
		s.pushDelivery(peer, ReadState{UserID: sess.user, ConversationID: r.conv, Delivered: r.seq})
	}
}

// deliveredAcks gathers, between flushes, delivery acks and mentions: the
// highest seq of each per user and conversation. It is sharded by user,
// since every connection's reader adds to it for each message it acks.
type deliveredAcks struct {
	shards [16]ackShard
}

type ackShard struct {
	mu      sync.Mutex
	pending map[[2]string]ackedSeqs
}

type ackedSeqs struct{ delivered, mentioned int64 }

// update applies fn to the pending seqs of user in conv, reporting what fn
// reports.
func (d *deliveredAcks) update(user, conv string, fn func(*ackedSeqs) bool) bool {
	sh := &d.shards[fnv32(user)%uint32(len(d.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.pending == nil {
		sh.pending = make(map[[2]string]ackedSeqs)
	}
	k := [2]string{user, conv}
	p := sh.pending[k]
	moved := fn(&p)
	sh.pending[k] = p
	return moved
}

// add records an ack of seq, reporting whether it is past those gathered
// since the last flush.
func (d *deliveredAcks) add(user, conv string, seq int64) bool {
	return d.update(user, conv, func(p *ackedSeqs) bool {
		if seq <= p.delivered {
			return false
		}
		p.delivered = seq
		return true
	})
}

// mention records that message seq of conv mentions users.
func (d *deliveredAcks) mention(conv string, seq int64, users []string) {
	for _, u := range users {
		d.update(u, conv, func(p *ackedSeqs) bool {
			p.mentioned = max(p.mentioned, seq)
			return true
		})
	}
}

// pending returns what was gathered for user in conv since the last
// flush, which this server's answers count before the Store has it.
func (d *deliveredAcks) pending(user, conv string) ackedSeqs {
	sh := &d.shards[fnv32(user)%uint32(len(d.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.pending[[2]string{user, conv}]
}

// withPending raises st's positions to what this server has gathered for
// it and not stored yet.
func (s *Server) withPending(st ReadState) ReadState {
	p := s.delivered.pending(st.UserID, st.ConversationID)
	st.Delivered = max(st.Delivered, p.delivered)
	st.Mentioned = max(st.Mentioned, p.mentioned)
	return st
}

// take returns what was gathered and starts over.
func (d *deliveredAcks) take() map[[2]string]ackedSeqs {
	var out map[[2]string]ackedSeqs
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		p := sh.pending
		sh.pending = nil
		sh.mu.Unlock()
		if out == nil {
			out = p
			continue
		}
		for k, v := range p {
			out[k] = v // users differ between shards
		}
	}
	return out
}

// runAcks stores the gathered delivery acks every ackFlushInterval until the
// server stops. Shutdown stores the last of them (flushAcks).
func (s *Server) runAcks() {
	t := time.NewTicker(ackFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopBG:
			return
		case <-t.C:
			s.flushAcks(s.base)
		}
	}
}

// flushAcks stores the delivery acks and mentions gathered since the last
// flush, in one commit. A failure loses them (logged): delivery positions
// are advisory, and the next ack moves them again; a mention lost so is a
// flag not shown.
func (s *Server) flushAcks(ctx context.Context) {
	p := s.delivered.take()
	if len(p) == 0 {
		return
	}
	states := make([]ReadState, 0, len(p))
	now := time.Now()
	for k, v := range p {
		states = append(states, ReadState{UserID: k[0], ConversationID: k[1], Delivered: v.delivered, Mentioned: v.mentioned, UpdatedAt: now})
	}
	if _, err := s.updateReadStates(ctx, states); err != nil {
		s.log.Warn("store delivery acks", "n", len(states), "err", err)
	}
}

func (s *Server) updateReadStates(ctx context.Context, states []ReadState) (_ []ReadState, err error) {
	defer s.recoverStore("UpdateReadStates", &err)
	out, err := s.reads.UpdateReadStates(ctx, states)
	if err == nil && len(out) != len(states) {
		err = errorf(CodeUnknown, ErrCorrupt, "store returned %d read states for %d", len(out), len(states))
	}
	return out, err
}

func (s *Server) handleReadState(sess *session, f Frame) {
	var req imv1.ReadStateRequest
	if err := proto.Unmarshal(f.Body, &req); err != nil {
		s.respondError(sess, f, errMalformed(err))
		return
	}
	if s.reads == nil {
		s.respondError(sess, f, errNoReadState)
		return
	}
	if !s.receipts.allow(sess.user, time.Now()) {
		s.stats.receiptsLimited.Add(1)
		s.respondError(sess, f, errorf(CodeRateLimited, ErrRateLimited, "asking for read state too fast"))
		return
	}
	states, err := s.ReadStates(sess.ctx, sess.user, req.ConversationIds)
	if err != nil {
		s.respondError(sess, f, err)
		return
	}
	switch req.Receipts {
	case imv1.ReceiptSubscribe_RECEIPTS_SUBSCRIBE:
		if !sess.receipts.Swap(true) {
			s.receiptSubs.Add(1)
		}
	case imv1.ReceiptSubscribe_RECEIPTS_UNSUBSCRIBE:
		if sess.receipts.Swap(false) {
			s.receiptSubs.Add(-1)
		}
	}
	rsp := &imv1.ReadStateResponse{States: make([]*imv1.ConversationReadState, len(states)), Receipts: sess.receipts.Load()}
	for i, st := range states {
		rsp.States[i] = &imv1.ConversationReadState{
			ConversationId:   st.ConversationID,
			MaxSeq:           st.MaxSeq,
			ReadSeq:          st.Read,
			DeliveredSeq:     st.Delivered,
			Unread:           st.Unread,
			PeerReadSeq:      st.PeerRead,
			PeerDeliveredSeq: st.PeerDelivered,
			Mentioned:        st.Mentioned,
		}
		rsp.TotalUnread += st.Unread
	}
	sess.respond(imv1.CommandType_CMD_READ_STATE_RSP, f.Sequence, rsp)
}

// ReadStates returns userID's read state in the conversations named (at
// most 100, each one she is a member of; a conversation without messages
// reads as zero), or with none named in every conversation she is in, in
// no particular order. Peer positions are given for the one-to-one
// conversations named. ErrPermissionDenied for a conversation she is not
// in; ErrUnsupported on a Store without ReadStateStore.
func (s *Server) ReadStates(ctx context.Context, userID string, convs []string) (_ []ConversationReadState, err error) {
	if s.reads == nil {
		return nil, errNoReadState
	}
	if !validID(userID) {
		return nil, errorf(CodeInvalidArgument, ErrInvalidArgument, "invalid user id")
	}
	if len(convs) > maxStateConversations {
		return nil, errorf(CodeInvalidArgument, ErrInvalidArgument, "at most %d conversations per request", maxStateConversations)
	}
	named := len(convs) > 0
	var list []Conversation
	if named {
		for _, id := range convs {
			if err := ValidateConversationID(id); err != nil {
				return nil, err
			}
		}
		convs = slices.Compact(slices.Sorted(slices.Values(convs)))
		for _, id := range convs {
			ok, err := s.isMember(ctx, id, userID)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, errorf(CodePermissionDenied, ErrPermissionDenied, "not a member of conversation %q", id)
			}
			c, err := s.conversation(ctx, id)
			if err != nil {
				return nil, err
			}
			list = append(list, c)
		}
	} else {
		if list, err = s.userConversations(ctx, userID); err != nil {
			return nil, err
		}
		slices.SortFunc(list, func(a, b Conversation) int { return strings.Compare(a.ID, b.ID) })
	}
	ids := make([]string, len(list))
	for i, c := range list {
		ids[i] = c.ID
	}
	mine, err := s.readStatesOf(ctx, userID, ids)
	if err != nil {
		return nil, err
	}
	// What she cleared of her history is not unread.
	settings, err := s.settingsOf(ctx, userID, ids)
	if err != nil {
		return nil, err
	}
	out := make([]ConversationReadState, len(list))
	for i, c := range list {
		var cleared int64
		if settings != nil {
			cleared = settings[i].ClearedUpTo
		}
		from := c.ReadFrom
		if from == 0 && ConversationTypeOf(c.ID) == GroupConversation && c.MaxSeq > max(mine[i].Read, cleared) {
			f, ok, err := s.readableFrom(ctx, c.ID, userID, max(mine[i].Read, cleared)+1)
			if err != nil {
				return nil, err
			}
			if ok {
				from = f
			} else {
				from = c.MaxSeq + 1 // left meanwhile: nothing to read
			}
		}
		from = max(from, cleared+1)
		st := s.withPending(mine[i])
		out[i] = ConversationReadState{
			ConversationID: c.ID,
			MaxSeq:         c.MaxSeq,
			Read:           st.Read,
			Delivered:      max(st.Delivered, st.Read),
			Unread:         Unread(c.MaxSeq, st.Read, from),
			Mentioned:      st.Mentioned > st.Read && st.Mentioned >= from,
		}
		if peer, ok := peerOf(c.ID, userID); ok && named && peer != userID {
			ps, err := s.readStatesOf(ctx, peer, []string{c.ID})
			if err != nil {
				return nil, err
			}
			p := s.withPending(ps[0])
			out[i].PeerRead, out[i].PeerDelivered = p.Read, max(p.Delivered, p.Read)
		}
	}
	return out, nil
}

// UnreadCount returns how many messages userID has not read over all her
// conversations: the badge of a push notification.
func (s *Server) UnreadCount(ctx context.Context, userID string) (int64, error) {
	states, err := s.ReadStates(ctx, userID, nil)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, st := range states {
		n += st.Unread
	}
	return n, nil
}

// conversation is Store.Conversation with a conversation without messages
// reading as MaxSeq 0.
func (s *Server) conversation(ctx context.Context, id string) (_ Conversation, err error) {
	defer s.recoverStore("Conversation", &err)
	c, err := s.store.Conversation(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Conversation{ID: id}, nil
	}
	return c, err
}

// readStatesOf asks the Store for user's states in convs, a few thousand
// at a time.
func (s *Server) readStatesOf(ctx context.Context, user string, convs []string) (_ []ReadState, err error) {
	defer s.recoverStore("ReadStates", &err)
	const chunk = 1000
	out := make([]ReadState, 0, len(convs))
	for len(convs) > 0 {
		n := min(len(convs), chunk)
		part, err := s.reads.ReadStates(ctx, user, convs[:n])
		if err != nil {
			return nil, err
		}
		if len(part) != n {
			return nil, errorf(CodeUnknown, ErrCorrupt, "store returned %d read states for %d conversations", len(part), n)
		}
		out = append(out, part...)
		convs = convs[n:]
	}
	return out, nil
}

func (s *Server) handleReadBy(sess *session, f Frame) {
	var req imv1.ReadByRequest
	if err := proto.Unmarshal(f.Body, &req); err != nil {
		s.respondError(sess, f, errMalformed(err))
		return
	}
	if s.reads != nil && !s.receipts.allow(sess.user, time.Now()) {
		s.stats.receiptsLimited.Add(1)
		s.respondError(sess, f, errorf(CodeRateLimited, ErrRateLimited, "asking who read too fast"))
		return
	}
	r, err := s.ReadBy(sess.ctx, sess.user, req.ConversationId, req.ServerMsgId)
	if err != nil {
		s.respondError(sess, f, err)
		return
	}
	sess.respond(imv1.CommandType_CMD_READ_BY_RSP, f.Sequence, &imv1.ReadByResponse{
		Seq:           r.Seq,
		ReadCount:     int32(r.Read),
		UnreadCount:   int32(r.Unread),
		ReadUserIds:   r.ReadBy,
		UnreadUserIds: r.UnreadBy,
		Listed:        r.Listed,
	})
}

// ReadBy tells userID, the sender of message serverMsgID of conversation
// conv, who has read it: derived from the members' read positions, with no
// record per message. The message is looked for among the conversation's
// newest 500 unless the Store can find it by id (RecallStore).
// ErrPermissionDenied unless userID is a member of conv and sent the
// message; ErrNotFound for a message not found.
func (s *Server) ReadBy(ctx context.Context, userID, conv, serverMsgID string) (_ ReadReceipt, err error) {
	if s.reads == nil {
		return ReadReceipt{}, errNoReadState
	}
	if err := ValidateConversationID(conv); err != nil {
		return ReadReceipt{}, err
	}
	if !validID(userID) || !validID(serverMsgID) {
		return ReadReceipt{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "invalid user id or server_msg_id")
	}
	ok, err := s.isMember(ctx, conv, userID)
	if err != nil {
		return ReadReceipt{}, err
	}
	if !ok {
		return ReadReceipt{}, errorf(CodePermissionDenied, ErrPermissionDenied, "not a member of this conversation")
	}
	m, err := s.findMessage(ctx, conv, serverMsgID)
	if err != nil {
		return ReadReceipt{}, err
	}
	if m.SenderID != userID {
		return ReadReceipt{}, errorf(CodePermissionDenied, ErrPermissionDenied, "only the sender may ask who read a message")
	}
	// Who may read it, the sender aside.
	var members []string
	size := 2
	if peer, ok := peerOf(conv, userID); ok {
		if peer != userID {
			members = []string{peer}
		}
	} else if gid, ok := groupOf(conv); ok {
		g, ms, err := s.groupState(ctx, gid)
		if err != nil {
			return ReadReceipt{}, err
		}
		size = len(ms)
		for _, gm := range ms {
			if gm.UserID != userID && FirstReadableSeq(g, gm) <= m.Seq {
				members = append(members, gm.UserID)
			}
		}
	}
	defer s.recoverStore("ConversationReadStates", &err)
	states, err := s.reads.ConversationReadStates(ctx, conv)
	if err != nil {
		return ReadReceipt{}, err
	}
	read := make(map[string]bool, len(states))
	for _, st := range states {
		if st.Read >= m.Seq {
			read[st.UserID] = true
		}
	}
	r := ReadReceipt{Seq: m.Seq, Listed: size <= s.cfg.ReadByMaxMembers}
	slices.Sort(members)
	for _, u := range members {
		if read[u] {
			r.Read++
			if r.Listed {
				r.ReadBy = append(r.ReadBy, u)
			}
		} else {
			r.Unread++
			if r.Listed {
				r.UnreadBy = append(r.UnreadBy, u)
			}
		}
	}
	return r, nil
}

// findMessage returns the message of conv with serverID: by the Store's
// index when it has one (RecallStore), otherwise among the newest readScan.
func (s *Server) findMessage(ctx context.Context, conv, serverID string) (_ Message, err error) {
	if s.recall != nil {
		return s.messageByServerID(ctx, conv, serverID)
	}
	defer s.recoverStore("MessagesBefore", &err)
	msgs, err := s.store.MessagesBefore(ctx, conv, 0, readScan)
	if err != nil {
		return Message{}, err
	}
	for _, m := range msgs {
		if m.ServerID == serverID {
			return m, nil
		}
	}
	return Message{}, errorf(CodeNotFound, ErrNotFound, "no such message in this conversation")
}

// A group message mentions members through its extra, a JSON object (see
// docs/PROTOCOL.md): "mentionUserIDs", a list of user ids, and
// "mentionAll", true to mention every member, which only the group's
// owner and admins may do (from others it is ignored). A mentioned member
// is flagged in her read state until she reads past the message.
type mentionExtra struct {
	UserIDs []string `json:"mentionUserIDs"`
	All     bool     `json:"mentionAll"`
}

// maxMentions bounds the users one message mentions by id.
const maxMentions = 100

// noteMentions records the mentions of m, a group message just stored,
// among set's members, for the next flush. Messages that say nothing of
// mentions cost a substring search of their extra.
func (s *Server) noteMentions(m Message, set *memberSet) {
	if s.reads == nil || set == nil || !strings.Contains(m.Extra, `"mention`) {
		return
	}
	var x mentionExtra
	if json.Unmarshal([]byte(m.Extra), &x) != nil {
		return
	}
	var users []string
	if x.All && set.roles[m.SenderID] >= RoleAdmin {
		users = set.ids
	} else {
		for _, u := range x.UserIDs[:min(len(x.UserIDs), maxMentions)] {
			if set.roles[u] != 0 {
				users = append(users, u)
			}
		}
	}
	users = slices.DeleteFunc(slices.Clone(users), func(u string) bool { return u == m.SenderID })
	if len(users) > 0 {
		s.delivered.mention(m.ConversationID, m.Seq, users)
	}
}

// ackedID returns the server_msg_id of a MessageAck body, decoded by hand:
// the SDK sends one per message it receives, and only this field is read.
// A body that does not decode, or has no id, reports false.
func ackedID(b []byte) ([]byte, bool) {
	var id []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, false
			}
			id, b = v, b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
	}
	return id, len(id) > 0
}
