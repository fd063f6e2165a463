package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/transport/httpapi"
)

const (
	alice = "alice"
	bob   = "bob"
	carol = "carol"
	dave  = "dave"
	erin  = "erin"
)

var groupSecret = []byte("group-test-secret-k7Qm2vX9pL4sT8w")

// groupEnv serves the API with a real im.Server over a bolt store.
type groupEnv struct {
	*testEnv
	server   *im.Server
	store    *bolt.Store
	accounts *auth.Accounts
}

// setupGroups starts the API with Options.Server set. cfg, if not nil,
// adjusts the im.Config; opts the Options. Its users may add anyone to
// groups (Config.GroupAddPolicy): the tests that use it are about the
// routes, and groupadd_test.go about whom one may add.
func setupGroups(t *testing.T, cfg func(*im.Config, *auth.Accounts), opts func(*httpapi.Options)) *groupEnv {
	t.Helper()
	store := newBoltStore(t)
	tokens, err := auth.NewJWT(auth.JWTConfig{Secret: groupSecret, Lifetime: time.Hour})
	require.NoError(t, err)
	accounts, err := auth.NewAccounts(auth.AccountsConfig{Store: store, Tokens: tokens, BcryptCost: auth.MinBcryptCost})
	require.NoError(t, err)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := im.Config{Store: store, Authenticator: tokens, Logger: log, GroupAddPolicy: anyoneAdds}
	if cfg != nil {
		cfg(&c, accounts)
	}
	srv, err := im.NewServer(c)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	})
	o := httpapi.Options{Accounts: accounts, Server: srv, Logger: log}
	if opts != nil {
		opts(&o)
	}
	hs := httptest.NewServer(httpapi.NewHandler(o))
	t.Cleanup(hs.Close)
	return &groupEnv{
		testEnv:  &testEnv{srv: hs, store: store, tokens: tokens, logs: logs},
		server:   srv,
		store:    store,
		accounts: accounts,
	}
}

// token returns a valid token for user.
func (e *groupEnv) token(t *testing.T, user string) string {
	t.Helper()
	tok, _, err := e.tokens.Issue(user)
	require.NoError(t, err)
	return tok
}

// call makes an API call as user, as IM-iOS-SDK makes them: JSON content
// type and a bearer token.
func (e *groupEnv) call(t *testing.T, user, method, path, body string) response {
	t.Helper()
	return e.callWithAuth(t, "Bearer "+e.token(t, user), method, path, body)
}

func (e *groupEnv) callWithAuth(t *testing.T, authorization, method, path, body string) response {
	t.Helper()
	return callAPI(t, e.srv.Client(), e.srv.URL, authorization, method, path, body)
}

func callAPI(t *testing.T, c *http.Client, base, authorization, method, path, body string) response {
	t.Helper()
	header := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}
	if authorization != "" {
		header.Set("Authorization", authorization)
	}
	r := doRequest(t, c, method, base+path, header, body)
	if r.code == 100 || r.code == 101 {
		// A missing or refused token is the one error answered with
		// its HTTP status.
		require.Equal(t, http.StatusUnauthorized, r.status, "%s", r.raw)
		require.Contains(t, r.header.Get("WWW-Authenticate"), "Bearer")
	} else {
		require.Equal(t, http.StatusOK, r.status, "API answers are HTTP 200: %s", r.raw)
	}
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	return r
}

// ok checks that r succeeded.
func ok(t *testing.T, r response) response {
	t.Helper()
	require.Equal(t, 0, r.code, "%s", r.raw)
	require.Equal(t, "ok", r.message)
	return r
}

// failed checks that r failed with code, no data, and a message holding
// inMsg.
func failed(t *testing.T, r response, code int, inMsg string) {
	t.Helper()
	require.Equal(t, code, r.code, "%s", r.raw)
	require.Contains(t, r.message, inMsg)
	require.Nil(t, r.data)
}

// sdkGroup is IM-iOS-SDK's IMGroup with our joinPolicy.
type sdkGroup struct {
	GroupID      string `json:"groupID"`
	GroupName    string `json:"groupName"`
	FaceURL      string `json:"faceURL"`
	OwnerUserID  string `json:"ownerUserID"`
	MemberCount  int    `json:"memberCount"`
	Introduction string `json:"introduction"`
	Notification string `json:"notification"`
	Extra        string `json:"extra"`
	CreateTime   int64  `json:"createTime"`
	UpdateTime   int64  `json:"updateTime"`
	Status       int    `json:"status"`
	JoinPolicy   int    `json:"joinPolicy"`
	History      int    `json:"history"`
	MuteAll      bool   `json:"muteAll"`
}

var sdkGroupKeys = []string{
	"groupID", "groupName", "faceURL", "ownerUserID", "memberCount", "introduction",
	"notification", "extra", "createTime", "updateTime", "status", "joinPolicy", "history",
	"muteAll",
}

