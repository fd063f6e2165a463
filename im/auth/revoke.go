package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth/account"
)

// Errors of a token that verifies but is refused by a Guard. Each wraps
// im.ErrUnauthenticated, so the protocol answers AUTH_FAILED (HTTP code
// 100); the message the client sees ("token revoked", "account disabled",
// "unknown account") tells them apart.
var (
	// ErrTokenRevoked: the token was issued before its user's tokens were
	// revoked (its version is below the user's token version). A fresh
	// login gives one that works.
	ErrTokenRevoked = fmt.Errorf("auth: token revoked: %w", im.ErrUnauthenticated)
	// ErrAccountDisabled: the token's user has a built-in account, and
	// it is disabled.
	ErrAccountDisabled = fmt.Errorf("auth: account disabled: %w", im.ErrUnauthenticated)
	// ErrNoAccount: the token's user has no built-in account.
	ErrNoAccount = fmt.Errorf("auth: no account: %w", im.ErrUnauthenticated)
	// ErrTokenLoggedOut: the token itself was revoked (Accounts.Logout,
	// RevokedTokens); the user's other tokens still work.
	ErrTokenLoggedOut = fmt.Errorf("auth: token logged out: %w", im.ErrUnauthenticated)
)

// GuardConfig configures a Guard. NewGuard copies it.
type GuardConfig struct {
	// Tokens verifies a token's signature and claims; *JWT is one.
	// Required.
	Tokens Verifier
	// Versions holds the users' token versions. Required. If it also
	// implements RevokedTokens, a token revoked on its own (a logout) is
	// refused too.
	Versions TokenVersions
	// Accounts, if set, makes a token valid only for a user with an
	// account in it that is not disabled. Leave it nil when tokens are
	// minted elsewhere for users without a built-in account.
	Accounts AccountStore
}

// Guard is an im.Authenticator that accepts a token only if Tokens
// verifies it, its version is at least its user's token version, its id
// is not revoked (when Versions is also a RevokedTokens), and, with
// Accounts set, its user's account exists and is not disabled. Each call
// reads the store once for the version, once for the token id when the
// store keeps revoked ones and the token has an id, and once more for the
// account with Accounts set; what a session does after authenticating
// reads none of them. It is safe for concurrent use.
type Guard struct {
	tokens   Verifier
	versions TokenVersions
	revoked  RevokedTokens // Versions' RevokedTokens side, or nil
	accounts AccountStore
}

var _ im.Authenticator = (*Guard)(nil)

// NewGuard returns a Guard configured by cfg, or an error if Tokens or
// Versions is missing.
func NewGuard(cfg GuardConfig) (*Guard, error) {
	if cfg.Tokens == nil {
		return nil, errors.New("auth: GuardConfig.Tokens is required")
	}
	if cfg.Versions == nil {
		return nil, errors.New("auth: GuardConfig.Versions is required")
	}
	revoked, _ := cfg.Versions.(RevokedTokens)
	return &Guard{tokens: cfg.Tokens, versions: cfg.Versions, revoked: revoked, accounts: cfg.Accounts}, nil
}

// Authenticate verifies token and returns its user. Besides the refusals
// of the Verifier, it refuses a revoked token (ErrTokenRevoked), a token
// logged out on its own (ErrTokenLoggedOut) and, with
// Accounts set, the token of a user without an account (ErrNoAccount) or
// with a disabled one (ErrAccountDisabled); all wrap im.ErrUnauthenticated.
// A store error is wrapped and is not ErrUnauthenticated: the token could
// not be checked, which does not make it bad.
func (g *Guard) Authenticate(ctx context.Context, token string) (im.Identity, error) {
	c, err := g.tokens.Verify(ctx, token)
	if err != nil {
		return im.Identity{}, err
	}
	if g.accounts != nil {
		a, err := g.accounts.Account(ctx, c.UserID)
		switch {
		case errors.Is(err, im.ErrNotFound):
			return im.Identity{}, guardRefusal("unknown account", ErrNoAccount)
		case err != nil:
			return im.Identity{}, fmt.Errorf("auth: look up account: %w", err)
		case a.Disabled:
			return im.Identity{}, guardRefusal("account disabled", ErrAccountDisabled)
		}
	}
	v, err := g.versions.TokenVersion(ctx, c.UserID)
	if err != nil {
		return im.Identity{}, fmt.Errorf("auth: read token version: %w", err)
	}
	if c.Version < v {
		return im.Identity{}, guardRefusal("token revoked", ErrTokenRevoked)
	}
	if g.revoked != nil && c.ID != "" {
		out, err := g.revoked.TokenRevoked(ctx, c.ID)
		if err != nil {
			return im.Identity{}, fmt.Errorf("auth: read revoked tokens: %w", err)
		}
		if out {
			return im.Identity{}, guardRefusal("token revoked", ErrTokenLoggedOut)
		}
	}
	return im.Identity{UserID: c.UserID, Expires: c.Expires, TokenID: c.ID}, nil
}

