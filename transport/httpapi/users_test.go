package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/store/memstore"
	"github.com/imserver/imserver/transport/httpapi"
	"github.com/imserver/imserver/transport/tcp"
)

// usersEnv serves the API and a TCP socket as cmd/imserver does: built-in
// accounts over a store that keeps profiles and revoked tokens, a Guard,
// and the accounts as the Server's user directory.
type usersEnv struct {
	hs       *httptest.Server
	server   *im.Server
	store    *memstore.Store
	accounts *auth.Accounts
	tokens   *auth.JWT
	tcpAddr  string
	logs     *syncBuffer
}

func setupUsers(t *testing.T, cfg func(*im.Config)) *usersEnv {
	t.Helper()
	return setupUsersWith(t, cfg, nil)
}

// setupUsersWith is setupUsers with a say in the handler's Options too.
func setupUsersWith(t *testing.T, cfg func(*im.Config), opts func(*httpapi.Options)) *usersEnv {
	t.Helper()
	return setupUsersHandler(t, cfg, opts, httpapi.NewHandler)
}

// setupUsersHandler is setupUsersWith making the handler with newHandler.
func setupUsersHandler(t *testing.T, cfg func(*im.Config), opts func(*httpapi.Options), newHandler func(httpapi.Options) http.Handler) *usersEnv {
	t.Helper()
	mem := memstore.New()
	tokens, err := auth.NewJWT(auth.JWTConfig{Secret: groupSecret, Lifetime: time.Hour})
	require.NoError(t, err)
	accounts, err := auth.NewAccounts(auth.AccountsConfig{Store: mem, Tokens: tokens, BcryptCost: auth.MinBcryptCost})
	require.NoError(t, err)
	guard, err := auth.NewGuard(auth.GuardConfig{Tokens: tokens, Versions: mem, Accounts: mem})
	require.NoError(t, err)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := im.Config{Store: mem, Authenticator: guard, Users: accounts, Logger: log, GroupAddPolicy: anyoneAdds}
	if cfg != nil {
		cfg(&c)
	}
	srv, err := im.NewServer(c)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ts := tcp.NewServer(srv, tcp.Options{Logger: log})
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = ts.Serve(l)
	}()
	o := httpapi.Options{Accounts: accounts, Server: srv, Logger: log}
	if opts != nil {
		opts(&o)
	}
	hs := httptest.NewServer(newHandler(o))
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		<-served
	})
	return &usersEnv{hs: hs, server: srv, store: mem, accounts: accounts, tokens: tokens, tcpAddr: l.Addr().String(), logs: logs}
}

// post calls a route that takes no token.
func (e *usersEnv) post(t *testing.T, path, body string) response {
	t.Helper()
	header := http.Header{"Content-Type": {"application/json"}}
	return doRequest(t, e.hs.Client(), http.MethodPost, e.hs.URL+path, header, body)
}

// call calls a route with token, as IM-iOS-SDK does.
func (e *usersEnv) call(t *testing.T, token, method, path, body string) response {
	t.Helper()
	authz := ""
	if token != "" {
		authz = "Bearer " + token
	}
	return callAPI(t, e.hs.Client(), e.hs.URL, authz, method, path, body)
}

// register registers username and logs in, returning the user id and a
// token.
func (e *usersEnv) register(t *testing.T, username, nickname string) (string, string) {
	t.Helper()
	ok(t, e.post(t, "/api/auth/register", jsonBody(t, map[string]string{"username": username, "password": "password-" + username, "nickname": nickname})))
	return e.login(t, username, "password-"+username)
}

func (e *usersEnv) login(t *testing.T, username, password string) (string, string) {
	t.Helper()
	r := ok(t, e.post(t, "/api/auth/login", jsonBody(t, map[string]string{"username": username, "password": password, "platform": "iOS"})))
	var l loggedIn
	require.NoError(t, json.Unmarshal(r.data, &l))
	return l.UserID, l.Token
}

// dial connects a socket client with token.
func (e *usersEnv) dial(t *testing.T, userID, token string) (*client.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{Transport: client.TransportTCP, Addr: e.tcpAddr, UserID: userID, Token: token})
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

func kickedOut(t *testing.T, c *client.Client) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the client was not kicked")
	}
	require.ErrorIs(t, c.Err(), client.ErrKicked)
}

