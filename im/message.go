package im

import (
	"github.com/imserver/imserver/im/imv1"

	"strings"
	"time"
	"unicode/utf8"
)

// MessageType is what a message's content is. The values are the protocol's;
// clients may use any value from CustomMessage up for their own types.
type MessageType int32

// Message types defined by the protocol.
const (
	UnknownMessage      MessageType = 0
	TextMessage         MessageType = 1
	ImageMessage        MessageType = 2
	AudioMessage        MessageType = 3
	VideoMessage        MessageType = 4
	FileMessage         MessageType = 5
	LocationMessage     MessageType = 6
	CardMessage         MessageType = 7
	NotificationMessage MessageType = 8
	CustomMessage       MessageType = 100
)

// ConversationType is the kind of a conversation, derived from its id.
type ConversationType int32

// Conversation types; the values are the protocol's.
const (
	SingleConversation   ConversationType = 1
	GroupConversation    ConversationType = 2
	ChatroomConversation ConversationType = 3
	SystemConversation   ConversationType = 4
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
}

// Conversation is the summary of one conversation.
type Conversation struct {
	ID     string
	MaxSeq int64 // seq of the newest message; 0 when there is none
}

// Limits on identifiers, enforced by the Server and by conforming Stores.
const (
	MaxIDLength          = 128 // user ids, client_msg_ids, conversation ids are at most this many bytes
	MaxConversationIDLen = 2*MaxIDLength + 16
)

// Conversation id prefixes, in the form IM-iOS-SDK uses.
const (
	singlePrefix = "single_"
	groupPrefix  = "group_"
	systemPrefix = "system_"
)

// SingleConversationID returns the id of the one-to-one conversation between
// users a and b: "single_" and the two ids sorted, joined by "_".
func SingleConversationID(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return singlePrefix + a + "_" + b
}

// SystemConversationID returns the id of the conversation in which the server
// sends system messages to user.
func SystemConversationID(user string) string { return systemPrefix + user }

// ConversationTypeOf returns the type of conversation id, or 0 if the id has
// no known prefix.
func ConversationTypeOf(id string) ConversationType {
	switch {
	case strings.HasPrefix(id, singlePrefix):
		return SingleConversation
	case strings.HasPrefix(id, groupPrefix):
		return GroupConversation
	case strings.HasPrefix(id, systemPrefix):
		return SystemConversation
	case strings.HasPrefix(id, "chatroom_"):
		return ChatroomConversation
	}
	return 0
}

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
// may use 0x00 as a separator in keys).
func validID(s string) bool { return printable(s, MaxIDLength) }

func printable(s string, max int) bool {
	if s == "" || len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// ValidateID returns an error wrapping ErrInvalidArgument unless s can be a
// user id or client_msg_id. Stores use it to refuse bad input before writing.
func ValidateID(what, s string) error {
	if !validID(s) {
		return errorf(imv1.ErrorCode_ERR_INVALID_PARAM, ErrInvalidArgument, "%s must be 1 to %d bytes of printable UTF-8", what, MaxIDLength)
	}
	return nil
}

// ValidateAppend returns an error wrapping ErrInvalidArgument unless r can be
// stored: the sender, client_msg_id and member ids pass ValidateID, the
// conversation id passes ValidateConversationID, and ServerID is set. Every
// Store checks each request of a batch with it before writing anything.
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
		return errorf(imv1.ErrorCode_ERR_INVALID_PARAM, ErrInvalidArgument, "server id is empty")
	}
	for _, u := range r.Members {
		if err := ValidateID("member id", u); err != nil {
			return err
		}
	}
	return nil
}

// ValidateConversationID is ValidateID for conversation ids, which are
// longer because a one-to-one id joins two user ids.
func ValidateConversationID(id string) error {
	if !printable(id, MaxConversationIDLen) {
		return errorf(imv1.ErrorCode_ERR_INVALID_PARAM, ErrInvalidArgument, "conversation id must be 1 to %d bytes of printable UTF-8", MaxConversationIDLen)
	}
	return nil
}
