package im

import (
	"context"
	"time"
)

// Conn is a client connection as a transport hands it to Server.ServeConn.
// The transport does the framing; the Server does everything else.
type Conn interface {
	// ReadFrame returns the next frame. Only the ServeConn goroutine calls
	// it. It returns an error once the connection is closed or broken, or
	// when the peer sent a frame that cannot be framed safely (bad header,
	// over MaxFrameSize).
	ReadFrame(ctx context.Context) (Frame, error)

	// WriteFrames writes frames in order and flushes them. Calls never
	// overlap each other but may overlap ReadFrame. ctx carries the write
	// deadline; the Server passes the same ctx to many calls, and its
	// deadline passing or its cancellation between calls must leave the
	// connection as it is.
	WriteFrames(ctx context.Context, frames []Frame) error

	// Close closes the connection, unblocking ReadFrame and WriteFrames. It
	// may be called more than once and from any goroutine.
	Close() error
}

// ConnInfo describes a connection to ServeConn.
type ConnInfo struct {
	Transport  string // "tcp", "websocket", …; for logs and session listings
	RemoteAddr string
	// Identity, when its UserID is not empty, is who the transport's own
	// handshake has already authenticated, with Server.Authenticate (the
	// WebSocket handler does so for ?token= before upgrading). The session
	// starts as that user's without asking the Authenticator again; an
	// AuthRequest may still follow.
	Identity Identity
	// Token, when not empty and Identity is empty, was presented by the
	// transport's own handshake but not verified: the session is
	// authenticated with it before the first frame.
	Token string
	// Platform reported at the transport's handshake, if any.
	Platform string
}

// ReasonCloser is implemented by a Conn that can tell the client why it is
// closed, as a WebSocket's close status does. The Server then calls
// CloseWithReason instead of Close, with the reason the session ended (see
// Config.OnDisconnect; nil for a normal close). It must do what Close does.
type ReasonCloser interface {
	CloseWithReason(reason error) error
}

// KeepAliver is implemented by a Conn that sees keep-alive traffic the Server
// does not, such as WebSocket pings. The idle timeout counts it as activity.
type KeepAliver interface {
	// LastKeepAlive returns when keep-alive traffic last arrived; the zero
	// time if never.
	LastKeepAlive() time.Time
}
