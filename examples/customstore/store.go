package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/imserver/imserver/im"
)

// MemoryStore keeps everything in maps behind one mutex. It is the shape of
// any im.Store: replace each map with a table of your database and each
// critical section with a transaction, and keep the rules the comments
// point out. It passes store/storetest (see store_test.go); nothing is
// durable, so it is for tests and demos, not production.
type MemoryStore struct {
	mu            sync.Mutex
	conversations map[string]*conversation
	byClientID    map[clientKey]msgRef       // dedup index: (sender, client_msg_id)
	userConvs     map[string]map[string]bool // membership index: user → conversation ids
	accounts      map[string]im.Account      // by user id
	usernames     map[string]string          // username → user id
	groups        map[string]*group          // by group id
	userGroups    map[string]map[string]bool // membership index: user → group ids
}

type conversation struct {
	messages []im.Message // messages[i].Seq == i+1: seqs are gap-free by construction
}

type clientKey struct{ sender, clientMsgID string }

// group is a group with its members. The stored info.MemberCount is never
// read: the count is len(members), so it can't drift from the members (in
// SQL: COUNT(*) of the member rows, or a counter column written in the same
// transaction as they are).
type group struct {
	info    im.Group
	members map[string]im.GroupMember // by user id
}

type msgRef struct {
	conv string
	seq  int64
}

// The compiler checks that MemoryStore is a complete im.Store.
var _ im.Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		conversations: map[string]*conversation{},
		byClientID:    map[clientKey]msgRef{},
		userConvs:     map[string]map[string]bool{},
		accounts:      map[string]im.Account{},
		usernames:     map[string]string{},
		groups:        map[string]*group{},
		userGroups:    map[string]map[string]bool{},
	}
}

// AppendMessages stores the batch atomically. Rule 1: validate everything
// first, so a refused request writes nothing. Rule 2: seq and dedup are
// decided inside the same critical section (in SQL: the same transaction,
// with the conversation row locked) as the write.
func (s *MemoryStore) AppendMessages(ctx context.Context, batch []im.AppendRequest) ([]im.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appendLocked(batch), nil
}

// appendLocked is AppendMessages with s.mu held. Rule 4: a group message
// (MemberOf set) is checked against the members inside the same critical
// section as its write (in SQL: share-lock the group's row, then read the
// membership, in the append's transaction).
func (s *MemoryStore) appendLocked(batch []im.AppendRequest) []im.AppendResult {
	results := make([]im.AppendResult, len(batch))
	for i, req := range batch {
		if err := im.ValidateAppend(req); err != nil {
			results[i].Err = err
			continue
		}
		if req.MemberOf != "" {
			gr := s.groups[req.MemberOf]
			if gr == nil {
				results[i].Err = fmt.Errorf("group %q does not exist: %w", req.MemberOf, im.ErrPermissionDenied)
				continue
			}
			results[i].GroupVersion = gr.info.Version
			if _, ok := gr.members[req.Message.SenderID]; !ok {
				results[i].Err = fmt.Errorf("%q is not a member of group %q: %w", req.Message.SenderID, req.MemberOf, im.ErrPermissionDenied)
				continue
			}
		}
		m := req.Message
		key := clientKey{m.SenderID, m.ClientMsgID}
		if ref, ok := s.byClientID[key]; ok {
			// A retry: hand back the original, write nothing.
			results[i] = im.AppendResult{Message: s.message(ref), Duplicate: true, GroupVersion: results[i].GroupVersion}
			continue
		}
		c := s.conversations[m.ConversationID]
		if c == nil {
			// The first message creates the conversation; only then are
			// Members recorded.
			c = &conversation{}
			s.conversations[m.ConversationID] = c
			for _, u := range req.Members {
				if s.userConvs[u] == nil {
					s.userConvs[u] = map[string]bool{}
				}
				s.userConvs[u][m.ConversationID] = true
			}
		}
		m.Seq = int64(len(c.messages)) + 1
		m.Content = bytes.Clone(m.Content) // never keep the caller's buffer
		c.messages = append(c.messages, m)
		s.byClientID[key] = msgRef{m.ConversationID, m.Seq}
		results[i] = im.AppendResult{Message: clone(m), GroupVersion: results[i].GroupVersion}
	}
	return results
}

