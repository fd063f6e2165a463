package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
)

// CreateAccount implements auth.AccountStore.
func (s *Store) CreateAccount(ctx context.Context, a auth.Account) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: create account: %w", err)
	}
	if err := auth.ValidateAccount(a); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		accounts, err := bucket(tx, bucketAccounts)
		if err != nil {
			return err
		}
		usernames, err := bucket(tx, bucketUsernames)
		if err != nil {
			return err
		}
		id, name := []byte(a.UserID), []byte(a.Username)
		if accounts.Get(id) != nil {
			return fmt.Errorf("user id taken: %w", im.ErrConflict)
		}
		if usernames.Get(name) != nil {
			return fmt.Errorf("username taken: %w", im.ErrConflict)
		}
		if err := accounts.Put(id, appendAccount(nil, &a)); err != nil {
			return err
		}
		return usernames.Put(name, id)
	})
	if err != nil {
		return fmt.Errorf("bolt: create account: %w", err)
	}
	return nil
}

// Account implements auth.AccountStore.
func (s *Store) Account(ctx context.Context, userID string) (auth.Account, error) {
	if err := ctx.Err(); err != nil {
		return auth.Account{}, fmt.Errorf("bolt: account: %w", err)
	}
	var a auth.Account
	err := s.db.View(func(tx *bbolt.Tx) error {
		accounts, err := bucket(tx, bucketAccounts)
		if err != nil {
			return err
		}
		a, err = readAccount(accounts, userID)
		return err
	})
	if err != nil {
		return auth.Account{}, fmt.Errorf("bolt: account: %w", err)
	}
	return a, nil
}

// AccountByUsername implements auth.AccountStore.
func (s *Store) AccountByUsername(ctx context.Context, username string) (auth.Account, error) {
	if err := ctx.Err(); err != nil {
		return auth.Account{}, fmt.Errorf("bolt: account by username: %w", err)
	}
	var a auth.Account
	err := s.db.View(func(tx *bbolt.Tx) error {
		usernames, err := bucket(tx, bucketUsernames)
		if err != nil {
			return err
		}
		accounts, err := bucket(tx, bucketAccounts)
		if err != nil {
			return err
		}
		id := usernames.Get([]byte(username))
		if id == nil {
			return im.ErrNotFound
		}
		a, err = readAccount(accounts, string(id))
		if errors.Is(err, im.ErrNotFound) {
			return corrupt("username index names missing account %q", id)
		}
		return err
	})
	if err != nil {
		return auth.Account{}, fmt.Errorf("bolt: account by username: %w", err)
	}
	return a, nil
}

// readAccount returns im.ErrNotFound itself, unwrapped, when there is no
// such account.
func readAccount(accounts *bbolt.Bucket, userID string) (auth.Account, error) {
	v := accounts.Get([]byte(userID))
	if v == nil {
		return auth.Account{}, im.ErrNotFound
	}
	a, err := decodeAccount(userID, v)
	if err != nil {
		return auth.Account{}, fmt.Errorf("account %q: %w", userID, err)
	}
	return a, nil
}

var _ auth.AccountUpdater = (*Store)(nil)

// UpdateAccount implements auth.AccountUpdater: the account is read and
// rewritten in one write transaction.
func (s *Store) UpdateAccount(ctx context.Context, userID string, u auth.AccountUpdate) (auth.Account, error) {
	if err := ctx.Err(); err != nil {
		return auth.Account{}, fmt.Errorf("bolt: update account: %w", err)
	}
	if err := auth.ValidateAccountUpdate(u); err != nil {
		return auth.Account{}, err
	}
	var a auth.Account
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		accounts, err := bucket(tx, bucketAccounts)
		if err != nil {
			return err
		}
		if a, err = readAccount(accounts, userID); err != nil {
			return err
		}
		if u.Nickname != nil {
			a.Nickname = *u.Nickname
		}
		if u.PasswordHash != nil {
			a.PasswordHash = bytes.Clone(u.PasswordHash)
		}
		if u.Disabled != nil {
			a.Disabled = *u.Disabled
		}
		return accounts.Put([]byte(userID), appendAccount(nil, &a))
	})
	if err != nil {
		return auth.Account{}, fmt.Errorf("bolt: update account: %w", err)
	}
	return a, nil
}
