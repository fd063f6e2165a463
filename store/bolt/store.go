package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// Options configures Open. The zero value is the recommended configuration.
type Options struct {
	// Timeout is how long Open waits for the file's lock while another
	// Store, in this process or another, has the file open. Zero means
	// 1 s; negative means fail at once.
	Timeout time.Duration
	// FileMode is the permission a newly created file gets. Zero means
	// 0600: the file holds password hashes.
	FileMode os.FileMode
}

// Store is an im.Store in one bbolt file. Create it with Open.
type Store struct {
	db *bbolt.DB
}

var _ im.Store = (*Store)(nil)

// Layout of the file: one top-level bucket per area.
const (
	// meta: "version" → schemaVersion as 8 bytes big-endian.
	bucketMeta = "meta"
	// msgs: one nested bucket per conversation id; in it, 8-byte
	// big-endian seq → message record.
	bucketMsgs = "msgs"
	// convs: conversation id → max seq, 8 bytes big-endian.
	bucketConvs = "convs"
	// dedup: SenderID 0x00 ClientMsgID → dedup record (seq, conversation).
	bucketDedup = "dedup"
	// members: UserID 0x00 conversation id → empty, so that a user's
	// conversations are one prefix scan. IDs never contain 0x00.
	bucketMembers = "members"
	// accounts: UserID → account record.
	bucketAccounts = "accounts"
	// usernames: Username → UserID.
	bucketUsernames = "usernames"

	keyVersion    = "version"
	schemaVersion = 1
)

// allBuckets lists the top-level buckets besides meta.
func allBuckets() [6]string {
	return [...]string{bucketMsgs, bucketConvs, bucketDedup, bucketMembers, bucketAccounts, bucketUsernames}
}

// Open opens the store in the file at path, creating the file if it does
// not exist (its directory must). The file stays locked until Close; a
// second Open of it, from this process or another, fails after
// opts.Timeout with an error wrapping bbolt's errors.ErrTimeout.
func Open(path string, opts Options) (*Store, error) {
	timeout := opts.Timeout
	switch {
	case timeout == 0:
		timeout = time.Second
	case timeout < 0:
		timeout = time.Nanosecond // one attempt: bbolt treats 0 as "wait forever"
	}
	mode := opts.FileMode
	if mode == 0 {
		mode = 0o600
	}
	// NoSync stays off: a commit returns once it is on disk.
	db, err := bbolt.Open(path, mode, &bbolt.Options{Timeout: timeout, FreelistType: bbolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	if err := db.Update(initSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// initSchema creates the buckets of a new file and refuses a file written
// by something else or by a newer version of this package.
func initSchema(tx *bbolt.Tx) error {
	meta := tx.Bucket([]byte(bucketMeta))
	if meta == nil {
		if k, _ := tx.Cursor().First(); k != nil {
			return errors.New("not an imserver database")
		}
		return createSchema(tx)
	}
	v := meta.Get([]byte(keyVersion))
	if len(v) != 8 {
		return corrupt("schema version")
	}
	if got := binary.BigEndian.Uint64(v); got != schemaVersion {
		return fmt.Errorf("schema version %d, this package reads %d", got, schemaVersion)
	}
	for _, name := range allBuckets() {
		if _, err := bucket(tx, name); err != nil {
			return err
		}
	}
	return nil
}

func createSchema(tx *bbolt.Tx) error {
	meta, err := tx.CreateBucket([]byte(bucketMeta))
	if err != nil {
		return err
	}
	if err := meta.Put([]byte(keyVersion), binary.BigEndian.AppendUint64(nil, schemaVersion)); err != nil {
		return err
	}
	for _, name := range allBuckets() {
		if _, err := tx.CreateBucket([]byte(name)); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the file. It waits for calls in progress and is safe to
// call more than once; calls made after it fail.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt: close: %w", err)
	}
	return nil
}

// bucket returns top-level bucket name, which Open made sure exists.
func bucket(tx *bbolt.Tx, name string) (*bbolt.Bucket, error) {
	b := tx.Bucket([]byte(name))
	if b == nil {
		return nil, corrupt("missing bucket %q", name)
	}
	return b, nil
}
