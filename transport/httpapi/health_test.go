package httpapi_test

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/transport/httpapi"
)

func TestLiveAndReady(t *testing.T) {
	down := func(context.Context) error { return im.ErrStorageUnavailable }
	tests := []struct {
		name    string
		health  func(context.Context) error
		ready   func() bool
		status  int    // of /readyz and /health
		message string // of /readyz and /health
	}{
		{"no checks", nil, nil, http.StatusOK, "ok"},
		{"started and healthy", func(context.Context) error { return nil }, func() bool { return true }, http.StatusOK, "ok"},
		{"starting", func(context.Context) error { return nil }, func() bool { return false }, http.StatusServiceUnavailable, "starting"},
		{"store down", down, func() bool { return true }, http.StatusServiceUnavailable, "storage unavailable"},
		// Starting is said first: the store may just not be open yet.
		{"starting with the store down", down, func() bool { return false }, http.StatusServiceUnavailable, "starting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, newTestStore(t), 0, func(o *httpapi.Options) { o.Health, o.Ready = tt.health, tt.ready })
			for _, path := range []string{"/readyz", "/health"} {
				r := e.do(t, http.MethodGet, path, "", "")
				require.Equal(t, tt.status, r.status, path)
				code := 0
				if tt.status != http.StatusOK {
					code = 1
				}
				require.Equal(t, code, r.code, path)
				require.Equal(t, tt.message, r.message, path)
				require.Nil(t, r.data, path)
				head := e.do(t, http.MethodHead, path, "", "")
				require.Equal(t, tt.status, head.status, path)
				require.Empty(t, head.raw, path)
			}
			// Liveness depends on neither.
			r := e.do(t, http.MethodGet, "/livez", "", "")
			require.Equal(t, http.StatusOK, r.status)
			require.JSONEq(t, `{"code":0,"message":"ok"}`, string(r.raw))
			head := e.do(t, http.MethodHead, "/livez", "", "")
			require.Equal(t, http.StatusOK, head.status)
		})
	}

	e := setup(t, newTestStore(t), 0, nil)
	for _, path := range []string{"/livez", "/readyz"} {
		r := e.do(t, http.MethodPost, path, "", "")
		require.Equal(t, http.StatusMethodNotAllowed, r.status, path)
		require.Equal(t, "GET, HEAD", r.header.Get("Allow"), path)
	}
}

// heldTransport is a transport whose Shutdown waits for release, holding
// the Server's Shutdown open as a slow connection would.
type heldTransport struct {
	began   atomic.Bool
	release chan struct{}
}

func (h *heldTransport) Shutdown(ctx context.Context) error {
	h.began.Store(true)
	select {
	case <-h.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *heldTransport) Close() error { return nil }

// TestReadyDuringShutdown checks that an im.Server's Health, as Options.Health,
// makes /readyz answer 503 from the moment Shutdown begins, while /livez
// still answers 200.
func TestReadyDuringShutdown(t *testing.T) {
	store := newBoltStore(t)
	srv, err := im.NewServer(im.Config{
		Store:         store,
		Authenticator: im.AuthenticatorFunc(func(context.Context, string) (im.Identity, error) { return im.Identity{}, im.ErrUnauthenticated }),
		Logger:        slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	held := &heldTransport{release: make(chan struct{})}
	srv.RegisterTransport(held)
	e := setup(t, store, 0, func(o *httpapi.Options) { o.Health = srv.Health })

	r := e.do(t, http.MethodGet, "/readyz", "", "")
	require.Equal(t, http.StatusOK, r.status)

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	require.Eventually(t, held.began.Load, 5*time.Second, time.Millisecond)
	for _, path := range []string{"/readyz", "/health"} {
		r = e.do(t, http.MethodGet, path, "", "")
		require.Equal(t, http.StatusServiceUnavailable, r.status, path)
		require.JSONEq(t, `{"code":1,"message":"shutting down"}`, string(r.raw), path)
	}
	r = e.do(t, http.MethodGet, "/livez", "", "")
	require.Equal(t, http.StatusOK, r.status)
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned before its transport was released: %v", err)
	default:
	}
	close(held.release)
	require.NoError(t, <-done)
	r = e.do(t, http.MethodGet, "/readyz", "", "")
	require.Equal(t, http.StatusServiceUnavailable, r.status)
}
