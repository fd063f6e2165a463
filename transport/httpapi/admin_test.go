package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/transport/httpapi"
)

const adminToken = "admin-test-token-0123456789abcdefghij"

// adminEnv is usersEnv with the admin API on.
type adminEnv struct{ *usersEnv }

func setupAdmin(t *testing.T) adminEnv {
	t.Helper()
	return adminEnv{setupUsersWith(t, nil, func(o *httpapi.Options) { o.AdminToken = adminToken })}
}

// admin calls an admin route with authorization as the header's value.
func (e adminEnv) admin(t *testing.T, authorization, method, path, body string) response {
	t.Helper()
	header := http.Header{"Content-Type": {"application/json"}}
	if authorization != "" {
		header.Set("Authorization", authorization)
	}
	r := doRequest(t, e.hs.Client(), method, e.hs.URL+path, header, body)
	if r.status != http.StatusNotFound {
		require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	}
	return r
}

func (e adminEnv) ok(t *testing.T, method, path, body string) response {
	t.Helper()
	r := e.admin(t, "Bearer "+adminToken, method, path, body)
	require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
	return ok(t, r)
}

// dialAs connects a socket client reporting platform.
func (e adminEnv) dialAs(t *testing.T, userID, token, platform string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{Transport: client.TransportTCP, Addr: e.tcpAddr, UserID: userID, Token: token, Platform: platform})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

type adminSession struct {
	SessionID string `json:"sessionID"`
	UserID    string `json:"userID"`
	Platform  string `json:"platform"`
	Transport string `json:"transport"`
	Address   string `json:"address"`
	Since     int64  `json:"since"`
}

func (e adminEnv) sessions(t *testing.T, query string) ([]adminSession, string) {
	t.Helper()
	r := e.ok(t, http.MethodGet, "/admin/api/sessions"+query, "")
	var page struct {
		Sessions []adminSession `json:"sessions"`
		Next     string         `json:"next"`
	}
	require.NoError(t, json.Unmarshal(r.data, &page))
	require.NotNil(t, page.Sessions, "[] never null: %s", r.raw)
	return page.Sessions, page.Next
}

// waitKicked waits for c to end with a KICK_OUT.
func waitKicked(t *testing.T, c *client.Client) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("client not disconnected within 10 s")
	}
	require.ErrorIs(t, c.Err(), client.ErrKicked)
	require.Contains(t, c.Err().Error(), "operator")
}

// systemMessage waits for the next message pushed to c and checks it is
// a system message to userID with content.
func systemMessage(t *testing.T, c *client.Client, userID, content string) {
	t.Helper()
	m := nextMessage(t, c)
	require.Equal(t, im.SystemConversationID(userID), m.ConversationId)
	require.Equal(t, content, string(m.Content))
	require.Equal(t, int32(im.SystemConversation), m.ConversationType)
}

func TestAdminOffWithoutToken(t *testing.T) {
	e := adminEnv{setupUsers(t, nil)}
	for _, path := range []string{"/admin/api/sessions", "/admin/api/stats", "/admin/api/user/u1"} {
		r := e.admin(t, "Bearer "+adminToken, http.MethodGet, path, "")
		require.Equal(t, http.StatusNotFound, r.status, path)
	}
	r := e.admin(t, "Bearer "+adminToken, http.MethodPost, "/admin/api/kick", `{"userID":"u1"}`)
	require.Equal(t, http.StatusNotFound, r.status)
}

func TestAdminTokenOptions(t *testing.T) {
	srv := setupUsers(t, nil).server
	require.PanicsWithError(t, "httpapi: Options.AdminToken is 5 bytes; it must be at least 32", func() {
		httpapi.NewHandler(httpapi.Options{Server: srv, AdminToken: "short"})
	})
	require.PanicsWithError(t, "httpapi: Options.AdminToken needs Options.Server", func() {
		httpapi.NewHandler(httpapi.Options{AdminToken: adminToken})
	})
}

