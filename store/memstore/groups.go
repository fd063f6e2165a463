package memstore

// This file holds everything of the group area: its state, the GroupStore
// methods, the membership check of group messages (memberOf, called by
// AppendMessages) and userGroupIDs, which the sync read (sync.go) uses.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/imserver/imserver/im"
)

var _ im.GroupJoinRequestStore = (*Store)(nil)

// groupState holds the groups; Store.mu guards it.
type groupState struct {
	byID   map[string]*group
	ofUser map[string]map[string]bool // user → ids of its groups
	// requests are the pending join requests: group → user → request.
	requests map[string]map[string]im.GroupJoinRequest
}

// group is a stored group. Its MemberCount is len(members), whatever
// info.MemberCount holds.
type group struct {
	info    im.Group
	members map[string]im.GroupMember // by user id
}

func newGroupState() groupState {
	return groupState{byID: make(map[string]*group), ofUser: make(map[string]map[string]bool), requests: make(map[string]map[string]im.GroupJoinRequest)}
}

// userGroupIDs returns the ids of userID's groups; the caller holds s.mu.
func (s *Store) userGroupIDs(userID string) []string {
	out := make([]string, 0, len(s.groups.ofUser[userID]))
	for id := range s.groups.ofUser[userID] {
		out = append(out, id)
	}
	return out
}

// putMembers adds members to g, keeping the JoinedAt and JoinSeq of
// existing ones; new ones join at the seq the change's notice takes. The
// caller holds s.mu and has validated members.
func (s *Store) putMembers(g *group, members []im.GroupMember) {
	joinSeq := s.nextSeq(im.GroupConversationID(g.info.ID))
	for _, m := range members {
		if old, ok := g.members[m.UserID]; ok {
			m.JoinedAt, m.JoinSeq = old.JoinedAt, old.JoinSeq
		} else {
			m.JoinSeq = joinSeq
		}
		g.members[m.UserID] = m
		delete(s.groups.requests[g.info.ID], m.UserID)
		if s.groups.ofUser[m.UserID] == nil {
			s.groups.ofUser[m.UserID] = make(map[string]bool)
		}
		s.groups.ofUser[m.UserID][g.info.ID] = true
	}
}

// nextSeq returns the seq the next message of conversation conv takes.
// The caller holds s.mu.
func (s *Store) nextSeq(conv string) int64 {
	c, _ := s.conversation(conv)
	return c.MaxSeq + 1
}

func groupNotFound(id string) error { return fmt.Errorf("memstore: group %q: %w", id, im.ErrNotFound) }

// checkNotice refuses a notice whose (sender, client_msg_id) is stored
// already: a change is not made twice. The caller holds s.mu.
func (s *Store) checkNotice(n im.AppendRequest) error {
	m := n.Message
	if m.ConversationID == "" {
		return nil
	}
	if _, dup := s.dedup[dedupKey{m.SenderID, m.ClientMsgID}]; dup {
		return fmt.Errorf("memstore: notice %q: %w", m.ClientMsgID, im.ErrConflict)
	}
	return nil
}

// appendNotice stores n, if set, as AppendMessages would, and returns its
// result with the group's version. The caller holds s.mu and has checked n
// with checkNotice, so nothing can refuse it.
func (s *Store) appendNotice(n im.AppendRequest, version int64) im.AppendResult {
	if n.Message.ConversationID == "" {
		return im.AppendResult{GroupVersion: version}
	}
	r := s.appendLocked(n)
	r.GroupVersion = version
	return r
}

// CreateGroup implements im.GroupStore: the group, its members and the
// notice in one critical section.
func (s *Store) CreateGroup(ctx context.Context, g im.Group, members []im.GroupMember, notice im.AppendRequest) (im.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return im.AppendResult{}, fmt.Errorf("memstore: create group: %w", err)
	}
	if err := im.ValidateCreateGroup(g, members, notice); err != nil {
		return im.AppendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups.byID[g.ID]; ok {
		return im.AppendResult{}, fmt.Errorf("memstore: group %q: %w", g.ID, im.ErrConflict)
	}
	if err := s.checkNotice(notice); err != nil {
		return im.AppendResult{}, err
	}
	g.Version = 1
	for _, m := range members {
		if m.Role == im.RoleOwner {
			g.OwnerID = m.UserID
		}
	}
	ng := &group{info: g, members: make(map[string]im.GroupMember, len(members))}
	s.groups.byID[g.ID] = ng
	s.putMembers(ng, members)
	return s.appendNotice(notice, 1), nil
}

