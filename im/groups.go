package im

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
)

// GroupSpec is what a new group is created with.
type GroupSpec struct {
	Name         string
	FaceURL      string
	Introduction string
	Notification string
	Extra        string
	// JoinPolicy's zero value is JoinOpen: anyone who has the group's id
	// may join it and read its history, and look it up. Set
	// JoinInviteOnly for a private group. (The HTTP API's create call
	// makes invite-only groups unless the request asks for an open one.)
	JoinPolicy JoinPolicy
	// History's zero value is HistoryFromJoin: a member reads the
	// group's messages from her joining on. HistoryFull shows every
	// member the whole history.
	History HistoryVisibility
}

// GroupUpdate changes some fields of a group; nil fields stay as they are.
type GroupUpdate struct {
	Name         *string
	FaceURL      *string
	Introduction *string
	Notification *string
	Extra        *string
	JoinPolicy   *JoinPolicy
	// History changes what members who joined before read from now on:
	// switching to HistoryFromJoin hides from them again what preceded
	// their joining.
	History *HistoryVisibility
	// MuteAll, if set, lets only admins and the owner send (true), or
	// every member again (false); see Group.MuteAll.
	MuteAll *bool
}

// GroupNotice is the content (JSON) of the NotificationMessage the server
// appends to a group's conversation for every change to the group, sent by
// the user who made it. Members get it like any message, pushed and by
// sync; users who left or were removed get the push of their own removal.
type GroupNotice struct {
	// Type is one of the GroupNotice... constants.
	Type     string `json:"type"`
	GroupID  string `json:"groupID"`
	Operator string `json:"operatorUserID"`
	// UserIDs are the members the change is about (joined, invited,
	// left, kicked, given a role).
	UserIDs []string `json:"userIDs,omitempty"`
	// Role is the role given, for member_role_changed. For "owner", the
	// operator, the previous owner, is an admin now.
	Role GroupRole `json:"role,omitempty"`
	// Notification is the group's announcement as it now is, for
	// group_announcement (left out when it was cleared).
	Notification string `json:"notification,omitempty"`
	// MuteAll is set when the change switched Group.MuteAll: true, only
	// admins and the owner send now; false, every member again. Always
	// set for group_muted.
	MuteAll *bool `json:"muteAll,omitempty"`
	// MutedUntil, for member_muted, is when the mute of UserIDs ends, in
	// Unix milliseconds; left out (0) when they were unmuted.
	MutedUntil int64 `json:"mutedUntil,omitempty"`
}

// GroupNotice types.
const (
	GroupNoticeCreated     = "group_created"
	GroupNoticeJoined      = "member_joined"
	GroupNoticeInvited     = "member_invited"
	GroupNoticeLeft        = "member_left"
	GroupNoticeKicked      = "member_kicked"
	GroupNoticeRoleChanged = "member_role_changed"
	GroupNoticeUpdated     = "group_updated"
	GroupNoticeDismissed   = "group_dismissed"
	// GroupNoticeAnnouncement is a group_updated that changed the
	// group's Notification, its announcement, which the notice carries
	// for clients to show.
	GroupNoticeAnnouncement = "group_announcement"
	// GroupNoticeMuted: the change switched only Group.MuteAll (MuteAll).
	GroupNoticeMuted = "group_muted"
	// GroupNoticeMemberMuted: UserIDs were muted until MutedUntil, or
	// unmuted.
	GroupNoticeMemberMuted = "member_muted"
)

