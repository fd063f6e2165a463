package memstore

import (
	"context"
	"fmt"
	"time"

	"github.com/imserver/imserver/im"
)

var _ im.ConversationSettingsStore = (*Store)(nil)

// UpdateConversationSettings implements im.ConversationSettingsStore.
func (s *Store) UpdateConversationSettings(ctx context.Context, userID, conv string, ch im.SettingsChange) (im.ConversationSettings, error) {
	if err := ctx.Err(); err != nil {
		return im.ConversationSettings{}, fmt.Errorf("memstore: update conversation settings: %w", err)
	}
	if err := im.ValidateSettingsChange(userID, conv, ch); err != nil {
		return im.ConversationSettings{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var maxSeq int64
	if c, ok := s.conversation(conv); ok {
		maxSeq = c.MaxSeq
	}
	k := positionKey{userID, conv}
	old := s.settingsOf(userID, conv)
	st := ch.Apply(old, maxSeq)
	if st == old {
		return st, nil
	}
	st.UpdatedAt = ch.At
	if s.settings == nil {
		s.settings = make(map[positionKey]im.ConversationSettings)
	}
	s.settings[k] = st
	return st, nil
}

// ConversationSettings implements im.ConversationSettingsStore.
func (s *Store) ConversationSettings(ctx context.Context, userID string, convs []string) ([]im.ConversationSettings, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: conversation settings: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]im.ConversationSettings, len(convs))
	for i, c := range convs {
		out[i] = s.settingsOf(userID, c)
	}
	return out, nil
}

// ChangedSettings implements im.ConversationSettingsStore.
func (s *Store) ChangedSettings(ctx context.Context, userID string, since time.Time) ([]im.ConversationSettings, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: changed settings: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []im.ConversationSettings
	for k, st := range s.settings {
		if k.user == userID && st.UpdatedAt.After(since) {
			out = append(out, st)
		}
	}
	return out, nil
}

// settingsOf returns user's settings of conv. The caller holds s.mu.
func (s *Store) settingsOf(user, conv string) im.ConversationSettings {
	if st, ok := s.settings[positionKey{user, conv}]; ok {
		return st
	}
	return im.ConversationSettings{UserID: user, ConversationID: conv}
}
