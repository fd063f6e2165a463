package bolt

import (
	"bytes"
	"math"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// A commit writes its messages to the log, whose pages fill in order, not
// to their conversations' buckets: a bucket per conversation means a page
// rewritten per conversation per commit, and with hundreds of
// conversations in a commit that was most of its cost. A conversation's
// messages wait in the log, and in memory (pending), until a later commit
// moves them to its bucket, all at once:
//
//   - when mergeAt of them wait, about a page of small messages; or
//   - when the oldest of them is maxLag log keys old, so that the log and
//     memory stay bounded however quiet a conversation is.
//
// Readers see a conversation's bucket and its pending messages together.
// Store.memMu makes the two agree: a commit and the update of pending that
// goes with it happen under memMu, and readers begin their transaction
// under memMu too, so a reader sees both before or both after.
const (
	mergeAt          = 32
	defaultMaxLag    = 4 * logGeneration
	maxAgingPerBatch = 1024 // conversations merged for age by one commit
)

// pendingMsgs holds the messages in the log that are not in their
// conversation's bucket yet. Only AppendMessages (under Store.appendMu)
// changes it, and only under Store.memMu; readers read it under memMu.
type pendingMsgs struct {
	convs map[string]*pendingConv
	// aging lists conversations in the order their oldest pending message
	// was logged. An entry whose conversation has since been merged (its
	// first pending log key differs) is stale and skipped.
	aging []agingEntry
}

type pendingConv struct {
	// msgs have consecutive seqs; logKeys[i] is where msgs[i] is logged.
	// Readers keep copies of the slice headers: msgs is only ever appended
	// to or re-sliced, never written in place (a recall replaces it with
	// a copy, see replace).
	msgs    []im.Message
	logKeys []uint64
}

type agingEntry struct {
	conv   string
	logKey uint64
}

func newPendingMsgs() *pendingMsgs {
	return &pendingMsgs{convs: make(map[string]*pendingConv)}
}

// snapshot returns conv's pending messages, to read without a lock.
func (p *pendingMsgs) snapshot(conv string) []im.Message {
	if pc := p.convs[conv]; pc != nil {
		return pc.msgs
	}
	return nil
}

// get returns message seq of conv if it is pending.
func (p *pendingMsgs) get(conv string, seq uint64) (im.Message, bool) {
	pc := p.convs[conv]
	if pc == nil || len(pc.msgs) == 0 {
		return im.Message{}, false
	}
	i := int64(seq) - pc.msgs[0].Seq
	if i < 0 || i >= int64(len(pc.msgs)) {
		return im.Message{}, false
	}
	return pc.msgs[i], true
}

// logKey returns where pending message seq of conv is logged.
func (p *pendingMsgs) logKey(conv string, seq int64) (uint64, bool) {
	pc := p.convs[conv]
	if pc == nil || len(pc.msgs) == 0 {
		return 0, false
	}
	i := seq - pc.msgs[0].Seq
	if i < 0 || i >= int64(len(pc.msgs)) {
		return 0, false
	}
	return pc.logKeys[i], true
}

// replace puts m in place of the pending message of its conversation
// with its seq, which must be there, in a copy of the conversation's
// messages: readers may hold the old slice.
func (p *pendingMsgs) replace(m im.Message) {
	pc := p.convs[m.ConversationID]
	msgs := slices.Clone(pc.msgs)
	msgs[m.Seq-msgs[0].Seq] = m
	pc.msgs = msgs
}

// add records a message logged at logKey that stays pending.
func (p *pendingMsgs) add(m im.Message, logKey uint64) {
	pc := p.convs[m.ConversationID]
	if pc == nil {
		pc = new(pendingConv)
		p.convs[m.ConversationID] = pc
	}
	if len(pc.msgs) == 0 {
		p.aging = append(p.aging, agingEntry{conv: m.ConversationID, logKey: logKey})
	}
	pc.msgs = append(pc.msgs, m)
	pc.logKeys = append(pc.logKeys, logKey)
}

// merged forgets conv's pending messages: they are in its bucket now.
func (p *pendingMsgs) merged(conv string) {
	delete(p.convs, conv)
}

// valid reports whether e still names conv's oldest pending message.
func (p *pendingMsgs) valid(e agingEntry) bool {
	pc := p.convs[e.conv]
	return pc != nil && len(pc.logKeys) > 0 && pc.logKeys[0] == e.logKey
}

// dropStale removes stale entries from the front of aging.
func (p *pendingMsgs) dropStale() {
	n := 0
	for n < len(p.aging) && !p.valid(p.aging[n]) {
		n++
	}
	// Re-slicing, not copying: this runs every commit. The dropped
	// entries' memory goes when append next grows the slice.
	clear(p.aging[:n])
	p.aging = p.aging[n:]
}

// oldest is the log key of the oldest pending message, or MaxUint64 if
// none is pending. It expects dropStale to have run.
func (p *pendingMsgs) oldest() uint64 {
	if len(p.aging) == 0 {
		return math.MaxUint64
	}
	return p.aging[0].logKey
}

// overdue lists the conversations whose oldest pending message was logged
// before logKey, at most limit of them, oldest first.
func (p *pendingMsgs) overdue(before uint64, limit int) []string {
	var out []string
	for _, e := range p.aging {
		if e.logKey >= before || len(out) == limit {
			break
		}
		if p.valid(e) {
			out = append(out, e.conv)
		}
	}
	return out
}

// mergeInto writes msgs (consecutive seqs) into conversation bucket cb,
// with records[i] as msgs[i]'s sealed record, or, if records is nil,
// encoding and sealing them into arena, which it sizes for all of them at
// once.
func mergeInto(cb *bbolt.Bucket, msgs []im.Message, records [][]byte, arena *[]byte) error {
	// Messages only ever go at the end of a conversation's bucket: packing
	// its pages full (bbolt splits at half a page by default) halves the
	// pages it takes.
	cb.FillPercent = 0.95
	if records == nil {
		n := 0
		for i := range msgs {
			n += messageSize(&msgs[i]) + sealOverhead
		}
		if cap(*arena)-len(*arena) < n {
			// A new array: bbolt still holds the old one's records.
			*arena = make([]byte, 0, max(n, 2*cap(*arena)))
		}
	}
	var k [8]byte
	for i := range msgs {
		var rec []byte
		if records != nil {
			rec = records[i]
		} else {
			start := len(*arena)
			*arena = sealedMessage(*arena, &msgs[i])
			rec = (*arena)[start:len(*arena):len(*arena)]
		}
		if err := cb.Put(seqKey(&k, uint64(msgs[i].Seq)), rec); err != nil {
			return err
		}
	}
	return nil
}

// ownMessage returns m with its Content copied into buf (grown as needed):
// pending messages must not share memory with the caller's. A message is
// stored as it was sent: only RecallMessage makes a tombstone, so the
// tombstone's fields are dropped.
func ownMessage(m im.Message, buf *[]byte) im.Message {
	m.RevokedBy, m.RevokedAt = "", time.Time{}
	if len(m.Content) > 0 {
		start := len(*buf)
		*buf = append(*buf, m.Content...)
		m.Content = (*buf)[start:len(*buf):len(*buf)]
	}
	return m
}

// ownContent returns a copy of content, read from a record, or nil if it
// is empty, as Content is everywhere a message has none: a tombstone
// read back from the log must equal the one read from its bucket.
func ownContent(content []byte) []byte {
	if len(content) == 0 {
		return nil
	}
	return bytes.Clone(content)
}

// cloneMessage returns m with its own copy of Content, for callers.
func cloneMessage(m im.Message) im.Message {
	if m.Content != nil {
		m.Content = bytes.Clone(m.Content)
	}
	return m
}
