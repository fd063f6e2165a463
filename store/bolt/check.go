package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// maxProblems bounds the problems Check reports: past a few, the rest are
// usually the same damage seen again.
const maxProblems = 20

// Check reads both files through and reports what it finds wrong, or nil.
// It runs bbolt's own check of each file's pages (Tx.Check), then checks
// the store's invariants across the files and memory:
//
//   - every conversation's messages have seqs 1 to its max seq without a
//     gap: its bucket holds the first of them, the log the rest, which
//     memory holds too, record for record;
//   - every log record names a message that exists, and its bucket's copy,
//     if it has one, is the same record; the log's keys lie between the
//     counters of the last key trimmed and the next key to use;
//   - every stored message's (sender, client_msg_id) leads, through the
//     keys waiting in memory or the index file, to that message, and every
//     key of the index file to a stored message with that key, so no key
//     is stored twice;
//   - the index file belongs to the main file (the same pair id) and has
//     merged at least what the main file trimmed; every membership names
//     an existing conversation;
//   - every sent position names its user's newest message in the
//     conversation's bucket, and every read state record an existing
//     conversation, with positions up to its max seq;
//   - every conversation's settings are sealed and within its max seq;
//   - the nickname index holds exactly the accounts that are not deleted,
//     under their nicknames' keys; every revoked token has its expiry key
//     and every expiry key its token;
//   - friendships have both sides, friend requests and blocks both their
//     keys, and no block stands beside a friendship or a request between
//     the same two users, nor a request beside a friendship; every join
//     request is of a group that exists and of a user not its member;
//   - no record is newer than the file's schema version: a tombstone
//     needs schemaTombstones; a profile, a mute or a join request
//     schemaProfiles.
//
// Writes, and the dedup merger, wait while Check runs; reads go on. It
// reads every page, as a backup does, and looks each message up in the
// index, so on a large store it takes a while: operators run it at a
// quiet time, tests after every crash. Problems wrap an error whose text says the record is
// corrupt; the first twenty are reported.
func (s *Store) Check(ctx context.Context) (err error) {
	_, err = s.check(ctx)
	return err
}

// checkCounts is what Check went through.
type checkCounts struct {
	conversations, messages, accounts, groups int
}

func (s *Store) check(ctx context.Context) (n checkCounts, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return n, fmt.Errorf("bolt: check: %w", err)
	}
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	c, err := s.checkSnapshot()
	if err != nil {
		return n, fmt.Errorf("bolt: check: %w", err)
	}
	defer c.close()
	if err := c.run(ctx); err != nil {
		return n, fmt.Errorf("bolt: check: %w", err)
	}
	n = c.counts
	if len(c.problems) > 0 {
		err := errors.Join(c.problems...)
		if c.more > 0 {
			err = fmt.Errorf("%w\n(and %d more)", err, c.more)
		}
		return n, fmt.Errorf("bolt: check: %w", err)
	}
	return n, nil
}

// checker holds what Check looks at: a read transaction on each file and
// a copy of the memory that goes with them.
type checker struct {
	tx, itx *bbolt.Tx
	pending map[string][]im.Message // conversation → its pending messages
	recent  map[string]dedupRef     // the keys waiting for the merger
	nextLog uint64                  // Store.nextLog
	strict  bool                    // Store.strict
	version uint64                  // the main file's schema version
	counts  checkCounts

	problems []error
	more     int
}

// checkSnapshot begins Check's transactions and copies the memory that
// goes with them. It takes write transactions, rolled back at the end,
// because bbolt's Tx.Check compares the pages a transaction reaches with
// the file's freelist, which commits begun later change. The caller holds
// appendMu, so no append runs; the main file's writer lock keeps out the
// other writes, before memMu as in write; the index file's keeps out the
// merger, which can only have moved keys from memory to that file
// between the copy of memory and the transaction.
func (s *Store) checkSnapshot() (*checker, error) {
	c := &checker{pending: make(map[string][]im.Message), nextLog: s.nextLog, strict: s.strict}
	tx, err := s.db.Begin(true)
	if err != nil {
		return nil, err
	}
	c.tx = tx
	s.memMu.RLock()
	for id, pc := range s.pend.convs {
		c.pending[id] = pc.msgs // never written in place: see pendingConv
	}
	s.memMu.RUnlock()
	s.dedup.mu.Lock()
	c.recent = maps.Clone(s.dedup.recent)
	s.dedup.mu.Unlock()
	if c.itx, err = s.dedup.db.Begin(true); err != nil {
		_ = tx.Rollback()
		return nil, err
	}
	return c, nil
}

