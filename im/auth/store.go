package auth

import "github.com/imserver/imserver/im/auth/account"

// The account records and the store interfaces live in package account,
// which links no crypto, so that a store and the HTTP API can name them
// without linking bcrypt and JWT into a host that authenticates users
// itself. These are the same types under the names this package has
// always given them; their documentation is in package account.

// Account is a built-in user account (account.Account).
type Account = account.Account

type (
	// AccountStore keeps built-in accounts (account.AccountStore).
	AccountStore = account.AccountStore
	// AccountUpdate is a change to an account (account.AccountUpdate).
	AccountUpdate = account.AccountUpdate
	// AccountUpdater changes accounts (account.AccountUpdater).
	AccountUpdater = account.AccountUpdater
	// AccountSearcher reads many accounts and searches them by nickname
	// (account.AccountSearcher).
	AccountSearcher = account.AccountSearcher
	// RevokedTokens keeps single revoked tokens (account.RevokedTokens).
	RevokedTokens = account.RevokedTokens
	// TokenVersions keeps each user's token version
	// (account.TokenVersions).
	TokenVersions = account.TokenVersions
)

// MaxTokenIDLength is account.MaxTokenIDLength.
const MaxTokenIDLength = account.MaxTokenIDLength

// ValidateAccount is account.ValidateAccount.
func ValidateAccount(a Account) error { return account.ValidateAccount(a) }

// ValidateAccountUpdate is account.ValidateAccountUpdate.
func ValidateAccountUpdate(u AccountUpdate) error { return account.ValidateAccountUpdate(u) }

// ValidateTokenID is account.ValidateTokenID.
func ValidateTokenID(id string) error { return account.ValidateTokenID(id) }

// NicknameKey is account.NicknameKey.
func NicknameKey(nickname string) string { return account.NicknameKey(nickname) }
