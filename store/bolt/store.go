package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
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

	// For tests: merger tuning (see dedup.go); zero means the default.
	mergeAfter, maxWaiting int
	mergeInterval          time.Duration
}

// Store is an im.Store in a bbolt file and, beside it, the file of its
// dedup index (see IndexSuffix). Create it with Open.
type Store struct {
	db    *bbolt.DB
	dedup *dedupIndex
	// appendMu makes AppendMessages calls one at a time from before their
	// dedup lookups until their keys are in memory: bbolt's writer lock
	// alone would let the next call look before the last one's keys are
	// visible.
	appendMu sync.Mutex
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
	// dedupLog: 8-byte big-endian counter → log record (SenderID 0x00
	// ClientMsgID, seq, conversation), for keys not yet merged into the
	// index file. Schema version 1 had the index itself here, as "dedup".
	bucketDedupLog = "dedupLog"
	bucketDedupV1  = "dedup"
	// members: UserID 0x00 conversation id → empty, so that a user's
	// conversations are one prefix scan. IDs never contain 0x00.
	bucketMembers = "members"
	// accounts: UserID → account record.
	bucketAccounts = "accounts"
	// usernames: Username → UserID.
	bucketUsernames = "usernames"

	keyVersion    = "version"
	schemaVersion = 2
)

// allBuckets lists the top-level buckets besides meta.
func allBuckets() [6]string {
	return [...]string{bucketMsgs, bucketConvs, bucketDedupLog, bucketMembers, bucketAccounts, bucketUsernames}
}

// Open opens the store in the file at path and its dedup index in the file
// at path+IndexSuffix, creating them if they do not exist (their directory
// must). If the index file is missing or belongs to another store, Open
// rebuilds it from the stored messages. The files stay locked until Close;
// a second Open of them, from this process or another, fails after
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
	bopts := &bbolt.Options{Timeout: timeout, FreelistType: bbolt.FreelistMapType, NoFreelistSync: true}
	if strconv.IntSize == 64 {
		// Address space, not memory. Each time a file outgrows its
		// mapping, bbolt copies every node the write transaction holds to
		// the heap and waits for all reads to finish; mapping 1 GiB from
		// the start spares the first fifteen of those.
		bopts.InitialMmapSize = 1 << 30
	}
	db, err := bbolt.Open(path, mode, bopts)
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	s, err := open(db, path+IndexSuffix, mode, bopts, opts)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	return s, nil
}

func open(db *bbolt.DB, indexPath string, mode os.FileMode, bopts *bbolt.Options, opts Options) (*Store, error) {
	if err := db.Update(initSchema); err != nil {
		return nil, err
	}
	idb, err := bbolt.Open(indexPath, mode, bopts)
	if err != nil {
		return nil, err
	}
	d := newDedupIndex(idb, opts)
	if err := syncIndex(db, idb, d.maxMerge); err != nil {
		idb.Close()
		return nil, err
	}
	if err := d.load(db); err != nil {
		idb.Close()
		return nil, err
	}
	go d.run()
	if len(d.waiting) > 0 {
		d.poke()
	}
	return &Store{db: db, dedup: d}, nil
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
	switch got := binary.BigEndian.Uint64(v); got {
	case schemaVersion:
	case 1:
		if err := upgradeV1(tx, meta); err != nil {
			return fmt.Errorf("upgrade from schema version 1: %w", err)
		}
	default:
		return fmt.Errorf("schema version %d, this package reads %d", got, schemaVersion)
	}
	for _, name := range allBuckets() {
		if _, err := bucket(tx, name); err != nil {
			return err
		}
	}
	return nil
}

// upgradeV1 drops version 1's dedup index, which lived in this file, and
// the pair id with it, so that Open rebuilds the index in its own file.
func upgradeV1(tx *bbolt.Tx, meta *bbolt.Bucket) error {
	if err := tx.DeleteBucket([]byte(bucketDedupV1)); err != nil {
		return err
	}
	if _, err := tx.CreateBucket([]byte(bucketDedupLog)); err != nil {
		return err
	}
	if err := meta.Delete([]byte(keyPairID)); err != nil {
		return err
	}
	return meta.Put([]byte(keyVersion), binary.BigEndian.AppendUint64(nil, schemaVersion))
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

// Close releases the files. It waits for calls in progress and for the
// dedup merger, and is safe to call more than once; calls made after it
// fail.
func (s *Store) Close() error {
	// appendMu: no append may run between the last merge and the end of
	// the log.
	s.appendMu.Lock()
	flushErr := s.dedup.close(s.db)
	s.appendMu.Unlock()
	err := errors.Join(flushErr, s.dedup.db.Close(), s.db.Close())
	if err != nil {
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