func TestAdminAuth(t *testing.T) {
	e := setupAdmin(t)
	uid, userToken := e.register(t, "alice", "Alice")
	for _, authz := range []string{
		"",
		"Bearer ",
		"Bearer " + adminToken[:len(adminToken)-1],
		"Bearer " + adminToken + "x",
		"Basic " + adminToken,
		"Bearer " + userToken, // a user's JWT is not the admin token
	} {
		for _, route := range [][2]string{{http.MethodGet, "/admin/api/sessions"}, {http.MethodPost, "/admin/api/kick"}, {http.MethodGet, "/admin/api/stats"}} {
			r := e.admin(t, authz, route[0], route[1], `{"userID":"`+uid+`"}`)
			require.Equal(t, http.StatusUnauthorized, r.status, "%q %s", authz, route[1])
			require.Equal(t, 100, r.code)
			require.Nil(t, r.data)
			require.Contains(t, r.header.Get("WWW-Authenticate"), "Bearer")
		}
	}
	require.Contains(t, e.logs.String(), "admin: refused")
	require.NotContains(t, e.logs.String(), adminToken)
	// The scheme is case-insensitive.
	ok(t, e.admin(t, "bearer "+adminToken, http.MethodGet, "/admin/api/stats", ""))
}

func TestAdminSessionsAndKick(t *testing.T) {
	e := setupAdmin(t)
	a, aTok := e.register(t, "alice", "Alice")
	b, bTok := e.register(t, "bobby", "Bobby")
	before := time.Now().Add(-time.Second).UnixMilli()
	a1 := e.dialAs(t, a, aTok, "iOS")
	a2 := e.dialAs(t, a, aTok, "Android")
	b1 := e.dialAs(t, b, bTok, "web")

	list, next := e.sessions(t, "")
	require.Len(t, list, 3)
	require.Empty(t, next)
	platforms := map[string]string{}
	for _, s := range list {
		platforms[s.Platform] = s.UserID
		require.Equal(t, "tcp", s.Transport)
		require.True(t, strings.HasPrefix(s.Address, "127.0.0.1:"), s.Address)
		require.GreaterOrEqual(t, s.Since, before)
		require.LessOrEqual(t, s.Since, time.Now().UnixMilli())
		require.NotEmpty(t, s.SessionID)
	}
	require.Equal(t, map[string]string{"iOS": a, "Android": a, "web": b}, platforms)

	// Paged: two, then one, with nothing repeated.
	p1, next := e.sessions(t, "?limit=2")
	require.Len(t, p1, 2)
	require.Equal(t, p1[1].SessionID, next)
	p2, next := e.sessions(t, "?limit=2&after="+next)
	require.Len(t, p2, 1)
	require.Empty(t, next)
	require.ElementsMatch(t, list, append(p1, p2...))
	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=x"} {
		failed(t, e.admin(t, "Bearer "+adminToken, http.MethodGet, "/admin/api/sessions"+q, ""), 2, "limit")
	}

	// Kick one session: the one of a2.
	var a2ID string
	for _, s := range list {
		if s.Platform == "Android" {
			a2ID = s.SessionID
		}
	}
	r := e.ok(t, http.MethodPost, "/admin/api/kick", `{"sessionID":"`+a2ID+`"}`)
	require.JSONEq(t, `{"kicked":1}`, string(r.data))
	waitKicked(t, a2)
	require.Contains(t, e.logs.String(), "admin: kicked session "+a2ID+" (1 sessions)")
	r = e.ok(t, http.MethodPost, "/admin/api/kick", `{"sessionID":"`+a2ID+`"}`)
	require.JSONEq(t, `{"kicked":0}`, string(r.data), "already gone")

	// Kick a user: every session of hers.
	a3 := e.dialAs(t, a, aTok, "mac")
	require.Eventually(t, func() bool { return len(e.server.Sessions(a)) == 2 }, 10*time.Second, 10*time.Millisecond)
	r = e.ok(t, http.MethodPost, "/admin/api/kick", `{"userID":"`+a+`"}`)
	require.JSONEq(t, `{"kicked":2}`, string(r.data))
	waitKicked(t, a1)
	waitKicked(t, a3)
	require.Contains(t, e.logs.String(), "admin: kicked user "+a+" (2 sessions)")
	// The server ends a kicked session just after the client hears of it.
	require.Eventually(t, func() bool {
		list, _ = e.sessions(t, "")
		return len(list) == 1
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, b, list[0].UserID)
	select {
	case <-b1.Done():
		t.Fatal("another user's session was closed")
	default:
	}

	// Bad input changes nothing.
	for _, body := range []string{`{}`, `{"userID":"` + b + `","sessionID":"` + list[0].SessionID + `"}`} {
		failed(t, e.admin(t, "Bearer "+adminToken, http.MethodPost, "/admin/api/kick", body), 2, "either userID or sessionID")
	}
	failed(t, e.admin(t, "Bearer "+adminToken, http.MethodPost, "/admin/api/kick", `{"userID":`), 2, "not valid JSON")
	list, _ = e.sessions(t, "")
	require.Len(t, list, 1)
}

