package im

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"google.golang.org/protobuf/proto"
)

// aside runs fn on a goroutine of its own and waits for it to return.
//
// The reader's goroutine spends a connection's life waiting for the next
// frame, at the stack size the deepest call it ever made grew it to; the
// runtime shrinks a stack only by halves, and only when less than a
// quarter of it is in use, which the wait itself is not. Authenticating
// (JWT parsing), store reads and the like go deep enough to double it, so
// they run here instead, on a goroutine whose stack goes when it returns,
// and an idle connection's stack stays at the size its wait needs. The
// reader waits, so requests are still handled one at a time, in order.
func aside(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// shallow reports whether requests of cmd are handled on the reader's
// goroutine itself: the frequent ones whose handling stays shallow, for
// which a goroutine per request would cost more than it saves (see aside).
func shallow(cmd imv1.CommandType) bool {
	switch cmd {
	case imv1.CommandType_CMD_HEARTBEAT_REQ, imv1.CommandType_CMD_MSG_ACK,
		imv1.CommandType_CMD_TYPING_STATUS_REQ, imv1.CommandType_CMD_SEND_MSG_REQ:
		return true
	}
	return false
}

// handle answers one frame from a client, for the session's reader goroutine.
func (s *Server) handle(sess *session, f Frame) {
	switch f.Command {
	case imv1.CommandType_CMD_HEARTBEAT_REQ:
		sess.respond(imv1.CommandType_CMD_HEARTBEAT_RSP, f.Sequence, &imv1.HeartbeatResponse{ServerTime: time.Now().UnixMilli()})
		return
	case imv1.CommandType_CMD_AUTH_REQ:
		s.handleAuth(sess, f)
		return
	case imv1.CommandType_CMD_MSG_ACK, imv1.CommandType_CMD_TYPING_STATUS_REQ:
		// No response is defined for these, not even an error.
		switch {
		case !sess.authed.Load():
			s.countUnauthed(sess)
		case f.Command == imv1.CommandType_CMD_TYPING_STATUS_REQ:
			s.handleTyping(sess, f)
		default:
			s.handleMsgAck(sess, f)
		}
		return
	}
	if !sess.authed.Load() {
		s.respondError(sess, f, errorf(CodeUnauthenticated, ErrUnauthenticated, "authenticate first"))
		s.countUnauthed(sess)
		return
	}
	switch f.Command {
	case imv1.CommandType_CMD_SEND_MSG_REQ:
		s.handleSend(sess, f)
	case imv1.CommandType_CMD_BATCH_SYNC_REQ:
		s.handleBatchSync(sess, f)
		// From the frame's read (its time is at hand) to the response
		// being queued: a sync is store reads, one more clock read is
		// nothing beside them.
		s.stats.batchSyncs.observeSince(syncBounds, sess.lastRead.Load(), time.Now())
	case imv1.CommandType_CMD_SYNC_RANGE_REQ:
		s.handleSyncRange(sess, f)
		s.stats.syncRanges.observeSince(syncBounds, sess.lastRead.Load(), time.Now())
	case imv1.CommandType_CMD_ONLINE_STATUS_REQ:
		s.handleOnlineStatus(sess, f)
	case imv1.CommandType_CMD_READ_RECEIPT_REQ:
		s.handleReadReceipt(sess, f)
	case imv1.CommandType_CMD_READ_STATE_REQ:
		s.handleReadState(sess, f)
	case imv1.CommandType_CMD_READ_BY_REQ:
		s.handleReadBy(sess, f)
	case imv1.CommandType_CMD_REVOKE_MSG_REQ:
		s.handleRecall(sess, f)
	case imv1.CommandType_CMD_CONVERSATION_LIST_REQ:
		s.handleConversationList(sess, f)
	case imv1.CommandType_CMD_CONVERSATION_SETTINGS_REQ:
		s.handleConversationSettings(sess, f)
	case imv1.CommandType_CMD_FRIEND_SUBSCRIBE_REQ:
		s.handleFriendSubscribe(sess, f)
	case imv1.CommandType_CMD_GROUP_SUBSCRIBE_REQ:
		s.handleGroupSubscribe(sess, f)
	case imv1.CommandType_CMD_CONNECT_REQ:
		var req imv1.ConnectRequest
		if err := proto.Unmarshal(f.Body, &req); err != nil {
			s.respondError(sess, f, errMalformed(err))
			return
		}
		sess.respond(imv1.CommandType_CMD_CONNECT_RSP, f.Sequence, &imv1.ConnectResponse{
			ServerTime: time.Now().UnixMilli(),
			SessionId:  sess.id,
		})
	default:
		if _, known := imv1.CommandType_name[int32(f.Command)]; !known {
			s.respondError(sess, f, &Error{Code: CodeInvalidArgument, Msg: fmt.Sprintf("unknown command %d", f.Command), Err: errors.Join(ErrInvalidArgument, errBadRequest)})
			return
		}
		s.respondError(sess, f, errorf(CodeUnknown, ErrUnsupported, "command %s is not supported by this server", f.Command))
	}
}

func errMalformed(err error) *Error {
	return &Error{Code: CodeInvalidArgument, Msg: "malformed request body", Err: errors.Join(ErrInvalidArgument, errBadRequest, err)}
}

// Limits on requests no correct client sends. A correct client
// authenticates first, at most after a heartbeat or a request it raced
// against its own AuthRequest; and it never sends a command number the
// protocol lacks or a body that does not decode, though a client newer than
// the server might now and then. Refusals a correct client can meet
// (PERMISSION_DENIED, SEND_TOO_FAST, an unsupported known command) never
// count.
const (
	// maxUnauthedRequests is how many requests other than AuthRequest and
	// heartbeats a connection may send before authenticating; the one
	// after them is answered and the connection closed.
	maxUnauthedRequests = 3
	// maxBadRequests is how many unknown commands and malformed bodies a
	// connection may send; the one after them is answered and the
	// connection closed.
	maxBadRequests = 32
)

// errBadRequest marks the errors that count towards maxBadRequests.
var errBadRequest = errors.New("im: unknown command or malformed body")

// countUnauthed counts a request sent before authentication and ends the
// connection with ErrProtocolAbuse past maxUnauthedRequests.
func (s *Server) countUnauthed(sess *session) {
	if sess.unauthed.Add(1) > maxUnauthedRequests {
		s.abuse(sess, "requests before authentication")
	}
}

// abuse ends sess with ErrProtocolAbuse once what it was told is written.
func (s *Server) abuse(sess *session, what string) {
	sess.logger().Info("closing connection", "reason", what, "remote", sess.remote)
	sess.setReason(fmt.Errorf("%w: %s", ErrProtocolAbuse, what))
	sess.closeAfterFlush()
}

func (s *Server) handleAuth(sess *session, f Frame) {
	var req imv1.AuthRequest
	err := proto.Unmarshal(f.Body, &req)
	if err != nil {
		err = errMalformed(err)
	} else {
		err = s.authenticate(sess, req.UserId, req.Token, req.Platform)
	}
	if err != nil {
		s.respondError(sess, f, err)
		// A failed authentication ends the connection, as the SDK expects;
		// the response is flushed first so the client learns why.
		sess.setReason(errors.Join(ErrAuthFailed, err))
		sess.closeAfterFlush()
		return
	}
	rsp := &imv1.AuthResponse{UserId: sess.user}
	if convs, err := s.userConversations(sess.ctx, sess.user); err == nil {
		for _, c := range convs {
			rsp.MaxSeq = max(rsp.MaxSeq, c.MaxSeq)
		}
	} else {
		sess.logger().Warn("auth: list conversations", "err", err)
	}
	sess.respond(imv1.CommandType_CMD_AUTH_RSP, f.Sequence, rsp)
}

// respondError answers request f with err, in f's own response type where
// the protocol has one (so SDK callbacks waiting for it fire), else in an
// ErrorResponse frame.
func (s *Server) respondError(sess *session, f Frame, err error) {
	code, msg := wireError(err)
	if f.Command == imv1.CommandType_CMD_SEND_MSG_REQ {
		s.stats.refusedWith(code)
	}
	var e *Error
	switch {
	case errors.Is(err, ErrCorrupt):
		s.corrupt(sess.logger(), f.Command.String(), err)
	case !errors.As(err, &e) && code == imv1.ErrorCode_ERR_UNKNOWN:
		sess.logger().Error("request failed", "cmd", f.Command, "err", err)
	}
	var rsp proto.Message
	cmd := f.Command + 1
	switch f.Command {
	case imv1.CommandType_CMD_AUTH_REQ:
		rsp = &imv1.AuthResponse{ErrorCode: code, ErrorMsg: msg}
	case imv1.CommandType_CMD_CONNECT_REQ:
		rsp = &imv1.ConnectResponse{ErrorCode: code, ErrorMsg: msg}
	case imv1.CommandType_CMD_SEND_MSG_REQ:
		r := &imv1.SendMessageResponse{ErrorCode: code, ErrorMsg: msg}
		var req imv1.SendMessageRequest
		if proto.Unmarshal(f.Body, &req) == nil {
			r.ClientMsgId = req.GetMessage().GetClientMsgId() // the SDK matches on it
		}
		rsp = r
	case imv1.CommandType_CMD_REVOKE_MSG_REQ:
		rsp = &imv1.RevokeMessageResponse{ErrorCode: code, ErrorMsg: msg}
	case imv1.CommandType_CMD_BATCH_SYNC_REQ:
		rsp = &imv1.BatchSyncResponse{ErrorCode: code, ErrorMsg: msg, ServerTime: time.Now().UnixMilli()}
	case imv1.CommandType_CMD_SYNC_RANGE_REQ:
		r := &imv1.SyncRangeResponse{ErrorCode: code, ErrorMsg: msg}
		var req imv1.SyncRangeRequest
		if proto.Unmarshal(f.Body, &req) == nil {
			r.RequestId, r.ConversationId = req.RequestId, req.ConversationId
		}
		rsp = r
	case imv1.CommandType_CMD_READ_RECEIPT_REQ:
		rsp = &imv1.ReadReceiptResponse{ErrorCode: code, ErrorMsg: msg}
	case imv1.CommandType_CMD_ONLINE_STATUS_REQ:
		rsp = &imv1.OnlineStatusResponse{ErrorCode: code, ErrorMsg: msg, ServerTime: time.Now().UnixMilli()}
	case imv1.CommandType_CMD_READ_STATE_REQ:
		rsp = &imv1.ReadStateResponse{ErrorCode: code, ErrorMsg: msg}
	case imv1.CommandType_CMD_READ_BY_REQ:
		rsp = &imv1.ReadByResponse{ErrorCode: code, ErrorMsg: msg}
	case imv1.CommandType_CMD_CONVERSATION_LIST_REQ:
		rsp = &imv1.ConversationListResponse{ErrorCode: code, ErrorMsg: msg}
	case imv1.CommandType_CMD_CONVERSATION_SETTINGS_REQ:
		rsp = &imv1.ConversationSettingsResponse{ErrorCode: code, ErrorMsg: msg}
	case imv1.CommandType_CMD_FRIEND_SUBSCRIBE_REQ:
		rsp = &imv1.FriendSubscribeResponse{ErrorCode: code, ErrorMsg: msg}
	case imv1.CommandType_CMD_GROUP_SUBSCRIBE_REQ:
		rsp = &imv1.GroupSubscribeResponse{ErrorCode: code, ErrorMsg: msg}
	case imv1.CommandType_CMD_DISCONNECT_REQ, imv1.CommandType_CMD_REAUTH_REQ:
		// Requests the SDK knows, whose response command it knows too:
		// answer there, because its TCP decoder refuses command values it
		// does not know (such as CMD_ERROR_RSP). ErrorResponse shares
		// fields 1 and 2 with every response type (and leaves out 3,
		// which means something else in those).
		rsp = &imv1.ErrorResponse{ErrorCode: code, ErrorMsg: msg}
	default:
		cmd = imv1.CommandType_CMD_ERROR_RSP
		rsp = &imv1.ErrorResponse{ErrorCode: code, ErrorMsg: msg, Command: f.Command}
	}
	sess.respond(cmd, f.Sequence, rsp)
	if errors.Is(err, errBadRequest) && sess.badRequests.Add(1) > maxBadRequests {
		s.abuse(sess, "unknown commands or malformed bodies")
	}
}

// corrupt logs and counts a Store call that found stored data damaged
// (ErrCorrupt): the operator must act, since the data is lost to the
// clients until restored from a backup.
func (s *Server) corrupt(log *slog.Logger, what string, err error) {
	s.stats.corruptReads.Add(1)
	var ce *CorruptError
	conv, seq := "", int64(0)
	if errors.As(err, &ce) {
		conv, seq = ce.Conversation, ce.Seq
	}
	log.Error("stored data failed its integrity check; restore the data dir from a backup, and run imserver check on it", "cmd", what, "conv", conv, "seq", seq, "err", err)
}

// wireError is the protocol error code and message a client is shown for
// a non-nil err.
func wireError(err error) (imv1.ErrorCode, string) {
	c, msg := codeOf(err)
	return wireCode(c), msg
}

// wireCode is the one place where the core's error codes become the
// protocol's. Several sentinels share a code on the wire, and the client
// (wire.SentinelOf) maps each code back to one of them.
func wireCode(c Code) imv1.ErrorCode {
	switch c {
	case CodeInvalidArgument:
		return imv1.ErrorCode_ERR_INVALID_PARAM
	case CodeUnauthenticated:
		return imv1.ErrorCode_ERR_AUTH_FAILED
	case CodeTokenExpired:
		return imv1.ErrorCode_ERR_TOKEN_EXPIRED
	case CodePermissionDenied:
		return imv1.ErrorCode_ERR_PERMISSION_DENIED
	case CodeUserNotFound:
		return imv1.ErrorCode_ERR_USER_NOT_EXIST
	case CodeNotFound:
		return imv1.ErrorCode_ERR_CONVERSATION_NOT_EXIST
	case CodeTooLarge:
		return imv1.ErrorCode_ERR_MESSAGE_TOO_LARGE
	case CodeRateLimited:
		return imv1.ErrorCode_ERR_SEND_TOO_FAST
	}
	return imv1.ErrorCode_ERR_UNKNOWN
}

// handleTyping relays a typing indicator to the other member of a
// one-to-one conversation. Typing is ephemeral: nothing is stored, and it
// has no response. It is a signal: limited per sender (Config.SignalRate)
// and droppable at the recipient.
func (s *Server) handleTyping(sess *session, f Frame) {
	var req imv1.TypingStatusRequest
	if proto.Unmarshal(f.Body, &req) != nil || (req.Status != 0 && req.Status != 1) {
		return
	}
	peer, ok := peerOf(req.ConversationId, sess.user)
	if !ok {
		return
	}
	if !s.signals.allow(sess.user, time.Now()) {
		s.stats.signalsLimited.Add(1)
		return
	}
	body, err := proto.Marshal(&imv1.TypingStatusPush{ConversationId: req.ConversationId, UserId: sess.user, Status: req.Status})
	if err != nil {
		return
	}
	f = Frame{Command: imv1.CommandType_CMD_TYPING_STATUS_PUSH, Body: body}
	key := signalKey{cmd: f.Command, from: sess.user, conv: req.ConversationId}
	s.hub.each(peer, func(p *session) {
		if p != sess {
			p.enqueueSignal(f, key)
		}
	})
}
