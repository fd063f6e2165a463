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
	JoinPolicy   JoinPolicy
}

// GroupUpdate changes some fields of a group; nil fields stay as they are.
type GroupUpdate struct {
	Name         *string
	FaceURL      *string
	Introduction *string
	Notification *string
	Extra        *string
	JoinPolicy   *JoinPolicy
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
)

// CreateGroup creates a group owned by ownerID with memberIDs as its first
// members (the owner need not be listed) and returns it. With Config.Users
// set, every member must exist (USER_NOT_EXIST otherwise).
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
	now := time.Now().Truncate(time.Microsecond)
	g := Group{
		ID:           s.ids.next(now),
		Name:         spec.Name,
		FaceURL:      spec.FaceURL,
		Introduction: spec.Introduction,
		Notification: spec.Notification,
		Extra:        spec.Extra,
		OwnerID:      ownerID,
		JoinPolicy:   spec.JoinPolicy,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	if err := ValidateGroup(g); err != nil {
		return Group{}, err
	}
	members := make([]GroupMember, 0, len(others)+1)
	members = append(members, GroupMember{UserID: ownerID, Role: RoleOwner, JoinedAt: now})
	for _, u := range others {
		members = append(members, GroupMember{UserID: u, Role: RoleMember, JoinedAt: now})
	}
	if err := s.store.CreateGroup(ctx, g, members); err != nil {
		return Group{}, err
	}
	g.MemberCount = len(members)
	s.groupNotice(ctx, g.ID, GroupNotice{Type: GroupNoticeCreated, Operator: ownerID, UserIDs: others}, nil, nil)
	return g, nil
}

// Group returns group id; any user may look a group up (to join it).
func (s *Server) Group(ctx context.Context, id string) (Group, error) {
	if !validID(id) {
		return Group{}, errNoGroup()
	}
	g, err := s.store.Group(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Group{}, errNoGroup()
	}
	return g, err
}

// GroupMembers returns the members of group id, for userID, who must be one
// of them.
func (s *Server) GroupMembers(ctx context.Context, id, userID string) ([]GroupMember, error) {
	members, err := s.groupMembers(ctx, id)
	if err != nil {
		return nil, err
	}
	if roleOf(members, userID) == 0 {
		return nil, errNotGroupMember()
	}
	return members, nil
}

