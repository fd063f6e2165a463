package bolt

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// Every value the main file stores is sealed: the record its codec encodes
// (codec.go) goes inside an envelope that adds a checksum, and every read
// opens the envelope before decoding. bbolt checks no data: a bit flipped
// on disk or in a copy would otherwise be decoded and served as a
// different message, account or group. One layer for every record keeps
// the codecs unaware of it.
//
// A sealed record:
//
//	recordSealed (0x00)
//	the record, as its codec encodes it (with its own version byte)
//	CRC-32C, 4 bytes big-endian, of: the uvarint lengths of the bucket's
//	name and of the key, the bucket's name, the key, recordSealed and the
//	record
//
// The checksum covers where the record lives as well as its bytes, so a
// record whose key or bucket name was damaged (a message moved to another
// seq or conversation) fails it too. 0x00 starts no record written before
// sealing: message, account, group and member records start with their
// version (1 or more), log records with a conversation id's length (at
// least 1), username records with a user id (printable), and the index
// buckets' records were empty. Counters and max seqs were 8 bytes, which a
// sealed one (13 bytes) never is.
//
// A file created sealed records so in its meta bucket (keyChecksums =
// checksumsAll), and then refuses every record that is not sealed, so
// that a damaged first byte cannot pass a record off as an old one. A file
// created before sealing (checksumsSince) seals what is written from then
// on and still reads its old records unchecked.

const (
	recordSealed = 0
	sealOverhead = 1 + 4

	// In the main file's meta bucket: which records are sealed (a sealed
	// byte), and the store's random identity (16 sealed bytes).
	keyChecksums = "checksums"
	keyStoreID   = "store-id"
	// checksumsAll: every record is sealed. checksumsSince: the records
	// written before the file was upgraded (schema version 3 and older)
	// are not.
	checksumsAll   = 1
	checksumsSince = 2
)

// castagnoli is CRC-32C's table, read only.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	errChecksum = fmt.Errorf("stored data failed its integrity check (checksum mismatch): %w", errCorrupt)
	errUnsealed = fmt.Errorf("record without a checksum in a store that checksums every record: %w", errCorrupt)
)

// name is a bucket's name, as a string or as bbolt hands it out.
type name interface{ ~string | ~[]byte }

// seal appends to b the sealed record of key in bucket whose record enc
// appends.
func seal[B name](b []byte, bucket B, key []byte, enc func([]byte) []byte) []byte {
	start := len(b)
	b = append(b, recordSealed)
	if enc != nil {
		b = enc(b)
	}
	return binary.BigEndian.AppendUint32(b, sealSum(bucket, key, b[start:]))
}

// sealBytes is seal of a record that is rec as it is.
func sealBytes[B name](b []byte, bucket B, key, rec []byte) []byte {
	start := len(b)
	b = append(append(b, recordSealed), rec...)
	return binary.BigEndian.AppendUint32(b, sealSum(bucket, key, b[start:]))
}

func sealSum[B name](bucket B, key, body []byte) uint32 {
	return placeSumOf(bucket, len(key)).sum(key, body)
}

// placeSum is the checksum's state once it has taken in the lengths of a
// bucket's name and of a key, and the name: the same for every record of
// the bucket with keys of that length, so that a read of many (a page of
// a conversation's messages) computes it once.
type placeSum uint32

// placeSumOf returns the placeSum of bucket's records with keys keyLen
// bytes long.
func placeSumOf[B name](bucket B, keyLen int) placeSum {
	// The lengths and the bucket's name, all short, a byte at a time: a
	// buffer for them, or a string made into a slice, would be passed to
	// crc32.Update, where it escapes, and cost an allocation per record.
	c := ^uint32(0)
	c = crcUvarint(c, uint64(len(bucket)))
	c = crcUvarint(c, uint64(keyLen))
	for i := 0; i < len(bucket); i++ {
		c = castagnoli[byte(c)^bucket[i]] ^ c>>8
	}
	return placeSum(c)
}

// sum returns the checksum of body under key, whose length p was made
// for. The body goes through crc32.Update, which uses the CPU's CRC-32C
// instruction where there is one.
func (p placeSum) sum(key, body []byte) uint32 {
	c := uint32(p)
	for _, x := range key {
		c = castagnoli[byte(c)^x] ^ c>>8
	}
	return crc32.Update(^c, castagnoli, body)
}

// crcUvarint updates the (unconditioned) CRC c with n as a uvarint.
func crcUvarint(c uint32, n uint64) uint32 {
	for n >= 0x80 {
		c = castagnoli[byte(c)^(byte(n)|0x80)] ^ c>>8
		n >>= 7
	}
	return castagnoli[byte(c)^byte(n)] ^ c>>8
}