// decodeGroup decodes an IMGroup, checking that it has every key the SDK
// reads, with the JSON type it reads, and no others.
func decodeGroup(t *testing.T, raw json.RawMessage) sdkGroup {
	t.Helper()
	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &fields), "%s", raw)
	require.ElementsMatch(t, sdkGroupKeys, slices.Collect(func(yield func(string) bool) {
		for k := range fields {
			if !yield(k) {
				return
			}
		}
	}), "%s", raw)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var g sdkGroup
	require.NoError(t, dec.Decode(&g), "%s", raw)
	return g
}

func decodeGroups(t *testing.T, raw json.RawMessage) []sdkGroup {
	t.Helper()
	require.NotNil(t, raw, "a list is sent even when empty")
	var items []json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &items), "%s", raw)
	require.NotNil(t, items, "an empty list is [], never null")
	out := make([]sdkGroup, len(items))
	for i, it := range items {
		out[i] = decodeGroup(t, it)
	}
	return out
}

type sdkMember struct {
	UserID     string `json:"userID"`
	Role       string `json:"role"`
	JoinTime   int64  `json:"joinTime"`
	MutedUntil int64  `json:"mutedUntil"`
}

func decodeMembers(t *testing.T, raw json.RawMessage) []sdkMember {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var out []sdkMember
	require.NoError(t, dec.Decode(&out), "%s", raw)
	require.NotNil(t, out, "an empty list is [], never null")
	return out
}

func (e *groupEnv) createGroup(t *testing.T, owner string, req map[string]any) sdkGroup {
	t.Helper()
	r := ok(t, e.call(t, owner, http.MethodPost, "/api/group/create", jsonBody(t, req)))
	return decodeGroup(t, r.data)
}

func (e *groupEnv) members(t *testing.T, user, gid string) []sdkMember {
	t.Helper()
	r := ok(t, e.call(t, user, http.MethodGet, "/api/group/"+gid+"/members", ""))
	return decodeMembers(t, r.data)
}

func (e *groupEnv) userGroups(t *testing.T, user string) []string {
	t.Helper()
	ids, err := e.store.UserGroups(context.Background(), user)
	require.NoError(t, err)
	return ids
}

