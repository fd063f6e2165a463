package auth

import (
	"context"
	"time"

	"github.com/imserver/imserver/im"
)

// Account is a built-in user account. Hosts that authenticate users
// themselves need none.
type Account struct {
	UserID       string
	Username     string
	Nickname     string
	PasswordHash []byte
	Disabled     bool
	CreatedAt    time.Time
}

// AccountStore keeps built-in accounts. It is what Accounts needs from a
// store, and nothing of the im.Server's: a host without built-in accounts
// has no use for it, so it is not part of im.Store. store/bolt,
// store/sqlstore and store/memstore implement it beside im.Store, and
// storetest.RunAccounts checks an implementation.
//
// All methods are safe for concurrent use and honour ctx cancellation.
// Errors for missing data satisfy errors.Is(err, im.ErrNotFound), backend
// errors are wrapped with %w.
type AccountStore interface {
	// CreateAccount stores a new account. It refuses one that fails
	// ValidateAccount with an error wrapping im.ErrInvalidArgument, and
	// gives im.ErrConflict if the UserID or the Username (compared
	// exactly) is taken; nothing is written then.
	CreateAccount(ctx context.Context, a Account) error

	// Account returns the account with userID; im.ErrNotFound if none.
	Account(ctx context.Context, userID string) (Account, error)

	// AccountByUsername returns the account with username; im.ErrNotFound
	// if none.
	AccountByUsername(ctx context.Context, username string) (Account, error)
}

// ValidateAccount returns an error wrapping im.ErrInvalidArgument unless a
// can be stored: UserID and Username pass im.ValidateID and Nickname passes
// im.ValidateName (no bidirectional control, zero-width or C1 control
// character, which would let it pass for another user's). Every AccountStore
// checks an account with it before writing anything. (Register's stricter
// rules for usernames, passwords and nicknames are Accounts' own, so that a
// store holding accounts made under other rules still serves them.)
func ValidateAccount(a Account) error {
	if err := im.ValidateID("user id", a.UserID); err != nil {
		return err
	}
	if err := im.ValidateID("username", a.Username); err != nil {
		return err
	}
	return im.ValidateName("nickname", a.Nickname)
}
