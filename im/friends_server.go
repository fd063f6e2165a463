package im

import (
	"context"
	"errors"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"google.golang.org/protobuf/proto"
)

// MaxPendingFriendRequests bounds the requests one user may have pending
// (asked, not yet answered). A request past it fails with ErrLimitExceeded
// until some are answered or cancelled. Servers sharing a Store check it
// each on its own read, so two requests at the same moment on two servers
// may both pass it by one.
const MaxPendingFriendRequests = 200

// errNoFriends refuses the friend calls when the Store has no FriendStore.
func errNoFriends() *Error {
	return errorf(CodeUnknown, ErrUnsupported, "friends are not supported by this server's store")
}

// errBlocked refuses what a block forbids. It does not say who blocks whom.
func errBlocked(what string) *Error {
	return errorf(CodePermissionDenied, ErrPermissionDenied, "%s", what)
}

// friendPair checks the store and the ids of a friend call.
func (s *Server) friendPair(userID, otherID string) error {
	if s.friends == nil {
		return errNoFriends()
	}
	return ValidateFriendPair(userID, otherID)
}

// checkUserExists refuses a user the UserDirectory does not know, when the
// Server has one.
func (s *Server) checkUserExists(ctx context.Context, userID string) error {
	if s.cfg.Users == nil {
		return nil
	}
	ok, err := s.cfg.Users.UserExists(ctx, userID)
	if err != nil {
		return err
	}
	if !ok {
		return errorf(CodeUserNotFound, ErrNotFound, "user does not exist")
	}
	return nil
}

// RequestFriend asks toID, as userID, to be friends, with an optional
// message (at most MaxFriendMessageLen characters of printable text). If
// toID had asked userID already, the two become friends at once
// (FriendAccepted); if they are friends already nothing changes
// (FriendAlready). The subscribed sessions of both users get a
// FRIEND_EVENT_PUSH.
//
// Errors: ErrInvalidArgument for a bad id, a bad message or toID being
// userID; ErrNotFound (CodeUserNotFound) for a toID the UserDirectory does
// not know; ErrPermissionDenied when either blocks the other;
// ErrRateLimited past Config.FriendRequestRate; ErrLimitExceeded past
// MaxPendingFriendRequests; ErrUnsupported without a FriendStore.
func (s *Server) RequestFriend(ctx context.Context, userID, toID, message string) (FriendOutcome, error) {
	if err := s.friendPair(userID, toID); err != nil {
		return 0, err
	}
	if err := ValidateFriendText("message", message, MaxFriendMessageLen); err != nil {
		return 0, err
	}
	if err := s.checkUserExists(ctx, toID); err != nil {
		return 0, err
	}
	now := time.Now()
	if !s.friendRequests.allow(userID, now) {
		return 0, errorf(CodeRateLimited, ErrRateLimited, "sending friend requests too fast")
	}
	if err := s.checkPending(ctx, userID, toID); err != nil {
		return 0, err
	}
	at := now.Truncate(time.Millisecond)
	o, err := storeFriendCall(s, "RequestFriend", func() (FriendOutcome, error) {
		return s.friends.RequestFriend(ctx, FriendRequest{From: userID, To: toID, Message: message, CreatedAt: at})
	})
	if errors.Is(err, ErrPermissionDenied) {
		return 0, errBlocked("you cannot send a friend request to this user")
	}
	if err != nil {
		return 0, err
	}
	switch o {
	case FriendRequested:
		s.pushFriendEvent(imv1.FriendEventType_FRIEND_EVENT_REQUEST, userID, toID, message, at, true)
	case FriendAccepted:
		s.relations.invalidate(userID, toID)
		s.pushFriendEvent(imv1.FriendEventType_FRIEND_EVENT_ACCEPTED, userID, toID, "", at, true)
	}
	return o, nil
}

