package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/store/memstore"
)

// friendEnv is a real server (TCP, WebSocket, HTTP API) over a memstore,
// which keeps friends, with users registered over HTTP.
type friendEnv struct {
	srv    *imtest.Server
	hc     *http.Client
	ids    map[string]string // username → user id
	tokens map[string]string // username → token from login
}

func setupFriends(t *testing.T, cfg func(*im.Config), users ...string) *friendEnv {
	t.Helper()
	o := imtest.Options{Memory: true, CheckRecipients: true}
	if cfg != nil {
		cfg(&o.Config)
	}
	e := &friendEnv{srv: imtest.NewServer(t, o), hc: &http.Client{Timeout: 10 * time.Second}, ids: map[string]string{}, tokens: map[string]string{}}
	t.Cleanup(e.hc.CloseIdleConnections)
	for _, u := range users {
		ok(t, doRequest(t, e.hc, http.MethodPost, e.srv.HTTPURL+"/api/auth/register", jsonHeader, jsonBody(t, map[string]string{"username": u, "password": "secret-" + u})))
		r := ok(t, doRequest(t, e.hc, http.MethodPost, e.srv.HTTPURL+"/api/auth/login", jsonHeader, jsonBody(t, map[string]string{"username": u, "password": "secret-" + u, "platform": "iOS"})))
		var login loggedIn
		require.NoError(t, json.Unmarshal(r.data, &login))
		e.ids[u], e.tokens[u] = login.UserID, login.Token
	}
	return e
}

// call makes an API call as the registered user u.
func (e *friendEnv) call(t *testing.T, u, method, path string, body any) response {
	t.Helper()
	s := ""
	if body != nil {
		s = jsonBody(t, body)
	}
	return callAPI(t, e.hc, e.srv.HTTPURL, "Bearer "+e.tokens[u], method, path, s)
}

// dial connects u over transport and subscribes the connection to friend
// events.
func (e *friendEnv) dial(t *testing.T, transport, u string) *client.Client {
	t.Helper()
	c := e.srv.Dial(t, transport, e.ids[u])
	require.NoError(t, c.SubscribeFriendEvents(ctxT(t), true))
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// nextFriendEvent waits for the next push to c, which must be a friend
// event.
func nextFriendEvent(t *testing.T, c *client.Client) *imv1.FriendEventPush {
	t.Helper()
	select {
	case p := <-c.Pushes():
		ev, isEvent := p.Message.(*imv1.FriendEventPush)
		require.True(t, isEvent, "unexpected push %v", p.Command)
		require.Equal(t, imv1.CommandType_CMD_FRIEND_EVENT_PUSH, p.Command)
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no push within 10 s")
	}
	return nil
}

var sdkFriendKeys = []string{"friendUserID", "ownerUserID", "remark", "createTime", "addSource", "operatorUserID", "extra"}

type sdkFriend struct {
	FriendUserID   string `json:"friendUserID"`
	OwnerUserID    string `json:"ownerUserID"`
	Remark         string `json:"remark"`
	CreateTime     int64  `json:"createTime"`
	AddSource      int    `json:"addSource"`
	OperatorUserID string `json:"operatorUserID"`
	Extra          string `json:"extra"`
}

// decodeFriend decodes an IMFriend, checking that it has exactly the keys
// the SDK reads.
func decodeFriend(t *testing.T, raw json.RawMessage) sdkFriend {
	t.Helper()
	var keys map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &keys))
	got := make([]string, 0, len(keys))
	for k := range keys {
		got = append(got, k)
	}
	require.ElementsMatch(t, sdkFriendKeys, got)
	var f sdkFriend
	require.NoError(t, json.Unmarshal(raw, &f))
	return f
}

func (e *friendEnv) friends(t *testing.T, u string) []sdkFriend {
	t.Helper()
	r := ok(t, e.call(t, u, http.MethodGet, "/api/friend/list", nil))
	require.Equal(t, byte('['), r.data[0], "a list, [] when empty: %s", r.data)
	var raws []json.RawMessage
	require.NoError(t, json.Unmarshal(r.data, &raws))
	out := make([]sdkFriend, len(raws))
	for i, raw := range raws {
		out[i] = decodeFriend(t, raw)
	}
	return out
}

