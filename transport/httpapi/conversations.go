package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/imserver/imserver/im"
)

// handleConversations adds the conversation routes, our extensions, which
// need a bearer token: the caller's conversation list and her own settings
// of a conversation.
func (a *api) handleConversations(r *router) {
	r.handle(http.MethodPost, "/api/conversation/list", a.authed(a.serveConversationList))
	r.handle(http.MethodPost, "/api/conversation/settings", a.authed(a.serveConversationSettings))
}

// conversationListRequest: every field may be left out.
type conversationListRequest struct {
	Limit  int    `json:"limit"`
	Cursor string `json:"cursor"`
	Since  int64  `json:"since"` // Unix milliseconds; version of an earlier listing
}

type conversationListJSON struct {
	Conversations []conversationJSON `json:"conversations"`
	NextCursor    string             `json:"nextCursor"`
	Version       int64              `json:"version"`
	ReadState     bool               `json:"readState"`
}

type conversationJSON struct {
	ConversationID   string       `json:"conversationID"`
	ConversationType int          `json:"conversationType"`
	LastMessage      *messageJSON `json:"lastMessage"` // null when none
	MaxSeq           int64        `json:"maxSeq"`
	ReadSeq          int64        `json:"readSeq"`
	Unread           int64        `json:"unread"`
	Mentioned        bool         `json:"mentioned"`
	Pinned           bool         `json:"pinned"`
	Muted            bool         `json:"muted"`
	Hidden           bool         `json:"hidden"`
	ClearedUpTo      int64        `json:"clearedUpTo"`
	UpdatedAt        int64        `json:"updatedAt"` // Unix milliseconds
}

// messageJSON is a message, with the socket protocol's MessageInfo fields
// in camelCase. Content is base64, as encoding/json writes bytes.
type messageJSON struct {
	ServerMsgID      string `json:"serverMsgID"`
	ClientMsgID      string `json:"clientMsgID"`
	ConversationID   string `json:"conversationID"`
	ConversationType int    `json:"conversationType"`
	SenderID         string `json:"senderID"`
	ReceiverID       string `json:"receiverID"`
	GroupID          string `json:"groupID"`
	Seq              int64  `json:"seq"`
	MessageType      int    `json:"messageType"`
	Content          []byte `json:"content"`
	Extra            string `json:"extra"`
	AttachedInfo     string `json:"attachedInfo"`
	SendTime         int64  `json:"sendTime"`
	ServerTime       int64  `json:"serverTime"`
	IsRevoked        bool   `json:"isRevoked"`
	RevokedBy        string `json:"revokedBy"`
	RevokedTime      int64  `json:"revokedTime"`
}

func newMessageJSON(m *im.Message) *messageJSON {
	if m == nil {
		return nil
	}
	w := &messageJSON{
		ServerMsgID:      m.ServerID,
		ClientMsgID:      m.ClientMsgID,
		ConversationID:   m.ConversationID,
		ConversationType: int(im.ConversationTypeOf(m.ConversationID)),
		SenderID:         m.SenderID,
		ReceiverID:       m.ReceiverID,
		Seq:              m.Seq,
		MessageType:      int(m.Type),
		Content:          m.Content,
		Extra:            m.Extra,
		AttachedInfo:     m.AttachedInfo,
		SendTime:         m.SendTime,
		ServerTime:       m.CreatedAt.UnixMilli(),
		IsRevoked:        m.Revoked(),
		RevokedBy:        m.RevokedBy,
	}
	if w.Content == nil {
		w.Content = []byte{} // "", never null
	}
	if gid, ok := strings.CutPrefix(m.ConversationID, "group_"); ok {
		w.GroupID = gid
	}
	if m.Revoked() {
		w.RevokedTime = m.RevokedAt.UnixMilli()
	}
	return w
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func (a *api) serveConversationList(w http.ResponseWriter, r *http.Request, user string) {
	var req conversationListRequest
	if err := a.decodeOptionalBody(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	if req.Since < 0 {
		a.writeError(w, r, badRequest("since must not be negative"))
		return
	}
	q := im.ConversationQuery{Limit: req.Limit, Cursor: req.Cursor}
	if req.Since > 0 {
		q.Since = time.UnixMilli(req.Since)
	}
	page, err := a.server.Conversations(r.Context(), user, q)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := conversationListJSON{
		Conversations: make([]conversationJSON, 0, len(page.Conversations)),
		NextCursor:    page.Next,
		Version:       page.Version.UnixMilli(),
		ReadState:     page.HasReadState,
	}
	for i := range page.Conversations {
		e := &page.Conversations[i]
		out.Conversations = append(out.Conversations, conversationJSON{
			ConversationID:   e.ID,
			ConversationType: int(e.Type),
			LastMessage:      newMessageJSON(e.LastMessage),
			MaxSeq:           e.MaxSeq,
			ReadSeq:          e.Read,
			Unread:           e.Unread,
			Mentioned:        e.Mentioned,
			Pinned:           e.Pinned,
			Muted:            e.Muted,
			Hidden:           e.Hidden,
			ClearedUpTo:      e.ClearedUpTo,
			UpdatedAt:        unixMilli(e.UpdatedAt),
		})
	}
	writeOK(w, out)
}

// conversationSettingsRequest: a field left out (or null) stays as it is.
type conversationSettingsRequest struct {
	ConversationID string `json:"conversationID"`
	Pinned         *bool  `json:"pinned"`
	Muted          *bool  `json:"muted"`
	// Hidden true hides the conversation up to its newest message, until
	// the next; false shows it again.
	Hidden *bool `json:"hidden"`
	// ClearUpTo clears the caller's history up to this seq; ClearAll up
	// to the newest message.
	ClearUpTo int64 `json:"clearUpTo"`
	ClearAll  bool  `json:"clearAll"`
}

type conversationSettingsJSON struct {
	ConversationID string `json:"conversationID"`
	Pinned         bool   `json:"pinned"`
	Muted          bool   `json:"muted"`
	HiddenUpTo     int64  `json:"hiddenUpTo"`
	ClearedUpTo    int64  `json:"clearedUpTo"`
	UpdatedAt      int64  `json:"updatedAt"` // Unix milliseconds
}

func (a *api) serveConversationSettings(w http.ResponseWriter, r *http.Request, user string) {
	var req conversationSettingsRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	if req.ConversationID == "" {
		a.writeError(w, r, badRequest("conversationID is required"))
		return
	}
	ch := im.SettingsChange{Pinned: req.Pinned, Muted: req.Muted}
	if req.Hidden != nil {
		upTo := int64(0)
		if *req.Hidden {
			upTo = im.UpToNewest
		}
		ch.HiddenUpTo = &upTo
	}
	switch {
	case req.ClearUpTo < 0:
		a.writeError(w, r, badRequest("clearUpTo must not be negative"))
		return
	case req.ClearAll && req.ClearUpTo != 0:
		a.writeError(w, r, badRequest("clearAll and clearUpTo exclude each other"))
		return
	case req.ClearAll:
		upTo := im.UpToNewest
		ch.ClearedUpTo = &upTo
	case req.ClearUpTo > 0:
		ch.ClearedUpTo = &req.ClearUpTo
	}
	st, err := a.server.UpdateConversationSettings(r.Context(), user, req.ConversationID, ch)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeOK(w, conversationSettingsJSON{
		ConversationID: st.ConversationID,
		Pinned:         st.Pinned,
		Muted:          st.Muted,
		HiddenUpTo:     st.HiddenUpTo,
		ClearedUpTo:    st.ClearedUpTo,
		UpdatedAt:      unixMilli(st.UpdatedAt),
	})
}
