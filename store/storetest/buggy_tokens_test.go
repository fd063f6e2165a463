package storetest_test

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
)

var (
	_ auth.AccountUpdater = (*buggyStore)(nil)
	_ auth.TokenVersions  = (*buggyStore)(nil)
)

func (b *buggyStore) UpdateAccount(ctx context.Context, userID string, u auth.AccountUpdate) (auth.Account, error) {
	if b.bug == "update-clears-unset" {
		// Treats a field left nil as "set to empty", as a store writing
		// every column from the update would.
		empty, no := "", false
		if u.Nickname == nil {
			u.Nickname = &empty
		}
		if u.Disabled == nil {
			u.Disabled = &no
		}
	}
	if b.bug == "update-ignores-profile" {
		u.Avatar, u.Signature, u.Gender, u.Birth, u.Deleted = nil, nil, nil, nil, nil
	}
	a, err := b.Store.UpdateAccount(b.ctx(ctx), userID, u)
	return a, b.accept(err)
}

func (b *buggyStore) TokenVersion(ctx context.Context, userID string) (int64, error) {
	if b.bug == "bump-racy" || b.bug == "bump-no-validation" {
		return b.racyVersion(ctx, userID)
	}
	return b.Store.TokenVersion(b.ctx(ctx), userID)
}

func (b *buggyStore) BumpTokenVersion(ctx context.Context, userID string) (int64, error) {
	switch b.bug {
	case "bump-racy":
		// Reads, then writes one more, in two steps: concurrent bumps
		// lose each other's.
		v, err := b.racyVersion(ctx, userID)
		if err != nil {
			return 0, err
		}
		time.Sleep(time.Millisecond) // a round trip to a database
		b.mu.Lock()
		defer b.mu.Unlock()
		b.versions[userID] = v + 1
		return v + 1, nil
	case "bump-no-validation":
		b.mu.Lock()
		defer b.mu.Unlock()
		b.versions[userID]++
		return b.versions[userID], nil
	}
	return b.Store.BumpTokenVersion(b.ctx(ctx), userID)
}

// racyVersion reads the versions kept by bump-racy and bump-no-validation.
func (b *buggyStore) racyVersion(ctx context.Context, userID string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := im.ValidateID("user id", userID); err != nil && b.bug != "bump-no-validation" {
		return 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.versions[userID], nil
}

var (
	_ auth.AccountSearcher = (*buggyStore)(nil)
	_ auth.RevokedTokens   = (*buggyStore)(nil)
)

func (b *buggyStore) SearchAccounts(ctx context.Context, prefix string, limit int) ([]auth.Account, error) {
	switch b.bug {
	case "search-unordered":
		// Orders by user id, as a scan of the accounts table would.
		accs, err := b.Store.SearchAccounts(b.ctx(ctx), prefix, 1000)
		slices.SortFunc(accs, func(x, y auth.Account) int { return strings.Compare(x.UserID, y.UserID) })
		return accs[:min(len(accs), limit)], err
	case "search-limit-ignored":
		limit = 1000
	}
	return b.Store.SearchAccounts(b.ctx(ctx), prefix, limit)
}

func (b *buggyStore) RevokeToken(ctx context.Context, tokenID string, expires time.Time) error {
	switch b.bug {
	case "revoke-forgets":
		return nil
	case "revoke-no-validation":
		if tokenID == "" || len(tokenID) > auth.MaxTokenIDLength {
			return nil
		}
	}
	return b.Store.RevokeToken(b.ctx(ctx), tokenID, expires)
}

func (b *buggyStore) TokenRevoked(ctx context.Context, tokenID string) (bool, error) {
	if b.bug == "revoke-no-validation" && (tokenID == "" || len(tokenID) > auth.MaxTokenIDLength) {
		return false, nil
	}
	return b.Store.TokenRevoked(b.ctx(ctx), tokenID)
}
