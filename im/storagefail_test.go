package im_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/store/memstore"
	"github.com/stretchr/testify/require"
)

// failingStore is a memstore whose writes fail with fail's error while it
// is set, as a store on a full or broken disk does.
type failingStore struct {
	*memstore.Store
	fail atomic.Pointer[error]
}

func (s *failingStore) AppendMessages(ctx context.Context, reqs []im.AppendRequest) ([]im.AppendResult, error) {
	if err := s.fail.Load(); err != nil {
		return nil, *err
	}
	return s.Store.AppendMessages(ctx, reqs)
}

func (s *failingStore) failWith(err error) {
	if err == nil {
		s.fail.Store(nil)
		return
	}
	s.fail.Store(&err)
}

// health answers GET /health of the server's HTTP API: the status and the
// envelope's message.
func health(t *testing.T, srv *imtest.Server) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, srv.HTTPURL+"/health", nil)
	require.NoError(t, err)
	rsp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer rsp.Body.Close()
	raw, err := io.ReadAll(rsp.Body)
	require.NoError(t, err)
	var env struct {
		Message string `json:"message"`
	}
	require.NoError(t, json.Unmarshal(raw, &env), "%s", raw)
	require.NotContains(t, string(raw), "/var/lib")
	return rsp.StatusCode, env.Message
}

// TestFailingWritesAreReported: while the store's writes fail, each
// sender's ack says why without the store's words (which name a path),
// Health and /health report it, and the first send stored after the
// failure stops makes the server healthy again.
func TestFailingWritesAreReported(t *testing.T) {
	pathErr := func(errno syscall.Errno) error {
		return fmt.Errorf("store: commit: %w", &os.PathError{Op: "write", Path: "/var/lib/imserver/imserver.db", Err: errno})
	}
	tests := []struct {
		name   string
		err    error
		reason error
		msg    string
	}{
		{"disk full", pathErr(syscall.ENOSPC), im.ErrStorageFull, "storage full"},
		{"quota", pathErr(syscall.EDQUOT), im.ErrStorageFull, "storage full"},
		{"read-only", pathErr(syscall.EROFS), im.ErrStorageReadOnly, "storage read-only"},
		{"other", pathErr(syscall.EIO), im.ErrStorageUnavailable, "storage unavailable"},
		{"database", errors.New("pq: could not write /var/lib/postgresql/base/1"), im.ErrStorageUnavailable, "storage unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &failingStore{Store: memstore.New()}
			srv := imtest.NewServer(t, imtest.Options{Config: im.Config{Store: st}})
			ctx := testCtx(t)
			r := dialRaw(t, srv.TCPAddr)
			require.Equal(t, imv1.ErrorCode_ERR_SUCCESS, r.auth(alice, srv.Token(t, alice)).ErrorCode)

			require.Equal(t, imv1.ErrorCode_ERR_SUCCESS, r.send(textTo(bob, "m1", "one")).ErrorCode)
			status, msg := health(t, srv)
			require.Equal(t, http.StatusOK, status)
			require.Equal(t, "ok", msg)
			require.NoError(t, srv.Health(ctx))

			st.failWith(tt.err)
			for i := range 2 {
				rsp := r.send(textTo(bob, fmt.Sprintf("f%d", i), "lost"))
				require.Equal(t, imv1.ErrorCode_ERR_UNKNOWN, rsp.ErrorCode)
				require.Equal(t, tt.msg, rsp.ErrorMsg)
				require.Zero(t, rsp.Seq)
			}
			err := srv.Health(ctx)
			require.ErrorIs(t, err, tt.reason)
			require.ErrorIs(t, err, im.ErrStorageUnavailable)
			status, msg = health(t, srv)
			require.Equal(t, http.StatusServiceUnavailable, status)
			require.Equal(t, tt.msg, msg)

			// Reads still work, but the server stays unready until a
			// write succeeds.
			st.failWith(nil)
			status, _ = health(t, srv)
			require.Equal(t, http.StatusServiceUnavailable, status)
			rsp := r.send(textTo(bob, "m2", "two"))
			require.Equal(t, imv1.ErrorCode_ERR_SUCCESS, rsp.ErrorCode)
			require.Equal(t, int64(2), rsp.Seq)
			status, msg = health(t, srv)
			require.Equal(t, http.StatusOK, status)
			require.Equal(t, "ok", msg)
			require.NoError(t, srv.Health(ctx))
		})
	}
}

// TestStoreRefusalIsNoStorageFailure: a batch the store refuses with one
// of the protocol's sentinels is answered with it, and the server stays
// healthy: its storage works.
func TestStoreRefusalIsNoStorageFailure(t *testing.T) {
	st := &failingStore{Store: memstore.New()}
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{Store: st}})
	r := dialRaw(t, srv.TCPAddr)
	require.Equal(t, imv1.ErrorCode_ERR_SUCCESS, r.auth(alice, srv.Token(t, alice)).ErrorCode)
	st.failWith(fmt.Errorf("store: %w", im.ErrInvalidArgument))
	rsp := r.send(textTo(bob, "m1", "one"))
	require.Equal(t, imv1.ErrorCode_ERR_INVALID_PARAM, rsp.ErrorCode)
	require.NoError(t, srv.Health(testCtx(t)))
	status, _ := health(t, srv)
	require.Equal(t, http.StatusOK, status)
}

// unreachableStore is a store whose Ping fails, as a database that is
// down does.
type unreachableStore struct {
	*memstore.Store
	down atomic.Bool
}

func (s *unreachableStore) Ping(context.Context) error {
	if s.down.Load() {
		return errors.New("dial tcp 10.0.0.7:5432: connection refused")
	}
	return nil
}

// TestUnreachableStoreIsUnavailable: a store that does not answer Health's
// ping is reported as storage unavailable, without its address.
func TestUnreachableStoreIsUnavailable(t *testing.T) {
	st := &unreachableStore{Store: memstore.New()}
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{Store: st}})
	status, _ := health(t, srv)
	require.Equal(t, http.StatusOK, status)
	st.down.Store(true)
	require.ErrorIs(t, srv.Health(testCtx(t)), im.ErrStorageUnavailable)
	status, msg := health(t, srv)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "storage unavailable", msg)
	st.down.Store(false)
	status, _ = health(t, srv)
	require.Equal(t, http.StatusOK, status)
}
