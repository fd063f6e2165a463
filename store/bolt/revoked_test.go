package bolt

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// revokedLen returns how many records each of the revoked tokens'
// buckets holds.
func revokedLen(t *testing.T, s *Store) (tokens, expiries int) {
	t.Helper()
	require.NoError(t, s.db.View(func(tx *bbolt.Tx) error {
		tokens = tx.Bucket([]byte(bucketRevoked)).Stats().KeyN
		expiries = tx.Bucket([]byte(bucketRevokedByExpiry)).Stats().KeyN
		return nil
	}))
	return tokens, expiries
}

func TestRevokedTokens(t *testing.T) {
	s, path := newStore(t)
	ctx := t.Context()
	future := time.Now().Add(time.Hour)
	require.NoError(t, s.RevokeToken(ctx, "t1", future))
	require.NoError(t, s.RevokeToken(ctx, "t1", future.Add(time.Hour))) // again: nothing changes
	ok, err := s.TokenRevoked(ctx, "t1")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.TokenRevoked(ctx, "t2")
	require.NoError(t, err)
	require.False(t, ok)
	tokens, expiries := revokedLen(t, s)
	require.Equal(t, 1, tokens)
	require.Equal(t, 1, expiries)
	require.NoError(t, s.Check(ctx))
	// Revoking stays within the schema version older versions open: they
	// ignore the buckets.
	require.Equal(t, uint64(schemaVersion), fileVersion(t, s))

	s = reopen(t, s, path)
	ok, err = s.TokenRevoked(ctx, "t1")
	require.NoError(t, err)
	require.True(t, ok)

	for _, id := range []string{"", strings.Repeat("x", maxTokenIDLen+1)} {
		require.ErrorIs(t, s.RevokeToken(ctx, id, future), im.ErrInvalidArgument)
		_, err := s.TokenRevoked(ctx, id)
		require.ErrorIs(t, err, im.ErrInvalidArgument)
	}
	require.NoError(t, s.RevokeToken(ctx, strings.Repeat("x", maxTokenIDLen), future))
	tokens, _ = revokedLen(t, s)
	require.Equal(t, 2, tokens)
}

func TestRevokedTokensExpire(t *testing.T) {
	// Each revocation removes at most revokedCleanup expired records, the
	// oldest first, and never one that has not expired.
	s, _ := newStore(t)
	ctx := t.Context()
	past := time.Now().Add(-time.Hour)
	n := revokedCleanup + 4
	for i := range n {
		// Before the cleanup can see them: written straight into the
		// buckets, as if they had expired since.
		require.NoError(t, s.db.Update(func(tx *bbolt.Tx) error {
			id := string(rune('a'+i)) + "-old"
			k := []byte(id)
			if err := tx.Bucket([]byte(bucketRevoked)).Put(k, seal(nil, bucketRevoked, k, func(b []byte) []byte { return appendNote(b, past.Add(time.Duration(i)*time.Second), "") })); err != nil {
				return err
			}
			ek := expiryKey(past.Add(time.Duration(i)*time.Second), id)
			return tx.Bucket([]byte(bucketRevokedByExpiry)).Put(ek, seal(nil, bucketRevokedByExpiry, ek, nil))
		}))
	}
	require.NoError(t, s.Check(ctx))
	require.NoError(t, s.RevokeToken(ctx, "fresh", time.Now().Add(time.Hour)))
	tokens, expiries := revokedLen(t, s)
	require.Equal(t, n+1-revokedCleanup, tokens)
	require.Equal(t, tokens, expiries)
	ok, err := s.TokenRevoked(ctx, "a-old")
	require.NoError(t, err)
	require.False(t, ok, "the oldest goes first")
	ok, err = s.TokenRevoked(ctx, string(rune('a'+n-1))+"-old")
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, s.RevokeToken(ctx, "fresh2", time.Now().Add(time.Hour)))
	tokens, _ = revokedLen(t, s)
	require.Equal(t, 2, tokens)
	for _, id := range []string{"fresh", "fresh2"} {
		ok, err := s.TokenRevoked(ctx, id)
		require.NoError(t, err)
		require.True(t, ok)
	}
	require.NoError(t, s.Check(ctx))
}

func TestCheckRevokedTokens(t *testing.T) {
	future := time.Now().Add(time.Hour)
	for _, tt := range []struct {
		name   string
		damage func(tx *bbolt.Tx) error
		want   string
	}{
		{"NoExpiryKey", func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte(bucketRevokedByExpiry)).Delete(expiryKey(future, "t1"))
		}, `revoked token "t1" has no expiry key`},
		{"NoToken", func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte(bucketRevoked)).Delete([]byte("t1"))
		}, `names no revoked token`},
		{"Damaged", func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte(bucketRevoked)).Put([]byte("t1"), []byte{0, 1, 2, 3, 4, 5})
		}, `revoked token "t1"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			require.NoError(t, s.RevokeToken(t.Context(), "t1", future))
			require.NoError(t, s.db.Update(tt.damage))
			err := s.Check(t.Context())
			require.ErrorIs(t, err, im.ErrCorrupt)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
