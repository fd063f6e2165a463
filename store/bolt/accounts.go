package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth/account"
)

// CreateAccount implements account.AccountStore.
func (s *Store) CreateAccount(ctx context.Context, a account.Account) (err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: create account: %w", err)
	}
	if err := account.ValidateAccount(a); err != nil {
		return err
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
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
		if err := putAccount(tx, accounts, &a); err != nil {
			return err
		}
		if err := usernames.Put(name, sealIn(bucketUsernames, name, id)); err != nil {
			return err
		}
		return indexNickname(tx, nil, &a)
	})
	if err != nil {
		return fmt.Errorf("bolt: create account: %w", err)
	}
	return nil
}

// Account implements account.AccountStore.
func (s *Store) Account(ctx context.Context, userID string) (_ account.Account, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return account.Account{}, fmt.Errorf("bolt: account: %w", err)
	}
	var a account.Account
	err = s.db.View(func(tx *bbolt.Tx) error {
		accounts, err := bucket(tx, bucketAccounts)
		if err != nil {
			return err
		}
		a, err = readAccount(accounts, userID, s.strict)
		return err
	})
	if err != nil {
		return account.Account{}, fmt.Errorf("bolt: account: %w", err)
	}
	return a, nil
}

// AccountByUsername implements account.AccountStore.
func (s *Store) AccountByUsername(ctx context.Context, username string) (_ account.Account, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return account.Account{}, fmt.Errorf("bolt: account by username: %w", err)
	}
	var a account.Account
	err = s.db.View(func(tx *bbolt.Tx) error {
		usernames, err := bucket(tx, bucketUsernames)
		if err != nil {
			return err
		}
		accounts, err := bucket(tx, bucketAccounts)
		if err != nil {
			return err
		}
		v := usernames.Get([]byte(username))
		if v == nil {
			return im.ErrNotFound
		}
		id, err := unsealIn(bucketUsernames, []byte(username), v, s.strict)
		if err != nil {
			return fmt.Errorf("username %q: %w", username, err)
		}
		a, err = readAccount(accounts, string(id), s.strict)
		if errors.Is(err, im.ErrNotFound) {
			return corrupt("username index names missing account %q", id)
		}
		return err
	})
	if err != nil {
		return account.Account{}, fmt.Errorf("bolt: account by username: %w", err)
	}
	return a, nil
}

// readAccount returns im.ErrNotFound itself, unwrapped, when there is no
// such account.
func readAccount(accounts *bbolt.Bucket, userID string, strict bool) (account.Account, error) {
	v := accounts.Get([]byte(userID))
	if v == nil {
		return account.Account{}, im.ErrNotFound
	}
	rec, err := unsealIn(bucketAccounts, []byte(userID), v, strict)
	a := account.Account{}
	if err == nil {
		a, err = decodeAccount(userID, rec)
	}
	if err != nil {
		return account.Account{}, fmt.Errorf("account %q: %w", userID, err)
	}
	return a, nil
}

var _ account.AccountUpdater = (*Store)(nil)

// UpdateAccount implements account.AccountUpdater: the account is read and
// rewritten in one write transaction.
func (s *Store) UpdateAccount(ctx context.Context, userID string, u account.AccountUpdate) (_ account.Account, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return account.Account{}, fmt.Errorf("bolt: update account: %w", err)
	}
	if err := account.ValidateAccountUpdate(u); err != nil {
		return account.Account{}, err
	}
	var a account.Account
	err = s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		accounts, err := bucket(tx, bucketAccounts)
		if err != nil {
			return err
		}
		if a, err = readAccount(accounts, userID, s.strict); err != nil {
			return err
		}
		old := a
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
			a.UpdatedAt = storedTime(u.UpdatedAt) // as it reads back
		}
		if u.Deleted != nil {
			a.Deleted = *u.Deleted
		}
		if err := putAccount(tx, accounts, &a); err != nil {
			return err
		}
		return indexNickname(tx, &old, &a)
	})
	if err != nil {
		return account.Account{}, fmt.Errorf("bolt: update account: %w", err)
	}
	return a, nil
}

