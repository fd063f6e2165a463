package client

import (
	"context"

	"github.com/imserver/imserver/im/imv1"
)

// MarkRead tells the server the user has read conversationID up to the
// newest of the messages serverMsgIDs names, or with none up to its newest
// message (READ_RECEIPT_REQ). The senders of the messages it covers, and
// the user's other devices, get a READ_RECEIPT_PUSH (*imv1.ReadReceiptPush).
func (c *Client) MarkRead(ctx context.Context, conversationID string, serverMsgIDs ...string) error {
	req := &imv1.ReadReceiptRequest{ConversationId: conversationID, ServerMsgIds: serverMsgIDs}
	return c.Request(ctx, imv1.CommandType_CMD_READ_RECEIPT_REQ, req, new(imv1.ReadReceiptResponse))
}

// Ack tells the server that the message serverMsgID, pushed on this
// connection, has reached the device (MSG_ACK, which gets no response): its
// sender learns "delivered". The server knows only the recent pushes of the
// connection; an ack of an older one changes nothing.
func (c *Client) Ack(ctx context.Context, serverMsgID string) error {
	return c.SendFrame(ctx, imv1.CommandType_CMD_MSG_ACK, &imv1.MessageAck{ServerMsgId: serverMsgID})
}

// ReadState asks for the user's read state in conversationIDs (at most
// 100; with none, in every conversation of hers): read and delivered
// positions, unread counts, mention flags, and in one-to-one conversations
// named, the peer's positions (an imserver extension, READ_STATE_REQ). With
// receipts, the connection also subscribes to, or unsubscribes from,
// pushes of CMD_DELIVERY_RECEIPT_PUSH (*imv1.DeliveryReceiptPush) telling
// how far the peers of her one-to-one conversations have received and
// read. The subscription belongs to the connection: after a reconnect,
// subscribe again.
func (c *Client) ReadState(ctx context.Context, receipts imv1.ReceiptSubscribe, conversationIDs ...string) (*imv1.ReadStateResponse, error) {
	req := &imv1.ReadStateRequest{ConversationIds: conversationIDs, Receipts: receipts}
	rsp := new(imv1.ReadStateResponse)
	if err := c.Request(ctx, imv1.CommandType_CMD_READ_STATE_REQ, req, rsp); err != nil {
		return nil, err
	}
	return rsp, nil
}

// ReadBy asks who has read serverMsgID, a message the user sent to
// conversationID (an imserver extension, READ_BY_REQ): counts always,
// names in one-to-one conversations and groups up to the server's limit.
func (c *Client) ReadBy(ctx context.Context, conversationID, serverMsgID string) (*imv1.ReadByResponse, error) {
	req := &imv1.ReadByRequest{ConversationId: conversationID, ServerMsgId: serverMsgID}
	rsp := new(imv1.ReadByResponse)
	if err := c.Request(ctx, imv1.CommandType_CMD_READ_BY_REQ, req, rsp); err != nil {
		return nil, err
	}
	return rsp, nil
}
