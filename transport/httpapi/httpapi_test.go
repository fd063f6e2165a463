package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/transport/httpapi"
)

var testEpoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testEnv struct {
	srv    *httptest.Server
	store  auth.AccountStore
	tokens *auth.JWT
	logs   *syncBuffer
}

// setup serves the API with real Accounts over store on a real socket.
// edit, if not nil, adjusts the Options before the handler is built.
func setup(t *testing.T, store auth.AccountStore, loginAttempts int, edit func(*httpapi.Options)) *testEnv {
	t.Helper()
	now := func() time.Time { return testEpoch }
	tokens, err := auth.NewJWT(auth.JWTConfig{Secret: []byte("http-test-secret-k7Qm2vX9pL4sT8wZ"), Lifetime: time.Hour, Now: now})
	require.NoError(t, err)
	accounts, err := auth.NewAccounts(auth.AccountsConfig{
		Store:         store,
		Tokens:        tokens,
		BcryptCost:    auth.MinBcryptCost, // the default is slow under -race
		LoginAttempts: loginAttempts,
		LoginWindow:   time.Hour,
		Now:           now,
	})
	require.NoError(t, err)
	logs := &syncBuffer{}
	opts := httpapi.Options{
		Accounts: accounts,
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&opts)
	}
	srv := httptest.NewServer(httpapi.NewHandler(opts))
	t.Cleanup(srv.Close)
	return &testEnv{srv: srv, store: store, tokens: tokens, logs: logs}
}

// response is one answer, its envelope checked against what the SDK needs.
type response struct {
	status  int
	header  http.Header
	raw     []byte
	code    int
	message string
	data    json.RawMessage // nil when absent
}

func (e *testEnv) do(t *testing.T, method, path, contentType, body string) response {
	t.Helper()
	header := http.Header{}
	if contentType != "" {
		header.Set("Content-Type", contentType)
	}
	return doRequest(t, e.srv.Client(), method, e.srv.URL+path, header, body)
}

// doRequest sends one request and checks the answer's envelope.
func doRequest(t *testing.T, c *http.Client, method, url string, header http.Header, body string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	require.NoError(t, err)
	maps.Copy(req.Header, header)
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	r := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	if method == http.MethodHead {
		return r
	}

	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &fields), "body %s", raw)
	require.Contains(t, fields, "code")
	require.Contains(t, fields, "message")
	require.NoError(t, json.Unmarshal(fields["code"], &r.code), "code must be an integer: %s", raw)
	require.NoError(t, json.Unmarshal(fields["message"], &r.message), "message must be a string: %s", raw)
	require.Equal(t, byte('"'), fields["message"][0], "message must be a string: %s", raw)
	if d, ok := fields["data"]; ok {
		require.NotEqual(t, "{}", string(d), "data must never be an empty object")
		require.NotEqual(t, "null", string(d), "no data is sent as absent")
		r.data = d
	}
	return r
}

// jsonHeader is what the SDK sends with every call.
var jsonHeader = http.Header{"Content-Type": {"application/json"}}

func (e *testEnv) post(t *testing.T, path, body string) response {
	t.Helper()
	return e.do(t, http.MethodPost, path, "application/json", body)
}

func jsonBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

type registered struct {
	UserID   string `json:"userID"`
	Username string `json:"username"`
	Nickname string `json:"nickname"`
}

type loggedIn struct {
	Token     string `json:"token"`
	UserID    string `json:"userID"`
	ExpiresAt int64  `json:"expiresAt"`
}

