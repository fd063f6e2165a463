// Package account holds the part of im/auth that other packages share with
// it without its crypto: the Account record, what a login returns, the
// client address a login is limited by, the login limits' refusals and the
// reasons sessions are kicked with.
//
// It links neither bcrypt nor a JWT library, so that transport/httpapi,
// which speaks of accounts, does not link them into a host that
// authenticates users itself. im/auth names everything here under the same
// names (auth.Account is account.Account), and that is the name to use
// where im/auth is linked anyway.
package account

import (
	"context"
	"errors"
	"math"
	"net/netip"
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

	// The rest of the profile (im.User), empty for an account that never
	// set it. A Store keeps what it is given; Accounts checks the limits
	// of im.ValidateProfileUpdate before writing.
	Avatar    string
	Signature string
	Gender    im.Gender
	Birth     int64
	UpdatedAt time.Time
	// Deleted marks an account whose user deleted it: it is Disabled, its
	// profile erased, and it is left out of searches. Its id and username
	// stay taken, so that neither passes to someone else.
	Deleted bool
}

// LoginResult is what a successful Login returns.
type LoginResult struct {
	UserID  string
	Token   string
	Expires time.Time
}

// Kick reasons: the sessions a caller closes after a logout, a password
// change or an account deletion, and those a Revoker closes.
const (
	KickLoggedOut       = "logged out"
	KickPasswordChanged = "password changed"
	KickAccountDeleted  = "account deleted"
	KickTokensRevoked   = "tokens revoked"
	KickAccountDisabled = "account disabled"
)

type clientAddrKey struct{}

// WithClientAddr returns ctx carrying the network address of the client a
// Register or Login call is made for, which the per-address and per-subnet
// limits count. The HTTP API sets it from the connection's remote address;
// behind a reverse proxy that is the proxy's, so the proxy must do its own
// limiting, or the host must pass the client's address it trusts.
func WithClientAddr(ctx context.Context, addr netip.Addr) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, addr.Unmap())
}

// ClientAddr returns the address WithClientAddr put in ctx.
func ClientAddr(ctx context.Context) (netip.Addr, bool) {
	addr, ok := ctx.Value(clientAddrKey{}).(netip.Addr)
	return addr, ok && addr.IsValid()
}

// throttledError is a refusal for too many attempts, with how long to wait.
type throttledError struct {
	err  *im.Error
	wait time.Duration
}

func (e *throttledError) Error() string { return e.err.Error() }
func (e *throttledError) Unwrap() error { return e.err }

// Throttled returns the refusal of an attempt over a limit: an *im.Error
// with im.CodeRateLimited and msg, wrapping im.ErrRateLimited, from which
// RetryAfter reads wait.
func Throttled(msg string, wait time.Duration) error {
	return &throttledError{
		err:  &im.Error{Code: im.CodeRateLimited, Msg: msg, Err: im.ErrRateLimited},
		wait: wait,
	}
}

// RetryAfter reports how many whole seconds (at least 1) a client refused by
// a login limit should wait before trying again, for an HTTP Retry-After
// header, or false if err is not such a refusal (one made by Throttled).
func RetryAfter(err error) (int, bool) {
	var t *throttledError
	if !errors.As(err, &t) {
		return 0, false
	}
	return max(1, int(math.Ceil(t.wait.Seconds()))), true
}
