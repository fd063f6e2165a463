package client

import (
	"context"

	"github.com/imserver/imserver/im/imv1"
)

// Presence asks for the online status of userIDs (an imserver extension,
// ONLINE_STATUS_REQ) and, with sub, subscribes the connection to their
// changes or unsubscribes it. Changes of a subscribed user arrive as pushes
// of CMD_STATUS_CHANGE_PUSH carrying *imv1.StatusChangePush. A push may
// overtake the response to the request that subscribed: keep, per user,
// the status with the highest Version.
//
// Subscriptions belong to the connection: after a reconnect (see
// Options.Reconnect) the server holds none, and the caller subscribes
// again.
func (c *Client) Presence(ctx context.Context, userIDs []string, sub imv1.PresenceSubscribe) (*imv1.OnlineStatusResponse, error) {
	req := &imv1.OnlineStatusRequest{UserIds: userIDs, Subscribe: sub}
	rsp := new(imv1.OnlineStatusResponse)
	if err := c.Request(ctx, imv1.CommandType_CMD_ONLINE_STATUS_REQ, req, rsp); err != nil {
		return nil, err
	}
	return rsp, nil
}
