package bolt

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The dedup index maps (sender, client_msg_id) to the message first stored
// with that key. Client message ids are random (UUIDs, usually), so a
// B+tree keyed by them dirties a page of its own for almost every message:
// written in the commit that stores the message, that was half the cost of
// a commit and most of its fsync. So the commit writes each new message,
// key included, to a log instead, a bucket of the main file keyed by a
// counter, whose pages fill in order (see pendingMsgs for the messages);
// the keys are also held in memory, and a background merger
// moves them, sorted and many at a time, into the index proper, which
// lives in a file of its own (path + IndexSuffix) so that the merge's
// commits never wait for, or hold up, the main file's writer. Once a
// merge has committed, the merged keys leave memory, and the next append
// trims from the log the generations whose keys are all merged and whose
// messages are all in their buckets.
//
// Lookups go memory first, then the index file: a key leaves memory only
// after its merge has committed, so a lookup that misses memory and then
// reads the index (in a transaction begun after the miss) cannot miss a key
// in flight. After a crash, Open reads the log back into memory; keys the
// merger had already written are merged again, which changes nothing.
//
// The index holds nothing the messages do not: each message record carries
// its sender and client_msg_id. Each file records the same random id, and
// when they differ (the index file was lost, or comes from another store)
// Open rebuilds the index from the messages.

// IndexSuffix is appended to the path given to Open to name the file that
// holds the dedup index.
const IndexSuffix = ".dedup"

const (
	// In the index file: meta → "id" → the pair id; dedup → key → record.
	indexBucketMeta  = "meta"
	indexBucketDedup = "dedup"
	// keyPairID, in both files' meta buckets, ties an index to its store.
	keyPairID = "dedup-id"
	// In the index file's meta bucket: the last log key merged. An index
	// that has merged a key the main file never logged (keyNextLog) is
	// newer than it (a backup of the main file restored beside the live
	// index), and one that has not merged a key the main file trimmed
	// (keyTrimmed) is older: either is rebuilt.
	keyMergeThrough = "merged-through"
)

// Merger tuning. A merge rewrites the index's pages that its keys fall in,
// so bigger merges share more pages; the cost is memory, about 100 bytes
// per key waiting.
const (
	defaultMergeAfter    = 64 << 10         // keys waiting that start a merge
	defaultMergeInterval = 10 * time.Second // a merge at least this often
	defaultMaxMerge      = 256 << 10        // keys in one merge transaction
	defaultMaxWaiting    = 512 << 10        // appends wait beyond this
	// A merge is written in up to mergeChunks transactions of at least
	// minMergeChunk keys (see mergeOnce).
	mergeChunks   = 16
	minMergeChunk = 2 << 10
)

// dedupRef names a stored message.
type dedupRef struct {
	conv string
	seq  uint64
}

// waitingKey is a key logged but not yet merged.
type waitingKey struct {
	key    string // SenderID 0x00 ClientMsgID
	ref    dedupRef
	logKey uint64
}