// pendingAt returns pending message seq of conv, if there is one.
func (c *checker) pendingAt(conv string, seq int64) (im.Message, bool) {
	p := c.pending[conv]
	if len(p) == 0 || seq < p[0].Seq || seq-p[0].Seq >= int64(len(p)) {
		return im.Message{}, false
	}
	return p[seq-p[0].Seq], true
}

func (c *checker) close() {
	_ = c.tx.Rollback()
	_ = c.itx.Rollback()
}

func (c *checker) problem(format string, args ...any) {
	if len(c.problems) == maxProblems {
		c.more++
		return
	}
	c.problems = append(c.problems, corrupt(format, args...))
}

// run checks everything; it returns an error only when it cannot go on.
func (c *checker) run(ctx context.Context) error {
	for _, f := range []struct {
		name string
		tx   *bbolt.Tx
	}{{"main file", c.tx}, {"index file", c.itx}} {
		for err := range f.tx.Check() {
			c.problem("%s: %v", f.name, err)
		}
	}
	if len(c.problems) > 0 {
		return nil // the pages are damaged: what follows would only crash
	}
	meta := c.tx.Bucket([]byte(bucketMeta))
	if meta == nil {
		c.problem("main file: no meta bucket")
		return nil
	}
	switch c.version = counter(meta, keyVersion); c.version {
	case schemaVersion, schemaTombstones, schemaProfiles:
	default:
		c.problem("main file: schema version %d, want %d to %d", c.version, schemaVersion, schemaNewest)
	}
	all, added := allBuckets(), addedBuckets()
	for _, name := range append(all[:], added[:]...) {
		if c.tx.Bucket([]byte(name)) == nil {
			c.problem("main file: no bucket %q", name)
		}
	}
	imeta, index := c.itx.Bucket([]byte(indexBucketMeta)), c.itx.Bucket([]byte(indexBucketDedup))
	if imeta == nil || index == nil {
		c.problem("index file: no meta or dedup bucket")
	}
	if len(c.problems) > 0 {
		return nil
	}
	if strict, _, err := readChecksums(meta); err != nil {
		c.problem("main file: %v", err)
	} else if strict != c.strict {
		c.problem("main file: checksums of every record is %v in the file, %v in memory", strict, c.strict)
	}
	nextLog, err := metaCounter(meta, keyNextLog, c.strict)
	if err != nil {
		c.problem("main file: %v", err)
	}
	trimmed, err := metaCounter(meta, keyTrimmed, c.strict)
	if err != nil {
		c.problem("main file: %v", err)
	}
	if id := meta.Get([]byte(keyPairID)); id == nil || !bytes.Equal(id, imeta.Get([]byte(keyPairID))) {
		c.problem("the index file's pair id %x is not the main file's %x", imeta.Get([]byte(keyPairID)), id)
	}
	if merged := counter(imeta, keyMergeThrough); merged < trimmed || merged >= max(nextLog, 1) {
		c.problem("the index file has merged through log key %d; the main file trimmed through %d and logged before %d", merged, trimmed, nextLog)
	}
	if c.nextLog != max(nextLog, 1) {
		c.problem("the next log key is %d in memory, %d in the file", c.nextLog, nextLog)
	}

	stored, err := c.checkConversations(ctx)
	if err != nil {
		return err
	}
	if err := c.checkLog(ctx, stored, trimmed, nextLog); err != nil {
		return err
	}
	if err := c.checkDedup(ctx, stored); err != nil {
		return err
	}
	if err := c.checkReadStates(ctx, stored); err != nil {
		return err
	}
	c.checkMembers()
	if err := c.checkRecords(ctx); err != nil {
		return err
	}
	for _, check := range []func(context.Context) error{c.checkSettings, c.checkNicknames, c.checkRevoked, c.checkFriends, c.checkJoinRequests} {
		if err := check(ctx); err != nil {
			return err
		}
	}
	return nil
}

