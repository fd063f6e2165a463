package httpapi_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// getPage fetches url without a token and returns the status, headers and body.
func getPage(t *testing.T, c *http.Client, method, url string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	rsp, err := c.Do(req)
	require.NoError(t, err)
	defer rsp.Body.Close()
	body, err := io.ReadAll(rsp.Body)
	require.NoError(t, err)
	return rsp.StatusCode, rsp.Header, string(body)
}

func TestDashboardFiles(t *testing.T) {
	e := setupAdmin(t)
	files := map[string]string{
		"/admin":         "text/html; charset=utf-8",
		"/admin/":        "text/html; charset=utf-8",
		"/admin/app.js":  "text/javascript; charset=utf-8",
		"/admin/app.css": "text/css; charset=utf-8",
	}
	bodies := map[string]string{}
	for path, ct := range files {
		// No token needed: the page asks for it.
		status, h, body := getPage(t, e.hs.Client(), http.MethodGet, e.hs.URL+path)
		require.Equal(t, http.StatusOK, status, path)
		require.Equal(t, ct, h.Get("Content-Type"), path)
		csp := h.Get("Content-Security-Policy")
		require.Contains(t, csp, "default-src 'none'", path)
		require.Contains(t, csp, "script-src 'self'", path)
		require.Contains(t, csp, "frame-ancestors 'none'", path)
		require.NotContains(t, csp, "unsafe-inline", path)
		require.NotContains(t, csp, "unsafe-eval", path)
		require.Equal(t, "DENY", h.Get("X-Frame-Options"), path)
		require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), path)
		require.Equal(t, "no-referrer", h.Get("Referrer-Policy"), path)
		require.NotEmpty(t, body, path)
		bodies[path] = body
	}
	require.Equal(t, bodies["/admin"], bodies["/admin/"])
	page := bodies["/admin"]
	require.Contains(t, page, `<script src="/admin/app.js"`)
	require.Contains(t, page, `<link rel="stylesheet" href="/admin/app.css">`)

	// Nothing inline that the CSP would block, and nothing from elsewhere.
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(page, -1) {
		require.Contains(t, tag, "src=", "inline script: %s", tag)
	}
	require.NotContains(t, page, "<style")
	require.NotRegexp(t, `\sstyle=`, page)
	require.NotRegexp(t, `\son[a-z]+=`, page, "inline event handler")
	for path, body := range bodies {
		require.NotRegexp(t, `(src|href)="(https?:)?//`, body, "%s loads from another origin", path)
		require.NotContains(t, body, "@import", path)
	}
	// The script puts server data in the page as text only.
	require.NotContains(t, bodies["/admin/app.js"], "innerHTML")
	require.NotContains(t, bodies["/admin/app.js"], "eval(")

	// The API answers stay no-store.
	r := e.admin(t, "Bearer "+adminToken, http.MethodGet, "/admin/api/stats", "")
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))

	// HEAD is served, other methods and unknown files are not.
	status, _, _ := getPage(t, e.hs.Client(), http.MethodHead, e.hs.URL+"/admin")
	require.Equal(t, http.StatusOK, status)
	status, _, _ = getPage(t, e.hs.Client(), http.MethodPost, e.hs.URL+"/admin/")
	require.Equal(t, http.StatusMethodNotAllowed, status)
	for _, path := range []string{"/admin/index.html", "/admin/nope.js", "/admin/dashboard/app.js", "/admin/api/nope", "/admin/app.js/"} {
		status, h, body := getPage(t, e.hs.Client(), http.MethodGet, e.hs.URL+path)
		require.Equal(t, http.StatusNotFound, status, path)
		require.Equal(t, "application/json", h.Get("Content-Type"), path)
		require.True(t, strings.Contains(body, `"code":404`), path)
	}
}

// Without an admin token there is no dashboard, as there is no admin API.
func TestDashboardOffWithoutToken(t *testing.T) {
	e := setupUsers(t, nil)
	for _, path := range []string{"/admin", "/admin/", "/admin/app.js", "/admin/app.css"} {
		status, _, _ := getPage(t, e.hs.Client(), http.MethodGet, e.hs.URL+path)
		require.Equal(t, http.StatusNotFound, status, path)
	}
}
