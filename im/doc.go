// Package im is the core of imserver: an instant-messaging server that an
// existing Go backend can embed, or that cmd/imserver runs on its own.
//
// A Server needs two things from its host: a Store (where messages,
// conversations and groups live; store/bolt and store/sqlstore are ready
// made, store/memstore keeps them in memory for tests, store/storetest
// checks your own) and an Authenticator (who a token belongs to; im/auth
// has the built-in JWT one, and keeps its accounts in an
// auth.AccountStore, which is no part of Store). Transports
// (transport/websocket, transport/tcp) frame bytes and hand each connection
// to Server.ServeConn; the Server does the rest. This package imports no
// transport and no store implementation.
//
// # Guarantees
//
//   - Durable before acknowledged: a send is acknowledged only after the
//     Store has committed it.
//   - Gap-free order: every conversation numbers its messages 1, 2, 3, …
//   - Exactly once: a resend with the same (sender, client_msg_id) returns
//     the first acknowledgement and stores nothing.
//   - Push is a hint, sync is the truth: a client that missed pushes
//     recovers everything by seq (BATCH_SYNC, SYNC_RANGE).
//   - Every device: a message reaches every session of its recipients and
//     the sender's other sessions, never the sending connection.
//   - A slow client never slows the others: each connection's queue is
//     bounded in frames and bytes (Config.SendQueue, SendQueueBytes). A
//     client that falls behind on pushes is disconnected and resyncs; one
//     that sends requests without reading the answers is no longer read
//     until it does, so it holds up only itself.
//
// # Groups
//
// A group (CreateGroup, JoinGroup, InviteToGroup, …) has an owner, admins
// and members, and a conversation GroupConversationID(id). A group message
// is stored once, whatever the group's size, and pushed to every session of
// every member; members read its history by sync from their first
// readable seq on (see below), and a user who leaves reads none of it. Every change to a group is also a message in its
// conversation (a NotificationMessage whose content is a GroupNotice), so
// clients learn of it by push and by sync like any message.
//
// A group's id is 128 random bits from crypto/rand (32 hex characters), not
// a time-ordered id like a message's, so knowing the ids one sees does not
// lead to a group's. Who may join is the group's JoinPolicy: JoinOpen (the
// zero value of GroupSpec.JoinPolicy) lets anyone with the id join,
// JoinInviteOnly only the admins and the owner add members; the HTTP API
// (transport/httpapi) creates invite-only groups unless asked for an open
// one. Group(ctx, id, userID) answers an invite-only group to its members
// only, and to anyone else the same ErrNotFound as for an id that names no
// group, and so does every other call on such a group by id (GroupMembers,
// JoinGroup, LeaveGroup, InviteToGroup, KickFromGroup, SetGroupRole,
// UpdateGroup, DismissGroup).
//
// How much of the past a new member reads is the group's History:
// HistoryFromJoin (the zero value, so the default everywhere) shows her
// the messages from the notice of her own joining on, HistoryFull all of
// them. The Store records with each membership the seq it began at
// (GroupMember.JoinSeq); FirstReadableSeq is the rule, and BATCH_SYNC and
// SYNC_RANGE return nothing below it.
//
// The group rules hold across Servers sharing one Store (several processes
// on one database), because the Store, not the Server, enforces them:
//
//   - A change is decided on the group's stored state and Version, and
//     stored with GroupStore.ChangeGroup on condition that the group is
//     still at that Version; if another change came first the Server reads
//     again and decides again. The member limit is checked by the Store in
//     the same transaction, and the change's notice is appended by the same
//     commit, so a change is never stored without its notice.
//   - A group message is stored only if its sender is a member when it is
//     committed (AppendRequest.MemberOf), so a member removed through
//     another Server cannot send, and a dismissed group accepts nothing.
//   - Reading a group's history (BATCH_SYNC, SYNC_RANGE) checks membership
//     against the Store after the read, so a removed member reads nothing
//     written after her removal, whichever Server she asks.
//
// The members of groups in use are cached in memory, with the Version they
// were read at, so a send reads nothing from the Store to find its
// recipients. The cache only chooses who is pushed to: when a commit
// reports a newer Version than the cached one (another Server changed the
// group), the members are read again before the message is pushed.
//
// # Presence
//
// The Server knows which users have sessions on it, with each session's
// platform and transport, and when each user's last session ended. A
// client asks with ONLINE_STATUS_REQ (at most MaxPresenceQueryIDs users)
// and may subscribe to changes, which are pushed to it as
// STATUS_CHANGE_PUSH; the host asks with Server.Presence. A user whose
// last session ends reads as online for Config.PresenceOfflineDelay, so
// that a quick reconnect changes nothing subscribers see. Who may see whom
// is Config.PresenceVisible (by default, users who share a one-to-one
// conversation with a message in it, or a group); a user one may not see
// reads as offline, exactly like a user never seen. Subscriptions are
// bounded per connection (Config.MaxPresenceSubscriptions), requests per
// user (Config.PresenceQueryRate), and end with their connection;
// Stats.PresenceSubscriptions counts those held. Presence is kept in memory
// and is per Server: a restart forgets last-seen times, and users connected
// to other processes on the same Store read as offline.
//
// # Recall
//
// A user may recall (revoke) her own message for Config.RecallWindow
// after sending it (2 minutes by default), and a group's owner and admins
// any message of the group, whenever it was sent; nobody recalls a
// group's notices, nor messages of system conversations. The requester
// must belong to the conversation, and an invite-only group answers a
// non-member as a group that does not exist. A recalled message stays in
// its conversation as a tombstone, with its seq, ids, sender, type and
// times, its content erased from the Store (RecallStore), so seqs stay
// gap-free and sync returns it with RevokedBy and RevokedAt; a resend of
// its client_msg_id is answered with the original acknowledgement and
// stores nothing. Every session of every member, the requester's own
// included, gets REVOKE_MSG_PUSH. Recalling a tombstone again succeeds
// and changes and pushes nothing. A device that held the message and was
// offline when it was recalled is not told: the push is the only news,
// and sync returns the tombstone only to a device that asks for its seq,
// which one holding the message does not.
//
// # Offline push
//
// A host that sends pushes through APNs or FCM sets Config.Notifier. It is
// told of each new message once for every recipient with no open session
// on this Server (the sender excepted), with her unread count for the
// badge, whether she muted the conversation, and the content only if
// Config.NotifyPreview allows; a recall gives a Notification with Recalled
// set, to withdraw what was shown. It is called by a few goroutines of its
// own, from a bounded queue that drops when full (Stats.NotificationsDropped),
// so that a slow push service never holds up delivery.
//
// # Conversation list
//
// Server.Conversations pages through a user's conversations as a chat
// app lists them (CONVERSATION_LIST_REQ): pinned first, then the most
// recently updated, each with its last message, her unread count and
// mention, and her own settings of it, which
// Server.UpdateConversationSettings changes (CONVERSATION_SETTINGS_REQ):
// pin, mute, hide until the next message, clear her history. Nothing is
// kept for the list: each request derives it from the conversations sync
// reads, their newest messages, her read states and her settings, in a
// few batched Store reads. A history she cleared is cleared for her
// everywhere: the list, unread counts, BATCH_SYNC and SYNC_RANGE. Her
// connections that asked are pushed each change she makes elsewhere.
//
// # Optional Store capabilities
//
// Store holds only what every Server calls. Each further area a Store may
// serve is a small interface of its own, which the Server finds by type
// assertion on Config.Store, the way database/sql finds a driver's optional
// interfaces: a Store that lacks one keeps compiling and working, and the
// Server falls back to the required methods or leaves the feature off. A
// Store that wraps another (to count, log or cache calls) hides the inner
// one's capabilities unless it implements them too. Today they are:
//
//   - Pinger: Ping, a cheap health check. Without it Server.Health reads a
//     conversation instead.
//   - SyncStore: SyncConversations and MessageRanges, the reads of a
//     BATCH_SYNC (and the max_seq of an AuthResponse) in one round trip
//     each, SyncConversations with each group's first readable seq
//     (Conversation.ReadFrom). Without it the Server reads once per group
//     of the user and once per conversation that moved, and the
//     membership of each group with news before and after its read.
//   - MessageRangeScanner: ScanMessageRanges, MessageRanges for a caller
//     that reads each page once, so that the Store can reuse the pages'
//     memory from one sync to the next. Without it (or without
//     SyncStore) the Server takes pages from MessageRanges. A Store that
//     embeds one with it and overrides MessageRanges must override
//     ScanMessageRanges too.
//   - RecallStore: MessageByServerID and RecallMessage, which turn a
//     message into a tombstone. Without it recall is off: REVOKE_MSG_REQ
//     answers ERR_UNKNOWN and Server.RecallMessage ErrUnsupported.
//   - ConversationSettingsStore: each user's settings of her
//     conversations. Without it settings changes answer ErrUnsupported,
//     and every conversation reads as unpinned, unmuted, shown and
//     uncleared.
//   - FriendStore: friendships, friend requests and blocks. Without it
//     the friend calls answer ErrUnsupported, nobody is blocked, and
//     Config.FriendsOnly cannot be set.
//
// A new area (read receipts and per-conversation state, friends, files,
// …) follows the same pattern: an interface named for the area,
// with ctx first in every method and each method's not-found, atomicity and
// concurrency rules in its doc; listed here with what the Server does
// without it; checked by a storetest subtest that skips stores without it;
// implemented by store/bolt, store/sqlstore and store/memstore. Either the
// Server falls back to the required methods (a faster path, as SyncStore
// is), or the feature is off and its requests answer with an error code
// (a capability, such as storing receipts). Areas that are not the
// Server's business, such as the built-in accounts (auth.AccountStore), are
// defined by the package that uses them.
//
// # Concurrency
//
// All Server methods are safe for concurrent use. Concurrent sends are
// grouped into one Store commit (group commit) by a single commit loop.
// Committed messages are pushed and acknowledged by delivery goroutines
// (one per core, up to 16), each owning the conversations that hash to it,
// so a conversation's pushes reach every connection in seq order and its
// acks follow the order of its commits, while conversations fan out on
// every core. Host hooks never hold up delivery (see Config.AfterSend).
//
// # Lifecycle
//
// NewServer starts the Server's background goroutines; Shutdown stops it
// gracefully and Close at once. Transports register with the Server when
// they are created (RegisterTransport), and one Shutdown stops them too, in
// this order:
//
//  1. the transports stop accepting: TCP listeners close, the WebSocket
//     handler answers new upgrades with 503;
//  2. sessions take no new requests; sends already accepted commit and are
//     acknowledged;
//  3. what is queued to each client is flushed and the connections close
//     (OnDisconnect gets ErrServerClosed);
//  4. Shutdown waits for the transports' connection goroutines, WebSocket
//     close handshakes included, and stops the Server's own.
//
// If ctx ends first, Shutdown closes everything at once (Close) and
// returns ctx.Err(). After Shutdown or Close returns, no goroutine of the
// Server or its transports is left. The Server never closes the Store it
// was given. A host that mounts the WebSocket handler on its own
// http.Server calls Server.Shutdown, then http.Server.Shutdown for its
// other routes: net/http does not track hijacked connections, so only the
// Server can wait for WebSocket sessions.
//
// Config.ConnContext seeds each connection's context, from which the
// Authenticator, BeforeSend and the Store reads of that session take
// theirs. Commits batch many sessions' sends and run with the Server's own
// context.
//
// # Errors
//
// Errors match the sentinels (ErrNotFound, ErrInvalidArgument, …) with
// errors.Is. An *Error carries a Code, which the Server turns into the
// protocol error code a client sees; hooks return one to choose it. The
// sentinels, Frame, MaxFrameSize, MessageType and the conversation id
// helpers are declared in package im/wire, which the Go client shares, and
// re-exported here under the same names: errors.Is(err, ErrTooLarge) holds
// for the refusal a client received as much as for the one the Server sent.
package im