func guardRefusal(msg string, err error) error {
	return &im.Error{Code: im.CodeUnauthenticated, Msg: msg, Err: err}
}

// Reasons a Revoker gives with the sessions it kicks.
const (
	KickTokensRevoked   = account.KickTokensRevoked
	KickAccountDisabled = account.KickAccountDisabled
)

// RevokerConfig configures a Revoker. NewRevoker copies it.
type RevokerConfig struct {
	// Versions holds the users' token versions, the same the Guard
	// reads. Required.
	Versions TokenVersions
	// Accounts changes accounts, for DisableAccount and EnableAccount;
	// without it they fail. Optional.
	Accounts AccountUpdater
	// Kick, if set, disconnects every session of a user on this process
	// and returns how many; pass the im.Server's Kick. It is how a
	// revocation reaches sessions already open; without it they stay
	// open until they reconnect.
	Kick func(userID, reason string) int
}

// Revoker revokes users' tokens and disables accounts, and kicks the
// sessions of those users that are open on this process. Sessions on other
// processes sharing the store are not kicked: they end only when they
// reconnect, when the Guard there refuses the token. It is safe for
// concurrent use.
type Revoker struct {
	versions TokenVersions
	accounts AccountUpdater
	kick     func(userID, reason string) int
}

// NewRevoker returns a Revoker configured by cfg, or an error if Versions is
// missing.
func NewRevoker(cfg RevokerConfig) (*Revoker, error) {
	if cfg.Versions == nil {
		return nil, errors.New("auth: RevokerConfig.Versions is required")
	}
	return &Revoker{versions: cfg.Versions, accounts: cfg.Accounts, kick: cfg.Kick}, nil
}

// RevokeTokens makes every token userID holds invalid, whoever issued it,
// and kicks userID's sessions on this process. Tokens issued afterwards (a
// new login) work. It returns the user's new token version, which a
// backend that mints tokens itself passes to JWT.IssueVersion. An invalid
// user id gives an error wrapping im.ErrInvalidArgument; a user without an
// account may be revoked too.
func (r *Revoker) RevokeTokens(ctx context.Context, userID string) (int64, error) {
	if err := im.ValidateID("user id", userID); err != nil {
		return 0, err
	}
	v, err := r.versions.BumpTokenVersion(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("auth: revoke tokens: %w", err)
	}
	r.kickUser(userID, KickTokensRevoked)
	return v, nil
}

// DisableAccount disables userID's account, revokes its tokens and kicks
// its sessions on this process; it returns the account as it now is. A
// disabled account cannot log in and its tokens are refused by a Guard
// with Accounts set. An account that is already disabled has its tokens
// revoked again. It gives im.ErrNotFound if there is no such account,
// im.ErrInvalidArgument for an invalid id, and an error if the Revoker has
// no AccountUpdater.
func (r *Revoker) DisableAccount(ctx context.Context, userID string) (Account, error) {
	a, err := r.setDisabled(ctx, userID, true)
	if err != nil {
		return Account{}, err
	}
	// Revoked as well, so that enabling the account later does not bring
	// back the tokens it had. Were this to fail, the account stays
	// disabled, which a Guard with Accounts refuses anyway.
	if _, err := r.versions.BumpTokenVersion(ctx, userID); err != nil {
		r.kickUser(userID, KickAccountDisabled)
		return a, fmt.Errorf("auth: disable account: revoke tokens: %w", err)
	}
	r.kickUser(userID, KickAccountDisabled)
	return a, nil
}

// EnableAccount enables userID's account again and returns it; tokens
// revoked while it was disabled stay revoked, so its user logs in again.
// Errors are DisableAccount's.
func (r *Revoker) EnableAccount(ctx context.Context, userID string) (Account, error) {
	return r.setDisabled(ctx, userID, false)
}

func (r *Revoker) setDisabled(ctx context.Context, userID string, disabled bool) (Account, error) {
	if r.accounts == nil {
		return Account{}, errors.New("auth: the Revoker has no AccountUpdater (RevokerConfig.Accounts)")
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return Account{}, err
	}
	a, err := r.accounts.UpdateAccount(ctx, userID, AccountUpdate{Disabled: &disabled})
	if err != nil {
		return Account{}, fmt.Errorf("auth: update account: %w", err)
	}
	return a, nil
}

func (r *Revoker) kickUser(userID, reason string) {
	if r.kick != nil {
		r.kick(userID, reason)
	}
}
