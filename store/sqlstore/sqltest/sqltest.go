// Package sqltest gives tests a fresh, empty database on each SQL server
// that store/sqlstore supports, dropped when the test ends, so that tests
// running in parallel, and reruns, never see each other's tables.
//
// The servers are named by environment variables; a test whose variable is
// unset is skipped with a message saying what to set:
//
//	IM_TEST_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//	IM_TEST_MYSQL_DSN=root@tcp(127.0.0.1:3306)/test?parseTime=true
//
// The drivers are the ones sqlstore documents: "pgx"
// (github.com/jackc/pgx/v5/stdlib), "mysql" (github.com/go-sql-driver/mysql)
// and "sqlite" (modernc.org/sqlite); this package registers them.
package sqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"
)

// The environment variables naming the test servers.
const (
	PostgresEnv = "IM_TEST_POSTGRES_DSN"
	MySQLEnv    = "IM_TEST_MYSQL_DSN"
)

var examples = map[string]string{
	PostgresEnv: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
	MySQLEnv:    "'root@tcp(127.0.0.1:3306)/test?parseTime=true'",
}

// Need returns the value of env (PostgresEnv or MySQLEnv), or skips t with
// a message saying what to set when it is empty. Call it before
// t.Parallel, so that a skipped test does not wait for its turn first.
func Need(t testing.TB, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		t.Skipf("%s is not set; set it to run this test, e.g. %s=%s", env, env, examples[env])
	}
	return v
}

// SQLite returns the DSN of a new database file in t.TempDir(). It sets
// nothing: stores must work with the driver's defaults.
func SQLite(t testing.TB) string {
	return filepath.Join(t.TempDir(), "im.db")
}

// Postgres creates a schema of its own on the server IM_TEST_POSTGRES_DSN
// names and returns a DSN whose connections all start in it.
func Postgres(t testing.TB) string {
	t.Helper()
	base := Need(t, PostgresEnv)
	name := uniqueName()
	admin(t, "pgx", base, `CREATE SCHEMA "`+name+`"`, `DROP SCHEMA "`+name+`" CASCADE`)
	if strings.Contains(base, "://") {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatalf("sqltest: %s: %v", PostgresEnv, err)
		}
		q := u.Query()
		q.Set("search_path", name)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return base + " search_path=" + name
}

// MySQL creates a database of its own on the server IM_TEST_MYSQL_DSN
// names and returns a DSN for it.
func MySQL(t testing.TB) string {
	t.Helper()
	base := Need(t, MySQLEnv)
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("sqltest: %s: %v", MySQLEnv, err)
	}
	name := uniqueName()
	admin(t, "mysql", base, "CREATE DATABASE `"+name+"`", "DROP DATABASE `"+name+"`")
	cfg.DBName = name
	return cfg.FormatDSN()
}

// admin runs create now and drop when t ends, on a connection of its own.
func admin(t testing.TB, driver, dsn, create, drop string) {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatalf("sqltest: %v", err)
	}
	if _, err := db.ExecContext(context.Background(), create); err != nil {
		db.Close()
		t.Fatalf("sqltest: %s: %v", create, err)
	}
	t.Cleanup(func() {
		defer db.Close()
		if _, err := db.ExecContext(context.Background(), drop); err != nil {
			t.Errorf("sqltest: %s: %v", drop, err)
		}
	})
}

// uniqueName is a database or schema name that no other test run uses.
func uniqueName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "imtest_" + hex.EncodeToString(b[:])
}
