package main

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// step is one event fed to a ledger.
type step struct {
	op   string // "send", "ack", "refuse", "deliver", "foreign"
	side int    // sender for send/ack/refuse, receiver for deliver
	n    int
	seq  int64
}

func TestLedgerVerdicts(t *testing.T) {
	// A clean exchange: side 0 sends messages 0 and 1 (seqs 10, 12), side 1
	// sends message 0 (seq 11); each is delivered once, in order.
	clean := []step{
		{"send", 0, 0, 0}, {"send", 1, 0, 0}, {"send", 0, 1, 0},
		{"ack", 0, 0, 10}, {"ack", 1, 0, 11}, {"ack", 0, 1, 12},
		{"deliver", 1, 0, 10}, {"deliver", 0, 0, 11}, {"deliver", 1, 1, 12},
	}
	tests := []struct {
		name  string
		steps []step
		want  verdict
	}{
		{"clean", clean, verdict{Sent: 3, Acked: 3}},
		{"delivery before ack is fine", []step{
			{"send", 0, 0, 0}, {"deliver", 1, 0, 1}, {"ack", 0, 0, 1},
		}, verdict{Sent: 1, Acked: 1}},
		{"lost", []step{
			{"send", 0, 0, 0}, {"send", 0, 1, 0}, {"ack", 0, 0, 1}, {"ack", 0, 1, 2}, {"deliver", 1, 0, 1},
		}, verdict{Sent: 2, Acked: 2, Lost: 1}},
		{"duplicate", append(append([]step{}, clean...), step{"deliver", 1, 1, 12}),
			verdict{Sent: 3, Acked: 3, Duplicated: 1}},
		{"out of order", []step{
			{"send", 0, 0, 0}, {"send", 0, 1, 0}, {"ack", 0, 0, 1}, {"ack", 0, 1, 2},
			{"deliver", 1, 1, 2}, {"deliver", 1, 0, 1},
		}, verdict{Sent: 2, Acked: 2, OutOfOrder: 1}},
		{"gap in seqs", []step{
			{"send", 0, 0, 0}, {"send", 0, 1, 0}, {"ack", 0, 0, 1}, {"ack", 0, 1, 3},
			{"deliver", 1, 0, 1}, {"deliver", 1, 1, 3},
		}, verdict{Sent: 2, Acked: 2, Gaps: 1}},
		{"delivered with another seq than acked", []step{
			{"send", 0, 0, 0}, {"ack", 0, 0, 5}, {"deliver", 1, 0, 6},
		}, verdict{Sent: 1, Acked: 1, SeqErrors: 1}},
		{"acked with another seq than delivered", []step{
			{"send", 0, 0, 0}, {"deliver", 1, 0, 6}, {"ack", 0, 0, 5},
		}, verdict{Sent: 1, Acked: 1, SeqErrors: 1}},
		{"two messages with one seq", []step{
			{"send", 0, 0, 0}, {"send", 1, 0, 0}, {"ack", 0, 0, 4}, {"ack", 1, 0, 4},
			{"deliver", 1, 0, 4}, {"deliver", 0, 0, 4},
		}, verdict{Sent: 2, Acked: 2, SeqErrors: 1}},
		{"refused is not lost", []step{
			{"send", 0, 0, 0}, {"refuse", 0, 0, 0},
		}, verdict{Sent: 1}},
		{"refused but delivered", []step{
			{"send", 0, 0, 0}, {"refuse", 0, 0, 0}, {"deliver", 1, 0, 1},
		}, verdict{Sent: 1, Unexpected: 1}},
		{"delivered then refused", []step{
			{"send", 0, 0, 0}, {"deliver", 1, 0, 1}, {"refuse", 0, 0, 0},
		}, verdict{Sent: 1, Unexpected: 1}},
		{"second ack", []step{
			{"send", 0, 0, 0}, {"ack", 0, 0, 1}, {"ack", 0, 0, 1}, {"deliver", 1, 0, 1},
		}, verdict{Sent: 1, Acked: 1, Unexpected: 1}},
		{"ack of a message never sent", []step{{"ack", 0, 7, 1}}, verdict{Unexpected: 1}},
		{"delivery of a message never sent", []step{{"deliver", 1, 3, 1}}, verdict{Unexpected: 1}},
		{"foreign delivery", []step{{"foreign", 0, 0, 0}}, verdict{Unexpected: 1}},
		{"no answer", []step{{"send", 0, 0, 0}}, verdict{Sent: 1, Unacked: 1}},
		{"no answer but delivered fills its seq", []step{
			{"send", 0, 0, 0}, {"send", 0, 1, 0}, {"send", 0, 2, 0},
			{"ack", 0, 0, 1}, {"ack", 0, 2, 3},
			{"deliver", 1, 0, 1}, {"deliver", 1, 1, 2}, {"deliver", 1, 2, 3},
		}, verdict{Sent: 3, Acked: 2, Unacked: 1}},
		{"hole of an unanswered message is not a gap too", []step{
			{"send", 0, 0, 0}, {"send", 0, 1, 0}, {"send", 0, 2, 0},
			{"ack", 0, 0, 1}, {"ack", 0, 2, 3},
			{"deliver", 1, 0, 1}, {"deliver", 1, 2, 3},
		}, verdict{Sent: 3, Acked: 2, Unacked: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l ledger
			for i, s := range tt.steps {
				switch s.op {
				case "send":
					require.Equal(t, s.n, l.sent(s.side, int64(i)), "message numbers count from 0 per side")
				case "ack":
					l.ack(s.side, s.n, s.seq)
				case "refuse":
					l.refuse(s.side, s.n)
				case "deliver":
					l.delivered(s.side, s.n, s.seq)
				case "foreign":
					l.foreign()
				default:
					t.Fatalf("unknown op %q", s.op)
				}
			}
			got := l.verify()
			require.Equal(t, tt.want, got)
			// The running counts agree with the records.
			unacked, undelivered := l.outstanding()
			require.EqualValues(t, got.Unacked, unacked)
			require.EqualValues(t, got.Lost, undelivered)
			require.Equal(t, tt.want.failures() == 0, got.failures() == 0)
		})
	}
}

