package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// AppendMessages implements im.MessageStore. The whole batch is one bbolt
// write transaction, so one fsync, however many messages and conversations
// it holds; concurrent calls run one at a time.
func (s *Store) AppendMessages(ctx context.Context, batch []im.AppendRequest) (_ []im.AppendResult, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: append messages: %w", err)
	}
	results := make([]im.AppendResult, len(batch))
	size, content, valid := 0, 0, 0
	for i := range batch {
		if err := im.ValidateAppend(batch[i]); err != nil {
			results[i].Err = err
			continue
		}
		valid++
		m := &batch[i].Message
		// The dedup key, the log record and the max seq record.
		size += len(m.SenderID) + 1 + len(m.ClientMsgID) + logHeaderSize(m.ConversationID, math.MaxInt64) + messageSize(m) + 8 + sealOverhead
		content += len(m.Content)
	}
	if valid == 0 {
		return results, nil // nothing to write, so no commit
	}
	if err := s.dedup.roomFor(ctx.Done()); err != nil {
		if errors.Is(err, errDoneWaiting) {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("bolt: append messages: %w", err)
	}

	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	a := appender{
		d: s.dedup, pend: s.pend, maxLag: s.maxLag, startLog: s.nextLog, startTrimmed: s.trimmed, strict: s.strict,
		arena: make([]byte, 0, size), content: make([]byte, 0, content),
	}
	if err := a.lookup(batch, results); err != nil {
		return nil, fmt.Errorf("bolt: append messages: %w", err)
	}
	if err := s.write(ctx, func(tx *bbolt.Tx) error {
		if err := a.open(tx); err != nil {
			return err
		}
		for i := range batch {
			if results[i].Err != nil {
				continue
			}
			if batch[i].MemberOf != "" {
				// Against the groups as this transaction sees them:
				// every group change is a write transaction too.
				if err := checkMemberOf(tx, &batch[i], &results[i], s.strict); err != nil {
					return err
				}
				if results[i].Err != nil {
					continue
				}
			}
			v := results[i].GroupVersion
			if err := a.append(i, &batch[i], &results[i]); err != nil {
				return err
			}
			results[i].GroupVersion = v
		}
		return a.finish()
	}, a.apply); err != nil {
		return nil, fmt.Errorf("bolt: append messages: %w", err)
	}
	s.nextLog, s.trimmed = a.nextLog, a.trimmed
	s.dedup.committed(a.logged)
	return results, nil
}

// write runs fn in a write transaction and commits it; if that succeeds,
// it runs then, under memMu with the commit, so that no reader sees the
// one without the other (see pendingMsgs).
func (s *Store) write(ctx context.Context, fn func(*bbolt.Tx) error, then func()) error {
	tx, err := s.db.Begin(true)
	if err != nil {
		return err
	}
	// Rolled back whatever happens, a panic of bbolt's on a damaged page
	// included (see guard), so that the writer lock is released; after a
	// commit, this does nothing.
	defer func() { _ = tx.Rollback() }()
	// The wait for the writer lock may have outlasted the caller.
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := s.fail.at(failCommit); err != nil {
		return err
	}
	s.memMu.Lock()
	defer s.memMu.Unlock()
	if err := tx.Commit(); err != nil {
		return err
	}
	_ = s.fail.at(failCommitted)
	then()
	return nil
}

// read begins a read transaction that agrees with the pending messages,
// and calls snap, if not nil, with memMu held, to look at them.
func (s *Store) read(snap func(p *pendingMsgs)) (*bbolt.Tx, error) {
	s.memMu.RLock()
	defer s.memMu.RUnlock()
	if snap != nil {
		snap(s.pend)
	}
	return s.db.Begin(false)
}

