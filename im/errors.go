package im

import (
	"errors"
	"fmt"

	"github.com/imserver/imserver/im/imv1"
)

// Sentinel errors. Every error that the Server, a Store or an Authenticator
// returns for one of these conditions satisfies errors.Is with the sentinel,
// whatever else it wraps.
var (
	// ErrNotFound: the user, conversation, message or account does not exist.
	ErrNotFound = errors.New("im: not found")
	// ErrConflict: the thing being created exists already (a username that
	// is taken, a client_msg_id reused for a different message).
	ErrConflict = errors.New("im: conflict")
	// ErrInvalidArgument: the input is malformed or out of bounds.
	ErrInvalidArgument = errors.New("im: invalid argument")
	// ErrUnauthenticated: the credentials are missing, wrong or forged.
	ErrUnauthenticated = errors.New("im: unauthenticated")
	// ErrTokenExpired: the credentials were valid but have expired. It wraps
	// ErrUnauthenticated, so errors.Is(err, ErrUnauthenticated) holds too.
	ErrTokenExpired = fmt.Errorf("%w: token expired", ErrUnauthenticated)
	// ErrPermissionDenied: the caller may not do this (send into a
	// conversation it does not belong to, for example).
	ErrPermissionDenied = errors.New("im: permission denied")
	// ErrTooLarge: the message content is over Config.MaxContentSize.
	ErrTooLarge = errors.New("im: message too large")
	// ErrRateLimited: the caller sends faster than it is allowed to.
	ErrRateLimited = errors.New("im: rate limited")
	// ErrLimitExceeded: the request would take something past a configured
	// bound (a group's member limit).
	ErrLimitExceeded = errors.New("im: limit exceeded")
	// ErrUnsupported: the request is valid protocol but this server does not
	// implement it.
	ErrUnsupported = errors.New("im: unsupported")
	// ErrServerClosed: the Server is shutting down or closed.
	ErrServerClosed = errors.New("im: server closed")
)

// Reasons a session ends, which Config.OnDisconnect receives and
// Server.ServeConn returns (with ErrServerClosed when the Server shuts down).
// A reason may wrap more (ErrAuthFailed wraps why), so match with errors.Is.
var (
	// ErrIdle: nothing arrived from the client for Config.IdleTimeout.
	ErrIdle = errors.New("im: connection idle")
	// ErrAuthTimeout: the connection did not authenticate within
	// Config.AuthTimeout.
	ErrAuthTimeout = errors.New("im: no authentication in time")
	// ErrAuthFailed: an authentication request was refused, which ends the
	// connection. The error wraps the Authenticator's too, so
	// errors.Is(err, ErrTokenExpired) tells an expired token apart.
	ErrAuthFailed = errors.New("im: authentication failed")
	// ErrSlowConsumer: the client did not read its pushes fast enough
	// (Config.SendQueue, Config.SendQueueBytes); it resyncs when it comes
	// back.
	ErrSlowConsumer = errors.New("im: client does not read fast enough")
	// ErrKicked: the session was kicked out (Server.Kick, KickSession, or
	// a newer login of the same user: ErrLoggedInElsewhere).
	ErrKicked = errors.New("im: session kicked")
	// ErrLoggedInElsewhere: a newer session of the same user replaced this
	// one under Config.DevicePolicy or MaxSessionsPerUser. It wraps
	// ErrKicked.
	ErrLoggedInElsewhere = fmt.Errorf("%w: logged in on another device", ErrKicked)
)

// Error is an error with a protocol error code and a message that is safe to
// show to the client. Hooks return one to choose what the client sees; the
// Server maps other errors to codes through their sentinel.
type Error struct {
	Code imv1.ErrorCode
	Msg  string
	Err  error // the cause, if any; not shown to the client
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// errorf returns an *Error with code, wrapping the sentinel err.
func errorf(code imv1.ErrorCode, sentinel error, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

// wireError maps any error to the code and message a client is shown. It is
// the one place where errors become protocol codes; internal details of
// unexpected errors are not leaked.
func wireError(err error) (imv1.ErrorCode, string) {
	if err == nil {
		return imv1.ErrorCode_ERR_SUCCESS, ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code, e.Msg
	}
	switch {
	case errors.Is(err, ErrTokenExpired):
		return imv1.ErrorCode_ERR_TOKEN_EXPIRED, "token expired"
	case errors.Is(err, ErrUnauthenticated):
		return imv1.ErrorCode_ERR_AUTH_FAILED, "authentication failed"
	case errors.Is(err, ErrPermissionDenied):
		return imv1.ErrorCode_ERR_PERMISSION_DENIED, "permission denied"
	case errors.Is(err, ErrInvalidArgument):
		return imv1.ErrorCode_ERR_INVALID_PARAM, "invalid argument"
	case errors.Is(err, ErrConflict):
		return imv1.ErrorCode_ERR_INVALID_PARAM, "conflict"
	case errors.Is(err, ErrTooLarge):
		return imv1.ErrorCode_ERR_MESSAGE_TOO_LARGE, "message too large"
	case errors.Is(err, ErrRateLimited):
		return imv1.ErrorCode_ERR_SEND_TOO_FAST, "sending too fast"
	case errors.Is(err, ErrNotFound):
		return imv1.ErrorCode_ERR_CONVERSATION_NOT_EXIST, "not found"
	case errors.Is(err, ErrLimitExceeded):
		return imv1.ErrorCode_ERR_INVALID_PARAM, "limit exceeded"
	case errors.Is(err, ErrUnsupported):
		return imv1.ErrorCode_ERR_UNKNOWN, "unsupported command"
	case errors.Is(err, ErrServerClosed):
		return imv1.ErrorCode_ERR_UNKNOWN, "server shutting down"
	}
	return imv1.ErrorCode_ERR_UNKNOWN, "internal error"
}
