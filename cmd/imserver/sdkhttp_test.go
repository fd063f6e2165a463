package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/store/sqlstore/sqltest"
)

// TestSDKHTTPWalk runs every row of IM-iOS-SDK's HTTP table, except the
// upload, against the standalone server on each store, with requests shaped
// as the SDK's IMHTTPManager sends them, and decodes every answer by the
// rules of the SDK's Codable types: an answer the SDK could not decode, or
// would not take as a success, fails the row that got it.
func TestSDKHTTPWalk(t *testing.T) {
	for _, tc := range []struct {
		store string
		dsn   func(testing.TB) string
	}{
		{"bolt", nil}, // the default
		{"sqlite", func(testing.TB) string { return "" }},
		{"postgres", sqltest.Postgres},
		{"mysql", sqltest.MySQL},
	} {
		t.Run(tc.store, func(t *testing.T) {
			args := []string{"-bcrypt-cost", "10"}
			if tc.dsn != nil {
				args = append(args, "-store", tc.store)
				if dsn := tc.dsn(t); dsn != "" {
					args = append(args, "-dsn", dsn)
				}
			}
			l, _ := start(t, t.TempDir(), new(syncBuffer), args...)
			walkSDKHTTP(t, l)
		})
	}
}

// jsonKind is a JSON type as one of the SDK's Codable properties takes it.
type jsonKind int

const (
	kString jsonKind = iota // Swift String
	kInt                    // Swift Int or Int64: a JSON number without fraction or exponent
	kBool                   // Swift Bool: true or false, never 0 or 1
	kUser                   // a nested IMUser
)

// sdkModel is one of the SDK's model classes as its init(from:) decodes
// it: the required keys (decode) must be there, not null, of their type;
// the others (decodeIfPresent) may be absent or null, or else must be of
// their type. Keys it does not know are ignored, as Swift does.
type sdkModel struct {
	name     string
	required []string
	fields   map[string]jsonKind
}

// The models of Core/Models/IMModels.swift, and the login answer as the
// SDK's demo app reads it.
var (
	imUserModel = sdkModel{"IMUser", []string{"userID"}, map[string]jsonKind{
		"userID": kString, "nickname": kString, "avatar": kString, "phone": kString,
		"email": kString, "gender": kInt, "birth": kInt, "signature": kString,
		"extra": kString, "createTime": kInt, "updateTime": kInt,
	}}
	imGroupModel = sdkModel{"IMGroup", []string{"groupID"}, map[string]jsonKind{
		"groupID": kString, "groupName": kString, "faceURL": kString, "ownerUserID": kString,
		"memberCount": kInt, "introduction": kString, "notification": kString,
		"extra": kString, "createTime": kInt, "updateTime": kInt, "status": kInt,
	}}
	imFriendModel = sdkModel{"IMFriend", []string{"friendUserID"}, map[string]jsonKind{
		"friendUserID": kString, "ownerUserID": kString, "remark": kString,
		"createTime": kInt, "addSource": kInt, "operatorUserID": kString,
		"extra": kString, "user": kUser,
	}}
	loginModel = sdkModel{"login", []string{"token", "userID"}, map[string]jsonKind{
		"token": kString, "userID": kString,
	}}
	registerModel = sdkModel{"register", []string{"userID"}, map[string]jsonKind{
		"userID": kString,
	}}
)

// sdkWant is what a call's responseType makes of the envelope's data.
type sdkWant struct {
	none    bool      // String/Void-like: data null or absent
	object  *sdkModel // a model, not null: the SDK needs it to succeed
	array   *sdkModel // [Model], not null
	boolean bool      // Bool, not null
}

var (
	wantNone = sdkWant{none: true}
	wantBool = sdkWant{boolean: true}
)

func wantObject(m sdkModel) sdkWant { return sdkWant{object: &m} }
func wantArray(m sdkModel) sdkWant  { return sdkWant{array: &m} }

// sdkClient sends requests as IMHTTPManager does: Content-Type and Accept
// application/json on every request, the parameters JSON-encoded in the
// body whatever the method (Alamofire's JSONEncoding, which sends no body
// when there are no parameters), and after login the bearer token.
type sdkClient struct {
	t     *testing.T
	base  string
	token string
}

