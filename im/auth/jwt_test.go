package auth_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
)

var (
	testSecret  = []byte("k7Qm2vX9pL4sT8wZ1nB6cR3yH5dF0jGe") // exactly 32 bytes
	testEpoch   = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	otherSecret = []byte("eGj0Fd5Hy3Rc6Bn1Zw8Ts4Lp9Xv2mQ7k")
)

// clock is a settable time source shared by a JWT under test.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newJWT(t *testing.T, c *clock) *auth.JWT {
	t.Helper()
	j, err := auth.NewJWT(auth.JWTConfig{Secret: testSecret, Lifetime: time.Hour, Now: c.now})
	require.NoError(t, err)
	return j
}

// handMade builds a compact JWS from raw header and claims, signed with
// HMAC over key using h (nil: empty signature), without going through the
// jwt library, so that tokens the library would refuse to make can be
// tested.
func handMade(t *testing.T, header, claims map[string]any, key []byte, h func() hash.Hash) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(header) + "." + enc(claims)
	sig := ""
	if h != nil {
		m := hmac.New(h, key)
		m.Write([]byte(signing))
		sig = base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	return signing + "." + sig
}

// goodClaims are the claims a token from newJWT carries at testEpoch.
func goodClaims() map[string]any {
	return map[string]any{
		"iss": "imserver",
		"aud": []string{"imserver"},
		"sub": "alice",
		"iat": testEpoch.Unix(),
		"exp": testEpoch.Add(time.Hour).Unix(),
	}
}

func hs256() map[string]any { return map[string]any{"alg": "HS256", "typ": "JWT"} }

func TestNewJWTConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  auth.JWTConfig
		ok   bool
	}{
		{"no secret", auth.JWTConfig{}, false},
		{"31-byte secret", auth.JWTConfig{Secret: testSecret[:31]}, false},
		{"32-byte secret", auth.JWTConfig{Secret: testSecret}, true},
		{"negative lifetime", auth.JWTConfig{Secret: testSecret, Lifetime: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := auth.NewJWT(tt.cfg)
			if tt.ok {
				require.NoError(t, err)
				require.NotNil(t, j)
			} else {
				require.Error(t, err)
				require.Nil(t, j)
			}
		})
	}
}

func TestNewJWTRefusesGuessableSecrets(t *testing.T) {
	for _, tt := range []struct{ name, secret, wantInErr string }{
		{"one byte repeated", strings.Repeat("a", 32), "different bytes"},
		{"a word repeated", strings.Repeat("changeme", 4), "different bytes"},
		{"a longer word repeated", strings.Repeat("password", 5), "different bytes"},
		{"hex digits twice", "0123456789abcdef0123456789abcdef", "16-byte pattern"},
		{"a phrase repeated", strings.Repeat("changeme-please!", 3), "16-byte pattern"},
		{"mostly one byte", "x0123456789" + strings.Repeat("x", 30), "more than half"},
		{"padded word", "changeme" + strings.Repeat("0", 24), "more than half"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			j, err := auth.NewJWT(auth.JWTConfig{Secret: []byte(tt.secret)})
			require.ErrorContains(t, err, "guessable")
			require.ErrorContains(t, err, tt.wantInErr)
			require.ErrorContains(t, err, "openssl rand", "the error says how to make a good one")
			require.Nil(t, j)
		})
	}
}

func TestRandomSecretsPass(t *testing.T) {
	// Random secrets in the forms people make them always pass; a few
	// thousand of each stand in for "always".
	for i := range 3000 {
		raw := make([]byte, 32)
		_, _ = rand.Read(raw)
		for _, s := range []string{string(raw), hex.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw), hex.EncodeToString(raw[:16])} {
			require.NoError(t, auth.ValidateSecret([]byte(s)), "draw %d: %q", i, s)
		}
	}
}

func TestJWTIssueAndAuthenticate(t *testing.T) {
	c := &clock{t: testEpoch.Add(500 * time.Millisecond)}
	j := newJWT(t, c)
	token, expires, err := j.Issue("alice")
	require.NoError(t, err)
	require.Equal(t, testEpoch.Add(time.Hour), expires, "expiry is whole seconds, as in the token")
	require.Equal(t, 3, strings.Count(token, ".")+1)

	id, err := j.Authenticate(context.Background(), token)
	require.NoError(t, err)
	require.Equal(t, "alice", id.UserID)
	require.True(t, expires.Equal(id.Expires))

	// Still valid one second before expiry, refused once it has passed.
	c.t = expires.Add(-time.Second)
	_, err = j.Authenticate(context.Background(), token)
	require.NoError(t, err)
	c.t = expires.Add(time.Second)
	_, err = j.Authenticate(context.Background(), token)
	require.ErrorIs(t, err, im.ErrTokenExpired)
	require.ErrorIs(t, err, im.ErrUnauthenticated)
}

func TestJWTDefaultLifetime(t *testing.T) {
	c := &clock{t: testEpoch}
	j, err := auth.NewJWT(auth.JWTConfig{Secret: testSecret, Now: c.now})
	require.NoError(t, err)
	_, expires, err := j.Issue("bob")
	require.NoError(t, err)
	require.Equal(t, testEpoch.Add(auth.DefaultLifetime), expires)
}

func TestJWTIssueRefusesBadUserID(t *testing.T) {
	j := newJWT(t, &clock{t: testEpoch})
	for _, id := range []string{"", "a\nb", strings.Repeat("x", im.MaxIDLength+1), "\xff"} {
		_, _, err := j.Issue(id)
		require.ErrorIs(t, err, im.ErrInvalidArgument, "id %q", id)
	}
}