// dedupIndex is the index file, the keys not yet in it, and the merger.
type dedupIndex struct {
	db *bbolt.DB

	mergeAfter, maxMerge, maxWaiting int
	minChunk                         int // keys in a merge transaction, at least
	mergeInterval                    time.Duration

	mu      sync.Mutex
	recent  map[string]dedupRef // the keys in waiting
	waiting []waitingKey        // in log order
	merged  chan struct{}       // closed, and replaced, after each merge
	err     error               // of the last merge; nil once one succeeds

	// trimTo is the last log key whose merge has committed.
	trimTo atomic.Uint64

	fail failpoint // Options.hook: nil outside tests

	wake      chan struct{} // buffered 1: a merge is due
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func newDedupIndex(db *bbolt.DB, opts Options) *dedupIndex {
	d := &dedupIndex{
		db:            db,
		mergeAfter:    defaultMergeAfter,
		maxMerge:      defaultMaxMerge,
		maxWaiting:    defaultMaxWaiting,
		minChunk:      minMergeChunk,
		mergeInterval: defaultMergeInterval,
		recent:        make(map[string]dedupRef),
		merged:        make(chan struct{}),
		wake:          make(chan struct{}, 1),
		stop:          make(chan struct{}),
		done:          make(chan struct{}),
		fail:          opts.hook,
	}
	if opts.mergeAfter > 0 {
		d.mergeAfter = opts.mergeAfter
	}
	if opts.maxWaiting > 0 {
		d.maxWaiting = opts.maxWaiting
	}
	if opts.mergeInterval > 0 {
		d.mergeInterval = opts.mergeInterval
	}
	if opts.minChunk > 0 {
		d.minChunk = opts.minChunk
	}
	d.maxMerge = max(d.maxMerge, d.mergeAfter)
	return d
}

// dedupKey appends the message's index key to b.
func (mv *messageView) dedupKey(b []byte) []byte {
	// The strings are ServerID, SenderID, ReceiverID, ClientMsgID, … back
	// to back.
	off := mv.lens[0]
	b = append(append(b, mv.strs[off:off+mv.lens[1]]...), 0)
	off += mv.lens[1] + mv.lens[2]
	return append(b, mv.strs[off:off+mv.lens[3]]...)
}

// dedupKey appends the index key of (sender, clientMsgID) to b. IDs never
// contain 0x00.
func dedupKey(b []byte, sender, clientMsgID string) []byte {
	return append(append(append(b, sender...), 0), clientMsgID...)
}

// pairID reads (creating it, in a new file) the id tying the main file to
// its index.
func pairID(tx *bbolt.Tx) ([]byte, error) {
	meta, err := bucket(tx, bucketMeta)
	if err != nil {
		return nil, err
	}
	if id := meta.Get([]byte(keyPairID)); id != nil {
		return bytes.Clone(id), nil
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id) // never fails
	if err := meta.Put([]byte(keyPairID), id); err != nil {
		return nil, err
	}
	return id, nil
}

// syncIndex makes the index file's contents those of the main file: if
// the two do not belong together (see keyPairID and keyMergeThrough), it
// empties the index and refills it from every stored message, in
// transactions of maxMerge keys, and records the id last, so that a
// rebuild cut short is started over.
func syncIndex(main, index *bbolt.DB, maxMerge int, strict bool, fail failpoint) error {
	var (
		id               []byte
		nextLog, trimmed uint64
	)
	if err := main.Update(func(tx *bbolt.Tx) (err error) {
		if id, err = pairID(tx); err != nil {
			return err
		}
		meta := tx.Bucket([]byte(bucketMeta))
		if nextLog, err = metaCounter(meta, keyNextLog, strict); err != nil {
			return err
		}
		trimmed, err = metaCounter(meta, keyTrimmed, strict)
		return err
	}); err != nil {
		return err
	}
	same := false
	err := index.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists([]byte(indexBucketMeta))
		if err != nil {
			return err
		}
		merged := counter(meta, keyMergeThrough)
		if bytes.Equal(meta.Get([]byte(keyPairID)), id) && tx.Bucket([]byte(indexBucketDedup)) != nil &&
			merged < max(nextLog, 1) && merged >= trimmed {
			same = true
			return nil
		}
		if err := tx.DeleteBucket([]byte(indexBucketDedup)); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		if err := meta.Delete([]byte(keyPairID)); err != nil {
			return err
		}
		_, err = tx.CreateBucket([]byte(indexBucketDedup))
		return err
	})
	if err != nil || same {
		return err
	}

	// A read transaction on the main file for the whole scan is fine: no
	// one else writes it before Open returns.
	var pending []waitingKey
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		err := writeIndex(index, pending, true, 0, fail)
		pending = pending[:0]
		if err != nil {
			return err
		}
		return fail.at(failRebuildChunk)
	}
	err = main.View(func(tx *bbolt.Tx) error {
		msgs, err := bucket(tx, bucketMsgs)
		if err != nil {
			return err
		}
		return msgs.ForEachBucket(func(conv []byte) error {
			cb := msgs.Bucket(conv)
			return cb.ForEach(func(k, v []byte) error {
				seq, err := decodeSeq(k)
				if err != nil {
					return corrupt("message key %x of conversation %q", k, conv)
				}
				mv, err := readMessage(conv, k, seq, v, strict)
				if err != nil {
					return err
				}
				pending = append(pending, waitingKey{
					key: string(mv.dedupKey(nil)),
					ref: dedupRef{conv: string(conv), seq: uint64(seq)},
				})
				if len(pending) >= maxMerge {
					return flush()
				}
				return nil
			})
		})
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return fmt.Errorf("rebuild dedup index: %w", err)
	}
	return index.Update(func(tx *bbolt.Tx) error {
		meta, err := bucket(tx, indexBucketMeta)
		if err != nil {
			return err
		}
		// Everything the main file logged is in the index now.
		if err := putCounter(meta, keyMergeThrough, max(nextLog, 1)-1); err != nil {
			return err
		}
		return meta.Put([]byte(keyPairID), id)
	})
}