func (c sdkClient) send(row, method, path string, params any, authz string) (*http.Response, []byte) {
	c.t.Helper()
	var body io.Reader
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			c.t.Fatalf("%s: encoding the parameters: %v", row, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, body)
	if err != nil {
		c.t.Fatalf("%s: %v", row, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s: %s %s: %v", row, method, path, err)
	}
	defer rsp.Body.Close()
	b, err := io.ReadAll(rsp.Body)
	if err != nil {
		c.t.Fatalf("%s: reading the answer: %v", row, err)
	}
	return rsp, b
}

func (c sdkClient) authz() string {
	if c.token == "" {
		return ""
	}
	return "Bearer " + c.token
}

// call runs one row that must succeed as the SDK sees success: Alamofire's
// validate() (HTTP 2xx, a Content-Type matching Accept), an IMResponse that
// decodes with code 0, and data as the call's responseType needs it. It
// returns data, decoded with numbers kept as json.Number.
func (c sdkClient) call(row, method, path string, params any, want sdkWant) any {
	c.t.Helper()
	rsp, body := c.send(row, method, path, params, c.authz())
	if rsp.StatusCode < 200 || rsp.StatusCode > 299 {
		c.t.Fatalf("%s: HTTP %d, the SDK's validate() fails the call: %s", row, rsp.StatusCode, body)
	}
	requireJSONContentType(c.t, row, rsp)
	code, msg, data, present, err := decodeSDKEnvelope(body)
	if err != nil {
		c.t.Fatalf("%s: the SDK cannot decode the answer: %v: %s", row, err, body)
	}
	if code != 0 {
		c.t.Fatalf("%s: code %d (%q), want 0", row, code, msg)
	}
	if err := checkSDKData(data, present, want); err != nil {
		c.t.Fatalf("%s: data: %v: %s", row, err, body)
	}
	return data
}

// refuse runs one row that must fail with code, in a 200 answer the SDK
// decodes (it then reports the message).
func (c sdkClient) refuse(row, method, path string, params any, code int) {
	c.t.Helper()
	rsp, body := c.send(row, method, path, params, c.authz())
	if rsp.StatusCode != http.StatusOK {
		c.t.Fatalf("%s: HTTP %d, want 200: %s", row, rsp.StatusCode, body)
	}
	requireJSONContentType(c.t, row, rsp)
	got, _, _, _, err := decodeSDKEnvelope(body)
	if err != nil {
		c.t.Fatalf("%s: the SDK cannot decode the answer: %v: %s", row, err, body)
	}
	if got != code {
		c.t.Fatalf("%s: code %d, want %d: %s", row, got, code, body)
	}
}

// unauthorized runs one row with a missing or forged token: HTTP 401 with
// WWW-Authenticate and the envelope carrying code 100.
func (c sdkClient) unauthorized(row, method, path string, params any, authz string) {
	c.t.Helper()
	rsp, body := c.send(row, method, path, params, authz)
	if rsp.StatusCode != http.StatusUnauthorized {
		c.t.Fatalf("%s: HTTP %d, want 401: %s", row, rsp.StatusCode, body)
	}
	if !strings.HasPrefix(rsp.Header.Get("WWW-Authenticate"), "Bearer") {
		c.t.Fatalf("%s: WWW-Authenticate %q, want a Bearer challenge", row, rsp.Header.Get("WWW-Authenticate"))
	}
	requireJSONContentType(c.t, row, rsp)
	code, msg, _, present, err := decodeSDKEnvelope(body)
	if err != nil {
		c.t.Fatalf("%s: the envelope does not decode: %v: %s", row, err, body)
	}
	if code != 100 || msg == "" || present {
		c.t.Fatalf("%s: code %d, message %q, data present %v; want 100, a message, no data: %s", row, code, msg, present, body)
	}
}

func requireJSONContentType(t *testing.T, row string, rsp *http.Response) {
	t.Helper()
	mt, _, err := mime.ParseMediaType(rsp.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		t.Fatalf("%s: Content-Type %q, want application/json (the SDK's validate() matches it against Accept)", row, rsp.Header.Get("Content-Type"))
	}
}

// decodeSDKEnvelope decodes body as IMResponse<T>: one JSON object with an
// integer code and a string message; data is returned with present false
// when it is absent or null, which decodes as nil for every T.
func decodeSDKEnvelope(body []byte) (code int, message string, data any, present bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return 0, "", nil, false, err
	}
	if dec.More() {
		return 0, "", nil, false, fmt.Errorf("more than one JSON value")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return 0, "", nil, false, fmt.Errorf("not a JSON object")
	}
	c, ok := obj["code"]
	if !ok {
		return 0, "", nil, false, fmt.Errorf("no code")
	}
	n, err := asInt(c)
	if err != nil {
		return 0, "", nil, false, fmt.Errorf("code: %w", err)
	}
	m, ok := obj["message"].(string)
	if !ok {
		return 0, "", nil, false, fmt.Errorf("message is %T, want a string", obj["message"])
	}
	data, present = obj["data"]
	return int(n), m, data, present && data != nil, nil
}

