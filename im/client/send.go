package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// Outgoing is a message to send.
type Outgoing struct {
	// ConversationID is where the message goes ("single_a_b", "group_g");
	// or leave it empty and set ReceiverID for a one-to-one message.
	ConversationID string
	ReceiverID     string
	Type           wire.MessageType
	Content        []byte
	// ClientMsgID identifies the message for the server's dedup; Send
	// generates a random one when it is empty. Sending the same id again
	// returns the original acknowledgement.
	ClientMsgID string
	Extra       string
}

// Send sends a message and returns the server's acknowledgement. A try that
// times out (RequestTimeout) or whose connection breaks is repeated, with the
// same client_msg_id so that the server stores the message once, up to three
// tries; while the client reconnects Send waits for it, within ctx. A
// refusal by the server is a *Error and is not retried.
//
// The server does not push a client's own messages back to it, and syncs
// do not return them either: Send moves the conversation's cursor over the
// message's seq.
func (c *Client) Send(ctx context.Context, m Outgoing) (*imv1.SendMessageResponse, error) {
	conv := m.ConversationID
	if conv == "" {
		if m.ReceiverID == "" {
			return nil, fmt.Errorf("client: Send needs a ConversationID or a ReceiverID: %w", wire.ErrInvalidArgument)
		}
		conv = wire.SingleConversationID(c.opts.UserID, m.ReceiverID)
	}
	id := m.ClientMsgID
	if id == "" {
		id = NewClientMsgID()
	}
	body, err := marshal(&imv1.SendMessageRequest{Message: &imv1.MessageInfo{
		ClientMsgId:    id,
		ConversationId: conv,
		SenderId:       c.opts.UserID,
		ReceiverId:     m.ReceiverID,
		MessageType:    int32(m.Type),
		Content:        m.Content,
		Extra:          m.Extra,
		SendTime:       time.Now().UnixMilli(),
	}})
	if err != nil {
		return nil, err
	}

	c.mu.Lock()
	c.inflight[id]++
	c.mu.Unlock()
	rsp, err := c.sendTries(ctx, body)
	c.mu.Lock()
	if c.inflight[id]--; c.inflight[id] == 0 {
		delete(c.inflight, id)
	}
	if err == nil && rsp.Seq > 0 {
		s := c.state(conv)
		s.hold(rsp.Seq)
		c.noteGap(conv, s)
	}
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return rsp, nil
}

func (c *Client) sendTries(ctx context.Context, body []byte) (*imv1.SendMessageResponse, error) {
	var err error
	for range maxSendTries {
		var cn *conn
		cn, err = c.conn(ctx)
		if err != nil {
			return nil, err
		}
		rsp := new(imv1.SendMessageResponse)
		err = c.request(ctx, cn, imv1.CommandType_CMD_SEND_MSG_REQ, body, rsp)
		if err == nil {
			return rsp, nil
		}
		if ctx.Err() != nil || !retryable(err) {
			return nil, err
		}
	}
	return nil, err
}

// retryable reports whether a Send try may have been lost on the way, rather
// than refused.
func retryable(err error) bool {
	return errors.Is(err, ErrConnLost) || errors.Is(err, context.DeadlineExceeded)
}

// NewClientMsgID returns a random 128-bit client_msg_id in hex.
func NewClientMsgID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