// counter reads an 8-byte big-endian counter from b; absent is 0.
func counter(b *bbolt.Bucket, key string) uint64 {
	if v := b.Get([]byte(key)); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func putCounter(b *bbolt.Bucket, key string, n uint64) error {
	return b.Put([]byte(key), binary.BigEndian.AppendUint64(nil, n))
}

// writeIndex puts keys into the index file in one transaction, in key
// order (it sorts them), which is how bbolt writes fastest, and records
// through, if not 0,
// as the last log key merged. With keepFirst, a key already there keeps
// its record: a rebuild must keep the message first stored.
func writeIndex(db *bbolt.DB, keys []waitingKey, keepFirst bool, through uint64, fail failpoint) error {
	slices.SortFunc(keys, func(a, b waitingKey) int { return cmp.Compare(a.key, b.key) })
	return db.Update(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, indexBucketDedup)
		if err != nil {
			return err
		}
		if through != 0 {
			meta, err := bucket(tx, indexBucketMeta)
			if err != nil {
				return err
			}
			if err := putCounter(meta, keyMergeThrough, through); err != nil {
				return err
			}
		}
		// bbolt keeps references to values until commit: they all go in
		// one arena, never overwritten. It copies keys, so kb is reused.
		size := 0
		for i := range keys {
			size += 8 + len(keys[i].ref.conv)
		}
		arena := make([]byte, 0, size)
		var kb []byte
		for i := range keys {
			k := &keys[i]
			kb = append(kb[:0], k.key...)
			if keepFirst && b.Get(kb) != nil {
				continue
			}
			start := len(arena)
			arena = appendDedup(arena, k.ref.conv, k.ref.seq)
			if err := b.Put(kb, arena[start:len(arena):len(arena)]); err != nil {
				return err
			}
		}
		return fail.at(failIndexCommit)
	})
}

// add records a logged key; d.mu is held or not needed.
func (d *dedupIndex) add(w waitingKey) {
	d.recent[w.key] = w.ref
	d.waiting = append(d.waiting, w)
}

// lookupRecent looks keys up in memory: found[i] is set for each hit (a
// found ref has a seq, which is never 0).
func (d *dedupIndex) lookupRecent(keys [][]byte, found []dedupRef) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, k := range keys {
		if k != nil {
			found[i] = d.recent[string(k)]
		}
	}
}

// lookupIndex looks up, in the index file, the keys lookupRecent did not
// find. It must start after lookupRecent: see the type's comment.
func (d *dedupIndex) lookupIndex(keys [][]byte, found []dedupRef) error {
	miss := false
	for i, k := range keys {
		miss = miss || (k != nil && found[i].seq == 0)
	}
	if !miss {
		return nil
	}
	return d.db.View(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, indexBucketDedup)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for i, k := range keys {
			if k == nil || found[i].seq != 0 {
				continue
			}
			fk, v := c.Seek(k)
			if v == nil || !bytes.Equal(fk, k) {
				continue
			}
			conv, seq, err := decodeDedup(v)
			if err != nil {
				return corrupt("dedup record")
			}
			found[i] = dedupRef{conv: string(conv), seq: uint64(seq)}
		}
		return nil
	})
}

