package im

import "github.com/imserver/imserver/im/wire"

// This file re-exports the vocabulary the server shares with clients, which
// lives in package im/wire so that a client can speak the protocol without
// importing the server. The names below keep code written against package
// im working, and they are the same types and values, not copies: a Frame
// is a wire.Frame, and errors.Is(err, im.ErrNotFound) holds for an error
// that a client built from wire.ErrNotFound.

// MaxFrameSize is the largest frame body a transport accepts: 1 MiB, as
// IM-iOS-SDK's codec allows. A larger frame closes the connection, because
// the stream can no longer be trusted to be in step.
const MaxFrameSize = wire.MaxFrameSize

// Frame is one protocol frame as the core sees it, independent of transport.
type Frame = wire.Frame

// MessageType is what a message's content is. The values are the protocol's;
// clients may use any value from CustomMessage up for their own types.
type MessageType = wire.MessageType

// Message types defined by the protocol.
const (
	UnknownMessage      = wire.UnknownMessage
	TextMessage         = wire.TextMessage
	ImageMessage        = wire.ImageMessage
	AudioMessage        = wire.AudioMessage
	VideoMessage        = wire.VideoMessage
	FileMessage         = wire.FileMessage
	LocationMessage     = wire.LocationMessage
	CardMessage         = wire.CardMessage
	NotificationMessage = wire.NotificationMessage
	CustomMessage       = wire.CustomMessage
)

// ConversationType is the kind of a conversation, derived from its id.
type ConversationType = wire.ConversationType

// Conversation types; the values are the protocol's.
const (
	SingleConversation   = wire.SingleConversation
	GroupConversation    = wire.GroupConversation
	ChatroomConversation = wire.ChatroomConversation
	SystemConversation   = wire.SystemConversation
)

// SingleConversationID returns the id of the one-to-one conversation between
// users a and b: "single_" and the two ids sorted, joined by "_".
func SingleConversationID(a, b string) string { return wire.SingleConversationID(a, b) }

// GroupConversationID returns the id of group id's conversation.
func GroupConversationID(id string) string { return wire.GroupConversationID(id) }

// SystemConversationID returns the id of the conversation in which the server
// sends system messages to user.
func SystemConversationID(user string) string { return wire.SystemConversationID(user) }

// ConversationTypeOf returns the type of conversation id, or 0 if the id has
// no known prefix.
func ConversationTypeOf(id string) ConversationType { return wire.ConversationTypeOf(id) }

// Sentinel errors. Every error that the Server, a Store or an Authenticator
// returns for one of these conditions satisfies errors.Is with the sentinel,
// whatever else it wraps. A client (package im/client) matches the same
// values against the errors the server answered with.
var (
	// ErrNotFound: the user, conversation, message or account does not exist.
	ErrNotFound = wire.ErrNotFound
	// ErrConflict: the thing being created exists already (a username that
	// is taken, a client_msg_id reused for a different message).
	ErrConflict = wire.ErrConflict
	// ErrInvalidArgument: the input is malformed or out of bounds.
	ErrInvalidArgument = wire.ErrInvalidArgument
	// ErrUnauthenticated: the credentials are missing, wrong or forged.
	ErrUnauthenticated = wire.ErrUnauthenticated
	// ErrTokenExpired: the credentials were valid but have expired. It wraps
	// ErrUnauthenticated, so errors.Is(err, ErrUnauthenticated) holds too.
	ErrTokenExpired = wire.ErrTokenExpired
	// ErrPermissionDenied: the caller may not do this (send into a
	// conversation it does not belong to, for example).
	ErrPermissionDenied = wire.ErrPermissionDenied
	// ErrTooLarge: the message content is over Config.MaxContentSize.
	ErrTooLarge = wire.ErrTooLarge
	// ErrRateLimited: the caller sends faster than it is allowed to.
	ErrRateLimited = wire.ErrRateLimited
	// ErrLimitExceeded: the request would take something past a configured
	// bound (a group's member limit).
	ErrLimitExceeded = wire.ErrLimitExceeded
	// ErrUnsupported: the request is valid protocol but this server does not
	// implement it.
	ErrUnsupported = wire.ErrUnsupported
	// ErrServerClosed: the Server is shutting down or closed.
	ErrServerClosed = wire.ErrServerClosed
)
