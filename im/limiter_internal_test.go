package im

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// allowN takes all of n or nothing, never more than the burst, and a clock
// that steps back neither refills nor drains a bucket.
func TestUserLimiterAllowN(t *testing.T) {
	l := newUserLimiter(1, 60) // 60 a minute
	t0 := time.Now()
	require.False(t, l.allowN("a", 61, t0), "more than the burst, ever")
	require.True(t, l.allowN("a", 50, t0))
	require.False(t, l.allowN("a", 11, t0), "a refusal takes nothing")
	require.True(t, l.allowN("a", 10, t0))
	require.False(t, l.allow("a", t0))
	require.False(t, l.allow("a", t0.Add(-time.Hour)), "a clock stepping back refills nothing")
	require.True(t, l.allowN("a", 5, t0.Add(5*time.Second)))
	require.True(t, l.allowN("a", 0, t0), "nothing to take")
	require.True(t, l.allowN("b", 60, t0), "b has a bucket of its own")
}

// BenchmarkUserLimiter is the cost the send path pays per message for the
// per-user bucket, with many users sending at once.
func BenchmarkUserLimiter(b *testing.B) {
	l := newUserLimiter(1e9, 2e9)
	users := make([]string, 256)
	for i := range users {
		users[i] = fmt.Sprintf("user%d", i)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if !l.allow(users[i%len(users)], time.Now()) {
				b.Fatal("refused")
			}
			i++
		}
	})
}
