package storetest_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imserver/imserver/im"
)

// memStore is the simplest correct im.Store: the reference the suite is
// checked against. bug, when set, breaks one rule on purpose so that the
// suite can be shown to notice.
type memStore struct {
	bug string

	mu        sync.Mutex
	convs     map[string][]im.Message // conversation → messages in seq order
	dedup     map[[2]string]im.Message
	members   map[string]map[string]bool // user → conversations
	accounts  map[string]im.Account
	usernames map[string]string // username → user id
	groups    map[string]*memGroup
	userGroup map[string]map[string]bool // user → groups
}

// memGroup is a stored group. Its MemberCount is len(members), whatever
// group.MemberCount holds.
type memGroup struct {
	group   im.Group
	members map[string]im.GroupMember // by user id
}

var _ im.Store = (*memStore)(nil)

func newMemStore(bug string) *memStore {
	return &memStore{
		bug:       bug,
		convs:     make(map[string][]im.Message),
		dedup:     make(map[[2]string]im.Message),
		members:   make(map[string]map[string]bool),
		accounts:  make(map[string]im.Account),
		usernames: make(map[string]string),
		groups:    make(map[string]*memGroup),
		userGroup: make(map[string]map[string]bool),
	}
}

func (s *memStore) ctxErr(ctx context.Context) error {
	if s.bug == "ignore-ctx" {
		return nil
	}
	return ctx.Err()
}

func (s *memStore) validate(r im.AppendRequest) error {
	if s.bug == "no-validation" {
		return nil
	}
	return im.ValidateAppend(r)
}

func clone(m im.Message) im.Message {
	m.Content = bytes.Clone(m.Content)
	return m
}

func (s *memStore) AppendMessages(ctx context.Context, batch []im.AppendRequest) ([]im.AppendResult, error) {
	if err := s.ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res := make([]im.AppendResult, len(batch))
	for i, r := range batch {
		if err := s.validate(r); err != nil {
			res[i].Err = err
			continue
		}
		m := clone(r.Message)
		key := [2]string{m.SenderID, m.ClientMsgID}
		if s.bug == "dedup-ignores-sender" {
			key[0] = ""
		}
		if orig, ok := s.dedup[key]; ok && s.bug != "no-dedup" {
			res[i] = im.AppendResult{Message: clone(orig), Duplicate: true}
			continue
		}
		msgs, exists := s.convs[m.ConversationID]
		if !exists || s.bug == "members-every-append" {
			for _, u := range r.Members {
				if s.members[u] == nil {
					s.members[u] = make(map[string]bool)
				}
				s.members[u][m.ConversationID] = true
			}
		}
		m.Seq = int64(len(msgs)) + 1
		if s.bug == "seq-gap" && m.Seq == 2 {
			m.Seq = 3
		}
		if s.bug == "truncate-ms" {
			m.CreatedAt = m.CreatedAt.Truncate(time.Millisecond)
		}
		s.convs[m.ConversationID] = append(msgs, m)
		s.dedup[key] = m
		res[i].Message = clone(m)
	}
	return res, nil
}

