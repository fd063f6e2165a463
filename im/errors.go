package im

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// The sentinel errors (ErrNotFound, ErrInvalidArgument, …) are declared in
// wire.go: the client shares them.

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
	// ErrProtocolAbuse: the connection sent requests no correct client
	// sends: more than 3 requests (other than heartbeats) before
	// authenticating, or more than 32 unknown commands or malformed bodies.
	// The last one is answered before the connection closes.
	ErrProtocolAbuse = errors.New("im: protocol abuse")
)

// Reasons the Store cannot take writes, which a failed send's ack and
// Server.Health report. The Server classifies a commit's error by what it
// wraps: ErrStorageFull and ErrStorageReadOnly wrap ErrStorageUnavailable,
// so errors.Is(err, ErrStorageUnavailable) matches all three. Their
// messages name no file or address, so they are safe to show.
var (
	// ErrStorageUnavailable: the Store failed to commit a write.
	ErrStorageUnavailable = errors.New("im: storage unavailable")
	// ErrStorageFull: the Store's disk or quota is full (ENOSPC, EDQUOT).
	ErrStorageFull = &storageError{"im: storage full"}
	// ErrStorageReadOnly: the Store's file system is read-only (EROFS).
	ErrStorageReadOnly = &storageError{"im: storage read-only"}
)

// ErrMuted: a group member may not send to the group now, because she is
// muted (GroupMember.MutedUntil) or the group is (Group.MuteAll). It wraps
// ErrPermissionDenied.
var ErrMuted = fmt.Errorf("%w: muted in this group", ErrPermissionDenied)

// ErrCorrupt: stored data failed its integrity check (a checksum, or a
// record that cannot be decoded). A Store returns it, wrapped, instead of
// the data, and the Server answers the request with an internal error
// whose message says so, logs it and counts it (Stats.CorruptReads).
// It is not a kind of ErrStorageUnavailable: the store still takes
// writes, and other data still reads.
var ErrCorrupt = errors.New("im: stored data failed its integrity check")

// CorruptError names the stored record that failed its integrity check,
// as far as the Store knows it: a message's Conversation and Seq, or only
// the Conversation, or neither (an account's record). errors.Is(err,
// ErrCorrupt) holds for it. Stores may return ErrCorrupt without one.
type CorruptError struct {
	Conversation string
	Seq          int64
	Err          error // what was wrong
}

func (e *CorruptError) Error() string {
	switch {
	case e.Seq != 0:
		return fmt.Sprintf("message %q/%d: %v", e.Conversation, e.Seq, e.Err)
	case e.Conversation != "":
		return fmt.Sprintf("conversation %q: %v", e.Conversation, e.Err)
	}
	return e.Err.Error()
}

func (e *CorruptError) Unwrap() error { return e.Err }

// Is makes every CorruptError match ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// storageError is a kind of ErrStorageUnavailable.
type storageError struct{ msg string }

func (e *storageError) Error() string { return e.msg }
func (e *storageError) Unwrap() error { return ErrStorageUnavailable }

// storageFailure returns why a commit failed with err, as an error wrapping
// both the storage reason and err, or nil when err is no storage failure:
// one a client is told about through its own sentinel (ErrNotFound,
// ErrInvalidArgument, …), or the Server shutting down.
func storageFailure(err error) error {
	if err == nil || errors.Is(err, ErrServerClosed) || errors.Is(err, context.Canceled) {
		return nil
	}
	if c, msg := codeOf(err); c != CodeUnknown || msg != msgInternal {
		return nil
	}
	reason := ErrStorageUnavailable
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		reason = ErrStorageFull
	case errors.Is(err, syscall.EROFS):
		reason = ErrStorageReadOnly
	}
	return fmt.Errorf("%w: %w", reason, err)
}

// Code is what kind of failure a client is told of. The Server turns it into
// the protocol's error code when it answers; a Code says what went wrong in
// the core's terms, so hooks and plug-ins choose one without knowing the
// protocol.
type Code int

