package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"time"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// bucketSettings: UserID 0x00 conversation id → settings record, so that
// a user's settings are one prefix scan (ChangedSettings). A pair has a
// record once a change to it changed something; it is never deleted, so
// that a change back to nothing is still listed by ChangedSettings. The
// bucket is younger than sealing: every record in it is sealed, whatever
// the file's Store.strict.
const bucketSettings = "convSettings"

var _ im.ConversationSettingsStore = (*Store)(nil)

// errUnchanged rolls back a settings change that changes nothing, which
// then costs no commit and no fsync.
var errUnchanged = errors.New("bolt: settings unchanged")

// UpdateConversationSettings implements im.ConversationSettingsStore:
// one write transaction reads the conversation's max seq and the settings
// and writes them back, and bbolt's single writer makes it atomic.
func (s *Store) UpdateConversationSettings(ctx context.Context, userID, conv string, ch im.SettingsChange) (_ im.ConversationSettings, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return im.ConversationSettings{}, fmt.Errorf("bolt: update conversation settings: %w", err)
	}
	if err := im.ValidateSettingsChange(userID, conv, ch); err != nil {
		return im.ConversationSettings{}, err
	}
	var st im.ConversationSettings
	err = s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := bucket(tx, bucketSettings)
		if err != nil {
			return err
		}
		convs, err := bucket(tx, bucketConvs)
		if err != nil {
			return err
		}
		var maxSeq int64
		if v := convs.Get([]byte(conv)); v != nil {
			if maxSeq, err = decodeMaxSeq(v, []byte(conv), s.strict); err != nil {
				return &im.CorruptError{Conversation: conv, Err: fmt.Errorf("max seq: %w", err)}
			}
		}
		k := settingsKey(userID, conv)
		old, err := readSettings(b, k, userID, conv)
		if err != nil {
			return err
		}
		st = ch.Apply(old, maxSeq)
		if st == old {
			return errUnchanged
		}
		st.UpdatedAt = ch.At
		return b.Put(k, seal(nil, bucketSettings, k, func(b []byte) []byte { return appendSettings(b, &st) }))
	})
	switch {
	case errors.Is(err, errUnchanged):
	case err != nil:
		return im.ConversationSettings{}, fmt.Errorf("bolt: update conversation settings of %q in %q: %w", userID, conv, err)
	}
	return st, nil
}

// ConversationSettings implements im.ConversationSettingsStore, in one
// read transaction.
func (s *Store) ConversationSettings(ctx context.Context, userID string, convs []string) (_ []im.ConversationSettings, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: conversation settings: %w", err)
	}
	out := make([]im.ConversationSettings, len(convs))
	err = s.db.View(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketSettings)
		if err != nil {
			return err
		}
		var k []byte
		for i, conv := range convs {
			k = appendSettingsKey(k[:0], userID, conv)
			if out[i], err = readSettings(b, k, userID, conv); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: conversation settings of %q: %w", userID, err)
	}
	return out, nil
}

// ChangedSettings implements im.ConversationSettingsStore with a prefix
// scan of the user's settings, in the order of the conversations' ids.
func (s *Store) ChangedSettings(ctx context.Context, userID string, since time.Time) (_ []im.ConversationSettings, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: changed settings: %w", err)
	}
	var out []im.ConversationSettings
	err = s.db.View(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketSettings)
		if err != nil {
			return err
		}
		prefix := appendSettingsKey(nil, userID, "")
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			st, err := openSettings(v, k, userID, string(k[len(prefix):]))
			if err != nil {
				return err
			}
			if st.UpdatedAt.After(since) {
				out = append(out, st)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: changed settings of %q: %w", userID, err)
	}
	return out, nil
}

// settingsKey is the key of userID's settings of conv. Valid ids contain
// no 0x00, so the key tells them apart; an invalid id, which reads may be
// given, finds no record.
func settingsKey(userID, conv string) []byte {
	return appendSettingsKey(make([]byte, 0, len(userID)+1+len(conv)), userID, conv)
}