// unseal returns the record inside v, the value of key in bucket, once its
// checksum is verified; strict refuses a record that is not sealed, which
// otherwise is returned as it is (written before sealing). The result
// points into v.
func unseal[B name](v []byte, bucket B, key []byte, strict bool) ([]byte, error) {
	return unsealAt(v, placeSumOf(bucket, len(key)), key, strict)
}

// unsealAt is unseal with the placeSum of key's bucket.
func unsealAt(v []byte, p placeSum, key []byte, strict bool) ([]byte, error) {
	if len(v) == 0 || v[0] != recordSealed {
		if strict {
			return nil, errUnsealed
		}
		return v, nil
	}
	if len(v) < sealOverhead {
		return nil, errChecksum
	}
	body := v[:len(v)-4]
	if binary.BigEndian.Uint32(v[len(v)-4:]) != p.sum(key, body) {
		return nil, errChecksum
	}
	return body[1:], nil
}

// appendSeqRecord appends the sealed record of an 8-byte big-endian
// number: a conversation's max seq or a counter.
func appendSeqRecord[B name](b []byte, bucket B, key []byte, n uint64) []byte {
	return seal(b, bucket, key, func(b []byte) []byte { return binary.BigEndian.AppendUint64(b, n) })
}

// decodeSeqRecord reads what appendSeqRecord wrote, or, unless strict, an
// unsealed 8-byte number as written before sealing.
func decodeSeqRecord[B name](v []byte, bucket B, key []byte, strict bool) (uint64, error) {
	if len(v) == 8 && !strict {
		return binary.BigEndian.Uint64(v), nil
	}
	rec, err := unseal(v, bucket, key, true)
	if err != nil {
		return 0, err
	}
	if len(rec) != 8 {
		return 0, errCorrupt
	}
	return binary.BigEndian.Uint64(rec), nil
}

// decodeMaxSeq reads conversation conv's max seq record.
func decodeMaxSeq(v, conv []byte, strict bool) (int64, error) {
	n, err := decodeSeqRecord(v, bucketConvs, conv, strict)
	if err != nil {
		return 0, err
	}
	if n == 0 || n > math.MaxInt64 {
		return 0, errCorrupt
	}
	return int64(n), nil
}

// metaCounter reads a counter of the main file's meta bucket; absent is 0.
func metaCounter(meta *bbolt.Bucket, key string, strict bool) (uint64, error) {
	v := meta.Get([]byte(key))
	if v == nil {
		return 0, nil
	}
	n, err := decodeSeqRecord(v, bucketMeta, []byte(key), strict)
	if err != nil {
		return 0, corrupt("meta %q: %v", key, err)
	}
	return n, nil
}

func putMetaCounter(meta *bbolt.Bucket, key string, n uint64) error {
	return meta.Put([]byte(key), appendSeqRecord(nil, bucketMeta, []byte(key), n))
}

// unsealIn is unseal for a record of a top-level bucket.
func unsealIn(bucket string, key, v []byte, strict bool) ([]byte, error) {
	return unseal(v, bucket, key, strict)
}

// sealIn is sealBytes for a record of a top-level bucket.
func sealIn(bucket string, key, rec []byte) []byte {
	return sealBytes(nil, bucket, key, rec)
}

// readMessage opens and parses the record v of message seq (key k) of
// conversation conv.
func readMessage[B name](conv B, k []byte, seq int64, v []byte, strict bool) (messageView, error) {
	return readMessageAt(conv, placeSumOf(conv, len(k)), k, seq, v, strict)
}

// readMessageAt is readMessage with p, the placeSum of conv's bucket and
// keys of k's length, which a read of many messages computes once.
func readMessageAt[B name](conv B, p placeSum, k []byte, seq int64, v []byte, strict bool) (messageView, error) {
	rec, err := unsealAt(v, p, k, strict)
	if err == nil {
		var mv messageView
		if mv, err = parseMessage(seq, rec); err == nil {
			return mv, nil
		}
	}
	return messageView{}, &im.CorruptError{Conversation: string(conv), Seq: seq, Err: err}
}

// sealedMessage appends the sealed record of message m (its conversation's
// bucket and seq are its place).
func sealedMessage(b []byte, m *im.Message) []byte {
	var k [8]byte
	return seal(b, m.ConversationID, seqKey(&k, uint64(m.Seq)), func(b []byte) []byte { return appendMessage(b, m) })
}