func stillConnected(t *testing.T, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Conversations(ctx, client.ConversationQuery{})
	require.NoError(t, err)
}

// sdkUser is IM-iOS-SDK's IMUser with our username and deleted.
type sdkUser struct {
	UserID     string `json:"userID"`
	Nickname   string `json:"nickname"`
	Avatar     string `json:"avatar"`
	Phone      string `json:"phone"`
	Email      string `json:"email"`
	Gender     int    `json:"gender"`
	Birth      int64  `json:"birth"`
	Signature  string `json:"signature"`
	Extra      string `json:"extra"`
	CreateTime int64  `json:"createTime"`
	UpdateTime int64  `json:"updateTime"`
	Username   string `json:"username"`
	Deleted    bool   `json:"deleted"`
}

var sdkUserKeys = []string{
	"userID", "nickname", "avatar", "phone", "email", "gender", "birth", "signature",
	"extra", "createTime", "updateTime", "username", "deleted",
}

// decodeUser decodes an IMUser, checking it has exactly the keys it should.
func decodeUser(t *testing.T, raw json.RawMessage) sdkUser {
	t.Helper()
	var keys map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &keys), "%s", raw)
	got := slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	})
	require.ElementsMatch(t, sdkUserKeys, got)
	var u sdkUser
	require.NoError(t, json.Unmarshal(raw, &u))
	return u
}

func decodeUsers(t *testing.T, raw json.RawMessage) []sdkUser {
	t.Helper()
	var list []json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &list), "%s", raw)
	require.NotNil(t, list, "a list is [], never null")
	out := make([]sdkUser, len(list))
	for i, r := range list {
		out[i] = decodeUser(t, r)
	}
	return out
}

func userIDs(us []sdkUser) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.UserID
	}
	return out
}

func TestUserProfiles(t *testing.T) {
	e := setupUsers(t, nil)
	aliceID, aliceTok := e.register(t, "alice", "Alice")
	bobID, bobTok := e.register(t, "bob", "Bobby")
	_, _ = e.register(t, "alina", "alina")

	// Info as IM-iOS-SDK reads it.
	bobInfo := decodeUser(t, ok(t, e.call(t, aliceTok, http.MethodGet, "/api/user/info/"+bobID, "")).data)
	require.Equal(t, sdkUser{UserID: bobID, Nickname: "Bobby", Username: "bob", CreateTime: bobInfo.CreateTime, UpdateTime: bobInfo.CreateTime}, bobInfo)
	require.InDelta(t, time.Now().UnixMilli(), bobInfo.CreateTime, float64(time.Minute.Milliseconds()))

	// The SDK's update sends every field.
	r := ok(t, e.call(t, aliceTok, http.MethodPost, "/api/user/update",
		`{"userID":"`+aliceID+`","nickname":"Alice Liddell","avatar":"https://cdn.example.com/a.png","signature":"Down the rabbit hole","gender":2,"birth":18520504}`))
	me := decodeUser(t, r.data)
	require.Equal(t, "Alice Liddell", me.Nickname)
	require.Equal(t, "https://cdn.example.com/a.png", me.Avatar)
	require.Equal(t, "Down the rabbit hole", me.Signature)
	require.Equal(t, 2, me.Gender)
	require.Equal(t, int64(18520504), me.Birth)
	require.GreaterOrEqual(t, me.UpdateTime, me.CreateTime)
	// A field left out stays; without userID the caller is meant.
	me = decodeUser(t, ok(t, e.call(t, aliceTok, http.MethodPost, "/api/user/update", `{"nickname":"Alice L."}`)).data)
	require.Equal(t, "Alice L.", me.Nickname)
	require.Equal(t, "https://cdn.example.com/a.png", me.Avatar)
	// Others see it.
	seen := decodeUser(t, ok(t, e.call(t, bobTok, http.MethodGet, "/api/user/info/"+aliceID, "")).data)
	require.Equal(t, me, seen)

	// Batch: in the order asked, each once, unknown ids left out.
	r = ok(t, e.call(t, aliceTok, http.MethodPost, "/api/user/info/batch", jsonBody(t, map[string]any{"userIDs": []string{bobID, aliceID, "nobody", bobID}})))
	require.Equal(t, []string{bobID, aliceID}, userIDs(decodeUsers(t, r.data)))
	for _, body := range []string{`{"userIDs":[]}`, `{}`, `{"userIDs":["nobody"]}`} {
		r = ok(t, e.call(t, aliceTok, http.MethodPost, "/api/user/info/batch", body))
		require.JSONEq(t, `[]`, string(r.data), body)
	}

	// Search: the query string (where the SDK's library puts it) or a
	// JSON body; nickname prefixes ignoring case, exact ids and usernames.
	search := func(token, query, body string) []string {
		t.Helper()
		path := "/api/user/search"
		if query != "" {
			path += "?keyword=" + url.QueryEscape(query)
		}
		return userIDs(decodeUsers(t, ok(t, e.call(t, token, http.MethodGet, path, body)).data))
	}
	alinaID, _ := e.login(t, "alina", "password-alina")
	require.Equal(t, []string{aliceID, alinaID}, search(bobTok, "ali", ""))
	require.Equal(t, []string{aliceID, alinaID}, search(bobTok, "ALI", ""))
	require.Equal(t, []string{aliceID}, search(bobTok, "", `{"keyword":"alice l"}`))
	require.Equal(t, []string{aliceID}, search(bobTok, "  Alice L.  ", ""))
	require.Equal(t, []string{bobID}, search(aliceTok, bobID, ""))
	require.Equal(t, []string{bobID}, search(aliceTok, "bob", ""))
	require.Equal(t, []string{alinaID}, search(aliceTok, "alina", ""))
	ok(t, e.call(t, bobTok, http.MethodPost, "/api/user/update", `{"nickname":"alice's friend"}`))
	require.Equal(t, []string{alinaID}, search(aliceTok, "alina", `{"keyword":"bob"}`), "the query string wins")
	require.Equal(t, []string{aliceID, bobID, alinaID}, search(aliceTok, "ali", ""), "by nickname, then id")
	require.Equal(t, []string{bobID}, search(aliceTok, "bob", ""), "an exact username")
	require.Empty(t, search(aliceTok, "zz", ""))
}