// putAccount writes a's record, raising the file's schema version first if
// the record is of version 2 (see schemaProfiles).
func putAccount(tx *bbolt.Tx, accounts *bbolt.Bucket, a *account.Account) error {
	if accountV2(a) {
		if err := raiseSchema(tx, schemaProfiles); err != nil {
			return err
		}
	}
	id := []byte(a.UserID)
	return accounts.Put(id, seal(nil, bucketAccounts, id, func(b []byte) []byte { return appendAccount(b, a) }))
}

// bucketNicknames: NicknameKey(Nickname) 0x00 UserID → an empty sealed
// record, for every account that is not Deleted, so that a search by a
// prefix of the key is a cursor's seek and a walk over the keys with that
// prefix, in the order SearchAccounts gives (the key, then the id). The
// bucket is younger than sealing: every record in it is sealed. User ids
// never contain 0x00, so the id is what follows the last one; a nickname
// that holds 0x00 (ValidateName lets it pass, Accounts' rules do not)
// would sort among the longer keys that begin like it.
const bucketNicknames = "nicknames"

// nicknameKey is the nickname index's key of a.
func nicknameKey(a *account.Account) []byte {
	return idKey(account.NicknameKey(a.Nickname), a.UserID)
}

// indexNickname moves a's entry in the nickname index from where old (nil
// for a new account) had it: none for a Deleted account.
func indexNickname(tx *bbolt.Tx, old, a *account.Account) error {
	b, err := bucket(tx, bucketNicknames)
	if err != nil {
		return err
	}
	var oldKey, newKey []byte
	if old != nil && !old.Deleted {
		oldKey = nicknameKey(old)
	}
	if !a.Deleted {
		newKey = nicknameKey(a)
	}
	if bytes.Equal(oldKey, newKey) {
		return nil
	}
	if oldKey != nil {
		if err := b.Delete(oldKey); err != nil {
			return err
		}
	}
	if newKey == nil {
		return nil
	}
	return b.Put(newKey, seal(nil, bucketNicknames, newKey, nil))
}