func TestGroupLifecycle(t *testing.T) {
	e := setupGroups(t, nil, nil)
	ctx := context.Background()

	before := time.Now().UnixMilli()
	g := e.createGroup(t, alice, map[string]any{
		"groupName":     "team",
		"faceURL":       "https://example.com/team.png",
		"introduction":  "we ship",
		"memberUserIDs": []string{bob, carol, alice, bob},
		"joinPolicy":    0,
	})
	after := time.Now().UnixMilli()
	require.NotEmpty(t, g.GroupID)
	require.Equal(t, "team", g.GroupName)
	require.Equal(t, "https://example.com/team.png", g.FaceURL)
	require.Equal(t, alice, g.OwnerUserID)
	require.Equal(t, 3, g.MemberCount, "the owner and repeats count once")
	require.Equal(t, "we ship", g.Introduction)
	require.Empty(t, g.Notification)
	require.Empty(t, g.Extra)
	require.GreaterOrEqual(t, g.CreateTime, before)
	require.LessOrEqual(t, g.CreateTime, after)
	require.Equal(t, g.CreateTime, g.UpdateTime)
	require.Zero(t, g.Status)
	require.Zero(t, g.JoinPolicy, "open, as asked")
	stored, err := e.store.Group(ctx, g.GroupID)
	require.NoError(t, err)
	require.Equal(t, "team", stored.Name)
	require.Equal(t, 3, stored.MemberCount)

	// Anyone may look an open group up; the SDK's GET carries a JSON body.
	r := ok(t, e.call(t, dave, http.MethodGet, "/api/group/"+g.GroupID, `{"groupID":"`+g.GroupID+`"}`))
	require.Equal(t, g, decodeGroup(t, r.data))
	r = ok(t, e.call(t, dave, http.MethodGet, "/api/group/"+g.GroupID, ""))
	require.Equal(t, g, decodeGroup(t, r.data))

	require.Equal(t, []sdkMember{
		{UserID: alice, Role: "owner", JoinTime: g.CreateTime},
		{UserID: bob, Role: "member", JoinTime: g.CreateTime},
		{UserID: carol, Role: "member", JoinTime: g.CreateTime},
	}, e.members(t, bob, g.GroupID))

	r = ok(t, e.call(t, bob, http.MethodGet, "/api/group/joined", "{}"))
	require.Equal(t, []sdkGroup{g}, decodeGroups(t, r.data))
	r = ok(t, e.call(t, dave, http.MethodGet, "/api/group/joined", ""))
	require.Equal(t, "[]", string(r.data))

	// join sends no parameters: an empty body.
	beforeJoin := time.Now().UnixMilli()
	r = ok(t, e.call(t, dave, http.MethodPost, "/api/group/"+g.GroupID+"/join", ""))
	afterJoin := time.Now().UnixMilli()
	joined := decodeGroup(t, r.data)
	require.Equal(t, g.GroupID, joined.GroupID)
	require.Equal(t, 4, joined.MemberCount)
	// Joining again changes nothing.
	r = ok(t, e.call(t, dave, http.MethodPost, "/api/group/"+g.GroupID+"/join", ""))
	require.Equal(t, 4, decodeGroup(t, r.data).MemberCount)

	r = ok(t, e.call(t, alice, http.MethodPost, "/api/group/"+g.GroupID+"/role", `{"userID":"bob","role":"admin"}`))
	require.Nil(t, r.data, "calls that return nothing send no data")
	require.Equal(t, "admin", e.members(t, alice, g.GroupID)[1].Role)

	// An admin edits the group: fields left out stay as they are.
	r = ok(t, e.call(t, bob, http.MethodPost, "/api/group/update", jsonBody(t, map[string]any{
		"groupID":      g.GroupID,
		"groupName":    "team two",
		"notification": "read the rules",
		"extra":        `{"color":"blue"}`,
		"joinPolicy":   1,
	})))
	u := decodeGroup(t, r.data)
	require.Equal(t, g.GroupID, u.GroupID)
	require.Equal(t, "team two", u.GroupName)
	require.Equal(t, "read the rules", u.Notification)
	require.Equal(t, `{"color":"blue"}`, u.Extra)
	require.Equal(t, 1, u.JoinPolicy)
	require.Equal(t, g.FaceURL, u.FaceURL)
	require.Equal(t, g.Introduction, u.Introduction)
	require.Equal(t, alice, u.OwnerUserID)
	require.Equal(t, 4, u.MemberCount)
	require.Equal(t, g.CreateTime, u.CreateTime)
	require.GreaterOrEqual(t, u.UpdateTime, g.UpdateTime)
	r = ok(t, e.call(t, dave, http.MethodGet, "/api/group/"+g.GroupID, ""))
	require.Equal(t, u, decodeGroup(t, r.data))
	// Invite-only now: to a non-member it does not exist.
	failed(t, e.call(t, erin, http.MethodGet, "/api/group/"+g.GroupID, ""), 202, "group does not exist")

	// An admin invites to the now invite-only group, and removes.
	r = ok(t, e.call(t, bob, http.MethodPost, "/api/group/"+g.GroupID+"/invite", `{"userIDs":["erin","carol"]}`))
	require.Nil(t, r.data)
	require.Equal(t, []string{g.GroupID}, e.userGroups(t, erin))
	r = ok(t, e.call(t, bob, http.MethodPost, "/api/group/"+g.GroupID+"/kick", `{"userIDs":["erin"]}`))
	require.Nil(t, r.data)
	require.Empty(t, e.userGroups(t, erin))

	r = ok(t, e.call(t, carol, http.MethodPost, "/api/group/"+g.GroupID+"/leave", ""))
	require.Nil(t, r.data)
	r = ok(t, e.call(t, carol, http.MethodGet, "/api/group/joined", ""))
	require.Equal(t, "[]", string(r.data))
	members := e.members(t, dave, g.GroupID)
	require.Len(t, members, 3)
	require.Equal(t, []sdkMember{
		{UserID: alice, Role: "owner", JoinTime: g.CreateTime},
		{UserID: bob, Role: "admin", JoinTime: g.CreateTime},
	}, members[:2])
	require.Equal(t, dave, members[2].UserID)
	require.Equal(t, "member", members[2].Role)
	require.GreaterOrEqual(t, members[2].JoinTime, beforeJoin)
	require.LessOrEqual(t, members[2].JoinTime, afterJoin)

	r = ok(t, e.call(t, alice, http.MethodPost, "/api/group/"+g.GroupID+"/dismiss", ""))
	require.Nil(t, r.data)
	_, err = e.store.Group(ctx, g.GroupID)
	require.ErrorIs(t, err, im.ErrNotFound)
	failed(t, e.call(t, alice, http.MethodGet, "/api/group/"+g.GroupID, ""), 202, "group does not exist")
	r = ok(t, e.call(t, bob, http.MethodGet, "/api/group/joined", ""))
	require.Equal(t, "[]", string(r.data))
}

