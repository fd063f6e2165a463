package im

import (
	"context"
	"time"
)

// ReadState is where one user stands in one conversation.
type ReadState struct {
	UserID         string
	ConversationID string
	// Read is the seq up to which the user has read the conversation: the
	// highest of her read receipts and of the seqs of her own messages in
	// it (sending a message reads everything before it). 0 when neither.
	Read int64
	// Delivered is the highest seq acknowledged as delivered to any device
	// of the user (MSG_ACK). Reading is not delivering, as far as a Store
	// is concerned: it keeps the two apart, and the Server reports
	// max(Read, Delivered) where it means "delivered".
	Delivered int64
	// Mentioned is the seq of the newest message that mentions the user
	// (by name or as everyone); she is mentioned while it is above Read.
	Mentioned int64
	// UpdatedAt is when UpdateReadStates last moved one of the positions
	// above: the UpdatedAt of the input state that moved it (the Server's
	// clock, microsecond precision), zero if none ever has. A message of
	// the user's own does not set it; its time is the message's.
	UpdatedAt time.Time
}

// ReadStateStore is an optional Store capability: read and delivered
// positions, one pair per user and conversation. No row per message and
// member: who read a message is derived from positions (a member has read
// seq s when her Read >= s). Without it read receipts, delivery receipts and
// unread counts are off, and their requests answer with an error code.
//
// A Store that has it keeps Read up to date with AppendMessages: once
// AppendMessages returns, ReadStates reports for each message it stored a
// Read of at least that message's seq for its sender, and that survives a
// crash exactly as the message does. How is the Store's affair (a column
// updated in the commit, or derived from the messages when read): what
// matters is that a send costs no separate commit.
type ReadStateStore interface {
	// UpdateReadStates moves positions forward, all in one atomic, durable
	// commit: for each state, UserID's Read, Delivered and Mentioned in
	// ConversationID become the greater of the stored value and the given
	// one (0 leaves it), each clamped to the conversation's MaxSeq as of
	// the commit, so that no position is ever stored past the newest
	// message (a conversation without messages keeps 0). If any position
	// of a state moved, the state's UpdatedAt is stored with it (the
	// latest, for several states of one pair in a batch). It returns the
	// states after the commit, one per input, in order. Several states for
	// the same user and conversation in one batch are allowed and combine.
	// It does not check membership; the Server does. An invalid id, or a
	// negative position, is ErrInvalidArgument, and nothing of the batch
	// is stored.
	UpdateReadStates(ctx context.Context, states []ReadState) ([]ReadState, error)

	// ReadStates returns userID's state in each of convs, in order: out[i]
	// belongs to convs[i], with UserID and ConversationID set, zero
	// positions where nothing is known (Read still counts her messages).
	// The Server asks for at most a few thousand conversations per call.
	ReadStates(ctx context.Context, userID string, convs []string) ([]ReadState, error)

	// ConversationReadStates returns the state of every user who has a
	// nonzero Read, Delivered or Mentioned in conv (by receipts or by her own
	// messages), each once, in no particular order. The Server asks it of
	// groups up to a size it bounds, to tell who has read a message.
	ConversationReadStates(ctx context.Context, conv string) ([]ReadState, error)
}

// Unread returns how many messages of a conversation whose newest seq is
// maxSeq a user has not read: those after her read position, which are by
// others since her own messages move it, and none before readFrom (her
// first readable seq in a group; 0 or 1 for every message). Recalled
// messages count: they stay in the conversation as tombstones, which the
// user has not seen either.
func Unread(maxSeq, read, readFrom int64) int64 {
	from := max(read, readFrom-1, 0)
	if maxSeq <= from {
		return 0
	}
	return maxSeq - from
}

// ValidateReadState returns an error wrapping ErrInvalidArgument unless st
// can be passed to UpdateReadStates: a valid user id and conversation id,
// and positions not below 0. Stores check every state of a batch with it
// before writing anything.
func ValidateReadState(st ReadState) error {
	if err := ValidateID("user id", st.UserID); err != nil {
		return err
	}
	if err := ValidateConversationID(st.ConversationID); err != nil {
		return err
	}
	if st.Read < 0 || st.Delivered < 0 || st.Mentioned < 0 {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "read state of %q in %q: negative position (read %d, delivered %d, mentioned %d)", st.UserID, st.ConversationID, st.Read, st.Delivered, st.Mentioned)
	}
	return nil
}
