package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
	var (
		a         auth.Account
		createdAt int64
	)
	err := s.read(ctx, func() error {
		return s.db.QueryRowContext(ctx, query, key).Scan(&a.UserID, &a.Username, &a.Nickname,
			&a.PasswordHash, &a.Disabled, &createdAt)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return auth.Account{}, fmt.Errorf("sqlstore: %s %q: %w", op, key, im.ErrNotFound)
	case err != nil:
		return auth.Account{}, wrapErr(ctx, op, err)
	}
	a.CreatedAt = time.UnixMicro(createdAt).UTC()
	return a, nil
}
