// Package tcp serves the imserver protocol over TCP (optionally TLS) with
// the framing of IM-iOS-SDK's default transport.
//
// # Framing
//
// Every frame is a 16-byte header followed by the body, the protobuf
// serialization of the command's message. The codec is package im/wire's
// (AppendFrame, ReadFrame, whose documentation has the header's layout),
// which clients share; this package is the server around it.
//
// A header with the wrong magic, version or checksum, or announcing a body
// over the limit, closes the connection: once a header cannot be trusted,
// neither can anything after it. A well-framed body that does not decode is
// the core's business; it answers INVALID_PARAM and keeps the connection.
//
// # Lifecycle
//
// NewServer starts nothing. Serve (or ListenAndServe) accepts connections
// until Shutdown or Close, running each connection's session, im.Server's
// ServeConn, on a goroutine of its own. The im.Server owns everything above
// the framing: authentication, heartbeats and idle timeouts, queues.
//
// When the core closes a connection (a kick, a failed authentication, the
// end of a shutdown), what was written goes out first, then FIN; the socket
// itself is closed once the client has closed its side, or after a second.
// Closing it outright while the client's bytes sit unread would make the
// kernel answer with a reset, which can destroy those last frames before the
// client reads them. (With TLS the socket is closed at once.)
//
// NewServer registers the Server with its im.Server, so the im.Server's
// Shutdown stops it: the listeners close at once, the sessions are told and
// drained, and Shutdown returns once every connection goroutine has
// returned. The im.Server's Close, or this Server's, drops every connection
// at once. Neither leaves a goroutine behind once it has returned nil.
// Serve then returns im.ErrServerClosed.
//
// # Concurrency
//
// A Server's methods may be called from any goroutine. Each connection has
// one goroutine reading frames (the session's); writes come from the
// session's writer and are batched into as few system calls as possible.
// TCP_NODELAY stays on, as Go sets it, so a batch leaves at once.
//
// # Errors
//
// A connection closed for its framing ends its session with one of
// package wire's errors (wire.ErrBadMagic, wire.ErrBadChecksum, …), which
// wrap im.ErrInvalidArgument. Serve returns im.ErrServerClosed after
// Shutdown or Close.
package tcp