func (e *friendEnv) check(t *testing.T, u, other string) bool {
	t.Helper()
	r := ok(t, callAPI(t, e.hc, e.srv.HTTPURL, "Bearer "+e.tokens[u], http.MethodGet, "/api/friend/check?userID="+e.ids[other], ""))
	var b bool
	require.NoError(t, json.Unmarshal(r.data, &b))
	// The SDK's way, a JSON body on GET, answers the same.
	r = ok(t, e.call(t, u, http.MethodGet, "/api/friend/check", map[string]string{"userID": e.ids[other]}))
	var b2 bool
	require.NoError(t, json.Unmarshal(r.data, &b2))
	require.Equal(t, b, b2)
	return b
}

type requestsJSON struct {
	Incoming []struct {
		FromUserID, ToUserID, Message string
		CreateTime                    int64
	} `json:"incoming"`
	Outgoing []struct {
		FromUserID, ToUserID, Message string
		CreateTime                    int64
	} `json:"outgoing"`
}

func (e *friendEnv) requests(t *testing.T, u string) requestsJSON {
	t.Helper()
	r := ok(t, e.call(t, u, http.MethodGet, "/api/friend/requests", nil))
	require.Contains(t, string(r.data), `"incoming":[`)
	require.Contains(t, string(r.data), `"outgoing":[`)
	var rs requestsJSON
	require.NoError(t, json.Unmarshal(r.data, &rs))
	return rs
}

// The SDK's whole friend flow over HTTP, with the pushes it causes on the
// sockets of both users.
func TestFriendSDKFlow(t *testing.T) {
	e := setupFriends(t, nil, "alice", "bobby")
	a := e.dial(t, client.TransportTCP, "alice")
	b := e.dial(t, client.TransportWebSocket, "bobby")
	aid, bid := e.ids["alice"], e.ids["bobby"]

	r := ok(t, e.call(t, "alice", http.MethodPost, "/api/friend/add", map[string]string{"userID": bid, "message": "hi, it's alice"}))
	require.Nil(t, r.data, "add answers no data")
	for _, c := range []*client.Client{a, b} {
		ev := nextFriendEvent(t, c)
		require.Equal(t, imv1.FriendEventType_FRIEND_EVENT_REQUEST, ev.Type)
		require.Equal(t, aid, ev.FromUserId)
		require.Equal(t, bid, ev.ToUserId)
		require.Equal(t, "hi, it's alice", ev.Message)
		require.NotZero(t, ev.Time)
	}
	rs := e.requests(t, "bobby")
	require.Len(t, rs.Incoming, 1)
	require.Empty(t, rs.Outgoing)
	require.Equal(t, aid, rs.Incoming[0].FromUserID)
	require.Equal(t, "hi, it's alice", rs.Incoming[0].Message)
	require.False(t, e.check(t, "alice", "bobby"))

	r = ok(t, e.call(t, "bobby", http.MethodPost, "/api/friend/accept", map[string]string{"userID": aid}))
	f := decodeFriend(t, r.data)
	require.Equal(t, aid, f.FriendUserID)
	require.Equal(t, bid, f.OwnerUserID)
	require.Empty(t, f.Remark)
	require.InDelta(t, time.Now().UnixMilli(), f.CreateTime, 60_000)
	for _, c := range []*client.Client{a, b} {
		ev := nextFriendEvent(t, c)
		require.Equal(t, imv1.FriendEventType_FRIEND_EVENT_ACCEPTED, ev.Type)
	}
	require.True(t, e.check(t, "alice", "bobby"))
	require.True(t, e.check(t, "bobby", "alice"))
	la, lb := e.friends(t, "alice"), e.friends(t, "bobby")
	require.Len(t, la, 1)
	require.Len(t, lb, 1)
	require.Equal(t, bid, la[0].FriendUserID)
	require.Equal(t, aid, la[0].OwnerUserID)
	require.Equal(t, f, lb[0])
	require.Empty(t, e.requests(t, "alice").Outgoing)

	r = ok(t, e.call(t, "alice", http.MethodPost, "/api/friend/remark", map[string]string{"userID": bid, "remark": "Bobby 🎸"}))
	f = decodeFriend(t, r.data)
	require.Equal(t, "Bobby 🎸", f.Remark)
	require.Equal(t, bid, f.FriendUserID)
	require.Equal(t, "Bobby 🎸", e.friends(t, "alice")[0].Remark)
	require.Empty(t, e.friends(t, "bobby")[0].Remark, "a remark is its owner's alone")

	r = ok(t, e.call(t, "bobby", http.MethodPost, "/api/friend/delete", map[string]string{"userID": aid}))
	require.Nil(t, r.data)
	for _, c := range []*client.Client{a, b} {
		ev := nextFriendEvent(t, c)
		require.Equal(t, imv1.FriendEventType_FRIEND_EVENT_DELETED, ev.Type)
		require.Equal(t, bid, ev.FromUserId)
	}
	require.False(t, e.check(t, "alice", "bobby"))
	require.Empty(t, e.friends(t, "alice"))
	require.Empty(t, e.friends(t, "bobby"))

	// Reject and cancel.
	ok(t, e.call(t, "alice", http.MethodPost, "/api/friend/add", map[string]string{"userID": bid}))
	ok(t, e.call(t, "bobby", http.MethodPost, "/api/friend/reject", map[string]string{"userID": aid}))
	require.Equal(t, imv1.FriendEventType_FRIEND_EVENT_REQUEST, nextFriendEvent(t, b).Type)
	require.Equal(t, imv1.FriendEventType_FRIEND_EVENT_REJECTED, nextFriendEvent(t, b).Type)
	require.Empty(t, e.requests(t, "alice").Outgoing)
	ok(t, e.call(t, "alice", http.MethodPost, "/api/friend/add", map[string]string{"userID": bid}))
	ok(t, e.call(t, "alice", http.MethodPost, "/api/friend/cancel", map[string]string{"userID": bid}))
	require.Empty(t, e.requests(t, "bobby").Incoming)
	failed(t, e.call(t, "bobby", http.MethodPost, "/api/friend/accept", map[string]string{"userID": aid}), 202, "no friend request")
}