func (s *memStore) Messages(ctx context.Context, conv string, from, to int64, limit int) ([]im.Message, error) {
	if err := s.ctxErr(ctx); err != nil {
		return nil, err
	}
	if s.bug == "limit-off-by-one" {
		limit++
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []im.Message
	for _, m := range s.convs[conv] {
		if len(out) == limit {
			break
		}
		if m.Seq >= from && (to <= 0 || m.Seq <= to) {
			out = append(out, clone(m))
		}
	}
	return out, nil
}

func (s *memStore) MessagesBefore(ctx context.Context, conv string, before int64, limit int) ([]im.Message, error) {
	if err := s.ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []im.Message
	msgs := s.convs[conv]
	for i := len(msgs) - 1; i >= 0 && len(out) < limit; i-- {
		if before <= 0 || msgs[i].Seq < before {
			out = append(out, clone(msgs[i]))
		}
	}
	if s.bug != "before-descending" {
		slices.Reverse(out)
	}
	return out, nil
}

func (s *memStore) Conversation(ctx context.Context, id string) (im.Conversation, error) {
	if err := s.ctxErr(ctx); err != nil {
		return im.Conversation{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	msgs, ok := s.convs[id]
	if !ok {
		return im.Conversation{}, fmt.Errorf("conversation %q: %w", id, im.ErrNotFound)
	}
	return im.Conversation{ID: id, MaxSeq: msgs[len(msgs)-1].Seq}, nil
}

func (s *memStore) UserConversations(ctx context.Context, userID string) ([]im.Conversation, error) {
	if err := s.ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []im.Conversation
	for id := range s.members[userID] {
		msgs := s.convs[id]
		out = append(out, im.Conversation{ID: id, MaxSeq: msgs[len(msgs)-1].Seq})
	}
	return out, nil
}

func (s *memStore) usernameKey(name string) string {
	if s.bug == "username-fold" {
		return strings.ToLower(name)
	}
	return name
}

func (s *memStore) CreateAccount(ctx context.Context, a im.Account) error {
	if err := s.ctxErr(ctx); err != nil {
		return err
	}
	if s.bug != "no-validation" {
		if err := im.ValidateID("user id", a.UserID); err != nil {
			return err
		}
		if err := im.ValidateID("username", a.Username); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[a.UserID]; ok {
		return fmt.Errorf("user id taken: %w", im.ErrConflict)
	}
	if _, ok := s.usernames[s.usernameKey(a.Username)]; ok {
		return fmt.Errorf("username taken: %w", im.ErrConflict)
	}
	a.PasswordHash = bytes.Clone(a.PasswordHash)
	s.accounts[a.UserID] = a
	s.usernames[s.usernameKey(a.Username)] = a.UserID
	return nil
}

func (s *memStore) Account(ctx context.Context, userID string) (im.Account, error) {
	if err := s.ctxErr(ctx); err != nil {
		return im.Account{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[userID]
	if !ok {
		return im.Account{}, fmt.Errorf("account %q: %w", userID, im.ErrNotFound)
	}
	return a, nil
}

func (s *memStore) AccountByUsername(ctx context.Context, username string) (im.Account, error) {
	if err := s.ctxErr(ctx); err != nil {
		return im.Account{}, err
	}
	s.mu.Lock()
	id, ok := s.usernames[s.usernameKey(username)]
	s.mu.Unlock()
	if !ok {
		return im.Account{}, fmt.Errorf("username %q: %w", username, im.ErrNotFound)
	}
	return s.Account(ctx, id)
}

func (s *memStore) validateGroup(g im.Group) error {
	if s.bug == "no-validation" {
		return nil
	}
	return im.ValidateGroup(g)
}

// validateMembers is im.ValidateGroupMembers, unless a bug skips it.
func (s *memStore) validateMembers(members []im.GroupMember) error {
	if s.bug == "no-validation" || s.bug == "group-partial-put" {
		return nil
	}
	return im.ValidateGroupMembers(members)
}

// putMembers adds members to g, keeping the JoinedAt of existing ones.
// The caller holds s.mu and has validated members.
func (s *memStore) putMembers(g *memGroup, members []im.GroupMember) {
	for _, m := range members {
		if old, ok := g.members[m.UserID]; ok && s.bug != "group-put-resets-joinedat" {
			m.JoinedAt = old.JoinedAt
		}
		g.members[m.UserID] = m
		if s.userGroup[m.UserID] == nil {
			s.userGroup[m.UserID] = make(map[string]bool)
		}
		s.userGroup[m.UserID][g.group.ID] = true
	}
}

func groupNotFound(id string) error { return fmt.Errorf("group %q: %w", id, im.ErrNotFound) }

func (s *memStore) CreateGroup(ctx context.Context, g im.Group, members []im.GroupMember) error {
	if err := s.ctxErr(ctx); err != nil {
		return err
	}
	if err := s.validateGroup(g); err != nil {
		return err
	}
	if err := s.validateMembers(members); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups[g.ID]; ok && s.bug != "group-create-overwrites" {
		return fmt.Errorf("group %q: %w", g.ID, im.ErrConflict)
	}
	if s.bug == "group-create-racy" {
		// Check and write in two steps, as a store without a transaction
		// might.
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
		s.mu.Lock()
	}
	mg := &memGroup{group: g, members: make(map[string]im.GroupMember, len(members))}
	s.groups[g.ID] = mg
	s.putMembers(mg, members)
	return nil
}

func (s *memStore) Group(ctx context.Context, id string) (im.Group, error) {
	if err := s.ctxErr(ctx); err != nil {
		return im.Group{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mg, ok := s.groups[id]
	if !ok {
		return im.Group{}, groupNotFound(id)
	}
	g := mg.group
	if s.bug != "group-count-as-given" {
		g.MemberCount = len(mg.members)
	}
	return g, nil
}

func (s *memStore) UpdateGroup(ctx context.Context, g im.Group) error {
	if err := s.ctxErr(ctx); err != nil {
		return err
	}
	if err := s.validateGroup(g); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mg, ok := s.groups[g.ID]
	if !ok {
		return groupNotFound(g.ID)
	}
	if s.bug != "group-update-createdat" {
		g.CreatedAt = mg.group.CreatedAt
	}
	mg.group = g
	return nil
}

func (s *memStore) DeleteGroup(ctx context.Context, id string) error {
	if err := s.ctxErr(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mg, ok := s.groups[id]
	if !ok {
		return groupNotFound(id)
	}
	if s.bug != "group-delete-keeps-members" {
		for u := range mg.members {
			delete(s.userGroup[u], id)
		}
	}
	delete(s.groups, id)
	return nil
}

func (s *memStore) PutGroupMembers(ctx context.Context, id string, members []im.GroupMember) error {
	if err := s.ctxErr(ctx); err != nil {
		return err
	}
	if err := s.validateMembers(members); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mg, ok := s.groups[id]
	if !ok {
		return groupNotFound(id)
	}
	if s.bug == "group-partial-put" {
		// Validate while writing, so that the members before a bad one
		// stay.
		for _, m := range members {
			if err := im.ValidateGroupMember(m); err != nil {
				return err
			}
			s.putMembers(mg, []im.GroupMember{m})
		}
		return nil
	}
	s.putMembers(mg, members)
	for _, m := range members {
		if m.Role == im.RoleOwner && s.bug != "group-owner-not-set" {
			mg.group.OwnerID = m.UserID
		}
	}
	return nil
}

func (s *memStore) RemoveGroupMembers(ctx context.Context, id string, userIDs []string) error {
	if err := s.ctxErr(ctx); err != nil {
		return err
	}
	if s.bug != "no-validation" {
		for _, u := range userIDs {
			if err := im.ValidateID("member id", u); err != nil {
				return err
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mg, ok := s.groups[id]
	if !ok {
		return groupNotFound(id)
	}
	for _, u := range userIDs {
		if _, ok := mg.members[u]; !ok {
			continue
		}
		delete(mg.members, u)
		if s.bug != "group-remove-keeps-index" {
			delete(s.userGroup[u], id)
		}
	}
	return nil
}

func (s *memStore) GroupMembers(ctx context.Context, id string) ([]im.GroupMember, error) {
	if err := s.ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mg, ok := s.groups[id]
	if !ok {
		return nil, groupNotFound(id)
	}
	out := make([]im.GroupMember, 0, len(mg.members))
	for _, m := range mg.members {
		out = append(out, m)
	}
	return out, nil
}

func (s *memStore) UserGroups(ctx context.Context, userID string) ([]string, error) {
	if err := s.ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.userGroup[userID]))
	for id := range s.userGroup[userID] {
		out = append(out, id)
	}
	return out, nil
}
