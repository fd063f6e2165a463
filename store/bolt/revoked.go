package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth/account"
)

// Revoked tokens keep two buckets, made by Open, which older versions of
// this package ignore (they would accept a revoked token again, as they
// would any token, their Guard knowing nothing of revocation):
//
//   - bucketRevoked: token id → a note record (see codec.go) holding the
//     token's expiry, for TokenRevoked's lookup;
//   - bucketRevokedByExpiry: the expiry as 8 bytes that sort as the Unix
//     seconds do, then the token id → an empty sealed record, so that the
//     records past their expiry are the first keys, and each RevokeToken
//     removes up to revokedCleanup of them.
//
// Both buckets are younger than sealing: every record in them is sealed.
const (
	bucketRevoked         = "revokedTokens"
	bucketRevokedByExpiry = "revokedByExpiry"
	// revokedCleanup is how many expired records a RevokeToken removes
	// at most: more than the one it adds, so that they do not pile up,
	// and few, so that the commit stays small.
	revokedCleanup = 16
	// maxTokenIDLen is the longest token id RevokedTokens takes.
	maxTokenIDLen = 128
)

var _ account.RevokedTokens = (*Store)(nil)

// errNoWrite rolls back a write transaction that found nothing to change,
// which then costs no commit and no fsync.
var errNoWrite = errors.New("bolt: nothing to write")

// RevokeToken implements account.RevokedTokens: one write transaction records
// the token, unless it is recorded already, and removes expired records.
func (s *Store) RevokeToken(ctx context.Context, tokenID string, expires time.Time) (err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: revoke token: %w", err)
	}
	if err := validTokenID(tokenID); err != nil {
		return err
	}
	now := time.Now()
	err = s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		revoked, err := bucket(tx, bucketRevoked)
		if err != nil {
			return err
		}
		byExpiry, err := bucket(tx, bucketRevokedByExpiry)
		if err != nil {
			return err
		}
		k := []byte(tokenID)
		if revoked.Get(k) != nil {
			return errNoWrite
		}
		if err := revoked.Put(k, seal(nil, bucketRevoked, k, func(b []byte) []byte { return appendNote(b, expires, "") })); err != nil {
			return err
		}
		ek := expiryKey(expires, tokenID)
		if err := byExpiry.Put(ek, seal(nil, bucketRevokedByExpiry, ek, nil)); err != nil {
			return err
		}
		return dropExpired(revoked, byExpiry, now)
	})
	if err != nil && !errors.Is(err, errNoWrite) {
		return fmt.Errorf("bolt: revoke token: %w", err)
	}
	return nil
}

// TokenRevoked implements account.RevokedTokens.
func (s *Store) TokenRevoked(ctx context.Context, tokenID string) (_ bool, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("bolt: token revoked: %w", err)
	}
	if err := validTokenID(tokenID); err != nil {
		return false, err
	}
	var found bool
	err = s.db.View(func(tx *bbolt.Tx) error {
		revoked, err := bucket(tx, bucketRevoked)
		if err != nil {
			return err
		}
		k := []byte(tokenID)
		v := revoked.Get(k)
		if v == nil {
			return nil
		}
		if _, err := openRevoked(k, v); err != nil {
			return err
		}
		found = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("bolt: token revoked: %w", err)
	}
	return found, nil
}

func validTokenID(id string) error {
	if id == "" || len(id) > maxTokenIDLen {
		return fmt.Errorf("bolt: token id must be 1 to %d bytes: %w", maxTokenIDLen, im.ErrInvalidArgument)
	}
	return nil
}

// openRevoked checks and decodes the record v of revoked token k, and
// returns its expiry.
func openRevoked(k, v []byte) (time.Time, error) {
	rec, err := unsealIn(bucketRevoked, k, v, true)
	var exp time.Time
	var text string
	if err == nil {
		exp, text, err = decodeNote(rec)
	}
	if err == nil && text != "" {
		err = errCorrupt
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("revoked token %q: %w", k, err)
	}
	return exp, nil
}

// expiryKey is the key of token id in bucketRevokedByExpiry: the Unix
// seconds of expires with the sign bit flipped, big-endian, so that the
// keys sort by time, then the id.
func expiryKey(expires time.Time, id string) []byte {
	b := make([]byte, 0, 8+len(id))
	b = binary.BigEndian.AppendUint64(b, uint64(expires.Unix())^(1<<63))
	return append(b, id...)
}

// dropExpired removes up to revokedCleanup records whose expiry is before
// now's second, the oldest first.
func dropExpired(revoked, byExpiry *bbolt.Bucket, now time.Time) error {
	limit := uint64(now.Unix()) ^ (1 << 63)
	var keys [][]byte
	c := byExpiry.Cursor()
	for k, _ := c.First(); k != nil && len(keys) < revokedCleanup; k, _ = c.Next() {
		if len(k) <= 8 {
			return corrupt("revoked token expiry key %x", k)
		}
		if binary.BigEndian.Uint64(k) >= limit {
			break
		}
		keys = append(keys, bytes.Clone(k))
	}
	// Deleted after the walk: deleting while a cursor walks the bucket
	// makes it skip keys.
	for _, k := range keys {
		if err := revoked.Delete(k[8:]); err != nil {
			return err
		}
		if err := byExpiry.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// checkRevoked checks that the two buckets of revoked tokens agree: each
// token's record is sound and has its expiry key, and each expiry key a
// token whose expiry it is.
func (c *checker) checkRevoked(ctx context.Context) error {
	revoked := c.tx.Bucket([]byte(bucketRevoked))
	byExpiry := c.tx.Bucket([]byte(bucketRevokedByExpiry))
	err := revoked.ForEach(func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		exp, err := openRevoked(k, v)
		if err != nil {
			c.problem("%v", err)
			return nil
		}
		if validTokenID(string(k)) != nil {
			c.problem("revoked token id %q", k)
		}
		if byExpiry.Get(expiryKey(exp, string(k))) == nil {
			c.problem("revoked token %q has no expiry key", k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return byExpiry.ForEach(func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := unsealIn(bucketRevokedByExpiry, k, v, true); err != nil || len(k) <= 8 {
			c.problem("revoked token expiry key %x: %v", k, errors.Join(err, errCorrupt))
			return nil
		}
		rv := revoked.Get(k[8:])
		if rv == nil {
			c.problem("revoked token expiry key %x names no revoked token", k)
			return nil
		}
		if exp, err := openRevoked(k[8:], rv); err == nil && !bytes.Equal(expiryKey(exp, ""), k[:8]) {
			c.problem("revoked token %q: expiry key %x is not its expiry's", k[8:], k)
		}
		return nil
	})
}
