package httpapi_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/store/bolt"
)

// newTestStore returns an empty bolt store in a file of the test's own,
// closed when the test ends.
func newTestStore(t *testing.T) auth.AccountStore {
	t.Helper()
	return newBoltStore(t)
}

// newBoltStore is newTestStore with every part of im.Store.
func newBoltStore(t *testing.T) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "im.db"), bolt.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// failingStore fails every call with err, to test store errors.
type failingStore struct{ err error }

func (f failingStore) CreateAccount(context.Context, auth.Account) error { return f.err }
func (f failingStore) Account(context.Context, string) (auth.Account, error) {
	return auth.Account{}, f.err
}
func (f failingStore) AccountByUsername(context.Context, string) (auth.Account, error) {
	return auth.Account{}, f.err
}
