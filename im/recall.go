package im

import (
	"context"
	"time"
)

// RecallStore is an optional Store capability: recalling (revoking) a
// message, which turns it into a tombstone. Without it recall requests
// answer with an error code.
type RecallStore interface {
	// MessageByServerID returns the message of conv whose ServerID is
	// serverID, tombstone or not; ErrNotFound if conv has none (an id of
	// another conversation included). The Server asks it of recent
	// messages mostly (recall has a time window), so a Store may search
	// from the newest message backwards.
	MessageByServerID(ctx context.Context, conv, serverID string) (Message, error)

	// RecallMessage turns message seq of conv into a tombstone in one
	// atomic, durable commit: RevokedBy and RevokedAt are stored, and
	// Content, Extra and AttachedInfo are erased from storage (not hidden:
	// gone from the Store's files and tables, as far as its database
	// allows). The message keeps its seq, ServerID, sender, type, times and
	// its place in the dedup index, so a resend of its client_msg_id
	// answers with the tombstone. It returns the message as stored after.
	// Recalling a tombstone changes nothing and returns it as it is (the
	// first recall's RevokedBy and RevokedAt stay). ErrNotFound if there is
	// no such message; ErrInvalidArgument for an invalid by or a zero at.
	RecallMessage(ctx context.Context, conv string, seq int64, by string, at time.Time) (Message, error)
}
