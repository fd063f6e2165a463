package account

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/imserver/imserver/im"
)

// AccountStore keeps built-in accounts. It is what auth.Accounts needs from a
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
// rules for usernames, passwords and nicknames are auth.Accounts' own, so that a
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

// AccountUpdate is a change to an account: each field that is set replaces
// the account's, and a field left nil stays as it is. UserID, Username and
// CreatedAt never change.
type AccountUpdate struct {
	// Nickname, if not nil, must pass im.ValidateName.
	Nickname *string
	// PasswordHash, if not nil, replaces the hash; it must not be empty.
	PasswordHash []byte
	// Disabled, if not nil, disables or enables the account.
	Disabled *bool
	// Avatar, Signature, Gender and Birth, if not nil, replace the
	// profile's; they must pass im.ValidateProfileUpdate.
	Avatar    *string
	Signature *string
	Gender    *im.Gender
	Birth     *int64
	// UpdatedAt, if not zero, is stored as the account's UpdatedAt.
	UpdatedAt time.Time
	// Deleted, if not nil, sets Deleted.
	Deleted *bool
}

// AccountUpdater changes accounts. It is an optional part of an
// AccountStore, found by type assertion; store/bolt, store/sqlstore and
// store/memstore implement it, and storetest.RunAccounts checks it when a
// store has it.
//
// UpdateAccount applies u to the account with userID atomically (another
// update of the same account is wholly before or after it) and returns the
// account as it now is. It gives im.ErrNotFound if there is no such
// account, and an error wrapping im.ErrInvalidArgument for a u that breaks
// the rules of AccountUpdate; nothing is written then. An empty u changes
// nothing and returns the account. It is safe for concurrent use and
// honours ctx cancellation.
type AccountUpdater interface {
	UpdateAccount(ctx context.Context, userID string, u AccountUpdate) (Account, error)
}

// ValidateAccountUpdate returns an error wrapping im.ErrInvalidArgument
// unless u can be applied; every AccountUpdater checks it before writing.
func ValidateAccountUpdate(u AccountUpdate) error {
	if u.Nickname != nil {
		if err := im.ValidateName("nickname", *u.Nickname); err != nil {
			return err
		}
	}
	if u.PasswordHash != nil && len(u.PasswordHash) == 0 {
		return invalid("password hash must not be empty")
	}
	return im.ValidateProfileUpdate(im.ProfileUpdate{Avatar: u.Avatar, Signature: u.Signature, Gender: u.Gender, Birth: u.Birth})
}

// NicknameKey is the form of a nickname that searches compare: lower case
// (Unicode simple folding). An AccountSearcher indexes accounts by it.
func NicknameKey(nickname string) string { return strings.ToLower(nickname) }

// AccountSearcher is an optional part of an AccountStore: reading many
// accounts at once and searching them by nickname through an index. With
// it, auth.Accounts implements im.UserProfiles (profile lookups and user
// search); store/bolt, store/sqlstore and store/memstore implement it, and
// storetest.RunAccounts checks it when a store has it.
//
// Both methods are safe for concurrent use, honour ctx cancellation and
// wrap backend errors with %w.
type AccountSearcher interface {
	// AccountsByID returns the accounts with the given ids that exist,
	// in the order of ids, each once; ids that name no account are left
	// out. An invalid id is ErrInvalidArgument.
	AccountsByID(ctx context.Context, ids []string) ([]Account, error)
	// SearchAccounts returns at most limit accounts (limit >= 1) that are
	// not Deleted and whose NicknameKey(Nickname) begins with prefix
	// (which the caller gives already folded by NicknameKey), ordered by
	// that key, then by UserID. It reads an index of the keys, never
	// every account. An empty prefix or a limit below 1 is
	// ErrInvalidArgument.
	SearchAccounts(ctx context.Context, prefix string, limit int) ([]Account, error)
}

// RevokedTokens is an optional part of a store beside TokenVersions: single
// tokens revoked before they expire, which is how one device logs out
// while the user's other devices stay signed in. auth.Guard refuses a token
// whose id (auth.Claims.ID) is revoked. store/bolt, store/sqlstore and
// store/memstore implement it; storetest.RunTokenVersions checks it when
// a store has it.
//
// Both methods are safe for concurrent use, honour ctx cancellation and
// wrap backend errors with %w; an empty or over-long id (more than 128
// bytes) is ErrInvalidArgument.
type RevokedTokens interface {
	// RevokeToken records, durably, that the token with id tokenID is
	// revoked. expires is when the token expires anyway: the record may
	// be dropped after it (a Store removes expired records as it goes, so
	// they do not pile up). Revoking again changes nothing.
	RevokeToken(ctx context.Context, tokenID string, expires time.Time) error
	// TokenRevoked reports whether tokenID is revoked.
	TokenRevoked(ctx context.Context, tokenID string) (bool, error)
}

// MaxTokenIDLength is the longest token id (auth.Claims.ID) RevokedTokens
// takes, in bytes.
const MaxTokenIDLength = 128

// ValidateTokenID returns an error wrapping im.ErrInvalidArgument unless id
// is a token id RevokedTokens takes: 1 to MaxTokenIDLength bytes of
// printable UTF-8 that im.ValidateID accepts.
func ValidateTokenID(id string) error {
	if id == "" || len(id) > MaxTokenIDLength {
		return invalid(fmt.Sprintf("a token id must be 1 to %d bytes", MaxTokenIDLength))
	}
	return im.ValidateID("token id", id)
}

// TokenVersions keeps each user's token version: a counter that revoking a
// user's tokens raises, so that every token issued before (at a lower
// version) is refused by auth.Guard. It is an optional interface, found by type
// assertion, beside AccountStore; store/bolt, store/sqlstore and
// store/memstore implement it, and storetest.RunTokenVersions checks an
// implementation. It is kept per user id, account or not, so that users
// whose tokens another backend mints can be revoked too.
//
// Both methods refuse an invalid user id (im.ValidateID) with an error
// wrapping im.ErrInvalidArgument, are safe for concurrent use, honour ctx
// cancellation, and wrap backend errors with %w.
type TokenVersions interface {
	// TokenVersion returns userID's token version: 0 for a user never
	// bumped, never an error for an unknown user.
	TokenVersion(ctx context.Context, userID string) (int64, error)
	// BumpTokenVersion adds one to userID's token version atomically and
	// durably, and returns the new version: n concurrent bumps, from one
	// process or several sharing the database, raise it by n and each
	// returns a different version.
	BumpTokenVersion(ctx context.Context, userID string) (int64, error)
}

func invalid(msg string) error {
	return &im.Error{Code: im.CodeInvalidArgument, Msg: msg, Err: im.ErrInvalidArgument}
}
