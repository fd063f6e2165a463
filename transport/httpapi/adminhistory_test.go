package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/wire"
	"github.com/imserver/imserver/store/memstore"
	"github.com/imserver/imserver/transport/httpapi"
)

// setupAdminSampling is setupAdmin with the history sampled every d.
func setupAdminSampling(t *testing.T, d time.Duration) adminEnv {
	t.Helper()
	return adminEnv{setupUsersHandler(t, nil, func(o *httpapi.Options) { o.AdminToken = adminToken },
		func(o httpapi.Options) http.Handler { return httpapi.NewHandlerSampling(o, d) })}
}

type historyPoint struct {
	T               int64   `json:"t"`
	Connections     int64   `json:"connections"`
	Sessions        int64   `json:"sessions"`
	OnlineUsers     int64   `json:"onlineUsers"`
	MessagesPerSec  float64 `json:"messagesPerSec"`
	FramesInPerSec  float64 `json:"framesInPerSec"`
	FramesOutPerSec float64 `json:"framesOutPerSec"`
	CommitsPerSec   float64 `json:"commitsPerSec"`
	CommitMillis    float64 `json:"commitMillis"`
}

func (e adminEnv) history(t *testing.T, query string) (int64, []historyPoint) {
	t.Helper()
	r := e.ok(t, http.MethodGet, "/admin/api/history"+query, "")
	var h struct {
		Interval int64          `json:"interval"`
		Points   []historyPoint `json:"points"`
	}
	require.NoError(t, json.Unmarshal(r.data, &h))
	require.NotNil(t, h.Points, "[] never null: %s", r.raw)
	return h.Interval, h.Points
}

func TestAdminHistory(t *testing.T) {
	e := setupAdminSampling(t, 50*time.Millisecond)
	a, aTok := e.register(t, "alice", "Alice")
	b, bTok := e.register(t, "bobby", "Bobby")
	ca := e.dialAs(t, a, aTok, "iOS")
	e.dialAs(t, b, bTok, "web")
	ctx := context.Background()
	for i := range 5 {
		_, err := ca.Send(ctx, client.Outgoing{ReceiverID: b, Type: wire.TextMessage, Content: []byte{'m', byte('0' + i)}})
		require.NoError(t, err)
	}

	// The sessions and the messages show in the points sampled after them.
	var pts []historyPoint
	require.Eventually(t, func() bool {
		var interval int64
		interval, pts = e.history(t, "")
		require.Equal(t, int64(50), interval)
		stored, commits := false, false
		for _, p := range pts {
			stored = stored || p.MessagesPerSec > 0
			commits = commits || p.CommitsPerSec > 0
		}
		last := pts[len(pts)-1:]
		return stored && commits && len(last) == 1 && last[0].Sessions == 2 && last[0].Connections == 2
	}, 10*time.Second, 20*time.Millisecond)
	for i, p := range pts {
		if i > 0 {
			require.Greater(t, p.T, pts[i-1].T, "oldest first")
		}
		require.GreaterOrEqual(t, p.CommitMillis, 0.0)
		if p.CommitsPerSec == 0 {
			require.Zero(t, p.CommitMillis, "no commit, no commit time")
		}
	}
	require.LessOrEqual(t, len(pts), httpapi.AdminHistoryLen)

	// since leaves out the points up to it.
	last := pts[len(pts)-1].T
	_, newer := e.history(t, "?since="+itoa(last))
	for _, p := range newer {
		require.Greater(t, p.T, last)
	}
	_, none := e.history(t, "?since="+itoa(time.Now().Add(time.Hour).UnixMilli()))
	require.Empty(t, none)
	require.Contains(t, e.logs.String(), "admin: read history")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestAdminHistoryBadInput(t *testing.T) {
	e := setupAdmin(t)
	for _, q := range []string{"?since=x", "?since=-1", "?since=1.5", "?since=99999999999999999999"} {
		failed(t, e.admin(t, "Bearer "+adminToken, http.MethodGet, "/admin/api/history"+q, ""), 2, "since must be a time in Unix milliseconds")
	}
	r := e.admin(t, "Bearer "+adminToken[1:], http.MethodGet, "/admin/api/history", "")
	require.Equal(t, http.StatusUnauthorized, r.status)
	r = doRequest(t, e.hs.Client(), http.MethodPost, e.hs.URL+"/admin/api/history",
		http.Header{"Authorization": {"Bearer " + adminToken}, "Content-Type": {"application/json"}}, "{}")
	require.Equal(t, http.StatusMethodNotAllowed, r.status)

	off := adminEnv{setupUsers(t, nil)}
	r = off.admin(t, "Bearer "+adminToken, http.MethodGet, "/admin/api/history", "")
	require.Equal(t, http.StatusNotFound, r.status)
}

// samplerRunning reports whether a history sampler's goroutine is alive.
func samplerRunning() bool {
	for size := 1 << 20; ; size *= 2 {
		buf := make([]byte, size)
		if n := runtime.Stack(buf, true); n < size {
			return strings.Contains(string(buf[:n]), "httpapi.(*history).run")
		}
	}
}

// The sampler's goroutine is the Server's to stop: Shutdown and Close end
// it before they return, and a handler made for a closed Server has none.
func TestAdminHistoryStopsWithServer(t *testing.T) {
	newServer := func() *im.Server {
		srv, err := im.NewServer(im.Config{Store: memstore.New(), Authenticator: im.AuthenticatorFunc(func(context.Context, string) (im.Identity, error) { return im.Identity{}, im.ErrUnauthenticated })})
		require.NoError(t, err)
		return srv
	}
	require.False(t, samplerRunning(), "a sampler of another test is still running")

	srv := newServer()
	httpapi.NewHandlerSampling(httpapi.Options{Server: srv, AdminToken: adminToken}, time.Millisecond)
	require.Eventually(t, samplerRunning, 10*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	require.False(t, samplerRunning(), "the sampler outlived Shutdown")

	srv = newServer()
	httpapi.NewHandler(httpapi.Options{Server: srv, AdminToken: adminToken})
	require.Eventually(t, samplerRunning, 10*time.Second, time.Millisecond)
	require.NoError(t, srv.Close())
	require.False(t, samplerRunning(), "the sampler outlived Close")

	// Without an admin token there is no history and no sampler.
	srv = newServer()
	httpapi.NewHandler(httpapi.Options{Server: srv})
	require.False(t, samplerRunning())
	require.NoError(t, srv.Close())

	httpapi.NewHandler(httpapi.Options{Server: srv, AdminToken: adminToken})
	require.False(t, samplerRunning(), "a sampler of a closed Server runs")
}
