package main

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// groupBook verifies the delivery of one group's messages: every
// acknowledged message must reach every member but its sender exactly
// once, with the seq its sender was given; each member must get the
// group's messages in increasing seq order; and the seqs this run stored
// must have no gap. Messages are numbered across the group from 0, in the
// order their senders record them, and that number travels in the
// client_msg_id.
//
// The messages are shared: their senders append them, and every member's
// reader looks them up without a lock (a group of 1,000 gets each message
// delivered 999 times at once; one mutex would serialize them). What a
// member has seen is its own groupMember, touched only by its reader: one
// bit per message of the group, so verification costs one bit per
// expected delivery, and 48 bytes per message.
type groupBook struct {
	size int // members
	msgs msgTable

	unanswered atomic.Int64 // sent, neither acknowledged nor refused
	owed       atomic.Int64 // deliveries owed for acknowledged messages
	delivered  atomic.Int64 // first deliveries of a message to a member
	seqErrors  atomic.Int64
	unexpected atomic.Int64

	members []*groupMember
}

// groupMsg is what the book knows about one sent message.
type groupMsg struct {
	// Set before the message is published in the table, never after.
	sender int32 // the sending member
	sentAt int64 // ns since the run's base time: when it was meant to be sent

	state   atomic.Uint32 // msgPending, msgAcked or msgRefused
	ackSeq  atomic.Int64  // the acknowledged seq; 0 before
	pushSeq atomic.Int64  // the seq of its first delivery; 0 before
	pushes  atomic.Int32  // members it reached
	badSeq  atomic.Bool   // a seq disagreed; counted once
}

// groupMember is one member's view: what it has been delivered. Only the
// member's reader touches it, until the run's readers have ended.
type groupMember struct {
	book    *groupBook
	index   int32
	seen    []uint64 // bit n: message n was delivered
	lastSeq int64
	// lastNum is, by sending member, one more than the number of the
	// last message delivered without a seq: a peer server orders a
	// channel's publications per sender only, as far as a client can
	// tell.
	lastNum []int

	duplicated, outOfOrder, unexpected int64
}

func newGroupBook(size int) *groupBook {
	b := &groupBook{size: size, members: make([]*groupMember, size)}
	for i := range b.members {
		b.members[i] = &groupMember{book: b, index: int32(i)}
	}
	return b
}

// member returns member i as a connection's tally.
func (b *groupBook) member(i int) *groupMember { return b.members[i] }

// outstanding returns how many messages still wait for their answer, and
// how many deliveries are still owed for acknowledged ones (deliveries
// that came before their acknowledgement count against those owed later).
func (b *groupBook) outstanding() (unacked, undelivered int) {
	return int(b.unanswered.Load()), int(max(0, b.owed.Load()-b.delivered.Load()))
}

func (m *groupMember) sent(at int64) int {
	m.book.unanswered.Add(1)
	return m.book.msgs.add(m.index, at)
}

func (m *groupMember) acked(n int, seq int64) (int64, bool) {
	b := m.book
	g := b.msgs.get(n)
	if g == nil || g.sender != m.index || !g.state.CompareAndSwap(uint32(msgPending), uint32(msgAcked)) {
		b.unexpected.Add(1)
		return 0, false
	}
	b.unanswered.Add(-1)
	b.owed.Add(int64(b.size - 1))
	if seq == 0 {
		return g.sentAt, true // the answer carries no seq (a peer server's)
	}
	// Either this sees the first delivery's seq, or that delivery sees
	// this one (both may): a mismatch is caught either way.
	g.ackSeq.Store(seq)
	if p := g.pushSeq.Load(); p != 0 && p != seq {
		b.badSeq(g)
	}
	return g.sentAt, true
}

func (m *groupMember) refused(n int) bool {
	b := m.book
	g := b.msgs.get(n)
	if g == nil || g.sender != m.index || !g.state.CompareAndSwap(uint32(msgPending), uint32(msgRefused)) {
		b.unexpected.Add(1)
		return false
	}
	b.unanswered.Add(-1)
	if g.pushes.Load() > 0 {
		b.unexpected.Add(1) // refused, yet delivered
	}
	return true
}

