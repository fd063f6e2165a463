package bolt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth/account"
)

// errCorrupt marks a record that cannot be decoded: the file was damaged or
// written by something else.
var errCorrupt = fmt.Errorf("bolt: corrupt record: %w", im.ErrCorrupt)

// recordV1 is the first byte of every message, account, group and group
// member record, so the encoding can change without a migration of old
// records.
const recordV1 = 1

// A message record (the value under its seq key, version 1):
//
//	version byte
//	uvarint lengths of ServerID, SenderID, ReceiverID, ClientMsgID, Extra, AttachedInfo
//	varint Type, SendTime, CreatedAt Unix seconds; uvarint CreatedAt nanoseconds
//	the six strings' bytes, back to back
//	Content: the rest of the record
//
// A recalled message's tombstone (see recall.go) is a version 2 record:
//
//	version byte 2
//	uvarint lengths of the six strings and of RevokedBy
//	varint Type, SendTime, CreatedAt Unix seconds; uvarint CreatedAt nanoseconds
//	varint RevokedAt Unix seconds; uvarint RevokedAt nanoseconds
//	the seven strings' bytes, back to back
//	Content: the rest of the record (empty in a tombstone)
//
// Content taking the rest of the record, the tombstone's fields could not
// be appended to version 1: a record of version 1 is a message that was
// never recalled, and every message is written as one until it is.
//
// ConversationID and Seq are the record's bucket and key. The strings come
// first and together, so that decoding copies them out of the mmap with one
// allocation, and Content with a second.

// messageRecordV2 is the first byte of a tombstone's record.
const messageRecordV2 = 2

// messageSize bounds the encoded size of m.
func messageSize(m *im.Message) int {
	n := 1 + 6*binary.MaxVarintLen64 + 4*binary.MaxVarintLen64 +
		len(m.ServerID) + len(m.SenderID) + len(m.ReceiverID) + len(m.ClientMsgID) +
		len(m.Extra) + len(m.AttachedInfo) + len(m.Content)
	if m.RevokedBy != "" {
		n += 3*binary.MaxVarintLen64 + len(m.RevokedBy)
	}
	return n
}

// appendMessage appends the record of m to b: version 2 if m is a
// tombstone, else version 1.
func appendMessage(b []byte, m *im.Message) []byte {
	revoked := m.RevokedBy != ""
	if revoked {
		b = append(b, messageRecordV2)
	} else {
		b = append(b, recordV1)
	}
	for _, s := range [...]string{m.ServerID, m.SenderID, m.ReceiverID, m.ClientMsgID, m.Extra, m.AttachedInfo} {
		b = binary.AppendUvarint(b, uint64(len(s)))
	}
	if revoked {
		b = binary.AppendUvarint(b, uint64(len(m.RevokedBy)))
	}
	b = binary.AppendVarint(b, int64(m.Type))
	b = binary.AppendVarint(b, m.SendTime)
	b = appendTime(b, m.CreatedAt)
	if revoked {
		b = appendTime(b, m.RevokedAt)
	}
	for _, s := range [...]string{m.ServerID, m.SenderID, m.ReceiverID, m.ClientMsgID, m.Extra, m.AttachedInfo} {
		b = append(b, s...)
	}
	if revoked {
		b = append(b, m.RevokedBy...)
	}
	return append(b, m.Content...)
}

// messageView is a parsed message record whose strings and content still
// point into the record.
type messageView struct {
	seq int64
	// of ServerID, SenderID, ReceiverID, ClientMsgID, Extra, AttachedInfo
	// and RevokedBy (0 in a version 1 record)
	lens      [7]int
	typ       im.MessageType
	sendTime  int64
	created   time.Time
	revokedAt time.Time
	strs      []byte // the strings, back to back
	content   []byte
}

func parseMessage(seq int64, v []byte) (messageView, error) {
	d := decoder{b: v}
	n := 6
	switch d.byte() {
	case recordV1:
	case messageRecordV2:
		n = 7
	default:
		return messageView{}, d.fail()
	}
	mv := messageView{seq: seq}
	total := 0
	for i := range n {
		mv.lens[i] = d.length()
		total += mv.lens[i]
	}
	typ := d.varint()
	mv.sendTime = d.varint()
	mv.created = d.time()
	if n == 7 {
		mv.revokedAt = d.time()
	}
	mv.strs = d.bytes(total)
	if d.err || typ < math.MinInt32 || typ > math.MaxInt32 || (n == 7 && mv.lens[6] == 0) {
		return messageView{}, errCorrupt
	}
	mv.typ = im.MessageType(typ)
	mv.content = d.b
	return mv, nil
}

