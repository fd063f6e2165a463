package im

import (
	"bytes"
	"context"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/imserver/imserver/im/imv1"
	"google.golang.org/protobuf/encoding/protowire"
)

// maxMetadata bounds Extra plus AttachedInfo: both are opaque strings the
// server stores with the message, so they are bounded like content.
const maxMetadata = 16 << 10

// SendRequest is a message sent through the Go API (Server.SendMessage).
type SendRequest struct {
	SenderID string
	// ConversationID, or ReceiverID for a one-to-one message.
	ConversationID string
	ReceiverID     string
	// ClientMsgID makes retries safe: a second send with the same sender and
	// ClientMsgID returns the first one's result. Generated when empty.
	ClientMsgID string
	Type        MessageType
	Content     []byte
	Extra       string
}

// draft is a message as a client or the Go API asked for it, not yet
// checked.
type draft struct {
	sender, conv, receiver, clientMsgID string
	typ                                 MessageType
	content                             []byte
	extra, attached                     string
	sendTime                            int64
	system                              bool // sent by the server itself into a system conversation
}

// prepare checks d and turns it into the operation that stores it, with the
// members of its conversation. Every error is an *Error with the code the
// client sees.
func (s *Server) prepare(ctx context.Context, d draft) (*commitOp, error) {
	if !validID(d.clientMsgID) {
		return nil, errorf(CodeInvalidArgument, ErrInvalidArgument, "client_msg_id must be 1 to %d bytes of printable UTF-8", MaxIDLength)
	}
	if len(d.content) == 0 {
		return nil, errorf(CodeInvalidArgument, ErrInvalidArgument, "content is empty")
	}
	if len(d.content) > s.cfg.MaxContentSize {
		return nil, errorf(CodeTooLarge, ErrTooLarge, "content is %d bytes, the limit is %d", len(d.content), s.cfg.MaxContentSize)
	}
	if len(d.extra)+len(d.attached) > maxMetadata {
		return nil, errorf(CodeInvalidArgument, ErrInvalidArgument, "extra and attached_info together exceed %d bytes", maxMetadata)
	}
	to, err := s.resolveConversation(ctx, d)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	m := Message{
		ConversationID: to.conv,
		ServerID:       s.ids.next(now),
		SenderID:       d.sender,
		ReceiverID:     to.peer,
		ClientMsgID:    d.clientMsgID,
		Type:           d.typ,
		Content:        d.content,
		Extra:          d.extra,
		AttachedInfo:   d.attached,
		SendTime:       d.sendTime,
		// Milliseconds, as the wire carries them, so a deduplicated resend
		// reports exactly the server_time of the first.
		CreatedAt: now.Truncate(time.Millisecond),
	}
	if s.cfg.BeforeSend != nil {
		if err := s.cfg.BeforeSend(ctx, &m); err != nil {
			var e *Error
			if errors.As(err, &e) {
				return nil, err
			}
			return nil, &Error{Code: CodePermissionDenied, Msg: "message rejected", Err: errors.Join(ErrPermissionDenied, err)}
		}
		if len(m.Content) == 0 || len(m.Content) > s.cfg.MaxContentSize {
			return nil, errorf(CodeTooLarge, ErrTooLarge, "message rewritten by BeforeSend is empty or too large")
		}
		if !utf8.ValidString(m.Extra) || !utf8.ValidString(m.AttachedInfo) {
			return nil, errorf(CodeInvalidArgument, ErrInvalidArgument, "message rewritten by BeforeSend has extra or attached_info that is not valid UTF-8")
		}
	}
	return &commitOp{req: AppendRequest{Message: m, Members: to.members, MemberOf: to.memberOf}, members: to.group}, nil
}

// target is where a message goes.
type target struct {
	conv    string
	peer    string     // the other member of a one-to-one conversation
	members []string   // recorded by the store with the conversation's first message
	group   *memberSet // a group's members, as the group cache has them
	// memberOf is the group whose member the sender must be when the
	// message is committed: the store checks it, whatever the cache said.
	memberOf string
}