func appendSettingsKey(b []byte, userID, conv string) []byte {
	b = append(b, userID...)
	b = append(b, 0)
	return append(b, conv...)
}

// readSettings reads the settings under key k, userID's of conv: zero
// values but the ids if there is no record.
func readSettings(b *bbolt.Bucket, k []byte, userID, conv string) (im.ConversationSettings, error) {
	v := b.Get(k)
	if v == nil {
		return im.ConversationSettings{UserID: userID, ConversationID: conv}, nil
	}
	return openSettings(v, k, userID, conv)
}

// openSettings checks and decodes the record v under key k.
func openSettings(v, k []byte, userID, conv string) (im.ConversationSettings, error) {
	rec, err := unseal(v, bucketSettings, k, true)
	if err == nil {
		var st im.ConversationSettings
		if st, err = decodeSettings(rec); err == nil {
			st.UserID, st.ConversationID = userID, conv
			return st, nil
		}
	}
	return im.ConversationSettings{}, &im.CorruptError{Conversation: conv, Err: fmt.Errorf("settings of %q: %w", userID, err)}
}

// A settings record (version 1):
//
//	version byte
//	flags byte: 1 = Pinned, 2 = Muted
//	uvarint HiddenUpTo, uvarint ClearedUpTo
//	UpdatedAt: varint Unix seconds, uvarint nanoseconds
//
// The ids are the key's.

const (
	flagPinned = 1 << iota
	flagMuted
)

func appendSettings(b []byte, st *im.ConversationSettings) []byte {
	var flags byte
	if st.Pinned {
		flags |= flagPinned
	}
	if st.Muted {
		flags |= flagMuted
	}
	b = append(b, recordV1, flags)
	b = binary.AppendUvarint(b, uint64(st.HiddenUpTo))
	b = binary.AppendUvarint(b, uint64(st.ClearedUpTo))
	return appendTime(b, st.UpdatedAt)
}

func decodeSettings(v []byte) (im.ConversationSettings, error) {
	d := decoder{b: v}
	if d.byte() != recordV1 {
		return im.ConversationSettings{}, d.fail()
	}
	flags := d.byte()
	hidden, cleared := d.uvarint(), d.uvarint()
	at := d.time()
	if d.err || len(d.b) != 0 || flags&^(flagPinned|flagMuted) != 0 || hidden > math.MaxInt64 || cleared > math.MaxInt64 || at.IsZero() {
		return im.ConversationSettings{}, errCorrupt
	}
	return im.ConversationSettings{
		Pinned:      flags&flagPinned != 0,
		Muted:       flags&flagMuted != 0,
		HiddenUpTo:  int64(hidden),
		ClearedUpTo: int64(cleared),
		UpdatedAt:   at,
	}, nil
}

// checkSettings checks each settings record: its key names a valid user
// and conversation, its checksum, that it decodes, and that it hides and
// clears no message the conversation does not have (both are clamped to
// the max seq, which only grows).
func (c *checker) checkSettings(ctx context.Context) error {
	convs := c.tx.Bucket([]byte(bucketConvs))
	return c.tx.Bucket([]byte(bucketSettings)).ForEach(func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		user, conv, ok := bytes.Cut(k, []byte{0})
		if !ok || im.ValidateID("user id", string(user)) != nil || im.ValidateConversationID(string(conv)) != nil {
			c.problem("settings key %q names no user and conversation", k)
			return nil
		}
		st, err := openSettings(v, k, string(user), string(conv))
		if err != nil {
			c.problem("%v", err)
			return nil
		}
		var maxSeq int64
		if mv := convs.Get(conv); mv != nil {
			if maxSeq, err = decodeMaxSeq(mv, conv, c.strict); err != nil {
				return nil // reported by checkConversations
			}
		}
		if st.HiddenUpTo > maxSeq || st.ClearedUpTo > maxSeq {
			c.problem("settings of %q in %q: hidden up to %d, cleared up to %d, past the max seq %d", user, conv, st.HiddenUpTo, st.ClearedUpTo, maxSeq)
		}
		return nil
	})
}
