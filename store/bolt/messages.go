package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// AppendMessages implements im.MessageStore. The whole batch is one bbolt
// write transaction, so one fsync, however many messages and conversations
// it holds; concurrent calls run one at a time.
func (s *Store) AppendMessages(ctx context.Context, batch []im.AppendRequest) ([]im.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: append messages: %w", err)
	}
	results := make([]im.AppendResult, len(batch))
	size, valid := 0, 0
	for i := range batch {
		if err := im.ValidateAppend(batch[i]); err != nil {
			results[i].Err = err
			continue
		}
		valid++
		m := &batch[i].Message
		size += messageSize(m) + 2*len(m.SenderID) + 2*len(m.ClientMsgID) + 2*len(m.ConversationID) + 32
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
	a := appender{d: s.dedup, arena: make([]byte, 0, size)}
	if err := a.lookup(batch, results); err != nil {
		return nil, fmt.Errorf("bolt: append messages: %w", err)
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		// The wait for the writer lock may have outlasted the caller.
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := a.open(tx); err != nil {
			return err
		}
		for i := range batch {
			if results[i].Err != nil {
				continue
			}
			if err := a.append(i, &batch[i], &results[i]); err != nil {
				return err
			}
		}
		return a.finish()
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: append messages: %w", err)
	}
	s.dedup.nextLog = a.nextLog
	s.dedup.trimmed = a.trimmed
	s.dedup.committed(a.logged)
	return results, nil
}

// appender writes the requests of one batch inside its transaction.
type appender struct {
	d                         *dedupIndex
	tx                        *bbolt.Tx
	msgs, convs, log, members *bbolt.Bucket
	// Keys are built in these buffers and reused: bbolt copies keys.
	convKey, memberKey []byte
	seqKey             [8]byte
	logGen             *bbolt.Bucket // the log's current generation
	// arena holds every value put in the transaction. bbolt keeps
	// references to values until commit, so the arena is only ever
	// appended to, never overwritten.
	arena []byte
	// keys[i] is request i's dedup key (nil if it is invalid); found[i]
	// the message stored before with that key, if any.
	keys  [][]byte
	found []dedupRef
	// fresh holds the keys this batch stores, so that a key repeated
	// within the batch is a duplicate too; logged lists them in log order.
	fresh  map[string]dedupRef
	logged []waitingKey
	// The dedup index's counters as this transaction leaves them; they are
	// the index's once it commits.
	nextLog, trimmed uint64
	// touched holds the conversations this batch touched, so that a
	// conversation's bucket and max seq are looked up once per batch and
	// its max seq written once, in finish, rather than per message.
	touched map[string]*openConv
}

type openConv struct {
	bucket *bbolt.Bucket
	seq    uint64 // the last seq assigned
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
	a.nextLog, a.trimmed = a.d.nextLog, a.d.trimmed
	a.fresh = make(map[string]dedupRef)
	a.logGen = nil
	a.logged = a.logged[:0]
	clear(a.touched)
	if a.msgs, err = bucket(tx, bucketMsgs); err != nil {
		return err
	}
	if a.convs, err = bucket(tx, bucketConvs); err != nil {
		return err
	}
	if a.log, err = bucket(tx, bucketDedupLog); err != nil {
		return err
	}
	if a.members, err = bucket(tx, bucketMembers); err != nil {
		return err
	}
	return a.trim()
}

// trim deletes from the log what the merger has written to the index
// file.
func (a *appender) trim() error {
	to := a.d.trimTo.Load()
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
	ref, dup := a.fresh[string(key)]
	if !dup && a.found[i].seq != 0 {
		ref, dup = a.found[i], true
	}
	if dup {
		orig, err := a.original(ref)
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
	seq := oc.seq

	val := a.put(func(b []byte) []byte { return appendMessage(b, m) })
	if err := oc.bucket.Put(seqKey(&a.seqKey, seq), val); err != nil {
		return err
	}
	val = a.put(func(b []byte) []byte { return appendLogRecord(b, key, m.ConversationID, seq) })
	if err := logPut(a.log, &a.logGen, a.nextLog, val); err != nil {
		return err
	}
	ref = dedupRef{conv: m.ConversationID, seq: seq}
	skey := string(key)
	a.fresh[skey] = ref
	a.logged = append(a.logged, waitingKey{key: skey, ref: ref, logKey: a.nextLog})
	a.nextLog++
	res.Message = *m
	res.Message.Seq = int64(seq)
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
			if err := a.members.Put(a.memberKey, []byte{}); err != nil {
				return nil, err
			}
		}
	} else {
		prev, err := decodeSeq(v)
		if err != nil {
			return nil, corrupt("conversation %q", id)
		}
		if oc.bucket = a.msgs.Bucket(a.convKey); oc.bucket == nil {
			return nil, corrupt("conversation %q has no messages bucket", id)
		}
		oc.seq = uint64(prev)
	}
	// Messages are only ever appended at the end of a conversation's
	// bucket: packing its pages full (bbolt splits at half a page by
	// default) halves the pages it takes and the splits a commit does.
	oc.bucket.FillPercent = 0.95
	if a.touched == nil {
		a.touched = make(map[string]*openConv)
	}
	a.touched[id] = oc
	return oc, nil
}