// Group implements im.GroupStore.
func (s *Store) Group(ctx context.Context, id string) (im.Group, error) {
	if err := ctx.Err(); err != nil {
		return im.Group{}, fmt.Errorf("memstore: group: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups.byID[id]
	if !ok {
		return im.Group{}, groupNotFound(id)
	}
	return g.withCount(), nil
}

// withCount returns the group's info with its member count.
func (g *group) withCount() im.Group {
	info := g.info
	info.MemberCount = len(g.members)
	return info
}

// ChangeGroup implements im.GroupStore: the version check, the member limit,
// the change and its notice are decided and written in one critical
// section, everything checked before anything is written.
func (s *Store) ChangeGroup(ctx context.Context, id string, ch im.GroupChange) (im.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return im.AppendResult{}, fmt.Errorf("memstore: change group: %w", err)
	}
	if err := im.ValidateGroupChange(id, ch); err != nil {
		return im.AppendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups.byID[id]
	if !ok {
		return im.AppendResult{}, groupNotFound(id)
	}
	if ch.Version != 0 && ch.Version != g.info.Version {
		return im.AppendResult{}, fmt.Errorf("memstore: group %q is at version %d, not %d: %w", id, g.info.Version, ch.Version, im.ErrConflict)
	}
	if err := s.checkNotice(ch.Notice); err != nil {
		return im.AppendResult{}, err
	}
	if ch.Delete {
		for u := range g.members {
			delete(s.groups.ofUser[u], id)
		}
		delete(s.groups.byID, id)
		delete(s.groups.requests, id)
		return s.appendNotice(ch.Notice, 0), nil
	}

	owner := g.info.OwnerID
	for _, m := range ch.Put {
		if m.Role == im.RoleOwner {
			owner = m.UserID
		}
	}
	if slices.Contains(ch.Remove, owner) {
		return im.AppendResult{}, fmt.Errorf("memstore: group %q: the owner %q cannot be removed: %w", id, owner, im.ErrInvalidArgument)
	}
	count := len(g.members)
	removed := make(map[string]bool, len(ch.Remove))
	for _, u := range ch.Remove {
		if _, ok := g.members[u]; ok && !removed[u] {
			removed[u] = true
			count--
		}
	}
	for _, m := range ch.Put {
		if _, ok := g.members[m.UserID]; !ok {
			count++
		}
	}
	if ch.MaxMembers > 0 && count > ch.MaxMembers {
		return im.AppendResult{}, fmt.Errorf("memstore: group %q would have %d members, the limit is %d: %w", id, count, ch.MaxMembers, im.ErrLimitExceeded)
	}

	if ch.Update != nil {
		info := *ch.Update
		info.CreatedAt, info.OwnerID, info.Version = g.info.CreatedAt, g.info.OwnerID, g.info.Version
		g.info = info
	}
	for u := range removed {
		delete(g.members, u)
		delete(s.groups.ofUser[u], id)
	}
	s.putMembers(g, ch.Put)
	if prev := g.info.OwnerID; owner != prev {
		g.info.OwnerID = owner
		if old, ok := g.members[prev]; ok && old.Role == im.RoleOwner {
			old.Role = im.RoleAdmin
			g.members[prev] = old
		}
	}
	g.info.Version++
	return s.appendNotice(ch.Notice, g.info.Version), nil
}

// GroupMembers implements im.GroupStore: the group and its members, read
// together.
func (s *Store) GroupMembers(ctx context.Context, id string) (im.Group, []im.GroupMember, error) {
	if err := ctx.Err(); err != nil {
		return im.Group{}, nil, fmt.Errorf("memstore: group members: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups.byID[id]
	if !ok {
		return im.Group{}, nil, groupNotFound(id)
	}
	out := make([]im.GroupMember, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	return g.withCount(), out, nil
}

// GroupMember implements im.GroupStore.
func (s *Store) GroupMember(ctx context.Context, id, userID string) (im.GroupMember, error) {
	if err := ctx.Err(); err != nil {
		return im.GroupMember{}, fmt.Errorf("memstore: group member: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups.byID[id]
	if !ok {
		return im.GroupMember{}, groupNotFound(id)
	}
	m, ok := g.members[userID]
	if !ok {
		return im.GroupMember{}, fmt.Errorf("memstore: %q in group %q: %w", userID, id, im.ErrNotFound)
	}
	return m, nil
}

// UserGroups implements im.GroupStore.
func (s *Store) UserGroups(ctx context.Context, userID string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: user groups: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userGroupIDs(userID), nil
}

// memberOf checks a group message's MemberOf: its sender must be a member
// of the group now, and not muted when the message was created. It returns
// the group's version, 0 for no group. The caller holds s.mu.
func (s *Store) memberOf(r im.AppendRequest) (int64, error) {
	g, ok := s.groups.byID[r.MemberOf]
	if !ok {
		return 0, fmt.Errorf("memstore: group %q does not exist: %w", r.MemberOf, im.ErrPermissionDenied)
	}
	m, ok := g.members[r.Message.SenderID]
	switch {
	case !ok:
		return g.info.Version, fmt.Errorf("memstore: %q is not a member of group %q: %w", r.Message.SenderID, r.MemberOf, im.ErrPermissionDenied)
	case m.MutedUntil.After(r.Message.CreatedAt):
		return g.info.Version, fmt.Errorf("memstore: %q in group %q until %v: %w", m.UserID, r.MemberOf, m.MutedUntil, im.ErrMuted)
	case g.info.MuteAll && m.Role < im.RoleAdmin:
		return g.info.Version, fmt.Errorf("memstore: group %q is muted for members: %w", r.MemberOf, im.ErrMuted)
	}
	return g.info.Version, nil
}

// validJoinRequestKey checks the ids of a join request call.
func validJoinRequestKey(groupID, userID string) error {
	if err := im.ValidateID("group id", groupID); err != nil {
		return err
	}
	return im.ValidateID("user id", userID)
}

// PutJoinRequest implements im.GroupJoinRequestStore.
func (s *Store) PutJoinRequest(ctx context.Context, r im.GroupJoinRequest) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memstore: put join request: %w", err)
	}
	if err := validJoinRequestKey(r.GroupID, r.UserID); err != nil {
		return 0, err
	}
	if err := im.ValidateFriendText("message", r.Message, im.MaxFriendMessageLen); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups.byID[r.GroupID]
	if !ok {
		return 0, groupNotFound(r.GroupID)
	}
	if _, ok := g.members[r.UserID]; ok {
		return 0, fmt.Errorf("memstore: %q is a member of group %q already: %w", r.UserID, r.GroupID, im.ErrConflict)
	}
	reqs := s.groups.requests[r.GroupID]
	if reqs == nil {
		reqs = make(map[string]im.GroupJoinRequest)
		s.groups.requests[r.GroupID] = reqs
	}
	reqs[r.UserID] = r
	return len(reqs), nil
}

// JoinRequests implements im.GroupJoinRequestStore.
func (s *Store) JoinRequests(ctx context.Context, groupID string) ([]im.GroupJoinRequest, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: join requests: %w", err)
	}
	if err := im.ValidateID("group id", groupID); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]im.GroupJoinRequest, 0, len(s.groups.requests[groupID]))
	for _, r := range s.groups.requests[groupID] {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b im.GroupJoinRequest) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.UserID, b.UserID))
	})
	return out, nil
}

// JoinRequest implements im.GroupJoinRequestStore.
func (s *Store) JoinRequest(ctx context.Context, groupID, userID string) (im.GroupJoinRequest, error) {
	if err := ctx.Err(); err != nil {
		return im.GroupJoinRequest{}, fmt.Errorf("memstore: join request: %w", err)
	}
	if err := validJoinRequestKey(groupID, userID); err != nil {
		return im.GroupJoinRequest{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.groups.requests[groupID][userID]
	if !ok {
		return im.GroupJoinRequest{}, fmt.Errorf("memstore: join request of %q to group %q: %w", userID, groupID, im.ErrNotFound)
	}
	return r, nil
}

// DeleteJoinRequest implements im.GroupJoinRequestStore.
func (s *Store) DeleteJoinRequest(ctx context.Context, groupID, userID string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: delete join request: %w", err)
	}
	if err := validJoinRequestKey(groupID, userID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	reqs := s.groups.requests[groupID]
	if _, ok := reqs[userID]; !ok {
		return fmt.Errorf("memstore: join request of %q to group %q: %w", userID, groupID, im.ErrNotFound)
	}
	delete(reqs, userID)
	if len(reqs) == 0 {
		delete(s.groups.requests, groupID)
	}
	return nil
}