// committed makes the keys of a committed append visible to lookups and
// wakes the merger when enough are waiting.
func (d *dedupIndex) committed(keys []waitingKey) {
	if len(keys) == 0 {
		return
	}
	d.mu.Lock()
	for _, w := range keys {
		d.add(w)
	}
	due := len(d.waiting) >= d.mergeAfter
	d.mu.Unlock()
	if due {
		d.poke()
	}
}

func (d *dedupIndex) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// roomFor waits until fewer than maxWaiting keys wait for the merger, so
// that memory stays bounded when merges fall behind appends.
func (d *dedupIndex) roomFor(done <-chan struct{}) error {
	for {
		d.mu.Lock()
		n, merged, err := len(d.waiting), d.merged, d.err
		d.mu.Unlock()
		if n < d.maxWaiting {
			return nil
		}
		if err != nil {
			// Merges fail (a full disk, say): refuse appends rather than
			// grow memory without bound.
			return fmt.Errorf("dedup index: %w", err)
		}
		d.poke()
		select {
		case <-merged:
		case <-done:
			return errDoneWaiting
		case <-d.stop:
			return berrors.ErrDatabaseNotOpen
		}
	}
}

var errDoneWaiting = errors.New("gave up waiting for the dedup index")

// run is the merger. It returns when close is called.
func (d *dedupIndex) run() {
	defer close(d.done)
	t := time.NewTicker(d.mergeInterval)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-d.wake:
		case <-t.C:
		}
		for d.mergeOnce() {
			// More than one merge's worth waits: go on at once.
		}
	}
}

// mergeOnce merges the oldest waiting keys, up to maxMerge, and reports
// whether more are waiting than a merge takes.
//
// The keys go in sorted, in mergeChunks transactions, each over its own
// range of keys: together they rewrite each of the index's pages about
// once, as one transaction would, but no transaction holds a core for
// long, and after each the merger rests as long as it took, so it uses at
// most half a core. One transaction of 64k keys took a core for a few
// hundred milliseconds, long enough to set the p99 of send latency.
func (d *dedupIndex) mergeOnce() (more bool) {
	d.mu.Lock()
	n := min(len(d.waiting), d.maxMerge)
	batch := slices.Clone(d.waiting[:n])
	d.mu.Unlock()
	if n == 0 {
		return false
	}
	last := batch[n-1].logKey // before the batch is sorted
	slices.SortFunc(batch, func(a, b waitingKey) int { return cmp.Compare(a.key, b.key) })
	size := max((n+mergeChunks-1)/mergeChunks, d.minChunk)
	for i := 0; i < n; i += size {
		part := batch[i:min(i+size, n)]
		var through uint64
		if i+size >= n {
			through = last // all of the batch is in once this commits
		}
		start := time.Now()
		err := writeIndex(d.db, part, false, through, d.fail)
		d.mu.Lock()
		d.err = err
		if err == nil {
			// In the index now: lookups find them there.
			for _, w := range part {
				delete(d.recent, w.key)
			}
		}
		d.mu.Unlock()
		if err != nil {
			return false // the ticker retries the whole batch
		}
		if through == 0 {
			_ = d.fail.at(failMergeChunk)
			d.rest(time.Since(start))
		}
	}
	_ = d.fail.at(failMergeDone)

	d.mu.Lock()
	defer d.mu.Unlock()
	d.waiting = slices.Delete(d.waiting, 0, n)
	close(d.merged)
	d.merged = make(chan struct{})
	d.trimTo.Store(last)
	return len(d.waiting) >= d.maxMerge
}

// rest pauses the merger for about dur, unless it is stopping.
func (d *dedupIndex) rest(dur time.Duration) {
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-t.C:
	case <-d.stop:
	}
}

// close stops the merger and waits for it, then merges what is still
// waiting into the index file. It reports whether this was the first call.
func (d *dedupIndex) close() (bool, error) {
	first := false
	d.closeOnce.Do(func() {
		close(d.stop)
		first = true
	})
	<-d.done
	if !first {
		return false, nil
	}
	for {
		d.mu.Lock()
		n := len(d.waiting)
		d.mu.Unlock()
		if n == 0 {
			return true, nil
		}
		d.mergeOnce()
		if d.err != nil {
			return true, fmt.Errorf("dedup index: %w", d.err)
		}
	}
}
