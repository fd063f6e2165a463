package im

import (
	"context"
	"errors"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"google.golang.org/protobuf/proto"
)

// Each user's recall requests, across the user's connections. A person
// recalls a message now and then, a few in a row at most, while each
// request costs a Store read (a search by id) and, when it recalls
// something, a commit of its own and a push to every member: so recalls
// get a small bucket of their own rather than a share of SendRate.
const (
	recallRate  = 5 // per second
	recallBurst = 20
)

// handleRecall answers REVOKE_MSG_REQ. The pushes go out before the
// response, so a client whose request succeeded has its own
// REVOKE_MSG_PUSH already.
func (s *Server) handleRecall(sess *session, f Frame) {
	var req imv1.RevokeMessageRequest
	if err := proto.Unmarshal(f.Body, &req); err != nil {
		s.respondError(sess, f, errMalformed(err))
		return
	}
	if !s.recalls.allow(sess.user, time.Now()) {
		s.respondError(sess, f, errorf(CodeRateLimited, ErrRateLimited, "recalling too fast"))
		return
	}
	if _, err := s.recallMessage(sess.ctx, sess.user, req.ConversationId, req.ServerMsgId); err != nil {
		s.respondError(sess, f, err)
		return
	}
	sess.respond(imv1.CommandType_CMD_REVOKE_MSG_RSP, f.Sequence, &imv1.RevokeMessageResponse{})
}

// RecallMessage recalls (revokes) message serverMsgID of conversation
// conversationID as userID, with the checks and pushes of a client's
// REVOKE_MSG_REQ: userID must belong to the conversation, and may recall
// her own messages within Config.RecallWindow of their sending, or, as a
// group's owner or admin, any message of the group. The message becomes a
// tombstone (RecallStore.RecallMessage), which is returned, and every
// session of every member of the conversation gets REVOKE_MSG_PUSH.
// Recalling a tombstone returns it, changes nothing and pushes nothing.
// Unlike a client's requests, calls are not rate limited.
//
// Errors: ErrInvalidArgument for an empty or invalid id; ErrNotFound
// (CodeNotFound) for a message the conversation does not hold, and for a
// group the user may not know of; ErrPermissionDenied for someone else's
// message, a group notice, or once the window has passed; ErrUnsupported
// when the Store has no RecallStore.
func (s *Server) RecallMessage(ctx context.Context, userID, conversationID, serverMsgID string) (Message, error) {
	if !validID(userID) {
		return Message{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "user id is not a valid user id")
	}
	return s.recallMessage(ctx, userID, conversationID, serverMsgID)
}

// recallMessage is RecallMessage for a user whose id is valid. It checks,
// in this order: the Store's capability, the ids, the user's membership of
// the conversation, the message, her right to recall it, the window.
func (s *Server) recallMessage(ctx context.Context, user, conv, serverID string) (Message, error) {
	if s.recall == nil {
		return Message{}, errorf(CodeUnknown, ErrUnsupported, "recall is not supported by this server's store")
	}
	switch {
	case conv == "" || serverID == "":
		return Message{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "conversation_id and server_msg_id are required")
	case len(conv) > MaxConversationIDLen:
		return Message{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "conversation_id is too long")
	case !validID(serverID):
		return Message{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "server_msg_id must be 1 to %d bytes of printable UTF-8", MaxIDLength)
	}
	member, err := s.recallMember(ctx, conv, user)
	if err != nil {
		return Message{}, err
	}
	m, err := s.messageByServerID(ctx, conv, serverID)
	if errors.Is(err, ErrNotFound) || (err == nil && (m.ConversationID != conv || m.ServerID != serverID)) {
		return Message{}, errNoMessage()
	}
	if err != nil {
		return Message{}, err
	}
	group := ConversationTypeOf(conv) == GroupConversation
	if group && m.Seq < member.JoinSeq {
		// Older than her membership: she reads it only if the group
		// shows its history, and what she cannot read does not exist
		// for her.
		if from, ok, err := s.readableFrom(ctx, conv, user, m.Seq); err != nil {
			return Message{}, err
		} else if !ok || m.Seq < from {
			return Message{}, errNoMessage()
		}
	}
	admin := member.Role >= RoleAdmin
	switch {
	case group && m.Type == NotificationMessage:
		// Members learn of the group's changes from its notices, in sync
		// as in pushes: a tombstone would leave a hole in that story.
		return Message{}, errorf(CodePermissionDenied, ErrPermissionDenied, "notices of group changes cannot be recalled")
	case m.SenderID != user && !admin && group:
		return Message{}, errorf(CodePermissionDenied, ErrPermissionDenied, "only the sender, the group's owner or its admins may recall a message")
	case m.SenderID != user && !admin:
		return Message{}, errorf(CodePermissionDenied, ErrPermissionDenied, "only the sender may recall a message")
	case m.Revoked():
		return m, nil // done before: nothing to change, nobody to tell again
	}
	now := time.Now()
	if w := s.cfg.RecallWindow; !admin && w > 0 && now.Sub(m.CreatedAt) > w {
		return Message{}, errorf(CodePermissionDenied, ErrPermissionDenied, "the time to recall this message has passed: messages may be recalled for %v after sending", w)
	}
	// Milliseconds, as the wire carries them, so that the push, a later
	// sync and the Go API report the same time.
	at := now.Truncate(time.Millisecond)
	t, err := s.storeRecall(ctx, conv, m.Seq, user, at)
	if err == nil || storageFailure(err) != nil {
		err = s.noteCommit(err)
	}
	if errors.Is(err, ErrNotFound) {
		return Message{}, errNoMessage()
	}
	if err != nil {
		return Message{}, err
	}
	if t.RevokedBy == user && t.RevokedAt.Equal(at) {
		s.log.Debug("message recalled", "user", user, "conv", conv, "seq", t.Seq)
		s.pushRecall(ctx, t)
		s.notifyRecalled(t)
		if s.cfg.AfterRecall != nil {
			s.cfg.AfterRecall(ctx, m)
		}
	}
	// Otherwise another recall came first, and told the members itself.
	return t, nil
}

