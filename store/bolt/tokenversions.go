package bolt

import (
	"context"
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
)

// bucketTokenVersions: UserID → token version, 8 bytes big-endian, for
// users whose version was ever bumped. It is made by the first bump, so
// that files written before it existed open as they are, and older
// versions of this package, which ignore it, still open files that have it.
const bucketTokenVersions = "tokenVersions"

var _ auth.TokenVersions = (*Store)(nil)

// TokenVersion implements auth.TokenVersions.
func (s *Store) TokenVersion(ctx context.Context, userID string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("bolt: token version: %w", err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return 0, err
	}
	var v int64
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bucketTokenVersions))
		if b == nil {
			return nil
		}
		var err error
		v, err = decodeTokenVersion(b.Get([]byte(userID)))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: token version of %q: %w", userID, err)
	}
	return v, nil
}

// BumpTokenVersion implements auth.TokenVersions: bbolt's single writer
// makes the read and the write one step.
func (s *Store) BumpTokenVersion(ctx context.Context, userID string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("bolt: bump token version: %w", err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return 0, err
	}
	var v int64
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := tx.CreateBucketIfNotExists([]byte(bucketTokenVersions))
		if err != nil {
			return err
		}
		if v, err = decodeTokenVersion(b.Get([]byte(userID))); err != nil {
			return err
		}
		v++
		return b.Put([]byte(userID), binary.BigEndian.AppendUint64(nil, uint64(v)))
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: bump token version of %q: %w", userID, err)
	}
	return v, nil
}

// decodeTokenVersion reads a stored version; nil (never bumped) is 0.
func decodeTokenVersion(b []byte) (int64, error) {
	if b == nil {
		return 0, nil
	}
	if len(b) != 8 || b[0]&0x80 != 0 {
		return 0, corrupt("token version record of %d bytes", len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}
