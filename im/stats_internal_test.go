package im

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im/imv1"
)

func TestHistogramBuckets(t *testing.T) {
	require.LessOrEqual(t, len(commitBounds), maxBuckets)
	require.LessOrEqual(t, len(batchBounds), maxBuckets)
	var h histogram
	bounds := []uint64{1, 4, 16}
	for _, v := range []uint64{0, 1, 2, 4, 5, 16, 17, 1000} {
		h.observe(bounds, v)
	}
	require.Equal(t, Histogram{
		Bounds: []float64{0.5, 2, 8},
		Counts: []uint64{2, 4, 6}, // cumulative: ≤1, ≤4, ≤16
		Count:  8,
		Sum:    (0 + 1 + 2 + 4 + 5 + 16 + 17 + 1000) * 0.5,
	}, h.snapshot(bounds, 0.5))
}

func TestNewHistogramBounds(t *testing.T) {
	for _, b := range [][]uint64{latencyBounds, queueDelayBounds, syncBounds} {
		require.LessOrEqual(t, len(b), maxBuckets)
		require.True(t, slices.IsSorted(b))
	}
}

// The labels of the counters kept by index are fixed sets: whatever a
// client sends lands in one of them.
func TestLabelIndexes(t *testing.T) {
	for in, want := range map[string]string{"tcp": "tcp", "websocket": "websocket", "quic": "other", "": "other"} {
		require.Equal(t, want, transportNames[transportIndex(in)], in)
	}
	for in, want := range map[string]string{"iOS": "ios", "ANDROID": "android", "web": "web", "macOS": "macos", "Windows": "windows", "linux": "linux", "": "none", "go": "other", "iOS\x00": "other"} {
		require.Equal(t, want, platformNames[platformIndex(in)], in)
	}
	for in, want := range map[MessageType]string{0: "unknown", TextMessage: "text", ImageMessage: "image", NotificationMessage: "notification", 9: "other", 99: "other", -1: "other", CustomMessage: "custom", 1 << 30: "custom"} {
		require.Equal(t, want, typeNames[typeIndex(in)], in)
	}
	for _, code := range refusalCodes {
		require.Equal(t, code, refusalCodes[refusalIndex(code)])
	}
	require.Equal(t, imv1.ErrorCode_ERR_UNKNOWN, refusalCodes[refusalIndex(999)])
	// Every code a refusal can carry has its own label.
	for c := CodeUnknown; c <= CodeRateLimited; c++ {
		require.Equal(t, wireCode(c), refusalCodes[refusalIndex(wireCode(c))], c)
	}
}

// The queue figures add up the open registered sessions' backlogs, and a
// batch taken by a writer is timed.
func TestQueueFigures(t *testing.T) {
	srv := &Server{cfg: Config{WriteTimeout: 10 * time.Second, SendQueue: 100, SendQueueBytes: 10000}}
	gate := make(chan struct{})
	h := &srv.hub
	srv.presence = newLocalPresence(0, func(Presence) {})
	newSession := func(user string) *session {
		s := &session{srv: srv, conn: gateConn{gate: gate}, user: user}
		s.ctx, s.cancel = context.WithCancel(context.Background())
		t.Cleanup(s.cancel)
		h.add(s, AllowAllDevices, 10, 0)
		return s
	}
	frame := func(n int) Frame { return Frame{Body: make([]byte, n-frameOverhead)} }
	a, b, c := newSession("a"), newSession("b"), newSession("b")
	require.EqualValues(t, 2, h.users.Load())
	require.True(t, a.enqueue(frame(100)))
	require.True(t, a.enqueue(frame(100)))
	require.True(t, a.enqueue(frame(100)))
	require.True(t, b.enqueue(frame(500)))
	require.True(t, c.enqueue(frame(200)))
	c.close(nil) // what a closed session held is never sent
	require.Equal(t, queueFigures{total: backlog{4, 800}, largest: backlog{3, 500}}, h.queues())
	st := srv.Stats()
	require.Equal(t, []int64{4, 800, 3, 500}, []int64{st.QueuedFrames, st.QueuedBytes, st.LargestQueueFrames, st.LargestQueueBytes})
	// Counters is the same without the walk of every session.
	st = srv.Counters()
	require.Equal(t, []int64{0, 0, 0, 0}, []int64{st.QueuedFrames, st.QueuedBytes, st.LargestQueueFrames, st.LargestQueueBytes})
	require.EqualValues(t, 2, st.OnlineUsers)

	close(gate)
	for _, s := range []*session{a, b, c} {
		s.writer.Wait()
	}
	require.Equal(t, queueFigures{}, h.queues())
	delays := srv.stats.queueDelay.snapshot(queueDelayBounds, 1e-9)
	require.GreaterOrEqual(t, delays.Count, uint64(2), "a's and b's batches")

	h.remove(c)
	require.EqualValues(t, 2, h.users.Load(), "b has a session left")
	h.remove(b)
	h.remove(b) // twice changes nothing
	require.EqualValues(t, 1, h.users.Load())
	h.remove(a)
	require.Zero(t, h.users.Load())
}

// BenchmarkQueueFigures is a scrape's walk over the sessions' queues, at
// 100,000 sessions.
func BenchmarkQueueFigures(b *testing.B) {
	var h hub
	srv := &Server{}
	for i := range 100_000 {
		s := &session{srv: srv, user: "u" + strconv.Itoa(i)}
		s.queued = backlog{i % 7, 100 * (i % 7)}
		h.add(s, AllowAllDevices, 10, 0)
	}
	b.ResetTimer()
	for range b.N {
		if q := h.queues(); q.largest.frames != 6 {
			b.Fatal(q)
		}
	}
}

// A striped histogram reads as the sum of its stripes.
func TestStripedHistogram(t *testing.T) {
	var h stripedHistogram
	bounds := []uint64{10, 100}
	for i, v := range []uint64{1, 50, 500, 5, 99} {
		h.observe(uint8(i*3), bounds, v)
	}
	require.Equal(t, Histogram{Bounds: []float64{10, 100}, Counts: []uint64{2, 4}, Count: 5, Sum: 655}, h.snapshot(bounds, 1))
	require.Less(t, stripeOf(1), uint8(stripes))
}