// checkPending refuses a new request from userID past
// MaxPendingFriendRequests; one that replaces her request to toID is not
// new.
func (s *Server) checkPending(ctx context.Context, userID, toID string) error {
	_, out, err := s.storeFriendRequests(ctx, userID)
	if err != nil {
		return err
	}
	if len(out) < MaxPendingFriendRequests {
		return nil
	}
	for _, r := range out {
		if r.To == toID {
			return nil
		}
	}
	return errorf(CodeInvalidArgument, ErrLimitExceeded, "at most %d friend requests may wait for an answer; cancel some first", MaxPendingFriendRequests)
}

// AcceptFriend accepts, as userID, fromID's pending request, and returns
// userID's side of the new friendship. The subscribed sessions of both
// users get a FRIEND_EVENT_PUSH. ErrNotFound (CodeNotFound) if fromID has
// no pending request to userID.
func (s *Server) AcceptFriend(ctx context.Context, userID, fromID string) (Friend, error) {
	if err := s.friendPair(userID, fromID); err != nil {
		return Friend{}, err
	}
	at := time.Now().Truncate(time.Millisecond)
	f, err := storeFriendCall(s, "AcceptFriend", func() (Friend, error) {
		return s.friends.AcceptFriend(ctx, userID, fromID, at)
	})
	if err != nil {
		return Friend{}, notFound(err, "no friend request from this user")
	}
	s.relations.invalidate(userID, fromID)
	s.pushFriendEvent(imv1.FriendEventType_FRIEND_EVENT_ACCEPTED, userID, fromID, "", at, true)
	return f, nil
}

// RejectFriend rejects, as userID, fromID's pending request. The
// subscribed sessions of both users get a FRIEND_EVENT_PUSH. ErrNotFound
// if there is none.
func (s *Server) RejectFriend(ctx context.Context, userID, fromID string) error {
	if err := s.friendPair(userID, fromID); err != nil {
		return err
	}
	_, err := storeFriendCall(s, "RejectFriend", func() (struct{}, error) {
		return struct{}{}, s.friends.RejectFriend(ctx, userID, fromID)
	})
	if err != nil {
		return notFound(err, "no friend request from this user")
	}
	s.pushFriendEvent(imv1.FriendEventType_FRIEND_EVENT_REJECTED, fromID, userID, "", time.Now(), true)
	return nil
}

// CancelFriendRequest withdraws userID's pending request to toID. The
// subscribed sessions of both users get a FRIEND_EVENT_PUSH. ErrNotFound
// if there is none.
func (s *Server) CancelFriendRequest(ctx context.Context, userID, toID string) error {
	if err := s.friendPair(userID, toID); err != nil {
		return err
	}
	_, err := storeFriendCall(s, "CancelFriendRequest", func() (struct{}, error) {
		return struct{}{}, s.friends.CancelFriendRequest(ctx, userID, toID)
	})
	if err != nil {
		return notFound(err, "no friend request to this user")
	}
	s.pushFriendEvent(imv1.FriendEventType_FRIEND_EVENT_CANCELLED, userID, toID, "", time.Now(), true)
	return nil
}

// DeleteFriend ends the friendship of userID and friendID, for both. The
// subscribed sessions of both users get a FRIEND_EVENT_PUSH. ErrNotFound
// if they are not friends.
func (s *Server) DeleteFriend(ctx context.Context, userID, friendID string) error {
	if err := s.friendPair(userID, friendID); err != nil {
		return err
	}
	_, err := storeFriendCall(s, "DeleteFriend", func() (struct{}, error) {
		return struct{}{}, s.friends.DeleteFriend(ctx, userID, friendID)
	})
	if err != nil {
		return notFound(err, "not friends with this user")
	}
	s.relations.invalidate(userID, friendID)
	s.pushFriendEvent(imv1.FriendEventType_FRIEND_EVENT_DELETED, userID, friendID, "", time.Now(), true)
	return nil
}

