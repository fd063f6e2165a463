package auth

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/imserver/imserver/im"
)

// Defaults and limits of JWTConfig.
const (
	DefaultIssuer    = "imserver"
	DefaultAudience  = "imserver"
	DefaultLifetime  = 30 * 24 * time.Hour
	MinSecretLength  = 32
	maxTokenLength   = 8 << 10 // far above any token Issue makes; bounds parsing work on junk
	signingAlgorithm = "HS256"
)

// JWTConfig configures a JWT. NewJWT copies it.
type JWTConfig struct {
	// Secret is the HS256 key. It must pass ValidateSecret (at least
	// MinSecretLength bytes that do not look typed by hand) and stay the same across restarts and across the nodes of a cluster,
	// or tokens already handed out stop working.
	Secret []byte
	// Issuer is written to and required in the "iss" claim. Default
	// DefaultIssuer.
	Issuer string
	// Audience is written to and required in the "aud" claim. Default
	// DefaultAudience.
	Audience string
	// Lifetime is how long an issued token is valid. Default
	// DefaultLifetime.
	Lifetime time.Duration
	// Now returns the current time; default time.Now. For tests.
	Now func() time.Time
}

// JWT issues and verifies the tokens of built-in accounts. It implements
// im.Authenticator, which checks the signature and claims only, and
// Verifier, which Guard wraps to refuse revoked tokens and the tokens of
// missing or disabled accounts. It is safe for concurrent use.
type JWT struct {
	secret   []byte
	issuer   string
	audience string
	lifetime time.Duration
	now      func() time.Time
	parser   *jwt.Parser
}

var _ im.Authenticator = (*JWT)(nil)

// NewJWT returns a JWT configured by cfg, or an error if the secret fails
// ValidateSecret or the lifetime is negative.
func NewJWT(cfg JWTConfig) (*JWT, error) {
	if err := ValidateSecret(cfg.Secret); err != nil {
		return nil, fmt.Errorf("auth: JWTConfig.Secret: %w", err)
	}
	if cfg.Lifetime < 0 {
		return nil, errors.New("auth: JWTConfig.Lifetime must not be negative")
	}
	j := &JWT{
		// Cloned so that a caller reusing its slice cannot change the key
		// under running sessions.
		secret:   bytes.Clone(cfg.Secret),
		issuer:   cmp.Or(cfg.Issuer, DefaultIssuer),
		audience: cmp.Or(cfg.Audience, DefaultAudience),
		lifetime: cmp.Or(cfg.Lifetime, DefaultLifetime),
		now:      cfg.Now,
	}
	if j.now == nil {
		j.now = time.Now
	}
	j.parser = jwt.NewParser(
		// Pinning the algorithm is what stops "alg: none" and the
		// HMAC-with-a-public-key confusion attacks.
		jwt.WithValidMethods([]string{signingAlgorithm}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(j.issuer),
		jwt.WithAudience(j.audience),
		jwt.WithTimeFunc(j.now),
	)
	return j, nil
}

// minSecretDistinct is the fewest different byte values a secret may have.
// Random secrets are far above it: 32 random bytes have about 30, and even
// 32 random hex digits (128 bits) fall below 8 only about once in 30
// million draws, 64 of them (what cmd/imserver generates) practically
// never.
const minSecretDistinct = 8

// ValidateSecret returns an error unless secret can be a JWT secret: at
// least MinSecretLength bytes, at least 8 different byte values, no single
// byte value making up more than half of it, and not a shorter pattern
// repeated ("changemechangeme…", "0123456789abcdef0123456789abcdef"). These
// rules do not measure entropy; they refuse the secrets people type by hand
// to fill the length, which an attacker who has one token tries first. A
// secret read from a random source (32 random bytes, or their hex or base64
// form: openssl rand -hex 32) always passes.
func ValidateSecret(secret []byte) error {
	if len(secret) < MinSecretLength {
		return fmt.Errorf("the secret must be at least %d bytes, got %d", MinSecretLength, len(secret))
	}
	var count [256]int
	distinct, most := 0, 0
	for _, b := range secret {
		if count[b] == 0 {
			distinct++
		}
		count[b]++
		most = max(most, count[b])
	}
	const advice = "; use random bytes, for example the output of openssl rand -hex 32"
	if distinct < minSecretDistinct {
		return fmt.Errorf("the secret is guessable: it has only %d different bytes, fewer than %d%s", distinct, minSecretDistinct, advice)
	}
	if most*2 > len(secret) {
		return fmt.Errorf("the secret is guessable: one byte value makes up more than half of it%s", advice)
	}
	for p := 1; p <= len(secret)/2; p++ {
		if bytes.Equal(secret[p:], secret[:len(secret)-p]) {
			return fmt.Errorf("the secret is guessable: it repeats a %d-byte pattern%s", p, advice)
		}
	}
	return nil
}

// Issue returns a token for userID at token version 0 and when it expires.
// userID must be a valid id (im.ValidateID); otherwise the error wraps
// im.ErrInvalidArgument. A user whose tokens were ever revoked needs
// IssueVersion instead.
func (j *JWT) Issue(userID string) (token string, expires time.Time, err error) {
	return j.IssueVersion(userID, 0)
}

// IssueVersion is Issue for a token at version, the user's current token
// version (TokenVersions.TokenVersion), written as the "tv" claim (left out
// when 0). A Guard refuses the token once the user's version has moved past
// it. A negative version is refused with an error wrapping
// im.ErrInvalidArgument.
func (j *JWT) IssueVersion(userID string, version int64) (token string, expires time.Time, err error) {
	if err := im.ValidateID("user id", userID); err != nil {
		return "", time.Time{}, err
	}
	if version < 0 {
		return "", time.Time{}, invalid("token version must not be negative")
	}
	now := j.now()
	// Truncated because the token carries whole seconds; the caller is
	// told the expiry the token really has.
	expires = now.Add(j.lifetime).Truncate(time.Second)
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    j.issuer,
			Subject:   userID,
			Audience:  jwt.ClaimStrings{j.audience},
			ExpiresAt: jwt.NewNumericDate(expires),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        newTokenID(),
		},
		Version: version,
	}
	token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(j.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign token: %w", err)
	}
	return token, expires, nil
}