func TestUserRoutesRefuse(t *testing.T) {
	e := setupUsers(t, func(c *im.Config) { c.ProfileRate = -1 })
	aliceID, aliceTok := e.register(t, "alice", "Alice")
	bobID, _ := e.register(t, "bob", "Bob")
	before := decodeUser(t, ok(t, e.call(t, aliceTok, http.MethodGet, "/api/user/info/"+aliceID, "")).data)

	refused := []struct {
		name, method, path, body string
		code                     int
		inMsg                    string
	}{
		{"other's profile", http.MethodPost, "/api/user/update", `{"userID":"` + bobID + `","nickname":"pwned"}`, 102, "own profile"},
		{"long nickname", http.MethodPost, "/api/user/update", jsonBody(t, map[string]string{"nickname": strings.Repeat("é", im.MaxNicknameLen+1)}), 2, "nickname"},
		{"control in nickname", http.MethodPost, "/api/user/update", `{"nickname":"Al\u0007ice"}`, 2, "nickname"},
		{"empty nickname", http.MethodPost, "/api/user/update", `{"nickname":""}`, 2, "nickname"},
		{"line break in signature", http.MethodPost, "/api/user/update", `{"signature":"a\nb"}`, 2, "signature"},
		{"unknown gender", http.MethodPost, "/api/user/update", `{"gender":7}`, 2, "gender"},
		{"birth out of range", http.MethodPost, "/api/user/update", `{"birth":-99999999999999999}`, 2, "birth"},
		{"gender as text", http.MethodPost, "/api/user/update", `{"gender":"female"}`, 2, "gender"},
		{"one-character keyword", http.MethodGet, "/api/user/search?keyword=a", "", 2, "keyword"},
		{"blank keyword", http.MethodGet, "/api/user/search?keyword=%20%20%20", "", 2, "keyword"},
		{"no keyword", http.MethodGet, "/api/user/search", "", 2, "keyword"},
		{"long keyword", http.MethodGet, "/api/user/search?keyword=" + strings.Repeat("a", 4096), "", 2, "keyword"},
		{"megabyte keyword", http.MethodGet, "/api/user/search", jsonBody(t, map[string]string{"keyword": strings.Repeat("a", 1<<20)}), 2, "over"},
		{"batch of 10,000", http.MethodPost, "/api/user/info/batch", jsonBody(t, map[string]any{"userIDs": manyIDs(10000)}), 2, ""},
		{"batch over the limit", http.MethodPost, "/api/user/info/batch", jsonBody(t, map[string]any{"userIDs": manyIDs(im.MaxUserBatch + 1)}), 2, "at most"},
		{"invalid id in batch", http.MethodPost, "/api/user/info/batch", `{"userIDs":["ok","bad\u0000id"]}`, 2, "user id"},
		{"unknown user", http.MethodGet, "/api/user/info/nobody", "", 103, "not found"},
		{"invalid user id", http.MethodGet, "/api/user/info/" + strings.Repeat("x", im.MaxIDLength+1), "", 2, "user id"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			failed(t, e.call(t, aliceTok, tt.method, tt.path, tt.body), tt.code, tt.inMsg)
		})
	}
	after := decodeUser(t, ok(t, e.call(t, aliceTok, http.MethodGet, "/api/user/info/"+aliceID, "")).data)
	require.Equal(t, before, after, "nothing changed")
	bob := decodeUser(t, ok(t, e.call(t, aliceTok, http.MethodGet, "/api/user/info/"+bobID, "")).data)
	require.Equal(t, "Bob", bob.Nickname)
}

func manyIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "u" + strings.Repeat("0", 3) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676%26))
	}
	return ids
}

func TestProfileRate(t *testing.T) {
	e := setupUsers(t, func(c *im.Config) { c.ProfileRate = 0.01 }) // a burst of one
	_, tok := e.register(t, "alice", "Alice")
	ok(t, e.call(t, tok, http.MethodGet, "/api/user/search?keyword=al", ""))
	failed(t, e.call(t, tok, http.MethodGet, "/api/user/search?keyword=al", ""), 201, "too fast")
	failed(t, e.call(t, tok, http.MethodPost, "/api/user/update", `{"nickname":"A"}`), 201, "too fast")
}

func TestUserRoutesWithoutProfiles(t *testing.T) {
	// A directory that only tells whether users exist.
	e := setupUsers(t, func(c *im.Config) { c.Users = existsOnly{} })
	_, tok := e.register(t, "alice", "Alice")
	failed(t, e.call(t, tok, http.MethodGet, "/api/user/info/alice", ""), 1, "not supported")
	failed(t, e.call(t, tok, http.MethodGet, "/api/user/search?keyword=al", ""), 1, "not supported")
	failed(t, e.call(t, tok, http.MethodPost, "/api/user/update", `{"nickname":"A"}`), 1, "not supported")
}

type existsOnly struct{}

func (existsOnly) UserExists(context.Context, string) (bool, error) { return true, nil }

func TestUserRoutesWantToken(t *testing.T) {
	e := setupUsers(t, nil)
	aliceID, aliceTok := e.register(t, "alice", "Alice")
	other, err := auth.NewJWT(auth.JWTConfig{Secret: []byte("another-secret-eGj0Fd5Hy3Rc6Bn1Zw8")})
	require.NoError(t, err)
	forged, _, err := other.Issue(aliceID)
	require.NoError(t, err)
	// A token from before a revocation.
	_, stale := e.login(t, "alice", "password-alice")
	_, err = e.store.BumpTokenVersion(t.Context(), aliceID)
	require.NoError(t, err)

	routes := []struct{ method, path string }{
		{http.MethodGet, "/api/user/info/" + aliceID},
		{http.MethodPost, "/api/user/info/batch"},
		{http.MethodPost, "/api/user/update"},
		{http.MethodGet, "/api/user/search?keyword=al"},
		{http.MethodPost, "/api/auth/logout"},
		{http.MethodPost, "/api/auth/password"},
		{http.MethodPost, "/api/auth/delete"},
	}
	for _, rt := range routes {
		failed(t, e.call(t, "", rt.method, rt.path, `{}`), 100, "Bearer")
		failed(t, e.call(t, forged, rt.method, rt.path, `{}`), 100, "invalid token")
		failed(t, e.call(t, stale, rt.method, rt.path, `{}`), 100, "token revoked")
		failed(t, e.call(t, aliceTok, rt.method, rt.path, `{}`), 100, "token revoked")
	}
	require.NotContains(t, e.logs.String(), stale)
}

