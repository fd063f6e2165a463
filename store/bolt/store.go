package bolt

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth/account"
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
	mergeAfter, maxWaiting, maxLag, minChunk int
	mergeInterval                            time.Duration
	// For tests: called at each failpoint (see failpoint.go).
	hook failpoint
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
	// pend holds the messages logged but not yet in their conversations'
	// buckets; memMu makes readers see them and the file in agreement.
	pend   *pendingMsgs
	memMu  sync.RWMutex
	maxLag uint64
	// Used under appendMu only: the next log key to assign, and the log
	// key up to which the log has been trimmed.
	nextLog, trimmed uint64
	// fail is Options.hook: nil outside tests.
	fail failpoint
	// strict: every record of the main file is sealed, so an unsealed one
	// is damage (see seal.go). id is the store's identity.
	strict bool
	id     string
	// rangeBufs keeps ScanMessageRanges' memory (*rangeBuf) between calls.
	rangeBufs sync.Pool
}

var (
	_ im.Store               = (*Store)(nil)
	_ im.SyncStore           = (*Store)(nil)
	_ im.MessageRangeScanner = (*Store)(nil)
	_ im.ReadStateStore      = (*Store)(nil)
	_ im.RecallStore         = (*Store)(nil)
	_ account.AccountStore   = (*Store)(nil)
)

// Layout of the file: one top-level bucket per area.
const (
	// meta: "version" → schemaVersion as 8 bytes big-endian (never
	// sealed, so that every version of this package can read it), and
	// keyChecksums, keyStoreID and the log's counters, sealed.
	bucketMeta = "meta"
	// msgs: one nested bucket per conversation id; in it, 8-byte
	// big-endian seq → message record. Beside each conversation's
	// bucket, conversation id 0x00 UserID → the seq of the user's newest
	// message in the bucket, 8 bytes big-endian (see sentPosition): a
	// plain key, which ForEachBucket skips.
	bucketMsgs = "msgs"
	// convs: conversation id → max seq, 8 bytes big-endian.
	bucketConvs = "convs"
	// log: one nested bucket per generation of logGeneration keys; in it,
	// an 8-byte big-endian counter → log record (conversation, seq,
	// message record): every message stored, until it is both in its
	// conversation's bucket and in the dedup index file. Schema version 1
	// had the dedup index itself in this file, as "dedup"; version 2 a log
	// of dedup keys only, as "dedupLog".
	bucketLog      = "log"
	bucketDedupV1  = "dedup"
	bucketDedupLog = "dedupLog"
	// members: UserID 0x00 conversation id → empty, so that a user's
	// conversations are one prefix scan. IDs never contain 0x00.
	bucketMembers = "members"
	// accounts: UserID → account record.
	bucketAccounts = "accounts"
	// usernames: Username → UserID.
	bucketUsernames = "usernames"
	// groups: group id → group record, MemberCount included.
	bucketGroups = "groups"
	// groupMembers: group id 0x00 UserID → member record, so that a
	// group's members are one prefix scan.
	bucketGroupMembers = "groupMembers"
	// userGroups: UserID 0x00 group id → empty, so that a user's groups
	// are one prefix scan.
	bucketUserGroups = "userGroups"
	// readStates: conversation id 0x00 UserID → read state record (the
	// receipts: Read and Delivered), so that a conversation's states are
	// one prefix scan.
	bucketReadStates = "readStates"

	keyVersion    = "version"
	schemaVersion = 4
	// schemaTombstones is the schema version of a file that holds a
	// tombstone (a message record of version 2, see recall.go), which
	// older versions of this package would take for damage. A file stays
	// at schemaVersion, which they open, until its first recall raises
	// it, so that they refuse it from then on.
	schemaTombstones = 5
	// schemaProfiles is the schema version of a file that holds a record
	// older versions of this package would take for damage, or an area
	// they would not keep: an account record of version 2 (a profile, or
	// Deleted), a group record with MuteAll, a member record with
	// MutedUntil, or a pending group join request, which their group
	// changes would not remove. It is raised, as schemaTombstones is, by
	// the first commit that writes one. From it on, every writer keeps
	// the nickname index (bucketNicknames); Open rebuilds the index of a
	// file below it, whose accounts an older version may have changed.
	// A file at it may hold tombstones too.
	schemaProfiles = 6
	// schemaNewest is the newest schema version this package reads.
	schemaNewest = schemaProfiles
)

// allBuckets lists the top-level buckets besides meta that every file of
// schema version 3 or later has.
func allBuckets() [6]string {
	return [...]string{bucketMsgs, bucketConvs, bucketLog, bucketMembers, bucketAccounts, bucketUsernames}
}

// addedBuckets lists the top-level buckets added without a new schema
// version, which Open creates when missing. A new area that only adds
// buckets goes here: older versions of this package ignore them, so they
// can still open the file.
func addedBuckets() [14]string {
	return [...]string{
		bucketGroups, bucketGroupMembers, bucketUserGroups, bucketReadStates, bucketSettings,
		bucketNicknames, bucketRevoked, bucketRevokedByExpiry,
		bucketFriends, bucketFriendRequests, bucketFriendRequestsTo, bucketBlocks, bucketBlockedBy,
		bucketJoinRequests,
	}
}

