package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"slices"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// A user's read state in a conversation (im.ReadStateStore) comes from
// two places, kept apart:
//
//   - her receipts: the Read, Delivered and Mentioned that
//     UpdateReadStates was given, and when one last moved, in the
//     readStates bucket under conversation id 0x00 UserID, written by
//     UpdateReadStates' own commits (the server batches receipts, so that
//     is one commit for many);
//   - her own messages, since sending a message reads everything before
//     it: the seq of her newest one, which is never written by the commit
//     that stores the message, but derived from what is written anyway.
//
// Why derived: a put per message, or per (sender, conversation), into a
// bucket of its own would dirty a page of that bucket for nearly every
// conversation a commit touches, and bbolt writes every dirty page at each
// commit; that cost a send about 15% of its throughput. So a commit writes
// nothing for read states. ReadStates takes the greatest of the receipt,
// the seq of her newest pending message (in memory; a conversation has
// fewer than mergeAt pending, so this is a short scan), and her sent
// position: the seq of her newest message in the conversation's bucket,
// which a merge records as it moves a conversation's messages there. The
// merge puts it in the msgs bucket, under conversation id 0x00 UserID,
// which sorts right after the conversation's own bucket and so sits on
// the leaf page that holds that bucket: a nested bucket changed by a
// transaction is written back into its parent's page, so the merge
// dirties that page anyway. A merge thus adds a small put per sender to a
// page it writes in any case, and nothing else changes on the send path.
// The positions commit with the messages they describe, and pending
// messages are in the log that Open reads back, so a crash keeps exactly
// what it keeps of the messages.
//
// The cost lands on groups where many members write: each writer has a
// key beside the conversation's bucket, and a merge rewrites the pages of
// those who wrote in it (a page holds a few dozen keys). Counted in pages
// written per commit, before and after: 64 messages to one of 64
// conversations, 15 and 16 (19 and 19 in a store holding 20,000 more);
// 100 messages over 500 one-to-one conversations, 34 and 34 (35 and 36);
// 50 to one group from 10 writers, 13 and 13 (18 and 19); from 300
// writers, 13 and 18 (18 and 23). A file written
// before positions existed has none for the messages it merged then: their
// senders read 0 from them until they send again, as the sender of a
// message written before read states existed did not read it either.
//
// Older versions of this package ignore the readStates bucket, and skip
// the plain keys of the msgs bucket, since they walk it with
// ForEachBucket, so the file needs no new schema version.

// errNoChange makes a write transaction that has nothing to commit roll
// back, so that it costs no fsync: UpdateReadStates with positions
// already reached, RecallMessage of a tombstone.
var errNoChange = errors.New("nothing to commit")

// convUserKey returns b[:0] with conversation id 0x00 UserID: the key of
// a receipt in the readStates bucket and of a sent position in the msgs
// bucket. IDs never contain 0x00, so no conversation's own key, nor
// another conversation's, has this prefix.
func convUserKey(b []byte, conv, user string) []byte {
	return append(append(append(b[:0], conv...), 0), user...)
}

// putSentPositions records, beside conversation id's bucket, the seq of
// the newest message of each sender among old and then msgs (consecutive
// seqs, just merged into the bucket): each is the sender's newest message
// in the bucket now.
func (a *appender) putSentPositions(id string, old, msgs []im.Message) error {
	// Most conversations have one or two senders in a merge: a slice, and
	// a map only for a busy group.
	senders := a.senders[:0]
	var many map[string]bool
	put := func(m *im.Message) error {
		if many != nil {
			if many[m.SenderID] {
				return nil
			}
			many[m.SenderID] = true
		} else {
			if slices.Contains(senders, m.SenderID) {
				return nil
			}
			if senders = append(senders, m.SenderID); len(senders) > 8 {
				many = make(map[string]bool)
				for _, s := range senders {
					many[s] = true
				}
			}
		}
		a.sentKey = convUserKey(a.sentKey, id, m.SenderID)
		key := a.sentKey
		val := a.put(func(b []byte) []byte { return appendSeqRecord(b, bucketMsgs, key, uint64(m.Seq)) })
		return a.msgs.Put(key, val)
	}
	for _, run := range [2][]im.Message{msgs, old} {
		for i := len(run) - 1; i >= 0; i-- {
			if err := put(&run[i]); err != nil {
				return err
			}
		}
	}
	clear(senders)
	a.senders = senders[:0]
	return nil
}

// sentPosition reads the sent position under key (conversation id 0x00
// UserID) of bucket msgs: 0 if there is none.
func sentPosition(msgs *bbolt.Bucket, key []byte) (int64, error) {
	v := msgs.Get(key)
	if v == nil {
		return 0, nil
	}
	return decodeSentPosition(key, v)
}

func decodeSentPosition(key, v []byte) (int64, error) {
	// Sealed always: no version of this package wrote one unsealed.
	n, err := decodeSeqRecord(v, bucketMsgs, key, true)
	if err == nil && (n == 0 || n > math.MaxInt64) {
		err = errCorrupt
	}
	if err != nil {
		conv, user, _ := bytes.Cut(key, []byte{0})
		return 0, &im.CorruptError{Conversation: string(conv), Err: fmt.Errorf("sent position of %q: %w", user, err)}
	}
	return int64(n), nil
}

