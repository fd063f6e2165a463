package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/store/memstore"
)

// setupConversations serves the API over an im.Server whose Store keeps
// read states and conversation settings (memstore).
func setupConversations(t *testing.T) (*groupEnv, *memstore.Store) {
	t.Helper()
	mem := memstore.New()
	e := setupGroups(t, func(c *im.Config, _ *auth.Accounts) { c.Store = mem }, nil)
	return e, mem
}

type sdkConversation struct {
	ConversationID   string          `json:"conversationID"`
	ConversationType int             `json:"conversationType"`
	LastMessage      json.RawMessage `json:"lastMessage"`
	MaxSeq           int64           `json:"maxSeq"`
	ReadSeq          int64           `json:"readSeq"`
	Unread           int64           `json:"unread"`
	Mentioned        bool            `json:"mentioned"`
	Pinned           bool            `json:"pinned"`
	Muted            bool            `json:"muted"`
	Hidden           bool            `json:"hidden"`
	ClearedUpTo      int64           `json:"clearedUpTo"`
	UpdatedAt        int64           `json:"updatedAt"`
}

type sdkConversationList struct {
	Conversations []sdkConversation `json:"conversations"`
	NextCursor    string            `json:"nextCursor"`
	Version       int64             `json:"version"`
	ReadState     bool              `json:"readState"`
}

type sdkMessage struct {
	ServerMsgID      string `json:"serverMsgID"`
	ConversationID   string `json:"conversationID"`
	ConversationType int    `json:"conversationType"`
	SenderID         string `json:"senderID"`
	ReceiverID       string `json:"receiverID"`
	GroupID          string `json:"groupID"`
	Seq              int64  `json:"seq"`
	MessageType      int    `json:"messageType"`
	Content          []byte `json:"content"`
	ServerTime       int64  `json:"serverTime"`
	IsRevoked        bool   `json:"isRevoked"`
}

type sdkSettings struct {
	ConversationID string `json:"conversationID"`
	Pinned         bool   `json:"pinned"`
	Muted          bool   `json:"muted"`
	HiddenUpTo     int64  `json:"hiddenUpTo"`
	ClearedUpTo    int64  `json:"clearedUpTo"`
	UpdatedAt      int64  `json:"updatedAt"`
}

func (e *groupEnv) conversations(t *testing.T, user, body string) sdkConversationList {
	t.Helper()
	r := ok(t, e.call(t, user, http.MethodPost, "/api/conversation/list", body))
	var l sdkConversationList
	require.NoError(t, json.Unmarshal(r.data, &l), "%s", r.data)
	require.NotNil(t, l.Conversations, "[] when empty, never null: %s", r.data)
	return l
}

func (e *groupEnv) settings(t *testing.T, user, body string) sdkSettings {
	t.Helper()
	r := ok(t, e.call(t, user, http.MethodPost, "/api/conversation/settings", body))
	var s sdkSettings
	require.NoError(t, json.Unmarshal(r.data, &s), "%s", r.data)
	return s
}

func convIDsOf(l sdkConversationList) []string {
	out := make([]string, len(l.Conversations))
	for i, c := range l.Conversations {
		out[i] = c.ConversationID
	}
	return out
}

func (e *groupEnv) send(t *testing.T, from, to string) {
	t.Helper()
	_, err := e.server.SendMessage(context.Background(), im.SendRequest{SenderID: from, ReceiverID: to, Type: im.TextMessage, Content: []byte("hi " + to)})
	require.NoError(t, err)
}

// seedMessage stores a message from one user to another in store, sent
// at at.
func seedMessage(t *testing.T, store im.Store, from, to string, at time.Time) {
	t.Helper()
	id := fmt.Sprintf("seed-%s-%s-%d", from, to, at.UnixNano())
	res, err := store.AppendMessages(context.Background(), []im.AppendRequest{{Message: im.Message{
		ConversationID: im.SingleConversationID(from, to), ServerID: id, ClientMsgID: id, SenderID: from, ReceiverID: to,
		Type: im.TextMessage, Content: []byte("hi " + to), CreatedAt: at,
	}, Members: []string{from, to}}})
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
}

