package im

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"google.golang.org/protobuf/proto"
)

// This file holds group management beyond membership: mutes, join
// requests (JoinApproval) and paged listings. As everywhere in groups.go,
// a change is decided on the stored group and stored on condition that
// the group is still at the version decided on (changeGroup).

// ErrJoinPending: JoinGroup stored a request to join a group whose
// JoinPolicy is JoinApproval; the user becomes a member when an admin
// approves it (ApproveJoin).
var ErrJoinPending = errors.New("im: join request pending approval")

// JoinResult is what RequestJoin did.
type JoinResult struct {
	// Group is the group as the user may see it.
	Group Group
	// Pending: the group approves who joins, so a request was stored for
	// its admins to answer; the user is not a member yet. Otherwise she
	// is one (she joined, or was one already).
	Pending bool
}

// Group listing pages: a limit of 0 means defaultGroupPage, more than
// maxGroupPage is refused.
const (
	defaultGroupPage = 50
	maxGroupPage     = 200
)

// errMuted is the refusal of a send by a muted member.
func errMuted() *Error {
	return errorf(CodePermissionDenied, ErrMuted, "you are muted in this group")
}

// joinRequests returns the store's GroupJoinRequestStore, if it has one.
func (s *Server) joinRequests() (GroupJoinRequestStore, bool) {
	js, ok := s.store.(GroupJoinRequestStore)
	return js, ok
}

// checkJoinPolicy refuses JoinApproval on a server whose store keeps no
// join requests.
func (s *Server) checkJoinPolicy(p JoinPolicy) error {
	if _, ok := s.joinRequests(); p == JoinApproval && !ok {
		return &Error{Code: CodeInvalidArgument, Msg: "this server's store keeps no join requests, so a group cannot approve who joins", Err: errors.Join(ErrInvalidArgument, ErrUnsupported)}
	}
	return nil
}

// RequestJoin asks, for userID, to join group id. An open group
// (JoinOpen) she joins at once, as with JoinGroup. A group with
// JoinApproval stores her request, with message (at most
// MaxFriendMessageLen characters, may be empty), replacing an earlier one,
// pushes it (GROUP_JOIN_REQUEST_PUSH) to the group's admins and owner
// connected to this Server, and answers Pending; an admin answers it with
// ApproveJoin or RejectJoin. A full group refuses the request
// (ErrLimitExceeded), as does one with MaxGroupJoinRequests pending. An
// invite-only group answers as a missing one. A member gets the group,
// not Pending.
func (s *Server) RequestJoin(ctx context.Context, id, userID, message string) (JoinResult, error) {
	if !validID(userID) {
		return JoinResult{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "user id is not valid")
	}
	if err := ValidateFriendText("message", message, MaxFriendMessageLen); err != nil {
		return JoinResult{}, err
	}
	g, members, err := s.groupState(ctx, id)
	if err != nil {
		return JoinResult{}, err
	}
	switch {
	case roleOf(members, userID) != 0:
		return JoinResult{Group: g}, nil
	case g.JoinPolicy == JoinInviteOnly:
		return JoinResult{}, errNoGroup()
	case g.JoinPolicy == JoinOpen:
		g, err := s.join(ctx, id, userID)
		return JoinResult{Group: g}, err
	}
	js, ok := s.joinRequests()
	if !ok {
		return JoinResult{}, s.checkJoinPolicy(JoinApproval)
	}
	if len(members)+1 > s.cfg.MaxGroupMembers {
		return JoinResult{}, errGroupFull(s.cfg.MaxGroupMembers)
	}
	r := GroupJoinRequest{GroupID: id, UserID: userID, Message: message, CreatedAt: time.Now().Truncate(time.Millisecond)}
	n, err := s.putJoinRequest(ctx, js, r)
	switch {
	case errors.Is(err, ErrConflict):
		// She became a member meanwhile.
		return JoinResult{Group: g}, nil
	case errors.Is(err, ErrNotFound):
		return JoinResult{}, errNoGroup()
	case err != nil:
		return JoinResult{}, err
	}
	if n > MaxGroupJoinRequests {
		// Taken back: the group has as many pending as it may. A request
		// that only replaced an earlier one never gets here, since the
		// count was at most the limit before it.
		if err := s.deleteJoinRequest(ctx, js, id, userID); err != nil && !errors.Is(err, ErrNotFound) {
			return JoinResult{}, err
		}
		return JoinResult{}, errorf(CodeInvalidArgument, ErrLimitExceeded, "the group has %d join requests waiting for an answer; try again later", MaxGroupJoinRequests)
	}
	s.pushJoinRequest(r, members)
	return JoinResult{Group: g, Pending: true}, nil
}

