package memstore

import (
	"context"
	"fmt"
	"time"

	"github.com/imserver/imserver/im"
)

var _ im.ReadStateStore = (*Store)(nil)

// positionKey names one user's positions in one conversation.
type positionKey struct{ user, conv string }

// positions are the read and delivered positions stored by receipts. A
// sender's own messages move her Read too; that part is not stored here
// but derived from the messages when read (sentUpTo), which is what a
// Store without transactions over both would have to do as well.
type positions struct {
	read, delivered, mentioned int64
	updated                    time.Time
}

// UpdateReadStates implements im.ReadStateStore.
func (s *Store) UpdateReadStates(ctx context.Context, states []im.ReadState) ([]im.ReadState, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: update read states: %w", err)
	}
	for _, st := range states {
		if err := im.ValidateReadState(st); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.positions == nil {
		s.positions = make(map[positionKey]positions)
		s.readers = make(map[string]map[string]bool)
	}
	for _, st := range states {
		var maxSeq int64
		if c, ok := s.conversation(st.ConversationID); ok {
			maxSeq = c.MaxSeq
		}
		k := positionKey{st.UserID, st.ConversationID}
		old := s.positions[k]
		p := old
		p.read = max(p.read, min(st.Read, maxSeq))
		p.delivered = max(p.delivered, min(st.Delivered, maxSeq))
		p.mentioned = max(p.mentioned, min(st.Mentioned, maxSeq))
		if p == old {
			continue
		}
		p.updated = st.UpdatedAt
		s.positions[k] = p
		if s.readers[st.ConversationID] == nil {
			s.readers[st.ConversationID] = make(map[string]bool)
		}
		s.readers[st.ConversationID][st.UserID] = true
	}
	out := make([]im.ReadState, len(states))
	for i, st := range states {
		out[i] = s.readState(st.UserID, st.ConversationID)
	}
	return out, nil
}

// ReadStates implements im.ReadStateStore.
func (s *Store) ReadStates(ctx context.Context, userID string, convs []string) ([]im.ReadState, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: read states: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]im.ReadState, len(convs))
	for i, c := range convs {
		out[i] = s.readState(userID, c)
	}
	return out, nil
}

// ConversationReadStates implements im.ReadStateStore.
func (s *Store) ConversationReadStates(ctx context.Context, conv string) ([]im.ReadState, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: conversation read states: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	users := make(map[string]bool, len(s.readers[conv]))
	for u := range s.readers[conv] {
		users[u] = true
	}
	for _, m := range s.convs[conv] {
		users[m.SenderID] = true
	}
	out := make([]im.ReadState, 0, len(users))
	for u := range users {
		out = append(out, s.readState(u, conv))
	}
	return out, nil
}

// readState is user's state in conv. The caller holds s.mu.
func (s *Store) readState(user, conv string) im.ReadState {
	p := s.positions[positionKey{user, conv}]
	return im.ReadState{
		UserID:         user,
		ConversationID: conv,
		Read:           max(p.read, s.sentUpTo(user, conv)),
		Delivered:      p.delivered,
		Mentioned:      p.mentioned,
		UpdatedAt:      p.updated,
	}
}

// sentUpTo returns the seq of user's newest message in conv, 0 if none:
// searched from the newest message back, so it costs what the user has
// not answered. The caller holds s.mu.
func (s *Store) sentUpTo(user, conv string) int64 {
	msgs := s.convs[conv]
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].SenderID == user {
			return msgs[i].Seq
		}
	}
	return 0
}