func TestAdminSystemMessage(t *testing.T) {
	e := setupAdmin(t)
	a, aTok := e.register(t, "alice", "Alice")
	c := e.dialAs(t, a, aTok, "iOS")

	r := e.ok(t, http.MethodPost, "/admin/api/message", jsonBody(t, map[string]any{"userID": a, "content": "maintenance at noon"}))
	var res struct {
		ServerMsgID    string `json:"serverMsgID"`
		ConversationID string `json:"conversationID"`
		Seq            int64  `json:"seq"`
	}
	require.NoError(t, json.Unmarshal(r.data, &res))
	require.Equal(t, im.SystemConversationID(a), res.ConversationID)
	require.Equal(t, int64(1), res.Seq)
	systemMessage(t, c, a, "maintenance at noon")
	require.Contains(t, e.logs.String(), "admin: sent system message "+res.ServerMsgID+" to user "+a)

	ok(t, e.admin(t, "Bearer "+adminToken, http.MethodPost, "/admin/api/message", jsonBody(t, map[string]any{"userID": a, "content": `{"k":1}`, "type": int(im.CustomMessage)})))
	m := nextMessage(t, c)
	require.Equal(t, int32(im.CustomMessage), m.MessageType)

	for _, tt := range []struct{ body, msg string }{
		{`{"userID":"` + a + `"}`, "content must not be empty"},
		{`{"userID":"` + a + `","content":"x","type":99}`, "type must be"},
		{`{"userID":"` + a + `","content":"x","type":-1}`, "type must be"},
		{`{"userID":"` + a + `","content":"x","type":9}`, "type must be"},
		{`{"userID":"` + a + `","content":"x","type":4294967297}`, "type must be"},
		{`{"userID":"","content":"x"}`, "user id"},
		{`{"userID":"` + a + `","content":5}`, "content must be a string"},
	} {
		failed(t, e.admin(t, "Bearer "+adminToken, http.MethodPost, "/admin/api/message", tt.body), 2, tt.msg)
	}
	r = e.admin(t, "Bearer "+adminToken, http.MethodPost, "/admin/api/message", "")
	require.Equal(t, 2, r.code)
	// A user the server does not know gets no system conversation.
	r = e.admin(t, "Bearer "+adminToken, http.MethodPost, "/admin/api/message", `{"userID":"nobody-here","content":"x"}`)
	require.NotEqual(t, 0, r.code, "%s", r.raw)
	require.Contains(t, r.message, "does not exist")
	// Nothing else reached the user.
	select {
	case p := <-c.Pushes():
		if _, isMsg := p.Message.(*imv1.PushMessage); isMsg {
			t.Fatalf("unexpected message %v", p.Message)
		}
	default:
	}
}