// Create and update take our extension fields too.
func TestGroupExtensions(t *testing.T) {
	e := setupGroups(t, nil, nil)
	g := e.createGroup(t, alice, map[string]any{"groupName": "club", "notification": "hello", "extra": "x", "joinPolicy": 1})
	require.Equal(t, "hello", g.Notification)
	require.Equal(t, "x", g.Extra)
	require.Equal(t, 1, g.JoinPolicy)
	require.Equal(t, 1, g.MemberCount)
	failed(t, e.call(t, bob, http.MethodPost, "/api/group/"+g.GroupID+"/join", ""), 202, "group does not exist")

	// null leaves a field as it is, "" clears it.
	r := ok(t, e.call(t, alice, http.MethodPost, "/api/group/update", `{"groupID":"`+g.GroupID+`","groupName":null,"extra":"","joinPolicy":0}`))
	u := decodeGroup(t, r.data)
	require.Equal(t, "club", u.GroupName)
	require.Empty(t, u.Extra)
	require.Zero(t, u.JoinPolicy)
	ok(t, e.call(t, bob, http.MethodPost, "/api/group/"+g.GroupID+"/join", ""))

	// Several groups come oldest first.
	g2 := e.createGroup(t, bob, map[string]any{"groupName": "second"})
	r = ok(t, e.call(t, bob, http.MethodGet, "/api/group/joined", ""))
	got := decodeGroups(t, r.data)
	require.Len(t, got, 2)
	require.Equal(t, g.GroupID, got[0].GroupID)
	require.Equal(t, 2, got[0].MemberCount)
	require.Equal(t, g2, got[1])
}

func TestGroupAuth(t *testing.T) {
	e := setupGroups(t, nil, nil)
	otherKey, err := auth.NewJWT(auth.JWTConfig{Secret: []byte("another-secret-eGj0Fd5Hy3Rc6Bn1Zw8")})
	require.NoError(t, err)
	forged, _, err := otherKey.Issue(alice)
	require.NoError(t, err)
	old, err := auth.NewJWT(auth.JWTConfig{Secret: groupSecret, Lifetime: time.Hour, Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
	require.NoError(t, err)
	expired, _, err := old.Issue(alice)
	require.NoError(t, err)
	valid := e.token(t, alice)
	create := `{"groupName":"team"}`

	tests := []struct {
		name, authorization string
		code                int
		inMsg               string
	}{
		{"no header", "", 100, "Bearer"},
		{"basic", "Basic YWxpY2U6c2VjcmV0", 100, "Bearer"},
		{"scheme only", "Bearer", 100, "Bearer"},
		{"no token", "Bearer   ", 100, "Bearer"},
		{"token without scheme", valid, 100, "Bearer"},
		{"garbage", "Bearer not-a-token", 100, "invalid token"},
		{"signed with another key", "Bearer " + forged, 100, "invalid token"},
		{"expired", "Bearer " + expired, 101, "token expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failed(t, e.callWithAuth(t, tt.authorization, http.MethodPost, "/api/group/create", create), tt.code, tt.inMsg)
			require.Empty(t, e.userGroups(t, alice), "nothing stored")
		})
	}
	require.NotContains(t, e.logs.String(), valid)
	require.NotContains(t, e.logs.String(), expired)

	// The scheme is case-insensitive.
	ok(t, e.callWithAuth(t, "bearer "+valid, http.MethodPost, "/api/group/create", create))

	// Every group route wants a token, before it looks at anything else.
	for _, route := range []struct{ method, path string }{
		{http.MethodPost, "/api/group/create"},
		{http.MethodPost, "/api/group/update"},
		{http.MethodGet, "/api/group/joined"},
		{http.MethodGet, "/api/group/g1"},
		{http.MethodGet, "/api/group/g1/members"},
		{http.MethodPost, "/api/group/g1/join"},
		{http.MethodPost, "/api/group/g1/leave"},
		{http.MethodPost, "/api/group/g1/dismiss"},
		{http.MethodPost, "/api/group/g1/invite"},
		{http.MethodPost, "/api/group/g1/kick"},
		{http.MethodPost, "/api/group/g1/role"},
	} {
		failed(t, e.callWithAuth(t, "", route.method, route.path, "not even JSON"), 100, "Bearer")
		failed(t, e.callWithAuth(t, "Bearer "+expired, route.method, route.path, "not even JSON"), 101, "expired")
	}
}

// The token login hands out is the one the group routes take.
func TestGroupWithLoginToken(t *testing.T) {
	e := setupGroups(t, nil, nil)
	ok(t, e.post(t, "/api/auth/register", `{"username":"alice","password":"correct horse"}`))
	r := ok(t, e.post(t, "/api/auth/login", `{"username":"alice","password":"correct horse","platform":"iOS"}`))
	var login loggedIn
	require.NoError(t, json.Unmarshal(r.data, &login))
	r = ok(t, e.callWithAuth(t, "Bearer "+login.Token, http.MethodPost, "/api/group/create", `{"groupName":"mine"}`))
	require.Equal(t, login.UserID, decodeGroup(t, r.data).OwnerUserID)
}

func TestGroupPermissions(t *testing.T) {
	e := setupGroups(t, nil, nil)
	open := e.createGroup(t, alice, map[string]any{"groupName": "open", "memberUserIDs": []string{bob, carol}, "joinPolicy": 0})
	closed := e.createGroup(t, alice, map[string]any{"groupName": "closed", "memberUserIDs": []string{bob, carol}, "joinPolicy": 1})
	ok(t, e.call(t, alice, http.MethodPost, "/api/group/"+open.GroupID+"/role", `{"userID":"bob","role":"admin"}`))
	ok(t, e.call(t, alice, http.MethodPost, "/api/group/"+closed.GroupID+"/role", `{"userID":"bob","role":"admin"}`))
	// Now each group has alice (owner), bob (admin) and carol (member).

	tests := []struct {
		name, user, method, path, body, inMsg string
	}{
		{"admin dismisses", bob, http.MethodPost, "/api/group/" + open.GroupID + "/dismiss", "", "only the owner"},
		{"member dismisses", carol, http.MethodPost, "/api/group/" + open.GroupID + "/dismiss", "", "only the owner"},
		{"member kicks", carol, http.MethodPost, "/api/group/" + open.GroupID + "/kick", `{"userIDs":["bob"]}`, "only admins"},
		{"admin kicks admin", bob, http.MethodPost, "/api/group/" + open.GroupID + "/kick", `{"userIDs":["carol","alice"]}`, "rank"},
		{"non-member kicks", dave, http.MethodPost, "/api/group/" + open.GroupID + "/kick", `{"userIDs":["carol"]}`, "only admins"},
		{"member invites to invite-only", carol, http.MethodPost, "/api/group/" + closed.GroupID + "/invite", `{"userIDs":["dave"]}`, "only admins invite"},
		{"non-member invites", dave, http.MethodPost, "/api/group/" + open.GroupID + "/invite", `{"userIDs":["erin"]}`, "not a member"},
		{"owner leaves", alice, http.MethodPost, "/api/group/" + open.GroupID + "/leave", "", "owner cannot leave"},
		{"non-member leaves", dave, http.MethodPost, "/api/group/" + open.GroupID + "/leave", "", "not a member"},
		{"member updates", carol, http.MethodPost, "/api/group/update", `{"groupID":"` + open.GroupID + `","groupName":"mine"}`, "only admins edit"},
		{"admin sets role", bob, http.MethodPost, "/api/group/" + open.GroupID + "/role", `{"userID":"carol","role":"admin"}`, "only the owner"},
		{"non-member lists members", dave, http.MethodGet, "/api/group/" + open.GroupID + "/members", "", "not a member"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failed(t, e.call(t, tt.user, tt.method, tt.path, tt.body), 102, tt.inMsg)
		})
	}
	// An invite-only group does not exist for a non-member.
	failed(t, e.call(t, dave, http.MethodPost, "/api/group/"+closed.GroupID+"/join", ""), 202, "group does not exist")

	// Nothing changed.
	for _, g := range []sdkGroup{open, closed} {
		r := ok(t, e.call(t, alice, http.MethodGet, "/api/group/"+g.GroupID, ""))
		now := decodeGroup(t, r.data)
		require.Equal(t, g.GroupName, now.GroupName)
		require.Equal(t, 3, now.MemberCount)
		members := e.members(t, alice, g.GroupID)
		require.Equal(t, []string{"owner", "admin", "member"}, []string{members[0].Role, members[1].Role, members[2].Role})
	}
	require.Empty(t, e.userGroups(t, dave))

	// The owner hands a group over; the new owner shows in it.
	ok(t, e.call(t, alice, http.MethodPost, "/api/group/"+open.GroupID+"/role", `{"userID":"bob","role":"owner"}`))
	r := ok(t, e.call(t, bob, http.MethodGet, "/api/group/"+open.GroupID, ""))
	require.Equal(t, bob, decodeGroup(t, r.data).OwnerUserID)
	members := e.members(t, bob, open.GroupID)
	require.Equal(t, []string{"owner", "admin", "member"}, []string{members[0].Role, members[1].Role, members[2].Role})
	require.Equal(t, []string{bob, alice}, []string{members[0].UserID, members[1].UserID})
}