// UserGroups returns the groups userID is a member of.
func (s *Server) UserGroups(ctx context.Context, userID string) ([]Group, error) {
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
func (s *Server) JoinGroup(ctx context.Context, id, userID string) (Group, error) {
	if !validID(userID) {
		return Group{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "user id is not valid")
	}
	defer s.groups.lock(id)()
	g, members, err := s.groupState(ctx, id)
	if err != nil {
		return Group{}, err
	}
	if roleOf(members, userID) != 0 {
		return g, nil
	}
	if g.JoinPolicy != JoinOpen {
		return Group{}, errorf(CodePermissionDenied, ErrPermissionDenied, "this group takes members by invitation only")
	}
	if len(members)+1 > s.cfg.MaxGroupMembers {
		return Group{}, errGroupFull(s.cfg.MaxGroupMembers)
	}
	err = s.changeMembers(ctx, id, []GroupMember{{UserID: userID, Role: RoleMember, JoinedAt: time.Now().Truncate(time.Microsecond)}}, nil)
	if err != nil {
		return Group{}, err
	}
	g.MemberCount++
	s.groupNotice(ctx, id, GroupNotice{Type: GroupNoticeJoined, Operator: userID, UserIDs: []string{userID}}, nil, nil)
	return g, nil
}

// LeaveGroup removes userID from group id. The owner cannot leave: it hands
// the group to another member first (SetGroupRole with RoleOwner), or
// dismisses it.
func (s *Server) LeaveGroup(ctx context.Context, id, userID string) error {
	defer s.groups.lock(id)()
	_, members, err := s.groupState(ctx, id)
	if err != nil {
		return err
	}
	switch roleOf(members, userID) {
	case 0:
		return errNotGroupMember()
	case RoleOwner:
		return errorf(CodePermissionDenied, ErrPermissionDenied, "the owner cannot leave the group; hand it to another member first, or dismiss it")
	}
	if err := s.changeMembers(ctx, id, nil, []string{userID}); err != nil {
		return err
	}
	s.groupNotice(ctx, id, GroupNotice{Type: GroupNoticeLeft, Operator: userID, UserIDs: []string{userID}}, []string{userID}, nil)
	return nil
}

// InviteToGroup adds userIDs to group id on behalf of actorID, a member (an
// admin or the owner when the group is invite-only). Users who are members
// already are skipped.
func (s *Server) InviteToGroup(ctx context.Context, id, actorID string, userIDs []string) error {
	defer s.groups.lock(id)()
	g, members, err := s.groupState(ctx, id)
	if err != nil {
		return err
	}
	role := roleOf(members, actorID)
	if role == 0 {
		return errNotGroupMember()
	}
	if g.JoinPolicy == JoinInviteOnly && role < RoleAdmin {
		return errorf(CodePermissionDenied, ErrPermissionDenied, "only admins invite to this group")
	}
	added, err := s.newMembers(ctx, userIDs, members)
	if err != nil {
		return err
	}
	if len(added) == 0 {
		return nil
	}
	if len(members)+len(added) > s.cfg.MaxGroupMembers {
		return errGroupFull(s.cfg.MaxGroupMembers)
	}
	now := time.Now().Truncate(time.Microsecond)
	put := make([]GroupMember, len(added))
	for i, u := range added {
		put[i] = GroupMember{UserID: u, Role: RoleMember, JoinedAt: now}
	}
	if err := s.changeMembers(ctx, id, put, nil); err != nil {
		return err
	}
	s.groupNotice(ctx, id, GroupNotice{Type: GroupNoticeInvited, Operator: actorID, UserIDs: added}, nil, nil)
	return nil
}

// KickFromGroup removes userIDs from group id on behalf of actorID, who
// must outrank each of them: the owner removes admins and members, an admin
// removes members. Users who are not members are skipped.
func (s *Server) KickFromGroup(ctx context.Context, id, actorID string, userIDs []string) error {
	defer s.groups.lock(id)()
	_, members, err := s.groupState(ctx, id)
	if err != nil {
		return err
	}
	role := roleOf(members, actorID)
	if role < RoleAdmin {
		return errorf(CodePermissionDenied, ErrPermissionDenied, "only admins remove members")
	}
	var removed []string
	for _, u := range userIDs {
		r := roleOf(members, u)
		switch {
		case !validID(u):
			return errorf(CodeInvalidArgument, ErrInvalidArgument, "member id %q is not a valid user id", u)
		case u == actorID:
			return errorf(CodeInvalidArgument, ErrInvalidArgument, "use leave to leave a group")
		case r == 0 || slices.Contains(removed, u):
		case r >= role:
			return errorf(CodePermissionDenied, ErrPermissionDenied, "%s cannot be removed by a member of equal or lower rank", u)
		default:
			removed = append(removed, u)
		}
	}
	if len(removed) == 0 {
		return nil
	}
	if err := s.changeMembers(ctx, id, nil, removed); err != nil {
		return err
	}
	s.groupNotice(ctx, id, GroupNotice{Type: GroupNoticeKicked, Operator: actorID, UserIDs: removed}, removed, nil)
	return nil
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
	defer s.groups.lock(id)()
	_, members, err := s.groupState(ctx, id)
	if err != nil {
		return err
	}
	if roleOf(members, actorID) != RoleOwner {
		return errorf(CodePermissionDenied, ErrPermissionDenied, "only the owner sets roles")
	}
	i := slices.IndexFunc(members, func(m GroupMember) bool { return m.UserID == userID })
	switch {
	case i < 0:
		return errNotGroupMember()
	case userID == actorID:
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "the owner's role changes only by handing the group to another member")
	case members[i].Role == role:
		return nil
	}
	m := members[i]
	m.Role = role
	change := []GroupMember{m}
	if role == RoleOwner {
		self := members[slices.IndexFunc(members, func(m GroupMember) bool { return m.UserID == actorID })]
		self.Role = RoleAdmin
		change = append(change, self)
	}
	if err := s.changeMembers(ctx, id, change, nil); err != nil {
		return err
	}
	s.groupNotice(ctx, id, GroupNotice{Type: GroupNoticeRoleChanged, Operator: actorID, UserIDs: []string{userID}, Role: role}, nil, nil)
	return nil
}