// Two users who ask each other become friends, with no request left.
func TestFriendMutualAdd(t *testing.T) {
	e := setupFriends(t, nil, "alice", "bobby")
	a := e.dial(t, client.TransportTCP, "alice")
	ok(t, e.call(t, "alice", http.MethodPost, "/api/friend/add", map[string]string{"userID": e.ids["bobby"]}))
	require.Equal(t, imv1.FriendEventType_FRIEND_EVENT_REQUEST, nextFriendEvent(t, a).Type)
	ok(t, e.call(t, "bobby", http.MethodPost, "/api/friend/add", map[string]string{"userID": e.ids["alice"], "message": "you too"}))
	ev := nextFriendEvent(t, a)
	require.Equal(t, imv1.FriendEventType_FRIEND_EVENT_ACCEPTED, ev.Type)
	require.Equal(t, e.ids["bobby"], ev.FromUserId)
	require.True(t, e.check(t, "alice", "bobby"))
	for _, u := range []string{"alice", "bobby"} {
		require.Len(t, e.friends(t, u), 1)
		rs := e.requests(t, u)
		require.Empty(t, rs.Incoming)
		require.Empty(t, rs.Outgoing)
	}
	// Asking a friend again changes nothing.
	ok(t, e.call(t, "alice", http.MethodPost, "/api/friend/add", map[string]string{"userID": e.ids["bobby"]}))
	require.Len(t, e.friends(t, "alice"), 1)
	require.Empty(t, e.requests(t, "bobby").Incoming)
}

