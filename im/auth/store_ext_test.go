package auth_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/store/bolt"
)

func init() {
	auth.SetTestStore(func(t *testing.T) auth.AccountStore {
		t.Helper()
		s, err := bolt.Open(filepath.Join(t.TempDir(), "im.db"), bolt.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		return s
	})
}