// resolveConversation derives the conversation from what the client said
// and checks that the sender belongs to it. Nothing the client says about
// sender, receiver or group is trusted.
func (s *Server) resolveConversation(ctx context.Context, d draft) (target, error) {
	conv := d.conv
	if d.system {
		return target{conv: conv, peer: d.receiver, members: []string{d.receiver}}, nil
	}
	if conv == "" {
		if d.receiver == "" {
			return target{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "conversation_id or receiver_id is required")
		}
		if !validID(d.receiver) {
			return target{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "receiver_id is not a valid user id")
		}
		conv = SingleConversationID(d.sender, d.receiver)
	}
	if len(conv) > MaxConversationIDLen {
		return target{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "conversation_id is too long")
	}
	switch ConversationTypeOf(conv) {
	case SingleConversation:
		p, ok := peerOf(conv, d.sender)
		if !ok {
			return target{}, errorf(CodePermissionDenied, ErrPermissionDenied, "not a member of this conversation")
		}
		if !validID(p) {
			return target{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "conversation_id names an invalid user id")
		}
		if d.receiver != "" && d.receiver != p {
			return target{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "receiver_id does not match conversation_id")
		}
		if s.cfg.Users != nil && p != d.sender {
			ok, err := s.cfg.Users.UserExists(ctx, p)
			if err != nil {
				return target{}, err
			}
			if !ok {
				return target{}, errorf(CodeUserNotFound, ErrNotFound, "user does not exist")
			}
		}
		if p == d.sender {
			return target{conv: conv, peer: p, members: []string{p}}, nil
		}
		if s.friends != nil {
			if err := s.checkRelation(ctx, d.sender, p); err != nil {
				return target{}, err
			}
		}
		return target{conv: conv, peer: p, members: []string{d.sender, p}}, nil
	case GroupConversation:
		gid, _ := groupOf(conv)
		set, err := s.groups.get(ctx, gid)
		if errors.Is(err, ErrNotFound) {
			return target{}, errNoGroup()
		}
		if err != nil {
			return target{}, err
		}
		// The store has the last word when it commits the message
		// (MemberOf), so a member removed through another server is
		// refused there. One the cache does not list may have been added
		// through another server: the store is asked before refusing.
		if set.roles[d.sender] == 0 {
			err := s.checkGroupMember(ctx, gid, d.sender)
			if errors.Is(err, ErrNotFound) {
				return target{}, s.outsider(ctx, gid)
			}
			if err != nil {
				return target{}, err
			}
		} else if set.muted(d.sender, time.Now()) {
			if set, err = s.mutedSet(ctx, gid, set); err != nil {
				return target{}, err
			}
			if set.muted(d.sender, time.Now()) {
				return target{}, errMuted()
			}
		}
		// The receiver a client names is ignored: the group's members
		// receive it, and the stored message has none.
		return target{conv: conv, group: set, memberOf: gid}, nil
	case ChatroomConversation:
		return target{}, errorf(CodeNotFound, ErrNotFound, "conversation does not exist")
	case SystemConversation:
		return target{}, errorf(CodePermissionDenied, ErrPermissionDenied, "only the server sends into system conversations")
	}
	return target{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "conversation_id has an unknown form")
}

// handleSend stores a client's message; the acknowledgement goes out when the
// commit is durable.
// outsider returns the refusal of a send to group gid by a user who is not
// a member: "not a member" for an open group, and for an invite-only one
// the answer an id that names no group gets, so that trying does not tell
// her it exists (see Server.Group).
func (s *Server) outsider(ctx context.Context, gid string) (err error) {
	defer s.recoverStore("Group", &err)
	g, err := s.store.Group(ctx, gid)
	switch {
	case errors.Is(err, ErrNotFound):
		return errNoGroup()
	case err != nil:
		return err
	}
	return errOutsider(g)
}

// mutedSet returns the members of group gid to refuse a muted sender on:
// set, if the stored group is still at its version, or else the members
// read again, since another server may have unmuted her.
func (s *Server) mutedSet(ctx context.Context, gid string, set *memberSet) (_ *memberSet, err error) {
	defer s.recoverStore("Group", &err)
	g, err := s.store.Group(ctx, gid)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, errNoGroup()
	case err != nil:
		return nil, err
	case g.Version == set.version:
		return set, nil
	}
	fresh, err := s.groups.refresh(gid)
	if err != nil {
		return nil, err
	}
	return fresh, nil
}

// checkGroupMember asks the store whether user is a member of group gid:
// nil if so, an error wrapping ErrNotFound if not.
func (s *Server) checkGroupMember(ctx context.Context, gid, user string) (err error) {
	defer s.recoverStore("GroupMember", &err)
	_, err = s.store.GroupMember(ctx, gid, user)
	return err
}