func TestJWTRefusesBadTokens(t *testing.T) {
	c := &clock{t: testEpoch}
	j := newJWT(t, c)
	valid, _, err := j.Issue("alice")
	require.NoError(t, err)

	forger, err := auth.NewJWT(auth.JWTConfig{Secret: otherSecret, Lifetime: time.Hour, Now: c.now})
	require.NoError(t, err)
	forged, _, err := forger.Issue("alice")
	require.NoError(t, err)

	otherIssuer, err := auth.NewJWT(auth.JWTConfig{Secret: testSecret, Issuer: "someone-else", Lifetime: time.Hour, Now: c.now})
	require.NoError(t, err)
	wrongIss, _, err := otherIssuer.Issue("alice")
	require.NoError(t, err)

	otherAudience, err := auth.NewJWT(auth.JWTConfig{Secret: testSecret, Audience: "another-app", Lifetime: time.Hour, Now: c.now})
	require.NoError(t, err)
	wrongAud, _, err := otherAudience.Issue("alice")
	require.NoError(t, err)

	// A valid token whose payload is swapped for another user's.
	parts := strings.Split(valid, ".")
	mallory := goodClaims()
	mallory["sub"] = "mallory"
	tampered := strings.Split(handMade(t, hs256(), mallory, testSecret, sha256.New), ".")
	swapped := parts[0] + "." + tampered[1] + "." + parts[2]

	without := func(key string) map[string]any {
		c := goodClaims()
		delete(c, key)
		return c
	}
	with := func(key string, v any) map[string]any {
		c := goodClaims()
		c[key] = v
		return c
	}
	expiredClaims := with("exp", testEpoch.Add(-time.Second).Unix())

	tests := []struct {
		name    string
		token   string
		expired bool
	}{
		{"empty", "", false},
		{"garbage", "not a token", false},
		{"three garbage segments", "abc.def.ghi", false},
		{"too long", valid + strings.Repeat("A", 9000), false},
		{"forged with another secret", forged, false},
		{"payload swapped", swapped, false},
		{"signature stripped", parts[0] + "." + parts[1] + ".", false},
		{"alg none", handMade(t, map[string]any{"alg": "none", "typ": "JWT"}, goodClaims(), nil, nil), false},
		{"alg None", handMade(t, map[string]any{"alg": "None", "typ": "JWT"}, goodClaims(), nil, nil), false},
		{"HS512 with the right secret", handMade(t, map[string]any{"alg": "HS512", "typ": "JWT"}, goodClaims(), testSecret, sha512.New), false},
		{"RS256 label, HMAC signature", handMade(t, map[string]any{"alg": "RS256", "typ": "JWT"}, goodClaims(), testSecret, sha256.New), false},
		{"no alg", handMade(t, map[string]any{"typ": "JWT"}, goodClaims(), testSecret, sha256.New), false},
		{"wrong issuer", wrongIss, false},
		{"wrong audience", wrongAud, false},
		{"no issuer", handMade(t, hs256(), without("iss"), testSecret, sha256.New), false},
		{"no audience", handMade(t, hs256(), without("aud"), testSecret, sha256.New), false},
		{"no exp", handMade(t, hs256(), without("exp"), testSecret, sha256.New), false},
		{"exp not a number", handMade(t, hs256(), with("exp", "tomorrow"), testSecret, sha256.New), false},
		{"no sub", handMade(t, hs256(), without("sub"), testSecret, sha256.New), false},
		{"empty sub", handMade(t, hs256(), with("sub", ""), testSecret, sha256.New), false},
		{"sub with control character", handMade(t, hs256(), with("sub", "al\x00ice"), testSecret, sha256.New), false},
		{"sub too long", handMade(t, hs256(), with("sub", strings.Repeat("a", im.MaxIDLength+1)), testSecret, sha256.New), false},
		{"not yet valid", handMade(t, hs256(), with("nbf", testEpoch.Add(time.Minute).Unix()), testSecret, sha256.New), false},
		{"expired", handMade(t, hs256(), expiredClaims, testSecret, sha256.New), true},
		{"expired and wrong issuer", handMade(t, hs256(), func() map[string]any {
			c := with("exp", testEpoch.Add(-time.Second).Unix())
			c["iss"] = "someone-else"
			return c
		}(), testSecret, sha256.New), false},
		{"expired and forged", handMade(t, hs256(), expiredClaims, otherSecret, sha256.New), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := j.Authenticate(context.Background(), tt.token)
			require.Error(t, err)
			require.Empty(t, id.UserID)
			require.ErrorIs(t, err, im.ErrUnauthenticated)
			require.Equal(t, tt.expired, errors.Is(err, im.ErrTokenExpired))
			if tt.token != "" {
				require.NotContains(t, err.Error(), tt.token)
				for _, part := range strings.Split(tt.token, ".") {
					if len(part) > 8 {
						require.NotContains(t, err.Error(), part)
					}
				}
			}
		})
	}

	// The hand-made tokens are refused for what they break, not for being
	// hand-made: the same construction with nothing wrong is accepted.
	id, err := j.Authenticate(context.Background(), handMade(t, hs256(), goodClaims(), testSecret, sha256.New))
	require.NoError(t, err)
	require.Equal(t, "alice", id.UserID)
}
