package httpapi

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
)

// The ring keeps the last AdminHistoryLen points, each with its rates over
// the time since the sample before it.
func TestHistoryRing(t *testing.T) {
	var st im.Stats
	h := &history{stats: func() im.Stats { return st }, interval: 2 * time.Second, ring: make([]rawSample, 0, AdminHistoryLen+1)}
	require.Empty(t, h.points(0))

	t0 := time.UnixMilli(1_700_000_000_000)
	const n = AdminHistoryLen + 50
	for i := range n {
		st.Connections = int64(i)
		st.MessagesStored += 10      // 5 per second
		st.Commits += 2              // 1 per second
		st.CommitTime += 4 * 1000000 // 2 ms each
		st.FramesIn += 20
		if i == n-1 {
			st.Commits -= 2 // none in the last interval
			st.CommitTime -= 4 * 1000000
		}
		h.sample(t0.Add(time.Duration(i) * 2 * time.Second))
	}
	pts := h.points(0)
	require.Len(t, pts, AdminHistoryLen)
	first := n - AdminHistoryLen
	for i, p := range pts {
		require.Equal(t, t0.Add(time.Duration(first+i)*2*time.Second).UnixMilli(), p.T)
		require.Equal(t, int64(first+i), p.Connections)
		require.InDelta(t, 5, p.MessagesPerSec, 1e-9)
		require.InDelta(t, 10, p.FramesInPerSec, 1e-9)
		if i < len(pts)-1 {
			require.InDelta(t, 1, p.CommitsPerSec, 1e-9)
			require.InDelta(t, 2, p.CommitMillis, 1e-9)
		}
	}
	last := pts[len(pts)-1]
	require.Zero(t, last.CommitsPerSec)
	require.Zero(t, last.CommitMillis)

	// since: only the points after it.
	require.Len(t, h.points(pts[len(pts)-3].T), 2)
	require.Empty(t, h.points(last.T))
}