// CreateGroup creates a group owned by ownerID with memberIDs as its first
// members (the owner need not be listed) and returns it. With Config.Users
// set, every member must exist (USER_NOT_EXIST otherwise).
// Config.GroupAddPolicy must allow each member but the owner, and they count
// against the owner's Config.GroupAddsPerMinute; otherwise no group is
// created. The group and
// its group_created notice are stored in one commit. The group's id is 128
// random bits (32 hex characters), which nobody can guess or derive from
// other ids. spec.JoinPolicy's zero value is JoinOpen: give JoinInviteOnly
// for a group that only its admins add members to. spec.History's zero
// value is HistoryFromJoin.
func (s *Server) CreateGroup(ctx context.Context, ownerID string, spec GroupSpec, memberIDs []string) (Group, error) {
	if !validID(ownerID) {
		return Group{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "owner id is not a valid user id")
	}
	others, err := s.newMembers(ctx, memberIDs, nil)
	if err != nil {
		return Group{}, err
	}
	others = slices.DeleteFunc(others, func(u string) bool { return u == ownerID })
	if len(others)+1 > s.cfg.MaxGroupMembers {
		return Group{}, errGroupFull(s.cfg.MaxGroupMembers)
	}
	if err := s.checkGroupAdds(ctx, ownerID, others, 0); err != nil {
		return Group{}, err
	}
	now := time.Now().Truncate(time.Microsecond)
	g := Group{
		ID:           randomID(),
		Name:         spec.Name,
		FaceURL:      spec.FaceURL,
		Introduction: spec.Introduction,
		Notification: spec.Notification,
		Extra:        spec.Extra,
		OwnerID:      ownerID,
		JoinPolicy:   spec.JoinPolicy,
		History:      spec.History,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	if err := ValidateGroup(g); err != nil {
		return Group{}, err
	}
	if err := s.checkJoinPolicy(g.JoinPolicy); err != nil {
		return Group{}, err
	}
	members := make([]GroupMember, 0, len(others)+1)
	members = append(members, GroupMember{UserID: ownerID, Role: RoleOwner, JoinedAt: now})
	for _, u := range others {
		members = append(members, GroupMember{UserID: u, Role: RoleMember, JoinedAt: now})
	}
	notice, err := s.notice(g.ID, GroupNotice{Type: GroupNoticeCreated, Operator: ownerID, UserIDs: others})
	if err != nil {
		return Group{}, err
	}
	op := &commitOp{req: notice, members: newMemberSet(Group{Version: 1}, members), group: &groupOp{id: g.ID, create: &g, members: members}}
	if _, err := s.commitAndWait(ctx, op); err != nil {
		return Group{}, err
	}
	g.MemberCount = len(members)
	g.Version = 1
	return g, nil
}

// Group returns group id as userID may see it: any user may look up a
// group that is open to joining (JoinOpen) or to requests (JoinApproval),
// but only its members an invite-only one. To anyone else such a group does not exist: the error is the
// same (ErrNotFound, "group does not exist") as for an id that names no
// group, so that asking does not tell whether it does. Every other call
// on a group by id (GroupMembers, JoinGroup, LeaveGroup, InviteToGroup,
// KickFromGroup, SetGroupRole, UpdateGroup, DismissGroup) answers a
// non-member of an invite-only group the same way.
func (s *Server) Group(ctx context.Context, id, userID string) (_ Group, err error) {
	if !validID(id) {
		return Group{}, errNoGroup()
	}
	defer s.recoverStore("Group", &err)
	g, err := s.store.Group(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Group{}, errNoGroup()
	}
	if err != nil {
		return Group{}, err
	}
	if g.JoinPolicy != JoinInviteOnly {
		return g, nil
	}
	if !validID(userID) {
		return Group{}, errNoGroup()
	}
	if _, err := s.store.GroupMember(ctx, id, userID); errors.Is(err, ErrNotFound) {
		return Group{}, errNoGroup()
	} else if err != nil {
		return Group{}, err
	}
	return g, nil
}

// GroupMembers returns the members of group id, for userID, who must be one
// of them. To a non-member an invite-only group does not exist (as for
// Group).
func (s *Server) GroupMembers(ctx context.Context, id, userID string) ([]GroupMember, error) {
	g, members, err := s.groupState(ctx, id)
	if err != nil {
		return nil, err
	}
	if roleOf(members, userID) == 0 {
		return nil, errOutsider(g)
	}
	return members, nil
}

// InspectGroup returns group id and its members as stored, for operators:
// unlike Group and GroupMembers it asks for no user and ignores who may see
// the group, so it must only be reachable by the server's operators. An id
// that names no group is ErrNotFound.
func (s *Server) InspectGroup(ctx context.Context, id string) (Group, []GroupMember, error) {
	g, members, err := s.groupState(ctx, id)
	if err != nil {
		return Group{}, nil, err
	}
	if members == nil {
		members = []GroupMember{}
	}
	return g, members, nil
}

// UserGroups returns the groups userID is a member of.
func (s *Server) UserGroups(ctx context.Context, userID string) (_ []Group, err error) {
	defer s.recoverStore("UserGroups", &err)
	ids, err := s.store.UserGroups(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]Group, 0, len(ids))
	for _, id := range ids {
		g, err := s.store.Group(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue // dismissed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// JoinGroup adds userID to group id, which must be open to joining, and
// returns the group. Joining a group one belongs to already does nothing.
// An invite-only group answers as a missing one: asking to join does not
// tell a non-member that it exists. A group with JoinApproval stores a
// request instead, as RequestJoin does with no message, and answers the
// group with an error wrapping ErrJoinPending.
func (s *Server) JoinGroup(ctx context.Context, id, userID string) (Group, error) {
	r, err := s.RequestJoin(ctx, id, userID, "")
	if err == nil && r.Pending {
		return r.Group, errorf(CodePermissionDenied, ErrJoinPending, "the group approves who joins: your request waits for an admin's answer")
	}
	return r.Group, err
}

// join adds userID to group id, which must be open to joining.
func (s *Server) join(ctx context.Context, id, userID string) (Group, error) {
	return s.changeGroup(ctx, id, func(g Group, members []GroupMember) (*groupEdit, error) {
		if roleOf(members, userID) != 0 {
			return nil, nil
		}
		if g.JoinPolicy == JoinInviteOnly {
			return nil, errNoGroup()
		}
		if g.JoinPolicy != JoinOpen {
			// Switched to JoinApproval since RequestJoin read it.
			return nil, errorf(CodeUnknown, ErrConflict, "the group changed its join policy; try again")
		}
		if len(members)+1 > s.cfg.MaxGroupMembers {
			return nil, errGroupFull(s.cfg.MaxGroupMembers)
		}
		return &groupEdit{
			change: GroupChange{Put: []GroupMember{{UserID: userID, Role: RoleMember, JoinedAt: time.Now().Truncate(time.Microsecond)}}},
			notice: GroupNotice{Type: GroupNoticeJoined, Operator: userID, UserIDs: []string{userID}},
		}, nil
	})
}

// LeaveGroup removes userID from group id. The owner cannot leave: it hands
// the group to another member first (SetGroupRole with RoleOwner), or
// dismisses it.
func (s *Server) LeaveGroup(ctx context.Context, id, userID string) error {
	_, err := s.changeGroup(ctx, id, func(g Group, members []GroupMember) (*groupEdit, error) {
		switch roleOf(members, userID) {
		case 0:
			return nil, errOutsider(g)
		case RoleOwner:
			return nil, errorf(CodePermissionDenied, ErrPermissionDenied, "the owner cannot leave the group; hand it to another member first, or dismiss it")
		}
		return &groupEdit{
			change: GroupChange{Remove: []string{userID}},
			notice: GroupNotice{Type: GroupNoticeLeft, Operator: userID, UserIDs: []string{userID}},
			also:   []string{userID},
		}, nil
	})
	return err
}

// InviteToGroup adds userIDs to group id on behalf of actorID, a member (an
// admin or the owner when the group is invite-only). Users who are members
// already are skipped. Config.GroupAddPolicy must allow each of the others,
// and they count against actorID's Config.GroupAddsPerMinute; otherwise
// nobody is added.
func (s *Server) InviteToGroup(ctx context.Context, id, actorID string, userIDs []string) error {
	paid := 0 // users charged to actorID's rate, should a conflict make decide run again
	_, err := s.changeGroup(ctx, id, func(g Group, members []GroupMember) (*groupEdit, error) {
		role := roleOf(members, actorID)
		if role == 0 {
			return nil, errOutsider(g)
		}
		if g.JoinPolicy == JoinInviteOnly && role < RoleAdmin {
			return nil, errorf(CodePermissionDenied, ErrPermissionDenied, "only admins invite to this group")
		}
		added, err := s.newMembers(ctx, userIDs, members)
		if err != nil || len(added) == 0 {
			return nil, err
		}
		if len(members)+len(added) > s.cfg.MaxGroupMembers {
			return nil, errGroupFull(s.cfg.MaxGroupMembers)
		}
		if err := s.checkGroupAdds(ctx, actorID, added, paid); err != nil {
			return nil, err
		}
		paid = max(paid, len(added))
		now := time.Now().Truncate(time.Microsecond)
		put := make([]GroupMember, len(added))
		for i, u := range added {
			put[i] = GroupMember{UserID: u, Role: RoleMember, JoinedAt: now}
		}
		return &groupEdit{
			change: GroupChange{Put: put},
			notice: GroupNotice{Type: GroupNoticeInvited, Operator: actorID, UserIDs: added},
		}, nil
	})
	return err
}

// KickFromGroup removes userIDs from group id on behalf of actorID, who
// must outrank each of them: the owner removes admins and members, an admin
// removes members. Users who are not members are skipped.
func (s *Server) KickFromGroup(ctx context.Context, id, actorID string, userIDs []string) error {
	_, err := s.changeGroup(ctx, id, func(g Group, members []GroupMember) (*groupEdit, error) {
		if hidden(g, members, actorID) {
			return nil, errNoGroup()
		}
		role := roleOf(members, actorID)
		if role < RoleAdmin {
			return nil, errorf(CodePermissionDenied, ErrPermissionDenied, "only admins remove members")
		}
		var removed []string
		for _, u := range userIDs {
			r := roleOf(members, u)
			switch {
			case !validID(u):
				return nil, errorf(CodeInvalidArgument, ErrInvalidArgument, "member id %q is not a valid user id", u)
			case u == actorID:
				return nil, errorf(CodeInvalidArgument, ErrInvalidArgument, "use leave to leave a group")
			case r == 0 || slices.Contains(removed, u):
			case r >= role:
				return nil, errorf(CodePermissionDenied, ErrPermissionDenied, "%s cannot be removed by a member of equal or lower rank", u)
			default:
				removed = append(removed, u)
			}
		}
		if len(removed) == 0 {
			return nil, nil
		}
		return &groupEdit{
			change: GroupChange{Remove: removed},
			notice: GroupNotice{Type: GroupNoticeKicked, Operator: actorID, UserIDs: removed},
			also:   removed,
		}, nil
	})
	return err
}

// SetGroupRole gives userID, a member of group id, role, on behalf of
// actorID, the owner. RoleOwner hands the group over: userID becomes the
// owner and actorID an admin, in one store write.
func (s *Server) SetGroupRole(ctx context.Context, id, actorID, userID string, role GroupRole) error {
	if role < RoleMember || role > RoleOwner {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "unknown group role %d", role)
	}
	if !validID(userID) {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "user id is not valid")
	}
	_, err := s.changeGroup(ctx, id, func(g Group, members []GroupMember) (*groupEdit, error) {
		if hidden(g, members, actorID) {
			return nil, errNoGroup()
		}
		if roleOf(members, actorID) != RoleOwner {
			return nil, errorf(CodePermissionDenied, ErrPermissionDenied, "only the owner sets roles")
		}
		i := slices.IndexFunc(members, func(m GroupMember) bool { return m.UserID == userID })
		switch {
		case i < 0:
			return nil, errNotGroupMember()
		case userID == actorID:
			return nil, errorf(CodeInvalidArgument, ErrInvalidArgument, "the owner's role changes only by handing the group to another member")
		case members[i].Role == role:
			return nil, nil
		}
		m := members[i]
		m.Role = role
		change := []GroupMember{m}
		if role == RoleOwner {
			self := members[slices.IndexFunc(members, func(m GroupMember) bool { return m.UserID == actorID })]
			self.Role = RoleAdmin
			change = append(change, self)
		}
		return &groupEdit{
			change: GroupChange{Put: change},
			notice: GroupNotice{Type: GroupNoticeRoleChanged, Operator: actorID, UserIDs: []string{userID}, Role: role},
		}, nil
	})
	return err
}

// UpdateGroup changes group id on behalf of actorID, an admin or the owner,
// and returns it as it now is. An update that changes nothing stores
// nothing and tells nobody.
func (s *Server) UpdateGroup(ctx context.Context, id, actorID string, u GroupUpdate) (Group, error) {
	return s.changeGroup(ctx, id, func(g Group, members []GroupMember) (*groupEdit, error) {
		if hidden(g, members, actorID) {
			return nil, errNoGroup()
		}
		if roleOf(members, actorID) < RoleAdmin {
			return nil, errorf(CodePermissionDenied, ErrPermissionDenied, "only admins edit the group")
		}
		before := g
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&g.Name, u.Name)
		set(&g.FaceURL, u.FaceURL)
		set(&g.Introduction, u.Introduction)
		set(&g.Notification, u.Notification)
		set(&g.Extra, u.Extra)
		if u.JoinPolicy != nil {
			g.JoinPolicy = *u.JoinPolicy
		}
		if u.History != nil {
			g.History = *u.History
		}
		if u.MuteAll != nil {
			g.MuteAll = *u.MuteAll
		}
		if g == before {
			return nil, nil
		}
		g.UpdatedAt = time.Now().Truncate(time.Microsecond)
		if err := ValidateGroup(g); err != nil {
			return nil, err
		}
		if g.JoinPolicy != before.JoinPolicy {
			if err := s.checkJoinPolicy(g.JoinPolicy); err != nil {
				return nil, err
			}
		}
		return &groupEdit{
			change: GroupChange{Update: &g},
			notice: updateNotice(before, g, actorID),
		}, nil
	})
}

