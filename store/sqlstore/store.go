package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth/account"
)

// Dialect names the SQL database behind a *sql.DB. Each has its own schema
// and statements; the Store does not guess it from the driver.
type Dialect int

// The supported dialects, each with the driver it is tested with.
const (
	// SQLite, with the pure-Go driver modernc.org/sqlite ("sqlite").
	SQLite Dialect = iota + 1
	// Postgres is PostgreSQL, with github.com/jackc/pgx/v5/stdlib ("pgx").
	Postgres
	// MySQL is MySQL 8 or MariaDB 10.5 and later, with
	// github.com/go-sql-driver/mysql ("mysql").
	MySQL
)

func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	case MySQL:
		return "mysql"
	}
	return fmt.Sprintf("Dialect(%d)", int(d))
}

// Options configures New.
type Options struct {
	// Dialect of the database. Required.
	Dialect Dialect
	// TablePrefix is put before every table and index name, so that
	// several stores, or other applications, can share one database or
	// schema. Empty, or a lower-case letter followed by up to 31 lower-case
	// letters, digits and underscores.
	TablePrefix string
	// Logger receives migrations applied and transactions retried. Nil
	// means discard.
	Logger *slog.Logger
}

// Store is an im.Store in a SQL database. Create it with New.
type Store struct {
	db      *sql.DB
	dialect Dialect
	q       queries
	log     *slog.Logger
	// writer serialises the write transactions of this Store on SQLite,
	// which has one writer per database anyway: waiting here, in order and
	// honouring ctx, beats polling SQLite's lock. Nil on other dialects.
	writer chan struct{}
	// id is the store's identity, read once by New.
	id string
}

var (
	_ im.Store  = (*Store)(nil)
	_ im.Pinger = (*Store)(nil)

	_ im.SyncStore         = (*Store)(nil)
	_ im.ReadStateStore    = (*Store)(nil)
	_ im.RecallStore       = (*Store)(nil)
	_ account.AccountStore = (*Store)(nil)
)

// New returns a Store keeping its data in db, after bringing the schema up
// to date (see the package documentation on migrations). The caller owns
// db, chooses its driver and pool settings, and closes it when the Store
// is no longer used; the Store itself holds nothing that needs closing.
func New(ctx context.Context, db *sql.DB, opts Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: new: db is nil")
	}
	switch opts.Dialect {
	case SQLite, Postgres, MySQL:
	default:
		return nil, fmt.Errorf("sqlstore: new: unknown %v; set Options.Dialect", opts.Dialect)
	}
	if !validPrefix(opts.TablePrefix) {
		return nil, fmt.Errorf("sqlstore: new: TablePrefix %q: want a lower-case letter and up to 31 of [a-z0-9_]", opts.TablePrefix)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		db:      db,
		dialect: opts.Dialect,
		q:       newQueries(opts.Dialect, opts.TablePrefix),
		log:     log,
	}
	if s.dialect == SQLite {
		s.writer = make(chan struct{}, 1)
	}
	if err := s.migrate(ctx, opts.TablePrefix); err != nil {
		return nil, fmt.Errorf("sqlstore: new: %w", err)
	}
	// The prefix is checked above: it can go into the text.
	err := db.QueryRowContext(ctx, "SELECT meta_value FROM "+opts.TablePrefix+"store_meta WHERE meta_key = 'store_id'").Scan(&s.id)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: new: the store's id: %w", err)
	}
	return s, nil
}

// ID returns the store's identity: random, made when the schema was first
// created (or brought up to the version that added it), and kept in the
// database, so that a server can tell its own database from another one.
// Every Store on the same tables returns the same one.
func (s *Store) ID() string { return s.id }

// validPrefix reports whether p can go into SQL text unquoted: it is
// pasted into table names, which cannot be parameters.
func validPrefix(p string) bool {
	if len(p) > 32 {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_'):
		default:
			return false
		}
	}
	return true
}

// Ping implements im.Pinger: it checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return wrapErr(ctx, "ping", err)
	}
	return nil
}

// wrapErr prefixes err with the operation, and makes sure that an error
// caused by ctx ending satisfies errors.Is with ctx.Err() even when the
// driver reported it in its own words.
func wrapErr(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("sqlstore: %s: %w (%w)", op, cerr, err)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}
