package bolt

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime/debug"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth/account"
)

// bucketTokenVersions: UserID → token version (a sealed 8-byte big-endian
// number, as max seqs are), for
// users whose version was ever bumped. It is made by the first bump, so
// that files written before it existed open as they are, and older
// versions of this package, which ignore it, still open files that have it.
const bucketTokenVersions = "tokenVersions"

var _ account.TokenVersions = (*Store)(nil)

// TokenVersion implements account.TokenVersions.
func (s *Store) TokenVersion(ctx context.Context, userID string) (_ int64, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("bolt: token version: %w", err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return 0, err
	}
	var v int64
	err = s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucketTokenVersions))
		if b == nil {
			return nil
		}
		var err error
		v, err = decodeTokenVersion(b.Get([]byte(userID)), userID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: token version of %q: %w", userID, err)
	}
	return v, nil
}

// BumpTokenVersion implements account.TokenVersions: bbolt's single writer
// makes the read and the write one step.
func (s *Store) BumpTokenVersion(ctx context.Context, userID string) (_ int64, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("bolt: bump token version: %w", err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return 0, err
	}
	var v int64
	err = s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := tx.CreateBucketIfNotExists([]byte(bucketTokenVersions))
		if err != nil {
			return err
		}
		if v, err = decodeTokenVersion(b.Get([]byte(userID)), userID); err != nil {
			return err
		}
		v++
		k := []byte(userID)
		return b.Put(k, appendSeqRecord(nil, bucketTokenVersions, k, uint64(v)))
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: bump token version of %q: %w", userID, err)
	}
	return v, nil
}

// decodeTokenVersion reads userID's stored version; nil (never bumped) is
// 0. The bucket is younger than sealing, so every record in it is sealed.
func decodeTokenVersion(b []byte, userID string) (int64, error) {
	if b == nil {
		return 0, nil
	}
	n, err := decodeSeqRecord(b, bucketTokenVersions, []byte(userID), true)
	if err != nil || n > math.MaxInt64 {
		return 0, fmt.Errorf("token version of %q: %w", userID, errors.Join(err, errCorrupt))
	}
	return int64(n), nil
}
