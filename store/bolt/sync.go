package bolt

import (
	"bytes"
	"context"
	"fmt"
	"runtime/debug"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// SyncConversations implements im.SyncStore: the user's conversations and
// its groups' in one read transaction, two prefix scans and three lookups
// per group (its conversation, the group and the membership, for
// ReadFrom).
func (s *Store) SyncConversations(ctx context.Context, userID string) (_ []im.Conversation, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: sync conversations: %w", err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return nil, err // as UserGroups does
	}
	out := []im.Conversation{}
	err = s.view(func(tx *bbolt.Tx) error {
		seen := make(map[string]bool)
		if err := eachUserConversation(tx, userID, s.strict, func(conv []byte, seq int64) {
			seen[string(conv)] = true
			out = append(out, im.Conversation{ID: string(conv), MaxSeq: seq})
		}); err != nil {
			return err
		}
		convs, err := bucket(tx, bucketConvs)
		if err != nil {
			return err
		}
		b, err := openGroupBuckets(tx, s.strict)
		if err != nil {
			return err
		}
		users := b.users
		prefix := append([]byte(userID), 0)
		c := users.Cursor()
		var conv []byte
		for k, uv := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, uv = c.Next() {
			conv = append(append(conv[:0], im.GroupConversationID("")...), k[len(prefix):]...)
			if _, err := unsealIn(bucketUserGroups, k, uv, s.strict); err != nil {
				return &im.CorruptError{Conversation: string(conv), Err: fmt.Errorf("membership of %q: %w", userID, err)}
			}
			v := convs.Get(conv)
			if v == nil || seen[string(conv)] {
				continue
			}
			seq, err := decodeMaxSeq(v, conv, s.strict)
			if err != nil {
				return &im.CorruptError{Conversation: string(conv), Err: fmt.Errorf("max seq: %w", err)}
			}
			gid := string(k[len(prefix):])
			g, err := b.readGroup(gid)
			if err != nil {
				return fmt.Errorf("group %q: %w", gid, err)
			}
			m, ok, err := b.member(gid, userID)
			if err != nil {
				return fmt.Errorf("group %q: %w", gid, err)
			}
			if !ok {
				return corrupt("group %q: %q listed as a member without a membership", gid, userID)
			}
			seen[string(conv)] = true
			out = append(out, im.Conversation{ID: string(conv), MaxSeq: seq, ReadFrom: im.FirstReadableSeq(g, m)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: sync conversations: %w", err)
	}
	return out, nil
}

// MessageRanges implements im.SyncStore: every range is read in one read
// transaction.
func (s *Store) MessageRanges(ctx context.Context, ranges []im.MessageRange, limit int) ([][]im.Message, error) {
	out := make([][]im.Message, len(ranges))
	err := s.readRanges(ctx, ranges, limit, func(i int, tx *bbolt.Tx, r im.MessageRange, to int64, pending []im.Message) (err error) {
		out[i], err = readRangeTx(tx, r.ConversationID, pending, max(r.From, 1), to, limit, s.strict, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ScanMessageRanges implements im.MessageRangeScanner: it reads as
// MessageRanges does, into memory it keeps for the next call, and calls fn
// once the read transaction has ended, so that fn may call the Store and
// a panic in fn is fn's, not a damaged file's.
func (s *Store) ScanMessageRanges(ctx context.Context, ranges []im.MessageRange, limit int, fn func(i int, page []im.Message) error) error {
	buf, _ := s.rangeBufs.Get().(*rangeBuf)
	if buf == nil {
		buf = new(rangeBuf)
	}
	defer s.putRangeBuf(buf)
	ends := slices.Grow(buf.ends[:0], len(ranges))[:len(ranges)]
	buf.ends = ends
	err := s.readRanges(ctx, ranges, limit, func(i int, tx *bbolt.Tx, r im.MessageRange, to int64, pending []im.Message) error {
		_, err := readRangeTx(tx, r.ConversationID, pending, max(r.From, 1), to, limit, s.strict, buf)
		ends[i] = len(buf.msgs)
		return err
	})
	if err != nil {
		return err
	}
	start := 0
	for i, end := range ends {
		if err := fn(i, buf.msgs[start:end:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// readRanges runs read for each range in one read transaction, with the
// range's upper bound as readRangeTx takes it and the messages of its
// conversation not yet in the file.
func (s *Store) readRanges(ctx context.Context, ranges []im.MessageRange, limit int, read func(i int, tx *bbolt.Tx, r im.MessageRange, to int64, pending []im.Message) error) (err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: message ranges: %w", err)
	}
	if limit <= 0 {
		return fmt.Errorf("bolt: message ranges: limit %d: %w", limit, im.ErrInvalidArgument)
	}
	pending := make([][]im.Message, len(ranges))
	tx, err := s.read(func(p *pendingMsgs) {
		for i, r := range ranges {
			pending[i] = p.snapshot(r.ConversationID)
		}
	})
	if err != nil {
		return fmt.Errorf("bolt: message ranges: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for i, r := range ranges {
		if i%64 == 63 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("bolt: message ranges: %w", err)
			}
		}
		to := r.To
		if to <= 0 {
			to = -1 // no upper bound; see readRange
		}
		if err := read(i, tx, r, to, pending[i]); err != nil {
			return fmt.Errorf("bolt: message ranges: %w", err)
		}
	}
	return nil
}

// rangeBuf is the memory ScanMessageRanges reads into and keeps for the
// next call: the messages of every range, back to back, their contents,
// and the parsed records of one range.
type rangeBuf struct {
	views   []messageView
	msgs    []im.Message
	content []byte
	ends    []int // where each range's messages end in msgs
}

// A rangeBuf is kept for the next call only up to these sizes: a full
// page of a few hundred conversations is more than a sync usually reads.
const (
	maxKeptRangeMsgs    = 1 << 14
	maxKeptRangeContent = 4 << 20
)

// putRangeBuf empties buf, so that it keeps no strings alive and points
// into no mapping of the file (which a later transaction may remap), and
// keeps it if it is not too large.
func (s *Store) putRangeBuf(buf *rangeBuf) {
	clear(buf.views[:cap(buf.views)])
	clear(buf.msgs)
	buf.msgs, buf.content = buf.msgs[:0], buf.content[:0]
	if cap(buf.msgs) <= maxKeptRangeMsgs && cap(buf.views) <= maxKeptRangeMsgs && cap(buf.content) <= maxKeptRangeContent {
		s.rangeBufs.Put(buf)
	}
}