// convState is a conversation as checkConversations found it.
type convState struct {
	maxSeq, stored int64 // its max seq, and the last seq in its bucket
}

// checkConversations checks each conversation's seqs and records.
func (c *checker) checkConversations(ctx context.Context) (map[string]convState, error) {
	convs, msgs := c.tx.Bucket([]byte(bucketConvs)), c.tx.Bucket([]byte(bucketMsgs))
	out := make(map[string]convState)
	err := convs.ForEach(func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		conv := string(k)
		maxSeq, err := decodeMaxSeq(v, k, c.strict)
		if err != nil {
			c.problem("conversation %q: max seq: %v", conv, err)
			return nil
		}
		cb := msgs.Bucket(k)
		if cb == nil {
			c.problem("conversation %q: no messages bucket", conv)
			return nil
		}
		want := int64(1)
		convB := k
		newest := make(map[string]int64) // each sender's newest message in the bucket
		err = cb.ForEach(func(k, v []byte) error {
			seq, err := decodeSeq(k)
			if err != nil || seq != want {
				c.problem("conversation %q: message key %x where seq %d should be", conv, k, want)
				return errStop
			}
			if mv, err := readMessage(convB, k, seq, v, c.strict); err != nil {
				c.problem("%v", err)
			} else {
				newest[string(mv.senderID())] = seq
				if mv.lens[6] > 0 && c.version < schemaTombstones {
					c.problem("conversation %q: message %d is a tombstone in a file of schema version %d", conv, seq, c.version)
				}
			}
			want++
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
		c.checkSentPositions(msgs, conv, newest)
		c.counts.conversations++
		c.counts.messages += int(maxSeq)
		st := convState{maxSeq: maxSeq, stored: want - 1}
		for _, m := range c.pending[conv] {
			if m.Seq != want {
				c.problem("conversation %q: pending message %d where seq %d should be", conv, m.Seq, want)
				break
			}
			want++
		}
		if want-1 != maxSeq {
			c.problem("conversation %q: max seq %d, but messages 1 to %d", conv, maxSeq, want-1)
		}
		out[conv] = st
		return nil
	})
	if err != nil {
		return nil, err
	}
	for conv := range c.pending {
		if _, ok := out[conv]; !ok {
			c.problem("conversation %q has pending messages but no max seq", conv)
		}
	}
	err = msgs.ForEach(func(k, v []byte) error {
		if v != nil {
			// A sent position: checkSentPositions has checked those of
			// the conversations that exist.
			if conv, _, ok := bytes.Cut(k, []byte{0}); !ok {
				c.problem("the messages bucket holds a record %q that is no sent position", k)
			} else if _, ok := out[string(conv)]; !ok {
				c.problem("sent position %q in a conversation without a max seq", k)
			}
			return nil
		}
		if _, ok := out[string(k)]; !ok {
			c.problem("conversation %q has a messages bucket but no max seq", k)
		}
		return nil
	})
	return out, err
}

// checkSentPositions checks the sent positions beside conversation conv's
// bucket, whose senders' newest messages are newest: each must name its
// user's newest message there. A sender without one is fine: her
// messages were moved to the bucket before positions were recorded.
func (c *checker) checkSentPositions(msgs *bbolt.Bucket, conv string, newest map[string]int64) {
	prefix := append([]byte(conv), 0)
	cur := msgs.Cursor()
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		user := string(k[len(prefix):])
		if v == nil {
			c.problem("conversation %q: a bucket %q beside it", conv, k)
			continue
		}
		seq, err := decodeSentPosition(k, v)
		if err != nil {
			c.problem("%v", err)
			continue
		}
		if want, ok := newest[user]; !ok {
			c.problem("conversation %q: sent position %d of %q, who has no message in its bucket", conv, seq, user)
		} else if seq != want {
			c.problem("conversation %q: sent position %d of %q, whose newest message in its bucket is %d", conv, seq, user, want)
		}
	}
}

