package client

import (
	"context"
	"errors"

	"github.com/imserver/imserver/im/imv1"
)

// ConversationQuery asks Conversations for a page of the conversation
// list.
type ConversationQuery struct {
	// Limit bounds the page: 0 means the server's default (50), and the
	// server gives at most 200.
	Limit int32
	// Cursor is NextCursor of the previous page; empty for the first.
	Cursor string
	// Since is Version of an earlier listing, to list only what changed
	// after it (hidden conversations included, marked Hidden); 0 lists
	// every conversation that is not hidden.
	Since int64
	// Changes subscribes the connection to CONVERSATION_CHANGED_PUSH, or
	// unsubscribes it.
	Changes imv1.ConversationChanges
}

// Conversations asks for a page of the user's conversation list (an
// imserver extension, CONVERSATION_LIST_REQ): pinned first, then the most
// recently updated, each with its last message, unread count and the
// user's settings. With q.Changes set to subscribe, changes the user makes
// to her settings on other devices arrive as pushes of
// CMD_CONVERSATION_CHANGED_PUSH carrying *imv1.ConversationChangedPush.
//
// The subscription belongs to the connection: after a reconnect (see
// Options.Reconnect) the server holds none, and the caller lists again
// with q.Since (the Version it kept) and subscribes again.
func (c *Client) Conversations(ctx context.Context, q ConversationQuery) (*imv1.ConversationListResponse, error) {
	req := &imv1.ConversationListRequest{Limit: q.Limit, Cursor: q.Cursor, Since: q.Since, Changes: q.Changes}
	rsp := new(imv1.ConversationListResponse)
	if err := c.Request(ctx, imv1.CommandType_CMD_CONVERSATION_LIST_REQ, req, rsp); err != nil {
		return nil, err
	}
	return rsp, nil
}

// AllConversations pages through the whole conversation list (or, with
// since, what changed after it) and returns its entries and the Version to
// keep for the next incremental listing.
func (c *Client) AllConversations(ctx context.Context, since int64) ([]*imv1.ConversationInfo, int64, error) {
	var out []*imv1.ConversationInfo
	q := ConversationQuery{Since: since, Limit: 200}
	for {
		rsp, err := c.Conversations(ctx, q)
		if err != nil {
			return out, 0, err
		}
		out = append(out, rsp.Conversations...)
		if rsp.NextCursor == "" {
			return out, rsp.Version, nil
		}
		if rsp.NextCursor == q.Cursor {
			return out, 0, errors.New("client: the server answered the same cursor again")
		}
		q.Cursor = rsp.NextCursor
	}
}

// ConversationChange is a change of the user's own settings of one
// conversation; nil fields and zero values are left as they are.
type ConversationChange struct {
	Pinned, Muted *bool
	// Hidden true hides the conversation up to its newest message, until
	// the next one arrives; false shows it again.
	Hidden *bool
	// ClearUpTo clears her history up to this seq; ClearAll up to the
	// newest message. At most one of them.
	ClearUpTo int64
	ClearAll  bool
}

// UpdateConversation changes the user's own settings of conversation conv
// (an imserver extension, CONVERSATION_SETTINGS_REQ) and returns them as
// the server stored them. Her other connections that subscribed (see
// Conversations) are pushed the change. A cleared history also moves this
// client's cursor of conv past it, so that no gap repair asks for
// messages the server no longer gives.
func (c *Client) UpdateConversation(ctx context.Context, conv string, ch ConversationChange) (*imv1.ConversationSettings, error) {
	req := &imv1.ConversationSettingsRequest{
		ConversationId: conv,
		Pinned:         ch.Pinned,
		Muted:          ch.Muted,
		Hidden:         ch.Hidden,
		ClearUpTo:      ch.ClearUpTo,
		ClearAll:       ch.ClearAll,
	}
	rsp := new(imv1.ConversationSettingsResponse)
	if err := c.Request(ctx, imv1.CommandType_CMD_CONVERSATION_SETTINGS_REQ, req, rsp); err != nil {
		return nil, err
	}
	c.skipCleared(rsp.Settings)
	return rsp.Settings, nil
}

// skipCleared moves the cursor of a conversation past what the user
// cleared of it.
func (c *Client) skipCleared(st *imv1.ConversationSettings) {
	if st == nil || st.ClearedUpTo <= 0 || st.ConversationId == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state(st.ConversationId).skipTo(st.ClearedUpTo)
}
