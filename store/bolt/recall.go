package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// A recall (im.RecallStore) rewrites the message's record as a tombstone
// (a version 2 record, see codec.go) wherever the store holds it: in its
// conversation's bucket, or, while it is pending, in memory; and in the
// log as long as the log still holds it, which it may after the message
// has moved to its bucket (the log is trimmed a generation at a time, once
// the dedup index file has the generation's keys). Every copy is the same
// record, as for any message, so Check compares them as it always does.
//
// The log record of a pending message is known (pendingConv.logKeys); that
// of a message in its bucket is found by reading the log from its newest
// record back, which stops at the first record of the conversation with a
// lower seq: the log holds a conversation's messages in seq order, so the
// one wanted cannot be before it. That read runs before the write
// transaction, so that appends do not wait for it; the transaction
// rewrites the record found there only if the log still has it, and a
// message that did not exist yet then is looked for again inside it.
//
// The first recall also raises the file's schema version (see
// schemaTombstones), so that older versions of this package, which would
// read a tombstone as damage, refuse the file.
//
// bbolt writes a changed page to a new place in the file and frees the
// old one, whose bytes stay in the file, unread, until a later commit
// reuses it (and in any copy taken before): the erased content is gone
// from every record but not at once from every byte of the file.

// MessageByServerID implements im.RecallStore. There is no index by server
// id: it searches conv from its newest message back, its pending messages
// first, then its bucket with a cursor, checking each record's checksum
// and comparing its server id in place, until one matches. The server asks
// it of recent messages, which are on a conversation's last pages; an id
// that conv does not hold costs a read of the whole conversation. ctx is
// checked every 1,024 records.
func (s *Store) MessageByServerID(ctx context.Context, conv, serverID string) (_ im.Message, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return im.Message{}, fmt.Errorf("bolt: message by server id: %w", err)
	}
	if err := im.ValidateConversationID(conv); err != nil {
		return im.Message{}, fmt.Errorf("bolt: message by server id: %w", err)
	}
	if serverID == "" {
		return im.Message{}, fmt.Errorf("bolt: message by server id: server id is empty: %w", im.ErrInvalidArgument)
	}
	var pending []im.Message
	tx, err := s.read(func(p *pendingMsgs) { pending = p.snapshot(conv) })
	if err != nil {
		return im.Message{}, fmt.Errorf("bolt: message by server id: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for i := len(pending) - 1; i >= 0; i-- {
		if pending[i].ServerID == serverID {
			return cloneMessage(pending[i]), nil
		}
	}
	m, err := func() (im.Message, error) {
		msgs, err := bucket(tx, bucketMsgs)
		if err != nil {
			return im.Message{}, err
		}
		cb := msgs.Bucket([]byte(conv))
		if cb == nil {
			return im.Message{}, im.ErrNotFound
		}
		c := cb.Cursor()
		n := 0
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return im.Message{}, err
				}
			}
			seq, err := decodeSeq(k)
			if err != nil {
				return im.Message{}, &im.CorruptError{Conversation: conv, Err: corrupt("message key %x", k)}
			}
			mv, err := readMessage(conv, k, seq, v, s.strict)
			if err != nil {
				return im.Message{}, err
			}
			if string(mv.serverID()) == serverID {
				return mv.message(conv, string(mv.strs), ownContent(mv.content)), nil
			}
		}
		return im.Message{}, im.ErrNotFound
	}()
	if err != nil {
		return im.Message{}, fmt.Errorf("bolt: message by server id %q in %q: %w", serverID, conv, err)
	}
	return m, nil
}

