// Package websocket serves the imserver protocol over WebSocket, as
// IM-iOS-SDK's WebSocket transport speaks it, with an http.Handler built on
// github.com/coder/websocket.
//
// # Messages
//
// By default one binary WebSocket message carries one frame as a serialized
// imv1.WebSocketMessage envelope: command, sequence, body (the protobuf of
// the command's message) and a timestamp in milliseconds. The server stamps
// every envelope it sends with the time of sending and ignores the client's.
// The binary envelope's codec is package im/wire's (AppendEnvelope,
// DecodeEnvelope), which the Go client shares.
//
// A client that offers the subprotocol SubprotocolJSON ("imserver.v1.json")
// exchanges text messages holding the same envelope as JSON instead, with
// the body written as the protojson of the command's message (field names
// as in the .proto, with protojson's lowerCamelCase names accepted too;
// 64-bit integers as strings, accepted as strings or numbers; bytes as
// base64; enums by name, accepted by name or number; fields at their zero
// value left out):
//
//	{"command": "CMD_HEARTBEAT_REQ", "sequence": 1, "body": {"client_time": "1700000000000"}}
//	{"command": "CMD_HEARTBEAT_RSP", "sequence": 1, "timestamp": 1700000000042, "body": {"server_time": "1700000000042"}}
//
// The command may be given by name or by number. Envelopes the server sends
// name their command (a command without a name goes as its number) and, for
// a command with a message type, always carry a "body" object.
//
// # Errors
//
// Problems are kept apart by whether the connection can go on. A message
// that cannot be made into a frame closes the connection with a close
// status that says why: a message over the read limit
// (StatusMessageTooBig), a binary envelope that does not decode, JSON that
// is not JSON or names an unknown command (StatusInvalidFramePayloadData),
// or a text message without the JSON subprotocol and vice versa
// (StatusUnsupportedData). A well-framed request whose JSON body does not fit
// its command's message reaches the core with a body that fails to decode,
// so the core answers it INVALID_PARAM and the connection stays open, just
// as for a binary envelope with a bad body. Unknown JSON fields are ignored,
// as unknown protobuf fields are.
//
// # Handshake
//
// The SDK appends ?token= to the URL. When present, the token is verified
// before the upgrade, once: a refused token gets 401 (503 if it cannot be
// checked now or the server is shutting down) and no WebSocket. The
// identity it names is handed to the core (im.ConnInfo.Identity), whose
// session starts authenticated as it without asking the Authenticator
// again; an AuthRequest may still follow. ?platform= is reported as the
// session's platform.
//
// Cross-origin requests are refused unless their Origin host matches
// Options.OriginPatterns. Requests without Origin (native clients) and those
// whose Origin is the request's own host (Starscream sends ws://host:port
// for ws://host:port/ws) are accepted.
//
// Pings from the client count as activity for the core's idle timeout:
// the connection implements im.KeepAliver.
//
// # Lifecycle
//
// ServeHTTP upgrades the request and returns; the session, im.Server's
// ServeConn, runs on a goroutine of its own, so that net/http's goroutine for
// the connection does not stay behind for the life of an idle WebSocket. A
// connection the core closes gets StatusNormalClosure, or
// StatusPolicyViolation when it did not authenticate in time or sent
// requests no correct client sends (im.ErrProtocolAbuse), and the goroutine
// returns once the close handshake is over; an unresponsive client can hold
// the handshake for the few seconds coder/websocket allows it.
//
// The session's context is the request's without its cancellation (net/http
// cancels it when ServeHTTP returns): values a middleware put there are kept.
//
// net/http does not track hijacked connections, so http.Server.Shutdown
// neither ends nor waits for WebSocket sessions. The im.Server does both:
// NewHandler registers the Handler with it, and its Shutdown makes the
// Handler answer new upgrades with 503, ends the sessions, and waits for
// their goroutines and close handshakes. A host calls that one Shutdown,
// then its http.Server's for its other handlers:
//
//	_ = core.Shutdown(ctx) // everything of imserver's; Close if ctx runs out
//	_ = httpServer.Shutdown(ctx)
//
// # Memory
//
// net/http's 4 KiB read and write buffers are dropped at the upgrade.
// Messages are read and written through buffers shared by all connections,
// taken only while there is something to read or write, so an idle
// connection holds just a 128-byte buffer for control frames and a 16-byte
// one for reading (512 bytes over TLS, or on systems other than unix, where
// a read cannot wait for data without a buffer to read into). The frames of
// one WriteFrames go out with one write.
//
// # Concurrency
//
// The handler serves any number of connections at once. Each has the
// session's reading goroutine and, while closing, one goroutine running the
// close handshake; Handler.Shutdown and Handler.Close wait for both.
package websocket
