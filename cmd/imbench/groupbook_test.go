package main

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// A group of three: member 0 sends, members 1 and 2 receive. In steps,
// side is the sender for send/ack/refuse and the receiving member for
// deliver; n is the group-wide message number.
func TestGroupBookVerdicts(t *testing.T) {
	// Two messages, seqs 2 and 3 (seq 1 is the group's creation notice),
	// each delivered once to both receivers, in order.
	clean := []step{
		{"send", 0, 0, 0}, {"send", 0, 1, 0},
		{"ack", 0, 0, 2}, {"ack", 0, 1, 3},
		{"deliver", 1, 0, 2}, {"deliver", 2, 0, 2}, {"deliver", 1, 1, 3}, {"deliver", 2, 1, 3},
	}
	tests := []struct {
		name  string
		steps []step
		want  verdict
	}{
		{"clean", clean, verdict{Sent: 2, Acked: 2}},
		{"delivery before ack is fine", []step{
			{"send", 0, 0, 0}, {"deliver", 1, 0, 5}, {"ack", 0, 0, 5}, {"deliver", 2, 0, 5},
		}, verdict{Sent: 1, Acked: 1}},
		{"one member misses one message", clean[:7], verdict{Sent: 2, Acked: 2, Lost: 1}},
		{"nobody gets it", clean[:4], verdict{Sent: 2, Acked: 2, Lost: 4}},
		{"one member gets one twice", append(clean[:len(clean):len(clean)], step{"deliver", 2, 0, 2}),
			verdict{Sent: 2, Acked: 2, Duplicated: 1}},
		{"one member gets them out of order", []step{
			{"send", 0, 0, 0}, {"send", 0, 1, 0}, {"ack", 0, 0, 2}, {"ack", 0, 1, 3},
			{"deliver", 1, 0, 2}, {"deliver", 1, 1, 3}, {"deliver", 2, 1, 3}, {"deliver", 2, 0, 2},
		}, verdict{Sent: 2, Acked: 2, OutOfOrder: 1}},
		{"pushed back to its sender", append(clean[:len(clean):len(clean)], step{"deliver", 0, 1, 3}),
			verdict{Sent: 2, Acked: 2, Unexpected: 1}},
		{"delivered with another seq than acked", []step{
			{"send", 0, 0, 0}, {"ack", 0, 0, 4}, {"deliver", 1, 0, 4}, {"deliver", 2, 0, 5},
		}, verdict{Sent: 1, Acked: 1, SeqErrors: 1}},
		{"acked with another seq than delivered", []step{
			{"send", 0, 0, 0}, {"deliver", 1, 0, 5}, {"deliver", 2, 0, 5}, {"ack", 0, 0, 4},
		}, verdict{Sent: 1, Acked: 1, SeqErrors: 1}},
		{"members given different seqs, counted once per message", []step{
			{"send", 0, 0, 0}, {"deliver", 1, 0, 5}, {"deliver", 2, 0, 6}, {"ack", 0, 0, 7},
		}, verdict{Sent: 1, Acked: 1, SeqErrors: 1}},
		{"two messages with one seq", []step{
			{"send", 0, 0, 0}, {"send", 0, 1, 0}, {"ack", 0, 0, 2}, {"ack", 0, 1, 2},
			{"deliver", 1, 0, 2}, {"deliver", 2, 0, 2}, {"deliver", 1, 1, 2}, {"deliver", 2, 1, 2},
		}, verdict{Sent: 2, Acked: 2, SeqErrors: 1, OutOfOrder: 2}},
		{"gap in seqs", []step{
			{"send", 0, 0, 0}, {"send", 0, 1, 0}, {"ack", 0, 0, 2}, {"ack", 0, 1, 4},
			{"deliver", 1, 0, 2}, {"deliver", 2, 0, 2}, {"deliver", 1, 1, 4}, {"deliver", 2, 1, 4},
		}, verdict{Sent: 2, Acked: 2, Gaps: 1}},
		{"refused is not lost", []step{{"send", 0, 0, 0}, {"refuse", 0, 0, 0}}, verdict{Sent: 1}},
		{"refused but delivered", []step{
			{"send", 0, 0, 0}, {"refuse", 0, 0, 0}, {"deliver", 1, 0, 2},
		}, verdict{Sent: 1, Unexpected: 1}},
		{"ack by another member", []step{{"send", 0, 0, 0}, {"ack", 1, 0, 2}}, verdict{Sent: 1, Unacked: 1, Unexpected: 1}},
		{"second ack", []step{
			{"send", 0, 0, 0}, {"ack", 0, 0, 2}, {"ack", 0, 0, 2}, {"deliver", 1, 0, 2}, {"deliver", 2, 0, 2},
		}, verdict{Sent: 1, Acked: 1, Unexpected: 1}},
		{"delivery of a message never sent", []step{{"deliver", 1, 3, 2}}, verdict{Unexpected: 1}},
		{"foreign delivery", []step{{"foreign", 2, 0, 0}}, verdict{Unexpected: 1}},
		{"no answer", []step{{"send", 0, 0, 0}}, verdict{Sent: 1, Unacked: 1}},
		{"hole of an unanswered message is not a gap too", []step{
			{"send", 0, 0, 0}, {"send", 0, 1, 0}, {"send", 0, 2, 0},
			{"ack", 0, 0, 2}, {"ack", 0, 2, 4},
			{"deliver", 1, 0, 2}, {"deliver", 2, 0, 2}, {"deliver", 1, 2, 4}, {"deliver", 2, 2, 4},
		}, verdict{Sent: 3, Acked: 2, Unacked: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newGroupBook(3)
			for i, s := range tt.steps {
				m := b.member(s.side)
				switch s.op {
				case "send":
					require.Equal(t, s.n, m.sent(int64(i)), "message numbers count from 0 across the group")
				case "ack":
					m.acked(s.n, s.seq)
				case "refuse":
					m.refused(s.n)
				case "deliver":
					m.delivered(s.n, s.seq)
				case "foreign":
					m.foreign()
				default:
					t.Fatalf("unknown op %q", s.op)
				}
			}
			got := b.verify()
			require.Equal(t, tt.want, got)
			unacked, undelivered := b.outstanding()
			require.EqualValues(t, got.Unacked, unacked)
			if got.Duplicated+got.Unexpected == 0 {
				require.EqualValues(t, got.Lost, undelivered)
			}
		})
	}
}