func (s *MemoryStore) message(ref msgRef) im.Message {
	return clone(s.conversations[ref.conv].messages[ref.seq-1])
}

// clone copies a message so callers can't change what is stored.
func clone(m im.Message) im.Message {
	m.Content = bytes.Clone(m.Content)
	return m
}

// Messages returns seqs from..to (to <= 0: no bound), at most limit.
func (s *MemoryStore) Messages(ctx context.Context, conv string, from, to int64, limit int) ([]im.Message, error) {
	if err := readArgs(ctx, conv, limit); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conversations[conv]
	if c == nil {
		return []im.Message{}, nil
	}
	from = max(from, 1)
	last := int64(len(c.messages))
	if to > 0 {
		last = min(last, to)
	}
	out := []im.Message{}
	for seq := from; seq <= last && len(out) < limit; seq++ {
		out = append(out, clone(c.messages[seq-1]))
	}
	return out, nil
}

// MessagesBefore returns the page of up to limit messages just older than
// seq before (before <= 0: the newest page), oldest first.
func (s *MemoryStore) MessagesBefore(ctx context.Context, conv string, before int64, limit int) ([]im.Message, error) {
	if err := readArgs(ctx, conv, limit); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conversations[conv]
	if c == nil {
		return []im.Message{}, nil
	}
	end := int64(len(c.messages)) // exclusive upper bound, as a count
	if before > 0 {
		end = min(end, before-1)
	}
	start := max(end-int64(limit), 0)
	out := make([]im.Message, 0, end-start)
	for _, m := range c.messages[start:end] {
		out = append(out, clone(m))
	}
	return out, nil
}

func readArgs(ctx context.Context, conv string, limit int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := im.ValidateConversationID(conv); err != nil {
		return err
	}
	if limit < 1 {
		return fmt.Errorf("limit %d: %w", limit, im.ErrInvalidArgument)
	}
	return nil
}

