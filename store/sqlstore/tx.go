package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"math/rand/v2"
	"reflect"
	"time"
)

// querier runs statements: a *sql.Tx, or on SQLite the *sql.Conn that holds
// a BEGIN IMMEDIATE transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const (
	// maxAttempts bounds how often a transaction that lost a race
	// (deadlock, serialization failure, a concurrent insert of the same
	// dedup key, a busy SQLite file) is run again.
	maxAttempts = 10
	// sqliteBusyTimeout is how long, in milliseconds, a SQLite write waits
	// for another connection's write lock before it fails and is retried.
	sqliteBusyTimeout = "5000"
)

// write runs fn in one transaction and commits it, running it again from
// the start when the database reports a lost race; fn must therefore
// derive everything from what it reads. With retryUnique, a unique-key
// violation counts as a lost race too: the next attempt sees the row the
// other transaction committed.
func (s *Store) write(ctx context.Context, retryUnique bool, fn func(q querier) error) error {
	for attempt := 1; ; attempt++ {
		var err error
		if s.dialect == SQLite {
			err = s.sqliteWriteOnce(ctx, fn)
		} else {
			err = s.writeOnce(ctx, fn)
		}
		if err == nil || attempt == maxAttempts || ctx.Err() != nil || !s.transient(err, retryUnique) {
			return err
		}
		s.log.Debug("sqlstore: retrying transaction", "attempt", attempt, "err", err)
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// read runs fn, again when the database reports a transient error (a busy
// SQLite file, for one).
func (s *Store) read(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == maxAttempts || ctx.Err() != nil || !s.transient(err, false) {
			return err
		}
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// readRows runs query with args as a read (see read) and returns what scan
// makes of each row, in order: an empty slice, not nil, for no rows.
func readRows[T any](ctx context.Context, s *Store, query string, args []any, scan func(*sql.Rows) (T, error)) ([]T, error) {
	var out []T
	err := s.read(ctx, func() error {
		out = []T{}
		rows, err := s.db.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	return out, err
}

func (s *Store) writeOnce(ctx context.Context, fn func(q querier) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// ctx cancels each statement, but not the transaction as a whole:
	// database/sql would roll it back from another goroutine, possibly
	// while the commit is on the wire, leaving an error return that does
	// not mean "nothing was written". Here the commit, once started, runs
	// to its end.
	tx, err := conn.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // the error that matters is err
		return err
	}
	if err := ctx.Err(); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// sqliteWriteOnce is writeOnce for SQLite, whose writers take the database
// lock at BEGIN IMMEDIATE: a deferred transaction that reads first could
// fail at its first write when another connection wrote in between.
func (s *Store) sqliteWriteOnce(ctx context.Context, fn func(q querier) error) error {
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.writer }()

	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Other processes, and other Stores on the same file, take the lock
	// too: wait for them rather than fail at once, whatever the DSN set.
	if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = "+sqliteBusyTimeout); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	if err := fn(conn); err != nil {
		sqliteRollback(conn)
		return err
	}
	if err := ctx.Err(); err != nil {
		sqliteRollback(conn)
		return err
	}
	if _, err := conn.ExecContext(context.WithoutCancel(ctx), "COMMIT"); err != nil {
		sqliteRollback(conn) // a busy COMMIT leaves the transaction open
		return err
	}
	return nil
}

func sqliteRollback(conn *sql.Conn) {
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		// SQLite may have rolled back by itself (after an interrupt, a
		// full disk), or the connection is broken. Either way, don't hand
		// a connection in an unknown state back to the pool.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}

// backoff sleeps before attempt+1, longer after each attempt and with
// jitter, so that the transactions that collided don't collide again.
func backoff(ctx context.Context, attempt int) error {
	d := min(time.Millisecond<<attempt, 100*time.Millisecond)
	d = d/2 + rand.N(d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Error codes of the three databases that the Store acts on.
const (
	pgUniqueViolation      = "23505"
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"

	mysqlDuplicateEntry    = 1062
	mysqlLockWaitTimeout   = 1205
	mysqlDeadlock          = 1213
	sqliteBusy             = 5
	sqliteLocked           = 6
	sqliteConstraintPK     = 1555 // SQLITE_CONSTRAINT_PRIMARYKEY
	sqliteConstraintUnique = 2067 // SQLITE_CONSTRAINT_UNIQUE
)

// transient reports whether err is a lost race after which running the
// transaction again may succeed; with unique, a unique-key violation is one.
func (s *Store) transient(err error, unique bool) bool {
	switch s.dialect {
	case Postgres:
		// pgx's *pgconn.PgError, found by method so that the package does
		// not import a driver the caller might not use.
		var e interface{ SQLState() string }
		if errors.As(err, &e) {
			switch e.SQLState() {
			case pgSerializationFailure, pgDeadlockDetected:
				return true
			case pgUniqueViolation:
				return unique
			}
		}
	case MySQL:
		if n, ok := mysqlErrorNumber(err); ok {
			switch n {
			case mysqlDeadlock, mysqlLockWaitTimeout:
				return true
			case mysqlDuplicateEntry:
				return unique
			}
		}
	case SQLite:
		// modernc.org/sqlite's *sqlite.Error, found by method: importing
		// the driver would link SQLite into every program that uses this
		// package. Codes are extended ones; the low byte is the primary.
		var e interface{ Code() int }
		if errors.As(err, &e) {
			switch c := e.Code(); {
			case c&0xff == sqliteBusy, c&0xff == sqliteLocked:
				return true
			case c == sqliteConstraintUnique, c == sqliteConstraintPK:
				return unique
			}
		}
	}
	return false
}

// mysqlErrorNumber returns the server error number of the first
// *mysql.MySQLError (github.com/go-sql-driver/mysql) in err's tree. The
// driver's error type has no method to find it by, and importing the driver
// for its type would link MySQL into every program that uses this package,
// so it is recognised by its shape: a pointer to a struct named MySQLError
// with a uint16 field Number.
func mysqlErrorNumber(err error) (uint16, bool) {
	for err != nil {
		v := reflect.ValueOf(err)
		if v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct && v.Elem().Type().Name() == "MySQLError" {
			if f := v.Elem().FieldByName("Number"); f.IsValid() && f.Kind() == reflect.Uint16 {
				return uint16(f.Uint()), true
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if n, ok := mysqlErrorNumber(e); ok {
					return n, true
				}
			}
			return 0, false
		default:
			return 0, false
		}
	}
	return 0, false
}

// isUnique reports whether err is a unique-key violation.
func (s *Store) isUnique(err error) bool {
	return s.transient(err, true) && !s.transient(err, false)
}