// SetFriendRemark sets what userID calls friendID (at most
// MaxFriendRemarkLen characters; empty clears it), which only userID sees,
// and returns userID's side. ErrNotFound if they are not friends.
func (s *Server) SetFriendRemark(ctx context.Context, userID, friendID, remark string) (Friend, error) {
	if err := s.friendPair(userID, friendID); err != nil {
		return Friend{}, err
	}
	if err := ValidateFriendText("remark", remark, MaxFriendRemarkLen); err != nil {
		return Friend{}, err
	}
	f, err := storeFriendCall(s, "SetFriendRemark", func() (Friend, error) {
		return s.friends.SetFriendRemark(ctx, userID, friendID, remark)
	})
	if err != nil {
		return Friend{}, notFound(err, "not friends with this user")
	}
	return f, nil
}

// Friends returns userID's friends, ordered by FriendID.
func (s *Server) Friends(ctx context.Context, userID string) ([]Friend, error) {
	if err := s.friendUser(userID); err != nil {
		return nil, err
	}
	return storeFriendCall(s, "Friends", func() ([]Friend, error) { return s.friends.Friends(ctx, userID) })
}

// FriendRequests returns the pending requests to userID and from her, each
// oldest first.
func (s *Server) FriendRequests(ctx context.Context, userID string) (incoming, outgoing []FriendRequest, err error) {
	if err := s.friendUser(userID); err != nil {
		return nil, nil, err
	}
	return s.storeFriendRequests(ctx, userID)
}

// FriendRelation returns how userID and otherID stand to each other, read
// from the Store.
func (s *Server) FriendRelation(ctx context.Context, userID, otherID string) (Relation, error) {
	if err := s.friendPair(userID, otherID); err != nil {
		return Relation{}, err
	}
	return storeFriendCall(s, "Relation", func() (Relation, error) { return s.friends.Relation(ctx, userID, otherID) })
}

// Block makes userID block blockedID: their friendship and the requests
// between them end, and from then on neither may send the other a
// one-to-one message or a friend request, and neither sees the other's
// presence. Blocking again changes nothing. userID's subscribed sessions
// get a FRIEND_EVENT_PUSH; blockedID is told nothing.
//
// A Server enforces blocks from a cache of relations (no Store read per
// message): at once for blocks made through it, and within 2 s for those
// made through another Server sharing the Store.
func (s *Server) Block(ctx context.Context, userID, blockedID string) error {
	if err := s.friendPair(userID, blockedID); err != nil {
		return err
	}
	if err := s.checkUserExists(ctx, blockedID); err != nil {
		return err
	}
	at := time.Now().Truncate(time.Millisecond)
	_, err := storeFriendCall(s, "Block", func() (struct{}, error) {
		return struct{}{}, s.friends.Block(ctx, userID, blockedID, at)
	})
	if err != nil {
		return err
	}
	s.relations.invalidate(userID, blockedID)
	s.watchers.hideBetween(userID, blockedID)
	s.pushFriendEvent(imv1.FriendEventType_FRIEND_EVENT_BLOCKED, userID, blockedID, "", at, false)
	return nil
}

// Unblock removes userID's block of blockedID, if any; a block the other
// way stays. userID's subscribed sessions get a FRIEND_EVENT_PUSH.
func (s *Server) Unblock(ctx context.Context, userID, blockedID string) error {
	if err := s.friendPair(userID, blockedID); err != nil {
		return err
	}
	_, err := storeFriendCall(s, "Unblock", func() (struct{}, error) {
		return struct{}{}, s.friends.Unblock(ctx, userID, blockedID)
	})
	if err != nil {
		return err
	}
	s.relations.invalidate(userID, blockedID)
	s.pushFriendEvent(imv1.FriendEventType_FRIEND_EVENT_UNBLOCKED, userID, blockedID, "", time.Now(), false)
	return nil
}

// Blocks returns the users userID blocks, ordered by BlockedID.
func (s *Server) Blocks(ctx context.Context, userID string) ([]Block, error) {
	if err := s.friendUser(userID); err != nil {
		return nil, err
	}
	return storeFriendCall(s, "Blocks", func() ([]Block, error) { return s.friends.Blocks(ctx, userID) })
}

