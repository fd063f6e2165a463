package im

import (
	"context"
	"time"
)

// ConversationSettings are one user's own settings of one conversation.
// They change nothing for the other members.
type ConversationSettings struct {
	UserID         string
	ConversationID string
	// Pinned conversations come first in her conversation list.
	Pinned bool
	// Muted conversations still count unread messages, but offline-push
	// notifications say so (Notification.Muted).
	Muted bool
	// HiddenUpTo hides the conversation from her list while its newest
	// message is at or below this seq: the next message shows it again.
	// 0 when not hidden.
	HiddenUpTo int64
	// ClearedUpTo clears her history: messages up to this seq are gone for
	// her (sync, history and the list show nothing at or below it) and
	// no one else. It only moves forward.
	ClearedUpTo int64
	// UpdatedAt is when they last changed (the Server's clock); zero for
	// a conversation she never set anything on.
	UpdatedAt time.Time
}

// SettingsChange is a change of ConversationSettings: nil fields are left
// as they are.
type SettingsChange struct {
	Pinned, Muted *bool
	// HiddenUpTo is stored as given (0 shows the conversation again),
	// clamped to the conversation's MaxSeq.
	HiddenUpTo *int64
	// ClearedUpTo moves forward only, clamped to the conversation's
	// MaxSeq.
	ClearedUpTo *int64
	// At is the time stored as UpdatedAt. Required.
	At time.Time
}

// ConversationSettingsStore is an optional Store capability: each user's
// settings of her conversations (pin, mute, hide, clear history). Without
// it the settings requests answer with an error code and every
// conversation reads as unpinned, unmuted, shown and uncleared.
type ConversationSettingsStore interface {
	// UpdateConversationSettings applies ch to userID's settings of conv
	// in one atomic, durable commit and returns them after. Clamping is
	// to conv's MaxSeq as of the commit (0 for a conversation without
	// messages). A change that leaves every field as it was stores
	// nothing and keeps UpdatedAt. It does not check membership; the
	// Server does. ErrInvalidArgument for an invalid id, a negative seq
	// or a zero At, and nothing is stored.
	UpdateConversationSettings(ctx context.Context, userID, conv string, ch SettingsChange) (ConversationSettings, error)

	// ConversationSettings returns userID's settings of each of convs, in
	// order: out[i] belongs to convs[i], with UserID and ConversationID
	// set, and zero values for a conversation she never set anything on.
	ConversationSettings(ctx context.Context, userID string, convs []string) ([]ConversationSettings, error)

	// ChangedSettings returns every settings of userID whose UpdatedAt is
	// after since (all she ever set, for a zero since), in no particular
	// order.
	ChangedSettings(ctx context.Context, userID string, since time.Time) ([]ConversationSettings, error)
}

// ValidateSettingsChange returns an error wrapping ErrInvalidArgument
// unless ch can be applied to userID's settings of conv. Stores check it
// before writing anything.
func ValidateSettingsChange(userID, conv string, ch SettingsChange) error {
	if err := ValidateID("user id", userID); err != nil {
		return err
	}
	if err := ValidateConversationID(conv); err != nil {
		return err
	}
	if ch.At.IsZero() {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "settings change without a time")
	}
	if (ch.HiddenUpTo != nil && *ch.HiddenUpTo < 0) || (ch.ClearedUpTo != nil && *ch.ClearedUpTo < 0) {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "negative seq in a settings change")
	}
	return nil
}

// Apply returns st with ch applied, as every Store applies it: the fields
// ch sets replaced, HiddenUpTo clamped to maxSeq, ClearedUpTo moved
// forward only and clamped to maxSeq. UpdatedAt is left for the Store to
// set, only if the result differs from st.
func (ch SettingsChange) Apply(st ConversationSettings, maxSeq int64) ConversationSettings {
	if ch.Pinned != nil {
		st.Pinned = *ch.Pinned
	}
	if ch.Muted != nil {
		st.Muted = *ch.Muted
	}
	if ch.HiddenUpTo != nil {
		st.HiddenUpTo = min(*ch.HiddenUpTo, maxSeq)
	}
	if ch.ClearedUpTo != nil {
		st.ClearedUpTo = max(st.ClearedUpTo, min(*ch.ClearedUpTo, maxSeq))
	}
	return st
}