func TestRegister(t *testing.T) {
	e := setup(t, newTestStore(t), 0, nil)

	r := e.post(t, "/api/auth/register", `{"username":"alice","password":"correct horse","nickname":"Alice A."}`)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, 0, r.code, r.message)
	var alice registered
	require.NoError(t, json.Unmarshal(r.data, &alice))
	require.Regexp(t, `^u[a-z2-7]{16}$`, alice.UserID)
	require.Equal(t, "alice", alice.Username)
	require.Equal(t, "Alice A.", alice.Nickname)
	stored, err := e.store.AccountByUsername(context.Background(), "alice")
	require.NoError(t, err)
	require.Equal(t, alice.UserID, stored.UserID)
	require.Contains(t, e.logs.String(), alice.UserID, "registrations are logged by user id")
	require.NotContains(t, e.logs.String(), "correct horse")

	// With a charset, with a field the API does not know, and without a
	// nickname.
	r = e.do(t, http.MethodPost, "/api/auth/register", "application/json; charset=utf-8", `{"username":"bob","password":"battery staple","avatar":"x.png"}`)
	require.Equal(t, 0, r.code, r.message)
	var bob registered
	require.NoError(t, json.Unmarshal(r.data, &bob))
	require.Equal(t, "bob", bob.Nickname)
	require.NotEqual(t, alice.UserID, bob.UserID)

	// Taken.
	r = e.post(t, "/api/auth/register", `{"username":"alice","password":"another one","nickname":"Impostor"}`)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, 1001, r.code)
	require.Equal(t, "username is taken", r.message)
	require.Nil(t, r.data)
}

func TestRegisterBadInput(t *testing.T) {
	e := setup(t, newTestStore(t), 0, func(o *httpapi.Options) { o.MaxBodyBytes = 512 })
	tests := []struct {
		name, body string
		wantInMsg  string
	}{
		{"empty body", "", "empty"},
		{"not JSON", "username=alice&password=secret", "JSON"},
		{"truncated JSON", `{"username":"alice",`, "JSON"},
		{"array", `[{"username":"alice"}]`, "object"},
		{"string", `"alice"`, "object"},
		{"null", `null`, "username"},
		{"two objects", `{"username":"alice","password":"password"}{}`, "single"},
		{"username a number", `{"username":5,"password":"password"}`, "username"},
		{"password an object", `{"username":"alice","password":{}}`, "password"},
		{"missing username", `{"password":"password"}`, "username"},
		{"username too short", `{"username":"al","password":"password"}`, "username"},
		{"username with space", `{"username":"al ice","password":"password"}`, "username"},
		{"password too short", `{"username":"alice","password":"short"}`, "password"},
		{"password 73 bytes", jsonBody(t, map[string]string{"username": "alice", "password": strings.Repeat("p", 73)}), "password"},
		{"nickname too long", jsonBody(t, map[string]string{"username": "alice", "password": "password", "nickname": strings.Repeat("n", 65)}), "nickname"},
		{"body over MaxBodyBytes", jsonBody(t, map[string]string{"username": "alice", "password": "password", "nickname": strings.Repeat("n", 600)}), "512 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, "/api/auth/register", tt.body)
			require.Equal(t, http.StatusOK, r.status)
			require.Equal(t, 2, r.code, r.message)
			require.Contains(t, r.message, tt.wantInMsg)
			require.Nil(t, r.data)
			_, err := e.store.AccountByUsername(context.Background(), "alice")
			require.ErrorIs(t, err, im.ErrNotFound, "nothing registered")
		})
	}
}

func TestLogin(t *testing.T) {
	const attempts = 2
	e := setup(t, newTestStore(t), attempts, nil)
	r := e.post(t, "/api/auth/register", `{"username":"alice","password":"correct horse"}`)
	require.Equal(t, 0, r.code, r.message)
	var alice registered
	require.NoError(t, json.Unmarshal(r.data, &alice))

	// The SDK's demo sends platform.
	r = e.do(t, http.MethodPost, "/api/auth/login", "Application/JSON", `{"username":"alice","password":"correct horse","platform":"iOS"}`)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, 0, r.code, r.message)
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	var got loggedIn
	require.NoError(t, json.Unmarshal(r.data, &got))
	require.Equal(t, alice.UserID, got.UserID)
	require.Equal(t, testEpoch.Add(time.Hour).UnixMilli(), got.ExpiresAt)
	id, err := e.tokens.Authenticate(context.Background(), got.Token)
	require.NoError(t, err)
	require.Equal(t, alice.UserID, id.UserID)
	require.Equal(t, got.ExpiresAt, id.Expires.UnixMilli())

	// A wrong password and an unknown user get byte-identical answers.
	wrong := e.post(t, "/api/auth/login", `{"username":"alice","password":"wrong horse","platform":"iOS"}`)
	unknown := e.post(t, "/api/auth/login", `{"username":"nobody","password":"correct horse","platform":"iOS"}`)
	require.Equal(t, 100, wrong.code)
	require.Nil(t, wrong.data)
	require.Equal(t, string(wrong.raw), string(unknown.raw))
	require.Equal(t, wrong.status, unknown.status)

	// The second failure for alice uses up her allowance; then even the
	// right password is refused, with its own code.
	r = e.post(t, "/api/auth/login", `{"username":"alice","password":"wrong again"}`)
	require.Equal(t, 100, r.code)
	r = e.post(t, "/api/auth/login", `{"username":"alice","password":"correct horse"}`)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, 201, r.code)
	require.Nil(t, r.data)

	logs := e.logs.String()
	require.NotContains(t, logs, "correct horse")
	require.NotContains(t, logs, "wrong horse")
	require.NotContains(t, logs, got.Token)
}

