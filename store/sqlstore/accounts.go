package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
)

// CreateAccount implements auth.AccountStore. The unique keys on user_id and
// username decide between concurrent creators, in this process or another.
func (s *Store) CreateAccount(ctx context.Context, a auth.Account) error {
	if err := ctx.Err(); err != nil {
		return wrapErr(ctx, "create account", err)
	}
	if err := auth.ValidateAccount(a); err != nil {
		return err
	}
	err := s.write(ctx, false, func(q querier) error {
		_, err := q.ExecContext(ctx, s.q.createAccount, a.UserID, a.Username, blob(a.Nickname),
			content(a.PasswordHash), a.Disabled, a.CreatedAt.UnixMicro())
		return err
	})
	switch {
	case err != nil && s.isUnique(err):
		return fmt.Errorf("sqlstore: create account: user id or username taken: %w", im.ErrConflict)
	case err != nil:
		return wrapErr(ctx, "create account", err)
	}
	return nil
}

// Account implements auth.AccountStore.
func (s *Store) Account(ctx context.Context, userID string) (auth.Account, error) {
	return s.account(ctx, "account", s.q.accountByID, userID)
}

// AccountByUsername implements auth.AccountStore.
func (s *Store) AccountByUsername(ctx context.Context, username string) (auth.Account, error) {
	return s.account(ctx, "account by username", s.q.accountByUsername, username)
}

// account reads the account whose key column equals key. A key that no
// account can have is not found.
func (s *Store) account(ctx context.Context, op, query, key string) (auth.Account, error) {
	if err := ctx.Err(); err != nil {
		return auth.Account{}, wrapErr(ctx, op, err)
	}
	if im.ValidateID("key", key) != nil {
		return auth.Account{}, fmt.Errorf("sqlstore: %s %q: %w", op, key, im.ErrNotFound)
	}
	var a auth.Account
	err := s.read(ctx, func() error {
		var err error
		a, err = scanAccount(s.db.QueryRowContext(ctx, query, key))
		return err
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return auth.Account{}, fmt.Errorf("sqlstore: %s %q: %w", op, key, im.ErrNotFound)
	case err != nil:
		return auth.Account{}, wrapErr(ctx, op, err)
	}
	return a, nil
}

// scanAccount reads a row of accountCols.
func scanAccount(row *sql.Row) (auth.Account, error) {
	var (
		a         auth.Account
		createdAt int64
	)
	if err := row.Scan(&a.UserID, &a.Username, &a.Nickname, &a.PasswordHash, &a.Disabled, &createdAt); err != nil {
		return auth.Account{}, err
	}
	a.CreatedAt = time.UnixMicro(createdAt).UTC()
	return a, nil
}

var (
	_ auth.AccountUpdater = (*Store)(nil)
	_ auth.TokenVersions  = (*Store)(nil)
)

// UpdateAccount implements auth.AccountUpdater: one UPDATE of the fields u
// sets, then the account read back, in one transaction.
func (s *Store) UpdateAccount(ctx context.Context, userID string, u auth.AccountUpdate) (auth.Account, error) {
	if err := ctx.Err(); err != nil {
		return auth.Account{}, wrapErr(ctx, "update account", err)
	}
	if err := auth.ValidateAccountUpdate(u); err != nil {
		return auth.Account{}, err
	}
	if im.ValidateID("user id", userID) != nil {
		return auth.Account{}, fmt.Errorf("sqlstore: update account %q: %w", userID, im.ErrNotFound)
	}
	var (
		sets []string
		args []any
	)
	ph := s.q.placeholders(4)
	if u.Nickname != nil {
		sets, args = append(sets, "nickname = "+ph[len(args)]), append(args, blob(*u.Nickname))
	}
	if u.PasswordHash != nil {
		sets, args = append(sets, "password_hash = "+ph[len(args)]), append(args, content(u.PasswordHash))
	}
	if u.Disabled != nil {
		sets, args = append(sets, "disabled = "+ph[len(args)]), append(args, *u.Disabled)
	}
	if len(sets) == 0 {
		return s.Account(ctx, userID)
	}
	update := "UPDATE " + s.q.accounts + " SET " + strings.Join(sets, ", ") + " WHERE user_id = " + ph[len(args)]
	args = append(args, userID)
	var a auth.Account
	err := s.write(ctx, false, func(q querier) error {
		// Affected rows are not used to tell a missing account: MySQL
		// counts only rows that changed. The read back tells.
		if _, err := q.ExecContext(ctx, update, args...); err != nil {
			return err
		}
		var err error
		a, err = scanAccount(q.QueryRowContext(ctx, s.q.accountByID, userID))
		return err
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return auth.Account{}, fmt.Errorf("sqlstore: update account %q: %w", userID, im.ErrNotFound)
	case err != nil:
		return auth.Account{}, wrapErr(ctx, "update account", err)
	}
	return a, nil
}

// TokenVersion implements auth.TokenVersions.
func (s *Store) TokenVersion(ctx context.Context, userID string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, wrapErr(ctx, "token version", err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return 0, err
	}
	var v int64
	err := s.read(ctx, func() error {
		return s.db.QueryRowContext(ctx, s.q.tokenVersion, userID).Scan(&v)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, wrapErr(ctx, "token version", err)
	}
	return v, nil
}

// BumpTokenVersion implements auth.TokenVersions. The upsert locks the
// user's row until the commit, so concurrent bumps from any process
// sharing the database take turns.
func (s *Store) BumpTokenVersion(ctx context.Context, userID string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, wrapErr(ctx, "bump token version", err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return 0, err
	}
	var v int64
	// retryUnique: two first bumps of a user can both find no row, and
	// the loser of the insert race may see a unique violation rather
	// than waiting; run again, it finds the row.
	err := s.write(ctx, true, func(q querier) error {
		if s.dialect != MySQL {
			return q.QueryRowContext(ctx, s.q.bumpTokenVersion, userID).Scan(&v)
		}
		if _, err := q.ExecContext(ctx, s.q.bumpTokenVersion, userID); err != nil {
			return err
		}
		return q.QueryRowContext(ctx, s.q.tokenVersion, userID).Scan(&v)
	})
	if err != nil {
		return 0, wrapErr(ctx, "bump token version", err)
	}
	return v, nil
}
