package storetest_test

import (
	"context"
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
