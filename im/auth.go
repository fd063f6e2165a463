package im

import (
	"context"
	"time"
)

// Authenticator verifies the token a client presents when it connects. It is
// the one thing an embedding host must provide besides a Store: a host checks
// its own tokens (sessions, OAuth, JWTs) and tells the Server who the user
// is. Package im/auth has the built-in JWT implementation.
//
// Authenticate is called concurrently. It returns an error wrapping
// ErrUnauthenticated (or ErrTokenExpired) for a token it refuses.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Identity, error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(ctx context.Context, token string) (Identity, error)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(ctx context.Context, token string) (Identity, error) {
	return f(ctx, token)
}

// Identity is who a token belongs to.
type Identity struct {
	UserID string
	// Expires, if not zero, is when the token stops being valid. Sessions
	// stay open past it; a reconnect needs a fresh token.
	Expires time.Time
	// TokenID, if not empty, identifies the token among the user's
	// tokens (a JWT's "jti"), so that one token can be revoked and its
	// sessions closed (Server.KickToken) while the user's others stay.
	TokenID string

	// kicks is the Server's kick count when Server.Authenticate began
	// verifying the token, plus one (0: verified elsewhere).
	kicks uint64
}

// UserDirectory tells whether a user exists. With Config.Users set, a send
// to an unknown user fails with USER_NOT_EXIST; without it, any valid user id
// is accepted (hosts whose users live elsewhere).
type UserDirectory interface {
	UserExists(ctx context.Context, userID string) (bool, error)
}
