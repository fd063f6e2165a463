package wire

import "strings"

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

// Conversation id prefixes, in the form IM-iOS-SDK uses.
const (
	singlePrefix   = "single_"
	groupPrefix    = "group_"
	systemPrefix   = "system_"
	chatroomPrefix = "chatroom_"
)

// SingleConversationID returns the id of the one-to-one conversation between
// users a and b: "single_" and the two ids sorted, joined by "_". Both ends
// compute it, so a client can address a conversation it has not seen yet.
func SingleConversationID(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return singlePrefix + a + "_" + b
}

// GroupConversationID returns the id of the conversation of group id:
// "group_" and the group id.
func GroupConversationID(id string) string { return groupPrefix + id }

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
	case strings.HasPrefix(id, chatroomPrefix):
		return ChatroomConversation
	}
	return 0
}
