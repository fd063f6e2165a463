package wire

import (
	"errors"
	"fmt"

	"github.com/imserver/imserver/im/imv1"
)

// Sentinel errors, shared by the server (package im re-exports them under
// the same names) and the client, so that errors.Is gives the same answer on
// both ends: a client sees im.ErrTooLarge for a message the server refused
// as too large. Their texts start with "im: " because that is where
// embedders meet them.
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
	// ErrTooLarge: the message content is over the server's limit.
	ErrTooLarge = errors.New("im: message too large")
	// ErrRateLimited: the caller sends faster than it is allowed to.
	ErrRateLimited = errors.New("im: rate limited")
	// ErrLimitExceeded: the request would take something past a configured
	// bound (a group's member limit).
	ErrLimitExceeded = errors.New("im: limit exceeded")
	// ErrUnsupported: the request is valid protocol but this server does not
	// implement it.
	ErrUnsupported = errors.New("im: unsupported")
	// ErrServerClosed: the server is shutting down or closed.
	ErrServerClosed = errors.New("im: server closed")
)

// SentinelOf returns the sentinel error a protocol error code stands for, or
// nil for ERR_SUCCESS and for codes that name no condition a caller can act
// on (ERR_UNKNOWN, and codes this version does not know). Several sentinels
// share a code on the wire (ErrConflict and ErrLimitExceeded travel as
// ERR_INVALID_PARAM), so the sentinel a client gets back is the one the
// code names.
func SentinelOf(code imv1.ErrorCode) error {
	switch code {
	case imv1.ErrorCode_ERR_INVALID_PARAM:
		return ErrInvalidArgument
	case imv1.ErrorCode_ERR_AUTH_FAILED:
		return ErrUnauthenticated
	case imv1.ErrorCode_ERR_TOKEN_EXPIRED:
		return ErrTokenExpired
	case imv1.ErrorCode_ERR_PERMISSION_DENIED:
		return ErrPermissionDenied
	case imv1.ErrorCode_ERR_USER_NOT_EXIST, imv1.ErrorCode_ERR_CONVERSATION_NOT_EXIST:
		return ErrNotFound
	case imv1.ErrorCode_ERR_MESSAGE_TOO_LARGE:
		return ErrTooLarge
	case imv1.ErrorCode_ERR_SEND_TOO_FAST:
		return ErrRateLimited
	}
	return nil
}