func TestLoginBadInput(t *testing.T) {
	e := setup(t, newTestStore(t), 0, func(o *httpapi.Options) { o.MaxBodyBytes = 256 })
	tests := []struct{ name, body string }{
		{"not JSON", "alice:secret"},
		{"username a list", `{"username":["alice"],"password":"password"}`},
		{"body over MaxBodyBytes", jsonBody(t, map[string]string{"username": "alice", "password": strings.Repeat("p", 300)})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, "/api/auth/login", tt.body)
			require.Equal(t, http.StatusOK, r.status)
			require.Equal(t, 2, r.code, r.message)
			require.Nil(t, r.data)
		})
	}
}

func TestStoreFailure(t *testing.T) {
	e := setup(t, failingStore{err: errors.New("disk on fire")}, 0, nil)
	for _, path := range []string{"/api/auth/register", "/api/auth/login"} {
		t.Run(path, func(t *testing.T) {
			r := e.post(t, path, `{"username":"alice","password":"correct horse"}`)
			require.Equal(t, http.StatusOK, r.status)
			require.Equal(t, 1, r.code)
			require.Equal(t, "internal error", r.message)
			require.NotContains(t, string(r.raw), "disk on fire", "details stay in the log")
		})
	}
	require.Contains(t, e.logs.String(), "disk on fire")
	require.NotContains(t, e.logs.String(), "correct horse")
}

func TestHealth(t *testing.T) {
	tests := []struct {
		name   string
		health func(context.Context) error
		status int
		code   int
	}{
		{"no check", nil, http.StatusOK, 0},
		{"healthy", func(context.Context) error { return nil }, http.StatusOK, 0},
		{"unhealthy", func(context.Context) error { return errors.New("store unreachable") }, http.StatusServiceUnavailable, 1},
	}
	// The reason a failing store gives is named, without the error's
	// text (which may name a path).
	reasons := []struct {
		err error
		msg string
	}{
		{im.ErrStorageFull, "storage full"},
		{im.ErrStorageReadOnly, "storage read-only"},
		{im.ErrStorageUnavailable, "storage unavailable"},
		{im.ErrServerClosed, "shutting down"},
	}
	for _, r := range reasons {
		t.Run(r.msg, func(t *testing.T) {
			e := setup(t, newTestStore(t), 0, func(o *httpapi.Options) {
				o.Health = func(context.Context) error { return fmt.Errorf("%w: /var/lib/store unreachable", r.err) }
			})
			rsp := e.do(t, http.MethodGet, "/health", "", "")
			require.Equal(t, http.StatusServiceUnavailable, rsp.status)
			require.JSONEq(t, fmt.Sprintf(`{"code":1,"message":%q}`, r.msg), string(rsp.raw))
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, newTestStore(t), 0, func(o *httpapi.Options) { o.Health = tt.health })
			r := e.do(t, http.MethodGet, "/health", "", "")
			require.Equal(t, tt.status, r.status)
			require.Equal(t, tt.code, r.code)
			require.Nil(t, r.data)
			require.NotContains(t, string(r.raw), "unreachable")
			if tt.code == 0 {
				require.JSONEq(t, `{"code":0,"message":"ok"}`, string(r.raw))
			} else {
				require.Contains(t, e.logs.String(), "store unreachable")
			}
			head := e.do(t, http.MethodHead, "/health", "", "")
			require.Equal(t, tt.status, head.status)
		})
	}
}