// errNoMessage is the refusal of a recall of a message that the
// conversation does not hold.
func errNoMessage() *Error {
	return errorf(CodeNotFound, ErrNotFound, "message does not exist")
}

// recallMember returns user's membership of conversation conv, or why she
// may not recall anything in it. Only a group's membership has a Role and
// a JoinSeq; the others' members are all equal. A non-member of a group
// that is not open is answered exactly as for a group that does not
// exist, as everywhere (see Server.Group).
func (s *Server) recallMember(ctx context.Context, conv, user string) (GroupMember, error) {
	switch ConversationTypeOf(conv) {
	case SingleConversation:
		if _, ok := peerOf(conv, user); !ok {
			return GroupMember{}, errorf(CodePermissionDenied, ErrPermissionDenied, "not a member of this conversation")
		}
		return GroupMember{UserID: user, Role: RoleMember}, nil
	case GroupConversation:
		gid, _ := groupOf(conv)
		if !validID(gid) {
			return GroupMember{}, errNoGroup()
		}
		m, err := s.groupMember(ctx, gid, user)
		if errors.Is(err, ErrNotFound) {
			return GroupMember{}, s.outsider(ctx, gid)
		}
		return m, err
	case SystemConversation:
		if conv != SystemConversationID(user) {
			return GroupMember{}, errorf(CodePermissionDenied, ErrPermissionDenied, "not a member of this conversation")
		}
		return GroupMember{}, errorf(CodePermissionDenied, ErrPermissionDenied, "messages of system conversations cannot be recalled")
	case ChatroomConversation:
		return GroupMember{}, errorf(CodeNotFound, ErrNotFound, "conversation does not exist")
	}
	return GroupMember{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "conversation_id has an unknown form")
}

// groupMember reads user's membership of group gid from the Store: who may
// recall what is decided on the stored roles, not on the cache.
func (s *Server) groupMember(ctx context.Context, gid, user string) (_ GroupMember, err error) {
	defer s.recoverStore("GroupMember", &err)
	return s.store.GroupMember(ctx, gid, user)
}

func (s *Server) messageByServerID(ctx context.Context, conv, serverID string) (_ Message, err error) {
	defer s.recoverStore("MessageByServerID", &err)
	return s.recall.MessageByServerID(ctx, conv, serverID)
}

func (s *Server) storeRecall(ctx context.Context, conv string, seq int64, by string, at time.Time) (_ Message, err error) {
	defer s.recoverStore("RecallMessage", &err)
	return s.recall.RecallMessage(ctx, conv, seq, by, at)
}

// pushRecall tells every session of every member of t's conversation that
// t was recalled, the recalling connection included: IM-iOS-SDK acts on
// the push, not on the response. A group's members are those of the group
// cache, as for a message (see deliver).
func (s *Server) pushRecall(ctx context.Context, t Message) {
	body, err := proto.Marshal(&imv1.RevokeMessagePush{
		ServerMsgId:    validUTF8(t.ServerID),
		ConversationId: validUTF8(t.ConversationID),
		RevokedBy:      validUTF8(t.RevokedBy),
		RevokedTime:    t.RevokedAt.UnixMilli(),
	})
	if err != nil {
		s.log.Error("marshal recall push", "conv", t.ConversationID, "seq", t.Seq, "err", err)
		return
	}
	f := Frame{Command: imv1.CommandType_CMD_REVOKE_MSG_PUSH, Body: body}
	push := func(sess *session) { sess.enqueue(f) }
	if gid, ok := groupOf(t.ConversationID); ok {
		set, err := s.groups.get(ctx, gid)
		if err != nil {
			// The recaller at least learns of it; the others see the
			// tombstone when they sync the message.
			s.log.Warn("recall: load group members", "conv", t.ConversationID, "err", err)
			s.hub.each(t.RevokedBy, push)
			return
		}
		for _, u := range set.ids {
			s.hub.each(u, push)
		}
		if set.roles[t.RevokedBy] == 0 {
			// Made a member through another server, after the cache
			// was loaded.
			s.hub.each(t.RevokedBy, push)
		}
		return
	}
	s.hub.each(t.RevokedBy, push)
	if p, ok := peerOf(t.ConversationID, t.RevokedBy); ok && p != t.RevokedBy {
		s.hub.each(p, push)
	}
}
