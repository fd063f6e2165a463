package sqlstore

import (
	"context"
	"database/sql"
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