// serverID returns the message's ServerID, pointing into the record.
func (mv *messageView) serverID() []byte { return mv.strs[:mv.lens[0]] }

// senderID returns the message's SenderID, pointing into the record.
func (mv *messageView) senderID() []byte { return mv.strs[mv.lens[0] : mv.lens[0]+mv.lens[1]] }

// message builds the message of conversation conv from mv, taking its
// strings from strs (a copy of mv.strs) and content as its Content.
func (mv *messageView) message(conv, strs string, content []byte) im.Message {
	next := func(n int) string {
		s := strs[:n]
		strs = strs[n:]
		return s
	}
	m := im.Message{
		ConversationID: conv,
		Seq:            mv.seq,
		ServerID:       next(mv.lens[0]),
		SenderID:       next(mv.lens[1]),
		ReceiverID:     next(mv.lens[2]),
		ClientMsgID:    next(mv.lens[3]),
		Extra:          next(mv.lens[4]),
		AttachedInfo:   next(mv.lens[5]),
		Type:           mv.typ,
		SendTime:       mv.sendTime,
		CreatedAt:      mv.created,
		Content:        content,
	}
	if mv.lens[6] > 0 {
		m.RevokedBy = next(mv.lens[6])
		m.RevokedAt = mv.revokedAt
	}
	return m
}

// decodeMessage decodes the record v of message seq of conversation conv.
// The result shares no memory with v.
func decodeMessage(conv string, seq int64, v []byte) (im.Message, error) {
	mv, err := parseMessage(seq, v)
	if err != nil {
		return im.Message{}, err
	}
	var content []byte
	if len(mv.content) > 0 {
		content = bytes.Clone(mv.content)
	}
	return mv.message(conv, string(mv.strs), content), nil
}

// decodeMessages decodes the parsed records of one conversation, appending
// the messages to dst and their contents to arena, and returns both. It
// copies all their strings into one allocation, and grows arena at most
// once, rather than two allocations per message: a sync reads thousands.
// Each Content is capped, so that appending to one never overwrites the
// next.
func decodeMessages(dst []im.Message, arena []byte, conv string, views []messageView) ([]im.Message, []byte) {
	nStrs, nContent := 0, 0
	for i := range views {
		nStrs += len(views[i].strs)
		nContent += len(views[i].content)
	}
	var sb strings.Builder
	sb.Grow(nStrs)
	for i := range views {
		sb.Write(views[i].strs)
	}
	strs := sb.String()
	if arena == nil {
		arena = make([]byte, 0, nContent)
	} else {
		arena = slices.Grow(arena, nContent)
	}
	dst = slices.Grow(dst, len(views))
	for i := range views {
		mv := &views[i]
		var content []byte
		if len(mv.content) > 0 {
			start := len(arena)
			arena = append(arena, mv.content...)
			content = arena[start:len(arena):len(arena)]
		}
		dst = append(dst, mv.message(conv, strs[:len(mv.strs)], content))
		strs = strs[len(mv.strs):]
	}
	return dst, arena
}

// An account record (the value under its user id, version 1):
//
//	version byte
//	uvarint lengths of Username, Nickname, PasswordHash
//	flags byte: 1 = Disabled
//	varint CreatedAt Unix seconds; uvarint CreatedAt nanoseconds
//	Username, Nickname, PasswordHash bytes, back to back
//
// Version 2 came with profiles; it is version 1 with, after the three
// lengths, those of Avatar and Signature, the flag 2 = Deleted, after
// CreatedAt varint Gender, varint Birth and UpdatedAt (varint Unix
// seconds, uvarint nanoseconds), and Avatar and Signature after the
// other strings. An account without a profile is still written as
// version 1, which older versions of this package read; the first version
// 2 record raises the file's schema version (schemaProfiles), so that
// they refuse it then.

const (
	flagDisabled = 1
	flagDeleted  = 2

	accountRecordV2 = 2
)

// accountV2 reports whether a needs a record of version 2.
func accountV2(a *account.Account) bool {
	return a.Avatar != "" || a.Signature != "" || a.Gender != 0 || a.Birth != 0 || !a.UpdatedAt.IsZero() || a.Deleted
}

