package im

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"github.com/stretchr/testify/require"
)

// Signals queued behind a blocked write are replaced by newer ones with the
// same key, dropped when the queue is full, and given up to make room for
// a message; none of that closes the session, and the counts add up.
func TestSignalsQueuedForABlockedWriter(t *testing.T) {
	gate := make(chan struct{})
	s := &session{
		srv:  &Server{cfg: Config{WriteTimeout: 10 * time.Second, SendQueue: 4, SendQueueBytes: 1000}},
		conn: gateConn{gate: gate},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer s.cancel()
	frame := func(n int) Frame { return Frame{Body: make([]byte, n-frameOverhead)} }
	typing := func(n int) Frame {
		return Frame{Command: imv1.CommandType_CMD_TYPING_STATUS_PUSH, Body: make([]byte, n-frameOverhead)}
	}
	key := func(from string) signalKey {
		return signalKey{cmd: imv1.CommandType_CMD_TYPING_STATUS_PUSH, from: from, conv: "c"}
	}

	require.True(t, s.enqueue(frame(100))) // taken by the writer, which waits at the gate
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.queue) == 0
	}, 5*time.Second, time.Millisecond)

	for range 1000 {
		s.enqueueSignal(typing(50), key("a"))
	}
	s.enqueueSignal(typing(60), key("a"))
	s.mu.Lock()
	require.Len(t, s.queue, 1, "one signal per sender and conversation waits")
	require.Equal(t, 60, frameCost(s.queue[0]), "the newest")
	require.Equal(t, backlog{2, 160}, s.pushed)
	s.mu.Unlock()
	require.EqualValues(t, 1000, s.srv.stats.signalsDropped.Load())

	s.enqueueSignal(typing(50), key("b"))
	require.True(t, s.enqueue(frame(100)))
	s.enqueueSignal(typing(50), key("c")) // over SendQueue: dropped
	require.EqualValues(t, 1001, s.srv.stats.signalsDropped.Load())
	s.mu.Lock()
	require.Equal(t, backlog{4, 310}, s.pushed)
	s.mu.Unlock()

	// A message at the bound takes the waiting signals' room.
	require.True(t, s.enqueue(frame(100)))
	require.False(t, s.isClosed())
	require.EqualValues(t, 1003, s.srv.stats.signalsDropped.Load())
	s.mu.Lock()
	require.Equal(t, backlog{3, 300}, s.pushed)
	require.Len(t, s.queue, 2)
	require.Empty(t, s.signals)
	s.mu.Unlock()

	// With no signal left to give up, the bound holds as before.
	require.True(t, s.enqueue(frame(100)))
	require.False(t, s.enqueue(frame(100)))
	require.ErrorIs(t, s.reason(), ErrSlowConsumer)
	close(gate)
	s.writer.Wait()
}

// The limiter holds one bucket per user who signalled lately, forgets
// refilled ones, and holds no more than its cap however many users signal.
func TestSignalLimiterIsPerUserAndBounded(t *testing.T) {
	l := newUserLimiter(5, 10)
	t0 := time.Now()
	for i := range 10 {
		require.True(t, l.allow("a", t0), "burst %d", i)
	}
	require.False(t, l.allow("a", t0))
	require.True(t, l.allow("b", t0), "another user has a bucket of its own")
	require.True(t, l.allow("a", t0.Add(200*time.Millisecond)), "one token every 1/rate")
	require.False(t, l.allow("a", t0.Add(200*time.Millisecond)))

	// Far more users than the cap, all at once: bounded, and newcomers
	// refused once it is full.
	refused := 0
	for i := range 64 * userLimiterShardCap * 2 {
		if !l.allow(fmt.Sprint("u", i), t0) {
			refused++
		}
	}
	require.LessOrEqual(t, l.size(), 64*userLimiterShardCap)
	require.Positive(t, refused)
	// Once the buckets have refilled, there is room again.
	later := t0.Add(l.refill())
	require.True(t, l.allow("newcomer", later))
	require.Less(t, l.size(), 64*userLimiterShardCap)

	require.True(t, newUserLimiter(-1, 0).allow("a", t0), "negative: unlimited")
}