func TestFriendBadInput(t *testing.T) {
	e := setupFriends(t, nil, "alice", "bobby")
	aid, bid := e.ids["alice"], e.ids["bobby"]
	post := func(path string, body any) response {
		return e.call(t, "alice", http.MethodPost, path, body)
	}
	tests := []struct {
		name, path string
		body       any
		code       int
		msg        string
	}{
		{"to oneself", "/api/friend/add", map[string]string{"userID": aid}, 2, "her own friend"},
		{"unknown user", "/api/friend/add", map[string]string{"userID": "nobody-here"}, 103, "does not exist"},
		{"no user", "/api/friend/add", map[string]string{"message": "hi"}, 2, "userID is required"},
		{"bad user id", "/api/friend/add", map[string]string{"userID": "a\x00b"}, 2, ""},
		{"message over limit", "/api/friend/add", map[string]string{"userID": bid, "message": strings.Repeat("m", im.MaxFriendMessageLen+1)}, 2, "message"},
		{"control characters", "/api/friend/add", map[string]string{"userID": bid, "message": "hi\x1b[2J"}, 2, "message"},
		{"userID not a string", "/api/friend/add", map[string]any{"userID": 7}, 2, "userID must be a string"},
		{"accept without request", "/api/friend/accept", map[string]string{"userID": bid}, 202, "no friend request"},
		{"reject without request", "/api/friend/reject", map[string]string{"userID": bid}, 202, "no friend request"},
		{"cancel without request", "/api/friend/cancel", map[string]string{"userID": bid}, 202, "no friend request"},
		{"delete a stranger", "/api/friend/delete", map[string]string{"userID": bid}, 202, "not friends"},
		{"remark a stranger", "/api/friend/remark", map[string]string{"userID": bid, "remark": "x"}, 202, "not friends"},
		{"block oneself", "/api/friend/block", map[string]string{"userID": aid}, 2, ""},
		{"block unknown", "/api/friend/block", map[string]string{"userID": "nobody-here"}, 103, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failed(t, post(tt.path, tt.body), tt.code, tt.msg)
		})
	}
	// Remarks over the limit or with control characters, on a friend.
	ok(t, post("/api/friend/add", map[string]string{"userID": bid}))
	ok(t, e.call(t, "bobby", http.MethodPost, "/api/friend/accept", map[string]string{"userID": aid}))
	failed(t, post("/api/friend/remark", map[string]string{"userID": bid, "remark": strings.Repeat("r", im.MaxFriendRemarkLen+1)}), 2, "remark")
	failed(t, post("/api/friend/remark", map[string]string{"userID": bid, "remark": "a\tb"}), 2, "remark")
	require.Empty(t, e.friends(t, "alice")[0].Remark, "a refused remark changes nothing")
	failed(t, callAPI(t, e.hc, e.srv.HTTPURL, "", http.MethodGet, "/api/friend/list", ""), 100, "")
	failed(t, e.call(t, "alice", http.MethodGet, "/api/friend/check", nil), 2, "userID is required")
	// Nothing above left a request behind.
	require.Empty(t, e.requests(t, "bobby").Incoming)
}

// 1,000 requests in a row: past the burst they are refused with 201 and
// store nothing.
func TestFriendRequestRateLimited(t *testing.T) {
	e := setupFriends(t, nil, "alice", "bobby")
	limited := 0
	for i := range 1000 {
		r := e.call(t, "alice", http.MethodPost, "/api/friend/add", map[string]string{"userID": e.ids["bobby"], "message": fmt.Sprint("try ", i)})
		switch r.code {
		case 0:
		case 201:
			limited++
		default:
			t.Fatalf("request %d: %s", i, r.raw)
		}
	}
	require.GreaterOrEqual(t, limited, 990, "at 1 a second with a burst of 5")
	rs := e.requests(t, "bobby")
	require.Len(t, rs.Incoming, 1)
	require.NotEqual(t, "try 999", rs.Incoming[0].Message, "a limited request replaces nothing")
}