// view is read for fn, which does not look at the pending messages.
func (s *Store) view(fn func(*bbolt.Tx) error) error {
	tx, err := s.read(nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	return fn(tx)
}

// appender writes the requests of one batch inside its transaction.
type appender struct {
	d                         *dedupIndex
	pend                      *pendingMsgs
	maxLag                    uint64
	strict                    bool // Store.strict
	tx                        *bbolt.Tx
	msgs, convs, log, members *bbolt.Bucket
	// Keys are built in these buffers and reused: bbolt copies keys.
	convKey, memberKey []byte
	seqKey             [8]byte
	logGen             *bbolt.Bucket // the log's current generation
	// arena holds every value put in the transaction. bbolt keeps
	// references to values until commit, so the arena is only ever
	// appended to, never overwritten. content holds the batch's message
	// contents, which pending messages keep. merged holds the records of
	// pending messages moved to their buckets, encoded again.
	arena, content, merged []byte
	// keys[i] is request i's dedup key (nil if it is invalid); found[i]
	// the message stored before with that key, if any.
	keys  [][]byte
	found []dedupRef
	// fresh holds the messages this batch stores by dedup key, so that a
	// key repeated within the batch is a duplicate too; logged lists the
	// keys in log order.
	fresh  map[string]im.Message
	logged []waitingKey
	// The log's counters (Store.nextLog, Store.trimmed) as the transaction
	// finds them and as it leaves them; the latter are the Store's once it
	// commits.
	startLog, startTrimmed uint64
	nextLog, trimmed       uint64
	// touched holds the conversations this batch touched, so that a
	// conversation's bucket and max seq are looked up once per batch and
	// its max seq written once, in finish, rather than per message.
	touched map[string]*openConv
	// mergedConvs are the conversations whose pending messages finish
	// moved to their buckets; aged how many aging entries it went through.
	mergedConvs []string
	aged        int
	// senders and sentKey are putSentPositions' buffers.
	senders []string
	sentKey []byte
}

type openConv struct {
	seq     uint64        // the last seq assigned
	msgs    []im.Message  // this batch's new messages
	logKeys []uint64      // where they are logged
	records [][]byte      // and their records
	bucket  *bbolt.Bucket // once opened
	merged  bool
}

// lookup finds the batch's keys that were stored before: in memory, then
// in the index file, in that order (see dedupIndex).
func (a *appender) lookup(batch []im.AppendRequest, results []im.AppendResult) error {
	a.keys = make([][]byte, len(batch))
	a.found = make([]dedupRef, len(batch))
	for i := range batch {
		if results[i].Err == nil {
			m := &batch[i].Message
			a.keys[i] = a.put(func(b []byte) []byte { return dedupKey(b, m.SenderID, m.ClientMsgID) })
		}
	}
	a.d.lookupRecent(a.keys, a.found)
	return a.d.lookupIndex(a.keys, a.found)
}

func (a *appender) open(tx *bbolt.Tx) (err error) {
	a.tx = tx
	a.nextLog, a.trimmed = a.startLog, a.startTrimmed
	a.fresh = make(map[string]im.Message)
	a.logGen = nil
	a.logged = a.logged[:0]
	a.touched = make(map[string]*openConv)
	a.mergedConvs, a.aged = nil, 0
	if a.msgs, err = bucket(tx, bucketMsgs); err != nil {
		return err
	}
	if a.convs, err = bucket(tx, bucketConvs); err != nil {
		return err
	}
	if a.log, err = bucket(tx, bucketLog); err != nil {
		return err
	}
	if a.members, err = bucket(tx, bucketMembers); err != nil {
		return err
	}
	return a.trim()
}

// trim deletes from the log what is both in the dedup index file and in
// the conversations' buckets.
func (a *appender) trim() error {
	a.pend.dropStale()
	to := min(a.d.trimTo.Load(), a.pend.oldest()-1)
	if to == a.trimmed {
		return nil
	}
	all, err := trimLog(a.tx, to, maxTrim)
	if all {
		a.trimmed = to
	}
	return err
}

// put appends the value built by fn to the arena and returns it.
func (a *appender) put(fn func([]byte) []byte) []byte {
	start := len(a.arena)
	a.arena = fn(a.arena)
	return a.arena[start:len(a.arena):len(a.arena)]
}

func (a *appender) append(i int, r *im.AppendRequest, res *im.AppendResult) error {
	m := &r.Message
	key := a.keys[i]
	if orig, dup := a.fresh[string(key)]; dup {
		*res = im.AppendResult{Message: cloneMessage(orig), Duplicate: true}
		return nil
	}
	if ref := a.found[i]; ref.seq != 0 {
		orig, err := a.original(ref, key)
		if err != nil {
			return err
		}
		*res = im.AppendResult{Message: orig, Duplicate: true}
		return nil
	}

	oc, err := a.conversation(r)
	if err != nil {
		return err
	}
	oc.seq++
	stored := ownMessage(*m, &a.content)
	stored.Seq = int64(oc.seq)

	// The log record holds the sealed message record, which a merge in
	// this batch puts in the conversation's bucket as it is.
	start := len(a.arena)
	var at int
	a.arena, at = appendLogRecord(a.arena, a.nextLog, &stored)
	end := len(a.arena)
	val := a.arena[start:end:end]
	rec := a.arena[at : end-4 : end-4]
	if err := logPut(a.log, &a.logGen, a.nextLog, val); err != nil {
		return err
	}
	oc.msgs = append(oc.msgs, stored)
	oc.logKeys = append(oc.logKeys, a.nextLog)
	oc.records = append(oc.records, rec)
	skey := string(key)
	a.fresh[skey] = stored
	a.logged = append(a.logged, waitingKey{key: skey, ref: dedupRef{conv: m.ConversationID, seq: oc.seq}, logKey: a.nextLog})
	a.nextLog++
	// The caller's own message back, with its seq: the pending copy is
	// not shared with anyone.
	res.Message = *m
	res.Message.Seq = stored.Seq
	res.Message.RevokedBy, res.Message.RevokedAt = "", time.Time{}
	return nil
}

// conversation returns r's conversation as this batch sees it, creating it
// (and recording its members) if this message is its first.
func (a *appender) conversation(r *im.AppendRequest) (*openConv, error) {
	id := r.Message.ConversationID
	if oc := a.touched[id]; oc != nil {
		return oc, nil
	}
	oc := new(openConv)
	a.convKey = append(a.convKey[:0], id...)
	if v := a.convs.Get(a.convKey); v == nil {
		var err error
		if oc.bucket, err = a.msgs.CreateBucket(a.convKey); err != nil {
			return nil, fmt.Errorf("conversation %q: %w", id, err)
		}
		for _, u := range r.Members {
			a.memberKey = append(append(append(a.memberKey[:0], u...), 0), id...)
			if err := a.members.Put(a.memberKey, a.put(func(b []byte) []byte {
				return seal(b, bucketMembers, a.memberKey, nil)
			})); err != nil {
				return nil, err
			}
		}
	} else {
		prev, err := decodeMaxSeq(v, a.convKey, a.strict)
		if err != nil {
			return nil, &im.CorruptError{Conversation: id, Err: fmt.Errorf("max seq: %w", err)}
		}
		oc.seq = uint64(prev)
	}
	a.touched[id] = oc
	return oc, nil
}

// finish records the new max seq of every conversation the batch touched
// and the next log key, and moves to their buckets the messages of the
// conversations that have enough pending and of those waiting too long.
func (a *appender) finish() error {
	for id, oc := range a.touched {
		val := a.put(func(b []byte) []byte { return appendSeqRecord(b, bucketConvs, []byte(id), oc.seq) })
		if err := a.convs.Put([]byte(id), val); err != nil {
			return err
		}
		if len(a.pend.snapshot(id))+len(oc.msgs) >= mergeAt {
			if err := a.merge(id, oc); err != nil {
				return err
			}
		}
	}
	var before uint64
	if a.nextLog > a.maxLag {
		before = a.nextLog - a.maxLag
	}
	for _, id := range a.pend.overdue(before, maxAgingPerBatch) {
		oc := a.touched[id]
		if oc == nil {
			oc = &openConv{}
		}
		if !oc.merged {
			if err := a.merge(id, oc); err != nil {
				return err
			}
		}
	}
	if a.nextLog == a.startLog {
		return nil
	}
	meta, err := bucket(a.tx, bucketMeta)
	if err != nil {
		return err
	}
	return putMetaCounter(meta, keyNextLog, a.nextLog)
}

// merge writes conversation id's pending messages and this batch's new
// ones to its bucket.
func (a *appender) merge(id string, oc *openConv) error {
	if oc.bucket == nil {
		if oc.bucket = a.msgs.Bucket([]byte(id)); oc.bucket == nil {
			return corrupt("conversation %q has no messages bucket", id)
		}
	}
	old := a.pend.snapshot(id)
	if err := mergeInto(oc.bucket, old, nil, &a.merged); err != nil {
		return err
	}
	if err := mergeInto(oc.bucket, oc.msgs, oc.records, &a.arena); err != nil {
		return err
	}
	if err := a.putSentPositions(id, old, oc.msgs); err != nil {
		return err
	}
	oc.merged = true
	a.mergedConvs = append(a.mergedConvs, id)
	return nil
}

// apply updates the pending messages once the transaction has committed.
func (a *appender) apply() {
	for _, id := range a.mergedConvs {
		a.pend.merged(id)
	}
	for _, oc := range a.touched {
		if oc.merged {
			continue
		}
		for i := range oc.msgs {
			a.pend.add(oc.msgs[i], oc.logKeys[i])
		}
	}
	a.pend.dropStale()
}

// original reads the message ref names: from its conversation's bucket, or
// from the pending messages. Its dedup key must be key: a damaged index
// must not answer a send with another message.
func (a *appender) original(ref dedupRef, key []byte) (im.Message, error) {
	cb := a.msgs.Bucket([]byte(ref.conv))
	if cb == nil {
		return im.Message{}, corrupt("dedup record names missing conversation %q", ref.conv)
	}
	rec := cb.Get(seqKey(&a.seqKey, ref.seq))
	if rec == nil {
		if m, ok := a.pend.get(ref.conv, ref.seq); ok {
			return cloneMessage(m), nil
		}
		return im.Message{}, corrupt("dedup record names missing message %q/%d", ref.conv, ref.seq)
	}
	mv, err := readMessage(ref.conv, a.seqKey[:], int64(ref.seq), rec, a.strict)
	if err != nil {
		return im.Message{}, err
	}
	if !bytes.Equal(mv.dedupKey(nil), key) {
		return im.Message{}, &im.CorruptError{Conversation: ref.conv, Seq: int64(ref.seq), Err: corrupt("the dedup index names this message for another key")}
	}
	return mv.message(ref.conv, string(mv.strs), ownContent(mv.content)), nil
}

// Messages implements im.MessageStore. limit must be positive.
func (s *Store) Messages(ctx context.Context, conv string, from, to int64, limit int) (_ []im.Message, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: messages: %w", err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("bolt: messages: limit %d: %w", limit, im.ErrInvalidArgument)
	}
	from = max(from, 1)
	if to <= 0 {
		to = -1 // no upper bound; see readRange
	}
	ms, err := s.readRange(conv, from, to, limit)
	if err != nil {
		return nil, fmt.Errorf("bolt: messages: %w", err)
	}
	return ms, nil
}

