package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// The log is where a commit writes its messages (see pendingMsgs) and so
// their dedup keys (see dedupIndex): a bucket of the main file keyed by a
// counter, whose pages fill in order. A message leaves it once it is in
// its conversation's bucket and its key in the index file.

const (
	// The log is a nested bucket per logGeneration keys, so that trimming
	// it deletes whole buckets: deleting keys one by one from the front
	// of a bucket cost more than writing them.
	logGeneration = 4 << 10
	maxTrim       = 64 // generations deleted per append

	// In the main file's meta bucket: the next log key, and the last log
	// key trimmed (see keyMergeThrough).
	keyNextLog = "dedup-next"
	keyTrimmed = "dedup-trimmed"
)

// load reads the log back into memory after Open: every key into the
// dedup index's waiting keys, and the messages not yet in their
// conversations' buckets into the pending messages.
func (s *Store) load() error {
	d := s.dedup
	return s.db.View(func(tx *bbolt.Tx) error {
		meta, err := bucket(tx, bucketMeta)
		if err != nil {
			return err
		}
		next, err := metaCounter(meta, keyNextLog, s.strict)
		if err != nil {
			return err
		}
		s.nextLog = max(next, 1)
		log, err := bucket(tx, bucketLog)
		if err != nil {
			return err
		}
		msgs, err := bucket(tx, bucketMsgs)
		if err != nil {
			return err
		}
		stored := make(map[string]int64) // a conversation's last seq in its bucket
		return log.ForEachBucket(func(gen []byte) error {
			return log.Bucket(gen).ForEach(func(k, v []byte) error {
				if len(k) != 8 {
					return corrupt("log key %x", k)
				}
				n := binary.BigEndian.Uint64(k)
				conv, seq, rec, err := decodeLogRecord(k, v, s.strict)
				if err != nil {
					return corrupt("log record %d: %v", n, err)
				}
				var sk [8]byte
				mv, err := readMessage(conv, seqKey(&sk, seq), int64(seq), rec, s.strict)
				if err != nil {
					return fmt.Errorf("log record %d: %w", n, err)
				}
				d.add(waitingKey{key: string(mv.dedupKey(nil)), ref: dedupRef{conv: conv, seq: seq}, logKey: n})
				s.nextLog = max(s.nextLog, n+1)

				last, ok := stored[conv]
				if !ok {
					if cb := msgs.Bucket([]byte(conv)); cb != nil {
						if k, _ := cb.Cursor().Last(); k != nil {
							if last, err = decodeSeq(k); err != nil {
								return corrupt("message key %x of conversation %q", k, conv)
							}
						}
					} else {
						return corrupt("log record %d names missing conversation %q", n, conv)
					}
					stored[conv] = last
				}
				if int64(seq) > last {
					m := mv.message(conv, string(mv.strs), ownContent(mv.content))
					if pending := s.pend.snapshot(conv); (len(pending) == 0 && m.Seq != last+1) ||
						(len(pending) > 0 && m.Seq != pending[len(pending)-1].Seq+1) {
						return corrupt("log record %d: message %q/%d out of order", n, conv, seq)
					}
					s.pend.add(m, n)
				}
				return nil
			})
		})
	})
}

// logPut writes a log record under key n, in n's generation, which gen
// caches between calls within one transaction.
func logPut(log *bbolt.Bucket, gen **bbolt.Bucket, n uint64, rec []byte) error {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	if *gen == nil || n%logGeneration == 0 {
		var g [8]byte
		binary.BigEndian.PutUint64(g[:], n/logGeneration)
		b, err := log.CreateBucketIfNotExists(g[:])
		if err != nil {
			return err
		}
		b.FillPercent = 1 // keys only ever come in order
		*gen = b
	}
	return (*gen).Put(k[:], rec)
}

