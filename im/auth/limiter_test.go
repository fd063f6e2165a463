package auth

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func allowed(l *limiter, key string, now time.Time) bool {
	ok, _ := l.acquire(key, now)
	return ok
}

func TestLimiterWindow(t *testing.T) {
	l := newLimiter(2, time.Minute, DefaultMaxTracked)
	now := testEpoch
	require.True(t, allowed(l, "a", now))
	require.True(t, allowed(l, "a", now.Add(10*time.Second)))
	ok, wait := l.acquire("a", now.Add(20*time.Second))
	require.False(t, ok)
	require.Equal(t, 40*time.Second, wait, "the wait runs to the window's end")
	require.True(t, allowed(l, "b", now.Add(20*time.Second)), "keys are independent")

	// The window runs from the first attempt.
	require.False(t, allowed(l, "a", now.Add(time.Minute-time.Nanosecond)))
	require.True(t, allowed(l, "a", now.Add(time.Minute)))

	// release gives one attempt back; reset all of them.
	later := now.Add(time.Hour)
	require.True(t, allowed(l, "c", later))
	require.True(t, allowed(l, "c", later))
	l.release("c")
	require.True(t, allowed(l, "c", later))
	require.False(t, allowed(l, "c", later))
	l.reset("c")
	require.True(t, allowed(l, "c", later))

	// A clock that steps back does not lock a key out for longer.
	require.True(t, allowed(l, "d", later))
	require.True(t, allowed(l, "d", later))
	require.False(t, allowed(l, "d", later))
	require.True(t, allowed(l, "d", later.Add(-time.Hour)))
}

// Many one-off keys over time stay within the bound: windows that have
// passed make room for new keys.
func TestLimiterReusesExpired(t *testing.T) {
	l := newLimiter(5, time.Minute, 16*8)
	now := testEpoch
	for round := range 10 {
		for i := range 20 {
			require.True(t, allowed(l, fmt.Sprintf("r%d-%d", round, i), now))
		}
		now = now.Add(time.Minute)
	}
	require.LessOrEqual(t, l.size(), 16*8)
}

// Spraying new keys never makes the table forget a key whose window is
// open: when a shard is full of open windows, new keys are refused instead.
func TestLimiterFullKeepsOpenWindows(t *testing.T) {
	const maxKeys = 16 * 2
	l := newLimiter(1, time.Hour, maxKeys)
	now := testEpoch
	require.True(t, allowed(l, "first", now))
	require.False(t, allowed(l, "first", now))
	refused := 0
	for i := range 1000 {
		if ok, wait := l.acquire(fmt.Sprintf("k%d", i), now.Add(time.Duration(i+1)*time.Millisecond)); !ok {
			refused++
			require.Positive(t, wait)
		}
	}
	require.Positive(t, refused, "a full table refuses new keys")
	require.LessOrEqual(t, l.size(), maxKeys)
	require.False(t, allowed(l, "first", now.Add(time.Minute)), "the open window is kept")
	require.True(t, l.exceeded("another-new-key", now.Add(time.Minute)) || l.size() < maxKeys)

	// Once the windows have passed there is room again.
	require.True(t, allowed(l, "late", now.Add(2*time.Hour)))
	require.True(t, allowed(l, "first", now.Add(2*time.Hour)))
}