// MessagesBefore implements im.MessageStore. limit must be positive.
func (s *Store) MessagesBefore(ctx context.Context, conv string, before int64, limit int) (_ []im.Message, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: messages before: %w", err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("bolt: messages before: limit %d: %w", limit, im.ErrInvalidArgument)
	}
	to := int64(-1) // before <= 0: from the newest
	switch {
	case before == 1:
		return []im.Message{}, nil
	case before > 1:
		to = before - 1
	}
	ms, err := s.readRange(conv, -int64(limit), to, limit)
	if err != nil {
		return nil, fmt.Errorf("bolt: messages before: %w", err)
	}
	return ms, nil
}

// readRange reads up to limit messages of conv in one read transaction,
// from its bucket and then from its pending messages. to < 0 means up to
// the newest. from < 0 means the last -from messages up to to: seqs are
// gap-free, so the page before a seq is a range too.
func (s *Store) readRange(conv string, from, to int64, limit int) ([]im.Message, error) {
	var pending []im.Message
	tx, err := s.read(func(p *pendingMsgs) { pending = p.snapshot(conv) })
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	return readRangeTx(tx, conv, pending, from, to, limit, s.strict, nil)
}

// readRangeTx is readRange within tx, with the pending messages of conv as
// they were when tx began. With a buf, it appends the messages to buf.msgs
// and returns nil: their contents are in buf.content, which the next read
// into buf reuses; without one, it returns them in memory of their own.
func readRangeTx(tx *bbolt.Tx, conv string, pending []im.Message, from, to int64, limit int, strict bool, buf *rangeBuf) ([]im.Message, error) {
	msgs, err := bucket(tx, bucketMsgs)
	if err != nil {
		return nil, err
	}
	cb := msgs.Bucket([]byte(conv))
	if cb == nil {
		// No such conversation, so no messages; unless it has a max seq,
		// and the bucket's name was damaged.
		if convs, err := bucket(tx, bucketConvs); err != nil {
			return nil, err
		} else if convs.Get([]byte(conv)) != nil {
			return nil, &im.CorruptError{Conversation: conv, Err: corrupt("a max seq but no messages bucket")}
		}
		return []im.Message{}, nil
	}
	c := cb.Cursor()
	var stored int64 // the bucket's last seq
	if k, _ := c.Last(); k != nil {
		if stored, err = decodeSeq(k); err != nil {
			return nil, corrupt("message key %x of conversation %q", k, conv)
		}
	}
	last := stored
	if n := len(pending); n > 0 {
		if pending[0].Seq != stored+1 {
			return nil, corrupt("conversation %q: pending messages from seq %d after stored ones up to %d", conv, pending[0].Seq, stored)
		}
		last = pending[n-1].Seq
	}
	// The conversation's max seq is committed with its last message, so
	// the two agree; a bucket that ends early lost its last keys.
	convs, err := bucket(tx, bucketConvs)
	if err != nil {
		return nil, err
	}
	maxSeq, err := decodeMaxSeq(convs.Get([]byte(conv)), []byte(conv), strict)
	if err != nil {
		return nil, &im.CorruptError{Conversation: conv, Err: fmt.Errorf("max seq: %w", err)}
	}
	if maxSeq != last {
		return nil, &im.CorruptError{Conversation: conv, Seq: last + 1, Err: corrupt("max seq %d, but messages up to %d", maxSeq, last)}
	}
	if to >= 0 {
		last = min(last, to)
	}
	if from < 0 {
		from = max(last+from+1, 1)
	}
	if from > last || last == 0 {
		return []im.Message{}, nil
	}
	n := min(int64(limit), last-from+1)

	// dst is what the messages are appended to, from start on.
	var (
		dst     []im.Message
		content []byte
		start   int
	)
	if buf != nil {
		dst, content, start = buf.msgs, buf.content, len(buf.msgs)
	}
	if from <= stored {
		// Seqs are gap-free: from on, the bucket must hold every one up
		// to min(stored, last), and a key missing is damage, not the end.
		want := min(n, min(stored, last)-from+1)
		var views []messageView
		if buf != nil {
			views = slices.Grow(buf.views[:0], int(want))
		} else {
			views = make([]messageView, 0, want)
		}
		var kb [8]byte
		place := placeSumOf(conv, len(kb))
		for k, v := c.Seek(seqKey(&kb, uint64(from))); int64(len(views)) < want; k, v = c.Next() {
			next := from + int64(len(views))
			if k == nil {
				return nil, &im.CorruptError{Conversation: conv, Seq: next, Err: corrupt("message missing")}
			}
			seq, err := decodeSeq(k)
			if err != nil || seq != next {
				return nil, &im.CorruptError{Conversation: conv, Seq: next, Err: corrupt("message key %x where seq %d should be", k, next)}
			}
			mv, err := readMessageAt(conv, place, k, seq, v, strict)
			if err != nil {
				return nil, err
			}
			views = append(views, mv)
		}
		dst, content = decodeMessages(dst, content, conv, views)
		if buf != nil {
			buf.views = views[:0]
		}
	}
	if rest := n - int64(len(dst)-start); rest > 0 && last > stored {
		first := max(from, stored+1)
		i := first - pending[0].Seq
		if dst == nil {
			dst = make([]im.Message, 0, rest)
		}
		for _, m := range pending[i:min(i+rest, int64(len(pending)))] {
			if m.Seq > last {
				break
			}
			dst = append(dst, cloneMessage(m))
		}
	}
	if buf != nil {
		buf.msgs, buf.content = dst, content
		return nil, nil
	}
	if dst == nil {
		dst = []im.Message{}
	}
	return dst, nil
}