// Codes. The zero Code is CodeUnknown.
const (
	// CodeUnknown: an internal error, or one without a better code. The
	// client is told ERR_UNKNOWN.
	CodeUnknown Code = iota
	// CodeInvalidArgument: the request is malformed or out of bounds (also
	// a conflict, or a limit that would be exceeded).
	CodeInvalidArgument
	// CodeUnauthenticated: the credentials are missing, wrong or forged.
	CodeUnauthenticated
	// CodeTokenExpired: the credentials were valid but have expired.
	CodeTokenExpired
	// CodePermissionDenied: the caller may not do this.
	CodePermissionDenied
	// CodeUserNotFound: a user the request names does not exist.
	CodeUserNotFound
	// CodeNotFound: the conversation or group the request names does not
	// exist.
	CodeNotFound
	// CodeTooLarge: the message is over the size limit.
	CodeTooLarge
	// CodeRateLimited: the caller sends faster than it is allowed to.
	CodeRateLimited
)

var codeNames = [...]string{
	CodeUnknown:          "unknown",
	CodeInvalidArgument:  "invalid argument",
	CodeUnauthenticated:  "unauthenticated",
	CodeTokenExpired:     "token expired",
	CodePermissionDenied: "permission denied",
	CodeUserNotFound:     "user not found",
	CodeNotFound:         "not found",
	CodeTooLarge:         "too large",
	CodeRateLimited:      "rate limited",
}

// String returns the code's name, such as "invalid argument".
func (c Code) String() string {
	if c >= 0 && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("Code(%d)", int(c))
}

// Error is an error with a code and a message that is safe to show to the
// client. Hooks return one to choose what the client sees; the Server maps
// other errors to codes through their sentinel.
type Error struct {
	Code Code
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
func errorf(code Code, sentinel error, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

// codeOf maps a non-nil error to the code and message a client is shown.
// Internal details of unexpected errors are not leaked. wireCode, where
// responses are built, turns the code into the protocol's.
func codeOf(err error) (Code, string) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, e.Msg
	}
	switch {
	case errors.Is(err, ErrTokenExpired):
		return CodeTokenExpired, "token expired"
	case errors.Is(err, ErrUnauthenticated):
		return CodeUnauthenticated, "authentication failed"
	case errors.Is(err, ErrPermissionDenied):
		return CodePermissionDenied, "permission denied"
	case errors.Is(err, ErrInvalidArgument):
		return CodeInvalidArgument, "invalid argument"
	case errors.Is(err, ErrConflict):
		return CodeInvalidArgument, "conflict"
	case errors.Is(err, ErrTooLarge):
		return CodeTooLarge, "message too large"
	case errors.Is(err, ErrRateLimited):
		return CodeRateLimited, "sending too fast"
	case errors.Is(err, ErrNotFound):
		return CodeNotFound, "not found"
	case errors.Is(err, ErrLimitExceeded):
		return CodeInvalidArgument, "limit exceeded"
	case errors.Is(err, ErrUnsupported):
		return CodeUnknown, "unsupported command"
	case errors.Is(err, ErrServerClosed):
		return CodeUnknown, "server shutting down"
	// The protocol has no code for these; the message tells the user
	// (and the operator reading a client's report) what is wrong.
	case errors.Is(err, ErrStorageFull):
		return CodeUnknown, "storage full"
	case errors.Is(err, ErrStorageReadOnly):
		return CodeUnknown, "storage read-only"
	case errors.Is(err, ErrStorageUnavailable):
		return CodeUnknown, "storage unavailable"
	case errors.Is(err, ErrCorrupt):
		return CodeUnknown, msgCorrupt
	}
	return CodeUnknown, msgInternal
}

// msgInternal is what a client is told of an error the Server has no
// better word for.
const msgInternal = "internal error"

// msgCorrupt is what a client is told of ErrCorrupt: nothing of the data.
const msgCorrupt = "stored data failed its integrity check"