// updateNotice is the notice of an update of group before to after:
// group_announcement when the announcement changed, group_muted when only
// MuteAll did, group_updated otherwise.
func updateNotice(before, after Group, actorID string) GroupNotice {
	n := GroupNotice{Type: GroupNoticeUpdated, Operator: actorID}
	if after.MuteAll != before.MuteAll {
		n.MuteAll = &after.MuteAll
		rest := after
		rest.MuteAll, rest.UpdatedAt = before.MuteAll, before.UpdatedAt
		if rest == before {
			n.Type = GroupNoticeMuted
		}
	}
	if after.Notification != before.Notification {
		n.Type, n.Notification = GroupNoticeAnnouncement, after.Notification
	}
	return n
}

// DismissGroup deletes group id on behalf of actorID, its owner. Its
// messages stay in the store, but nobody can read or send to them any
// more. Every former member is told.
func (s *Server) DismissGroup(ctx context.Context, id, actorID string) error {
	_, err := s.changeGroup(ctx, id, func(g Group, members []GroupMember) (*groupEdit, error) {
		if hidden(g, members, actorID) {
			return nil, errNoGroup()
		}
		if roleOf(members, actorID) != RoleOwner {
			return nil, errorf(CodePermissionDenied, ErrPermissionDenied, "only the owner dismisses the group")
		}
		return &groupEdit{
			change: GroupChange{Delete: true},
			notice: GroupNotice{Type: GroupNoticeDismissed, Operator: actorID},
		}, nil
	})
	return err
}

