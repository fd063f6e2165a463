package memstore

import (
	"context"
	"fmt"
	"time"

	"github.com/imserver/imserver/im"
)

// MessageByServerID implements im.RecallStore. It searches conv from the
// newest message backwards, since recalls are of recent messages mostly.
func (s *Store) MessageByServerID(ctx context.Context, conv, serverID string) (im.Message, error) {
	if err := ctx.Err(); err != nil {
		return im.Message{}, fmt.Errorf("memstore: message by server id: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	msgs := s.convs[conv]
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].ServerID == serverID {
			return clone(msgs[i]), nil
		}
	}
	return im.Message{}, fmt.Errorf("memstore: message %q of %q: %w", serverID, conv, im.ErrNotFound)
}

// RecallMessage implements im.RecallStore. The tombstone replaces the
// message in its conversation and in the dedup index alike, so that no
// copy of the content is left behind.
func (s *Store) RecallMessage(ctx context.Context, conv string, seq int64, by string, at time.Time) (im.Message, error) {
	if err := ctx.Err(); err != nil {
		return im.Message{}, fmt.Errorf("memstore: recall: %w", err)
	}
	if err := im.ValidateID("recalled by", by); err != nil {
		return im.Message{}, fmt.Errorf("memstore: recall: %w", err)
	}
	if at.IsZero() {
		return im.Message{}, fmt.Errorf("memstore: recall: zero time: %w", im.ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	msgs := s.convs[conv]
	if seq < 1 || seq > int64(len(msgs)) {
		return im.Message{}, fmt.Errorf("memstore: message %d of %q: %w", seq, conv, im.ErrNotFound)
	}
	m := &msgs[seq-1]
	if !m.Revoked() {
		m.Content, m.Extra, m.AttachedInfo = nil, "", ""
		m.RevokedBy, m.RevokedAt = by, at
		s.dedup[dedupKey{m.SenderID, m.ClientMsgID}] = *m
	}
	return clone(*m), nil
}