func (s *Server) handleSend(sess *session, f Frame) {
	mi, err := decodeSendRequest(f.Body)
	if err != nil {
		s.respondError(sess, f, errMalformed(err))
		return
	}
	if !mi.present {
		s.respondError(sess, f, errorf(CodeInvalidArgument, ErrInvalidArgument, "message is missing"))
		return
	}
	// The user's bucket, not the connection's: more connections or a
	// reconnect buy no more sends (Config.SendRate).
	if !s.sends.allow(sess.user, time.Now()) {
		s.respondError(sess, f, errorf(CodeRateLimited, ErrRateLimited, "sending too fast"))
		return
	}
	op, err := s.prepare(sess.ctx, draft{
		sender:      sess.user, // never the client's sender_id
		conv:        mi.conv,
		receiver:    mi.receiver,
		clientMsgID: mi.clientMsgID,
		typ:         MessageType(mi.typ),
		content:     mi.content,
		extra:       mi.extra,
		attached:    mi.attach,
		sendTime:    mi.sendTime,
	})
	if err != nil {
		s.respondError(sess, f, err)
		return
	}
	// Bound the sends in flight per connection; waiting here stops reading
	// from this client, which is the back-pressure it feels.
	select {
	case sess.inflight <- struct{}{}:
	case <-sess.ctx.Done():
		return
	}
	seq := f.Sequence
	op.origin = sess
	// The frame's read time, for Stats.SendLatency: the reader set it
	// just before handing this frame over, so no clock is read for it.
	op.read = sess.lastRead.Load()
	op.done = func(r AppendResult, err error, held *heldWriters) {
		<-sess.inflight
		s.ack(sess, seq, op.req.Message, r, err, held)
	}
	if err := s.commits.submit(op); err != nil {
		<-sess.inflight
		s.respondError(sess, f, err)
	}
}

// ack answers a send once its commit is done, leaving the writer it needs
// to held (see heldWriters) when not nil.
func (s *Server) ack(sess *session, seq uint32, sent Message, r AppendResult, err error, held *heldWriters) {
	if err == nil {
		err = sendOutcome(sent, r)
	}
	if err == nil {
		// The common answer is encoded by hand: one allocation, where
		// proto.Marshal costs two and a walk of the message's fields.
		body := encodeSendAck(sent.ClientMsgID, r.Message)
		sess.put(Frame{Command: imv1.CommandType_CMD_SEND_MSG_RSP, Sequence: seq, Body: body}, false, nil, held)
		return
	}
	if errors.Is(err, ErrCorrupt) {
		s.corrupt(sess.logger(), "send", err)
	}
	rsp := &imv1.SendMessageResponse{ClientMsgId: sent.ClientMsgID}
	rsp.ErrorCode, rsp.ErrorMsg = wireError(err)
	s.stats.refusedWith(rsp.ErrorCode)
	sess.respond(imv1.CommandType_CMD_SEND_MSG_RSP, seq, rsp)
}

// encodeSendAck returns the SendMessageResponse of a stored message,
// encoded as proto.Marshal encodes it (fields in order, zero values left
// out), in a buffer of its exact size. Strings that are not valid UTF-8
// are repaired as toWire repairs them.
func encodeSendAck(clientMsgID string, m Message) []byte {
	serverID, clientID := validUTF8(m.ServerID), validUTF8(clientMsgID)
	at := m.CreatedAt.UnixMilli()
	n := 0
	if serverID != "" {
		n += 1 + protowire.SizeBytes(len(serverID))
	}
	if clientID != "" {
		n += 1 + protowire.SizeBytes(len(clientID))
	}
	if m.Seq != 0 {
		n += 1 + protowire.SizeVarint(uint64(m.Seq))
	}
	if at != 0 {
		n += 1 + protowire.SizeVarint(uint64(at))
	}
	b := make([]byte, 0, n)
	b = appendStringField(b, 3, serverID)
	b = appendStringField(b, 4, clientID)
	b = appendIntField(b, 5, m.Seq)
	return appendIntField(b, 6, at)
}

