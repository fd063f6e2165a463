package sqlstore_test

import (
	"database/sql"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/sqlstore"
	"github.com/imserver/imserver/store/sqlstore/sqltest"
	"github.com/imserver/imserver/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend is one database the tests run against.
type backend struct {
	dialect sqlstore.Dialect
	driver  string
	env     string // the variable naming the database, if one must be set
	// fresh returns the DSN of a new, empty database (Postgres: schema)
	// that is dropped when t ends, or skips t when the database is not
	// configured.
	fresh func(t testing.TB) string
}

var (
	sqliteBackend   = backend{sqlstore.SQLite, "sqlite", "", sqltest.SQLite}
	postgresBackend = backend{sqlstore.Postgres, "pgx", sqltest.PostgresEnv, sqltest.Postgres}
	mysqlBackend    = backend{sqlstore.MySQL, "mysql", sqltest.MySQLEnv, sqltest.MySQL}
	// The DSN setting the package documentation recommends for MySQL:
	// statements go out as text, in one round trip instead of two.
	mysqlInterpolatedBackend = backend{sqlstore.MySQL, "mysql", sqltest.MySQLEnv, func(t testing.TB) string {
		cfg, err := mysql.ParseDSN(sqltest.MySQL(t))
		require.NoError(t, err)
		cfg.InterpolateParams = true
		return cfg.FormatDSN()
	}}
)

// openDB opens a pool closed when t ends. It keeps as many idle
// connections as the tests use at once: the default of two would make
// concurrent tests and benchmarks reconnect all the time.
func openDB(t testing.TB, driver, dsn string) *sql.DB {
	db, err := sql.Open(driver, dsn)
	require.NoError(t, err)
	db.SetMaxOpenConns(64)
	db.SetMaxIdleConns(64)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	return db
}

// testLogger sends the store's log to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// newStore opens db's store with default options, failing t on error.
func (b backend) newStore(t testing.TB, db *sql.DB) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.New(t.Context(), db, sqlstore.Options{Dialect: b.dialect, Logger: testLogger(t)})
	require.NoError(t, err)
	return s
}

// open returns a store in a fresh database, and that database's DSN.
func (b backend) open(t testing.TB) (*sqlstore.Store, string) {
	t.Helper()
	dsn := b.fresh(t)
	return b.newStore(t, openDB(t, b.driver, dsn)), dsn
}

// harness runs storetest against b. Reopen closes the store's pool and
// opens a new one, and a new Store, on the same database.
func (b backend) harness() storetest.Harness {
	type opened struct {
		db  *sql.DB
		dsn string
	}
	var (
		mu     sync.Mutex
		stores = make(map[im.Store]opened)
	)
	return storetest.Harness{
		Open: func(t *testing.T) im.Store {
			dsn := b.fresh(t)
			db := openDB(t, b.driver, dsn)
			s := b.newStore(t, db)
			mu.Lock()
			stores[s] = opened{db, dsn}
			mu.Unlock()
			return s
		},
		Reopen: func(t *testing.T, s im.Store) im.Store {
			mu.Lock()
			o, ok := stores[s]
			mu.Unlock()
			require.True(t, ok, "store not opened by this harness")
			require.NoError(t, o.db.Close())
			db := openDB(t, b.driver, o.dsn)
			s2 := b.newStore(t, db)
			mu.Lock()
			stores[s2] = opened{db, o.dsn}
			mu.Unlock()
			return s2
		},
	}
}

// lookupEnv is os.LookupEnv, with an empty value counting as unset.
func lookupEnv(name string) (string, bool) {
	v := os.Getenv(name)
	return v, v != ""
}
