package im

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Message is one stored message of a conversation.
type Message struct {
	ConversationID string
	Seq            int64  // 1, 2, 3, … per conversation, assigned by the Store
	ServerID       string // unique across the server, assigned by the Server
	SenderID       string
	ReceiverID     string // the peer in a one-to-one conversation
	ClientMsgID    string // the sender's own id, unique per sender
	Type           MessageType
	Content        []byte // opaque to the server
	Extra          string // opaque to the server
	AttachedInfo   string // opaque to the server
	SendTime       int64  // milliseconds, as the sending client reported it
	CreatedAt      time.Time
	// RevokedBy is set on a recalled message (a tombstone): the user who
	// recalled it, the sender or a group's owner or admin. Content, Extra
	// and AttachedInfo of a tombstone are empty. See RecallStore.
	RevokedBy string
	RevokedAt time.Time // when it was recalled; zero unless RevokedBy is set
}

// Revoked reports whether m is a recalled message's tombstone.
func (m *Message) Revoked() bool { return m.RevokedBy != "" }

// Conversation is the summary of one conversation.
type Conversation struct {
	ID     string
	MaxSeq int64 // seq of the newest message; 0 when there is none
	// ReadFrom is set by SyncStore.SyncConversations on a group's
	// conversation only: the first seq the user it lists conversations
	// for may read (FirstReadableSeq of the group and her membership,
	// read in the same snapshot as MaxSeq), at least 1. 0 means not
	// given; the Server then reads it itself (and it is always 0 from
	// Conversation and UserConversations).
	ReadFrom int64
}

// Limits on identifiers, enforced by the Server and by conforming Stores.
const (
	MaxIDLength          = 128 // user ids, client_msg_ids, conversation ids are at most this many bytes
	MaxConversationIDLen = 2*MaxIDLength + 16
)

// Conversation id prefixes, in the form IM-iOS-SDK uses; the ids
// themselves are built by package wire (SingleConversationID and its
// siblings), and the core only takes them apart.
const (
	singlePrefix = "single_"
	groupPrefix  = "group_"
)

// peerOf returns the other member of one-to-one conversation id as seen by
// user, and whether user is a member of it at all. User ids may contain "_",
// so the id is matched against the two forms it can have, not split: the
// sorted pair with user first or with user second. It runs for every send,
// so it builds no strings.
func peerOf(id, user string) (string, bool) {
	rest, ok := strings.CutPrefix(id, singlePrefix)
	if !ok || len(rest) < len(user)+2 {
		return "", false
	}
	// "single_<user>_<peer>" with user <= peer.
	if strings.HasPrefix(rest, user) && rest[len(user)] == '_' {
		if p := rest[len(user)+1:]; user <= p {
			return p, true
		}
	}
	// "single_<peer>_<user>" with peer <= user.
	if strings.HasSuffix(rest, user) && rest[len(rest)-len(user)-1] == '_' {
		if p := rest[:len(rest)-len(user)-1]; p <= user {
			return p, true
		}
	}
	return "", false
}

// validID reports whether s can be a user id, client_msg_id or similar:
// 1..MaxIDLength bytes of valid UTF-8 without control characters (so stores
// may use 0x00 as a separator in keys) and without the characters
// ValidateName refuses (an id is shown to users and must not pass for
// another).
func validID(s string) bool { return printable(s, MaxIDLength) }

func printable(s string, max int) bool {
	if s == "" || len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || hiddenRune(r) != "" {
			return false
		}
	}
	return true
}

// ValidateID returns an error wrapping ErrInvalidArgument unless s can be a
// user id or client_msg_id. Stores use it to refuse bad input before writing.
func ValidateID(what, s string) error {
	if !validID(s) {
		return nameError(what, s, "%s must be 1 to %d bytes of printable UTF-8", what, MaxIDLength)
	}
	return nil
}

// ValidateAppend returns an error wrapping ErrInvalidArgument unless r can be
// stored: the sender, client_msg_id and member ids pass ValidateID, the
// conversation id passes ValidateConversationID, ServerID is set,
// RevokedBy and RevokedAt are not (see RecallStore), and
// MemberOf, if set, is a valid group id whose conversation the message is
// addressed to. Every Store checks each request of a batch with it before
// writing anything.
func ValidateAppend(r AppendRequest) error {
	m := &r.Message
	if err := ValidateID("sender id", m.SenderID); err != nil {
		return err
	}
	if err := ValidateID("client_msg_id", m.ClientMsgID); err != nil {
		return err
	}
	if err := ValidateConversationID(m.ConversationID); err != nil {
		return err
	}
	if m.ServerID == "" {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "server id is empty")
	}
	if m.RevokedBy != "" || !m.RevokedAt.IsZero() {
		// A message is stored whole; only RecallMessage makes a tombstone,
		// erasing what the message held.
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "a message to append cannot be recalled already")
	}
	for _, u := range r.Members {
		if err := ValidateID("member id", u); err != nil {
			return err
		}
	}
	if r.MemberOf != "" {
		if err := ValidateID("group id", r.MemberOf); err != nil {
			return err
		}
		if m.ConversationID != GroupConversationID(r.MemberOf) {
			return errorf(CodeInvalidArgument, ErrInvalidArgument, "a message checked against group %q goes to its conversation", r.MemberOf)
		}
	}
	return nil
}

// ValidateConversationID is ValidateID for conversation ids, which are
// longer because a one-to-one id joins two user ids.
func ValidateConversationID(id string) error {
	if !printable(id, MaxConversationIDLen) {
		return nameError("conversation id", id, "conversation id must be 1 to %d bytes of printable UTF-8", MaxConversationIDLen)
	}
	return nil
}
