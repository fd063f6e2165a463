package memstore

import (
	"bytes"
	"context"
	"fmt"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
)

// accountState holds the accounts; Store.mu guards it.
type accountState struct {
	byID       map[string]auth.Account
	byUsername map[string]string // username → user id
	versions   map[string]int64  // user id → token version, if above 0
}

func newAccountState() accountState {
	return accountState{
		byID:       make(map[string]auth.Account),
		byUsername: make(map[string]string),
		versions:   make(map[string]int64),
	}
}

var (
	_ auth.AccountUpdater = (*Store)(nil)
	_ auth.TokenVersions  = (*Store)(nil)
)

// CreateAccount implements auth.AccountStore.
func (s *Store) CreateAccount(ctx context.Context, a auth.Account) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: create account: %w", err)
	}
	if err := auth.ValidateAccount(a); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts.byID[a.UserID]; ok {
		return fmt.Errorf("memstore: create account: user id taken: %w", im.ErrConflict)
	}
	if _, ok := s.accounts.byUsername[a.Username]; ok {
		return fmt.Errorf("memstore: create account: username taken: %w", im.ErrConflict)
	}
	a.PasswordHash = bytes.Clone(a.PasswordHash)
	s.accounts.byID[a.UserID] = a
	s.accounts.byUsername[a.Username] = a.UserID
	return nil
}

// Account implements auth.AccountStore.
func (s *Store) Account(ctx context.Context, userID string) (auth.Account, error) {
	if err := ctx.Err(); err != nil {
		return auth.Account{}, fmt.Errorf("memstore: account: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.account(userID)
}

// AccountByUsername implements auth.AccountStore.
func (s *Store) AccountByUsername(ctx context.Context, username string) (auth.Account, error) {
	if err := ctx.Err(); err != nil {
		return auth.Account{}, fmt.Errorf("memstore: account by username: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.accounts.byUsername[username]
	if !ok {
		return auth.Account{}, fmt.Errorf("memstore: username %q: %w", username, im.ErrNotFound)
	}
	return s.account(id)
}

// account returns a copy of the account with userID; the caller holds s.mu.
func (s *Store) account(userID string) (auth.Account, error) {
	a, ok := s.accounts.byID[userID]
	if !ok {
		return auth.Account{}, fmt.Errorf("memstore: account %q: %w", userID, im.ErrNotFound)
	}
	a.PasswordHash = bytes.Clone(a.PasswordHash)
	return a, nil
}

// UpdateAccount implements auth.AccountUpdater.
func (s *Store) UpdateAccount(ctx context.Context, userID string, u auth.AccountUpdate) (auth.Account, error) {
	if err := ctx.Err(); err != nil {
		return auth.Account{}, fmt.Errorf("memstore: update account: %w", err)
	}
	if err := auth.ValidateAccountUpdate(u); err != nil {
		return auth.Account{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts.byID[userID]
	if !ok {
		return auth.Account{}, fmt.Errorf("memstore: update account %q: %w", userID, im.ErrNotFound)
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
	s.accounts.byID[userID] = a
	return s.account(userID)
}

// TokenVersion implements auth.TokenVersions.
func (s *Store) TokenVersion(ctx context.Context, userID string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memstore: token version: %w", err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accounts.versions[userID], nil
}

// BumpTokenVersion implements auth.TokenVersions.
func (s *Store) BumpTokenVersion(ctx context.Context, userID string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memstore: bump token version: %w", err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts.versions[userID]++
	return s.accounts.versions[userID], nil
}