func appendAccount(b []byte, a *account.Account) []byte {
	v2 := accountV2(a)
	if v2 {
		b = append(b, accountRecordV2)
	} else {
		b = append(b, recordV1)
	}
	b = binary.AppendUvarint(b, uint64(len(a.Username)))
	b = binary.AppendUvarint(b, uint64(len(a.Nickname)))
	b = binary.AppendUvarint(b, uint64(len(a.PasswordHash)))
	if v2 {
		b = binary.AppendUvarint(b, uint64(len(a.Avatar)))
		b = binary.AppendUvarint(b, uint64(len(a.Signature)))
	}
	var flags byte
	if a.Disabled {
		flags |= flagDisabled
	}
	if a.Deleted {
		flags |= flagDeleted
	}
	b = append(b, flags)
	b = appendTime(b, a.CreatedAt)
	if v2 {
		b = binary.AppendVarint(b, int64(a.Gender))
		b = binary.AppendVarint(b, a.Birth)
		b = appendTime(b, a.UpdatedAt)
	}
	b = append(b, a.Username...)
	b = append(b, a.Nickname...)
	b = append(b, a.PasswordHash...)
	if v2 {
		b = append(b, a.Avatar...)
		b = append(b, a.Signature...)
	}
	return b
}

func decodeAccount(userID string, v []byte) (account.Account, error) {
	d := decoder{b: v}
	rv := d.byte()
	if rv != recordV1 && rv != accountRecordV2 {
		return account.Account{}, d.fail()
	}
	v2 := rv == accountRecordV2
	nUser, nNick, nHash := d.length(), d.length(), d.length()
	var nAvatar, nSig int
	known := byte(flagDisabled)
	if v2 {
		nAvatar, nSig = d.length(), d.length()
		known |= flagDeleted
	}
	flags := d.byte()
	created := d.time()
	var gender, birth int64
	var updated time.Time
	if v2 {
		gender, birth = d.varint(), d.varint()
		updated = d.time()
	}
	names := d.bytes(nUser + nNick)
	hash := d.bytes(nHash)
	profile := d.bytes(nAvatar + nSig)
	if d.err || len(d.b) != 0 || flags&^known != 0 || gender < math.MinInt32 || gender > math.MaxInt32 {
		return account.Account{}, errCorrupt
	}
	str := string(names)
	a := account.Account{
		UserID:    userID,
		Username:  str[:nUser],
		Nickname:  str[nUser:],
		Disabled:  flags&flagDisabled != 0,
		CreatedAt: created,
		Gender:    im.Gender(gender),
		Birth:     birth,
		UpdatedAt: updated,
		Deleted:   flags&flagDeleted != 0,
	}
	if nHash > 0 {
		a.PasswordHash = bytes.Clone(hash)
	}
	if len(profile) > 0 {
		p := string(profile)
		a.Avatar, a.Signature = p[:nAvatar], p[nAvatar:]
	}
	return a, nil
}

// A group record (the value under its group id):
//
//	version byte (1 or 2)
//	uvarint lengths of Name, FaceURL, Introduction, Notification, Extra, OwnerID
//	varint JoinPolicy; uvarint MemberCount
//	version 2 only: uvarint Version (a version 1 record is at Version 1)
//	CreatedAt, then UpdatedAt: varint Unix seconds, uvarint nanoseconds
//	the six strings' bytes, back to back
//	varint History, if present (records written before it read as
//	HistoryFromJoin)
//	flags byte, if present: 1 = MuteAll (written only when set)
//
// Version 2 came with group versions; records written before read as
// Version 1 and are rewritten as version 2 by their next change. History
// was appended at the end, without a new version, so that a record
// without it still decodes; so were the flags. A record with them raises
// the file's schema version (schemaProfiles): older versions of this
// package refuse bytes past History.

const groupFlagMuteAll = 1

// groupRecordV2 is the first byte of a group record that holds Version.
const groupRecordV2 = 2

