package auth_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/store/memstore"
	"github.com/imserver/imserver/store/sqlstore"
	"github.com/imserver/imserver/store/sqlstore/sqltest"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// countingVersions counts the token versions read.
type countingVersions struct {
	auth.TokenVersions
	reads atomic.Int64
}

func (c *countingVersions) TokenVersion(ctx context.Context, userID string) (int64, error) {
	c.reads.Add(1)
	return c.TokenVersions.TokenVersion(ctx, userID)
}

// countingRevocations is countingVersions that keeps revoked tokens too,
// counting their reads as well: a Guard checks both.
type countingRevocations struct {
	*countingVersions
	revoked auth.RevokedTokens
}

func (c *countingRevocations) RevokeToken(ctx context.Context, id string, expires time.Time) error {
	return c.revoked.RevokeToken(ctx, id, expires)
}

func (c *countingRevocations) TokenRevoked(ctx context.Context, id string) (bool, error) {
	c.reads.Add(1)
	return c.revoked.TokenRevoked(ctx, id)
}

// A Guard reads the store when a session authenticates, never for what
// the session does afterwards.
func TestGuardReadsNothingPerMessage(t *testing.T) {
	secret := []byte("per-message-test-secret-Q7m2vX9pL4sT8")
	j, err := auth.NewJWT(auth.JWTConfig{Secret: secret})
	require.NoError(t, err)
	mem := memstore.New()
	versions := &countingRevocations{countingVersions: &countingVersions{TokenVersions: mem}, revoked: mem}
	g, err := auth.NewGuard(auth.GuardConfig{Tokens: j, Versions: versions})
	require.NoError(t, err)
	srv := imtest.NewServer(t, imtest.Options{Memory: true, Secret: secret, Config: im.Config{Authenticator: g, SendRate: -1}})

	for _, transport := range []string{client.TransportTCP, client.TransportWebSocket} {
		alice := srv.Dial(t, transport, "alice")
		before := versions.reads.Load()
		require.GreaterOrEqual(t, before, int64(2), "authenticating read the version and the revocation")
		ctx := t.Context()
		for i := range 50 {
			_, err := alice.Send(ctx, client.Outgoing{ReceiverID: "bob", Type: im.TextMessage, Content: fmt.Appendf(nil, "m%d", i)})
			require.NoError(t, err)
		}
		_, err := alice.SyncAll(ctx)
		require.NoError(t, err)
		require.Equal(t, before, versions.reads.Load(), "%s: 50 messages and a sync read no token version or revocation", transport)
	}
}

// BenchmarkAuthenticate measures a token check: the JWT alone (what the
// binary did before) and a Guard reading the token version, and the
// account too, from a bbolt store and, with IM_TEST_POSTGRES_DSN set, a
// PostgreSQL one.
func BenchmarkAuthenticate(b *testing.B) {
	for _, st := range []struct {
		name string
		open func(b *testing.B) store
	}{
		{"bolt", func(b *testing.B) store {
			s, err := bolt.Open(filepath.Join(b.TempDir(), "im.db"), bolt.Options{})
			require.NoError(b, err)
			b.Cleanup(func() { s.Close() })
			return s
		}},
		{"postgres", func(b *testing.B) store {
			db, err := sql.Open("pgx", sqltest.Postgres(b))
			require.NoError(b, err)
			b.Cleanup(func() { db.Close() })
			s, err := sqlstore.New(context.Background(), db, sqlstore.Options{Dialect: sqlstore.Postgres})
			require.NoError(b, err)
			return s
		}},
	} {
		b.Run(st.name, func(b *testing.B) { benchmarkAuthenticate(b, st.open(b)) })
	}
}

type store interface {
	auth.AccountStore
	auth.TokenVersions
}

func benchmarkAuthenticate(b *testing.B, s store) {
	ctx := context.Background()
	require.NoError(b, s.CreateAccount(ctx, auth.Account{UserID: "ualice", Username: "alice"}))
	_, err := s.BumpTokenVersion(ctx, "ualice")
	require.NoError(b, err)
	j, err := auth.NewJWT(auth.JWTConfig{Secret: testSecret})
	require.NoError(b, err)
	tok, _, err := j.IssueVersion("ualice", 1)
	require.NoError(b, err)
	versionsOnly, err := auth.NewGuard(auth.GuardConfig{Tokens: j, Versions: s})
	require.NoError(b, err)
	withAccounts, err := auth.NewGuard(auth.GuardConfig{Tokens: j, Versions: s, Accounts: s})
	require.NoError(b, err)
	for _, bc := range []struct {
		name string
		a    im.Authenticator
	}{{"JWT", j}, {"GuardVersions", versionsOnly}, {"GuardAccounts", withAccounts}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.a.Authenticate(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
