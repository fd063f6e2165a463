package httpapi

import (
	"net/http"
	"slices"
	"strings"
)

// withCORS lets pages of the allowed origins call h from a browser and
// leaves every other origin without any CORS header, so the browser keeps
// the answers from them and refuses to send them a JSON request. With no
// origins h is returned as it is.
func withCORS(h http.Handler, origins []string) http.Handler {
	allowed := map[string]bool{}
	for _, o := range origins {
		// Browsers send the origin in lower case with no trailing slash.
		if o = strings.ToLower(strings.TrimRight(strings.TrimSpace(o), "/")); o != "" {
			allowed[o] = true
		}
	}
	if len(allowed) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		// The answer depends on Origin whether or not it is allowed, so
		// a shared cache must not give one origin's answer to another.
		w.Header().Add("Vary", "Origin")
		if origin == "" || !allowed[origin] {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			method := r.Header.Get("Access-Control-Request-Method")
			if !slices.Contains(corsMethods, method) {
				// No allowance: the browser refuses the request.
				w.WriteHeader(http.StatusNoContent)
				return
			}
			hd := w.Header()
			hd.Add("Vary", "Access-Control-Request-Method")
			hd.Add("Vary", "Access-Control-Request-Headers")
			hd.Set("Access-Control-Allow-Methods", strings.Join(corsMethods, ", "))
			hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			hd.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// corsMethods are the methods the API's routes answer.
var corsMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost}