func appendGroup(b []byte, g *im.Group) []byte {
	b = append(b, groupRecordV2)
	for _, s := range [...]string{g.Name, g.FaceURL, g.Introduction, g.Notification, g.Extra, g.OwnerID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
	}
	b = binary.AppendVarint(b, int64(g.JoinPolicy))
	b = binary.AppendUvarint(b, uint64(g.MemberCount))
	b = binary.AppendUvarint(b, uint64(g.Version))
	b = appendTime(b, g.CreatedAt)
	b = appendTime(b, g.UpdatedAt)
	for _, s := range [...]string{g.Name, g.FaceURL, g.Introduction, g.Notification, g.Extra, g.OwnerID} {
		b = append(b, s...)
	}
	b = binary.AppendVarint(b, int64(g.History))
	if g.MuteAll {
		b = append(b, groupFlagMuteAll)
	}
	return b
}

func decodeGroup(id string, v []byte) (im.Group, error) {
	d := decoder{b: v}
	rv := d.byte()
	if rv != recordV1 && rv != groupRecordV2 {
		return im.Group{}, d.fail()
	}
	var lens [6]int
	total := 0
	for i := range lens {
		lens[i] = d.length()
		total += lens[i]
	}
	policy := d.varint()
	count := d.uvarint()
	version := uint64(1)
	if rv == groupRecordV2 {
		version = d.uvarint()
	}
	created, updated := d.time(), d.time()
	strs := d.bytes(total)
	var history int64
	if !d.err && len(d.b) > 0 {
		history = d.varint()
	}
	var flags byte
	if !d.err && len(d.b) > 0 {
		if flags = d.byte(); flags == 0 {
			d.err = true // never written: a group without flags has none
		}
	}
	if d.err || len(d.b) != 0 || flags&^groupFlagMuteAll != 0 || policy < math.MinInt32 || policy > math.MaxInt32 || count > math.MaxInt || version > math.MaxInt64 ||
		history < math.MinInt32 || history > math.MaxInt32 {
		return im.Group{}, errCorrupt
	}
	str := string(strs)
	next := func(n int) string {
		s := str[:n]
		str = str[n:]
		return s
	}
	return im.Group{
		ID:           id,
		Name:         next(lens[0]),
		FaceURL:      next(lens[1]),
		Introduction: next(lens[2]),
		Notification: next(lens[3]),
		Extra:        next(lens[4]),
		OwnerID:      next(lens[5]),
		JoinPolicy:   im.JoinPolicy(policy),
		History:      im.HistoryVisibility(history),
		MuteAll:      flags&groupFlagMuteAll != 0,
		MemberCount:  int(count),
		Version:      int64(version),
		CreatedAt:    created,
		UpdatedAt:    updated,
	}, nil
}

// A group member record (the value under group id 0x00 UserID, version 1):
//
//	version byte
//	varint Role
//	JoinedAt: varint Unix seconds, uvarint nanoseconds
//	uvarint JoinSeq, if present (records written before it read as 0)
//	MutedUntil, if not zero: varint Unix seconds, uvarint nanoseconds
//
// A record with MutedUntil raises the file's schema version
// (schemaProfiles), as older versions of this package refuse bytes past
// JoinSeq.

func appendGroupMember(b []byte, m *im.GroupMember) []byte {
	b = append(b, recordV1)
	b = binary.AppendVarint(b, int64(m.Role))
	b = appendTime(b, m.JoinedAt)
	b = binary.AppendUvarint(b, uint64(m.JoinSeq))
	if !m.MutedUntil.IsZero() {
		b = appendTime(b, m.MutedUntil)
	}
	return b
}

func decodeGroupMember(userID string, v []byte) (im.GroupMember, error) {
	d := decoder{b: v}
	if d.byte() != recordV1 {
		return im.GroupMember{}, d.fail()
	}
	role := d.varint()
	joined := d.time()
	var joinSeq uint64
	if !d.err && len(d.b) > 0 {
		joinSeq = d.uvarint()
	}
	var muted time.Time
	if !d.err && len(d.b) > 0 {
		if muted = d.time(); muted.IsZero() {
			d.err = true // never written
		}
	}
	if d.err || len(d.b) != 0 || role < math.MinInt32 || role > math.MaxInt32 || joinSeq > math.MaxInt64 {
		return im.GroupMember{}, errCorrupt
	}
	return im.GroupMember{UserID: userID, Role: im.GroupRole(role), JoinedAt: joined, JoinSeq: int64(joinSeq), MutedUntil: muted}, nil
}

// A read state record (the value under conversation id 0x00 UserID in
// the readStates bucket, version 1):
//
//	version byte
//	uvarint Read, Delivered, Mentioned
//	UpdatedAt: varint Unix seconds, uvarint nanoseconds (the zero time
//	as it is)
//
// A field to come is appended at the end, as History was to the group
// record, and a record without it decodes as before.

