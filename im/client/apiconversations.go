package client

import (
	"context"
	"net/http"

	"github.com/imserver/imserver/im/imv1"
)

// conversationJSON is a listed conversation as the API sends it: the
// fields of imv1.ConversationInfo in camelCase.
type conversationJSON struct {
	ConversationID   string       `json:"conversationID"`
	ConversationType int32        `json:"conversationType"`
	LastMessage      *messageJSON `json:"lastMessage"`
	MaxSeq           int64        `json:"maxSeq"`
	ReadSeq          int64        `json:"readSeq"`
	Unread           int64        `json:"unread"`
	Mentioned        bool         `json:"mentioned"`
	Pinned           bool         `json:"pinned"`
	Muted            bool         `json:"muted"`
	Hidden           bool         `json:"hidden"`
	ClearedUpTo      int64        `json:"clearedUpTo"`
	UpdatedAt        int64        `json:"updatedAt"`
}

// messageJSON is imv1.MessageInfo in camelCase, content in base64.
type messageJSON struct {
	ServerMsgID      string `json:"serverMsgID"`
	ClientMsgID      string `json:"clientMsgID"`
	ConversationID   string `json:"conversationID"`
	ConversationType int32  `json:"conversationType"`
	SenderID         string `json:"senderID"`
	ReceiverID       string `json:"receiverID"`
	GroupID          string `json:"groupID"`
	Seq              int64  `json:"seq"`
	MessageType      int32  `json:"messageType"`
	Content          []byte `json:"content"`
	Extra            string `json:"extra"`
	AttachedInfo     string `json:"attachedInfo"`
	SendTime         int64  `json:"sendTime"`
	ServerTime       int64  `json:"serverTime"`
	IsRevoked        bool   `json:"isRevoked"`
	RevokedBy        string `json:"revokedBy"`
	RevokedTime      int64  `json:"revokedTime"`
}

func (m *messageJSON) info() *imv1.MessageInfo {
	if m == nil {
		return nil
	}
	return &imv1.MessageInfo{
		ServerMsgId:      m.ServerMsgID,
		ClientMsgId:      m.ClientMsgID,
		ConversationId:   m.ConversationID,
		ConversationType: m.ConversationType,
		SenderId:         m.SenderID,
		ReceiverId:       m.ReceiverID,
		GroupId:          m.GroupID,
		Seq:              m.Seq,
		MessageType:      m.MessageType,
		Content:          m.Content,
		Extra:            m.Extra,
		AttachedInfo:     m.AttachedInfo,
		SendTime:         m.SendTime,
		ServerTime:       m.ServerTime,
		IsRevoked:        m.IsRevoked,
		RevokedBy:        m.RevokedBy,
		RevokedTime:      m.RevokedTime,
	}
}

// Conversations reads a page of the user's conversation list over HTTP
// (POST /api/conversation/list), for a program that wants it before it
// connects; the answer is the socket's (Client.Conversations), decoded
// into the same types. q.Changes is the socket's alone and is not sent.
func (a *API) Conversations(ctx context.Context, q ConversationQuery) (*imv1.ConversationListResponse, error) {
	body := struct {
		Limit  int32  `json:"limit,omitempty"`
		Cursor string `json:"cursor,omitempty"`
		Since  int64  `json:"since,omitempty"`
	}{q.Limit, q.Cursor, q.Since}
	var out struct {
		Conversations []conversationJSON `json:"conversations"`
		NextCursor    string             `json:"nextCursor"`
		Version       int64              `json:"version"`
		ReadState     bool               `json:"readState"`
	}
	if _, err := a.do(ctx, apiCall{method: http.MethodPost, path: "/api/conversation/list", body: body, out: &out}); err != nil {
		return nil, err
	}
	rsp := &imv1.ConversationListResponse{
		Conversations: make([]*imv1.ConversationInfo, len(out.Conversations)),
		NextCursor:    out.NextCursor,
		Version:       out.Version,
		ReadState:     out.ReadState,
	}
	for i, c := range out.Conversations {
		rsp.Conversations[i] = &imv1.ConversationInfo{
			ConversationId:   c.ConversationID,
			ConversationType: c.ConversationType,
			LastMessage:      c.LastMessage.info(),
			MaxSeq:           c.MaxSeq,
			ReadSeq:          c.ReadSeq,
			Unread:           c.Unread,
			Mentioned:        c.Mentioned,
			Pinned:           c.Pinned,
			Muted:            c.Muted,
			Hidden:           c.Hidden,
			ClearedUpTo:      c.ClearedUpTo,
			UpdatedAt:        c.UpdatedAt,
		}
	}
	return rsp, nil
}

// UpdateConversation changes the user's own settings of conversation conv
// over HTTP (POST /api/conversation/settings) and returns them as the
// server stored them, as Client.UpdateConversation does on the socket.
func (a *API) UpdateConversation(ctx context.Context, conv string, ch ConversationChange) (*imv1.ConversationSettings, error) {
	body := struct {
		ConversationID string `json:"conversationID"`
		Pinned         *bool  `json:"pinned,omitempty"`
		Muted          *bool  `json:"muted,omitempty"`
		Hidden         *bool  `json:"hidden,omitempty"`
		ClearUpTo      int64  `json:"clearUpTo,omitempty"`
		ClearAll       bool   `json:"clearAll,omitempty"`
	}{conv, ch.Pinned, ch.Muted, ch.Hidden, ch.ClearUpTo, ch.ClearAll}
	var out struct {
		ConversationID string `json:"conversationID"`
		Pinned         bool   `json:"pinned"`
		Muted          bool   `json:"muted"`
		HiddenUpTo     int64  `json:"hiddenUpTo"`
		ClearedUpTo    int64  `json:"clearedUpTo"`
		UpdatedAt      int64  `json:"updatedAt"`
	}
	if _, err := a.do(ctx, apiCall{method: http.MethodPost, path: "/api/conversation/settings", body: body, out: &out}); err != nil {
		return nil, err
	}
	return &imv1.ConversationSettings{
		ConversationId: out.ConversationID,
		Pinned:         out.Pinned,
		Muted:          out.Muted,
		HiddenUpTo:     out.HiddenUpTo,
		ClearedUpTo:    out.ClearedUpTo,
		UpdatedAt:      out.UpdatedAt,
	}, nil
}