// Conversation implements im.ConversationStore.
func (s *Store) Conversation(ctx context.Context, id string) (_ im.Conversation, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return im.Conversation{}, fmt.Errorf("bolt: conversation: %w", err)
	}
	c := im.Conversation{ID: id}
	err = s.view(func(tx *bbolt.Tx) error {
		convs, err := bucket(tx, bucketConvs)
		if err != nil {
			return err
		}
		v := convs.Get([]byte(id))
		if v == nil {
			// Unless the key of its max seq was damaged.
			if msgs, err := bucket(tx, bucketMsgs); err != nil {
				return err
			} else if msgs.Bucket([]byte(id)) != nil {
				return &im.CorruptError{Conversation: id, Err: corrupt("messages but no max seq")}
			}
			return im.ErrNotFound
		}
		if c.MaxSeq, err = decodeMaxSeq(v, []byte(id), s.strict); err != nil {
			return &im.CorruptError{Conversation: id, Err: fmt.Errorf("max seq: %w", err)}
		}
		return nil
	})
	if err != nil {
		return im.Conversation{}, fmt.Errorf("bolt: conversation %q: %w", id, err)
	}
	return c, nil
}

// UserConversations implements im.ConversationStore. The conversations
// come in the order of their ids.
func (s *Store) UserConversations(ctx context.Context, userID string) (_ []im.Conversation, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: user conversations: %w", err)
	}
	out := []im.Conversation{}
	err = s.view(func(tx *bbolt.Tx) error {
		return eachUserConversation(tx, userID, s.strict, func(conv []byte, seq int64) {
			out = append(out, im.Conversation{ID: string(conv), MaxSeq: seq})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: user conversations: %w", err)
	}
	return out, nil
}

// eachUserConversation calls fn with each conversation userID is recorded a
// member of, in the order of their ids, and its max seq. conv is valid only
// during the call.
func eachUserConversation(tx *bbolt.Tx, userID string, strict bool, fn func(conv []byte, seq int64)) error {
	members, err := bucket(tx, bucketMembers)
	if err != nil {
		return err
	}
	convs, err := bucket(tx, bucketConvs)
	if err != nil {
		return err
	}
	prefix := append([]byte(userID), 0)
	c := members.Cursor()
	for k, mv := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, mv = c.Next() {
		conv := k[len(prefix):]
		if _, err := unsealIn(bucketMembers, k, mv, strict); err != nil {
			return &im.CorruptError{Conversation: string(conv), Err: fmt.Errorf("membership of %q: %w", userID, err)}
		}
		v := convs.Get(conv)
		if v == nil {
			return corrupt("membership in missing conversation %q", conv)
		}
		seq, err := decodeMaxSeq(v, conv, strict)
		if err != nil {
			return &im.CorruptError{Conversation: string(conv), Err: fmt.Errorf("max seq: %w", err)}
		}
		fn(conv, seq)
	}
	return nil
}