func TestRoutes(t *testing.T) {
	e := setup(t, newTestStore(t), 0, nil)
	noAccounts := setup(t, newTestStore(t), 0, func(o *httpapi.Options) { o.Accounts = nil })
	// A nil *auth.Accounts, as a host that used to pass that pointer may.
	nilAccounts := setup(t, newTestStore(t), 0, func(o *httpapi.Options) { o.Accounts = (*auth.Accounts)(nil) })
	tests := []struct {
		name         string
		env          *testEnv
		method, path string
		status, code int
		allow        string
	}{
		{"unknown path", e, http.MethodGet, "/nope", 404, 404, ""},
		{"root", e, http.MethodGet, "/", 404, 404, ""},
		{"unknown api path", e, http.MethodPost, "/api/auth/logout", 404, 404, ""},
		{"trailing slash", e, http.MethodPost, "/api/auth/login/", 404, 404, ""},
		{"login with GET", e, http.MethodGet, "/api/auth/login", 405, 405, "POST"},
		{"register with PUT", e, http.MethodPut, "/api/auth/register", 405, 405, "POST"},
		{"health with POST", e, http.MethodPost, "/health", 405, 405, "GET, HEAD"},
		{"login without accounts", noAccounts, http.MethodPost, "/api/auth/login", 404, 404, ""},
		{"register without accounts", noAccounts, http.MethodPost, "/api/auth/register", 404, 404, ""},
		{"health without accounts", noAccounts, http.MethodGet, "/health", 200, 0, ""},
		{"login with nil accounts", nilAccounts, http.MethodPost, "/api/auth/login", 404, 404, ""},
		{"register with nil accounts", nilAccounts, http.MethodPost, "/api/auth/register", 404, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.env.do(t, tt.method, tt.path, "application/json", `{"username":"alice","password":"password"}`)
			require.Equal(t, tt.status, r.status)
			require.Equal(t, tt.code, r.code)
			require.NotEmpty(t, r.message)
			require.Nil(t, r.data)
			require.Equal(t, tt.allow, r.header.Get("Allow"))
		})
	}
}

// getMetrics fetches /metrics from base with the Authorization header
// authorization, if not empty.
func getMetrics(t *testing.T, url, authorization string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	require.NoError(t, err)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rsp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer rsp.Body.Close()
	body, err := io.ReadAll(rsp.Body)
	require.NoError(t, err)
	if rsp.StatusCode == http.StatusOK {
		require.Contains(t, rsp.Header.Get("Content-Type"), "text/plain")
	}
	return rsp.StatusCode, string(body)
}

