package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/transport/httpapi"
)

func TestJSONBodiesOnly(t *testing.T) {
	e := setup(t, newTestStore(t), 0, nil)
	body := `{"username":"mallory","password":"correct horse"}`
	for _, ct := range []string{
		"",
		"text/plain",
		"text/plain; charset=utf-8",
		"application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x",
		"application/jsonp",
		"application/json-seq",
	} {
		for _, path := range []string{"/api/auth/register", "/api/auth/login"} {
			r := e.do(t, http.MethodPost, path, ct, body)
			require.Equal(t, http.StatusUnsupportedMediaType, r.status, "%s with Content-Type %q", path, ct)
			require.Equal(t, 415, r.code)
			require.Contains(t, r.message, "application/json")
			require.Nil(t, r.data)
		}
	}
	// A form a page on another site could post.
	r := e.do(t, http.MethodPost, "/api/auth/register", "application/x-www-form-urlencoded", "username=mallory&password=correct+horse")
	require.Equal(t, http.StatusUnsupportedMediaType, r.status)
	_, err := e.store.AccountByUsername(context.Background(), "mallory")
	require.ErrorIs(t, err, im.ErrNotFound, "nothing is registered")

	r = e.do(t, http.MethodPost, "/api/auth/register", "application/json", body)
	require.Equal(t, 0, r.code, r.message)
	_, err = e.store.AccountByUsername(context.Background(), "mallory")
	require.NoError(t, err)
}

func TestJSONBodiesOnlyGroups(t *testing.T) {
	e := setupGroups(t, nil, nil)
	hdr := http.Header{"Authorization": {"Bearer " + e.token(t, alice)}, "Content-Type": {"text/plain"}}
	r := doRequest(t, e.srv.Client(), http.MethodPost, e.srv.URL+"/api/group/create", hdr, `{"groupName":"g","memberUserIDs":["bob"]}`)
	require.Equal(t, http.StatusUnsupportedMediaType, r.status)
	require.Empty(t, e.userGroups(t, alice), "no group is created")

	// Calls without parameters need no Content-Type when they send no
	// body, as the SDK's GETs do.
	hdr = http.Header{"Authorization": {"Bearer " + e.token(t, alice)}}
	r = doRequest(t, e.srv.Client(), http.MethodGet, e.srv.URL+"/api/group/joined", hdr, "")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, 0, r.code, r.message)
	// But a body they are sent must be JSON.
	r = doRequest(t, e.srv.Client(), http.MethodGet, e.srv.URL+"/api/group/joined", hdr, "{}")
	require.Equal(t, http.StatusUnsupportedMediaType, r.status)
}

// preflight sends a CORS preflight for a POST from origin and returns the
// answer's status and headers.
func preflight(t *testing.T, url, origin string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodOptions, url, nil)
	require.NoError(t, err)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", http.MethodPost)
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	rsp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer rsp.Body.Close()
	_, err = io.Copy(io.Discard, rsp.Body)
	require.NoError(t, err)
	return rsp.StatusCode, rsp.Header
}

func requireNoCORS(t *testing.T, h http.Header) {
	t.Helper()
	for name := range h {
		require.False(t, strings.HasPrefix(name, "Access-Control-"), "header %s", name)
	}
}

func TestCORSNoneByDefault(t *testing.T) {
	e := setup(t, newTestStore(t), 0, nil)
	const evil = "https://evil.example"
	for _, origin := range []string{evil, "null", "http://localhost:3000"} {
		status, h := preflight(t, e.srv.URL+"/api/auth/register", origin)
		require.NotEqual(t, http.StatusOK, status)
		require.NotEqual(t, http.StatusNoContent, status)
		requireNoCORS(t, h)
	}
	hdr := http.Header{"Origin": {evil}, "Content-Type": {"application/json"}}
	r := doRequest(t, e.srv.Client(), http.MethodPost, e.srv.URL+"/api/auth/login", hdr, `{"username":"a","password":"b"}`)
	requireNoCORS(t, r.header)
}

func TestCORSAllowedOrigins(t *testing.T) {
	const app = "https://app.example.com"
	e := setup(t, newTestStore(t), 0, func(o *httpapi.Options) {
		o.AllowedOrigins = []string{" HTTPS://App.Example.com/ ", "http://localhost:3000"}
	})
	for _, origin := range []string{app, "http://localhost:3000"} {
		status, h := preflight(t, e.srv.URL+"/api/auth/register", origin)
		require.Equal(t, http.StatusNoContent, status)
		require.Equal(t, origin, h.Get("Access-Control-Allow-Origin"))
		require.Contains(t, h.Get("Access-Control-Allow-Methods"), "POST")
		require.Contains(t, h.Get("Access-Control-Allow-Methods"), "GET")
		require.Contains(t, h.Get("Access-Control-Allow-Headers"), "Authorization")
		require.Contains(t, h.Get("Access-Control-Allow-Headers"), "Content-Type")
		require.Empty(t, h.Get("Access-Control-Allow-Credentials"), "tokens go in a header, not cookies")
		require.Contains(t, h.Values("Vary"), "Origin")
	}
	hdr := http.Header{"Origin": {app}, "Content-Type": {"application/json"}}
	r := doRequest(t, e.srv.Client(), http.MethodPost, e.srv.URL+"/api/auth/register", hdr, `{"username":"webby","password":"correct horse"}`)
	require.Equal(t, 0, r.code, r.message)
	require.Equal(t, app, r.header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, r.header.Values("Vary"), "Origin")

	// Other origins, lookalikes included, get nothing.
	for _, origin := range []string{"https://evil.example", "https://app.example.com.evil.example", "http://app.example.com", "null"} {
		status, h := preflight(t, e.srv.URL+"/api/auth/register", origin)
		require.NotEqual(t, http.StatusNoContent, status, origin)
		requireNoCORS(t, h)
		hdr := http.Header{"Origin": {origin}, "Content-Type": {"application/json"}}
		r := doRequest(t, e.srv.Client(), http.MethodPost, e.srv.URL+"/api/auth/login", hdr, `{"username":"webby","password":"correct horse"}`)
		requireNoCORS(t, r.header)
	}
	// A method the API does not serve is not allowed.
	req, err := http.NewRequestWithContext(context.Background(), http.MethodOptions, e.srv.URL+"/api/auth/register", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", app)
	req.Header.Set("Access-Control-Request-Method", http.MethodDelete)
	rsp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	rsp.Body.Close()
	require.Empty(t, rsp.Header.Get("Access-Control-Allow-Methods"))
}
