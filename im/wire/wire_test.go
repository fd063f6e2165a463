package wire_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

func TestConversationIDs(t *testing.T) {
	require.Equal(t, "single_alice_bob", wire.SingleConversationID("alice", "bob"))
	require.Equal(t, "single_alice_bob", wire.SingleConversationID("bob", "alice"))
	require.Equal(t, "single_a_b_c", wire.SingleConversationID("b_c", "a"), "ids may hold _")
	require.Equal(t, "single_x_x", wire.SingleConversationID("x", "x"))
	require.Equal(t, "group_g1", wire.GroupConversationID("g1"))
	require.Equal(t, "system_alice", wire.SystemConversationID("alice"))

	for id, want := range map[string]wire.ConversationType{
		wire.SingleConversationID("a", "b"): wire.SingleConversation,
		wire.GroupConversationID("g"):       wire.GroupConversation,
		wire.SystemConversationID("a"):      wire.SystemConversation,
		"chatroom_lobby":                    wire.ChatroomConversation,
		"":                                  0,
		"single":                            0,
		"Group_g":                           0,
		"x_single_a_b":                      0,
	} {
		require.Equal(t, want, wire.ConversationTypeOf(id), "%q", id)
	}
}

func TestSentinelOf(t *testing.T) {
	tests := []struct {
		code imv1.ErrorCode
		want error
	}{
		{imv1.ErrorCode_ERR_SUCCESS, nil},
		{imv1.ErrorCode_ERR_UNKNOWN, nil},
		{imv1.ErrorCode_ERR_INVALID_PARAM, wire.ErrInvalidArgument},
		{imv1.ErrorCode_ERR_AUTH_FAILED, wire.ErrUnauthenticated},
		{imv1.ErrorCode_ERR_TOKEN_EXPIRED, wire.ErrTokenExpired},
		{imv1.ErrorCode_ERR_PERMISSION_DENIED, wire.ErrPermissionDenied},
		{imv1.ErrorCode_ERR_USER_NOT_EXIST, wire.ErrNotFound},
		{imv1.ErrorCode_ERR_MESSAGE_TOO_LARGE, wire.ErrTooLarge},
		{imv1.ErrorCode_ERR_SEND_TOO_FAST, wire.ErrRateLimited},
		{imv1.ErrorCode_ERR_CONVERSATION_NOT_EXIST, wire.ErrNotFound},
		{imv1.ErrorCode(4242), nil}, // from a newer server
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			require.Equal(t, tt.want, wire.SentinelOf(tt.code))
		})
	}
	// Every code the protocol defines but success and unknown has one.
	for n := range imv1.ErrorCode_name {
		code := imv1.ErrorCode(n)
		if code == imv1.ErrorCode_ERR_SUCCESS || code == imv1.ErrorCode_ERR_UNKNOWN {
			continue
		}
		require.NotNil(t, wire.SentinelOf(code), "%v has no sentinel", code)
	}
	require.True(t, errors.Is(wire.ErrTokenExpired, wire.ErrUnauthenticated))
}