// groupEdit is what a decision on a group's state asks to store.
type groupEdit struct {
	change GroupChange // without Version, MaxMembers and Notice
	notice GroupNotice
	also   []string // pushed the notice beside the members the change leaves
}

// maxGroupAttempts bounds how often a change is decided again because
// another change to the group was stored first.
const maxGroupAttempts = 8

// changeGroup decides a change to group id on its stored state, and stores
// it, with its notice, on condition that the group is still at the version
// decided on. If another change came first (in this process or another),
// it reads the state again and decides again. decide returns nil for
// nothing to do. It returns the group as the change left it.
func (s *Server) changeGroup(ctx context.Context, id string, decide func(Group, []GroupMember) (*groupEdit, error)) (Group, error) {
	// Changes this Server makes to one group take turns, which saves
	// conflicts between them; the version check is what makes them safe.
	defer s.groups.lock(id)()
	for attempt := 1; ; attempt++ {
		g, members, err := s.groupState(ctx, id)
		if err != nil {
			return Group{}, err
		}
		e, err := decide(g, members)
		if err != nil || e == nil {
			return g, err
		}
		ch := e.change
		ch.Version = g.Version
		if len(ch.Put) > 0 {
			ch.MaxMembers = s.cfg.MaxGroupMembers
		}
		if ch.Notice, err = s.notice(id, e.notice); err != nil {
			return Group{}, err
		}
		after := applyChange(g, members, ch)
		op := &commitOp{req: ch.Notice, also: e.also, group: &groupOp{id: id, change: ch}}
		if ch.Delete {
			op.members = newMemberSet(g, members) // the former members are told
		} else {
			next := g
			if ch.Update != nil {
				next = *ch.Update
			}
			next.Version = g.Version + 1
			op.members = newMemberSet(next, after)
		}
		_, err = s.commitAndWait(ctx, op)
		switch {
		case err == nil:
			if ch.Update != nil {
				g = *ch.Update
			}
			g.OwnerID = ownerOf(after, g.OwnerID)
			g.MemberCount = len(after)
			g.Version++
			return g, nil
		case errors.Is(err, ErrConflict) && attempt < maxGroupAttempts:
			continue
		case errors.Is(err, ErrConflict):
			return Group{}, errorf(CodeUnknown, ErrConflict, "the group keeps changing; try again")
		case errors.Is(err, ErrLimitExceeded):
			return Group{}, errGroupFull(s.cfg.MaxGroupMembers)
		case errors.Is(err, ErrNotFound):
			return Group{}, errNoGroup()
		}
		return Group{}, err
	}
}

