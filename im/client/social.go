package client

import (
	"context"

	"github.com/imserver/imserver/im/imv1"
)

// SubscribeFriendEvents subscribes the connection to the changes of the
// user's friends, friend requests and blocks (an imserver extension,
// FRIEND_SUBSCRIBE_REQ), or unsubscribes it: they arrive as pushes of
// CMD_FRIEND_EVENT_PUSH carrying *imv1.FriendEventPush. The pushes are
// hints; the lists, served over HTTP, are the truth.
//
// The subscription belongs to the connection: after a reconnect (see
// Options.Reconnect) the server holds none, and the caller reads the lists
// again and subscribes again.
func (c *Client) SubscribeFriendEvents(ctx context.Context, subscribe bool) error {
	return c.Request(ctx, imv1.CommandType_CMD_FRIEND_SUBSCRIBE_REQ, &imv1.FriendSubscribeRequest{Subscribe: subscribe}, new(imv1.FriendSubscribeResponse))
}

// SubscribeGroupEvents subscribes the connection to the group management
// pushes (an imserver extension, GROUP_SUBSCRIBE_REQ), or unsubscribes it:
// CMD_GROUP_JOIN_REQUEST_PUSH (*imv1.GroupJoinRequestPush) when someone
// asks to join a group the user administers, and
// CMD_GROUP_JOIN_REJECTED_PUSH (*imv1.GroupJoinRejectedPush) when the
// user's own request is rejected. Like SubscribeFriendEvents, the
// subscription belongs to the connection, and the pushes are hints: the
// pending requests, served over HTTP, are the truth.
func (c *Client) SubscribeGroupEvents(ctx context.Context, subscribe bool) error {
	return c.Request(ctx, imv1.CommandType_CMD_GROUP_SUBSCRIBE_REQ, &imv1.GroupSubscribeRequest{Subscribe: subscribe}, new(imv1.GroupSubscribeResponse))
}
