package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
)

// MigrateTo applies the migrations of d up to version, and no later ones,
// to db: the schema an older release of the package left behind.
func MigrateTo(ctx context.Context, db *sql.DB, d Dialect, version int64) error {
	s := &Store{db: db, dialect: d, q: newQueries(d, ""), log: slog.New(slog.DiscardHandler)}
	if d == SQLite {
		s.writer = make(chan struct{}, 1)
	}
	ms, err := loadMigrations(d, "")
	if err != nil {
		return err
	}
	var upTo []migration
	for _, m := range ms {
		if m.version <= version {
			upTo = append(upTo, m)
		}
	}
	if d == MySQL {
		_, err = s.migrateMySQL(ctx, "", upTo)
		return err
	}
	return s.write(ctx, false, func(q querier) error {
		_, err := s.applyMigrations(ctx, q, upTo)
		return err
	})
}

// SearchQuery is the statement SearchAccounts runs for a prefix with an
// upper bound: key from, key to, limit.
func (s *Store) SearchQuery() string { return s.q.profiles.search }

// PrefixEnd is prefixEnd, for tests.
func PrefixEnd(prefix []byte) ([]byte, bool) { return prefixEnd(prefix) }

// MigrationStatements is the number of statements of each migration of
// d, by version.
func MigrationStatements(d Dialect) (map[int64]int, error) {
	ms, err := loadMigrations(d, "")
	if err != nil {
		return nil, err
	}
	out := make(map[int64]int, len(ms))
	for _, m := range ms {
		out[m.version] = len(m.stmts)
	}
	return out, nil
}

// MigrateInterrupted leaves db as a MySQL process killed in the middle of
// migration version leaves it: the migrations before it applied and
// recorded, the first stmts statements of it run (MySQL commits each DDL
// statement on its own) and it not recorded.
func MigrateInterrupted(ctx context.Context, db *sql.DB, version int64, stmts int) error {
	if version > 1 {
		if err := MigrateTo(ctx, db, MySQL, version-1); err != nil {
			return err
		}
	}
	ms, err := loadMigrations(MySQL, "")
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, m := range ms {
		if m.version != version {
			continue
		}
		for _, stmt := range m.stmts[:stmts] {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
		}
		return nil
	}
	return fmt.Errorf("no migration %d", version)
}