func (s *Server) putJoinRequest(ctx context.Context, js GroupJoinRequestStore, r GroupJoinRequest) (_ int, err error) {
	defer s.recoverStore("PutJoinRequest", &err)
	return js.PutJoinRequest(ctx, r)
}

func (s *Server) deleteJoinRequest(ctx context.Context, js GroupJoinRequestStore, id, userID string) (err error) {
	defer s.recoverStore("DeleteJoinRequest", &err)
	return js.DeleteJoinRequest(ctx, id, userID)
}

// pushJoinRequest tells the admins and the owner among members, on their
// connections to this Server that subscribed to group events, of r.
func (s *Server) pushJoinRequest(r GroupJoinRequest, members []GroupMember) {
	body, err := proto.Marshal(&imv1.GroupJoinRequestPush{
		GroupId:    r.GroupID,
		UserId:     r.UserID,
		Message:    r.Message,
		CreateTime: r.CreatedAt.UnixMilli(),
	})
	if err != nil {
		s.log.Error("marshal join request push", "conv", GroupConversationID(r.GroupID), "err", err)
		return
	}
	f := Frame{Command: imv1.CommandType_CMD_GROUP_JOIN_REQUEST_PUSH, Body: body}
	for _, m := range members {
		if m.Role >= RoleAdmin {
			s.pushGroupEvent(m.UserID, f)
		}
	}
}

// pushGroupEvent enqueues f on userID's connections that subscribed to
// group events: only they know the extension's commands.
func (s *Server) pushGroupEvent(userID string, f Frame) {
	s.hub.each(userID, func(sess *session) {
		if sess.groupEvents.Load() {
			sess.enqueue(f)
		}
	})
}

// handleGroupSubscribe answers GROUP_SUBSCRIBE_REQ.
func (s *Server) handleGroupSubscribe(sess *session, f Frame) {
	var req imv1.GroupSubscribeRequest
	if err := proto.Unmarshal(f.Body, &req); err != nil {
		s.respondError(sess, f, errMalformed(err))
		return
	}
	sess.groupEvents.Store(req.Subscribe)
	sess.respond(imv1.CommandType_CMD_GROUP_SUBSCRIBE_RSP, f.Sequence, &imv1.GroupSubscribeResponse{Subscribed: req.Subscribe})
}

// JoinRequests returns the pending requests to join group id, oldest
// first, for actorID, an admin or the owner. A server whose store keeps
// no join requests has none.
func (s *Server) JoinRequests(ctx context.Context, id, actorID string) (_ []GroupJoinRequest, err error) {
	if _, _, err := s.adminState(ctx, id, actorID, "only admins see join requests"); err != nil {
		return nil, err
	}
	js, ok := s.joinRequests()
	if !ok {
		return []GroupJoinRequest{}, nil
	}
	defer s.recoverStore("JoinRequests", &err)
	return js.JoinRequests(ctx, id)
}

// adminState reads group id for a call only its admins and owner make:
// a non-member of an invite-only group gets the answer for a missing
// group, anyone else below RoleAdmin a refusal saying denied.
func (s *Server) adminState(ctx context.Context, id, actorID, denied string) (Group, []GroupMember, error) {
	g, members, err := s.groupState(ctx, id)
	if err != nil {
		return Group{}, nil, err
	}
	if hidden(g, members, actorID) {
		return Group{}, nil, errNoGroup()
	}
	if roleOf(members, actorID) < RoleAdmin {
		return Group{}, nil, errorf(CodePermissionDenied, ErrPermissionDenied, "%s", denied)
	}
	return g, members, nil
}

func errNoJoinRequest() *Error {
	return errorf(CodeNotFound, ErrNotFound, "there is no pending request of this user to join the group")
}

