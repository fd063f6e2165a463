package bolt

import (
	"bytes"
	"context"
	"fmt"
	"runtime/debug"

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
func (s *Store) MessageRanges(ctx context.Context, ranges []im.MessageRange, limit int) (_ [][]im.Message, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: message ranges: %w", err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("bolt: message ranges: limit %d: %w", limit, im.ErrInvalidArgument)
	}
	pending := make([][]im.Message, len(ranges))
	tx, err := s.read(func(p *pendingMsgs) {
		for i, r := range ranges {
			pending[i] = p.snapshot(r.ConversationID)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: message ranges: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	out := make([][]im.Message, len(ranges))
	for i, r := range ranges {
		if i%64 == 63 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("bolt: message ranges: %w", err)
			}
		}
		to := r.To
		if to <= 0 {
			to = -1 // no upper bound; see readRange
		}
		if out[i], err = readRangeTx(tx, r.ConversationID, pending[i], max(r.From, 1), to, limit, s.strict); err != nil {
			return nil, fmt.Errorf("bolt: message ranges: %w", err)
		}
	}
	return out, nil
}
