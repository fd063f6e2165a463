package im

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// DevicePolicy decides what a new login does to a user's older sessions.
type DevicePolicy int

const (
	// AllowAllDevices keeps every session, up to Config.MaxSessionsPerUser
	// (the oldest is kicked past that). The default, because IM-iOS-SDK
	// reports every Apple device as platform "iOS".
	AllowAllDevices DevicePolicy = iota
	// OnePerPlatform kicks the user's older session on the same platform.
	OnePerPlatform
	// OneSession kicks every older session of the user.
	OneSession
)

// Config configures a Server. The zero value of every field but Store and
// Authenticator means the documented default. NewServer copies it; it is never
// modified.
type Config struct {
	// Store keeps messages, conversations and groups. Required. The
	// Server does not close it. A panic in one of its calls fails that
	// call's request or commit with an internal error, is logged with its
	// stack and is counted in Stats.StorePanics.
	Store Store
	// Authenticator verifies clients' tokens. Required.
	Authenticator Authenticator
	// Users, if set, is asked whether the recipient of a one-to-one message
	// exists. Without it any valid user id can be messaged.
	Users UserDirectory
	// Logger receives structured logs; nil discards them. Tokens, passwords
	// and message contents are never logged.
	Logger *slog.Logger

	// MaxContentSize bounds a message's content in bytes. Default 64 KiB.
	MaxContentSize int
	// AuthTimeout is how long a new connection may take to authenticate.
	// Default 10 s.
	AuthTimeout time.Duration
	// IdleTimeout closes a connection from which nothing (no frame, no
	// WebSocket ping) arrived for this long. Default 90 s; clients
	// heartbeat every 30 s.
	IdleTimeout time.Duration
	// WriteTimeout bounds one write to a connection: a write is given at
	// least nine tenths of it (the deadline is renewed only that often,
	// which saves setting one up per write). Default 10 s.
	WriteTimeout time.Duration
	// SendQueue is how many pushes (messages and notices from others) may
	// wait to be written to one connection, and SendQueueBytes what they
	// may weigh. A push that would exceed either closes the connection: it
	// resyncs when it comes back, so nothing is lost and nobody else waits
	// for it. Responses to the connection's own requests are never refused:
	// while more than half of either bound waits to be written (pushes and
	// responses together), the server stops reading that connection's
	// requests, so a client that pipelines requests without reading the
	// answers holds up only itself. A response bigger than half the bound
	// (a sync page of up to MaxFrameSize) still goes out.
	//
	// SendQueue defaults to 1024. SendQueueBytes defaults to 1 MiB and may
	// not be less than MaxFrameSize.
	SendQueue      int
	SendQueueBytes int
	// MaxInflight is how many sends of one connection may wait for their
	// commit at once; further frames from that connection are not read
	// until one completes. Default 256.
	MaxInflight int
	// SendRate limits the messages one user sends per second, across all
	// of that user's connections on this server: opening more connections
	// or reconnecting buys no more. Bursts of twice that (at least one)
	// are allowed. Beyond it a send fails with SEND_TOO_FAST and the
	// connection stays open. Messages the host sends through the Go API
	// (Server.SendMessage, SendSystemMessage) are not limited. Default 200;
	// negative means unlimited.
	SendRate float64
	// SignalRate limits the signals one user causes to be relayed to
	// others (typing indicators), per second, across all of that user's
	// connections on this server; bursts of twice that (at least one) are
	// allowed. Signals beyond it are dropped without a word: typing has no
	// response, and the next indicator says the same. Default 5; negative
	// means unlimited. Independently of it, a connection never closes
	// because of signals queued for it: a newer signal from the same
	// sender about the same conversation replaces one still waiting, and
	// signals that find the queue full (see SendQueue) are dropped, as are
	// those waiting when a message needs the room.
	SignalRate float64

	// PresenceOfflineDelay is how long a user whose last session ended
	// still reads as online (with the devices it had), so that a
	// reconnect within it shows subscribers no offline and online flap.
	// Default 5 s; negative means none.
	PresenceOfflineDelay time.Duration
	// MaxPresenceSubscriptions bounds the users one connection may
	// subscribe to the presence of. A request that would pass it is
	// refused with INVALID_PARAM and changes nothing. Default 1000.
	MaxPresenceSubscriptions int
	// PresenceQueryRate limits the presence requests (ONLINE_STATUS_REQ)
	// one user makes per second, across all of that user's connections
	// on this server; bursts of twice that (at least one) are allowed.
	// Beyond it a request fails with SEND_TOO_FAST. Default 10; negative
	// means unlimited.
	PresenceQueryRate float64

	// ReadReceiptRate limits the read receipts and read-state requests
	// (READ_RECEIPT_REQ and the read-state extensions) one user makes per
	// second, across all of that user's connections on this server;
	// bursts of twice that (at least one) are allowed. Beyond it a request
	// fails with SEND_TOO_FAST and changes nothing. Default 20; negative
	// means unlimited.
	ReadReceiptRate float64
	// ConversationRate limits the conversation list and settings
	// requests (CONVERSATION_LIST_REQ, CONVERSATION_SETTINGS_REQ) one
	// user makes per second, across all of that user's connections on
	// this server; bursts of twice that (at least one) are allowed.
	// Beyond it a request fails with SEND_TOO_FAST and changes nothing.
	// Default 10; negative means unlimited.
	ConversationRate float64
	// ProfileRate limits the profile updates and user searches
	// (Server.UpdateProfile, Server.SearchUsers) one user makes per
	// second, across all of that user's connections on this server;
	// bursts of twice that (at least one) are allowed. Beyond it a call
	// fails with ErrRateLimited and changes nothing. Default 5; negative
	// means unlimited.
	ProfileRate float64
	// ReadByMaxMembers is the largest group whose readers of a message
	// Server.ReadBy lists by name; larger groups get the counts only.
	// Default 500.
	ReadByMaxMembers int
	// RecallWindow is how long after sending users may recall their own
	// messages (REVOKE_MSG_REQ, Server.RecallMessage), judged on the
	// message's CreatedAt against the server's clock. A group's owner and
	// admins may recall any message of the group, whenever it was sent.
	// Default 2 minutes, what IM-iOS-SDK's users expect; negative means
	// no limit. Recall needs a Store that implements RecallStore.
	RecallWindow time.Duration

	// FriendsOnly refuses, with PERMISSION_DENIED, a one-to-one message
	// between two users who are not friends. It needs a Store that
	// implements FriendStore. Whatever it says, a message between two
	// users of whom one blocks the other is refused. Both are decided from
	// a cache of relations, refreshed every 2 s: a change made through
	// this Server applies at once, one made through another Server
	// sharing the Store within 2 s.
	FriendsOnly bool
	// FriendRequestRate limits the friend requests one user sends per
	// second (Server.RequestFriend), across the Server; bursts of 5 are
	// allowed. Beyond it a request fails with ErrRateLimited
	// (SEND_TOO_FAST) and changes nothing. Default 1; negative means
	// unlimited.
	FriendRequestRate float64

	// DevicePolicy decides what a new login does to older sessions.
	DevicePolicy DevicePolicy
	// MaxSessionsPerUser bounds a user's concurrent sessions under
	// AllowAllDevices. Default 10.
	MaxSessionsPerUser int

	// MaxGroupMembers bounds the members of one group. Default 2000.
	MaxGroupMembers int
	// GroupAddsPerMinute limits how many users one user adds to groups
	// per minute (the members of a group they create, and those they
	// invite), across the Server; bursts of that many at once are
	// allowed. A call that would exceed it adds nobody and fails with
	// ErrRateLimited (CodeRateLimited). Users the call names count even if
	// GroupAddPolicy then refuses them. Default 60; negative means
	// unlimited, which a host that creates groups for its users through
	// the Go API may want.
	GroupAddsPerMinute int

	// SystemSender is the sender id of messages the server sends itself
	// (Server.SendSystemMessage). Default "system".
	SystemSender string

	// The hooks below, the Authenticator and Users are host code called by
	// the Server. A panic in any of them is recovered and logged with its
	// stack, as net/http does for handlers: it fails only the call it
	// happened in, and the Server and its other connections carry on. A
	// panicking BeforeSend or Users refuses that send with an internal
	// error on a connection that stays open; a panicking Authenticator
	// fails that authentication as a refused token would, but with an
	// internal error.

	// BeforeSend, if set, is called for every message before it is stored,
	// on the sending connection's goroutine. It may change m's Type,
	// Content, Extra and AttachedInfo; returning an error rejects the send
	// (return an *Error to choose the code the client sees; otherwise
	// PERMISSION_DENIED).
	BeforeSend func(ctx context.Context, m *Message) error
	// AfterSend, if set, is called with newly stored messages, in seq
	// order per conversation, on one goroutine of its own. Delivery never
	// waits for it: messages wait for the hook in a queue of
	// AfterSendQueue, and while that queue is full new messages are not
	// handed to it; Stats.AfterSendDropped counts them and a warning is
	// logged at most every 10 s. So AfterSend is at most once. A host that
	// needs every message (to index or archive them) reads them from the
	// Store by seq, as clients sync, from the last seq it handled: the
	// Store is the truth, and AfterSend a prompt that there is more.
	// Shutdown waits for the queued calls (within its ctx); Close skips
	// them but waits for a call in progress, so the hook must return.
	AfterSend func(m Message)
	// AfterSendQueue is how many messages may wait for AfterSend.
	// Default 4096.
	AfterSendQueue int
	// AfterRecall, if set, is called after a recall is stored, with the
	// message as it was before (content included), so that the host can
	// release what the message held: the files of package files
	// (files.Service.AfterRecall) are kept while a message references
	// them. It is called once per message, by the recall that turned it
	// into a tombstone, on the recalling goroutine after the pushes and
	// before the recaller's response: keep it short. Recalls are rare
	// (each user's are rate limited), so sends never wait for it. Its ctx
	// is the recalling session's (or the RecallMessage caller's).
	AfterRecall func(ctx context.Context, original Message)

	// Notifier, if set, is told of each new message for each of its
	// recipients (the members of its conversation but the sender) who has
	// no open session on this Server when it is delivered, and of each
	// recall for those who have none then, so that the host can send an
	// offline push (APNs, FCM). Presence's offline delay plays no part: a
	// user whose last session just ended is offline here. The sender is
	// never notified: her other sessions got the message, or sync it.
	// Nothing waits for it: messages wait for the Notifier in
	// NotifyWorkers queues of NotifyQueue in all, and while a queue is
	// full the notifications of new messages are dropped
	// (Stats.NotificationsDropped) and a warning is logged at most every
	// 10 s. The badge and mute setting of each recipient are read from
	// the Store by the workers, never on the delivery path. Shutdown
	// waits for the queued notifications (within its ctx); Close skips
	// them. See Notifier and Notification.
	Notifier Notifier
	// NotifyQueue is how many messages (and recalls) may wait for the
	// Notifier, whatever the number of their recipients, split evenly
	// among the workers. Default 4096.
	NotifyQueue int
	// NotifyWorkers is how many goroutines call the Notifier, each for
	// the conversations that hash to it, at most 256. Default 4.
	NotifyWorkers int
	// NotifyPreview lets notifications carry the content of messages
	// (Notification.Preview), except in muted conversations and for
	// recalls. Off by default, so that message contents go to a push
	// service only when the host asks for it.
	NotifyPreview bool
	// OnConnect and OnDisconnect, if set, are called when a session
	// authenticates and when an authenticated session ends, once each per
	// session, on the session's goroutine. err says why it ended; match it
	// with errors.Is: ErrIdle, ErrSlowConsumer, ErrKicked (ErrLoggedInElsewhere
	// when a newer login replaced it), ErrAuthFailed (a later AuthRequest
	// was refused), ErrProtocolAbuse (too many unknown commands or malformed
	// bodies), ErrServerClosed (Shutdown or Close); otherwise the
	// transport's error, such as io.EOF when the client hung up, or nil.
	// ErrAuthTimeout, a refused first authentication and ErrProtocolAbuse
	// before authentication end connections that never had a session:
	// Server.ServeConn returns those.
	OnConnect    func(s SessionInfo)
	OnDisconnect func(s SessionInfo, err error)

	// ConnContext, if set, returns the context of a new connection's
	// session, derived from ctx, the transport's (for WebSocket, the HTTP
	// request's context without its cancellation). The Authenticator,
	// BeforeSend and the Store's reads for that session (sync, history) are
	// called with it, so a host can pass values (a request id, what its
	// middleware learnt) to them; commits serve many sessions at once and
	// run with the Server's own context. It must not return nil. A WebSocket ?token= is verified before
	// the upgrade with the request's context, before ConnContext runs.
	ConnContext func(ctx context.Context, info ConnInfo) context.Context

	// GroupAddPolicy, if set, decides whether actorID may add userID to a
	// group: as a member of a group actorID creates (CreateGroup) or by
	// invitation (InviteToGroup). Users who join a group themselves are
	// not asked about (see JoinPolicy). It is called for each user to be
	// added before anything is stored, and one refusal adds nobody.
	// Return an *Error to choose the code; otherwise the refusal is
	// PERMISSION_DENIED, naming userID.
	//
	// Without it, a user may add only those with whom they have a
	// one-to-one conversation holding at least one message, so that
	// nobody can be put into groups by strangers. For the behaviour of
	// earlier versions, where anyone could add anyone, set it to
	//
	//	func(context.Context, string, string) error { return nil }
	GroupAddPolicy func(ctx context.Context, actorID, userID string) error

	// PresenceVisible, if set, decides whether viewerID may see the
	// presence of userID, for ONLINE_STATUS_REQ and Server.Presence. It
	// is asked once per user a request names (users always see
	// themselves, without asking). A user viewerID may not see reads as
	// offline with no devices and no last-seen time, exactly as a user
	// who was never seen; an error reads the same, and is logged.
	// Subscriptions keep the answer given when the subscriber last asked
	// about the user.
	//
	// Without it, a user sees those with whom it has a one-to-one
	// conversation holding at least one message, and the members of the
	// groups it is in.
	//
	// Either way, with a FriendStore, two users of whom one blocks the
	// other never see each other, and the hook is not asked about them.
	PresenceVisible func(ctx context.Context, viewerID, userID string) (bool, error)
}