func TestGroupBookAckReturnsSendTime(t *testing.T) {
	b := newGroupBook(2)
	n := b.member(1).sent(12345)
	at, ok := b.member(1).acked(n, 1)
	require.True(t, ok)
	require.EqualValues(t, 12345, at)
	_, ok = b.member(1).acked(n, 1)
	require.False(t, ok, "a second answer must not release the window again")
	require.False(t, b.member(1).refused(n))
}

// The table keeps every record in place as it grows across chunks.
func TestMsgTableChunks(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 191, 192, 1000, 1 << 20} {
		c, i := chunkOf(n)
		require.Less(t, i, firstChunk<<c, "n=%d", n)
		start := firstChunk * (1<<c - 1)
		require.Equal(t, n, start+i, "n=%d", n)
	}
	var tab msgTable
	const total = 5000
	for k := range total {
		require.Equal(t, k, tab.add(int32(k%7), int64(k)))
	}
	require.Nil(t, tab.get(total))
	require.Nil(t, tab.get(-1))
	for k := range total {
		g := tab.get(k)
		require.EqualValues(t, k%7, g.sender)
		require.EqualValues(t, k, g.sentAt)
	}
}

// Senders append while every member's reader looks messages up: run with
// -race.
func TestGroupBookConcurrent(t *testing.T) {
	const members, senders, per = 8, 2, 300
	b := newGroupBook(members)
	type sent struct{ sender, n int }
	order := make(chan sent, senders*per)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				// The server's order is the order of recording here.
				mu.Lock()
				order <- sent{s, b.member(s).sent(0)}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(order)
	var all []sent
	for s := range order {
		all = append(all, s)
	}
	for j := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq, s := range all {
				if s.sender == j {
					b.member(j).acked(s.n, int64(seq+2))
				} else {
					b.member(j).delivered(s.n, int64(seq+2))
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, verdict{Sent: senders * per, Acked: senders * per}, b.verify())
	unacked, undelivered := b.outstanding()
	require.Zero(t, unacked+undelivered)
}