func TestGroupNotFound(t *testing.T) {
	e := setupGroups(t, func(c *im.Config, a *auth.Accounts) { c.Users = a }, nil)
	bobAcc, err := e.accounts.Register(context.Background(), "bobby", "battery staple", "")
	require.NoError(t, err)
	g := e.createGroup(t, alice, map[string]any{"groupName": "team", "memberUserIDs": []string{bobAcc.UserID}})

	for _, tt := range []struct{ name, method, path, body string }{
		{"info", http.MethodGet, "/api/group/nosuch", ""},
		{"info, id not even valid", http.MethodGet, "/api/group/%20", ""},
		{"members", http.MethodGet, "/api/group/nosuch/members", ""},
		{"join", http.MethodPost, "/api/group/nosuch/join", ""},
		{"leave", http.MethodPost, "/api/group/nosuch/leave", ""},
		{"dismiss", http.MethodPost, "/api/group/nosuch/dismiss", ""},
		{"invite", http.MethodPost, "/api/group/nosuch/invite", `{"userIDs":["bob"]}`},
		{"kick", http.MethodPost, "/api/group/nosuch/kick", `{"userIDs":["bob"]}`},
		{"role", http.MethodPost, "/api/group/nosuch/role", `{"userID":"bob","role":"admin"}`},
		{"update", http.MethodPost, "/api/group/update", `{"groupID":"nosuch","groupName":"x"}`},
		{"create is no id", http.MethodGet, "/api/group/create", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			failed(t, e.call(t, alice, tt.method, tt.path, tt.body), 202, "group does not exist")
		})
	}

	// With a user directory, users must exist.
	failed(t, e.call(t, alice, http.MethodPost, "/api/group/"+g.GroupID+"/invite", `{"userIDs":["ghost"]}`), 103, "ghost")
	failed(t, e.call(t, alice, http.MethodPost, "/api/group/create", `{"groupName":"x","memberUserIDs":["ghost"]}`), 103, "does not exist")
	require.Equal(t, []string{g.GroupID}, e.userGroups(t, alice), "nothing more stored")
	require.Empty(t, e.userGroups(t, "ghost"))
}