// Open opens the store in the file at path and its dedup index in the file
// at path+IndexSuffix, creating them if they do not exist (their directory
// must). If the index file is missing or belongs to another store, Open
// rebuilds it from the stored messages. The files stay locked until Close;
// a second Open of them, from this process or another, fails after
// opts.Timeout with an error wrapping bbolt's errors.ErrTimeout.
//
// A damaged file is an error wrapping im.ErrCorrupt, never a panic: bbolt
// trusts its pages and panics, or faults reading past its mapping, on some
// damage, which Open recovers from. A file of 0 bytes is refused rather
// than made into a new store: it is what a lost file looks like after some
// crashes and copies, and starting over would forget every message.
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
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
		return nil, fmt.Errorf("bolt: open %s: the file is empty (0 bytes), not a store: %w", path, im.ErrCorrupt)
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
	s, err := openGuarded(path, mode, bopts, opts)
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	return s, nil
}

// openGuarded opens the files, turning a panic of bbolt's, or a memory
// fault reading the mapped file, into an error.
func openGuarded(path string, mode os.FileMode, bopts *bbolt.Options, opts Options) (s *Store, err error) {
	if _, err := os.Stat(path); err == nil {
		if err := walkFile(path, bopts.Timeout); err != nil {
			return nil, err
		}
	}
	var db *bbolt.DB
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			if db != nil {
				closeAfterPanic(db)
			}
			s, err = nil, fmt.Errorf("the file is damaged (%v): %w", v, im.ErrCorrupt)
		}
	}()
	db, err = bbolt.Open(path, mode, bopts)
	if err != nil {
		return nil, err
	}
	s, err = open(db, path+IndexSuffix, mode, bopts, opts)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// walkFile checks the pages of the file at path with walkPages, before
// bbolt.Open walks them in a goroutine where damage would end the process.
// It first opens the file read-only, which takes a shared lock and so
// waits, up to timeout, for a process that has it open, as bbolt.Open
// does.
func walkFile(path string, timeout time.Duration) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("the file is damaged (%v): %w", v, im.ErrCorrupt)
		}
	}()
	db, err := bbolt.Open(path, 0, &bbolt.Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		if errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrVersionMismatch) || errors.Is(err, berrors.ErrChecksum) {
			err = fmt.Errorf("%w: %w", err, im.ErrCorrupt)
		}
		return err
	}
	defer closeAfterPanic(db)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return walkPages(f)
}

// closeAfterPanic closes db after bbolt panicked, which may have left it
// in a state where closing panics too.
func closeAfterPanic(db *bbolt.DB) {
	defer func() { _ = recover() }()
	_ = db.Close()
}

func open(db *bbolt.DB, indexPath string, mode os.FileMode, bopts *bbolt.Options, opts Options) (*Store, error) {
	var strict bool
	var id string
	if err := db.Update(func(tx *bbolt.Tx) (err error) {
		strict, id, err = initSchema(tx)
		return err
	}); err != nil {
		return nil, err
	}
	idb, err := bbolt.Open(indexPath, mode, bopts)
	if err != nil {
		return nil, err
	}
	// On an error or a panic (see openGuarded), the index file is closed.
	ok := false
	defer func() {
		if !ok {
			idb.Close()
		}
	}()
	d := newDedupIndex(idb, opts)
	if err := syncIndex(db, idb, d.maxMerge, strict, opts.hook); err != nil {
		return nil, err
	}
	s := &Store{db: db, dedup: d, pend: newPendingMsgs(), maxLag: defaultMaxLag, fail: opts.hook, strict: strict, id: id}
	if opts.maxLag > 0 {
		s.maxLag = uint64(opts.maxLag)
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	ok = true
	go d.run()
	if len(d.waiting) > 0 {
		d.poke()
	}
	return s, nil
}

// initSchema creates the buckets of a new file, and those of addedBuckets
// that an older file lacks, and refuses a file written by something else
// or by a newer version of this package. It reports whether every record
// of the file is sealed, and the store's identity; a file of schema
// version 3 or older gets one, and seals what is written from then on.
func initSchema(tx *bbolt.Tx) (strict bool, id string, err error) {
	meta := tx.Bucket([]byte(bucketMeta))
	if meta == nil {
		if k, _ := tx.Cursor().First(); k != nil {
			return false, "", errors.New("not an imserver database")
		}
		return createSchema(tx)
	}
	v := meta.Get([]byte(keyVersion))
	if len(v) != 8 {
		return false, "", corrupt("schema version")
	}
	got := binary.BigEndian.Uint64(v)
	switch got {
	case schemaVersion, schemaTombstones, schemaProfiles:
	case 1, 2, 3:
		if got < 3 {
			if err := upgrade(tx, meta); err != nil {
				return false, "", fmt.Errorf("upgrade from schema version %d: %w", got, err)
			}
		}
		if err := startChecksums(meta, checksumsSince); err != nil {
			return false, "", fmt.Errorf("upgrade from schema version %d: %w", got, err)
		}
	default:
		return false, "", fmt.Errorf("schema version %d, this package reads up to %d", got, schemaNewest)
	}
	for _, name := range allBuckets() {
		if _, err := bucket(tx, name); err != nil {
			return false, "", err
		}
	}
	rebuild := got < schemaProfiles || tx.Bucket([]byte(bucketNicknames)) == nil
	for _, name := range addedBuckets() {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return false, "", err
		}
	}
	if strict, id, err = readChecksums(meta); err != nil {
		return false, "", err
	}
	if rebuild {
		if err := rebuildNicknames(tx, strict); err != nil {
			return false, "", fmt.Errorf("nickname index: %w", err)
		}
	}
	return strict, id, nil
}

