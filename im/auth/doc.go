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
// it implements im.Authenticator and has no use for this package. What
// transport/httpapi and the stores share with it (Account, the store
// interfaces AccountStore, TokenVersions and the rest, LoginResult,
// WithClientAddr, RetryAfter, the kick reasons) lives in im/auth/account,
// which links neither, and is named here under the same names.
//
// The standalone binary composes the two halves: Accounts.Register and
// Accounts.Login answer the HTTP API (see transport/httpapi); the token Login
// returns is what clients present when they connect, checked by a Guard
// around the JWT; Accounts.UserExists serves as the Server's
// im.UserDirectory.
//
// # Optional store parts
//
// Beside AccountStore, found by type assertion: AccountUpdater (change an
// account: disable, enable, and later password and nickname changes) and
// TokenVersions (each user's token version). store/bolt, store/sqlstore
// and store/memstore implement both; storetest.RunAccounts and
// RunTokenVersions check them.
//
// # Revocation
//
// Tokens live long (DefaultLifetime, 30 days), so they can be revoked.
// Each user id has a token version in TokenVersions, 0 until first
// revoked; a token carries the version it was issued at in its "tv" claim
// (absent: 0), and Login issues at the current one. Guard is the
// im.Authenticator that enforces it: it wraps a Verifier (*JWT, or a
// host's own token format), refuses a token whose version is below its
// user's (ErrTokenRevoked, message "token revoked") and, with
// GuardConfig.Accounts set, the token of a user without an account
// (ErrNoAccount) or with a disabled one (ErrAccountDisabled). It reads the
// store once per check (twice with Accounts), and nothing per message:
// a session is checked when it authenticates. Leave Accounts nil when
// another backend mints tokens for users without a built-in account.
//
// Revoker changes things: RevokeTokens raises a user's version (the
// building block of logout everywhere, password changes, disabling and
// deleting), DisableAccount disables and revokes, EnableAccount enables.
// Each kicks the user's sessions through RevokerConfig.Kick, the
// im.Server's Kick, so that open sessions end at once rather than when
// they reconnect. im/auth does not import the Server's transports or
// reach for the Server itself: the host passes the function. Kick reaches
// the sessions of one process; processes sharing a store refuse the
// revoked tokens at once but keep their open sessions until they
// reconnect, as there is no bus between them.
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
// bcrypt work, so it does not reveal which usernames exist.
//
// # Login limits
//
// Register and Login are limited in layers, each checked before the next
// and all before any bcrypt work, so a refused attempt costs no hash and no
// store read:
//
//   - Per client address and per subnet (/24 for IPv4, /64 for IPv6):
//     AccountsConfig.ClientAttempts (30) and SubnetAttempts (120) logins
//     and registrations per ClientWindow (a minute). These apply when the
//     ctx carries the client's address (WithClientAddr), as the HTTP API's
//     does: there it is the connection's peer address, so behind a reverse
//     proxy all clients share the proxy's address and the proxy must limit
//     per client itself. No forwarding header is trusted. An unknown
//     username costs one bcrypt comparison against a dummy hash, the same
//     as a wrong password; these limits are what bound that cost.
//   - Per username and client address: LoginAttempts (5) failures per
//     LoginWindow (15 minutes), after which that address is refused for
//     that username until the window passes, even with the right password.
//     Another address, such as the owner's, is not affected. Without an
//     address in ctx the key is the username alone.
//   - Per username, from all addresses: past UsernameFailures (20) failures
//     in LoginWindow, every attempt for that username waits UsernameDelay
//     (2 s) before its password is checked. A guesser spread over many
//     addresses is slowed; the owner still logs in.
//
// A refusal wraps im.ErrRateLimited and RetryAfter gives the seconds to
// wait. Each limit's table holds at most MaxTracked keys (65,536) in 16
// shards. A key is dropped only once its window has passed; when a shard is
// full of open windows a new key is refused (fail closed), so spraying
// usernames or addresses can fill the table but never lift a limit in
// force. Tracked reports the keys held.
//
// # Concurrency
//
// JWT, Accounts, Guard and Revoker are safe for concurrent use. The login
// limits live in their Accounts value; two Accounts do not share it, nor do
// two processes. Token versions live in the store, which every process
// sharing it reads.
//
// # Errors
//
// Errors match the im sentinels through errors.Is: ErrInvalidArgument for
// input that breaks the rules above, ErrConflict for a username that is
// taken, ErrUnauthenticated for refused credentials or tokens (ErrTokenExpired
// for a token that is only expired; ErrTokenRevoked, ErrAccountDisabled and
// ErrNoAccount, which wrap ErrUnauthenticated, for a Guard's refusals),
// ErrRateLimited when the login limit is reached. Refusals are *im.Error values whose Msg is safe to show a client
// and whose Code (im.CodeUnauthenticated, …) the server turns into the
// protocol's error code; errors from the store are wrapped and mean the
// request could not be served.
// No error ever contains a token or a password.
package auth