func TestConversationListAndSettings(t *testing.T) {
	e, mem := setupConversations(t)
	ab, ac := im.SingleConversationID(alice, bob), im.SingleConversationID(alice, carol)
	at := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	seedMessage(t, mem, bob, alice, at)
	seedMessage(t, mem, bob, alice, at.Add(time.Minute))
	seedMessage(t, mem, carol, alice, at.Add(2*time.Minute))

	// No body: the first page, newest first.
	l := e.conversations(t, alice, "")
	require.Equal(t, []string{ac, ab}, convIDsOf(l))
	require.True(t, l.ReadState)
	require.Empty(t, l.NextCursor)
	require.NotZero(t, l.Version)
	c := l.Conversations[1]
	require.Equal(t, 1, c.ConversationType)
	require.Equal(t, int64(2), c.MaxSeq)
	require.Equal(t, int64(2), c.Unread)
	var m sdkMessage
	require.NoError(t, json.Unmarshal(c.LastMessage, &m))
	require.Equal(t, int64(2), m.Seq)
	require.Equal(t, bob, m.SenderID)
	require.Equal(t, "hi alice", string(m.Content))
	require.Equal(t, ab, m.ConversationID)
	require.Equal(t, c.UpdatedAt, m.ServerTime)

	// Pinning puts it first; paging goes on from the cursor.
	s := e.settings(t, alice, `{"conversationID":"`+ab+`","pinned":true,"muted":true}`)
	require.True(t, s.Pinned && s.Muted)
	require.Equal(t, ab, s.ConversationID)
	require.NotZero(t, s.UpdatedAt)
	l = e.conversations(t, alice, `{"limit":1}`)
	require.Equal(t, []string{ab}, convIDsOf(l))
	require.True(t, l.Conversations[0].Pinned)
	require.NotEmpty(t, l.NextCursor)
	next := e.conversations(t, alice, `{"limit":1,"cursor":"`+l.NextCursor+`"}`)
	require.Equal(t, []string{ac}, convIDsOf(next))
	require.Empty(t, next.NextCursor)
	require.Equal(t, l.Version, next.Version)

	// A body with nothing to change answers the settings as they are.
	require.Equal(t, s, e.settings(t, alice, `{"conversationID":"`+ab+`"}`))

	// Hide, and the incremental listing marks it hidden.
	s = e.settings(t, alice, `{"conversationID":"`+ac+`","hidden":true}`)
	require.Equal(t, int64(1), s.HiddenUpTo)
	require.Equal(t, []string{ab}, convIDsOf(e.conversations(t, alice, `{}`)))
	since := e.conversations(t, alice, `{"since":`+jsonInt(l.Version)+`}`)
	require.ElementsMatch(t, []string{ab, ac}, convIDsOf(since))
	for _, c := range since.Conversations {
		require.Equal(t, c.ConversationID == ac, c.Hidden)
	}

	// Clear: her history only.
	s = e.settings(t, alice, `{"conversationID":"`+ab+`","clearUpTo":1}`)
	require.Equal(t, int64(1), s.ClearedUpTo)
	c = e.conversations(t, alice, `{}`).Conversations[0]
	require.Equal(t, int64(1), c.ClearedUpTo)
	require.Equal(t, int64(1), c.Unread)
	s = e.settings(t, alice, `{"conversationID":"`+ab+`","clearAll":true}`)
	require.Equal(t, int64(2), s.ClearedUpTo)
	c = e.conversations(t, alice, `{}`).Conversations[0]
	require.Equal(t, "null", string(c.LastMessage))
	require.Zero(t, c.Unread)
	b := e.conversations(t, bob, `{}`)
	require.Equal(t, []string{ab}, convIDsOf(b))
	require.Zero(t, b.Conversations[0].ClearedUpTo)
	require.False(t, b.Conversations[0].Pinned)
	require.NotEqual(t, "null", string(b.Conversations[0].LastMessage))

	// A user with no conversations gets [].
	require.Empty(t, e.conversations(t, dave, `{}`).Conversations)
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// Bad input is refused with code 2 and changes nothing; a non-member is
// refused, an invite-only group answering as a missing one does.
func TestConversationRoutesRefuse(t *testing.T) {
	e, mem := setupConversations(t)
	ab := im.SingleConversationID(alice, bob)
	e.send(t, bob, alice)
	e.settings(t, alice, `{"conversationID":"`+ab+`","muted":true}`)
	before := e.conversations(t, alice, `{}`)

	for _, body := range []string{
		`{"conversationID":"` + ab + `","pinned":true,"clearUpTo":-1}`,
		`{"conversationID":"` + ab + `","pinned":true,"clearUpTo":1,"clearAll":true}`,
		`{"pinned":true}`,
		`{"conversationID":"` + ab + `","pinned":"yes"}`,
		`{"conversationID":"` + ab + `","clearUpTo":1.5}`,
		`{"conversationID":"nowhere_alice","pinned":true}`,
		`{"conversationID":"single_alice_\u0001","pinned":true}`,
		`{"conversationID":"` + ab + `","pinned":true} {}`,
		`not json`,
		``,
	} {
		failed(t, e.call(t, alice, http.MethodPost, "/api/conversation/settings", body), 2, "")
	}
	for _, body := range []string{
		`{"limit":-1}`, `{"limit":"ten"}`, `{"since":-5}`, `{"cursor":"nope"}`, `[]`, `{"cursor":7}`,
	} {
		failed(t, e.call(t, alice, http.MethodPost, "/api/conversation/list", body), 2, "")
	}
	require.Equal(t, before.Conversations, e.conversations(t, alice, `{}`).Conversations, "nothing changed")

	// Not hers.
	failed(t, e.call(t, carol, http.MethodPost, "/api/conversation/settings", `{"conversationID":"`+ab+`","pinned":true}`), 102, "not a member")
	private := e.createGroup(t, alice, map[string]any{"groupName": "private", "memberUserIDs": []string{bob}})
	missing := e.call(t, carol, http.MethodPost, "/api/conversation/settings", `{"conversationID":"group_00000000000000000000000000000000","pinned":true}`)
	failed(t, missing, 202, "group does not exist")
	outsider := e.call(t, carol, http.MethodPost, "/api/conversation/settings", `{"conversationID":"group_`+private.GroupID+`","pinned":true}`)
	failed(t, outsider, 202, "group does not exist")
	require.Equal(t, missing.raw, outsider.raw, "the same answer as for no group")
	open := e.createGroup(t, alice, map[string]any{"groupName": "open", "memberUserIDs": []string{bob}, "joinPolicy": 0})
	failed(t, e.call(t, carol, http.MethodPost, "/api/conversation/settings", `{"conversationID":"group_`+open.GroupID+`","pinned":true}`), 102, "")
	changed, err := mem.ChangedSettings(context.Background(), carol, time.Time{})
	require.NoError(t, err)
	require.Empty(t, changed)

	// No token, no answer.
	failed(t, e.callWithAuth(t, "", http.MethodPost, "/api/conversation/list", `{}`), 100, "")
	failed(t, e.callWithAuth(t, "Bearer nope", http.MethodPost, "/api/conversation/settings", `{"conversationID":"`+ab+`","pinned":true}`), 100, "")

	// Bodies are JSON only.
	hdr := http.Header{"Authorization": {"Bearer " + e.token(t, alice)}, "Content-Type": {"text/plain"}}
	r := doRequest(t, e.srv.Client(), http.MethodPost, e.srv.URL+"/api/conversation/settings", hdr, `{"conversationID":"`+ab+`","pinned":true}`)
	require.Equal(t, http.StatusUnsupportedMediaType, r.status)
	require.Contains(t, e.conversations(t, alice, `{}`).Conversations, before.Conversations[0], "nothing changed")
	// Only POST.
	r = e.do(t, http.MethodGet, "/api/conversation/list", "application/json", `{}`)
	require.Equal(t, http.StatusMethodNotAllowed, r.status)
	require.Equal(t, "POST", r.header.Get("Allow"))
}

// On a Store without the settings capability (bolt, for now) the list
// works with defaults and settings answer code 1, saying why.
func TestConversationRoutesWithoutSettingsStore(t *testing.T) {
	// Only the required methods: the optional ones are hidden.
	e := setupGroups(t, func(c *im.Config, _ *auth.Accounts) { c.Store = struct{ im.Store }{c.Store} }, nil)
	e.send(t, bob, alice)
	l := e.conversations(t, alice, `{}`)
	require.Equal(t, []string{im.SingleConversationID(alice, bob)}, convIDsOf(l))
	require.False(t, l.Conversations[0].Pinned)
	r := e.call(t, alice, http.MethodPost, "/api/conversation/settings", `{"conversationID":"`+im.SingleConversationID(alice, bob)+`","pinned":true}`)
	failed(t, r, 1, "not supported")
	require.NotContains(t, e.logs.String(), "request failed", "a missing feature is not logged as a failure")
	require.True(t, slices.Equal(convIDsOf(l), convIDsOf(e.conversations(t, alice, `{}`))))
}
