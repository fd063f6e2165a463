package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth/account"
)

// CreateAccount implements account.AccountStore. The unique keys on user_id and
// username decide between concurrent creators, in this process or another.
func (s *Store) CreateAccount(ctx context.Context, a account.Account) error {
	if err := ctx.Err(); err != nil {
		return wrapErr(ctx, "create account", err)
	}
	if err := account.ValidateAccount(a); err != nil {
		return err
	}
	err := s.write(ctx, false, func(q querier) error {
		_, err := q.ExecContext(ctx, s.q.createAccount, a.UserID, a.Username, blob(a.Nickname),
			content(a.PasswordHash), a.Disabled, a.CreatedAt.UnixMicro(), blob(a.Avatar), blob(a.Signature),
			int64(a.Gender), a.Birth, microsOrZero(a.UpdatedAt), a.Deleted, nicknameKey(a.Nickname))
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

// Account implements account.AccountStore.
func (s *Store) Account(ctx context.Context, userID string) (account.Account, error) {
	return s.account(ctx, "account", s.q.accountByID, userID)
}

// AccountByUsername implements account.AccountStore.
func (s *Store) AccountByUsername(ctx context.Context, username string) (account.Account, error) {
	return s.account(ctx, "account by username", s.q.accountByUsername, username)
}

// account reads the account whose key column equals key. A key that no
// account can have is not found.
func (s *Store) account(ctx context.Context, op, query, key string) (account.Account, error) {
	if err := ctx.Err(); err != nil {
		return account.Account{}, wrapErr(ctx, op, err)
	}
	if im.ValidateID("key", key) != nil {
		return account.Account{}, fmt.Errorf("sqlstore: %s %q: %w", op, key, im.ErrNotFound)
	}
	var a account.Account
	err := s.read(ctx, func() error {
		var err error
		a, err = scanAccount(s.db.QueryRowContext(ctx, query, key))
		return err
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return account.Account{}, fmt.Errorf("sqlstore: %s %q: %w", op, key, im.ErrNotFound)
	case err != nil:
		return account.Account{}, wrapErr(ctx, op, err)
	}
	return a, nil
}

// scanAccount reads a row of accountCols.
func scanAccount(row rowScanner) (account.Account, error) {
	var (
		a                            account.Account
		createdAt, updatedAt, gender int64
	)
	if err := row.Scan(&a.UserID, &a.Username, &a.Nickname, &a.PasswordHash, &a.Disabled, &createdAt,
		&a.Avatar, &a.Signature, &gender, &a.Birth, &updatedAt, &a.Deleted); err != nil {
		return account.Account{}, err
	}
	if gender < math.MinInt32 || gender > math.MaxInt32 {
		return account.Account{}, fmt.Errorf("account %q: gender %d out of range", a.UserID, gender)
	}
	a.Gender = im.Gender(gender)
	a.CreatedAt = time.UnixMicro(createdAt).UTC()
	a.UpdatedAt = timeOrZero(updatedAt)
	return a, nil
}

// maxNicknameKey bounds nickname_key, in bytes, so that every key fits
// an index entry (PostgreSQL's B-tree takes about 2700 bytes, InnoDB's
// 3072): a nickname that long is searched by its first 1024 bytes.
const maxNicknameKey = 1024

// nicknameKey returns the nickname_key of nickname: account.NicknameKey,
// cut to maxNicknameKey bytes at the start of a character. It is a byte
// string, compared byte by byte in every dialect.
func nicknameKey(nickname string) []byte {
	k := account.NicknameKey(nickname)
	if len(k) > maxNicknameKey {
		n := maxNicknameKey
		for n > 0 && !utf8.RuneStart(k[n]) {
			n--
		}
		k = k[:n]
	}
	return []byte(k)
}

// microsOrZero stores t as unix microseconds, the zero time as 0: the
// columns added after the first release (updated_at, muted_until) are 0
// for "never".
func microsOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// timeOrZero reads what microsOrZero stored.
func timeOrZero(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

var (
	_ account.AccountUpdater = (*Store)(nil)
	_ account.TokenVersions  = (*Store)(nil)
)

// UpdateAccount implements account.AccountUpdater: one UPDATE of the fields u
// sets, then the account read back, in one transaction.
func (s *Store) UpdateAccount(ctx context.Context, userID string, u account.AccountUpdate) (account.Account, error) {
	if err := ctx.Err(); err != nil {
		return account.Account{}, wrapErr(ctx, "update account", err)
	}
	if err := account.ValidateAccountUpdate(u); err != nil {
		return account.Account{}, err
	}
	if im.ValidateID("user id", userID) != nil {
		return account.Account{}, fmt.Errorf("sqlstore: update account %q: %w", userID, im.ErrNotFound)
	}
	var (
		sets []string
		args []any
	)
	ph := s.q.placeholders(12)
	set := func(col string, v any) {
		sets, args = append(sets, col+" = "+ph[len(args)]), append(args, v)
	}
	if u.Nickname != nil {
		// The key goes with the nickname, computed here: Go's folding is
		// the one searches use, whatever the database's LOWER does.
		set("nickname", blob(*u.Nickname))
		set("nickname_key", nicknameKey(*u.Nickname))
	}
	if u.PasswordHash != nil {
		set("password_hash", content(u.PasswordHash))
	}
	if u.Disabled != nil {
		set("disabled", *u.Disabled)
	}
	if u.Avatar != nil {
		set("avatar", blob(*u.Avatar))
	}
	if u.Signature != nil {
		set("signature", blob(*u.Signature))
	}
	if u.Gender != nil {
		set("gender", int64(*u.Gender))
	}
	if u.Birth != nil {
		set("birth", *u.Birth)
	}
	if !u.UpdatedAt.IsZero() {
		set("updated_at", u.UpdatedAt.UnixMicro())
	}
	if u.Deleted != nil {
		set("deleted", *u.Deleted)
	}
	if len(sets) == 0 {
		return s.Account(ctx, userID)
	}
	update := "UPDATE " + s.q.accounts + " SET " + strings.Join(sets, ", ") + " WHERE user_id = " + ph[len(args)]
	args = append(args, userID)
	var a account.Account
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
		return account.Account{}, fmt.Errorf("sqlstore: update account %q: %w", userID, im.ErrNotFound)
	case err != nil:
		return account.Account{}, wrapErr(ctx, "update account", err)
	}
	return a, nil
}

// TokenVersion implements account.TokenVersions.
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

// BumpTokenVersion implements account.TokenVersions. The upsert locks the
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
