package memstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth/account"
)

// Store is an in-memory im.Store. The zero value is not usable; call New.
type Store struct {
	mu       sync.Mutex
	convs    map[string][]im.Message    // conversation → messages in seq order
	dedup    map[dedupKey]im.Message    // (sender, client_msg_id) → first message
	members  map[string]map[string]bool // user → conversations it is a member of
	accounts accountState
	groups   groupState
	// positions are the stored read and delivered positions; readers
	// lists, per conversation, the users who have any.
	positions map[positionKey]positions
	readers   map[string]map[string]bool
	// settings are each user's settings of her conversations.
	settings map[positionKey]im.ConversationSettings
	// friendState holds friendships, friend requests and blocks.
	friendState friendState
}

type dedupKey struct{ sender, clientMsgID string }

var (
	_ im.Store             = (*Store)(nil)
	_ im.SyncStore         = (*Store)(nil)
	_ im.RecallStore       = (*Store)(nil)
	_ account.AccountStore = (*Store)(nil)
)

// New returns an empty Store.
func New() *Store {
	return &Store{
		convs:    make(map[string][]im.Message),
		dedup:    make(map[dedupKey]im.Message),
		members:  make(map[string]map[string]bool),
		accounts: newAccountState(),
		groups:   newGroupState(),
	}
}

// clone returns m with a Content of its own, so that neither a caller nor
// the Store can change what the other holds.
func clone(m im.Message) im.Message {
	m.Content = bytes.Clone(m.Content)
	return m
}

func checkLimit(limit int) error {
	if limit < 1 {
		return fmt.Errorf("memstore: limit %d: %w", limit, im.ErrInvalidArgument)
	}
	return nil
}

// AppendMessages implements im.MessageStore.
func (s *Store) AppendMessages(ctx context.Context, batch []im.AppendRequest) ([]im.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: append: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res := make([]im.AppendResult, len(batch))
	for i, r := range batch {
		if err := im.ValidateAppend(r); err != nil {
			res[i].Err = err
			continue
		}
		var version int64
		if r.MemberOf != "" {
			var err error
			if version, err = s.memberOf(r); err != nil {
				res[i] = im.AppendResult{Err: err, GroupVersion: version}
				continue
			}
		}
		res[i] = s.appendLocked(r)
		res[i].GroupVersion = version
	}
	return res, nil
}

// appendLocked stores r, or finds its duplicate. The caller holds s.mu and
// has validated r.
func (s *Store) appendLocked(r im.AppendRequest) im.AppendResult {
	m := clone(r.Message)
	key := dedupKey{m.SenderID, m.ClientMsgID}
	if orig, ok := s.dedup[key]; ok {
		return im.AppendResult{Message: clone(orig), Duplicate: true}
	}
	msgs, exists := s.convs[m.ConversationID]
	if !exists {
		for _, u := range r.Members {
			if s.members[u] == nil {
				s.members[u] = make(map[string]bool)
			}
			s.members[u][m.ConversationID] = true
		}
	}
	m.Seq = int64(len(msgs)) + 1
	s.convs[m.ConversationID] = append(msgs, m)
	s.dedup[key] = m
	return im.AppendResult{Message: clone(m)}
}

// Messages implements im.MessageStore.
func (s *Store) Messages(ctx context.Context, conv string, from, to int64, limit int) ([]im.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: messages: %w", err)
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messages(conv, from, to, limit), nil
}

// messages returns conv's messages with seq in [from, to] (to <= 0: no
// upper bound), at most limit. Seqs are 1, 2, 3, … so the message with seq
// n is at index n-1. The caller holds s.mu.
func (s *Store) messages(conv string, from, to int64, limit int) []im.Message {
	msgs := s.convs[conv]
	from = max(from, 1)
	if to <= 0 || to > int64(len(msgs)) {
		to = int64(len(msgs))
	}
	var out []im.Message
	for seq := from; seq <= to && len(out) < limit; seq++ {
		out = append(out, clone(msgs[seq-1]))
	}
	return out
}

// MessagesBefore implements im.MessageStore.
func (s *Store) MessagesBefore(ctx context.Context, conv string, before int64, limit int) ([]im.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: messages before: %w", err)
	}
	if err := checkLimit(limit); err != nil {
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
	slices.Reverse(out)
	return out, nil
}

// Conversation implements im.ConversationStore.
func (s *Store) Conversation(ctx context.Context, id string) (im.Conversation, error) {
	if err := ctx.Err(); err != nil {
		return im.Conversation{}, fmt.Errorf("memstore: conversation: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conversation(id)
	if !ok {
		return im.Conversation{}, fmt.Errorf("memstore: conversation %q: %w", id, im.ErrNotFound)
	}
	return c, nil
}

// conversation returns the summary of id, if it has messages. The caller
// holds s.mu.
func (s *Store) conversation(id string) (im.Conversation, bool) {
	msgs, ok := s.convs[id]
	if !ok {
		return im.Conversation{}, false
	}
	return im.Conversation{ID: id, MaxSeq: msgs[len(msgs)-1].Seq}, true
}

// UserConversations implements im.ConversationStore.
func (s *Store) UserConversations(ctx context.Context, userID string) ([]im.Conversation, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: user conversations: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userConversations(userID), nil
}

// userConversations is UserConversations; the caller holds s.mu.
func (s *Store) userConversations(userID string) []im.Conversation {
	out := make([]im.Conversation, 0, len(s.members[userID]))
	for id := range s.members[userID] {
		c, _ := s.conversation(id)
		out = append(out, c)
	}
	return out
}