// receiptRecord is a read state record: the positions receipts stored.
type receiptRecord struct {
	read, delivered, mentioned int64
	updated                    time.Time
}

func appendReceipt(b []byte, r *receiptRecord) []byte {
	b = append(b, recordV1)
	b = binary.AppendUvarint(b, uint64(r.read))
	b = binary.AppendUvarint(b, uint64(r.delivered))
	b = binary.AppendUvarint(b, uint64(r.mentioned))
	return appendTime(b, r.updated)
}

func decodeReceiptRecord(v []byte) (receiptRecord, error) {
	d := decoder{b: v}
	if d.byte() != recordV1 {
		return receiptRecord{}, d.fail()
	}
	read, delivered, mentioned := d.uvarint(), d.uvarint(), d.uvarint()
	updated := d.time()
	if d.err || len(d.b) != 0 || read > math.MaxInt64 || delivered > math.MaxInt64 || mentioned > math.MaxInt64 {
		return receiptRecord{}, errCorrupt
	}
	return receiptRecord{read: int64(read), delivered: int64(delivered), mentioned: int64(mentioned), updated: updated}, nil
}

// A note record: what friendships, friend requests, blocks, join
// requests and revoked tokens store (version 1):
//
//	version byte
//	a time: varint Unix seconds, uvarint nanoseconds (CreatedAt, or a
//	revoked token's expiry)
//	a text: the rest of the record (a remark or a request's message;
//	empty for a block and a revoked token)
//
// The ids are the key's.

func appendNote(b []byte, at time.Time, text string) []byte {
	b = append(b, recordV1)
	b = appendTime(b, at)
	return append(b, text...)
}

func decodeNote(v []byte) (at time.Time, text string, err error) {
	d := decoder{b: v}
	if d.byte() != recordV1 {
		return time.Time{}, "", d.fail()
	}
	at = d.time()
	if d.err {
		return time.Time{}, "", errCorrupt
	}
	return at, string(d.b), nil
}

// appendTime stores t to the nanosecond, whatever its year; its location is
// not kept (decoded times are UTC).
func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// storedTime returns t as a record gives it back: without its location
// and monotonic reading (appendTime keeps neither), the zero time as it is.
func storedTime(t time.Time) time.Time {
	return time.Unix(t.Unix(), int64(t.Nanosecond())).UTC()
}

// decoder reads a record front to back. The first malformed read sets err
// and every later read returns zero values, so callers check err once.
type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) fail() error {
	d.err = true
	return errCorrupt
}

func (d *decoder) byte() byte {
	if d.err || len(d.b) == 0 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) varint() int64 {
	if d.err {
		return 0
	}
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return x
}

// length reads a length that must fit in what is left of the record, so
// that a corrupt length cannot make the decoder allocate or overflow.
func (d *decoder) length() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = true
		return 0
	}
	return int(n)
}

func (d *decoder) bytes(n int) []byte {
	if d.err || n < 0 || n > len(d.b) {
		d.err = true
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= uint64(time.Second) {
		d.err = true
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// seqKey is the key of message seq: big-endian, so that keys sort by seq.
func seqKey(buf *[8]byte, seq uint64) []byte {
	binary.BigEndian.PutUint64(buf[:], seq)
	return buf[:]
}

// decodeSeq decodes an 8-byte big-endian seq, as used for message keys and
// conversation records.
func decodeSeq(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, errCorrupt
	}
	s := binary.BigEndian.Uint64(b)
	if s == 0 || s > math.MaxInt64 {
		return 0, errCorrupt
	}
	return int64(s), nil
}

// A dedup record (the value under SenderID 0x00 ClientMsgID) names the
// message first stored with that key: 8-byte big-endian seq, then the
// conversation id.

func appendDedup(b []byte, conv string, seq uint64) []byte {
	b = binary.BigEndian.AppendUint64(b, seq)
	return append(b, conv...)
}

func decodeDedup(v []byte) (conv []byte, seq int64, err error) {
	if len(v) <= 8 {
		return nil, 0, errCorrupt
	}
	seq, err = decodeSeq(v[:8])
	return v[8:], seq, err
}

// corrupt wraps errCorrupt with where the bad record was.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errCorrupt)
}