func TestGroupBadInput(t *testing.T) {
	e := setupGroups(t, func(c *im.Config, _ *auth.Accounts) { c.MaxGroupMembers = 3 }, func(o *httpapi.Options) { o.MaxBodyBytes = 1024 })
	tests := []struct {
		name, body, inMsg string
	}{
		{"empty body", "", "empty"},
		{"not JSON", "groupName=team", "JSON"},
		{"truncated", `{"groupName":"team"`, "JSON"},
		{"array", `[{"groupName":"team"}]`, "object"},
		{"two objects", `{"groupName":"team"}{}`, "single"},
		{"missing groupName", `{"faceURL":"x"}`, "group name"},
		{"empty groupName", `{"groupName":""}`, "group name"},
		{"groupName a number", `{"groupName":5}`, "groupName must be a string"},
		{"groupName too long", jsonBody(t, map[string]string{"groupName": strings.Repeat("n", im.MaxGroupNameLen+1)}), "group name"},
		{"groupName with a control character", `{"groupName":"te\u0007am"}`, "group name"},
		{"memberUserIDs a string", `{"groupName":"team","memberUserIDs":"bob"}`, "memberUserIDs must be a list"},
		{"empty member id", `{"groupName":"team","memberUserIDs":["bob",""]}`, "not a valid user id"},
		{"member id with a newline", `{"groupName":"team","memberUserIDs":["bo\nb"]}`, "not a valid user id"},
		{"member id too long", jsonBody(t, map[string]any{"groupName": "team", "memberUserIDs": []string{strings.Repeat("u", im.MaxIDLength+1)}}), "not a valid user id"},
		{"unknown joinPolicy", `{"groupName":"team","joinPolicy":7}`, "join policy"},
		{"joinPolicy a string", `{"groupName":"team","joinPolicy":"open"}`, "joinPolicy must be a number"},
		{"too many members", `{"groupName":"team","memberUserIDs":["bob","carol","dave"]}`, "at most 3 members"},
		{"body over MaxBodyBytes", jsonBody(t, map[string]string{"groupName": "team", "introduction": strings.Repeat("i", 2000)}), "1024 bytes"},
	}
	for _, tt := range tests {
		t.Run("create/"+tt.name, func(t *testing.T) {
			failed(t, e.call(t, alice, http.MethodPost, "/api/group/create", tt.body), 2, tt.inMsg)
			require.Empty(t, e.userGroups(t, alice), "nothing stored")
			require.Empty(t, e.userGroups(t, bob), "nothing stored")
		})
	}

	g := e.createGroup(t, alice, map[string]any{"groupName": "team", "memberUserIDs": []string{bob}})
	id := g.GroupID
	for _, tt := range []struct{ name, path, body, inMsg string }{
		{"update without groupID", "/api/group/update", `{"groupName":"x"}`, "groupID is required"},
		{"update empty body", "/api/group/update", ``, "empty"},
		{"update name too long", "/api/group/update", jsonBody(t, map[string]string{"groupID": id, "groupName": strings.Repeat("n", im.MaxGroupNameLen+1)}), "group name"},
		{"update empty name", "/api/group/update", `{"groupID":"` + id + `","groupName":""}`, "group name"},
		{"update bad joinPolicy", "/api/group/update", `{"groupID":"` + id + `","joinPolicy":-1}`, "join policy"},
		{"invite empty body", "/api/group/" + id + "/invite", ``, "empty"},
		{"invite nobody", "/api/group/" + id + "/invite", `{"userIDs":[]}`, "at least one"},
		{"invite bad id", "/api/group/" + id + "/invite", `{"userIDs":["carol",""]}`, "userIDs[1]"},
		{"invite past the limit", "/api/group/" + id + "/invite", `{"userIDs":["carol","dave"]}`, "at most 3 members"},
		{"kick nobody", "/api/group/" + id + "/kick", `{}`, "at least one"},
		{"kick bad id", "/api/group/" + id + "/kick", `{"userIDs":["b\u0000b"]}`, "userIDs[0]"},
		{"kick self", "/api/group/" + id + "/kick", `{"userIDs":["alice"]}`, "leave"},
		{"role unknown", "/api/group/" + id + "/role", `{"userID":"bob","role":"boss"}`, "role must be"},
		{"role as a number", "/api/group/" + id + "/role", `{"userID":"bob","role":2}`, "role must be a string"},
		{"role without user", "/api/group/" + id + "/role", `{"role":"admin"}`, "userID"},
		{"join with a body that is not JSON", "/api/group/" + id + "/join", `join please`, "JSON"},
		{"leave with an array", "/api/group/" + id + "/leave", `[]`, "object"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			failed(t, e.call(t, alice, http.MethodPost, tt.path, tt.body), 2, tt.inMsg)
		})
	}
	r := ok(t, e.call(t, alice, http.MethodGet, "/api/group/"+id, ""))
	require.Equal(t, g, decodeGroup(t, r.data), "the group is as it was")
	require.Equal(t, []sdkMember{
		{UserID: alice, Role: "owner", JoinTime: g.CreateTime},
		{UserID: bob, Role: "member", JoinTime: g.CreateTime},
	}, e.members(t, alice, id))
	failed(t, e.call(t, alice, http.MethodGet, "/api/group/"+id, "{"), 2, "JSON")
}

