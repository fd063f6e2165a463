package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// migrationFiles holds migrations/<dialect>/NNNN_name.sql: the schema
// changes of each dialect, applied in the order of NNNN.
//
//go:embed migrations
var migrationFiles embed.FS

// migration is one schema change.
type migration struct {
	version int64
	name    string
	stmts   []string
}

// loadMigrations reads the migrations of dialect d with the table prefix
// filled in.
func loadMigrations(d Dialect, prefix string) ([]migration, error) {
	dir := path.Join("migrations", d.String())
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		version, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || version <= 0 || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		text, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{
			version: version,
			name:    e.Name(),
			stmts:   splitStatements(strings.ReplaceAll(string(text), "{{prefix}}", prefix)),
		})
	}
	slices.SortFunc(out, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s have the same version", out[i-1].name, out[i].name)
		}
	}
	return out, nil
}

// splitStatements splits a migration file into statements: the drivers run
// one per call. A statement ends with ";" at the end of a line; lines that
// start with "--" are comments.
func splitStatements(text string) []string {
	var (
		out []string
		cur strings.Builder
	)
	for line := range strings.Lines(text) {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		out = append(out, rest)
	}
	return out
}

// migrate brings the schema up to date. It holds a lock for the whole
// run, so that processes starting at once apply each migration once: a
// Postgres advisory lock inside the migrating transaction, a MySQL named
// lock (MySQL commits DDL implicitly, so there is no such transaction), or
// SQLite's write lock.
func (s *Store) migrate(ctx context.Context, prefix string) error {
	ms, err := loadMigrations(s.dialect, prefix)
	if err != nil {
		return err
	}
	var applied []migration
	switch s.dialect {
	case MySQL:
		applied, err = s.migrateMySQL(ctx, prefix, ms)
	case SQLite:
		if err := s.sqliteWAL(ctx); err != nil {
			return err
		}
		fallthrough
	default:
		err = s.write(ctx, false, func(q querier) error {
			if s.dialect == Postgres {
				if _, err := q.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", advisoryKey(prefix)); err != nil {
					return fmt.Errorf("migration lock: %w", err)
				}
			}
			applied, err = s.applyMigrations(ctx, q, ms)
			return err
		})
	}
	if err != nil {
		return err
	}
	for _, m := range applied {
		s.log.Info("sqlstore: applied migration", "dialect", s.dialect.String(), "version", m.version, "name", m.name)
	}
	return nil
}

// advisoryKey is the Postgres advisory lock taken while migrating tables
// with prefix. Stores in other schemas of the same database share it,
// which only makes their migrations take turns.
func advisoryKey(prefix string) int64 {
	h := fnv.New64a()
	h.Write([]byte("imserver/store/sqlstore migrations " + prefix))
	return int64(h.Sum64())
}

// sqliteWAL switches the database to write-ahead logging, a setting kept
// in the file: reads then never wait for a write, and a write waits for
// no read. An in-memory database keeps its own mode, which is fine.
func (s *Store) sqliteWAL(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = "+sqliteBusyTimeout); err != nil {
		return err
	}
	// The switch needs the file to itself, and SQLite reports a busy file
	// at once rather than through the busy timeout: retry, as long as the
	// busy timeout would have waited.
	deadline := time.Now().Add(5 * time.Second)
	for attempt := 1; ; attempt++ {
		var mode string
		err := conn.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode)
		if err == nil {
			return nil
		}
		if !s.transient(err, false) || time.Now().After(deadline) {
			return fmt.Errorf("journal mode: %w", err)
		}
		if err := backoff(ctx, min(attempt, 6)); err != nil {
			return err
		}
	}
}

// mysqlLockTimeout is how long, in seconds, New waits for another process
// that is migrating the same database; ctx can end the wait earlier.
const mysqlLockTimeout = 600

func (s *Store) migrateMySQL(ctx context.Context, prefix string, ms []migration) (applied []migration, err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// A named lock belongs to the session, so everything runs on conn.
	// The name is per database and prefix, and hashed to fit MySQL's 64
	// characters.
	const lockName = "CONCAT('imserver:', SHA1(CONCAT(COALESCE(DATABASE(), ''), ':', ?)))"
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK("+lockName+", ?)", prefix, mysqlLockTimeout).Scan(&got); err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	if got.Int64 != 1 {
		return nil, fmt.Errorf("migration lock: not granted within %d s", mysqlLockTimeout)
	}
	defer func() {
		var released sql.NullInt64
		rerr := conn.QueryRowContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK("+lockName+")", prefix).Scan(&released)
		if rerr != nil && err == nil {
			err = fmt.Errorf("migration lock: release: %w", rerr)
		}
	}()
	return s.applyMigrations(ctx, conn, ms)
}

// applyMigrations runs, under the migration lock, the migrations that q's
// database has not seen yet, records each, and returns them.
func (s *Store) applyMigrations(ctx context.Context, q querier, ms []migration) ([]migration, error) {
	create := "CREATE TABLE IF NOT EXISTS " + s.q.migrations + " (version BIGINT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)"
	if _, err := q.ExecContext(ctx, create); err != nil {
		return nil, fmt.Errorf("create %s: %w", s.q.migrations, err)
	}
	applied := make(map[int64]bool)
	rows, err := q.QueryContext(ctx, "SELECT version FROM "+s.q.migrations)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.q.migrations, err)
	}
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read %s: %w", s.q.migrations, err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", s.q.migrations, err)
	}
	latest := ms[len(ms)-1].version
	for v := range applied {
		if v > latest {
			return nil, fmt.Errorf("schema version %d is newer than this package's %d", v, latest)
		}
	}
	record := "INSERT INTO " + s.q.migrations + " (version, applied_at) VALUES (" + strings.Join(s.q.placeholders(2), ", ") + ")"
	var done []migration
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		for _, stmt := range m.stmts {
			if _, err := q.ExecContext(ctx, stmt); err != nil {
				return nil, fmt.Errorf("migration %s: %w", m.name, err)
			}
		}
		if _, err := q.ExecContext(ctx, record, m.version, time.Now().UnixMicro()); err != nil {
			return nil, fmt.Errorf("migration %s: record: %w", m.name, err)
		}
		done = append(done, m)
	}
	return done, nil
}
