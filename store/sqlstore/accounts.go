package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/imserver/imserver/im"
)

// CreateAccount implements im.AccountStore. The unique keys on user_id and
// username decide between concurrent creators, in this process or another.
func (s *Store) CreateAccount(ctx context.Context, a im.Account) error {
	if err := ctx.Err(); err != nil {
		return wrapErr(ctx, "create account", err)
	}
	if err := im.ValidateID("user id", a.UserID); err != nil {
		return err
	}
	if err := im.ValidateID("username", a.Username); err != nil {
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

// Account implements im.AccountStore.
func (s *Store) Account(ctx context.Context, userID string) (im.Account, error) {
	return s.account(ctx, "account", s.q.accountByID, userID)
}

// AccountByUsername implements im.AccountStore.
func (s *Store) AccountByUsername(ctx context.Context, username string) (im.Account, error) {
	return s.account(ctx, "account by username", s.q.accountByUsername, username)
}

// account reads the account whose key column equals key. A key that no
// account can have is not found.
func (s *Store) account(ctx context.Context, op, query, key string) (im.Account, error) {
	if err := ctx.Err(); err != nil {
		return im.Account{}, wrapErr(ctx, op, err)
	}
	if im.ValidateID("key", key) != nil {
		return im.Account{}, fmt.Errorf("sqlstore: %s %q: %w", op, key, im.ErrNotFound)
	}
	var (
		a         im.Account
		createdAt int64
	)
	err := s.read(ctx, func() error {
		return s.db.QueryRowContext(ctx, query, key).Scan(&a.UserID, &a.Username, &a.Nickname,
			&a.PasswordHash, &a.Disabled, &createdAt)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return im.Account{}, fmt.Errorf("sqlstore: %s %q: %w", op, key, im.ErrNotFound)
	case err != nil:
		return im.Account{}, wrapErr(ctx, op, err)
	}
	a.CreatedAt = time.UnixMicro(createdAt).UTC()
	return a, nil
}
