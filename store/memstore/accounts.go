package memstore

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth/account"
)

// accountState holds the accounts; Store.mu guards it.
type accountState struct {
	byID       map[string]account.Account
	byUsername map[string]string // username → user id
	versions   map[string]int64  // user id → token version, if above 0
	// byNickname is the search index: the accounts that are not Deleted,
	// as (NicknameKey(Nickname), UserID) in that order, so that a prefix
	// search is a binary search and a walk forward.
	byNickname []nicknameEntry
	// revoked maps revoked token ids to when they expire; sweepAt is
	// when RevokeToken next drops the expired ones.
	revoked map[string]time.Time
	sweepAt time.Time
}

type nicknameEntry struct{ key, userID string }

func compareEntry(a, b nicknameEntry) int {
	return cmp.Or(strings.Compare(a.key, b.key), strings.Compare(a.userID, b.userID))
}

// index adds a to the search index, or leaves it out if it is Deleted; the
// caller holds Store.mu.
func (st *accountState) index(a account.Account) {
	if a.Deleted {
		return
	}
	e := nicknameEntry{account.NicknameKey(a.Nickname), a.UserID}
	i, found := slices.BinarySearchFunc(st.byNickname, e, compareEntry)
	if !found {
		st.byNickname = slices.Insert(st.byNickname, i, e)
	}
}

// unindex removes a from the search index; the caller holds Store.mu.
func (st *accountState) unindex(a account.Account) {
	e := nicknameEntry{account.NicknameKey(a.Nickname), a.UserID}
	if i, found := slices.BinarySearchFunc(st.byNickname, e, compareEntry); found {
		st.byNickname = slices.Delete(st.byNickname, i, i+1)
	}
}

func newAccountState() accountState {
	return accountState{
		byID:       make(map[string]account.Account),
		byUsername: make(map[string]string),
		versions:   make(map[string]int64),
		revoked:    make(map[string]time.Time),
	}
}

var (
	_ account.AccountUpdater  = (*Store)(nil)
	_ account.TokenVersions   = (*Store)(nil)
	_ account.AccountSearcher = (*Store)(nil)
	_ account.RevokedTokens   = (*Store)(nil)
)

// CreateAccount implements account.AccountStore.
func (s *Store) CreateAccount(ctx context.Context, a account.Account) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: create account: %w", err)
	}
	if err := account.ValidateAccount(a); err != nil {
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
	s.accounts.index(a)
	return nil
}

// Account implements account.AccountStore.
func (s *Store) Account(ctx context.Context, userID string) (account.Account, error) {
	if err := ctx.Err(); err != nil {
		return account.Account{}, fmt.Errorf("memstore: account: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.account(userID)
}

// AccountByUsername implements account.AccountStore.
func (s *Store) AccountByUsername(ctx context.Context, username string) (account.Account, error) {
	if err := ctx.Err(); err != nil {
		return account.Account{}, fmt.Errorf("memstore: account by username: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.accounts.byUsername[username]
	if !ok {
		return account.Account{}, fmt.Errorf("memstore: username %q: %w", username, im.ErrNotFound)
	}
	return s.account(id)
}

// account returns a copy of the account with userID; the caller holds s.mu.
func (s *Store) account(userID string) (account.Account, error) {
	a, ok := s.accounts.byID[userID]
	if !ok {
		return account.Account{}, fmt.Errorf("memstore: account %q: %w", userID, im.ErrNotFound)
	}
	a.PasswordHash = bytes.Clone(a.PasswordHash)
	return a, nil
}

// UpdateAccount implements account.AccountUpdater.
func (s *Store) UpdateAccount(ctx context.Context, userID string, u account.AccountUpdate) (account.Account, error) {
	if err := ctx.Err(); err != nil {
		return account.Account{}, fmt.Errorf("memstore: update account: %w", err)
	}
	if err := account.ValidateAccountUpdate(u); err != nil {
		return account.Account{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts.byID[userID]
	if !ok {
		return account.Account{}, fmt.Errorf("memstore: update account %q: %w", userID, im.ErrNotFound)
	}
	s.accounts.unindex(a)
	if u.Nickname != nil {
		a.Nickname = *u.Nickname
	}
	if u.PasswordHash != nil {
		a.PasswordHash = bytes.Clone(u.PasswordHash)
	}
	if u.Disabled != nil {
		a.Disabled = *u.Disabled
	}
	if u.Avatar != nil {
		a.Avatar = *u.Avatar
	}
	if u.Signature != nil {
		a.Signature = *u.Signature
	}
	if u.Gender != nil {
		a.Gender = *u.Gender
	}
	if u.Birth != nil {
		a.Birth = *u.Birth
	}
	if !u.UpdatedAt.IsZero() {
		a.UpdatedAt = u.UpdatedAt
	}
	if u.Deleted != nil {
		a.Deleted = *u.Deleted
	}
	s.accounts.byID[userID] = a
	s.accounts.index(a)
	return s.account(userID)
}

// TokenVersion implements account.TokenVersions.
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

// BumpTokenVersion implements account.TokenVersions.
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

// AccountsByID implements account.AccountSearcher.
func (s *Store) AccountsByID(ctx context.Context, ids []string) ([]account.Account, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: accounts by id: %w", err)
	}
	for _, id := range ids {
		if err := im.ValidateID("user id", id); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]account.Account, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if a, err := s.account(id); err == nil {
			out = append(out, a)
		}
	}
	return out, nil
}

// SearchAccounts implements account.AccountSearcher with a binary search of
// the nickname index.
func (s *Store) SearchAccounts(ctx context.Context, prefix string, limit int) ([]account.Account, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: search accounts: %w", err)
	}
	if prefix == "" {
		return nil, fmt.Errorf("memstore: search accounts: empty prefix: %w", im.ErrInvalidArgument)
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := s.accounts.byNickname
	i, _ := slices.BinarySearchFunc(idx, nicknameEntry{key: prefix}, compareEntry)
	out := []account.Account{}
	for ; i < len(idx) && len(out) < limit && strings.HasPrefix(idx[i].key, prefix); i++ {
		a, err := s.account(idx[i].userID)
		if err != nil {
			return nil, fmt.Errorf("memstore: search accounts: the index names a missing account: %w", im.ErrCorrupt)
		}
		out = append(out, a)
	}
	return out, nil
}

// revokedSweep is how often RevokeToken drops the expired records.
const revokedSweep = time.Minute

// RevokeToken implements account.RevokedTokens.
func (s *Store) RevokeToken(ctx context.Context, tokenID string, expires time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: revoke token: %w", err)
	}
	if err := account.ValidateTokenID(tokenID); err != nil {
		return err
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.After(s.accounts.sweepAt) {
		for id, exp := range s.accounts.revoked {
			if now.After(exp) {
				delete(s.accounts.revoked, id)
			}
		}
		s.accounts.sweepAt = now.Add(revokedSweep)
	}
	if old, ok := s.accounts.revoked[tokenID]; !ok || expires.After(old) {
		s.accounts.revoked[tokenID] = expires
	}
	return nil
}

// TokenRevoked implements account.RevokedTokens.
func (s *Store) TokenRevoked(ctx context.Context, tokenID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("memstore: token revoked: %w", err)
	}
	if err := account.ValidateTokenID(tokenID); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.accounts.revoked[tokenID]
	return ok, nil
}