func TestAdminBroadcast(t *testing.T) {
	e := setupAdmin(t)
	a, aTok := e.register(t, "alice", "Alice")
	b, bTok := e.register(t, "bobby", "Bobby")
	e.register(t, "carol", "Carol") // offline: not sent to
	ca := e.dialAs(t, a, aTok, "iOS")
	cb := e.dialAs(t, b, bTok, "web")
	cb2 := e.dialAs(t, b, bTok, "mac") // two sessions, one message

	failed(t, e.admin(t, "Bearer "+adminToken, http.MethodPost, "/admin/api/broadcast", `{"content":""}`), 2, "content must not be empty")

	r := e.ok(t, http.MethodPost, "/admin/api/broadcast", `{"content":"server restarts in 5 minutes"}`)
	require.JSONEq(t, `{"users":2,"failed":0}`, string(r.data))
	systemMessage(t, ca, a, "server restarts in 5 minutes")
	systemMessage(t, cb, b, "server restarts in 5 minutes")
	systemMessage(t, cb2, b, "server restarts in 5 minutes")
	require.Contains(t, e.logs.String(), "admin: broadcast 28 bytes to 2 online users (0 failed)")

	r = e.admin(t, "Bearer "+adminToken, http.MethodPost, "/admin/api/broadcast", `{"content":"again"}`)
	require.Equal(t, http.StatusTooManyRequests, r.status)
	require.Equal(t, 201, r.code)
	require.Contains(t, r.message, "one broadcast per 10s")
	require.NotEmpty(t, r.header.Get("Retry-After"))
	require.Contains(t, e.logs.String(), "admin: broadcast refused")
	msgs, err := e.store.Messages(context.Background(), im.SystemConversationID(a), 0, 0, 10)
	require.NoError(t, err)
	require.Len(t, msgs, 1, "the refused broadcast stored nothing")
}

func TestAdminUserAndGroupLookup(t *testing.T) {
	e := setupAdmin(t)
	a, aTok := e.register(t, "alice", "Alice")
	b, _ := e.register(t, "bobby", "Bobby")
	e.dialAs(t, a, aTok, "iOS")

	r := e.ok(t, http.MethodGet, "/admin/api/user/"+a, "")
	var u struct {
		User     map[string]any `json:"user"`
		Sessions []adminSession `json:"sessions"`
	}
	require.NoError(t, json.Unmarshal(r.data, &u))
	require.Equal(t, a, u.User["userID"])
	require.Equal(t, "Alice", u.User["nickname"])
	require.Len(t, u.Sessions, 1)
	require.Equal(t, "iOS", u.Sessions[0].Platform)

	r = e.ok(t, http.MethodGet, "/admin/api/user/"+b, "")
	require.NoError(t, json.Unmarshal(r.data, &u))
	require.Equal(t, b, u.User["userID"])
	require.Empty(t, u.Sessions)
	require.Contains(t, string(r.data), `"sessions":[]`)

	failed(t, e.admin(t, "Bearer "+adminToken, http.MethodGet, "/admin/api/user/nobody", ""), 103, "user not found")
	failed(t, e.admin(t, "Bearer "+adminToken, http.MethodGet, "/admin/api/user/"+strings.Repeat("x", 200), ""), 2, "user id")

	// An invite-only group, which to outsiders does not exist.
	ctx := context.Background()
	g, err := e.server.CreateGroup(ctx, a, im.GroupSpec{Name: "secret", JoinPolicy: im.JoinInviteOnly}, []string{b})
	require.NoError(t, err)
	r = e.ok(t, http.MethodGet, "/admin/api/group/"+g.ID, "")
	var gr struct {
		Group   sdkGroup    `json:"group"`
		Members []sdkMember `json:"members"`
	}
	require.NoError(t, json.Unmarshal(r.data, &gr))
	require.Equal(t, "secret", gr.Group.GroupName)
	require.Equal(t, a, gr.Group.OwnerUserID)
	require.Len(t, gr.Members, 2)
	require.Contains(t, e.logs.String(), "admin: looked up group "+g.ID+" (2 members)")
	failed(t, e.admin(t, "Bearer "+adminToken, http.MethodGet, "/admin/api/group/nogroup", ""), 202, "group does not exist")
}

func TestAdminStats(t *testing.T) {
	e := setupAdmin(t)
	a, aTok := e.register(t, "alice", "Alice")
	e.dialAs(t, a, aTok, "iOS")
	require.Eventually(t, func() bool { return e.server.Stats().Sessions == 1 }, 10*time.Second, 10*time.Millisecond)
	r := e.ok(t, http.MethodGet, "/admin/api/stats", "")
	var st im.Stats
	require.NoError(t, json.Unmarshal(r.data, &st))
	require.Equal(t, int64(1), st.Sessions)
	require.GreaterOrEqual(t, st.Connections, int64(1))
	require.Contains(t, e.logs.String(), "admin: read stats")
}
