package auth

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLimiterWindow(t *testing.T) {
	l := newLimiter(2, time.Minute)
	now := testEpoch
	require.True(t, l.acquire("a", now))
	require.True(t, l.acquire("a", now.Add(10*time.Second)))
	require.False(t, l.acquire("a", now.Add(20*time.Second)))
	require.True(t, l.acquire("b", now.Add(20*time.Second)), "keys are independent")

	// The window runs from the first attempt.
	require.False(t, l.acquire("a", now.Add(time.Minute-time.Nanosecond)))
	require.True(t, l.acquire("a", now.Add(time.Minute)))

	// release gives one attempt back; reset all of them.
	later := now.Add(time.Hour)
	require.True(t, l.acquire("c", later))
	require.True(t, l.acquire("c", later))
	l.release("c")
	require.True(t, l.acquire("c", later))
	require.False(t, l.acquire("c", later))
	l.reset("c")
	require.True(t, l.acquire("c", later))

	// A clock that steps back does not lock a key out for longer.
	require.True(t, l.acquire("d", later))
	require.True(t, l.acquire("d", later))
	require.False(t, l.acquire("d", later))
	require.True(t, l.acquire("d", later.Add(-time.Hour)))
}

// Many one-off usernames over time do not pile up: expired windows are
// pruned.
func TestLimiterPrunes(t *testing.T) {
	l := newLimiter(5, time.Minute)
	now := testEpoch
	for round := range 10 {
		for i := range 100 {
			require.True(t, l.acquire(fmt.Sprintf("r%d-%d", round, i), now))
		}
		now = now.Add(time.Minute)
	}
	l.acquire("last", now)
	l.mu.Lock()
	n := len(l.entries)
	l.mu.Unlock()
	require.LessOrEqual(t, n, 101)
}

// Within one window the table is capped; the oldest window goes first.
func TestLimiterCap(t *testing.T) {
	l := newLimiter(1, time.Hour)
	l.maxKeys = 10
	now := testEpoch
	require.True(t, l.acquire("first", now))
	require.False(t, l.acquire("first", now))
	for i := range 20 {
		require.True(t, l.acquire(fmt.Sprintf("k%d", i), now.Add(time.Duration(i+1)*time.Second)))
	}
	l.mu.Lock()
	n := len(l.entries)
	l.mu.Unlock()
	require.Equal(t, 10, n)
	// "first" was the oldest and was forgotten; the newest is still held.
	require.True(t, l.acquire("first", now.Add(time.Minute)))
	require.False(t, l.acquire("k19", now.Add(time.Minute)))
}