// trimLog deletes the log's generations whose keys are all merged (up to
// to), oldest first, at most maxGens of them, records the last key deleted
// in meta, and reports whether it got through all such generations.
func trimLog(tx *bbolt.Tx, to uint64, maxGens int) (bool, error) {
	log, err := bucket(tx, bucketLog)
	if err != nil {
		return false, err
	}
	var deleted uint64
	done, err := func() (bool, error) {
		for range maxGens {
			gen, _ := log.Cursor().First()
			if gen == nil {
				return true, nil
			}
			gb := log.Bucket(gen)
			if gb == nil {
				return false, corrupt("dedup log generation %x", gen)
			}
			last, _ := gb.Cursor().Last()
			if last != nil {
				if len(last) != 8 {
					return false, corrupt("log key %x", last)
				}
				if binary.BigEndian.Uint64(last) > to {
					return true, nil
				}
				deleted = binary.BigEndian.Uint64(last)
			}
			if err := log.DeleteBucket(bytes.Clone(gen)); err != nil {
				return false, err
			}
		}
		return false, nil
	}()
	if err != nil || deleted == 0 {
		return done, err
	}
	meta, err := bucket(tx, bucketMeta)
	if err != nil {
		return false, err
	}
	return done, putMetaCounter(meta, keyTrimmed, deleted)
}

// flush, on Close, stops the dedup merger, merges its waiting keys, moves
// every pending message to its conversation's bucket and empties the log,
// so that the next Open has nothing to read back. If that fails, the log
// keeps what it has for the next Open.
func (s *Store) flush() error {
	first, err := s.dedup.close()
	if !first || err != nil {
		return err
	}
	return s.write(context.Background(), func(tx *bbolt.Tx) error {
		a := appender{d: s.dedup, pend: s.pend, tx: tx, touched: map[string]*openConv{}}
		var err error
		if a.msgs, err = bucket(tx, bucketMsgs); err != nil {
			return err
		}
		for id := range s.pend.convs {
			if err := a.merge(id, &openConv{}); err != nil {
				return err
			}
		}
		_, err = trimLog(tx, s.dedup.trimTo.Load(), math.MaxInt)
		return err
	}, func() {
		s.pend = newPendingMsgs()
	})
}

// A log record is the conversation id's length as a uvarint, the
// conversation id, the seq as a uvarint, then the message record.

// The message record is sealed, as it is in its conversation's bucket, and
// the log record is sealed too, under its log key (see seal.go).

// appendLogRecord appends the sealed log record of message m, whose seq is
// m.Seq, under log key n; it returns the result and where, in it, the
// sealed message record is.
func appendLogRecord(b []byte, n uint64, m *im.Message) (out []byte, rec int) {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	out = seal(b, bucketLog, k[:], func(b []byte) []byte {
		b = binary.AppendUvarint(b, uint64(len(m.ConversationID)))
		b = append(b, m.ConversationID...)
		b = binary.AppendUvarint(b, uint64(m.Seq))
		rec = len(b)
		return sealedMessage(b, m)
	})
	return out, rec
}

// logHeaderSize bounds the size of a log record besides its message
// record.
func logHeaderSize(conv string, seq uint64) int {
	var b [2 * binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], uint64(len(conv))) + len(conv) + binary.PutUvarint(b[:], seq) + 2*sealOverhead
}

// decodeLogRecord opens the log record v of log key k and returns its
// conversation, seq and message record (sealed, unless written before
// sealing).
func decodeLogRecord(k, v []byte, strict bool) (conv string, seq uint64, rec []byte, err error) {
	c, seq, rec, err := parseLogRecord(k, v, strict)
	return string(c), seq, rec, err
}

// parseLogRecord is decodeLogRecord with the conversation id pointing
// into v.
func parseLogRecord(k, v []byte, strict bool) (conv []byte, seq uint64, rec []byte, err error) {
	v, err = unseal(v, bucketLog, k, strict)
	if err != nil {
		return nil, 0, nil, err
	}
	n, w := binary.Uvarint(v)
	if w <= 0 || n == 0 || n > uint64(len(v)-w) {
		return nil, 0, nil, errCorrupt
	}
	conv = v[w : w+int(n)]
	v = v[w+int(n):]
	seq, w = binary.Uvarint(v)
	if w <= 0 || seq == 0 || seq > math.MaxInt64 {
		return nil, 0, nil, errCorrupt
	}
	return conv, seq, v[w:], nil
}
