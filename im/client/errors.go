package client

import (
	"errors"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// Errors of the client itself. Errors that the server reported are *Error.
var (
	// ErrClosed: Close was called.
	ErrClosed = errors.New("client: closed")
	// ErrKicked: the server sent KICK_OUT (the user logged in elsewhere, or
	// the account has a problem). The client does not reconnect after it.
	ErrKicked = errors.New("client: kicked out")
	// ErrConnLost: the connection broke. A request in flight may or may not
	// have reached the server; Send retries on it by itself.
	ErrConnLost = errors.New("client: connection lost")
)

// Error is a non-zero error code that the server answered a request with.
// errors.Is matches it against the sentinel of its code, which the server
// shares (im.ErrUnauthenticated and wire.ErrUnauthenticated are the same
// value): ErrUnauthenticated for AUTH_FAILED, ErrTokenExpired for
// TOKEN_EXPIRED, and so on. Codes without a sentinel (UNKNOWN) match none.
type Error struct {
	Code imv1.ErrorCode
	Msg  string
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return "client: server error " + e.Code.String()
	}
	return "client: server error " + e.Code.String() + ": " + e.Msg
}

// Unwrap returns the sentinel of e.Code (wire.SentinelOf), or nil if it has
// none.
func (e *Error) Unwrap() error { return wire.SentinelOf(e.Code) }