func TestLedgerAckReturnsSendTime(t *testing.T) {
	var l ledger
	n := l.sent(1, 12345)
	at, ok := l.ack(1, n, 1)
	require.True(t, ok)
	require.EqualValues(t, 12345, at)
	_, ok = l.ack(1, n, 1)
	require.False(t, ok, "a second answer must not release the window again")
	require.False(t, l.refuse(1, n))
}

func TestLedgerOutstanding(t *testing.T) {
	var l ledger
	l.sent(0, 0)
	l.sent(0, 0)
	l.sent(1, 0)
	a, d := l.outstanding()
	require.Equal(t, 3, a)
	require.Equal(t, 0, d)
	l.ack(0, 0, 1)
	l.ack(0, 1, 2)
	l.refuse(1, 0)
	a, d = l.outstanding()
	require.Equal(t, 0, a)
	require.Equal(t, 2, d)
	l.delivered(1, 0, 1)
	l.delivered(1, 1, 2)
	a, d = l.outstanding()
	require.Equal(t, 0, a+d)
	first, ok := l.firstSeq(0)
	require.True(t, ok)
	require.EqualValues(t, 1, first)
	_, ok = l.firstSeq(1)
	require.False(t, ok)
}

func TestLedgerConcurrent(t *testing.T) {
	var l ledger
	var wg sync.WaitGroup
	const per = 500
	for side := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				l.sent(side, 0)
			}
		}()
	}
	wg.Wait()
	// Seqs interleave the two sides: side 0 gets odd ones, side 1 even.
	for side := range 2 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for n := range per {
				l.ack(side, n, int64(2*n+1+side))
			}
		}()
		go func() {
			defer wg.Done()
			for n := range per {
				l.delivered(1-side, n, int64(2*n+1+side))
			}
		}()
	}
	wg.Wait()
	require.Equal(t, verdict{Sent: 2 * per, Acked: 2 * per}, l.verify())
}
