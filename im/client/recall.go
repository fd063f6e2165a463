package client

import (
	"context"

	"github.com/imserver/imserver/im/imv1"
)

// Recall recalls (revokes) message serverMsgID of conversationID
// (REVOKE_MSG_REQ). The server lets a user recall her own messages for a
// while after sending them (imserver: 2 minutes unless configured), and a
// group's owner and admins any message of the group. The message stays in
// the conversation as a tombstone: syncs return it with is_revoked,
// revoked_by and revoked_time set and its content gone.
//
// On success every session of every member of the conversation, this one
// included, gets a push of CMD_REVOKE_MSG_PUSH carrying
// *imv1.RevokeMessagePush (Options.OnPush or Pushes). imserver sends it
// before the response, so on this connection it has been delivered by the
// time Recall returns. Recalling a message recalled already succeeds and
// pushes nothing.
//
// A refusal is a *Error: errors.Is(err, wire.ErrPermissionDenied) for
// someone else's message or one past the time allowed,
// wire.ErrNotFound for a message the conversation does not hold (or a
// group the user is not in that she may not know of),
// wire.ErrInvalidArgument for empty ids, wire.ErrRateLimited when
// recalling too fast. A request lost with its connection (ErrConnLost) is
// not retried; calling Recall again is safe.
func (c *Client) Recall(ctx context.Context, conversationID, serverMsgID string) error {
	req := &imv1.RevokeMessageRequest{ServerMsgId: serverMsgID, ConversationId: conversationID}
	return c.Request(ctx, imv1.CommandType_CMD_REVOKE_MSG_REQ, req, new(imv1.RevokeMessageResponse))
}