func TestMetrics(t *testing.T) {
	stats := im.Stats{Connections: 3, Sessions: 2, FramesIn: 10, MessagesStored: 7, CommitTime: 1500 * time.Millisecond, SlowConsumers: 1, StorePanics: 2, CorruptReads: 6, SignalsLimited: 4, SignalsDropped: 5, PresenceOnline: 8, PresenceSubscriptions: 9, PresenceWatched: 11}
	statsFn := func() im.Stats { return stats }
	check := func(t *testing.T, body string) {
		t.Helper()
		for _, line := range []string{
			"# TYPE imserver_connections gauge",
			"imserver_connections 3",
			"imserver_sessions 2",
			"imserver_frames_in_total 10",
			"imserver_messages_stored_total 7",
			"imserver_store_commit_seconds_total 1.5",
			"imserver_slow_consumers_total 1",
			"imserver_store_panics_total 2",
			"imserver_store_corrupt_reads_total 6",
			"imserver_signals_limited_total 4",
			"imserver_signals_dropped_total 5",
			"# TYPE imserver_presence_online gauge",
			"imserver_presence_online 8",
			"imserver_presence_subscriptions 9",
			"imserver_presence_watched_users 11",
		} {
			require.Contains(t, body, line+"\n")
		}
	}

	t.Run("own listener", func(t *testing.T) {
		srv := httptest.NewServer(httpapi.NewMetricsHandler(statsFn))
		t.Cleanup(srv.Close)
		status, body := getMetrics(t, srv.URL+"/metrics", "")
		require.Equal(t, http.StatusOK, status)
		check(t, body)
	})

	t.Run("not on the API by default", func(t *testing.T) {
		e := setup(t, newTestStore(t), 0, func(o *httpapi.Options) { o.Stats = statsFn })
		status, body := getMetrics(t, e.srv.URL+"/metrics", "")
		require.Equal(t, http.StatusNotFound, status)
		require.NotContains(t, body, "imserver_")
	})

	t.Run("on the API with a token", func(t *testing.T) {
		const token = "scrape-k7Qm2vX9pL4sT8wZ"
		e := setup(t, newTestStore(t), 0, func(o *httpapi.Options) { o.Stats = statsFn; o.MetricsToken = token })
		status, body := getMetrics(t, e.srv.URL+"/metrics", "Bearer "+token)
		require.Equal(t, http.StatusOK, status)
		check(t, body)
		for _, authz := range []string{"", "Bearer ", "Bearer wrong", "Basic " + token, "Bearer " + token + "x"} {
			status, body := getMetrics(t, e.srv.URL+"/metrics", authz)
			require.Equal(t, http.StatusUnauthorized, status, "Authorization %q", authz)
			require.NotContains(t, body, "imserver_")
		}
	})

	t.Run("token without Stats", func(t *testing.T) {
		e := setup(t, newTestStore(t), 0, func(o *httpapi.Options) { o.MetricsToken = "scrape-k7Qm2vX9pL4sT8wZ" })
		status, _ := getMetrics(t, e.srv.URL+"/metrics", "Bearer scrape-k7Qm2vX9pL4sT8wZ")
		require.Equal(t, http.StatusNotFound, status)
	})
}

// hostAccounts is a host's own account system behind the register and login
// routes.
type hostAccounts struct{}

func (hostAccounts) Register(_ context.Context, username, _, nickname string) (auth.Account, error) {
	if username == "taken" {
		return auth.Account{}, &im.Error{Code: im.CodeInvalidArgument, Msg: "username is taken", Err: im.ErrConflict}
	}
	return auth.Account{UserID: "host-" + username, Username: username, Nickname: nickname}, nil
}

func (hostAccounts) Login(_ context.Context, username, password string) (auth.LoginResult, error) {
	if password != "right password" {
		return auth.LoginResult{}, &im.Error{Code: im.CodeUnauthenticated, Msg: "invalid username or password", Err: im.ErrUnauthenticated}
	}
	return auth.LoginResult{UserID: "host-" + username, Token: "host-token", Expires: testEpoch.Add(time.Hour)}, nil
}

func TestHostAccounts(t *testing.T) {
	e := setup(t, newTestStore(t), 0, func(o *httpapi.Options) { o.Accounts = hostAccounts{} })

	r := e.post(t, "/api/auth/register", `{"username":"carol","password":"whatever","nickname":"C"}`)
	require.Equal(t, 200, r.status, "%s", r.raw)
	var reg registered
	require.NoError(t, json.Unmarshal(r.data, &reg))
	require.Equal(t, registered{UserID: "host-carol", Username: "carol", Nickname: "C"}, reg)

	r = e.post(t, "/api/auth/register", `{"username":"taken","password":"whatever"}`)
	require.Equal(t, 1001, r.code, "%s", r.raw)

	r = e.post(t, "/api/auth/login", `{"username":"carol","password":"right password"}`)
	require.Equal(t, 200, r.status, "%s", r.raw)
	var in loggedIn
	require.NoError(t, json.Unmarshal(r.data, &in))
	require.Equal(t, loggedIn{Token: "host-token", UserID: "host-carol", ExpiresAt: testEpoch.Add(time.Hour).UnixMilli()}, in)

	r = e.post(t, "/api/auth/login", `{"username":"carol","password":"wrong"}`)
	require.Equal(t, 100, r.code, "%s", r.raw)
}
