package main

import (
	"slices"
	"sync"
)

// Message states in a ledger.
const (
	msgPending uint8 = iota // sent, no answer yet
	msgAcked                // acknowledged with a seq
	msgRefused              // answered with an error code: not stored
)

// msgRec is what a ledger knows about one sent message.
type msgRec struct {
	sentAt int64 // ns since the run's base time: when it was meant to be sent
	// seq is the acknowledged seq; before the acknowledgement, the seq of
	// the first delivery, if any.
	seq    int64
	state  uint8
	pushes uint16 // deliveries seen, saturating
}

// ledgerSide is one member of a conversation: the messages it sent, and
// what it has seen delivered to it.
type ledgerSide struct {
	msgs     []msgRec // indexed by message number
	lastSeen int64    // highest seq delivered to this side
}

// ledger verifies the delivery of one two-member conversation: every
// acknowledged message must reach the other member exactly once, in seq
// order, with the seq its sender was given, and the seqs of the
// conversation must have no gap. Messages are numbered per sender from 0,
// and that number travels in the client_msg_id.
//
// It is safe for concurrent use: the readers and writers of both members
// call it.
type ledger struct {
	// perSide: each side's messages are numbered in a sequence of their
	// own (a peer server's channel per receiver) instead of one per
	// conversation, and the gap check runs per side.
	perSide    bool
	mu         sync.Mutex
	sides      [2]ledgerSide
	outOfOrder int64
	seqErrors  int64
	unexpected int64
	// Kept as events arrive so that outstanding costs nothing.
	unanswered  int // sent, neither acknowledged nor refused
	undelivered int // acknowledged, not delivered
}

// verdict is what a ledger found. Every field but the first two counts a
// failure.
type verdict struct {
	Sent, Acked int64
	// Lost: acknowledged, never delivered.
	Lost int64
	// Duplicated: deliveries beyond the first of a message.
	Duplicated int64
	// OutOfOrder: deliveries whose seq was not above the last one seen.
	OutOfOrder int64
	// SeqErrors: a delivery whose seq differs from the acknowledged one, or
	// two messages given the same seq.
	SeqErrors int64
	// Gaps: seqs missing between the lowest and highest seen.
	Gaps int64
	// Unexpected: deliveries of messages never sent in this run, refused
	// messages that were delivered anyway, repeated acknowledgements.
	Unexpected int64
	// Unacked: sends that got no answer at all.
	Unacked int64
}

func (v *verdict) add(o verdict) {
	v.Sent += o.Sent
	v.Acked += o.Acked
	v.Lost += o.Lost
	v.Duplicated += o.Duplicated
	v.OutOfOrder += o.OutOfOrder
	v.SeqErrors += o.SeqErrors
	v.Gaps += o.Gaps
	v.Unexpected += o.Unexpected
	v.Unacked += o.Unacked
}

// failures is the number of problems the verdict counts.
func (v verdict) failures() int64 {
	return v.Lost + v.Duplicated + v.OutOfOrder + v.SeqErrors + v.Gaps + v.Unexpected + v.Unacked
}

// reserve makes room for n messages sent by side from, so that a long run
// does not copy its record as it grows.
func (l *ledger) reserve(from, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sides[from].msgs = slices.Grow(l.sides[from].msgs, n)
}

// sent records a message side from is about to send, meant for time at,
// and returns its number.
func (l *ledger) sent(from int, at int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.sides[from]
	s.msgs = append(s.msgs, msgRec{sentAt: at})
	l.unanswered++
	return len(s.msgs) - 1
}

// ack records the acknowledgement of message n of side from with seq, or
// with 0 for an answer that carries no seq (a peer server's). It returns
// when the message was meant to be sent, and false if n is unknown or was
// answered before (which counts as unexpected).
func (l *ledger) ack(from, n int, seq int64) (sentAt int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.sides[from]
	if n < 0 || n >= len(s.msgs) || s.msgs[n].state != msgPending {
		l.unexpected++
		return 0, false
	}
	m := &s.msgs[n]
	if seq != 0 {
		if m.pushes > 0 && m.seq != seq {
			l.seqErrors++
		}
		m.seq = seq
	}
	m.state = msgAcked
	l.unanswered--
	if m.pushes == 0 {
		l.undelivered++
	}
	return m.sentAt, true
}