// applyChange returns members as ch leaves them, by the rules the Store
// follows (GroupChange).
func applyChange(g Group, members []GroupMember, ch GroupChange) []GroupMember {
	if ch.Delete {
		return nil
	}
	out := slices.DeleteFunc(slices.Clone(members), func(m GroupMember) bool { return slices.Contains(ch.Remove, m.UserID) })
	newOwner := ""
	for _, p := range ch.Put {
		if p.Role == RoleOwner {
			newOwner = p.UserID
		}
		if i := slices.IndexFunc(out, func(m GroupMember) bool { return m.UserID == p.UserID }); i >= 0 {
			out[i].Role, out[i].MutedUntil = p.Role, p.MutedUntil
		} else {
			out = append(out, p)
		}
	}
	if newOwner != "" && newOwner != g.OwnerID && !slices.ContainsFunc(ch.Put, func(m GroupMember) bool { return m.UserID == g.OwnerID }) {
		if i := slices.IndexFunc(out, func(m GroupMember) bool { return m.UserID == g.OwnerID }); i >= 0 {
			out[i].Role = RoleAdmin
		}
	}
	return out
}

// ownerOf returns the member with RoleOwner, or def if there is none.
func ownerOf(members []GroupMember, def string) string {
	for _, m := range members {
		if m.Role == RoleOwner {
			return m.UserID
		}
	}
	return def
}

