package im

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// TestWireError pins what a client is told for each kind of error: the
// protocol codes are a contract with IM-iOS-SDK.
func TestWireError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code imv1.ErrorCode
		msg  string
	}{
		{"token expired", fmt.Errorf("jwt: %w", ErrTokenExpired), imv1.ErrorCode_ERR_TOKEN_EXPIRED, "token expired"},
		{"unauthenticated", fmt.Errorf("jwt: %w", ErrUnauthenticated), imv1.ErrorCode_ERR_AUTH_FAILED, "authentication failed"},
		{"permission denied", ErrPermissionDenied, imv1.ErrorCode_ERR_PERMISSION_DENIED, "permission denied"},
		{"invalid argument", ErrInvalidArgument, imv1.ErrorCode_ERR_INVALID_PARAM, "invalid argument"},
		{"conflict", ErrConflict, imv1.ErrorCode_ERR_INVALID_PARAM, "conflict"},
		{"too large", ErrTooLarge, imv1.ErrorCode_ERR_MESSAGE_TOO_LARGE, "message too large"},
		{"rate limited", ErrRateLimited, imv1.ErrorCode_ERR_SEND_TOO_FAST, "sending too fast"},
		{"not found", fmt.Errorf("store: %w", ErrNotFound), imv1.ErrorCode_ERR_CONVERSATION_NOT_EXIST, "not found"},
		{"limit exceeded", ErrLimitExceeded, imv1.ErrorCode_ERR_INVALID_PARAM, "limit exceeded"},
		{"unsupported", ErrUnsupported, imv1.ErrorCode_ERR_UNKNOWN, "unsupported command"},
		{"server closed", ErrServerClosed, imv1.ErrorCode_ERR_UNKNOWN, "server shutting down"},
		{"anything else", errors.New("disk on fire"), imv1.ErrorCode_ERR_UNKNOWN, "internal error"},
		{"*Error chooses", errorf(CodeUserNotFound, ErrNotFound, "user %s does not exist", "bob"), imv1.ErrorCode_ERR_USER_NOT_EXIST, "user bob does not exist"},
		{"wrapped *Error", fmt.Errorf("hook: %w", &Error{Code: CodeRateLimited, Msg: "slow down"}), imv1.ErrorCode_ERR_SEND_TOO_FAST, "slow down"},
		{"*Error without a code", &Error{Msg: "no", Err: ErrPermissionDenied}, imv1.ErrorCode_ERR_UNKNOWN, "no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msg := wireError(tt.err)
			require.Equal(t, tt.code, code)
			require.Equal(t, tt.msg, msg)
		})
	}
}

// TestWireCode checks that every Code has a protocol code of its own (but
// CodeNotFound and CodeUserNotFound, which the SDK tells apart, have two),
// and that a client maps it back to the sentinel the core uses with it.
func TestWireCode(t *testing.T) {
	sentinel := map[Code]error{
		CodeUnknown:          nil,
		CodeInvalidArgument:  ErrInvalidArgument,
		CodeUnauthenticated:  ErrUnauthenticated,
		CodeTokenExpired:     ErrTokenExpired,
		CodePermissionDenied: ErrPermissionDenied,
		CodeUserNotFound:     ErrNotFound,
		CodeNotFound:         ErrNotFound,
		CodeTooLarge:         ErrTooLarge,
		CodeRateLimited:      ErrRateLimited,
	}
	seen := map[imv1.ErrorCode]Code{}
	for c := CodeUnknown; int(c) < len(codeNames); c++ {
		want, ok := sentinel[c]
		require.True(t, ok, "no expectation for %v", c)
		wc := wireCode(c)
		require.NotEqual(t, imv1.ErrorCode_ERR_SUCCESS, wc, "%v", c)
		if prev, dup := seen[wc]; dup {
			t.Fatalf("%v and %v both become %v", prev, c, wc)
		}
		seen[wc] = c
		require.Equal(t, want, wire.SentinelOf(wc), "%v", c)
	}
	require.Len(t, seen, len(sentinel))
	require.Equal(t, imv1.ErrorCode_ERR_UNKNOWN, wireCode(Code(99)))
}

func TestCodeString(t *testing.T) {
	for c := CodeUnknown; int(c) < len(codeNames); c++ {
		require.NotEmpty(t, c.String(), "code %d has no name", int(c))
		require.False(t, strings.HasPrefix(c.String(), "Code("), "code %d has no name", int(c))
	}
	require.Equal(t, "invalid argument", CodeInvalidArgument.String())
	require.Equal(t, "Code(99)", Code(99).String())
	require.Equal(t, "Code(-1)", Code(-1).String())
}

// TestSharedSentinels checks that im's sentinels are wire's values, not
// copies: a client's errors match them.
func TestSharedSentinels(t *testing.T) {
	require.Same(t, wire.ErrNotFound, ErrNotFound)
	require.ErrorIs(t, wire.SentinelOf(imv1.ErrorCode_ERR_TOKEN_EXPIRED), ErrUnauthenticated)
	require.ErrorIs(t, wire.SentinelOf(imv1.ErrorCode_ERR_MESSAGE_TOO_LARGE), ErrTooLarge)
}
