package sqlstore

import (
	"database/sql"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/store/sqlstore/sqltest"
)

func TestMigrationsWithAGap(t *testing.T) {
	// Migrations numbered on different branches may be released out of
	// order: a database that has 1 and 3 gets 2 when it appears, and
	// nothing else is run again.
	db, err := sql.Open("sqlite", sqltest.SQLite(t))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	s := &Store{db: db, dialect: SQLite, q: newQueries(SQLite, ""), log: slog.New(slog.DiscardHandler), writer: make(chan struct{}, 1)}
	m := func(v int64, stmt string) migration { return migration{version: v, name: stmt, stmts: []string{stmt}} }
	apply := func(ms ...migration) []int64 {
		t.Helper()
		var done []migration
		require.NoError(t, s.write(t.Context(), false, func(q querier) error {
			var err error
			done, err = s.applyMigrations(t.Context(), q, ms)
			return err
		}))
		var versions []int64
		for _, d := range done {
			versions = append(versions, d.version)
		}
		return versions
	}
	one, two, three := m(1, "CREATE TABLE a (x INTEGER)"), m(2, "CREATE TABLE b (x INTEGER)"), m(3, "CREATE TABLE c (x INTEGER)")
	require.Equal(t, []int64{1, 3}, apply(one, three))
	require.Equal(t, []int64{2}, apply(one, two, three))
	require.Empty(t, apply(one, two, three))
	for _, table := range []string{"a", "b", "c"} {
		_, err := db.ExecContext(t.Context(), "INSERT INTO "+table+" (x) VALUES (1)")
		require.NoError(t, err, table)
	}
}