// pendingSent returns the seq of user's newest message among pending, or 0.
func pendingSent(pending []im.Message, user string) int64 {
	for i := len(pending) - 1; i >= 0; i-- {
		if pending[i].SenderID == user {
			return pending[i].Seq
		}
	}
	return 0
}

// receipt reads the receipt under key (conversation id 0x00 UserID) of
// bucket rs: zeros if there is none.
func receipt(rs *bbolt.Bucket, key []byte) (receiptRecord, error) {
	v := rs.Get(key)
	if v == nil {
		return receiptRecord{}, nil
	}
	return decodeReceipt(key, v)
}

func decodeReceipt(key, v []byte) (receiptRecord, error) {
	rec, err := unsealIn(bucketReadStates, key, v, true)
	var r receiptRecord
	if err == nil {
		r, err = decodeReceiptRecord(rec)
	}
	if err != nil {
		conv, user, _ := bytes.Cut(key, []byte{0})
		return receiptRecord{}, &im.CorruptError{Conversation: string(conv), Err: fmt.Errorf("read state of %q: %w", user, err)}
	}
	return r, nil
}

// state returns the read state of user in conv whose receipt is r, whose
// newest message in the conversation's bucket is sent and whose pending
// messages are pending.
func (r *receiptRecord) state(user, conv string, sent int64, pending []im.Message) im.ReadState {
	return im.ReadState{
		UserID: user, ConversationID: conv,
		Read:      max(r.read, sent, pendingSent(pending, user)),
		Delivered: r.delivered, Mentioned: r.mentioned, UpdatedAt: r.updated,
	}
}

// UpdateReadStates implements im.ReadStateStore, in one write transaction.
// Positions already reached change nothing, and a batch that changes
// nothing commits nothing.
func (s *Store) UpdateReadStates(ctx context.Context, states []im.ReadState) (_ []im.ReadState, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: update read states: %w", err)
	}
	for i, st := range states {
		if err := im.ValidateReadState(st); err != nil {
			return nil, fmt.Errorf("bolt: update read states: state %d: %w", i, err)
		}
	}
	out := make([]im.ReadState, len(states))
	if len(states) == 0 {
		return out, nil
	}
	type entry struct {
		key        []byte
		conv, user string
		rec        receiptRecord
		changed    bool
		out        im.ReadState // the state after the commit
	}
	err = s.write(ctx, func(tx *bbolt.Tx) error {
		rs, err := bucket(tx, bucketReadStates)
		if err != nil {
			return err
		}
		msgs, err := bucket(tx, bucketMsgs)
		if err != nil {
			return err
		}
		convs, err := bucket(tx, bucketConvs)
		if err != nil {
			return err
		}
		entries := make(map[string]*entry, len(states))
		order := make([]*entry, 0, len(states)) // for a put order that does not depend on a map's
		of := make([]*entry, len(states))       // states[i]'s entry
		maxSeqs := make(map[string]int64)
		for i, st := range states {
			key := convUserKey(nil, st.ConversationID, st.UserID)
			e := entries[string(key)]
			if e == nil {
				e = &entry{key: key, conv: st.ConversationID, user: st.UserID}
				if e.rec, err = receipt(rs, key); err != nil {
					return err
				}
				entries[string(key)] = e
				order = append(order, e)
			}
			of[i] = e
			maxSeq, ok := maxSeqs[st.ConversationID]
			if !ok {
				// No max seq: a conversation without messages keeps 0.
				if v := convs.Get([]byte(st.ConversationID)); v != nil {
					if maxSeq, err = decodeMaxSeq(v, []byte(st.ConversationID), s.strict); err != nil {
						return &im.CorruptError{Conversation: st.ConversationID, Err: fmt.Errorf("max seq: %w", err)}
					}
				}
				maxSeqs[st.ConversationID] = maxSeq
			}
			moved := false
			for _, p := range [...]struct {
				stored *int64
				given  int64
			}{
				{&e.rec.read, st.Read}, {&e.rec.delivered, st.Delivered}, {&e.rec.mentioned, st.Mentioned},
			} {
				if v := min(p.given, maxSeq); v > *p.stored {
					*p.stored, moved = v, true
				}
			}
			if moved {
				// The time of the state that moved it last, as the batch
				// runs in order.
				e.rec.updated = storedTime(st.UpdatedAt)
				e.changed = true
			}
		}
		// Put in key order: the batches the Server gathers are large, and
		// bbolt then walks its pages once, front to back.
		puts := make([]*entry, 0, len(order))
		for _, e := range order {
			if e.changed {
				puts = append(puts, e)
			}
		}
		slices.SortFunc(puts, func(a, b *entry) int { return bytes.Compare(a.key, b.key) })
		changed := len(puts) > 0
		for _, e := range puts {
			val := seal(nil, bucketReadStates, e.key, func(b []byte) []byte { return appendReceipt(b, &e.rec) })
			if err := rs.Put(e.key, val); err != nil {
				return err
			}
		}
		// The states as ReadStates will see them once this commits: no
		// append can commit before this does, and memMu keeps an
		// append's update of the pending messages from running now.
		pending := make([][]im.Message, len(order))
		s.memMu.RLock()
		for i, e := range order {
			pending[i] = s.pend.snapshot(e.conv)
		}
		s.memMu.RUnlock()
		for i, e := range order {
			sent, err := sentPosition(msgs, e.key)
			if err != nil {
				return err
			}
			e.out = e.rec.state(e.user, e.conv, sent, pending[i])
		}
		for i := range states {
			out[i] = of[i].out
		}
		if !changed {
			return errNoChange
		}
		return nil
	}, func() {})
	if err != nil && !errors.Is(err, errNoChange) {
		return nil, fmt.Errorf("bolt: update read states: %w", err)
	}
	return out, nil
}