func (s *Server) friendUser(userID string) error {
	if s.friends == nil {
		return errNoFriends()
	}
	return ValidateID("user id", userID)
}

// notFound gives a Store's ErrNotFound the message the caller sees.
func notFound(err error, msg string) error {
	if errors.Is(err, ErrNotFound) && !errors.As(err, new(*Error)) {
		return errorf(CodeNotFound, ErrNotFound, "%s", msg)
	}
	return err
}

// storeFriendCall runs a FriendStore call, turning a panic into an
// internal error.
func storeFriendCall[T any](s *Server, name string, f func() (T, error)) (v T, err error) {
	defer s.recoverStore(name, &err)
	return f()
}

func (s *Server) storeFriendRequests(ctx context.Context, userID string) (in, out []FriendRequest, err error) {
	defer s.recoverStore("FriendRequests", &err)
	return s.friends.FriendRequests(ctx, userID)
}

// loadRelation reads a and b's relation for the relation cache.
func (s *Server) loadRelation(ctx context.Context, a, b string) (r Relation, err error) {
	defer s.recoverStore("Relation", &err)
	return s.friends.Relation(ctx, a, b)
}

// blocked reports whether either of a and b blocks the other, from the
// relation cache; false without a FriendStore.
func (s *Server) blocked(ctx context.Context, a, b string) (bool, error) {
	if s.friends == nil || a == b {
		return false, nil
	}
	e, err := s.relations.get(ctx, a, b, time.Now())
	return e.blocked, err
}

// pushFriendEvent tells the subscribed sessions of from (and, with both,
// of to) of a change. A hint: the lists are the truth.
func (s *Server) pushFriendEvent(typ imv1.FriendEventType, from, to, message string, at time.Time, both bool) {
	body, err := proto.Marshal(&imv1.FriendEventPush{Type: typ, FromUserId: from, ToUserId: to, Message: message, Time: at.UnixMilli()})
	if err != nil {
		s.log.Error("marshal friend event", "user", from, "err", err)
		return
	}
	f := Frame{Command: imv1.CommandType_CMD_FRIEND_EVENT_PUSH, Body: body}
	push := func(sess *session) {
		if sess.friendEvents.Load() {
			sess.enqueue(f)
		}
	}
	s.hub.each(from, push)
	if both {
		s.hub.each(to, push)
	}
}

// handleFriendSubscribe answers FRIEND_SUBSCRIBE_REQ.
func (s *Server) handleFriendSubscribe(sess *session, f Frame) {
	var req imv1.FriendSubscribeRequest
	if err := proto.Unmarshal(f.Body, &req); err != nil {
		s.respondError(sess, f, errMalformed(err))
		return
	}
	if s.friends == nil {
		s.respondError(sess, f, errNoFriends())
		return
	}
	sess.friendEvents.Store(req.Subscribe)
	sess.respond(imv1.CommandType_CMD_FRIEND_SUBSCRIBE_RSP, f.Sequence, &imv1.FriendSubscribeResponse{Subscribed: req.Subscribe})
}

// friendRequestBurst is how many friend requests a user may send at once
// before Config.FriendRequestRate applies: adding a few people found
// together is normal, a stream of requests is not.
const friendRequestBurst = 5

// checkRelation refuses a one-to-one message from sender to peer when
// either blocks the other, or, under Config.FriendsOnly, when they are
// not friends. It reads the relation cache, not the Store, except on a
// miss.
func (s *Server) checkRelation(ctx context.Context, sender, peer string) error {
	e, err := s.relations.get(ctx, sender, peer, time.Now())
	switch {
	case err != nil:
		return err
	case e.blocked:
		return errBlocked("you cannot send messages to this user")
	case s.cfg.FriendsOnly && !e.friends:
		return errBlocked("only friends may send each other messages")
	}
	return nil
}