func TestLogout(t *testing.T) {
	e := setupUsers(t, nil)
	aliceID, phone := e.register(t, "alice", "Alice")
	_, laptop := e.login(t, "alice", "password-alice")
	phoneConn, err := e.dial(t, aliceID, phone)
	require.NoError(t, err)
	laptopConn, err := e.dial(t, aliceID, laptop)
	require.NoError(t, err)

	ok(t, e.call(t, phone, http.MethodPost, "/api/auth/logout", ""))
	kickedOut(t, phoneConn)
	require.Contains(t, phoneConn.Err().Error(), auth.KickLoggedOut)
	stillConnected(t, laptopConn)

	// The token stops working at once, on HTTP and on the socket.
	failed(t, e.call(t, phone, http.MethodGet, "/api/user/info/"+aliceID, ""), 100, "token revoked")
	failed(t, e.call(t, phone, http.MethodPost, "/api/auth/logout", ""), 100, "token revoked")
	_, err = e.dial(t, aliceID, phone)
	require.Error(t, err)
	// The other one goes on.
	ok(t, e.call(t, laptop, http.MethodGet, "/api/user/info/"+aliceID, ""))
	_, err = e.dial(t, aliceID, laptop)
	require.NoError(t, err)
}

func TestChangePassword(t *testing.T) {
	e := setupUsers(t, nil)
	aliceID, phone := e.register(t, "alice", "Alice")
	_, laptop := e.login(t, "alice", "password-alice")
	laptopConn, err := e.dial(t, aliceID, laptop)
	require.NoError(t, err)

	failed(t, e.call(t, phone, http.MethodPost, "/api/auth/password", `{"oldPassword":"wrong-password","newPassword":"brand new secret"}`), 102, "wrong password")
	failed(t, e.call(t, phone, http.MethodPost, "/api/auth/password", `{"oldPassword":"password-alice","newPassword":"short"}`), 2, "password")
	failed(t, e.call(t, phone, http.MethodPost, "/api/auth/password", `{"oldPassword":"password-alice"}`), 2, "password")
	stillConnected(t, laptopConn)
	ok(t, e.call(t, laptop, http.MethodGet, "/api/user/info/"+aliceID, ""))

	r := ok(t, e.call(t, phone, http.MethodPost, "/api/auth/password", `{"oldPassword":"password-alice","newPassword":"brand new secret"}`))
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	var fresh loggedIn
	require.NoError(t, json.Unmarshal(r.data, &fresh))
	require.Equal(t, aliceID, fresh.UserID)
	require.Greater(t, fresh.ExpiresAt, time.Now().UnixMilli())

	kickedOut(t, laptopConn)
	require.Contains(t, laptopConn.Err().Error(), auth.KickPasswordChanged)
	for _, old := range []string{phone, laptop} {
		failed(t, e.call(t, old, http.MethodGet, "/api/user/info/"+aliceID, ""), 100, "token revoked")
		_, err := e.dial(t, aliceID, old)
		require.Error(t, err)
	}
	ok(t, e.call(t, fresh.Token, http.MethodGet, "/api/user/info/"+aliceID, ""))
	_, err = e.dial(t, aliceID, fresh.Token)
	require.NoError(t, err)
	failed(t, e.post(t, "/api/auth/login", `{"username":"alice","password":"password-alice"}`), 100, "invalid username or password")
	e.login(t, "alice", "brand new secret")
}