func TestGroupRoutes(t *testing.T) {
	e := setupGroups(t, nil, nil)
	without := setup(t, newTestStore(t), 0, nil) // Options.Server not set
	tests := []struct {
		name         string
		env          *testEnv
		method, path string
		status, code int
		allow        string
	}{
		{"create without Server", without, http.MethodPost, "/api/group/create", 404, 404, ""},
		{"info without Server", without, http.MethodGet, "/api/group/g1", 404, 404, ""},
		{"join without Server", without, http.MethodPost, "/api/group/g1/join", 404, 404, ""},
		{"create with GET is an id", e.testEnv, http.MethodGet, "/api/group/create", 401, 100, ""},
		{"create with PUT", e.testEnv, http.MethodPut, "/api/group/create", 405, 405, "POST"},
		{"info with POST", e.testEnv, http.MethodPost, "/api/group/g1", 405, 405, "GET, HEAD"},
		{"join with GET", e.testEnv, http.MethodGet, "/api/group/g1/join", 405, 405, "POST"},
		{"members with POST", e.testEnv, http.MethodPost, "/api/group/g1/members", 405, 405, "GET, HEAD"},
		{"joined with DELETE", e.testEnv, http.MethodDelete, "/api/group/joined", 405, 405, "GET, HEAD"},
		{"no id", e.testEnv, http.MethodGet, "/api/group/", 404, 404, ""},
		{"unknown action", e.testEnv, http.MethodPost, "/api/group/g1/transfer", 404, 404, ""},
		{"login still there", e.testEnv, http.MethodGet, "/api/auth/login", 405, 405, "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.env.do(t, tt.method, tt.path, "application/json", `{}`)
			require.Equal(t, tt.status, r.status)
			require.Equal(t, tt.code, r.code)
			require.Nil(t, r.data)
			require.Equal(t, tt.allow, r.header.Get("Allow"))
		})
	}
}

// nextMessage waits for the next message pushed to c.
func nextMessage(t *testing.T, c *client.Client) *imv1.MessageInfo {
	t.Helper()
	select {
	case p := <-c.Pushes():
		pm, isMsg := p.Message.(*imv1.PushMessage)
		require.True(t, isMsg, "unexpected push %v", p.Command)
		return pm.Message
	case <-time.After(10 * time.Second):
		t.Fatal("no push within 10 s")
	}
	return nil
}