// sendOutcome turns a store result into the send's error, if any: a resend
// of the same message succeeds with the original result, while a
// client_msg_id reused for a different message is refused.
func sendOutcome(sent Message, r AppendResult) error {
	if errors.Is(r.Err, ErrMuted) && !errors.As(r.Err, new(*Error)) {
		return errMuted() // the store's MemberOf check
	}
	if errors.Is(r.Err, ErrPermissionDenied) && !errors.As(r.Err, new(*Error)) {
		return errNotGroupMember() // the store's MemberOf check
	}
	if r.Err != nil {
		return r.Err
	}
	if r.Duplicate {
		o := r.Message
		// A recalled message keeps no content to compare with: a resend
		// of it (the SDK resends after reconnecting) gets the original
		// acknowledgement, and its content is not stored again.
		same := o.ConversationID == sent.ConversationID && o.Type == sent.Type &&
			(o.Revoked() || bytes.Equal(o.Content, sent.Content) && o.Extra == sent.Extra && o.AttachedInfo == sent.AttachedInfo)
		if !same {
			return errorf(CodeInvalidArgument, ErrConflict, "client_msg_id was already used for a different message")
		}
	}
	return nil
}

// SendMessage sends a message as req.SenderID, with the same checks, storage
// and delivery as a message from a client: the sender must belong to the
// conversation, and every session of the sender and the recipients gets it.
// It returns the stored message once it is durable. If ctx ends first the
// message may still be stored; retrying with the same ClientMsgID is safe.
func (s *Server) SendMessage(ctx context.Context, req SendRequest) (Message, error) {
	if !validID(req.SenderID) {
		return Message{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "sender id is not a valid user id")
	}
	if req.ClientMsgID == "" {
		req.ClientMsgID = s.ids.next(time.Now())
	}
	// The protocol carries Extra as a protobuf string, which must be
	// UTF-8: a message stored with anything else could only be served
	// repaired. Frames are checked by protobuf when they are decoded, so
	// only the Go API checks it here, off the path of every frame.
	if !utf8.ValidString(req.Extra) {
		return Message{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "extra and attached_info must be valid UTF-8")
	}
	return s.sendAPI(ctx, draft{
		sender:      req.SenderID,
		conv:        req.ConversationID,
		receiver:    req.ReceiverID,
		clientMsgID: req.ClientMsgID,
		typ:         req.Type,
		content:     req.Content,
		extra:       req.Extra,
		sendTime:    time.Now().UnixMilli(),
	})
}

// SendSystemMessage sends a message from the server itself (sender
// Config.SystemSender) to userID, in the user's system conversation
// (SystemConversationID), which every session of the user receives and syncs.
// With a Config.Users directory, a user it does not know is refused
// (ErrNotFound, CodeUserNotFound) and nothing is stored.
func (s *Server) SendSystemMessage(ctx context.Context, userID string, typ MessageType, content []byte) (Message, error) {
	if !validID(userID) || len(SystemConversationID(userID)) > MaxConversationIDLen {
		return Message{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "user id is not valid")
	}
	// A notice to nobody would open a system conversation no one can
	// ever read, under an id someone may register later.
	if err := s.checkUserExists(ctx, userID); err != nil {
		return Message{}, err
	}
	now := time.Now()
	return s.sendAPI(ctx, draft{
		sender:      s.cfg.SystemSender,
		conv:        SystemConversationID(userID),
		receiver:    userID,
		clientMsgID: s.ids.next(now),
		typ:         typ,
		content:     content,
		sendTime:    now.UnixMilli(),
		system:      true,
	})
}

type sendResult struct {
	r   AppendResult
	err error
}

func (s *Server) sendAPI(ctx context.Context, d draft) (Message, error) {
	op, err := s.prepare(ctx, d)
	if err != nil {
		return Message{}, err
	}
	return s.commitAndWait(ctx, op)
}

// commitAndWait stores op's message through the commit loop, which delivers
// it, and returns it as stored.
func (s *Server) commitAndWait(ctx context.Context, op *commitOp) (Message, error) {
	ch := make(chan sendResult, 1)
	op.done = func(r AppendResult, err error, _ *heldWriters) { ch <- sendResult{r, err} }
	if err := s.commits.submit(op); err != nil {
		return Message{}, err
	}
	select {
	case res := <-ch:
		if res.err != nil {
			return Message{}, res.err
		}
		if err := sendOutcome(op.req.Message, res.r); err != nil {
			return Message{}, err
		}
		return res.r.Message, nil
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}