// A user may have at most 200 requests waiting; replacing one is not new.
func TestFriendPendingBound(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Memory: true, Config: im.Config{FriendRequestRate: -1}})
	ctx := ctxT(t)
	for i := range im.MaxPendingFriendRequests {
		_, err := srv.RequestFriend(ctx, "alice", fmt.Sprint("u", i), "")
		require.NoError(t, err)
	}
	_, err := srv.RequestFriend(ctx, "alice", "one-more", "")
	require.ErrorIs(t, err, im.ErrLimitExceeded)
	o, err := srv.RequestFriend(ctx, "alice", "u7", "again")
	require.NoError(t, err)
	require.Equal(t, im.FriendRequested, o)
	require.NoError(t, srv.CancelFriendRequest(ctx, "alice", "u0"))
	_, err = srv.RequestFriend(ctx, "alice", "one-more", "")
	require.NoError(t, err)
}

// presenceOf asks c's server for user's status.
func presenceOf(t *testing.T, c *client.Client, user string) *imv1.UserStatus {
	t.Helper()
	rsp, err := c.Presence(ctxT(t), []string{user}, imv1.PresenceSubscribe_PRESENCE_QUERY)
	require.NoError(t, err)
	require.Len(t, rsp.Statuses, 1)
	return rsp.Statuses[0]
}

func TestFriendBlocks(t *testing.T) {
	e := setupFriends(t, nil, "alice", "bobby", "carol")
	aid, bid := e.ids["alice"], e.ids["bobby"]
	a := e.dial(t, client.TransportTCP, "alice")
	b := e.dial(t, client.TransportWebSocket, "bobby")
	ctx := ctxT(t)
	send := func(c *client.Client, to string) error {
		_, err := c.Send(ctx, client.Outgoing{ReceiverID: to, Type: im.TextMessage, Content: []byte("hello")})
		return err
	}
	// Friends who write to each other see each other online.
	ok(t, e.call(t, "alice", http.MethodPost, "/api/friend/add", map[string]string{"userID": bid}))
	ok(t, e.call(t, "bobby", http.MethodPost, "/api/friend/add", map[string]string{"userID": aid}))
	require.NoError(t, send(a, bid))
	require.NoError(t, send(b, aid))
	require.True(t, presenceOf(t, a, bid).Online)
	require.True(t, presenceOf(t, b, aid).Online)
	drain(b)

	r := ok(t, e.call(t, "alice", http.MethodPost, "/api/friend/block", map[string]string{"userID": bid}))
	require.Nil(t, r.data)
	require.False(t, e.check(t, "alice", "bobby"), "a block ends the friendship")
	require.Empty(t, e.friends(t, "bobby"))

	// Messages are refused both ways, over the socket.
	for _, c := range []struct {
		from *client.Client
		to   string
	}{{a, bid}, {b, aid}} {
		err := send(c.from, c.to)
		require.ErrorIs(t, err, im.ErrPermissionDenied)
		var ce *client.Error
		require.ErrorAs(t, err, &ce)
		require.Equal(t, imv1.ErrorCode_ERR_PERMISSION_DENIED, ce.Code)
	}
	// Presence is hidden both ways.
	for _, p := range []struct {
		c    *client.Client
		user string
	}{{a, bid}, {b, aid}} {
		st := presenceOf(t, p.c, p.user)
		require.False(t, st.Online)
		require.Zero(t, st.LastSeen)
		require.Empty(t, st.Devices)
	}
	pres, err := e.srv.Presence(ctx, bid, []string{aid})
	require.NoError(t, err)
	require.False(t, pres[0].Online, "the Go API's presence hides her too")
	// Friend requests are refused both ways.
	failed(t, e.call(t, "bobby", http.MethodPost, "/api/friend/add", map[string]string{"userID": aid}), 102, "")
	failed(t, e.call(t, "alice", http.MethodPost, "/api/friend/add", map[string]string{"userID": bid}), 102, "")
	// Carol is not affected.
	require.NoError(t, send(a, e.ids["carol"]))

	r = ok(t, e.call(t, "alice", http.MethodGet, "/api/friend/blocks", nil))
	var blocks []struct {
		BlockedUserID string `json:"blockedUserID"`
		CreateTime    int64  `json:"createTime"`
	}
	require.NoError(t, json.Unmarshal(r.data, &blocks))
	require.Len(t, blocks, 1)
	require.Equal(t, bid, blocks[0].BlockedUserID)
	require.JSONEq(t, `[]`, string(ok(t, e.call(t, "bobby", http.MethodGet, "/api/friend/blocks", nil)).data))

	ok(t, e.call(t, "alice", http.MethodPost, "/api/friend/unblock", map[string]string{"userID": bid}))
	require.NoError(t, send(b, aid))
	require.NoError(t, send(a, bid))
	require.True(t, presenceOf(t, b, aid).Online)
	ok(t, e.call(t, "bobby", http.MethodPost, "/api/friend/add", map[string]string{"userID": aid}))
}

