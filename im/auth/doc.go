// Package auth is imserver's built-in account system: usernames and bcrypt
// password hashes kept in an AccountStore, and HS256 JSON Web Tokens that
// the Server accepts through the im.Authenticator interface.
//
// AccountStore is this package's, not part of im.Store: the Server never
// reads accounts. store/bolt, store/sqlstore and store/memstore implement
// it beside im.Store, and storetest.RunAccounts checks another
// implementation.
//
// It is a package of its own so that a host that authenticates users itself
// (its own sessions, OAuth, its own JWTs) never links bcrypt or a JWT library:
// it implements im.Authenticator and has no use for this package.
//
// The standalone binary composes the two halves: Accounts.Register and
// Accounts.Login answer the HTTP API (see transport/httpapi); the token Login
// returns is what clients present when they connect, checked by
// JWT.Authenticate; Accounts.UserExists serves as the Server's
// im.UserDirectory.
//
// # Security
//
// Tokens are HS256 only: a token whose header names another algorithm
// ("none", HS512, RS256, …) is refused whatever its signature, and so is one
// without an expiry, issuer, audience or subject. The secret must be at least
// 32 bytes and must not look typed by hand (ValidateSecret): fewer than 8
// different byte values, one byte value making up more than half of it, or
// a shorter pattern repeated ("changemechangeme…") is refused, as an
// attacker holding one token would try such secrets first; random bytes or
// their hex or base64 form always pass. Ids, usernames and nicknames may
// not contain bidirectional controls, zero-width or C1 control characters
// (im.ValidateName), which would let one user's name pass for another's;
// nicknames may hold the joiners U+200C and U+200D, which emoji sequences
// and Persian need.
// Passwords are hashed with bcrypt at cost 12 by default (never
// below 10) and are limited to 72 bytes, bcrypt's input limit, rather than
// silently truncated. Login answers a wrong password, an unknown username
// and a disabled account with the same error after the same amount of
// bcrypt work, so it does not reveal which usernames exist. Failed logins are
// limited per username (5 per 15 minutes by default).
//
// # Concurrency
//
// JWT and Accounts are safe for concurrent use. The login limiter lives in
// its Accounts value; two Accounts do not share it, nor do two processes.
//
// # Errors
//
// Errors match the im sentinels through errors.Is: ErrInvalidArgument for
// input that breaks the rules above, ErrConflict for a username that is
// taken, ErrUnauthenticated for refused credentials or tokens (ErrTokenExpired
// for a token that is only expired), ErrRateLimited when the login limit is
// reached. Refusals are *im.Error values whose Msg is safe to show a client
// and whose Code (im.CodeUnauthenticated, …) the server turns into the
// protocol's error code; errors from the store are wrapped and mean the
// request could not be served.
// No error ever contains a token or a password.
package auth