func asInt(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%T, want an integer", v)
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is not an integer", n)
	}
	return i, nil
}

func checkSDKData(data any, present bool, want sdkWant) error {
	switch {
	case want.none:
		if present {
			return fmt.Errorf("%v, want null or absent", data)
		}
	case !present:
		return fmt.Errorf("null or absent, but the SDK needs a value to succeed")
	case want.object != nil:
		return checkModel(*want.object, data)
	case want.array != nil:
		list, ok := data.([]any)
		if !ok {
			return fmt.Errorf("%T, want an array of %s", data, want.array.name)
		}
		for i, v := range list {
			if err := checkModel(*want.array, v); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
	case want.boolean:
		if _, ok := data.(bool); !ok {
			return fmt.Errorf("%T, want a boolean", data)
		}
	}
	return nil
}

func checkModel(m sdkModel, v any) error {
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: %T, want an object", m.name, v)
	}
	for _, k := range m.required {
		if obj[k] == nil {
			return fmt.Errorf("%s: required key %s is missing or null", m.name, k)
		}
	}
	for k, kind := range m.fields {
		x := obj[k]
		if x == nil {
			continue // decodeIfPresent
		}
		var err error
		switch kind {
		case kString:
			if _, ok := x.(string); !ok {
				err = fmt.Errorf("%T, want a string", x)
			}
		case kInt:
			_, err = asInt(x)
		case kBool:
			if _, ok := x.(bool); !ok {
				err = fmt.Errorf("%T, want a boolean", x)
			}
		case kUser:
			err = checkModel(imUserModel, x)
		}
		if err != nil {
			return fmt.Errorf("%s.%s: %w", m.name, k, err)
		}
	}
	return nil
}

// field returns obj's key k (obj being a decoded model), as a string for
// strings and numbers, for comparing.
func field(t *testing.T, row string, v any, k string) string {
	t.Helper()
	obj, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: data is %T, want an object", row, v)
	}
	switch x := obj[k].(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	t.Fatalf("%s: %s is %v", row, k, obj[k])
	return ""
}

func requireField(t *testing.T, row string, v any, k, want string) {
	t.Helper()
	if got := field(t, row, v, k); got != want {
		t.Fatalf("%s: %s is %q, want %q", row, k, got, want)
	}
}

func requireBool(t *testing.T, row string, v any, want bool) {
	t.Helper()
	if v != want {
		t.Fatalf("%s: data is %v, want %v", row, v, want)
	}
}

// requireMillis checks that key k of v is a time in Unix milliseconds
// within the last hour, as the SDK's Int64 times are.
func requireMillis(t *testing.T, row string, v any, k string) {
	t.Helper()
	ms, err := strconv.ParseInt(field(t, row, v, k), 10, 64)
	now := time.Now()
	if err != nil || ms < now.Add(-time.Hour).UnixMilli() || ms > now.Add(time.Minute).UnixMilli() {
		t.Fatalf("%s: %s is %s, want Unix milliseconds of the last hour", row, k, field(t, row, v, k))
	}
}