// drain empties c's push channel of what has arrived so far.
func drain(c *client.Client) {
	for {
		select {
		case <-c.Pushes():
		default:
			return
		}
	}
}

func TestFriendsOnly(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint("FriendsOnly=", on), func(t *testing.T) {
			e := setupFriends(t, func(c *im.Config) { c.FriendsOnly = on }, "alice", "bobby")
			aid, bid := e.ids["alice"], e.ids["bobby"]
			a := e.srv.Dial(t, client.TransportTCP, aid)
			ctx := ctxT(t)
			send := func() error {
				_, err := a.Send(ctx, client.Outgoing{ReceiverID: bid, Type: im.TextMessage, Content: []byte("hi")})
				return err
			}
			err := send()
			if on {
				require.ErrorIs(t, err, im.ErrPermissionDenied, "strangers may not write")
			} else {
				require.NoError(t, err)
			}
			ok(t, e.call(t, "alice", http.MethodPost, "/api/friend/add", map[string]string{"userID": bid}))
			ok(t, e.call(t, "bobby", http.MethodPost, "/api/friend/accept", map[string]string{"userID": aid}))
			require.NoError(t, send(), "friends may")
			ok(t, e.call(t, "bobby", http.MethodPost, "/api/friend/delete", map[string]string{"userID": aid}))
			if err := send(); on {
				require.ErrorIs(t, err, im.ErrPermissionDenied, "no longer friends")
			} else {
				require.NoError(t, err)
			}
		})
	}
}

// A block written to the shared Store by another process takes effect on
// this server within the relation cache's 2 s.
func TestFriendBlockFromAnotherServer(t *testing.T) {
	e := setupFriends(t, nil, "alice", "bobby")
	aid, bid := e.ids["alice"], e.ids["bobby"]
	a := e.srv.Dial(t, client.TransportTCP, aid)
	ctx := ctxT(t)
	send := func() error {
		_, err := a.Send(ctx, client.Outgoing{ReceiverID: bid, Type: im.TextMessage, Content: []byte("hi")})
		return err
	}
	require.NoError(t, send()) // the relation is cached now
	fs := e.srv.Store.(im.FriendStore)
	require.NoError(t, fs.Block(ctx, bid, aid, time.Now()))
	require.Eventually(t, func() bool { return send() != nil }, 5*time.Second, 100*time.Millisecond)
	require.ErrorIs(t, send(), im.ErrPermissionDenied)
	require.NoError(t, fs.Unblock(ctx, bid, aid))
	require.Eventually(t, func() bool { return send() == nil }, 5*time.Second, 100*time.Millisecond)
}

func TestFriendRoutesWithoutFriendStore(t *testing.T) {
	// The Server's store hides the memstore's friends.
	srv := imtest.NewServer(t, imtest.Options{Memory: true, Config: im.Config{Store: struct{ im.Store }{memstore.New()}}})
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	auth := "Bearer " + srv.Token(t, alice)
	for _, p := range []string{"/api/friend/list", "/api/friend/blocks", "/api/friend/requests"} {
		failed(t, callAPI(t, hc, srv.HTTPURL, auth, http.MethodGet, p, ""), 1, "not supported")
	}
	failed(t, callAPI(t, hc, srv.HTTPURL, auth, http.MethodPost, "/api/friend/add", `{"userID":"bob"}`), 1, "not supported")
	// And FriendsOnly cannot be asked of it.
	_, err := im.NewServer(im.Config{Store: struct{ im.Store }{memstore.New()}, Authenticator: srv.Tokens, FriendsOnly: true})
	require.ErrorContains(t, err, "FriendsOnly")
}
