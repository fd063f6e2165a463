package client

import (
	"errors"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imv1"
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
// errors.Is matches it against the im sentinel of its code (im.ErrUnauthenticated
// for AUTH_FAILED, im.ErrTokenExpired for TOKEN_EXPIRED, and so on); codes
// without a sentinel (UNKNOWN) match none.
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

// Unwrap returns the im sentinel of e.Code, or nil if it has none.
func (e *Error) Unwrap() error { return sentinelOf(e.Code) }

// sentinelOf is the one place where protocol error codes become im
// sentinels: the inverse of the server's mapping.
func sentinelOf(code imv1.ErrorCode) error {
	switch code {
	case imv1.ErrorCode_ERR_INVALID_PARAM:
		return im.ErrInvalidArgument
	case imv1.ErrorCode_ERR_AUTH_FAILED:
		return im.ErrUnauthenticated
	case imv1.ErrorCode_ERR_TOKEN_EXPIRED:
		return im.ErrTokenExpired
	case imv1.ErrorCode_ERR_PERMISSION_DENIED:
		return im.ErrPermissionDenied
	case imv1.ErrorCode_ERR_USER_NOT_EXIST, imv1.ErrorCode_ERR_CONVERSATION_NOT_EXIST:
		return im.ErrNotFound
	case imv1.ErrorCode_ERR_MESSAGE_TOO_LARGE:
		return im.ErrTooLarge
	case imv1.ErrorCode_ERR_SEND_TOO_FAST:
		return im.ErrRateLimited
	}
	return nil
}