// requireUserIDs checks that list, decoded [IMUser] or [IMFriend], holds
// the users with key k of want, in any order.
func requireUserIDs(t *testing.T, row string, list any, k string, want ...string) {
	t.Helper()
	items, _ := list.([]any)
	got := map[string]bool{}
	for _, it := range items {
		got[field(t, row, it, k)] = true
	}
	if len(items) != len(want) {
		t.Fatalf("%s: %d entries, want %d (%v)", row, len(items), len(want), want)
	}
	for _, w := range want {
		if !got[w] {
			t.Fatalf("%s: %s %s missing from %v", row, k, w, list)
		}
	}
}

func walkSDKHTTP(t *testing.T, l listeners) {
	base := "http://" + l.HTTP.String()
	anon := sdkClient{t: t, base: base}

	// register and login, for four users.
	names := []string{"alice", "bobby", "carol", "david"}
	users := map[string]sdkClient{}
	ids := map[string]string{}
	for _, u := range names {
		reg := anon.call("register "+u, http.MethodPost, "/api/auth/register",
			map[string]any{"username": u, "password": "secret-" + u, "nickname": "N" + u}, wantObject(registerModel))
		login := anon.call("login "+u, http.MethodPost, "/api/auth/login",
			map[string]any{"username": u, "password": "secret-" + u, "platform": "iOS"}, wantObject(loginModel))
		requireField(t, "login "+u, login, "userID", field(t, "register "+u, reg, "userID"))
		ids[u] = field(t, "login "+u, login, "userID")
		users[u] = sdkClient{t: t, base: base, token: field(t, "login "+u, login, "token")}
	}
	alice, bob, carol := users["alice"], users["bobby"], users["carol"]
	forged := "Bearer " + alice.token[:len(alice.token)-4] + "AAAA"

	t.Run("group", func(t *testing.T) {
		alice, bob, carol := alice, bob, carol
		alice.t, bob.t, carol.t = t, t, t
		anon := sdkClient{t: t, base: base}
		// By default a user adds to groups only those she has exchanged
		// a one-to-one message with, which an SDK app does over its
		// socket.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		sock, err := client.Dial(ctx, client.Options{Addr: l.TCP.String(), UserID: ids["alice"], Token: alice.token})
		if err != nil {
			t.Fatalf("alice's socket: %v", err)
		}
		defer sock.Close()
		for _, u := range []string{"bobby", "david"} {
			if _, err := sock.Send(ctx, client.Outgoing{ReceiverID: ids[u], Type: im.TextMessage, Content: []byte("hello")}); err != nil {
				t.Fatalf("alice's message to %s: %v", u, err)
			}
		}
		create := map[string]any{"groupName": "Climbers", "faceURL": "https://img.example/c.png", "introduction": "we climb", "memberUserIDs": []string{ids["bobby"]}}
		anon.unauthorized("group create without token", http.MethodPost, "/api/group/create", create, "")
		anon.unauthorized("group create with forged token", http.MethodPost, "/api/group/create", create, forged)

		g := alice.call("group create", http.MethodPost, "/api/group/create", create, wantObject(imGroupModel))
		gid := field(t, "group create", g, "groupID")
		requireField(t, "group create", g, "groupName", "Climbers")
		requireField(t, "group create", g, "faceURL", "https://img.example/c.png")
		requireField(t, "group create", g, "introduction", "we climb")
		requireField(t, "group create", g, "ownerUserID", ids["alice"])
		requireField(t, "group create", g, "memberCount", "2")
		requireField(t, "group create", g, "status", "0")
		requireMillis(t, "group create", g, "createTime")
		requireMillis(t, "group create", g, "updateTime")

		g = bob.call("group info", http.MethodGet, "/api/group/"+gid, nil, wantObject(imGroupModel))
		requireField(t, "group info", g, "groupID", gid)
		requireField(t, "group info", g, "memberCount", "2")

		g = alice.call("group update", http.MethodPost, "/api/group/update",
			map[string]any{"groupID": gid, "groupName": "Climbers II", "faceURL": "https://img.example/d.png", "introduction": "we climb more", "notification": "meet at 8"},
			wantObject(imGroupModel))
		requireField(t, "group update", g, "groupName", "Climbers II")
		requireField(t, "group update", g, "notification", "meet at 8")
		g = alice.call("group update notification only", http.MethodPost, "/api/group/update",
			map[string]any{"groupID": gid, "notification": "meet at 9"}, wantObject(imGroupModel))
		requireField(t, "group update notification only", g, "notification", "meet at 9")
		requireField(t, "group update notification only", g, "groupName", "Climbers II")

		// A group made through the SDK is invite-only, which to others
		// looks like no group at all: the SDK's join fails with
		// CONVERSATION_NOT_EXIST until the owner opens it (our extension).
		carol.refuse("group join of an invite-only group", http.MethodPost, "/api/group/"+gid+"/join", nil, 202)
		alice.call("group open (ours)", http.MethodPost, "/api/group/update", map[string]any{"groupID": gid, "joinPolicy": 0}, wantObject(imGroupModel))
		g = carol.call("group join", http.MethodPost, "/api/group/"+gid+"/join", nil, wantObject(imGroupModel))
		requireField(t, "group join", g, "groupID", gid)
		requireField(t, "group join", g, "memberCount", "3")

		alice.call("group invite", http.MethodPost, "/api/group/"+gid+"/invite", map[string]any{"userIDs": []string{ids["david"]}}, wantNone)
		requireField(t, "group info after invite", alice.call("group info after invite", http.MethodGet, "/api/group/"+gid, nil, wantObject(imGroupModel)), "memberCount", "4")
		alice.call("group kick", http.MethodPost, "/api/group/"+gid+"/kick", map[string]any{"userIDs": []string{ids["david"]}}, wantNone)
		carol.call("group leave", http.MethodPost, "/api/group/"+gid+"/leave", nil, wantNone)
		requireField(t, "group info after kick and leave", alice.call("group info after kick and leave", http.MethodGet, "/api/group/"+gid, nil, wantObject(imGroupModel)), "memberCount", "2")
		bob.refuse("group dismiss by a member", http.MethodPost, "/api/group/"+gid+"/dismiss", nil, 102)
		alice.call("group dismiss", http.MethodPost, "/api/group/"+gid+"/dismiss", nil, wantNone)
		bob.refuse("group info after dismiss", http.MethodGet, "/api/group/"+gid, nil, 202)
	})

	t.Run("friend", func(t *testing.T) {
		alice, bob, carol := alice, bob, carol
		alice.t, bob.t, carol.t = t, t, t
		anon := sdkClient{t: t, base: base}
		anon.unauthorized("friend list without token", http.MethodGet, "/api/friend/list", nil, "")
		anon.unauthorized("friend add with forged token", http.MethodPost, "/api/friend/add", map[string]any{"userID": ids["bobby"], "message": "hi"}, forged)

		requireUserIDs(t, "friend list, none", bob.call("friend list, none", http.MethodGet, "/api/friend/list", nil, wantArray(imFriendModel)), "friendUserID")

		alice.call("friend add", http.MethodPost, "/api/friend/add", map[string]any{"userID": ids["bobby"], "message": "hi bob"}, wantNone)
		bob.call("friend reject", http.MethodPost, "/api/friend/reject", map[string]any{"userID": ids["alice"]}, wantNone)
		alice.call("friend add again", http.MethodPost, "/api/friend/add", map[string]any{"userID": ids["bobby"], "message": "please"}, wantNone)
		f := bob.call("friend accept", http.MethodPost, "/api/friend/accept", map[string]any{"userID": ids["alice"]}, wantObject(imFriendModel))
		requireField(t, "friend accept", f, "friendUserID", ids["alice"])
		requireField(t, "friend accept", f, "ownerUserID", ids["bobby"])
		requireMillis(t, "friend accept", f, "createTime")

		f = bob.call("friend remark", http.MethodPost, "/api/friend/remark", map[string]any{"userID": ids["alice"], "remark": "Ali"}, wantObject(imFriendModel))
		requireField(t, "friend remark", f, "friendUserID", ids["alice"])
		requireField(t, "friend remark", f, "remark", "Ali")

		list := bob.call("friend list", http.MethodGet, "/api/friend/list", nil, wantArray(imFriendModel))
		requireUserIDs(t, "friend list", list, "friendUserID", ids["alice"])
		requireField(t, "friend list", list.([]any)[0], "remark", "Ali")
		requireUserIDs(t, "friend list of alice", alice.call("friend list of alice", http.MethodGet, "/api/friend/list", nil, wantArray(imFriendModel)), "friendUserID", ids["bobby"])

		// The SDK puts userID in the GET body; its HTTP library sends it
		// in the query string.
		requireBool(t, "friend check, body", bob.call("friend check, body", http.MethodGet, "/api/friend/check", map[string]any{"userID": ids["alice"]}, wantBool), true)
		requireBool(t, "friend check, query", bob.call("friend check, query", http.MethodGet, "/api/friend/check?userID="+url.QueryEscape(ids["alice"]), nil, wantBool), true)
		requireBool(t, "friend check, not friends", carol.call("friend check, not friends", http.MethodGet, "/api/friend/check", map[string]any{"userID": ids["alice"]}, wantBool), false)

		alice.call("friend delete", http.MethodPost, "/api/friend/delete", map[string]any{"userID": ids["bobby"]}, wantNone)
		requireBool(t, "friend check after delete", bob.call("friend check after delete", http.MethodGet, "/api/friend/check?userID="+url.QueryEscape(ids["alice"]), nil, wantBool), false)
		requireUserIDs(t, "friend list after delete", alice.call("friend list after delete", http.MethodGet, "/api/friend/list", nil, wantArray(imFriendModel)), "friendUserID")
	})

	t.Run("user", func(t *testing.T) {
		alice, bob := alice, bob
		alice.t, bob.t = t, t
		anon := sdkClient{t: t, base: base}
		anon.unauthorized("user info without token", http.MethodGet, "/api/user/info/"+ids["alice"], nil, "")
		anon.unauthorized("user search with forged token", http.MethodGet, "/api/user/search", map[string]any{"keyword": "alice"}, forged)

		u := bob.call("user info", http.MethodGet, "/api/user/info/"+ids["alice"], nil, wantObject(imUserModel))
		requireField(t, "user info", u, "userID", ids["alice"])
		requireField(t, "user info", u, "nickname", "Nalice")
		requireMillis(t, "user info", u, "createTime")
		requireMillis(t, "user info", u, "updateTime")
		bob.refuse("user info of nobody", http.MethodGet, "/api/user/info/nobody", nil, 103)

		list := bob.call("user batch", http.MethodPost, "/api/user/info/batch", map[string]any{"userIDs": []string{ids["alice"], ids["carol"], "nobody"}}, wantArray(imUserModel))
		requireUserIDs(t, "user batch", list, "userID", ids["alice"], ids["carol"])
		requireUserIDs(t, "user batch, empty", bob.call("user batch, empty", http.MethodPost, "/api/user/info/batch", map[string]any{"userIDs": []string{}}, wantArray(imUserModel)), "userID")

		// The SDK sends every field of its IMUser.
		u = alice.call("user update", http.MethodPost, "/api/user/update", map[string]any{
			"userID": ids["alice"], "nickname": "Alice Liddell", "avatar": "https://img.example/a.png",
			"signature": "down the hole", "gender": 2, "birth": int64(19650704),
		}, wantObject(imUserModel))
		requireField(t, "user update", u, "userID", ids["alice"])
		requireField(t, "user update", u, "nickname", "Alice Liddell")
		requireField(t, "user update", u, "avatar", "https://img.example/a.png")
		requireField(t, "user update", u, "signature", "down the hole")
		requireField(t, "user update", u, "gender", "2")
		requireField(t, "user update", u, "birth", "19650704")
		u = bob.call("user info after update", http.MethodGet, "/api/user/info/"+ids["alice"], nil, wantObject(imUserModel))
		requireField(t, "user info after update", u, "nickname", "Alice Liddell")
		requireField(t, "user info after update", u, "birth", "19650704")
		alice.refuse("user update of another user", http.MethodPost, "/api/user/update", map[string]any{"userID": ids["bobby"], "nickname": "x"}, 102)

		requireUserIDs(t, "user search, body", bob.call("user search, body", http.MethodGet, "/api/user/search", map[string]any{"keyword": "alice l"}, wantArray(imUserModel)), "userID", ids["alice"])
		requireUserIDs(t, "user search, query", bob.call("user search, query", http.MethodGet, "/api/user/search?keyword="+url.QueryEscape("Alice"), nil, wantArray(imUserModel)), "userID", ids["alice"])
		requireUserIDs(t, "user search, no match", bob.call("user search, no match", http.MethodGet, "/api/user/search", map[string]any{"keyword": "zebra"}, wantArray(imUserModel)), "userID")
	})
}