// raiseSchema raises the file's schema version to v, if it is below: the
// commit that writes the first record an older version of this package
// would misread makes those versions refuse the file.
func raiseSchema(tx *bbolt.Tx, v uint64) error {
	meta, err := bucket(tx, bucketMeta)
	if err != nil {
		return err
	}
	if counter(meta, keyVersion) >= v {
		return nil
	}
	return meta.Put([]byte(keyVersion), binary.BigEndian.AppendUint64(nil, v))
}

// startChecksums records, in a new file or one being upgraded, which of
// its records are sealed, and gives it an identity.
func startChecksums(meta *bbolt.Bucket, mode byte) error {
	if err := meta.Put([]byte(keyChecksums), sealIn(bucketMeta, []byte(keyChecksums), []byte{mode})); err != nil {
		return err
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id) // never fails
	if err := meta.Put([]byte(keyStoreID), sealIn(bucketMeta, []byte(keyStoreID), id)); err != nil {
		return err
	}
	return meta.Put([]byte(keyVersion), binary.BigEndian.AppendUint64(nil, schemaVersion))
}

// readChecksums reads what startChecksums wrote. Both records must be
// there and intact: without them, the file's records cannot be trusted.
func readChecksums(meta *bbolt.Bucket) (strict bool, id string, err error) {
	mode, err := unsealIn(bucketMeta, []byte(keyChecksums), meta.Get([]byte(keyChecksums)), true)
	if err != nil || len(mode) != 1 || (mode[0] != checksumsAll && mode[0] != checksumsSince) {
		return false, "", corrupt("meta %q", keyChecksums)
	}
	raw, err := unsealIn(bucketMeta, []byte(keyStoreID), meta.Get([]byte(keyStoreID)), true)
	if err != nil || len(raw) != 16 {
		return false, "", corrupt("meta %q", keyStoreID)
	}
	return mode[0] == checksumsAll, hex.EncodeToString(raw), nil
}

// upgrade drops the dedup index of version 1, which lived in this file, or
// the dedup log of version 2, and the pair id with them, so that Open
// rebuilds the index in its own file from the messages: in both versions
// every message is in its conversation's bucket.
func upgrade(tx *bbolt.Tx, meta *bbolt.Bucket) error {
	for _, name := range []string{bucketDedupV1, bucketDedupLog} {
		if err := tx.DeleteBucket([]byte(name)); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
	}
	if _, err := tx.CreateBucket([]byte(bucketLog)); err != nil {
		return err
	}
	for _, key := range []string{keyPairID, keyNextLog, keyTrimmed} {
		if err := meta.Delete([]byte(key)); err != nil {
			return err
		}
	}
	return meta.Put([]byte(keyVersion), binary.BigEndian.AppendUint64(nil, schemaVersion))
}

func createSchema(tx *bbolt.Tx) (strict bool, id string, err error) {
	meta, err := tx.CreateBucket([]byte(bucketMeta))
	if err != nil {
		return false, "", err
	}
	if err := startChecksums(meta, checksumsAll); err != nil {
		return false, "", err
	}
	all, added := allBuckets(), addedBuckets()
	for _, name := range append(all[:], added[:]...) {
		if _, err := tx.CreateBucket([]byte(name)); err != nil {
			return false, "", err
		}
	}
	return readChecksums(meta)
}

// ID returns the store's identity: random, made when the file was created
// (or first opened by a version of this package that seals records), and
// kept in it, so that a data dir can tell its own file from another one.
func (s *Store) ID() string { return s.id }

// Close releases the files. It waits for calls in progress and for the
// dedup merger, and is safe to call more than once; calls made after it
// fail.
func (s *Store) Close() error {
	// appendMu: no append may run between the last merge and the end of
	// the log.
	s.appendMu.Lock()
	flushErr := s.flush()
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

// guard, deferred as "defer guard(&err, debug.SetPanicOnFault(true))" by
// each method that reads the file, turns a panic of bbolt's, which trusts
// its pages and panics on some damage, or a fault reading the mapped file,
// into an error wrapping im.ErrCorrupt, and restores the goroutine's
// setting, old. The transaction the method was in is rolled back by its
// own deferred call.
func guard(errp *error, old bool) {
	debug.SetPanicOnFault(old)
	if v := recover(); v != nil {
		*errp = fmt.Errorf("bolt: the file is damaged (%v): %w", v, im.ErrCorrupt)
	}
}
