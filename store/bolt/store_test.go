package bolt_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bbolterrors "go.etcd.io/bbolt/errors"
	"go.uber.org/goleak"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// openTemp opens a store in a new file under t's temp dir, closed at the
// end of the test.
func openTemp(t testing.TB) (*bolt.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "im.db")
	s, err := bolt.Open(path, bolt.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s, path
}

func TestStore(t *testing.T) {
	var (
		mu    sync.Mutex
		paths = make(map[im.Store]string)
	)
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) im.Store {
			s, path := openTemp(t)
			mu.Lock()
			paths[s] = path
			mu.Unlock()
			return s
		},
		Reopen: func(t *testing.T, s im.Store) im.Store {
			mu.Lock()
			path := paths[s]
			mu.Unlock()
			require.NotEmpty(t, path, "store not opened by this harness")
			require.NoError(t, s.(*bolt.Store).Close())
			s2, err := bolt.Open(path, bolt.Options{})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, s2.Close()) })
			mu.Lock()
			paths[s2] = path
			mu.Unlock()
			return s2
		},
	})
}

func TestFileMode(t *testing.T) {
	tests := []struct {
		name string
		mode os.FileMode
		want os.FileMode
	}{
		{"Default", 0, 0o600},
		{"Explicit", 0o640, 0o640},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "im.db")
			s, err := bolt.Open(path, bolt.Options{FileMode: tt.mode})
			require.NoError(t, err)
			require.NoError(t, s.Close())
			fi, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, tt.want, fi.Mode().Perm())
		})
	}
}

func TestOpenLocked(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
	}{
		{"Timeout", 100 * time.Millisecond},
		{"NoWait", -1},
	}
	_, path := openTemp(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				s, err := bolt.Open(path, bolt.Options{Timeout: tt.timeout})
				if err == nil {
					s.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				require.ErrorIs(t, err, bbolterrors.ErrTimeout)
			case <-time.After(30 * time.Second):
				t.Fatal("a second Open of a locked file hangs")
			}
		})
	}
}

func TestOpenAfterClose(t *testing.T) {
	// Closing releases the lock, and the data is still there.
	s, path := openTemp(t)
	ctx := t.Context()
	require.NoError(t, s.CreateAccount(ctx, auth.Account{UserID: "u1", Username: "alice"}))
	require.NoError(t, s.Close())

	s2, err := bolt.Open(path, bolt.Options{Timeout: -1})
	require.NoError(t, err)
	defer s2.Close()
	a, err := s2.Account(ctx, "u1")
	require.NoError(t, err)
	require.Equal(t, "alice", a.Username)
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notBolt := filepath.Join(dir, "not-bolt")
	require.NoError(t, os.WriteFile(notBolt, make([]byte, 64<<10), 0o600))
	tests := []struct {
		name string
		path string
	}{
		{"MissingDirectory", filepath.Join(dir, "missing", "im.db")},
		{"Directory", dir},
		{"NotABoltFile", notBolt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := bolt.Open(tt.path, bolt.Options{})
			require.Error(t, err)
			require.Nil(t, s)
		})
	}
}

func TestClosed(t *testing.T) {
	s, _ := openTemp(t)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")

	ctx := t.Context()
	_, err := s.AppendMessages(ctx, []im.AppendRequest{{Message: im.Message{
		ConversationID: "group_g", ServerID: "s1", SenderID: "u", ClientMsgID: "c",
	}}})
	require.ErrorIs(t, err, bbolterrors.ErrDatabaseNotOpen)
	_, err = s.Messages(ctx, "group_g", 1, 0, 10)
	require.ErrorIs(t, err, bbolterrors.ErrDatabaseNotOpen)
	_, err = s.Conversation(ctx, "group_g")
	require.ErrorIs(t, err, bbolterrors.ErrDatabaseNotOpen)
	_, err = s.Account(ctx, "u")
	require.ErrorIs(t, err, bbolterrors.ErrDatabaseNotOpen)
	_, err = s.Group(ctx, "g")
	require.ErrorIs(t, err, bbolterrors.ErrDatabaseNotOpen)
	_, err = s.CreateGroup(ctx, im.Group{ID: "g", Name: "G", OwnerID: "u"}, nil, im.AppendRequest{})
	require.ErrorIs(t, err, bbolterrors.ErrDatabaseNotOpen)
}

func TestLimit(t *testing.T) {
	// Not covered by im.Store's docs, so not by storetest: this store
	// refuses a limit below 1 rather than guessing what it means.
	s, _ := openTemp(t)
	ctx := context.Background()
	for _, limit := range []int{0, -1} {
		_, err := s.Messages(ctx, "group_g", 1, 0, limit)
		require.ErrorIs(t, err, im.ErrInvalidArgument)
		_, err = s.MessagesBefore(ctx, "group_g", 0, limit)
		require.ErrorIs(t, err, im.ErrInvalidArgument)
	}
}

func TestErrorsAreWrapped(t *testing.T) {
	s, _ := openTemp(t)
	_, err := s.Conversation(t.Context(), "group_none")
	require.ErrorIs(t, err, im.ErrNotFound)
	require.False(t, errors.Is(err, im.ErrConflict))
	require.Contains(t, err.Error(), "group_none")
}

func BenchmarkStore(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) im.Store {
		s, _ := openTemp(b)
		return s
	})
}
