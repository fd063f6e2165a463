// Package client is a Go client for imserver's protocol (IM-iOS-SDK's
// protocol), over TCP or WebSocket, and for its HTTP API. Tests, the
// benchmark tool and bots use it.
//
// Dial connects and authenticates. Send sends a message and returns its
// acknowledgement; Recall recalls one; Request does any other
// request/response pair; SendFrame sends a frame that has no response
// (MSG_ACK, typing). Pushes arrive on the Pushes channel or through
// Options.OnPush: new messages, and recalls (CMD_REVOKE_MSG_PUSH), presence
// changes and the like, each with its decoded body.
//
// # Delivery and cursors
//
// The client tracks, per conversation, the seqs it holds; Cursor is the
// highest seq up to which it holds every message. Each message reaches the
// application once: a push or sync result for a seq the client holds
// already is dropped, and so is a sync result that is this client's own
// Send. A push whose seq jumps beyond the cursor is delivered at once, and
// the missing seqs are then fetched by the client's worker goroutine
// (SyncRange) and delivered as CMD_PUSH_MSG pushes after it; so within a
// conversation pushes are in seq order except around such a gap. SyncAll
// catches up on everything newer than the cursors and returns it.
//
// A new Client holds nothing unless Options.Cursors says otherwise: call
// SyncAll right after Dial, or the first gap repair of a conversation
// fetches its whole history as pushes.
//
// # Concurrency
//
// All methods are safe for concurrent use. Each connection has one reader
// goroutine, which matches responses to requests by sequence and delivers
// pushes, and one write path (a mutex; callers write their own frames). One
// worker goroutine per Client sends keep-alives, repairs gaps and
// reconnects. OnPush is called by the reader or the worker, never
// concurrently with itself; when the Pushes channel is full, both wait for
// the consumer (see Pushes).
//
// # Lifecycle
//
// Dial starts the goroutines; Close stops them and waits for them. With
// Options.Reconnect a broken connection is redialled with exponential
// backoff (100 ms up to 5 s, jittered); after authenticating again the
// client runs SyncAll, delivering what it missed as pushes, and Sends in
// flight are retried with their client_msg_id. KICK_OUT ends the client for
// good, as it does in IM-iOS-SDK. Done is closed when the client has ended
// and Err says why.
//
// # Errors
//
// A non-zero error code from the server is returned as a *Error, which
// matches the sentinels of package im/wire with errors.Is
// (wire.ErrUnauthenticated, wire.ErrTooLarge, wire.ErrNotFound, …). They are
// the server's own: package im re-exports them, so errors.Is(err,
// im.ErrTooLarge) holds too. Errors of the client itself wrap ErrClosed,
// ErrKicked, ErrConnLost or wire.ErrInvalidArgument (bad Options or
// arguments); a timeout wraps context.DeadlineExceeded.
//
// # HTTP API
//
// API is the HTTP side (transport/httpapi; docs/PROTOCOL.md sections 3,
// 20 to 23): register and log in for the token Dial needs, then users and
// profiles, friends and blocks, groups and their management, and the
// conversation list and settings, one typed method per route, with times
// as time.Time. Login keeps the token for later calls, ChangePassword
// replaces it, Logout forgets it. A non-zero code the server answers is an
// *APIError, which matches the same sentinels as Error (errors.Is(err,
// wire.ErrUnauthenticated) for a missing, expired or revoked token;
// wire.ErrConflict for a taken username); a join that waits for an
// admin's approval is no error but JoinGroup's pending result. Bodies sent
// and answers read are bounded (APIOptions).
//
// # Dependencies
//
// Of this module the client imports only im/imv1 (the protocol) and
// im/wire (the framing and vocabulary both ends share), never the server
// package im, a transport or a store: a program that only talks to a
// server links none of them.
package client