// ReadStates implements im.ReadStateStore, in one read transaction: two
// lookups per conversation, and a scan of its pending messages.
func (s *Store) ReadStates(ctx context.Context, userID string, convs []string) (_ []im.ReadState, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: read states: %w", err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return nil, fmt.Errorf("bolt: read states: %w", err)
	}
	for _, c := range convs {
		if err := im.ValidateConversationID(c); err != nil {
			return nil, fmt.Errorf("bolt: read states: %w", err)
		}
	}
	out := make([]im.ReadState, len(convs))
	if len(convs) == 0 {
		return out, nil
	}
	pending := make([][]im.Message, len(convs))
	tx, err := s.read(func(p *pendingMsgs) {
		for i, c := range convs {
			pending[i] = p.snapshot(c)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: read states: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	err = func() error {
		rs, err := bucket(tx, bucketReadStates)
		if err != nil {
			return err
		}
		msgs, err := bucket(tx, bucketMsgs)
		if err != nil {
			return err
		}
		var key []byte
		for i, conv := range convs {
			if i%256 == 255 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			key = convUserKey(key, conv, userID)
			r, err := receipt(rs, key)
			if err != nil {
				return err
			}
			sent, err := sentPosition(msgs, key)
			if err != nil {
				return err
			}
			out[i] = r.state(userID, conv, sent, pending[i])
		}
		return nil
	}()
	if err != nil {
		return nil, fmt.Errorf("bolt: read states: %w", err)
	}
	return out, nil
}

// ConversationReadStates implements im.ReadStateStore, in one read
// transaction: a prefix scan of the receipts, one of the sent positions
// beside the conversation's bucket, and its pending messages. The states
// come in the order of their user ids.
func (s *Store) ConversationReadStates(ctx context.Context, conv string) (_ []im.ReadState, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: conversation read states: %w", err)
	}
	if err := im.ValidateConversationID(conv); err != nil {
		return nil, fmt.Errorf("bolt: conversation read states: %w", err)
	}
	var pending []im.Message
	tx, err := s.read(func(p *pendingMsgs) { pending = p.snapshot(conv) })
	if err != nil {
		return nil, fmt.Errorf("bolt: conversation read states: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	byUser := make(map[string]*im.ReadState)
	state := func(user string) *im.ReadState {
		st := byUser[user]
		if st == nil {
			st = &im.ReadState{UserID: user, ConversationID: conv}
			byUser[user] = st
		}
		return st
	}
	err = func() error {
		rs, err := bucket(tx, bucketReadStates)
		if err != nil {
			return err
		}
		msgs, err := bucket(tx, bucketMsgs)
		if err != nil {
			return err
		}
		prefix := append([]byte(conv), 0)
		c := rs.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			r, err := decodeReceipt(k, v)
			if err != nil {
				return err
			}
			st := state(string(k[len(prefix):]))
			st.Read, st.Delivered, st.Mentioned, st.UpdatedAt = max(st.Read, r.read), r.delivered, r.mentioned, r.updated
		}
		c = msgs.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if v == nil {
				return &im.CorruptError{Conversation: conv, Err: corrupt("a bucket %q beside the conversation's", k)}
			}
			sent, err := decodeSentPosition(k, v)
			if err != nil {
				return err
			}
			st := state(string(k[len(prefix):]))
			st.Read = max(st.Read, sent)
		}
		return nil
	}()
	if err != nil {
		return nil, fmt.Errorf("bolt: conversation read states: %w", err)
	}
	for i := range pending {
		st := state(pending[i].SenderID)
		st.Read = max(st.Read, pending[i].Seq)
	}
	out := make([]im.ReadState, 0, len(byUser))
	for _, st := range byUser {
		if st.Read > 0 || st.Delivered > 0 || st.Mentioned > 0 {
			out = append(out, *st)
		}
	}
	slices.SortFunc(out, func(a, b im.ReadState) int { return strings.Compare(a.UserID, b.UserID) })
	return out, nil
}
