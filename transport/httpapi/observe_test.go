package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/transport/httpapi"
)

func TestObserveRequest(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	h := httpapi.NewHandler(httpapi.Options{
		MetricsToken: "scrape-token-5e1f0a7c",
		MetricsHandler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("ok"))
		}),
		ObserveRequest: func(route string, status int, d time.Duration) {
			require.GreaterOrEqual(t, d, time.Duration(0))
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, route+" "+http.StatusText(status))
		},
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path, auth string) int {
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rsp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		rsp.Body.Close()
		return rsp.StatusCode
	}
	require.Equal(t, http.StatusOK, get("/livez", ""))
	require.Equal(t, http.StatusUnauthorized, get("/metrics", ""))
	require.Equal(t, http.StatusOK, get("/metrics", "Bearer scrape-token-5e1f0a7c"))
	// No route: not observed, so raw paths never become labels.
	require.Equal(t, http.StatusNotFound, get("/no/such/path", ""))

	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"GET /livez OK", "GET /metrics Unauthorized", "GET /metrics OK"}, seen)
}