// Default values of Config fields.
const (
	DefaultMaxContentSize     = 64 << 10
	DefaultAuthTimeout        = 10 * time.Second
	DefaultIdleTimeout        = 90 * time.Second
	DefaultWriteTimeout       = 10 * time.Second
	DefaultSendQueue          = 1024
	DefaultSendQueueBytes     = 1 << 20
	DefaultMaxInflight        = 256
	DefaultSendRate           = 200
	DefaultSignalRate         = 5
	DefaultMaxSessionsPerUser = 10
	DefaultSystemSender       = "system"
	DefaultMaxGroupMembers    = 2000
	DefaultGroupAddsPerMinute = 60
	DefaultAfterSendQueue     = 4096
	DefaultNotifyQueue        = 4096
	DefaultNotifyWorkers      = 4

	DefaultPresenceOfflineDelay     = 5 * time.Second
	DefaultMaxPresenceSubscriptions = 1000
	DefaultPresenceQueryRate        = 10

	DefaultReadReceiptRate  = 20
	DefaultReadByMaxMembers = 500
	DefaultRecallWindow     = 2 * time.Minute
	DefaultConversationRate = 10

	DefaultFriendRequestRate = 1
	DefaultProfileRate       = 5
)

// withDefaults returns c with every zero field set to its default, or an
// error for a Config that cannot work.
func (c Config) withDefaults() (Config, error) {
	if c.Store == nil {
		return c, errors.New("im: Config.Store is required")
	}
	if c.Authenticator == nil {
		return c, errors.New("im: Config.Authenticator is required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	setDefault(&c.MaxContentSize, DefaultMaxContentSize)
	setDefault(&c.AuthTimeout, DefaultAuthTimeout)
	setDefault(&c.IdleTimeout, DefaultIdleTimeout)
	setDefault(&c.WriteTimeout, DefaultWriteTimeout)
	setDefault(&c.SendQueue, DefaultSendQueue)
	setDefault(&c.SendQueueBytes, DefaultSendQueueBytes)
	setDefault(&c.MaxInflight, DefaultMaxInflight)
	setDefault(&c.SendRate, DefaultSendRate)
	setDefault(&c.SignalRate, DefaultSignalRate)
	setDefault(&c.MaxSessionsPerUser, DefaultMaxSessionsPerUser)
	setDefault(&c.SystemSender, DefaultSystemSender)
	setDefault(&c.MaxGroupMembers, DefaultMaxGroupMembers)
	setDefault(&c.GroupAddsPerMinute, DefaultGroupAddsPerMinute)
	setDefault(&c.AfterSendQueue, DefaultAfterSendQueue)
	setDefault(&c.NotifyQueue, DefaultNotifyQueue)
	setDefault(&c.NotifyWorkers, DefaultNotifyWorkers)
	setDefault(&c.PresenceOfflineDelay, DefaultPresenceOfflineDelay)
	setDefault(&c.MaxPresenceSubscriptions, DefaultMaxPresenceSubscriptions)
	setDefault(&c.PresenceQueryRate, DefaultPresenceQueryRate)
	setDefault(&c.ReadReceiptRate, DefaultReadReceiptRate)
	setDefault(&c.ReadByMaxMembers, DefaultReadByMaxMembers)
	setDefault(&c.RecallWindow, DefaultRecallWindow)
	setDefault(&c.ConversationRate, DefaultConversationRate)
	setDefault(&c.FriendRequestRate, DefaultFriendRequestRate)
	setDefault(&c.ProfileRate, DefaultProfileRate)
	if c.MaxContentSize > MaxFrameSize/2 {
		return c, errors.New("im: Config.MaxContentSize must be at most half of MaxFrameSize")
	}
	if c.AfterSendQueue < 1 {
		return c, errors.New("im: Config.AfterSendQueue must be positive")
	}
	if c.NotifyQueue < 1 {
		return c, errors.New("im: Config.NotifyQueue must be positive")
	}
	if c.NotifyWorkers < 1 || c.NotifyWorkers > maxNotifyWorkers {
		return c, fmt.Errorf("im: Config.NotifyWorkers is %d; it must be 1 to %d", c.NotifyWorkers, maxNotifyWorkers)
	}
	if c.SendQueue < 1 {
		return c, errors.New("im: Config.SendQueue must be positive")
	}
	if c.SendQueueBytes < MaxFrameSize {
		return c, fmt.Errorf("im: Config.SendQueueBytes is %d; it must be at least MaxFrameSize (%d), so that any frame fits", c.SendQueueBytes, MaxFrameSize)
	}
	if math.IsNaN(c.SendRate) || math.IsInf(c.SendRate, 0) {
		return c, errors.New("im: Config.SendRate must be a finite number (negative for unlimited)")
	}
	if math.IsNaN(c.SignalRate) || math.IsInf(c.SignalRate, 0) {
		return c, errors.New("im: Config.SignalRate must be a finite number (negative for unlimited)")
	}
	if math.IsNaN(c.PresenceQueryRate) || math.IsInf(c.PresenceQueryRate, 0) {
		return c, errors.New("im: Config.PresenceQueryRate must be a finite number (negative for unlimited)")
	}
	if math.IsNaN(c.ReadReceiptRate) || math.IsInf(c.ReadReceiptRate, 0) {
		return c, errors.New("im: Config.ReadReceiptRate must be a finite number (negative for unlimited)")
	}
	if math.IsNaN(c.ConversationRate) || math.IsInf(c.ConversationRate, 0) {
		return c, errors.New("im: Config.ConversationRate must be a finite number (negative for unlimited)")
	}
	if math.IsNaN(c.FriendRequestRate) || math.IsInf(c.FriendRequestRate, 0) {
		return c, errors.New("im: Config.FriendRequestRate must be a finite number (negative for unlimited)")
	}
	if _, ok := c.Store.(FriendStore); c.FriendsOnly && !ok {
		return c, errors.New("im: Config.FriendsOnly needs a Store that implements FriendStore")
	}
	if math.IsNaN(c.ProfileRate) || math.IsInf(c.ProfileRate, 0) {
		return c, errors.New("im: Config.ProfileRate must be a finite number (negative for unlimited)")
	}
	if c.ReadByMaxMembers < 1 {
		return c, errors.New("im: Config.ReadByMaxMembers must be positive")
	}
	if c.MaxPresenceSubscriptions < 1 {
		return c, errors.New("im: Config.MaxPresenceSubscriptions must be positive")
	}
	if c.MaxGroupMembers < 1 {
		return c, errors.New("im: Config.MaxGroupMembers must be positive")
	}
	if !validID(c.SystemSender) {
		return c, errors.New("im: Config.SystemSender is not a valid user id")
	}
	if c.DevicePolicy < AllowAllDevices || c.DevicePolicy > OneSession {
		return c, errors.New("im: unknown Config.DevicePolicy")
	}
	return c, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