// Conversation returns the summary, or im.ErrNotFound before the first
// message.
func (s *MemoryStore) Conversation(ctx context.Context, id string) (im.Conversation, error) {
	if err := ctx.Err(); err != nil {
		return im.Conversation{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conversations[id]
	if c == nil {
		return im.Conversation{}, fmt.Errorf("conversation %q: %w", id, im.ErrNotFound)
	}
	return im.Conversation{ID: id, MaxSeq: int64(len(c.messages))}, nil
}

// UserConversations lists the conversations of userID with their max seq.
func (s *MemoryStore) UserConversations(ctx context.Context, userID string) ([]im.Conversation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []im.Conversation{}
	for id := range s.userConvs[userID] {
		out = append(out, im.Conversation{ID: id, MaxSeq: int64(len(s.conversations[id].messages))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// CreateAccount refuses a taken user id or username with im.ErrConflict.
func (s *MemoryStore) CreateAccount(ctx context.Context, a im.Account) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := im.ValidateID("user id", a.UserID); err != nil {
		return err
	}
	if err := im.ValidateID("username", a.Username); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.accounts[a.UserID]; taken {
		return fmt.Errorf("user id %q: %w", a.UserID, im.ErrConflict)
	}
	if _, taken := s.usernames[a.Username]; taken {
		return fmt.Errorf("username %q: %w", a.Username, im.ErrConflict)
	}
	a.PasswordHash = bytes.Clone(a.PasswordHash)
	s.accounts[a.UserID] = a
	s.usernames[a.Username] = a.UserID
	return nil
}

// Account returns the account of userID or im.ErrNotFound.
func (s *MemoryStore) Account(ctx context.Context, userID string) (im.Account, error) {
	if err := ctx.Err(); err != nil {
		return im.Account{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[userID]
	if !ok {
		return im.Account{}, fmt.Errorf("account %q: %w", userID, im.ErrNotFound)
	}
	a.PasswordHash = bytes.Clone(a.PasswordHash)
	return a, nil
}

// AccountByUsername returns the account of username or im.ErrNotFound.
func (s *MemoryStore) AccountByUsername(ctx context.Context, username string) (im.Account, error) {
	s.mu.Lock()
	id, ok := s.usernames[username]
	s.mu.Unlock()
	if !ok {
		if err := ctx.Err(); err != nil {
			return im.Account{}, err
		}
		return im.Account{}, fmt.Errorf("username %q: %w", username, im.ErrNotFound)
	}
	return s.Account(ctx, id)
}

// CreateGroup stores g and its first members and appends notice, or
// nothing. Validate everything first (rule 3); a taken id is
// im.ErrConflict. In SQL the group row, the member rows and the notice go
// in one transaction, and the primary key on the group id makes two racing
// creates end in one row and one ErrConflict.
func (s *MemoryStore) CreateGroup(ctx context.Context, g im.Group, members []im.GroupMember, notice im.AppendRequest) (im.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return im.AppendResult{}, err
	}
	if err := im.ValidateCreateGroup(g, members, notice); err != nil {
		return im.AppendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.groups[g.ID]; taken {
		return im.AppendResult{}, fmt.Errorf("group %q: %w", g.ID, im.ErrConflict)
	}
	if err := s.noticeFree(notice); err != nil {
		return im.AppendResult{}, err
	}
	g.Version = 1
	gr := &group{info: g, members: make(map[string]im.GroupMember, len(members))}
	s.groups[g.ID] = gr
	s.putMembers(gr, members)
	return s.appendNotice(notice, 1), nil
}

// noticeFree refuses a notice whose dedup key is taken: a change is never
// stored without its notice. The caller holds s.mu.
func (s *MemoryStore) noticeFree(n im.AppendRequest) error {
	if n.Message.ConversationID == "" {
		return nil
	}
	if _, dup := s.byClientID[clientKey{n.Message.SenderID, n.Message.ClientMsgID}]; dup {
		return fmt.Errorf("notice %q: %w", n.Message.ClientMsgID, im.ErrConflict)
	}
	return nil
}

// appendNotice appends n, if set, with the group's version. The caller
// holds s.mu and checked n with noticeFree.
func (s *MemoryStore) appendNotice(n im.AppendRequest, version int64) im.AppendResult {
	if n.Message.ConversationID == "" {
		return im.AppendResult{GroupVersion: version}
	}
	r := s.appendLocked([]im.AppendRequest{n})[0]
	r.GroupVersion = version
	return r
}

// putMembers adds members to gr; a user who is a member already gets the
// new Role and keeps the JoinedAt stored (in SQL: INSERT … ON CONFLICT
// (group_id, user_id) DO UPDATE SET role = excluded.role). The caller holds
// s.mu and has validated members.
func (s *MemoryStore) putMembers(gr *group, members []im.GroupMember) {
	for _, m := range members {
		if old, ok := gr.members[m.UserID]; ok {
			m.JoinedAt = old.JoinedAt
		}
		gr.members[m.UserID] = m
		if s.userGroups[m.UserID] == nil {
			s.userGroups[m.UserID] = map[string]bool{}
		}
		s.userGroups[m.UserID][gr.info.ID] = true
	}
}

// Group returns the group with its current member count, or im.ErrNotFound.
func (s *MemoryStore) Group(ctx context.Context, id string) (im.Group, error) {
	if err := ctx.Err(); err != nil {
		return im.Group{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	gr := s.groups[id]
	if gr == nil {
		return im.Group{}, fmt.Errorf("group %q: %w", id, im.ErrNotFound)
	}
	g := gr.info
	g.MemberCount = len(gr.members)
	return g, nil
}

// ChangeGroup applies ch to group id and appends its notice, or writes
// nothing. Rule 5: the version check, the owner rule and the member limit
// are judged inside the same critical section as the write (in SQL: lock
// the group's row first, SELECT … FOR UPDATE, in the change's
// transaction), so that servers sharing the store cannot both pass them.
func (s *MemoryStore) ChangeGroup(ctx context.Context, id string, ch im.GroupChange) (im.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return im.AppendResult{}, err
	}
	if err := im.ValidateGroupChange(id, ch); err != nil {
		return im.AppendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	gr := s.groups[id]
	if gr == nil {
		return im.AppendResult{}, fmt.Errorf("group %q: %w", id, im.ErrNotFound)
	}
	if ch.Version != 0 && ch.Version != gr.info.Version {
		return im.AppendResult{}, fmt.Errorf("group %q changed: %w", id, im.ErrConflict)
	}
	if err := s.noticeFree(ch.Notice); err != nil {
		return im.AppendResult{}, err
	}
	if ch.Delete {
		for u := range gr.members {
			delete(s.userGroups[u], id)
		}
		delete(s.groups, id)
		return s.appendNotice(ch.Notice, 0), nil
	}
	// Decide everything, then write.
	owner := gr.info.OwnerID
	count := len(gr.members)
	for _, m := range ch.Put {
		if m.Role == im.RoleOwner {
			owner = m.UserID
		}
		if _, ok := gr.members[m.UserID]; !ok {
			count++
		}
	}
	removed := map[string]bool{}
	for _, u := range ch.Remove {
		if u == owner {
			return im.AppendResult{}, fmt.Errorf("the owner cannot be removed: %w", im.ErrInvalidArgument)
		}
		if _, ok := gr.members[u]; ok && !removed[u] {
			removed[u] = true
			count--
		}
	}
	if ch.MaxMembers > 0 && count > ch.MaxMembers {
		return im.AppendResult{}, fmt.Errorf("group %q would have %d members: %w", id, count, im.ErrLimitExceeded)
	}
	if ch.Update != nil {
		u := *ch.Update
		u.OwnerID, u.CreatedAt, u.Version = gr.info.OwnerID, gr.info.CreatedAt, gr.info.Version
		gr.info = u
	}
	for u := range removed {
		delete(gr.members, u)
		delete(s.userGroups[u], id)
	}
	s.putMembers(gr, ch.Put)
	if prev := gr.info.OwnerID; owner != prev {
		// Exactly one owner: the previous one is an admin now, unless the
		// change gave it a role.
		if m, ok := gr.members[prev]; ok && m.Role == im.RoleOwner {
			m.Role = im.RoleAdmin
			gr.members[prev] = m
		}
		gr.info.OwnerID = owner
	}
	gr.info.Version++
	return s.appendNotice(ch.Notice, gr.info.Version), nil
}

// GroupMembers returns group id and its members, ordered by user id, in
// one critical section (in SQL: one statement), so that they agree.
func (s *MemoryStore) GroupMembers(ctx context.Context, id string) (im.Group, []im.GroupMember, error) {
	if err := ctx.Err(); err != nil {
		return im.Group{}, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	gr := s.groups[id]
	if gr == nil {
		return im.Group{}, nil, fmt.Errorf("group %q: %w", id, im.ErrNotFound)
	}
	out := make([]im.GroupMember, 0, len(gr.members))
	for _, m := range gr.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b im.GroupMember) int { return strings.Compare(a.UserID, b.UserID) })
	g := gr.info
	g.MemberCount = len(gr.members)
	return g, out, nil
}

// GroupMember returns userID's membership of group id, or im.ErrNotFound.
func (s *MemoryStore) GroupMember(ctx context.Context, id, userID string) (im.GroupMember, error) {
	if err := ctx.Err(); err != nil {
		return im.GroupMember{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if gr := s.groups[id]; gr != nil {
		if m, ok := gr.members[userID]; ok {
			return m, nil
		}
	}
	return im.GroupMember{}, fmt.Errorf("%q in group %q: %w", userID, id, im.ErrNotFound)
}

// UserGroups returns the ids of the groups userID is a member of, sorted.
func (s *MemoryStore) UserGroups(ctx context.Context, userID string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.userGroups[userID]))
	for id := range s.userGroups[userID] {
		out = append(out, id)
	}
	slices.Sort(out)
	return out, nil
}