// groupState reads group id and its members, at one version, from the
// store (not the cache: a change is decided on the stored state).
func (s *Server) groupState(ctx context.Context, id string) (_ Group, _ []GroupMember, err error) {
	if !validID(id) {
		return Group{}, nil, errNoGroup()
	}
	defer s.recoverStore("GroupMembers", &err)
	g, members, err := s.store.GroupMembers(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Group{}, nil, errNoGroup()
	}
	return g, members, err
}

// newMembers checks userIDs, drops repeats and those in current, and, with
// Config.Users set, checks that each exists.
func (s *Server) newMembers(ctx context.Context, userIDs []string, current []GroupMember) ([]string, error) {
	have := newMemberSet(Group{}, current).roles
	var out []string
	for _, u := range userIDs {
		if !validID(u) {
			return nil, errorf(CodeInvalidArgument, ErrInvalidArgument, "member id %q is not a valid user id", u)
		}
		if _, dup := have[u]; dup {
			continue
		}
		have[u] = RoleMember
		out = append(out, u)
	}
	if len(out) > s.cfg.MaxGroupMembers {
		return nil, errGroupFull(s.cfg.MaxGroupMembers)
	}
	if s.cfg.Users != nil {
		for _, u := range out {
			ok, err := s.cfg.Users.UserExists(ctx, u)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, errorf(CodeUserNotFound, ErrNotFound, "user %s does not exist", u)
			}
		}
	}
	return out, nil
}