// newTokenID returns a token's "jti": 128 random bits in base64url, 22
// characters, so that one token can be revoked on its own
// (RevokedTokens).
func newTokenID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// tokenClaims are the claims of a token: the registered ones and the token
// version, "tv", absent (0) in tokens made before versions existed.
type tokenClaims struct {
	jwt.RegisteredClaims
	Version int64 `json:"tv,omitempty"`
}

// Claims are what a verified token says.
type Claims struct {
	UserID  string
	Expires time.Time
	// Version is the token version the token was issued at; 0 for a
	// token without one.
	Version int64
	// ID is the token's own id, its "jti" claim: what Accounts.Logout
	// revokes (RevokedTokens). Empty for a token issued before tokens
	// had ids, which can then be revoked only with all of its user's.
	ID string
}

// Verifier verifies a token and tells what it says. *JWT is one; a host
// whose tokens have another format implements it to use Guard.
//
// Verify returns an error wrapping im.ErrUnauthenticated (or
// im.ErrTokenExpired) for a token it refuses, and Claims with a valid
// UserID otherwise. It is called concurrently.
type Verifier interface {
	Verify(ctx context.Context, token string) (Claims, error)
}

var _ Verifier = (*JWT)(nil)

// Verify checks token and returns its claims. A token that is only expired
// gives an error wrapping im.ErrTokenExpired; any other refusal (bad
// signature, another algorithm, wrong issuer or audience, missing claims,
// a negative version, malformed) wraps im.ErrUnauthenticated. It reads no
// store: revocation is Guard's.
func (j *JWT) Verify(ctx context.Context, token string) (Claims, error) {
	if len(token) > maxTokenLength {
		return Claims{}, refused("token too long")
	}
	var claims tokenClaims
	if _, err := j.parser.ParseWithClaims(token, &claims, j.key); err != nil {
		return Claims{}, classify(err)
	}
	if claims.Subject == "" {
		return Claims{}, refused("no subject")
	}
	if !validSubject(claims.Subject) {
		return Claims{}, refused("subject is not a valid user id")
	}
	if claims.Version < 0 {
		return Claims{}, refused("negative token version")
	}
	if ValidateTokenID(claims.ID) != nil && claims.ID != "" {
		return Claims{}, refused("bad token id")
	}
	// WithExpirationRequired guarantees ExpiresAt is set once parsing
	// succeeded.
	return Claims{UserID: claims.Subject, Expires: claims.ExpiresAt.Time, Version: claims.Version, ID: claims.ID}, nil
}

// Authenticate verifies token and returns the user it was issued to, with
// the refusals of Verify. It checks neither accounts nor revocation: a
// deployment that revokes tokens authenticates through a Guard.
func (j *JWT) Authenticate(ctx context.Context, token string) (im.Identity, error) {
	c, err := j.Verify(ctx, token)
	if err != nil {
		return im.Identity{}, err
	}
	return im.Identity{UserID: c.UserID, Expires: c.Expires, TokenID: c.ID}, nil
}

func (j *JWT) key(*jwt.Token) (any, error) { return j.secret, nil }

// validSubject is im.ValidateID without its error: that error carries
// INVALID_PARAM, while a bad subject must read as a refused token.
func validSubject(s string) bool { return im.ValidateID("sub", s) == nil }

// classify turns a jwt error into ours. The jwt library's messages are not
// passed on: some quote decoded token content.
func classify(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return refused("malformed")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return refused("bad signature or algorithm")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return refused("wrong issuer")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return refused("wrong audience")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return refused("missing required claim")
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return refused("not valid yet")
	case errors.Is(err, jwt.ErrTokenExpired):
		// Checked after the others: claims errors are joined, and a token
		// with a wrong issuer is forged, not merely expired.
		return &im.Error{Code: im.CodeTokenExpired, Msg: "token expired", Err: im.ErrTokenExpired}
	}
	return refused("invalid")
}

// refused returns the error for a token that is not accepted; reason is a
// fixed phrase, never token content.
func refused(reason string) error {
	return &im.Error{
		Code: im.CodeUnauthenticated,
		Msg:  "invalid token",
		Err:  fmt.Errorf("auth: token refused: %s: %w", reason, im.ErrUnauthenticated),
	}
}