// rebuildNicknames makes the nickname index hold exactly the keys of the
// accounts that are not Deleted, writing only what differs. Open runs it
// on a file below schemaProfiles, whose accounts an older version of this
// package, which does not keep the index, may have changed. An account
// record that cannot be read is left out: Check reports it.
func rebuildNicknames(tx *bbolt.Tx, strict bool) error {
	accounts, err := bucket(tx, bucketAccounts)
	if err != nil {
		return err
	}
	index, err := bucket(tx, bucketNicknames)
	if err != nil {
		return err
	}
	var want [][]byte
	err = accounts.ForEach(func(k, v []byte) error {
		rec, err := unsealIn(bucketAccounts, k, v, strict)
		if err != nil {
			return nil
		}
		a, err := decodeAccount(string(k), rec)
		if err != nil || a.Deleted {
			return nil
		}
		want = append(want, nicknameKey(&a))
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(want, bytes.Compare)
	var stale, missing [][]byte
	c := index.Cursor()
	i := 0
	for k, v := c.First(); k != nil; k, v = c.Next() {
		for i < len(want) && bytes.Compare(want[i], k) < 0 {
			missing = append(missing, want[i])
			i++
		}
		if i < len(want) && bytes.Equal(want[i], k) {
			if _, err := unsealIn(bucketNicknames, k, v, true); err != nil || v == nil {
				missing = append(missing, want[i])
			}
			i++
			continue
		}
		stale = append(stale, bytes.Clone(k))
	}
	missing = append(missing, want[i:]...)
	for _, k := range stale {
		if err := index.Delete(k); err != nil {
			return err
		}
	}
	for _, k := range missing {
		if err := index.Put(k, seal(nil, bucketNicknames, k, nil)); err != nil {
			return err
		}
	}
	return nil
}

var _ account.AccountSearcher = (*Store)(nil)

// AccountsByID implements account.AccountSearcher, in one read transaction.
func (s *Store) AccountsByID(ctx context.Context, ids []string) (_ []account.Account, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: accounts by id: %w", err)
	}
	for _, id := range ids {
		if err := im.ValidateID("user id", id); err != nil {
			return nil, err
		}
	}
	out := []account.Account{}
	err = s.db.View(func(tx *bbolt.Tx) error {
		accounts, err := bucket(tx, bucketAccounts)
		if err != nil {
			return err
		}
		seen := make(map[string]bool, len(ids))
		for _, id := range ids {
			if seen[id] {
				continue
			}
			seen[id] = true
			a, err := readAccount(accounts, id, s.strict)
			switch {
			case errors.Is(err, im.ErrNotFound):
				continue
			case err != nil:
				return err
			}
			out = append(out, a)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: accounts by id: %w", err)
	}
	return out, nil
}

// SearchAccounts implements account.AccountSearcher: a seek in the nickname
// index to prefix, and a walk over the keys that begin with it, reading
// the account each names, until limit are found.
func (s *Store) SearchAccounts(ctx context.Context, prefix string, limit int) (_ []account.Account, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: search accounts: %w", err)
	}
	switch {
	case prefix == "":
		return nil, fmt.Errorf("bolt: search accounts: the prefix is empty: %w", im.ErrInvalidArgument)
	case strings.IndexByte(prefix, 0) >= 0:
		// It would reach past the nickname into the ids.
		return nil, fmt.Errorf("bolt: search accounts: the prefix holds a 0x00 byte: %w", im.ErrInvalidArgument)
	case limit < 1:
		return nil, fmt.Errorf("bolt: search accounts: limit %d is below 1: %w", limit, im.ErrInvalidArgument)
	}
	out := []account.Account{}
	err = s.db.View(func(tx *bbolt.Tx) error {
		accounts, err := bucket(tx, bucketAccounts)
		if err != nil {
			return err
		}
		index, err := bucket(tx, bucketNicknames)
		if err != nil {
			return err
		}
		p := []byte(prefix)
		c := index.Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p) && len(out) < limit; k, v = c.Next() {
			if _, err := unsealIn(bucketNicknames, k, v, true); err != nil {
				return fmt.Errorf("nickname index %q: %w", k, err)
			}
			i := bytes.LastIndexByte(k, 0)
			if i < 0 {
				return corrupt("nickname index key %q names no user", k)
			}
			a, err := readAccount(accounts, string(k[i+1:]), s.strict)
			if errors.Is(err, im.ErrNotFound) {
				return corrupt("nickname index names missing account %q", k[i+1:])
			}
			if err != nil {
				return err
			}
			if a.Deleted || !bytes.Equal(nicknameKey(&a), k) {
				return corrupt("nickname index key %q does not match account %q", k, a.UserID)
			}
			out = append(out, a)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: search accounts: %w", err)
	}
	return out, nil
}

// checkNicknames checks that the nickname index holds exactly the keys of
// the accounts that are not Deleted, each sealed.
func (c *checker) checkNicknames(ctx context.Context) error {
	accounts, index := c.tx.Bucket([]byte(bucketAccounts)), c.tx.Bucket([]byte(bucketNicknames))
	err := accounts.ForEach(func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := unsealIn(bucketAccounts, k, v, c.strict)
		if err != nil {
			return nil // reported by checkRecords
		}
		a, err := decodeAccount(string(k), rec)
		if err != nil {
			return nil
		}
		if accountV2(&a) && c.version < schemaProfiles {
			c.problem("account %q: a record of version 2 in a file of schema version %d", k, c.version)
		}
		if !a.Deleted && index.Get(nicknameKey(&a)) == nil {
			c.problem("account %q: its nickname %q is not in the nickname index", k, a.Nickname)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return index.ForEach(func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := unsealIn(bucketNicknames, k, v, true); err != nil {
			c.problem("nickname index %q: %v", k, err)
		}
		i := bytes.LastIndexByte(k, 0)
		if i < 0 {
			c.problem("nickname index key %q names no user", k)
			return nil
		}
		a, err := readAccount(accounts, string(k[i+1:]), c.strict)
		switch {
		case errors.Is(err, im.ErrNotFound):
			c.problem("nickname index key %q names no account", k)
		case err != nil:
			// reported by checkRecords
		case a.Deleted:
			c.problem("nickname index key %q names a deleted account", k)
		case !bytes.Equal(nicknameKey(&a), k):
			c.problem("nickname index key %q is not that of account %q, nicknamed %q", k, a.UserID, a.Nickname)
		}
		return nil
	})
}