// ApproveJoin makes userID, whose request to join group id is pending, a
// member, on behalf of actorID, an admin or the owner: one conditional
// change, like any join, so that concurrent approvals never take the group
// past Config.MaxGroupMembers (ErrLimitExceeded, and the request stays).
// The members, userID among them, get a member_joined notice whose
// operator is actorID; the request is removed in the same commit. A user
// who is a member already is left as she is.
func (s *Server) ApproveJoin(ctx context.Context, id, actorID, userID string) error {
	if !validID(userID) {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "user id is not valid")
	}
	_, err := s.changeGroup(ctx, id, func(g Group, members []GroupMember) (*groupEdit, error) {
		if hidden(g, members, actorID) {
			return nil, errNoGroup()
		}
		if roleOf(members, actorID) < RoleAdmin {
			return nil, errorf(CodePermissionDenied, ErrPermissionDenied, "only admins approve join requests")
		}
		if roleOf(members, userID) != 0 {
			return nil, nil
		}
		js, ok := s.joinRequests()
		if !ok {
			return nil, errNoJoinRequest()
		}
		if err := s.checkJoinRequest(ctx, js, id, userID); err != nil {
			return nil, err
		}
		if len(members)+1 > s.cfg.MaxGroupMembers {
			return nil, errGroupFull(s.cfg.MaxGroupMembers)
		}
		return &groupEdit{
			change: GroupChange{Put: []GroupMember{{UserID: userID, Role: RoleMember, JoinedAt: time.Now().Truncate(time.Microsecond)}}},
			notice: GroupNotice{Type: GroupNoticeJoined, Operator: actorID, UserIDs: []string{userID}},
		}, nil
	})
	return err
}

func (s *Server) checkJoinRequest(ctx context.Context, js GroupJoinRequestStore, id, userID string) (err error) {
	defer s.recoverStore("JoinRequest", &err)
	_, err = js.JoinRequest(ctx, id, userID)
	if errors.Is(err, ErrNotFound) {
		return errNoJoinRequest()
	}
	return err
}

// RejectJoin removes userID's pending request to join group id, on behalf
// of actorID, an admin or the owner, and tells userID's connections to
// this Server (GROUP_JOIN_REJECTED_PUSH).
func (s *Server) RejectJoin(ctx context.Context, id, actorID, userID string) (err error) {
	if !validID(userID) {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "user id is not valid")
	}
	if _, _, err := s.adminState(ctx, id, actorID, "only admins reject join requests"); err != nil {
		return err
	}
	js, ok := s.joinRequests()
	if !ok {
		return errNoJoinRequest()
	}
	if err := s.deleteJoinRequest(ctx, js, id, userID); errors.Is(err, ErrNotFound) {
		return errNoJoinRequest()
	} else if err != nil {
		return err
	}
	body, err := proto.Marshal(&imv1.GroupJoinRejectedPush{GroupId: id})
	if err != nil {
		s.log.Error("marshal join rejection push", "conv", GroupConversationID(id), "err", err)
		return nil
	}
	f := Frame{Command: imv1.CommandType_CMD_GROUP_JOIN_REJECTED_PUSH, Body: body}
	s.pushGroupEvent(userID, f)
	return nil
}

// MuteGroup lets, with on, only the admins and the owner send to group id
// (Group.MuteAll), or, without, every member again, on behalf of actorID,
// an admin or the owner. The members get a group_muted notice.
func (s *Server) MuteGroup(ctx context.Context, id, actorID string, on bool) error {
	_, err := s.UpdateGroup(ctx, id, actorID, GroupUpdate{MuteAll: &on})
	return err
}