// checkReadStates checks each receipt: a sound record, of a conversation
// that exists, with positions up to its max seq.
func (c *checker) checkReadStates(ctx context.Context, convs map[string]convState) error {
	return c.tx.Bucket([]byte(bucketReadStates)).ForEach(func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		conv, user, ok := bytes.Cut(k, []byte{0})
		if !ok || len(conv) == 0 || len(user) == 0 {
			c.problem("read state key %q", k)
			return nil
		}
		r, err := decodeReceipt(k, v)
		if err != nil {
			c.problem("%v", err)
			return nil
		}
		st, ok := convs[string(conv)]
		switch {
		case !ok:
			c.problem("read state of %q in %q, a conversation without a max seq", user, conv)
		case max(r.read, r.delivered, r.mentioned) > st.maxSeq:
			c.problem("read state of %q in %q: read %d, delivered %d, mentioned %d, past max seq %d", user, conv, r.read, r.delivered, r.mentioned, st.maxSeq)
		case r.read == 0 && r.delivered == 0 && r.mentioned == 0:
			c.problem("read state of %q in %q: every position 0", user, conv)
		}
		return nil
	})
}

// errStop ends a ForEach early.
var errStop = errors.New("stop")

// checkLog checks that the log holds every pending message, and only
// messages that exist, and that its keys lie within the main file's
// counters.
func (c *checker) checkLog(ctx context.Context, convs map[string]convState, trimmed, nextLog uint64) error {
	log := c.tx.Bucket([]byte(bucketLog))
	msgs := c.tx.Bucket([]byte(bucketMsgs))
	logged := make(map[dedupRef]bool) // the pending messages found in the log
	var kb [8]byte
	err := log.ForEachBucket(func(gen []byte) error {
		if len(gen) != 8 {
			c.problem("log generation %x", gen)
			return nil
		}
		g := binary.BigEndian.Uint64(gen)
		return log.Bucket(gen).ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if len(k) != 8 {
				c.problem("log key %x", k)
				return nil
			}
			n := binary.BigEndian.Uint64(k)
			if n/logGeneration != g || n <= trimmed || n >= nextLog {
				c.problem("log key %d in generation %d, with keys %d to %d trimmed or to come", n, g, trimmed, nextLog)
			}
			conv, seq, rec, err := decodeLogRecord(k, v, c.strict)
			if err != nil {
				c.problem("log record %d: %v", n, err)
				return nil
			}
			st, ok := convs[conv]
			switch {
			case !ok || int64(seq) > st.maxSeq:
				c.problem("log record %d names %q/%d, which does not exist", n, conv, seq)
			case int64(seq) <= st.stored:
				if got := msgs.Bucket([]byte(conv)).Get(seqKey(&kb, seq)); !bytes.Equal(got, rec) {
					c.problem("log record %d: %q/%d differs from its bucket's", n, conv, seq)
				}
			default:
				m, ok := c.pendingAt(conv, int64(seq))
				if !ok {
					break // reported by checkConversations
				}
				inner, err := unseal(rec, []byte(conv), seqKey(&kb, seq), c.strict)
				if err != nil {
					c.problem("log record %d: %q/%d: %v", n, conv, seq, err)
				} else if !bytes.Equal(appendMessage(nil, &m), inner) {
					c.problem("log record %d: %q/%d differs from its pending copy", n, conv, seq)
				}
				logged[dedupRef{conv, seq}] = true
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for conv, p := range c.pending {
		for _, m := range p {
			if !logged[dedupRef{conv, uint64(m.Seq)}] {
				c.problem("pending message %q/%d is not in the log", conv, m.Seq)
			}
		}
	}
	return nil
}

// checkDedup checks that each stored message's key leads to it, and each
// key in the index file to a message with that key.
func (c *checker) checkDedup(ctx context.Context, convs map[string]convState) error {
	msgs := c.tx.Bucket([]byte(bucketMsgs))
	index := c.itx.Bucket([]byte(indexBucketDedup))
	lookup := func(key []byte) (dedupRef, bool, error) {
		if ref, ok := c.recent[string(key)]; ok {
			return ref, true, nil
		}
		v := index.Get(key)
		if v == nil {
			return dedupRef{}, false, nil
		}
		conv, seq, err := decodeDedup(v)
		return dedupRef{string(conv), uint64(seq)}, true, err
	}
	check := func(conv string, seq int64, key []byte) {
		ref, ok, err := lookup(key)
		switch {
		case err != nil:
			c.problem("dedup record of %q: %v", key, err)
		case !ok:
			c.problem("message %q/%d: its key %q is in no dedup index", conv, seq, key)
		case ref != dedupRef{conv, uint64(seq)}:
			c.problem("message %q/%d: its key %q leads to %q/%d", conv, seq, key, ref.conv, ref.seq)
		}
	}
	var key []byte
	err := msgs.ForEachBucket(func(convKey []byte) error {
		conv := string(convKey)
		return msgs.Bucket(convKey).ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			seq, err := decodeSeq(k)
			if err != nil {
				return nil // reported by checkConversations
			}
			mv, err := readMessage(convKey, k, seq, v, c.strict)
			if err != nil {
				return nil
			}
			key = mv.dedupKey(key[:0])
			check(conv, seq, key)
			return nil
		})
	})
	if err != nil {
		return err
	}
	for conv, p := range c.pending {
		for _, m := range p {
			check(conv, m.Seq, dedupKey(key[:0], m.SenderID, m.ClientMsgID))
		}
	}

	// Back from the index: each of its keys names a message with that key.
	var kb [8]byte
	return index.ForEach(func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		convB, seq, err := decodeDedup(v)
		if err != nil {
			c.problem("dedup record of %q: %v", k, err)
			return nil
		}
		conv := string(convB)
		st, ok := convs[conv]
		if !ok || seq > st.maxSeq {
			c.problem("dedup key %q leads to %q/%d, which does not exist", k, conv, seq)
			return nil
		}
		var got []byte
		if seq <= st.stored {
			sk := seqKey(&kb, uint64(seq))
			mv, err := readMessage(convB, sk, seq, msgs.Bucket(convB).Get(sk), c.strict)
			if err != nil {
				return nil // reported by checkConversations
			}
			got = mv.dedupKey(key[:0])
		} else {
			m, ok := c.pendingAt(conv, seq)
			if !ok {
				return nil // reported by checkConversations
			}
			got = dedupKey(key[:0], m.SenderID, m.ClientMsgID)
		}
		if !bytes.Equal(got, k) {
			c.problem("dedup key %q leads to %q/%d, whose key is %q", k, conv, seq, got)
		}
		return nil
	})
}