// A group made over HTTP, as the SDK makes it, is one its members hear of
// and chat in over their sockets.
func TestGroupCreatedOverHTTPReachesSockets(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	base := srv.HTTPURL
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()

	// The SDK's flow: register, log in, use the token on the group routes.
	ids := map[string]string{}
	var aliceToken string
	for _, u := range []string{"alice", "bobby", "carol"} {
		ok(t, doRequest(t, hc, http.MethodPost, base+"/api/auth/register", jsonHeader, jsonBody(t, map[string]string{"username": u, "password": "secret-" + u})))
		r := ok(t, doRequest(t, hc, http.MethodPost, base+"/api/auth/login", jsonHeader, jsonBody(t, map[string]string{"username": u, "password": "secret-" + u, "platform": "iOS"})))
		var login loggedIn
		require.NoError(t, json.Unmarshal(r.data, &login))
		ids[u] = login.UserID
		if u == "alice" {
			aliceToken = login.Token
		}
	}
	b := srv.Dial(t, client.TransportTCP, ids["bobby"])
	c := srv.Dial(t, client.TransportWebSocket, ids["carol"])
	// Alice may add them because they have written to her.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, cl := range []*client.Client{b, c} {
		_, err := cl.Send(ctx, client.Outgoing{ReceiverID: ids["alice"], Type: im.TextMessage, Content: []byte("hi alice")})
		require.NoError(t, err)
	}

	r := ok(t, callAPI(t, hc, base, "Bearer "+aliceToken, http.MethodPost, "/api/group/create",
		jsonBody(t, map[string]any{"groupName": "team", "faceURL": "", "introduction": "", "memberUserIDs": []string{ids["bobby"], ids["carol"]}})))
	g := decodeGroup(t, r.data)
	conv := "group_" + g.GroupID

	for _, cl := range []*client.Client{b, c} {
		m := nextMessage(t, cl)
		require.Equal(t, conv, m.ConversationId)
		require.Equal(t, int32(2), m.ConversationType, "the SDK files it as group chat")
		require.Equal(t, g.GroupID, m.GroupId)
		require.Empty(t, m.ReceiverId)
		require.Equal(t, ids["alice"], m.SenderId)
		require.Equal(t, int32(im.NotificationMessage), m.MessageType)
		require.Equal(t, int64(1), m.Seq)
		var n im.GroupNotice
		require.NoError(t, json.Unmarshal(m.Content, &n))
		require.Equal(t, "group_created", n.Type)
		require.Equal(t, g.GroupID, n.GroupID)
		require.Equal(t, ids["alice"], n.Operator)
		require.ElementsMatch(t, []string{ids["bobby"], ids["carol"]}, n.UserIDs)
	}

	ack, err := b.Send(ctx, client.Outgoing{ConversationID: conv, Type: im.TextMessage, Content: []byte("hello team")})
	require.NoError(t, err)
	require.Equal(t, int64(2), ack.Seq)
	m := nextMessage(t, c)
	require.Equal(t, "hello team", string(m.Content))
	require.Equal(t, conv, m.ConversationId)
	require.Equal(t, int32(2), m.ConversationType)
	require.Equal(t, g.GroupID, m.GroupId)
	require.Equal(t, ids["bobby"], m.SenderId)
	require.Equal(t, int64(2), m.Seq)
}

// The history setting: left out, as the SDK does, new members read from
// their joining on (0); 1 shows them everything. Update changes it; a
// value that is no setting changes nothing.
func TestGroupHistorySetting(t *testing.T) {
	e := setupGroups(t, nil, nil)
	sdk := decodeGroup(t, ok(t, e.call(t, alice, http.MethodPost, "/api/group/create", `{"groupName":"team","memberUserIDs":["bob"]}`)).data)
	require.Zero(t, sdk.History)
	null := decodeGroup(t, ok(t, e.call(t, alice, http.MethodPost, "/api/group/create", `{"groupName":"x","history":null}`)).data)
	require.Zero(t, null.History)
	full := e.createGroup(t, alice, map[string]any{"groupName": "open book", "history": 1})
	require.Equal(t, 1, full.History)
	require.Equal(t, full, decodeGroup(t, ok(t, e.call(t, alice, http.MethodGet, "/api/group/"+full.GroupID, "")).data))

	u := decodeGroup(t, ok(t, e.call(t, alice, http.MethodPost, "/api/group/update", `{"groupID":"`+sdk.GroupID+`","history":1}`)).data)
	require.Equal(t, 1, u.History)
	require.Equal(t, 1, decodeGroup(t, ok(t, e.call(t, bob, http.MethodGet, "/api/group/"+sdk.GroupID, "")).data).History)
	u = decodeGroup(t, ok(t, e.call(t, alice, http.MethodPost, "/api/group/update", `{"groupID":"`+sdk.GroupID+`","groupName":"renamed"}`)).data)
	require.Equal(t, 1, u.History, "left out, it stays")
	failed(t, e.call(t, bob, http.MethodPost, "/api/group/update", `{"groupID":"`+sdk.GroupID+`","history":0}`), 102, "only admins edit")

	for _, body := range []string{`{"groupID":"` + sdk.GroupID + `","history":2}`, `{"groupID":"` + sdk.GroupID + `","history":"full"}`, `{"groupID":"` + sdk.GroupID + `","history":-1}`} {
		r := e.call(t, alice, http.MethodPost, "/api/group/update", body)
		require.Equal(t, 2, r.code, "%s: %s", body, r.raw)
		require.Nil(t, r.data)
	}
	failed(t, e.call(t, alice, http.MethodPost, "/api/group/create", `{"groupName":"x","history":7}`), 2, "history")
	now := decodeGroup(t, ok(t, e.call(t, alice, http.MethodGet, "/api/group/"+sdk.GroupID, "")).data)
	require.Equal(t, 1, now.History, "nothing changed")
	require.Equal(t, u.UpdateTime, now.UpdateTime, "nothing changed")
}

// anyoneAdds is a Config.GroupAddPolicy that lets anyone add anyone.
func anyoneAdds(context.Context, string, string) error { return nil }