func TestDeleteAccount(t *testing.T) {
	e := setupUsers(t, nil)
	aliceID, aliceTok := e.register(t, "alice", "Alice")
	bobID, bobTok := e.register(t, "bob", "Bob")
	carolID, carolTok := e.register(t, "carol", "Carol")
	ok(t, e.call(t, aliceTok, http.MethodPost, "/api/user/update", `{"avatar":"https://cdn.example.com/a.png","signature":"hi","gender":2,"birth":19900101}`))

	aliceConn, err := e.dial(t, aliceID, aliceTok)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = aliceConn.Send(ctx, client.Outgoing{ReceiverID: bobID, Type: im.TextMessage, Content: []byte("goodbye, bob")})
	require.NoError(t, err)

	// A group alice owns with an admin (carol) and a member (bob, there
	// longer), and one she is alone in.
	shared := decodeGroup(t, ok(t, e.call(t, aliceTok, http.MethodPost, "/api/group/create", jsonBody(t, map[string]any{"groupName": "shared", "memberUserIDs": []string{bobID}}))).data)
	ok(t, e.call(t, aliceTok, http.MethodPost, "/api/group/"+shared.GroupID+"/invite", jsonBody(t, map[string]any{"userIDs": []string{carolID}})))
	ok(t, e.call(t, aliceTok, http.MethodPost, "/api/group/"+shared.GroupID+"/role", jsonBody(t, map[string]any{"userID": carolID, "role": "admin"})))
	alone := decodeGroup(t, ok(t, e.call(t, aliceTok, http.MethodPost, "/api/group/create", `{"groupName":"alone"}`)).data)

	failed(t, e.call(t, aliceTok, http.MethodPost, "/api/auth/delete", `{"password":"wrong-password"}`), 102, "wrong password")
	failed(t, e.call(t, aliceTok, http.MethodPost, "/api/auth/delete", `{}`), 102, "wrong password")
	stillConnected(t, aliceConn)

	ok(t, e.call(t, aliceTok, http.MethodPost, "/api/auth/delete", `{"password":"password-alice"}`))
	kickedOut(t, aliceConn)
	require.Contains(t, aliceConn.Err().Error(), auth.KickAccountDeleted)

	// She is gone: her token, her login, her name for a new account.
	failed(t, e.call(t, aliceTok, http.MethodGet, "/api/user/info/"+bobID, ""), 100, "account disabled")
	_, err = e.dial(t, aliceID, aliceTok)
	require.Error(t, err)
	failed(t, e.post(t, "/api/auth/login", `{"username":"alice","password":"password-alice"}`), 100, "invalid username or password")
	failed(t, e.post(t, "/api/auth/register", `{"username":"alice","password":"password-alice"}`), 1001, "taken")

	// Others see a deleted user, and cannot find her.
	seen := decodeUser(t, ok(t, e.call(t, bobTok, http.MethodGet, "/api/user/info/"+aliceID, "")).data)
	require.Equal(t, sdkUser{UserID: aliceID, Nickname: im.DeletedUserNickname, Deleted: true, CreateTime: seen.CreateTime, UpdateTime: seen.UpdateTime}, seen)
	r := ok(t, e.call(t, bobTok, http.MethodGet, "/api/user/search?keyword=alice", ""))
	require.JSONEq(t, `[]`, string(r.data))
	r = ok(t, e.call(t, bobTok, http.MethodGet, "/api/user/search?keyword="+aliceID, ""))
	require.JSONEq(t, `[]`, string(r.data))
	exists, err := e.accounts.UserExists(t.Context(), aliceID)
	require.NoError(t, err)
	require.False(t, exists)

	// Her messages stay readable by bob.
	r = ok(t, e.call(t, bobTok, http.MethodPost, "/api/conversation/list", ""))
	var list sdkConversationList
	require.NoError(t, json.Unmarshal(r.data, &list))
	found := false
	for _, c := range list.Conversations {
		var m sdkMessage
		if c.ConversationType == 1 && json.Unmarshal(c.LastMessage, &m) == nil && m.SenderID == aliceID {
			require.Equal(t, "goodbye, bob", string(m.Content))
			found = true
		}
	}
	require.True(t, found, "bob's conversation with alice: %s", r.data)

	// Her groups: the shared one is carol's now, without her; the other
	// is dismissed.
	g := decodeGroup(t, ok(t, e.call(t, bobTok, http.MethodGet, "/api/group/"+shared.GroupID, "")).data)
	require.Equal(t, carolID, g.OwnerUserID)
	var members []sdkMember
	require.NoError(t, json.Unmarshal(ok(t, e.call(t, carolTok, http.MethodGet, "/api/group/"+shared.GroupID+"/members", "")).data, &members))
	roles := map[string]string{}
	for _, m := range members {
		roles[m.UserID] = m.Role
	}
	require.Equal(t, map[string]string{carolID: "owner", bobID: "member"}, roles)
	_, err = e.server.Group(t.Context(), alone.GroupID, aliceID)
	require.True(t, errors.Is(err, im.ErrNotFound), "%v", err)
}