// UpdateGroup changes group id on behalf of actorID, an admin or the owner,
// and returns it as it now is. An update that changes nothing stores
// nothing and tells nobody.
func (s *Server) UpdateGroup(ctx context.Context, id, actorID string, u GroupUpdate) (Group, error) {
	defer s.groups.lock(id)()
	g, members, err := s.groupState(ctx, id)
	if err != nil {
		return Group{}, err
	}
	if roleOf(members, actorID) < RoleAdmin {
		return Group{}, errorf(CodePermissionDenied, ErrPermissionDenied, "only admins edit the group")
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
	if g == before {
		return g, nil
	}
	g.UpdatedAt = time.Now().Truncate(time.Microsecond)
	if err := ValidateGroup(g); err != nil {
		return Group{}, err
	}
	if err := s.store.UpdateGroup(ctx, g); err != nil {
		return Group{}, err
	}
	s.groupNotice(ctx, id, GroupNotice{Type: GroupNoticeUpdated, Operator: actorID}, nil, nil)
	return g, nil
}

// DismissGroup deletes group id on behalf of actorID, its owner. Its
// messages stay in the store, but nobody can read or send to them any
// more. Every former member is told.
func (s *Server) DismissGroup(ctx context.Context, id, actorID string) error {
	defer s.groups.lock(id)()
	_, members, err := s.groupState(ctx, id)
	if err != nil {
		return err
	}
	if roleOf(members, actorID) != RoleOwner {
		return errorf(CodePermissionDenied, ErrPermissionDenied, "only the owner dismisses the group")
	}
	if err := s.store.DeleteGroup(ctx, id); err != nil {
		return err
	}
	s.groups.invalidate(id)
	s.groupNotice(ctx, id, GroupNotice{Type: GroupNoticeDismissed, Operator: actorID}, nil, newMemberSet(members))
	return nil
}

// groupState reads group id and its members from the store (not the cache:
// a change is decided on the stored state).
func (s *Server) groupState(ctx context.Context, id string) (Group, []GroupMember, error) {
	g, err := s.Group(ctx, id)
	if err != nil {
		return Group{}, nil, err
	}
	members, err := s.groupMembers(ctx, id)
	return g, members, err
}

func (s *Server) groupMembers(ctx context.Context, id string) ([]GroupMember, error) {
	if !validID(id) {
		return nil, errNoGroup()
	}
	members, err := s.store.GroupMembers(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, errNoGroup()
	}
	return members, err
}

// changeMembers stores a change of membership and reloads the cache, so that
// the next message reaches exactly the new members.
func (s *Server) changeMembers(ctx context.Context, id string, put []GroupMember, remove []string) error {
	var err error
	if len(put) > 0 {
		err = s.store.PutGroupMembers(ctx, id, put)
	} else {
		err = s.store.RemoveGroupMembers(ctx, id, remove)
	}
	s.groups.invalidate(id)
	return err
}

// newMembers checks userIDs, drops repeats and those in current, and, with
// Config.Users set, checks that each exists.
func (s *Server) newMembers(ctx context.Context, userIDs []string, current []GroupMember) ([]string, error) {
	have := newMemberSet(current).roles
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

// groupNotice appends n to the group's conversation and pushes it to the
// members, to the users in also (who just left) and, for a group that no
// longer exists, to the members in former. The change it reports is stored
// already, so a failure here is logged, not returned: the notice is
// information about the change, not part of it.
func (s *Server) groupNotice(ctx context.Context, id string, n GroupNotice, also []string, former *memberSet) {
	members := former
	if members == nil {
		// Loads the members as the change left them, for delivery.
		var err error
		if members, err = s.groups.get(ctx, id); err != nil {
			s.log.Error("group notice", "conv", GroupConversationID(id), "err", err)
			return
		}
	}
	n.GroupID = id
	content, err := json.Marshal(n)
	if err != nil {
		s.log.Error("group notice", "conv", GroupConversationID(id), "err", err)
		return
	}
	now := time.Now()
	m := Message{
		ConversationID: GroupConversationID(id),
		ServerID:       s.ids.next(now),
		SenderID:       n.Operator,
		ClientMsgID:    s.ids.next(now),
		Type:           NotificationMessage,
		Content:        content,
		SendTime:       now.UnixMilli(),
		CreatedAt:      now.Truncate(time.Millisecond),
	}
	_, err = s.commitAndWait(ctx, &commitOp{req: AppendRequest{Message: m}, members: members, also: also})
	if err != nil {
		s.log.Error("group notice", "conv", m.ConversationID, "err", err)
	}
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

func errNotGroupMember() *Error {
	return errorf(CodePermissionDenied, ErrPermissionDenied, "not a member of this group")
}

func errGroupFull(max int) *Error {
	return errorf(CodeInvalidArgument, ErrLimitExceeded, "a group has at most %d members", max)
}