func (m *groupMember) delivered(n int, seq int64) {
	b := m.book
	g := b.msgs.get(n)
	if g == nil || g.sender == m.index {
		// Never sent, or pushed back to the connection that sent it.
		m.unexpected++
		return
	}
	w, bit := n/64, uint64(1)<<(n%64)
	if w >= len(m.seen) {
		m.seen = append(m.seen, make([]uint64, w+1-len(m.seen))...)
	}
	if m.seen[w]&bit != 0 {
		m.duplicated++
		return
	}
	m.seen[w] |= bit
	g.pushes.Add(1)
	b.delivered.Add(1)
	if g.state.Load() == uint32(msgRefused) {
		b.unexpected.Add(1)
	}
	if seq == 0 {
		// No seq: each sender's messages must come in the order sent,
		// which is the order of their numbers.
		if int(g.sender) >= len(m.lastNum) {
			m.lastNum = append(m.lastNum, make([]int, int(g.sender)+1-len(m.lastNum))...)
		}
		if n+1 <= m.lastNum[g.sender] {
			m.outOfOrder++
			return
		}
		m.lastNum[g.sender] = n + 1
		return
	}
	if !g.pushSeq.CompareAndSwap(0, seq) && g.pushSeq.Load() != seq {
		b.badSeq(g) // members were given different seqs
	}
	if a := g.ackSeq.Load(); a != 0 && a != seq {
		b.badSeq(g)
	}
	if seq <= m.lastSeq {
		m.outOfOrder++
		return
	}
	m.lastSeq = seq
}

func (m *groupMember) foreign() { m.unexpected++ }

// badSeq counts a message whose seqs disagree, once.
func (b *groupBook) badSeq(g *groupMsg) {
	if g.badSeq.CompareAndSwap(false, true) {
		b.seqErrors.Add(1)
	}
}

// verify returns the verdict on everything recorded. Call it once the
// members' readers have ended. Lost and Duplicated count deliveries
// (a message missing at one member is one lost); SeqErrors counts
// messages.
func (b *groupBook) verify() verdict {
	v := verdict{SeqErrors: b.seqErrors.Load(), Unexpected: b.unexpected.Load()}
	for _, m := range b.members {
		v.Duplicated += m.duplicated
		v.OutOfOrder += m.outOfOrder
		v.Unexpected += m.unexpected
	}
	n := b.msgs.len()
	seqs := make([]int64, 0, n)
	var unknown int64
	for i := range n {
		g := b.msgs.get(i)
		v.Sent++
		// A message's seq is the acknowledged one, else that of its
		// deliveries; 0 when neither carried one (a peer server without
		// history), and then there is no seq run to check.
		seq := g.ackSeq.Load()
		if seq == 0 {
			seq = g.pushSeq.Load()
		}
		switch g.state.Load() {
		case uint32(msgPending):
			v.Unacked++
			if g.pushes.Load() > 0 {
				if seq != 0 {
					seqs = append(seqs, seq) // stored, only the answer went missing
				}
			} else {
				unknown++
			}
		case uint32(msgAcked):
			v.Acked++
			if seq != 0 {
				seqs = append(seqs, seq)
			}
			v.Lost += int64(b.size-1) - int64(g.pushes.Load())
		}
	}
	repeats, gaps := seqRun(seqs, unknown)
	v.SeqErrors += repeats
	v.Gaps = gaps
	return v
}

// msgTable holds a group's messages by number. Appends are serialized by
// a mutex; lookups take no lock. Chunks double in size, so the table never
// moves a record and a small group costs little.
type msgTable struct {
	mu     sync.Mutex // serializes add
	n      atomic.Int64
	chunks [40]atomic.Pointer[[]groupMsg]
}

// firstChunk is the size of chunk 0; chunk k holds firstChunk<<k messages.
const firstChunk = 64

// chunkOf returns the chunk holding message n and its index there.
func chunkOf(n int) (chunk, i int) {
	chunk = bits.Len(uint(n/firstChunk+1)) - 1
	return chunk, n - firstChunk*(1<<chunk-1)
}

// add records a message of sender meant for time at and returns its
// number.
func (t *msgTable) add(sender int32, at int64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := int(t.n.Load())
	c, i := chunkOf(n)
	if i == 0 {
		chunk := make([]groupMsg, firstChunk<<c)
		t.chunks[c].Store(&chunk)
	}
	g := &(*t.chunks[c].Load())[i]
	g.sender, g.sentAt = sender, at
	t.n.Store(int64(n + 1)) // publishes g
	return n
}

// get returns message n, or nil if there is none.
func (t *msgTable) get(n int) *groupMsg {
	if n < 0 || n >= int(t.n.Load()) {
		return nil
	}
	c, i := chunkOf(n)
	return &(*t.chunks[c].Load())[i]
}

func (t *msgTable) len() int { return int(t.n.Load()) }