// TestSDKDecoderRefuses checks that the walk's decoder refuses what the
// SDK's Codable types refuse, so that the walk passing means something.
func TestSDKDecoderRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want sdkWant
	}{
		{"code as a string", `{"code":"0","message":"ok"}`, wantNone},
		{"code with a fraction", `{"code":0.5,"message":"ok"}`, wantNone},
		{"message null", `{"code":0,"message":null}`, wantNone},
		{"message absent", `{"code":0}`, wantNone},
		{"not an object", `[]`, wantNone},
		{"two values", `{"code":0,"message":"ok"} {}`, wantNone},
		{"empty object for nothing", `{"code":0,"message":"ok","data":{}}`, wantNone},
		{"null list", `{"code":0,"message":"ok","data":null}`, wantArray(imUserModel)},
		{"absent model", `{"code":0,"message":"ok"}`, wantObject(imGroupModel)},
		{"missing required key", `{"code":0,"message":"ok","data":{"groupName":"g"}}`, wantObject(imGroupModel)},
		{"required key null", `{"code":0,"message":"ok","data":[{"userID":null}]}`, wantArray(imUserModel)},
		{"time as a float", `{"code":0,"message":"ok","data":{"groupID":"g","createTime":1.5}}`, wantObject(imGroupModel)},
		{"time as a string", `{"code":0,"message":"ok","data":{"friendUserID":"u","createTime":"1"}}`, wantObject(imFriendModel)},
		{"number as a string", `{"code":0,"message":"ok","data":{"userID":"u","gender":"1"}}`, wantObject(imUserModel)},
		{"string as a number", `{"code":0,"message":"ok","data":{"userID":7}}`, wantObject(imUserModel)},
		{"nested user without id", `{"code":0,"message":"ok","data":{"friendUserID":"u","user":{}}}`, wantObject(imFriendModel)},
		{"bool as a number", `{"code":0,"message":"ok","data":1}`, wantBool},
		{"bool null", `{"code":0,"message":"ok","data":null}`, wantBool},
	} {
		_, _, data, present, err := decodeSDKEnvelope([]byte(tc.body))
		if err == nil {
			err = checkSDKData(data, present, tc.want)
		}
		if err == nil {
			t.Errorf("%s: %s accepted", tc.name, tc.body)
		}
	}
	// And it takes what the SDK takes: optional keys absent or null,
	// unknown keys, data absent for nothing.
	for _, tc := range []struct {
		body string
		want sdkWant
	}{
		{`{"code":0,"message":"ok"}`, wantNone},
		{`{"code":0,"message":"ok","data":null}`, wantNone},
		{`{"code":0,"message":"ok","data":[]}`, wantArray(imFriendModel)},
		{`{"code":0,"message":"ok","data":{"groupID":"g","groupName":null,"joinPolicy":1}}`, wantObject(imGroupModel)},
		{`{"code":0,"message":"ok","data":false}`, wantBool},
	} {
		_, _, data, present, err := decodeSDKEnvelope([]byte(tc.body))
		if err == nil {
			err = checkSDKData(data, present, tc.want)
		}
		if err != nil {
			t.Errorf("%s refused: %v", tc.body, err)
		}
	}
}