// RecallMessage implements im.RecallStore, in one write transaction under
// appendMu, since it may change a pending message.
func (s *Store) RecallMessage(ctx context.Context, conv string, seq int64, by string, at time.Time) (_ im.Message, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return im.Message{}, fmt.Errorf("bolt: recall message: %w", err)
	}
	if err := im.ValidateConversationID(conv); err != nil {
		return im.Message{}, fmt.Errorf("bolt: recall message: %w", err)
	}
	if err := im.ValidateID("revoked by", by); err != nil {
		return im.Message{}, fmt.Errorf("bolt: recall message: %w", err)
	}
	if at.IsZero() {
		return im.Message{}, fmt.Errorf("bolt: recall message: the time of the recall is zero: %w", im.ErrInvalidArgument)
	}
	if seq < 1 {
		return im.Message{}, fmt.Errorf("bolt: recall message %d of %q: %w", seq, conv, im.ErrNotFound)
	}
	hint, known, err := s.findLogged(ctx, conv, seq)
	if err != nil {
		return im.Message{}, fmt.Errorf("bolt: recall message %d of %q: %w", seq, conv, err)
	}

	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	var out im.Message
	var tomb *im.Message // the pending copy's replacement
	err = s.write(ctx, func(tx *bbolt.Tx) error {
		msgs, err := bucket(tx, bucketMsgs)
		if err != nil {
			return err
		}
		log, err := bucket(tx, bucketLog)
		if err != nil {
			return err
		}
		var kb [8]byte
		key := seqKey(&kb, uint64(seq))
		// appendMu keeps the pending messages as they are.
		m, pending := s.pend.get(conv, uint64(seq))
		logKey := hint
		var cb *bbolt.Bucket
		if pending {
			logKey, _ = s.pend.logKey(conv, seq)
		} else {
			if cb = msgs.Bucket([]byte(conv)); cb == nil {
				return im.ErrNotFound
			}
			v := cb.Get(key)
			if v == nil {
				return im.ErrNotFound
			}
			mv, err := readMessage(conv, key, seq, v, s.strict)
			if err != nil {
				return err
			}
			m = mv.message(conv, string(mv.strs), nil)
			if !known {
				// Stored, and moved to its bucket, since findLogged.
				if logKey, err = findLoggedTx(ctx, tx, conv, seq, s.strict); err != nil {
					return err
				}
			}
		}
		if m.Revoked() {
			out = cloneMessage(m)
			return errNoChange
		}
		t := m
		t.Content, t.Extra, t.AttachedInfo = nil, "", ""
		t.RevokedBy = by
		t.RevokedAt = storedTime(at) // as it reads back
		if err := markTombstones(tx); err != nil {
			return err
		}
		if !pending {
			if err := cb.Put(key, sealedMessage(nil, &t)); err != nil {
				return err
			}
		} else {
			tomb = &t
		}
		if logKey != 0 {
			if err := eraseLogged(log, logKey, &t, pending, s.strict); err != nil {
				return err
			}
		}
		out = t
		return nil
	}, func() {
		if tomb != nil {
			s.pend.replace(*tomb)
		}
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return im.Message{}, fmt.Errorf("bolt: recall message %d of %q: %w", seq, conv, err)
	}
	return out, nil
}

// findLogged returns where message seq of conv is logged (0 if the log
// does not hold it), and whether the message existed, in a read
// transaction of its own.
func (s *Store) findLogged(ctx context.Context, conv string, seq int64) (logKey uint64, known bool, err error) {
	var pending bool
	tx, err := s.read(func(p *pendingMsgs) { logKey, pending = p.logKey(conv, seq) })
	if err != nil {
		return 0, false, err
	}
	defer func() { _ = tx.Rollback() }()
	if pending {
		return logKey, true, nil
	}
	msgs, err := bucket(tx, bucketMsgs)
	if err != nil {
		return 0, false, err
	}
	var kb [8]byte
	if cb := msgs.Bucket([]byte(conv)); cb == nil || cb.Get(seqKey(&kb, uint64(seq))) == nil {
		return 0, false, nil
	}
	logKey, err = findLoggedTx(ctx, tx, conv, seq, s.strict)
	return logKey, true, err
}

// findLoggedTx reads the log from its newest record back for message seq
// of conv, and returns its log key, or 0 once a record of conv with a
// lower seq, or the log's start, shows that the log does not hold it.
func findLoggedTx(ctx context.Context, tx *bbolt.Tx, conv string, seq int64, strict bool) (uint64, error) {
	log, err := bucket(tx, bucketLog)
	if err != nil {
		return 0, err
	}
	n := 0
	gc := log.Cursor()
	for gk, _ := gc.Last(); gk != nil; gk, _ = gc.Prev() {
		gb := log.Bucket(gk)
		if gb == nil {
			return 0, corrupt("log generation %x", gk)
		}
		c := gb.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return 0, err
				}
			}
			rconv, rseq, _, err := parseLogRecord(k, v, strict)
			if err != nil || len(k) != 8 {
				return 0, corrupt("log record %x: %v", k, err)
			}
			if string(rconv) != conv {
				continue
			}
			switch {
			case int64(rseq) == seq:
				return binary.BigEndian.Uint64(k), nil
			case int64(rseq) < seq:
				return 0, nil
			}
		}
	}
	return 0, nil
}

// eraseLogged rewrites log record n, which must name message t, as t's.
// A record trimmed since it was found is fine, unless the message is
// pending, whose record the log must have.
func eraseLogged(log *bbolt.Bucket, n uint64, t *im.Message, pending, strict bool) error {
	var g, k [8]byte
	binary.BigEndian.PutUint64(g[:], n/logGeneration)
	binary.BigEndian.PutUint64(k[:], n)
	var v []byte
	gb := log.Bucket(g[:])
	if gb != nil {
		v = gb.Get(k[:])
	}
	if v == nil {
		if pending {
			return &im.CorruptError{Conversation: t.ConversationID, Seq: t.Seq, Err: corrupt("pending message missing from log record %d", n)}
		}
		return nil
	}
	conv, seq, _, err := parseLogRecord(k[:], v, strict)
	if err != nil || string(conv) != t.ConversationID || int64(seq) != t.Seq {
		return &im.CorruptError{Conversation: t.ConversationID, Seq: t.Seq, Err: corrupt("log record %d is not this message's (%v)", n, err)}
	}
	val, _ := appendLogRecord(nil, n, t)
	return gb.Put(k[:], val)
}

// markTombstones raises the file's schema version to schemaTombstones,
// if it is not there yet: see the constant.
func markTombstones(tx *bbolt.Tx) error { return raiseSchema(tx, schemaTombstones) }
