package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

// codeError stands in for modernc.org/sqlite's *sqlite.Error, whose fields
// are unexported: the Store only relies on its Code method.
type codeError int

func (e codeError) Error() string { return fmt.Sprintf("sqlite error %d", int(e)) }
func (e codeError) Code() int     { return int(e) }

// notMySQLError has the driver error's field but not its name.
type notMySQLError struct{ Number uint16 }

func (e *notMySQLError) Error() string { return fmt.Sprintf("error %d", e.Number) }

func TestTransient(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("insert: %w", err) }
	tests := []struct {
		name              string
		dialect           Dialect
		err               error
		transient, unique bool
	}{
		{"PostgresDeadlock", Postgres, wrap(&pgconn.PgError{Code: "40P01"}), true, false},
		{"PostgresSerialization", Postgres, wrap(&pgconn.PgError{Code: "40001"}), true, false},
		{"PostgresUnique", Postgres, wrap(&pgconn.PgError{Code: "23505"}), false, true},
		{"PostgresNotNull", Postgres, wrap(&pgconn.PgError{Code: "23502"}), false, false},
		{"PostgresOther", Postgres, errors.New("connection refused"), false, false},
		{"MySQLDeadlock", MySQL, wrap(&mysql.MySQLError{Number: 1213}), true, false},
		{"MySQLLockWaitTimeout", MySQL, wrap(&mysql.MySQLError{Number: 1205}), true, false},
		{"MySQLDuplicate", MySQL, wrap(&mysql.MySQLError{Number: 1062}), false, true},
		{"MySQLSyntax", MySQL, wrap(&mysql.MySQLError{Number: 1064}), false, false},
		{"MySQLDeadlockJoined", MySQL, errors.Join(errors.New("rollback failed"), wrap(&mysql.MySQLError{Number: 1213})), true, false},
		{"MySQLLookalike", MySQL, wrap(&notMySQLError{Number: 1213}), false, false},
		{"MySQLOther", MySQL, errors.New("Error 1213: deadlock"), false, false},
		{"SQLiteBusy", SQLite, wrap(codeError(5)), true, false},
		{"SQLiteBusySnapshot", SQLite, wrap(codeError(5 | 2<<8)), true, false},
		{"SQLiteLocked", SQLite, wrap(codeError(6)), true, false},
		{"SQLiteUnique", SQLite, wrap(codeError(2067)), false, true},
		{"SQLitePrimaryKey", SQLite, wrap(codeError(1555)), false, true},
		{"SQLiteNotNull", SQLite, wrap(codeError(1299)), false, false},
		{"SQLiteIOError", SQLite, wrap(codeError(10)), false, false},
		// Another dialect's error means nothing here.
		{"MySQLErrorOnPostgres", Postgres, &mysql.MySQLError{Number: 1213}, false, false},
		{"PostgresErrorOnSQLite", SQLite, &pgconn.PgError{Code: "40P01"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Store{dialect: tt.dialect}
			require.Equal(t, tt.transient, s.transient(tt.err, false), "transient without unique")
			require.Equal(t, tt.transient || tt.unique, s.transient(tt.err, true), "transient with unique")
			require.Equal(t, tt.unique, s.isUnique(tt.err), "isUnique")
		})
	}
}

func TestBackoff(t *testing.T) {
	// It waits, and not past a cancelled ctx.
	start := time.Now()
	require.NoError(t, backoff(t.Context(), 1))
	require.Positive(t, time.Since(start))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, backoff(ctx, maxAttempts), context.Canceled)
}

func TestSplitStatements(t *testing.T) {
	text := "-- a comment; with a semicolon\nCREATE TABLE a (\n  x INT -- inline\n);\n\n  -- another\nCREATE INDEX i ON a (x);\nSELECT 1"
	require.Equal(t, []string{
		"CREATE TABLE a (\n  x INT -- inline\n)",
		"CREATE INDEX i ON a (x)",
		"SELECT 1",
	}, splitStatements(text))
}

func TestLoadMigrations(t *testing.T) {
	for _, d := range []Dialect{SQLite, Postgres, MySQL} {
		t.Run(d.String(), func(t *testing.T) {
			ms, err := loadMigrations(d, "p_")
			require.NoError(t, err)
			require.NotEmpty(t, ms)
			require.Equal(t, int64(1), ms[0].version, "the first version is 1")
			for i, m := range ms {
				// A gap in the numbers is allowed: the migrator applies
				// every version it has not recorded, in order, so a
				// migration numbered after one still being written may
				// land first.
				if i > 0 {
					require.Greater(t, m.version, ms[i-1].version, "versions increase")
				}
				require.NotEmpty(t, m.stmts)
				for _, stmt := range m.stmts {
					require.NotContains(t, stmt, "{{", "placeholder left in %s", m.name)
					require.NotContains(t, stmt, ";", "two statements in one in %s", m.name)
				}
			}
		})
	}
}
