package memstore

// This file holds everything of the group area: its state, the GroupStore
// methods, and userGroupIDs, which the sync read (sync.go) uses.

import (
	"context"
	"fmt"

	"github.com/imserver/imserver/im"
)

// groupState holds the groups; Store.mu guards it.
type groupState struct {
	byID   map[string]*group
	ofUser map[string]map[string]bool // user → ids of its groups
}

// group is a stored group. Its MemberCount is len(members), whatever
// info.MemberCount holds.
type group struct {
	info    im.Group
	members map[string]im.GroupMember // by user id
}

func newGroupState() groupState {
	return groupState{byID: make(map[string]*group), ofUser: make(map[string]map[string]bool)}
}

// userGroupIDs returns the ids of userID's groups; the caller holds s.mu.
func (s *Store) userGroupIDs(userID string) []string {
	out := make([]string, 0, len(s.groups.ofUser[userID]))
	for id := range s.groups.ofUser[userID] {
		out = append(out, id)
	}
	return out
}

// putMembers adds members to g, keeping the JoinedAt of existing ones. The
// caller holds s.mu and has validated members.
func (s *Store) putMembers(g *group, members []im.GroupMember) {
	for _, m := range members {
		if old, ok := g.members[m.UserID]; ok {
			m.JoinedAt = old.JoinedAt
		}
		g.members[m.UserID] = m
		if s.groups.ofUser[m.UserID] == nil {
			s.groups.ofUser[m.UserID] = make(map[string]bool)
		}
		s.groups.ofUser[m.UserID][g.info.ID] = true
		if m.Role == im.RoleOwner {
			g.info.OwnerID = m.UserID
		}
	}
}

func groupNotFound(id string) error { return fmt.Errorf("memstore: group %q: %w", id, im.ErrNotFound) }

// CreateGroup implements im.GroupStore.
func (s *Store) CreateGroup(ctx context.Context, g im.Group, members []im.GroupMember) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: create group: %w", err)
	}
	if err := im.ValidateGroup(g); err != nil {
		return err
	}
	if err := im.ValidateGroupMembers(members); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups.byID[g.ID]; ok {
		return fmt.Errorf("memstore: group %q: %w", g.ID, im.ErrConflict)
	}
	ng := &group{info: g, members: make(map[string]im.GroupMember, len(members))}
	s.groups.byID[g.ID] = ng
	// The owner is whoever g names: members are put as given, so a member
	// list with no owner leaves OwnerID alone.
	owner := g.OwnerID
	s.putMembers(ng, members)
	ng.info.OwnerID = owner
	return nil
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
	info := g.info
	info.MemberCount = len(g.members)
	return info, nil
}

// UpdateGroup implements im.GroupStore.
func (s *Store) UpdateGroup(ctx context.Context, g im.Group) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: update group: %w", err)
	}
	if err := im.ValidateGroup(g); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.groups.byID[g.ID]
	if !ok {
		return groupNotFound(g.ID)
	}
	g.CreatedAt = old.info.CreatedAt
	old.info = g
	return nil
}

// DeleteGroup implements im.GroupStore.
func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: delete group: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups.byID[id]
	if !ok {
		return groupNotFound(id)
	}
	for u := range g.members {
		delete(s.groups.ofUser[u], id)
	}
	delete(s.groups.byID, id)
	return nil
}

// PutGroupMembers implements im.GroupStore.
func (s *Store) PutGroupMembers(ctx context.Context, id string, members []im.GroupMember) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: put group members: %w", err)
	}
	if err := im.ValidateGroupMembers(members); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups.byID[id]
	if !ok {
		return groupNotFound(id)
	}
	s.putMembers(g, members)
	return nil
}

// RemoveGroupMembers implements im.GroupStore.
func (s *Store) RemoveGroupMembers(ctx context.Context, id string, userIDs []string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: remove group members: %w", err)
	}
	for _, u := range userIDs {
		if err := im.ValidateID("member id", u); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups.byID[id]
	if !ok {
		return groupNotFound(id)
	}
	for _, u := range userIDs {
		if _, ok := g.members[u]; ok {
			delete(g.members, u)
			delete(s.groups.ofUser[u], id)
		}
	}
	return nil
}

// GroupMembers implements im.GroupStore.
func (s *Store) GroupMembers(ctx context.Context, id string) ([]im.GroupMember, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: group members: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups.byID[id]
	if !ok {
		return nil, groupNotFound(id)
	}
	out := make([]im.GroupMember, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	return out, nil
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
