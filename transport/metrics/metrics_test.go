package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/transport/metrics"
)

func TestCollector(t *testing.T) {
	st := im.Stats{Connections: 3, Sessions: 2, MessagesStored: 7, CommitTime: 1500 * time.Millisecond, SlowConsumers: 1}
	c := metrics.NewCollector(func() im.Stats { return st })

	// An embedder's registry takes it beside its own metrics, and its
	// descriptions are consistent with what it collects.
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(c))
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	require.Empty(t, problems)

	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP imserver_connections Open client connections.
# TYPE imserver_connections gauge
imserver_connections 3
# HELP imserver_messages_stored_total New messages committed.
# TYPE imserver_messages_stored_total counter
imserver_messages_stored_total 7
# HELP imserver_store_commit_seconds_total Time spent in store commits.
# TYPE imserver_store_commit_seconds_total counter
imserver_store_commit_seconds_total 1.5
# HELP imserver_slow_consumers_total Connections closed because their queue was full.
# TYPE imserver_slow_consumers_total counter
imserver_slow_consumers_total 1
`), "imserver_connections", "imserver_messages_stored_total", "imserver_store_commit_seconds_total", "imserver_slow_consumers_total"))

	// Each scrape reads Stats anew.
	st.MessagesStored = 8
	require.Equal(t, 8.0, testutil.ToFloat64(onlyMessagesStored{c}))

	// Registering the same collector twice is refused, not doubled.
	require.Error(t, reg.Register(metrics.NewCollector(func() im.Stats { return st })))
}

// onlyMessagesStored narrows a collector to one metric for ToFloat64.
type onlyMessagesStored struct{ prometheus.Collector }

func (o onlyMessagesStored) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() { o.Collector.Collect(all); close(all) }()
	for m := range all {
		if strings.Contains(m.Desc().String(), `"imserver_messages_stored_total"`) {
			ch <- m
		}
	}
}

func TestHandler(t *testing.T) {
	reg := metrics.NewRegistry(func() im.Stats { return im.Stats{Sessions: 4} })
	srv := httptest.NewServer(metrics.NewHandler(reg))
	defer srv.Close()
	rsp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer rsp.Body.Close()
	require.Equal(t, http.StatusOK, rsp.StatusCode)
	n, err := testutil.GatherAndCount(reg, "imserver_sessions", "go_goroutines")
	require.NoError(t, err)
	require.Equal(t, 2, n)
}

func TestCollectorLabelsAndHistograms(t *testing.T) {
	st := im.Stats{
		OnlineUsers:            5,
		QueuedFrames:           12,
		LargestQueueBytes:      4096,
		ConnectionsByTransport: map[string]int64{"tcp": 2, "websocket": 1, "other": 0},
		SessionsByPlatform:     map[string]int64{"ios": 1, "android": 0},
		MessagesByType:         map[string]uint64{"text": 9, "custom": 1},
		SendsRefusedByCode:     map[string]uint64{"ERR_SEND_TOO_FAST": 3},
		SendLatency:            im.Histogram{Bounds: []float64{0.001, 0.01}, Counts: []uint64{1, 3}, Count: 4, Sum: 0.5},
		QueueDelay:             im.Histogram{Bounds: []float64{0.0001}, Counts: []uint64{2}, Count: 2, Sum: 0.0001},
		BatchSyncSeconds:       im.Histogram{Bounds: []float64{0.01}, Counts: []uint64{1}, Count: 1, Sum: 0.002},
		SyncRangeSeconds:       im.Histogram{Bounds: []float64{0.01}, Counts: []uint64{0}, Count: 1, Sum: 0.5},
	}
	c := metrics.NewCollector(func() im.Stats { return st })
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	require.Empty(t, problems)

	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP imserver_online_users Users with at least one authenticated session on this server.
# TYPE imserver_online_users gauge
imserver_online_users 5
# HELP imserver_queued_frames Frames waiting to be written to the authenticated sessions.
# TYPE imserver_queued_frames gauge
imserver_queued_frames 12
# HELP imserver_queue_largest_bytes Bytes waiting in the heaviest queue of one session.
# TYPE imserver_queue_largest_bytes gauge
imserver_queue_largest_bytes 4096
# HELP imserver_connections_by_transport Open client connections by transport.
# TYPE imserver_connections_by_transport gauge
imserver_connections_by_transport{transport="other"} 0
imserver_connections_by_transport{transport="tcp"} 2
imserver_connections_by_transport{transport="websocket"} 1
# HELP imserver_sessions_by_platform Authenticated sessions by the platform the client reported.
# TYPE imserver_sessions_by_platform gauge
imserver_sessions_by_platform{platform="android"} 0
imserver_sessions_by_platform{platform="ios"} 1
# HELP imserver_messages_stored_by_type_total New messages committed, by message type.
# TYPE imserver_messages_stored_by_type_total counter
imserver_messages_stored_by_type_total{type="custom"} 1
imserver_messages_stored_by_type_total{type="text"} 9
# HELP imserver_sends_refused_by_code_total Sends answered with an error, by protocol error code.
# TYPE imserver_sends_refused_by_code_total counter
imserver_sends_refused_by_code_total{code="ERR_SEND_TOO_FAST"} 3
# HELP imserver_send_ack_duration_seconds Client sends that reached a commit, by the time from their frame being read to their acknowledgement being queued.
# TYPE imserver_send_ack_duration_seconds histogram
imserver_send_ack_duration_seconds_bucket{le="0.001"} 1
imserver_send_ack_duration_seconds_bucket{le="0.01"} 3
imserver_send_ack_duration_seconds_bucket{le="+Inf"} 4
imserver_send_ack_duration_seconds_sum 0.5
imserver_send_ack_duration_seconds_count 4
# HELP imserver_queue_delay_seconds Batches written to clients, by how long their oldest frame can have waited in the connection's queue.
# TYPE imserver_queue_delay_seconds histogram
imserver_queue_delay_seconds_bucket{le="0.0001"} 2
imserver_queue_delay_seconds_bucket{le="+Inf"} 2
imserver_queue_delay_seconds_sum 0.0001
imserver_queue_delay_seconds_count 2
# HELP imserver_sync_duration_seconds Sync requests by handling time, from the frame being read to the response being queued.
# TYPE imserver_sync_duration_seconds histogram
imserver_sync_duration_seconds_bucket{request="batch_sync",le="0.01"} 1
imserver_sync_duration_seconds_bucket{request="batch_sync",le="+Inf"} 1
imserver_sync_duration_seconds_sum{request="batch_sync"} 0.002
imserver_sync_duration_seconds_count{request="batch_sync"} 1
imserver_sync_duration_seconds_bucket{request="sync_range",le="0.01"} 0
imserver_sync_duration_seconds_bucket{request="sync_range",le="+Inf"} 1
imserver_sync_duration_seconds_sum{request="sync_range"} 0.5
imserver_sync_duration_seconds_count{request="sync_range"} 1
`), "imserver_online_users", "imserver_queued_frames", "imserver_queue_largest_bytes",
		"imserver_connections_by_transport", "imserver_sessions_by_platform",
		"imserver_messages_stored_by_type_total", "imserver_sends_refused_by_code_total",
		"imserver_send_ack_duration_seconds", "imserver_queue_delay_seconds", "imserver_sync_duration_seconds"))
}

// A collector over a real Server: every label a core counter has is there
// from the start, at zero.
func TestCollectorServer(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	reg := metrics.NewRegistry(srv.Stats)
	n, err := testutil.GatherAndCount(reg, "imserver_connections_by_transport", "imserver_sessions_by_platform",
		"imserver_messages_stored_by_type_total", "imserver_sends_refused_by_code_total")
	require.NoError(t, err)
	require.Equal(t, 3+8+11+9, n)
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}

// docs/METRICS.md lists every metric the collector makes.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/METRICS.md")
	require.NoError(t, err)
	descs := make(chan *prometheus.Desc)
	go func() {
		metrics.NewCollector(func() im.Stats { return im.Stats{} }).Describe(descs)
		metrics.NewRequestDurations().Describe(descs)
		close(descs)
	}()
	n := 0
	for d := range descs {
		name := regexp.MustCompile(`fqName: "([^"]+)"`).FindStringSubmatch(d.String())
		require.Len(t, name, 2, d.String())
		require.Contains(t, string(doc), "`"+name[1]+"`", "docs/METRICS.md does not list %s", name[1])
		n++
	}
	require.Greater(t, n, 30)
}
