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
//   - A slow client never slows the others: each connection has a bounded
//     queue, and a client that falls behind is disconnected and resyncs.
//
// # Groups
//
// A group (CreateGroup, JoinGroup, InviteToGroup, …) has an owner, admins
// and members, and a conversation GroupConversationID(id). A group message
// is stored once, whatever the group's size, and pushed to every session of
// every member; members read the whole history by sync, and a user who
// leaves reads none of it. Every change to a group is also a message in its
// conversation (a NotificationMessage whose content is a GroupNotice), so
// clients learn of it by push and by sync like any message. The members of
// groups in use are cached in memory, so a send reads nothing from the
// Store: changes made through another Server sharing the Store are seen
// once the cache entry is reloaded.
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
//     each. Without it the Server reads once per group of the user and
//     once per conversation that moved.
//
// A new area (read receipts and per-conversation state, recall, friends,
// files, …) follows the same pattern: an interface named for the area,
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
// grouped into one Store commit (group commit) by a single commit loop,
// which also queues pushes, so pushes of a conversation reach every
// connection in seq order.
//
// # Lifecycle
//
// NewServer starts the Server's background goroutines; Shutdown stops it
// gracefully and Close at once. After either returns, no goroutine of the
// Server is left. The Server never closes the Store it was given. A host
// that mounts the WebSocket handler on its own http.Server calls
// Server.Shutdown first, then http.Server.Shutdown, because net/http does
// not track hijacked connections.
//
// # Errors
//
// Errors match the sentinels in errors.go with errors.Is. An *Error carries
// the protocol error code a client sees; hooks return one to choose it.
package im