// checkMembers checks that each membership names a conversation.
func (c *checker) checkMembers() {
	convs := c.tx.Bucket([]byte(bucketConvs))
	_ = c.tx.Bucket([]byte(bucketMembers)).ForEach(func(k, v []byte) error {
		i := bytes.IndexByte(k, 0)
		if i <= 0 || convs.Get(k[i+1:]) == nil {
			c.problem("membership %q names no conversation", k)
		}
		if _, err := unsealIn(bucketMembers, k, v, c.strict); err != nil {
			c.problem("membership %q: %v", k, err)
		}
		return nil
	})
}

// checkRecords checks the checksum of every record of the accounts' and
// groups' buckets, and that it decodes.
func (c *checker) checkRecords(ctx context.Context) error {
	for _, area := range []struct {
		bucket string
		decode func(k, rec []byte) error
	}{
		{bucketAccounts, func(k, rec []byte) error { _, err := decodeAccount(string(k), rec); return err }},
		{bucketUsernames, func(k, rec []byte) error {
			if c.tx.Bucket([]byte(bucketAccounts)).Get(rec) == nil {
				return fmt.Errorf("names missing account %q", rec)
			}
			return nil
		}},
		{bucketGroups, func(k, rec []byte) error {
			g, err := decodeGroup(string(k), rec)
			if err == nil && g.MuteAll && c.version < schemaProfiles {
				err = fmt.Errorf("MuteAll in a file of schema version %d", c.version)
			}
			return err
		}},
		{bucketGroupMembers, func(k, rec []byte) error {
			m, err := decodeGroupMember("", rec)
			if err == nil && !m.MutedUntil.IsZero() && c.version < schemaProfiles {
				err = fmt.Errorf("MutedUntil in a file of schema version %d", c.version)
			}
			return err
		}},
		{bucketUserGroups, func(k, rec []byte) error { return nil }},
	} {
		err := c.tx.Bucket([]byte(area.bucket)).ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			rec, err := unsealIn(area.bucket, k, v, c.strict)
			if err == nil {
				err = area.decode(k, rec)
			}
			if err != nil {
				c.problem("%s %q: %v", area.bucket, k, err)
			}
			switch area.bucket {
			case bucketAccounts:
				c.counts.accounts++
			case bucketGroups:
				c.counts.groups++
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