// refuse records that message n of side from was answered with an error.
// It reports false if n is unknown or was answered before.
func (l *ledger) refuse(from, n int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.sides[from]
	if n < 0 || n >= len(s.msgs) || s.msgs[n].state != msgPending {
		l.unexpected++
		return false
	}
	s.msgs[n].state = msgRefused
	l.unanswered--
	if s.msgs[n].pushes > 0 {
		l.unexpected++
	}
	return true
}

// delivered records that side to received message n of the other side with
// seq.
func (l *ledger) delivered(to, n int, seq int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	src, dst := &l.sides[1-to], &l.sides[to]
	if n < 0 || n >= len(src.msgs) {
		l.unexpected++
		return
	}
	m := &src.msgs[n]
	if m.pushes < ^uint16(0) {
		m.pushes++
	}
	if m.pushes > 1 {
		return // a duplicate; counted by verify
	}
	switch m.state {
	case msgPending:
		m.seq = seq
	case msgAcked:
		l.undelivered--
		if m.seq == 0 {
			m.seq = seq // the answer had none
		} else if m.seq != seq {
			l.seqErrors++
		}
	case msgRefused:
		l.unexpected++
	}
	if seq <= dst.lastSeen {
		l.outOfOrder++
		return
	}
	dst.lastSeen = seq
}

// foreign records a delivery that belongs to no message of this run.
func (l *ledger) foreign() {
	l.mu.Lock()
	l.unexpected++
	l.mu.Unlock()
}

// outstanding returns how many messages still wait for their
// acknowledgement, and how many acknowledged ones for their delivery.
func (l *ledger) outstanding() (unacked, undelivered int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.unanswered, l.undelivered
}

// verify returns the verdict on everything recorded so far.
func (l *ledger) verify() verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := verdict{OutOfOrder: l.outOfOrder, SeqErrors: l.seqErrors, Unexpected: l.unexpected}
	var seqs []int64
	var unknown int64 // unanswered and undelivered: stored or not, seq unknown
	for i := range l.sides {
		if l.perSide && i > 0 {
			repeats, gaps := seqRun(seqs, unknown)
			v.SeqErrors += repeats
			v.Gaps += gaps
			seqs, unknown = seqs[:0], 0
		}
		for _, m := range l.sides[i].msgs {
			v.Sent++
			switch m.state {
			case msgPending:
				v.Unacked++
				if m.pushes > 0 {
					seqs = append(seqs, m.seq) // stored, only the answer went missing
				} else {
					unknown++
				}
			case msgAcked:
				v.Acked++
				if m.seq != 0 { // 0: an answer without seq, and no delivery
					seqs = append(seqs, m.seq)
				}
				if m.pushes == 0 {
					v.Lost++
				}
			}
			if m.pushes > 1 {
				v.Duplicated += int64(m.pushes) - 1
			}
		}
	}
	repeats, gaps := seqRun(seqs, unknown)
	v.SeqErrors += repeats
	v.Gaps += gaps
	return v
}

// seqRun checks that the seqs a run stored in one conversation are one
// run of consecutive numbers (it may start anywhere, after the history of
// earlier runs). It returns how many seqs were given twice, and how many
// are missing between the lowest and the highest, less unknown: the
// messages that got no answer and no delivery, which may have been stored
// all the same (they count as unanswered already). seqs is sorted in place.
func seqRun(seqs []int64, unknown int64) (repeats, gaps int64) {
	slices.Sort(seqs)
	for i := 1; i < len(seqs); i++ {
		switch d := seqs[i] - seqs[i-1]; {
		case d == 0:
			repeats++
		case d > 1:
			gaps += d - 1
		}
	}
	return repeats, max(0, gaps-unknown)
}

// firstSeq returns the lowest seq acknowledged to side from.
func (l *ledger) firstSeq(from int) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	first, ok := int64(0), false
	for _, m := range l.sides[from].msgs {
		if m.state == msgAcked && (!ok || m.seq < first) {
			first, ok = m.seq, true
		}
	}
	return first, ok
}