// notice returns the request that appends n, the report of a change to
// group id, to the group's conversation, sent by the user who made the
// change. It is stored in the change's own commit.
func (s *Server) notice(id string, n GroupNotice) (AppendRequest, error) {
	n.GroupID = id
	content, err := json.Marshal(n)
	if err != nil {
		return AppendRequest{}, err
	}
	now := time.Now()
	return AppendRequest{Message: Message{
		ConversationID: GroupConversationID(id),
		ServerID:       s.ids.next(now),
		SenderID:       n.Operator,
		ClientMsgID:    s.ids.next(now),
		Type:           NotificationMessage,
		Content:        content,
		SendTime:       now.UnixMilli(),
		CreatedAt:      now.Truncate(time.Millisecond),
	}}, nil
}

func roleOf(members []GroupMember, user string) GroupRole {
	for _, m := range members {
		if m.UserID == user {
			return m.Role
		}
	}
	return 0
}

// groupOf returns the group id of conversation conv, if it is a group's.
func groupOf(conv string) (string, bool) {
	return strings.CutPrefix(conv, groupPrefix)
}

func errNoGroup() *Error {
	return errorf(CodeNotFound, ErrNotFound, "group does not exist")
}

// hidden reports whether group g must look missing to user: an
// invite-only group exists only for its members, so that no call tells
// anyone else it does (Group, and every call on a group by id).
func hidden(g Group, members []GroupMember, user string) bool {
	return g.JoinPolicy == JoinInviteOnly && roleOf(members, user) == 0
}

// errOutsider is the refusal of a call only members make, to a user who
// is not one of group g: "not a member" where anyone may see the group,
// and the answer for a missing group where only its members may.
func errOutsider(g Group) *Error {
	if g.JoinPolicy == JoinInviteOnly {
		return errNoGroup()
	}
	return errNotGroupMember()
}

func errNotGroupMember() *Error {
	return errorf(CodePermissionDenied, ErrPermissionDenied, "not a member of this group")
}

func errGroupFull(max int) *Error {
	return errorf(CodeInvalidArgument, ErrLimitExceeded, "a group has at most %d members", max)
}