// MuteMember keeps userID, a member of group id, from sending to it until
// until, on behalf of actorID, who must outrank her as for KickFromGroup
// (the owner mutes admins and members, an admin members). The zero until
// unmutes her; any other must lie in the future. The members get a
// member_muted notice carrying until. The Store refuses her messages
// until then (GroupMember.MutedUntil), whichever server they go through.
func (s *Server) MuteMember(ctx context.Context, id, actorID, userID string, until time.Time) error {
	if !validID(userID) {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "user id is not valid")
	}
	now := time.Now()
	if !until.IsZero() && (!until.After(now) || until.Year() > 9999) {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "a mute must end in the future (and before the year 10000); the zero time unmutes")
	}
	until = until.Truncate(time.Millisecond)
	_, err := s.changeGroup(ctx, id, func(g Group, members []GroupMember) (*groupEdit, error) {
		if hidden(g, members, actorID) {
			return nil, errNoGroup()
		}
		role := roleOf(members, actorID)
		if role < RoleAdmin {
			return nil, errorf(CodePermissionDenied, ErrPermissionDenied, "only admins mute members")
		}
		i := slices.IndexFunc(members, func(m GroupMember) bool { return m.UserID == userID })
		switch {
		case userID == actorID:
			return nil, errorf(CodeInvalidArgument, ErrInvalidArgument, "you cannot mute yourself")
		case i < 0:
			return nil, errNotGroupMember()
		case members[i].Role >= role:
			return nil, errorf(CodePermissionDenied, ErrPermissionDenied, "%s cannot be muted by a member of equal or lower rank", userID)
		}
		m := members[i]
		current := m.MutedUntil
		if !current.After(time.Now()) {
			current = time.Time{}
		}
		if current.Equal(until) {
			return nil, nil
		}
		m.MutedUntil = until
		return &groupEdit{
			change: GroupChange{Put: []GroupMember{m}},
			notice: GroupNotice{Type: GroupNoticeMemberMuted, Operator: actorID, UserIDs: []string{userID}, MutedUntil: unixMilli(until)},
		}, nil
	})
	return err
}

// UserGroupsPage returns a page of the groups userID is a member of,
// ordered by id: at most limit (1 to 200; 0 means 50) whose ids follow
// cursor ("" for the first page), and the cursor of the next page, ""
// after the last.
func (s *Server) UserGroupsPage(ctx context.Context, userID, cursor string, limit int) (_ []Group, next string, err error) {
	if limit, err = pageLimit(cursor, limit); err != nil {
		return nil, "", err
	}
	defer s.recoverStore("UserGroups", &err)
	ids, err := s.store.UserGroups(ctx, userID)
	if err != nil {
		return nil, "", err
	}
	ids, next = page(ids, func(id string) string { return id }, cursor, limit)
	out := make([]Group, 0, len(ids))
	for _, id := range ids {
		g, err := s.store.Group(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue // dismissed meanwhile
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, g)
	}
	return out, next, nil
}

// GroupMembersPage returns a page of the members of group id, for userID,
// who must be one of them (as for GroupMembers), ordered by user id: at
// most limit (1 to 200; 0 means 50) whose ids follow cursor ("" for the
// first page), and the cursor of the next page, "" after the last.
func (s *Server) GroupMembersPage(ctx context.Context, id, userID, cursor string, limit int) ([]GroupMember, string, error) {
	limit, err := pageLimit(cursor, limit)
	if err != nil {
		return nil, "", err
	}
	members, err := s.GroupMembers(ctx, id, userID)
	if err != nil {
		return nil, "", err
	}
	out, next := page(members, func(m GroupMember) string { return m.UserID }, cursor, limit)
	return out, next, nil
}

// pageLimit checks a page's cursor and limit and returns the limit to use.
func pageLimit(cursor string, limit int) (int, error) {
	if cursor != "" && !validID(cursor) {
		return 0, errorf(CodeInvalidArgument, ErrInvalidArgument, "cursor is not one the server gave")
	}
	switch {
	case limit == 0:
		return defaultGroupPage, nil
	case limit < 0 || limit > maxGroupPage:
		return 0, errorf(CodeInvalidArgument, ErrInvalidArgument, "limit must be 1 to %d (0 means %d)", maxGroupPage, defaultGroupPage)
	}
	return limit, nil
}

// page sorts items by key and returns those after cursor, at most limit,
// with the cursor of the next page ("" if there is none).
func page[T any](items []T, key func(T) string, cursor string, limit int) ([]T, string) {
	items = slices.Clone(items)
	slices.SortFunc(items, func(a, b T) int { return strings.Compare(key(a), key(b)) })
	i, _ := slices.BinarySearchFunc(items, cursor, func(x T, c string) int { return strings.Compare(key(x), c) })
	if i < len(items) && key(items[i]) == cursor {
		i++
	}
	items = items[i:]
	if len(items) <= limit {
		return items, ""
	}
	return items[:limit], key(items[limit-1])
}
