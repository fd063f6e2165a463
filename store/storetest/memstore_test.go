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

func validConvID(id string) error { return im.ValidateConversationID(id) }

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
	return s.appendLocked(batch), nil
}

// appendLocked is AppendMessages with s.mu held.
func (s *memStore) appendLocked(batch []im.AppendRequest) []im.AppendResult {
	res := make([]im.AppendResult, len(batch))
	for i, r := range batch {
		if err := s.validate(r); err != nil {
			res[i].Err = err
			continue
		}
		if r.MemberOf != "" {
			res[i].GroupVersion, res[i].Err = s.memberOf(r)
			if res[i].Err != nil {
				continue
			}
		}
		m := clone(r.Message)
		key := [2]string{m.SenderID, m.ClientMsgID}
		if s.bug == "dedup-ignores-sender" {
			key[0] = ""
		}
		if orig, ok := s.dedup[key]; ok && s.bug != "no-dedup" {
			res[i] = im.AppendResult{Message: clone(orig), Duplicate: true, GroupVersion: res[i].GroupVersion}
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
	return res
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

// The group code from here to the end of the file is one block: groups,
// their members and the conditional changes that append a notice in the
// same critical section as the change.

func (s *memStore) validateCreate(g im.Group, members []im.GroupMember, notice im.AppendRequest) error {
	if s.bug == "no-validation" {
		return nil
	}
	return im.ValidateCreateGroup(g, members, notice)
}

// validateChange is im.ValidateGroupChange, unless a bug skips it.
func (s *memStore) validateChange(id string, ch im.GroupChange) error {
	if s.bug == "no-validation" || s.bug == "group-partial-put" {
		return nil
	}
	return im.ValidateGroupChange(id, ch)
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

// appendNotice stores n, if set, as AppendMessages would, and returns its
// result; a duplicate is ErrConflict. The caller holds s.mu.
func (s *memStore) appendNotice(n im.AppendRequest, version int64) (im.AppendResult, error) {
	if n.Message.ConversationID == "" {
		return im.AppendResult{GroupVersion: version}, nil
	}
	if _, dup := s.dedup[[2]string{n.Message.SenderID, n.Message.ClientMsgID}]; dup {
		return im.AppendResult{}, fmt.Errorf("notice %q: %w", n.Message.ClientMsgID, im.ErrConflict)
	}
	r := s.appendLocked([]im.AppendRequest{n})[0]
	r.GroupVersion = version
	return r, r.Err
}

func (s *memStore) CreateGroup(ctx context.Context, g im.Group, members []im.GroupMember, notice im.AppendRequest) (im.AppendResult, error) {
	if err := s.ctxErr(ctx); err != nil {
		return im.AppendResult{}, err
	}
	if err := s.validateCreate(g, members, notice); err != nil {
		return im.AppendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups[g.ID]; ok && s.bug != "group-create-overwrites" {
		return im.AppendResult{}, fmt.Errorf("group %q: %w", g.ID, im.ErrConflict)
	}
	if s.bug == "group-create-racy" {
		// Check and write in two steps, as a store without a transaction
		// might.
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
		s.mu.Lock()
	}
	if s.bug != "group-notice-separate" {
		if n := notice.Message; n.ConversationID != "" {
			if _, dup := s.dedup[[2]string{n.SenderID, n.ClientMsgID}]; dup {
				return im.AppendResult{}, fmt.Errorf("notice %q: %w", n.ClientMsgID, im.ErrConflict)
			}
		}
	}
	g.Version = 1
	mg := &memGroup{group: g, members: make(map[string]im.GroupMember, len(members))}
	s.groups[g.ID] = mg
	s.putMembers(mg, members)
	return s.appendNotice(notice, 1)
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
	return s.groupOf(mg), nil
}

// groupOf returns mg's group with its count. The caller holds s.mu.
func (s *memStore) groupOf(mg *memGroup) im.Group {
	g := mg.group
	if s.bug != "group-count-as-given" {
		g.MemberCount = len(mg.members)
	}
	return g
}

func (s *memStore) ChangeGroup(ctx context.Context, id string, ch im.GroupChange) (im.AppendResult, error) {
	if err := s.ctxErr(ctx); err != nil {
		return im.AppendResult{}, err
	}
	if err := s.validateChange(id, ch); err != nil {
		return im.AppendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mg, ok := s.groups[id]
	if !ok {
		return im.AppendResult{}, groupNotFound(id)
	}
	if ch.Version != 0 && ch.Version != mg.group.Version && s.bug != "group-no-cas" {
		return im.AppendResult{}, fmt.Errorf("group %q is at version %d, not %d: %w", id, mg.group.Version, ch.Version, im.ErrConflict)
	}
	if n := ch.Notice.Message; n.ConversationID != "" && s.bug != "group-notice-separate" {
		if _, dup := s.dedup[[2]string{n.SenderID, n.ClientMsgID}]; dup {
			return im.AppendResult{}, fmt.Errorf("notice %q: %w", n.ClientMsgID, im.ErrConflict)
		}
	}
	if ch.Delete {
		if s.bug != "group-delete-keeps-members" {
			for u := range mg.members {
				delete(s.userGroup[u], id)
			}
		}
		delete(s.groups, id)
		return s.appendNotice(ch.Notice, 0)
	}

	// Decide everything before writing anything.
	owner := mg.group.OwnerID
	for _, m := range ch.Put {
		if m.Role == im.RoleOwner && s.bug != "group-owner-not-set" {
			owner = m.UserID
		}
	}
	if slices.Contains(ch.Remove, owner) {
		return im.AppendResult{}, fmt.Errorf("group %q: the owner %q cannot be removed: %w", id, owner, im.ErrInvalidArgument)
	}
	count := len(mg.members)
	for _, u := range uniqIDs(ch.Remove) {
		if _, ok := mg.members[u]; ok {
			count--
		}
	}
	for _, m := range ch.Put {
		if _, ok := mg.members[m.UserID]; !ok {
			count++
		}
	}
	if ch.MaxMembers > 0 && count > ch.MaxMembers && s.bug != "group-no-limit" {
		return im.AppendResult{}, fmt.Errorf("group %q would have %d members, the limit is %d: %w", id, count, ch.MaxMembers, im.ErrLimitExceeded)
	}
	if s.bug == "group-limit-racy" && ch.MaxMembers > 0 {
		// Check and write in two steps, as a store checking the limit
		// outside its transaction might.
		s.mu.Unlock()
		time.Sleep(100 * time.Microsecond)
		s.mu.Lock()
	}

	if ch.Update != nil {
		g := *ch.Update
		if s.bug != "group-update-createdat" {
			g.CreatedAt = mg.group.CreatedAt
		}
		g.OwnerID, g.Version = mg.group.OwnerID, mg.group.Version
		mg.group = g
	}
	for _, u := range ch.Remove {
		if _, ok := mg.members[u]; !ok {
			continue
		}
		delete(mg.members, u)
		if s.bug != "group-remove-keeps-index" {
			delete(s.userGroup[u], id)
		}
	}
	if s.bug == "group-partial-put" {
		// Validate while writing, so that the members before a bad one
		// stay.
		for _, m := range ch.Put {
			if err := im.ValidateGroupMember(m); err != nil {
				return im.AppendResult{}, err
			}
			s.putMembers(mg, []im.GroupMember{m})
		}
	} else {
		s.putMembers(mg, ch.Put)
	}
	if prev := mg.group.OwnerID; owner != prev {
		mg.group.OwnerID = owner
		if old, ok := mg.members[prev]; ok && old.Role == im.RoleOwner && s.bug != "group-two-owners" {
			old.Role = im.RoleAdmin
			mg.members[prev] = old
		}
	}
	mg.group.Version++
	version := mg.group.Version
	if s.bug == "group-notice-separate" {
		// The notice in a second step, which a crash or a refusal can
		// separate from the change.
		if r, err := s.appendNotice(ch.Notice, version); err == nil {
			return r, nil
		}
		return im.AppendResult{GroupVersion: version}, nil
	}
	return s.appendNotice(ch.Notice, version)
}

// uniqIDs returns ids without repeats.
func uniqIDs(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func (s *memStore) GroupMembers(ctx context.Context, id string) (im.Group, []im.GroupMember, error) {
	if err := s.ctxErr(ctx); err != nil {
		return im.Group{}, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mg, ok := s.groups[id]
	if !ok {
		return im.Group{}, nil, groupNotFound(id)
	}
	out := make([]im.GroupMember, 0, len(mg.members))
	for _, m := range mg.members {
		out = append(out, m)
	}
	return s.groupOf(mg), out, nil
}

func (s *memStore) GroupMember(ctx context.Context, id, userID string) (im.GroupMember, error) {
	if err := s.ctxErr(ctx); err != nil {
		return im.GroupMember{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mg, ok := s.groups[id]
	if !ok {
		return im.GroupMember{}, groupNotFound(id)
	}
	m, ok := mg.members[userID]
	if !ok {
		return im.GroupMember{}, fmt.Errorf("%q in group %q: %w", userID, id, im.ErrNotFound)
	}
	return m, nil
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

// memberOf checks r's MemberOf and returns the group's version. The
// caller holds s.mu.
func (s *memStore) memberOf(r im.AppendRequest) (int64, error) {
	mg, ok := s.groups[r.MemberOf]
	if !ok {
		return 0, fmt.Errorf("group %q does not exist: %w", r.MemberOf, im.ErrPermissionDenied)
	}
	if _, ok := mg.members[r.Message.SenderID]; !ok && s.bug != "group-no-member-check" {
		return mg.group.Version, fmt.Errorf("%q is not a member of group %q: %w", r.Message.SenderID, r.MemberOf, im.ErrPermissionDenied)
	}
	return mg.group.Version, nil
}
