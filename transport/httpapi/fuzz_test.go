package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/store/memstore"
	"github.com/imserver/imserver/transport/httpapi"
)

// fuzzRoutes are the calls that read a JSON body, group calls as a member
// of the group the fuzz target sets up, with {id} its id.
var fuzzRoutes = []struct {
	method, path string
	authed       bool
}{
	{http.MethodPost, "/api/auth/register", false},
	{http.MethodPost, "/api/auth/login", false},
	{http.MethodPost, "/api/group/create", true},
	{http.MethodPost, "/api/group/update", true},
	{http.MethodGet, "/api/group/joined", true},
	{http.MethodGet, "/api/group/{id}", true},
	{http.MethodGet, "/api/group/{id}/members", true},
	{http.MethodPost, "/api/group/{id}/join", true},
	{http.MethodPost, "/api/group/{id}/leave", true},
	{http.MethodPost, "/api/group/{id}/invite", true},
	{http.MethodPost, "/api/group/{id}/kick", true},
	{http.MethodPost, "/api/group/{id}/role", true},
	{http.MethodPost, "/api/group/{id}/dismiss", true},
	{http.MethodPost, "/api/conversation/list", true},
	{http.MethodPost, "/api/conversation/settings", true},
}

// FuzzJSONBodies sends arbitrary bodies, as application/json, to every
// call that reads one, through the real handler with a real im.Server and
// accounts. Whatever the body, the handler must not panic nor answer a 5xx,
// and must answer a JSON envelope with a code and a message.
func FuzzJSONBodies(f *testing.F) {
	store := memstore.New()
	tokens, err := auth.NewJWT(auth.JWTConfig{Secret: []byte("fuzz-test-secret-k7Qm2vX9pL4sT8wZ"), Lifetime: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	accounts, err := auth.NewAccounts(auth.AccountsConfig{
		Store: store, Tokens: tokens, BcryptCost: auth.MinBcryptCost,
		// The fuzzer is one client address; let its calls reach the decoder.
		ClientAttempts: 1 << 30, SubnetAttempts: 1 << 30,
	})
	if err != nil {
		f.Fatal(err)
	}
	srv, err := im.NewServer(im.Config{
		Store: store, Authenticator: tokens, Logger: slog.New(slog.DiscardHandler),
		GroupAddPolicy: anyoneAdds, GroupAddsPerMinute: -1,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = srv.Close() })
	h := httpapi.NewHandler(httpapi.Options{Accounts: accounts, Server: srv, Logger: slog.New(slog.DiscardHandler)})
	g, err := srv.CreateGroup(context.Background(), "alice", im.GroupSpec{Name: "g", JoinPolicy: im.JoinOpen}, []string{"bob"})
	if err != nil {
		f.Fatal(err)
	}
	token, _, err := tokens.Issue("alice")
	if err != nil {
		f.Fatal(err)
	}

	for i := range fuzzRoutes {
		for _, body := range []string{
			``, `{}`, `null`, `[]`, `"x"`, `{"username":"fuzz1","password":"secret-fuzz"}`,
			`{"username":"alice","password":"secret-alice","platform":"iOS"}`,
			`{"groupName":"n","memberUserIDs":["bob","carol"],"joinPolicy":0}`,
			`{"groupID":"` + g.ID + `","groupName":null,"joinPolicy":7}`,
			`{"userIDs":["bob",""]}`, `{"userID":"bob","role":"owner"}`,
			`{"userIDs":[1e400]}`, `{"limit":3,"since":1,"cursor":"YzF8MHwxfDB8MXx4"}`,
			`{"conversationID":"group_` + g.ID + `","pinned":true,"hidden":true,"clearAll":true}`,
			`{"conversationID":"single_alice_bob","clearUpTo":9223372036854775807}`, `{"a":` + string(bytes.Repeat([]byte("["), 200)),
		} {
			f.Add(uint8(i), []byte(body))
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		req := httptest.NewRequest(rt.method, strings.Replace(rt.path, "{id}", g.ID, 1), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if rt.authed {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: status %d: %s", rt.method, rt.path, body, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s %q: Content-Type %q", rt.method, rt.path, body, ct)
		}
		var env struct {
			Code    *int    `json:"code"`
			Message *string `json:"message"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Code == nil || env.Message == nil {
			t.Fatalf("%s %s %q: not an envelope (%v): %s", rt.method, rt.path, body, err, rec.Body)
		}
	})
}
