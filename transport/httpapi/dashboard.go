package httpapi

import (
	"embed"
	"net/http"
)

// dashboardFiles is the operator's dashboard: plain HTML, CSS and
// JavaScript written for it, with no build step and nothing loaded from
// elsewhere, so the binary serves all of it.
//
//go:embed dashboard/index.html dashboard/app.js dashboard/app.css
var dashboardFiles embed.FS

// dashboardCSP lets the page run its own script and style only: no inline
// script or style, no other origin, no plug-ins, no forms posted
// anywhere, and no framing (against clickjacking of the kick buttons).
// The icon is an empty data: URL, so the browser does not fetch one.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

// handleDashboard serves the dashboard's files. They carry no secret: the
// page asks for the admin token and sends it with each /admin/api call.
func (a *api) handleDashboard(r *router) {
	page := dashboardFile("dashboard/index.html", "text/html; charset=utf-8")
	r.handle(http.MethodGet, "/admin", page)
	r.handle(http.MethodGet, "/admin/{$}", page)
	r.handle(http.MethodGet, "/admin/app.js", dashboardFile("dashboard/app.js", "text/javascript; charset=utf-8"))
	r.handle(http.MethodGet, "/admin/app.css", dashboardFile("dashboard/app.css", "text/css; charset=utf-8"))
}

// dashboardFile serves one embedded file with the dashboard's headers.
func dashboardFile(name, contentType string) http.HandlerFunc {
	body, err := dashboardFiles.ReadFile(name)
	if err != nil {
		// The go:embed line above names every file read here.
		panic(err)
	}
	return func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Content-Security-Policy", dashboardCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// Revalidated on each load, so that a new binary's files are
		// never mixed with an old one's.
		h.Set("Cache-Control", "no-cache")
		w.Write(body)
	}
}
