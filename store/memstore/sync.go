package memstore

import (
	"context"
	"fmt"

	"github.com/imserver/imserver/im"
)

// SyncConversations implements im.SyncStore.
func (s *Store) SyncConversations(ctx context.Context, userID string) ([]im.Conversation, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: sync conversations: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.userConversations(userID)
	seen := make(map[string]bool, len(out))
	for _, c := range out {
		seen[c.ID] = true
	}
	for _, g := range s.userGroupIDs(userID) {
		id := im.GroupConversationID(g)
		if c, ok := s.conversation(id); ok && !seen[id] {
			seen[id] = true
			grp := s.groups.byID[g]
			c.ReadFrom = im.FirstReadableSeq(grp.info, grp.members[userID])
			out = append(out, c)
		}
	}
	return out, nil
}

// MessageRanges implements im.SyncStore.
func (s *Store) MessageRanges(ctx context.Context, ranges []im.MessageRange, limit int) ([][]im.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: message ranges: %w", err)
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]im.Message, len(ranges))
	for i, r := range ranges {
		out[i] = s.messages(r.ConversationID, r.From, r.To, limit)
	}
	return out, nil
}
