package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
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