// finish records the new max seq of every conversation the batch touched,
// and the next log key.
func (a *appender) finish() error {
	for id, oc := range a.touched {
		val := a.put(func(b []byte) []byte { return binary.BigEndian.AppendUint64(b, oc.seq) })
		if err := a.convs.Put([]byte(id), val); err != nil {
			return err
		}
	}
	if a.nextLog == a.d.nextLog {
		return nil
	}
	meta, err := bucket(a.tx, bucketMeta)
	if err != nil {
		return err
	}
	return putCounter(meta, keyNextLog, a.nextLog)
}

// original reads the message ref names.
func (a *appender) original(ref dedupRef) (im.Message, error) {
	cb := a.msgs.Bucket([]byte(ref.conv))
	if cb == nil {
		return im.Message{}, corrupt("dedup record names missing conversation %q", ref.conv)
	}
	rec := cb.Get(seqKey(&a.seqKey, ref.seq))
	if rec == nil {
		return im.Message{}, corrupt("dedup record names missing message %q/%d", ref.conv, ref.seq)
	}
	m, err := decodeMessage(ref.conv, int64(ref.seq), rec)
	if err != nil {
		return im.Message{}, fmt.Errorf("message %q/%d: %w", ref.conv, ref.seq, err)
	}
	return m, nil
}

// Messages implements im.MessageStore. limit must be positive.
func (s *Store) Messages(ctx context.Context, conv string, from, to int64, limit int) ([]im.Message, error) {
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
func (s *Store) MessagesBefore(ctx context.Context, conv string, before int64, limit int) ([]im.Message, error) {
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

// readRange reads up to limit messages of conv in one read transaction.
// to < 0 means up to the newest. from < 0 means the last -from messages up
// to to: seqs are gap-free, so the page before a seq is a range too.
func (s *Store) readRange(conv string, from, to int64, limit int) ([]im.Message, error) {
	out := []im.Message{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		msgs, err := bucket(tx, bucketMsgs)
		if err != nil {
			return err
		}
		cb := msgs.Bucket([]byte(conv))
		if cb == nil {
			return nil // no such conversation: no messages
		}
		c := cb.Cursor()
		k, _ := c.Last()
		if k == nil {
			return nil
		}
		maxSeq, err := decodeSeq(k)
		if err != nil {
			return corrupt("message key %x of conversation %q", k, conv)
		}
		last := maxSeq
		if to >= 0 {
			last = min(last, to)
		}
		if from < 0 {
			from = max(last+from+1, 1)
		}
		if from > last {
			return nil
		}
		n := min(int64(limit), last-from+1)
		views := make([]messageView, 0, n)
		var kb [8]byte
		for k, v := c.Seek(seqKey(&kb, uint64(from))); k != nil && int64(len(views)) < n; k, v = c.Next() {
			seq, err := decodeSeq(k)
			if err != nil {
				return corrupt("message key %x of conversation %q", k, conv)
			}
			if seq > last {
				break
			}
			mv, err := parseMessage(seq, v)
			if err != nil {
				return fmt.Errorf("message %q/%d: %w", conv, seq, err)
			}
			views = append(views, mv)
		}
		out = decodeMessages(conv, views)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Conversation implements im.ConversationStore.
func (s *Store) Conversation(ctx context.Context, id string) (im.Conversation, error) {
	if err := ctx.Err(); err != nil {
		return im.Conversation{}, fmt.Errorf("bolt: conversation: %w", err)
	}
	c := im.Conversation{ID: id}
	err := s.db.View(func(tx *bbolt.Tx) error {
		convs, err := bucket(tx, bucketConvs)
		if err != nil {
			return err
		}
		v := convs.Get([]byte(id))
		if v == nil {
			return im.ErrNotFound
		}
		if c.MaxSeq, err = decodeSeq(v); err != nil {
			return corrupt("conversation %q", id)
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
func (s *Store) UserConversations(ctx context.Context, userID string) ([]im.Conversation, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: user conversations: %w", err)
	}
	out := []im.Conversation{}
	err := s.db.View(func(tx *bbolt.Tx) error {
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
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			conv := k[len(prefix):]
			v := convs.Get(conv)
			if v == nil {
				return corrupt("membership in missing conversation %q", conv)
			}
			seq, err := decodeSeq(v)
			if err != nil {
				return corrupt("conversation %q", conv)
			}
			out = append(out, im.Conversation{ID: string(conv), MaxSeq: seq})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: user conversations: %w", err)
	}
	return out, nil
}
