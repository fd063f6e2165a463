package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
)

// scrape reads url's metrics as a Prometheus server would, parsed by the
// Prometheus text parser rather than matched as text.
func scrape(t *testing.T, url, auth string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rsp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer rsp.Body.Close()
	require.Equal(t, http.StatusOK, rsp.StatusCode)
	require.Contains(t, rsp.Header.Get("Content-Type"), "text/plain")
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(rsp.Body)
	require.NoError(t, err)
	return families
}

// value is the one sample of a family without labels, checked to be of
// type kind.
func value(t *testing.T, families map[string]*dto.MetricFamily, name string, kind dto.MetricType) float64 {
	t.Helper()
	f, ok := families[name]
	require.True(t, ok, "no metric %s", name)
	require.Equal(t, kind, f.GetType(), name)
	require.Len(t, f.GetMetric(), 1, name)
	m := f.GetMetric()[0]
	switch kind {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	}
	t.Fatalf("metric %s: type %v not read", name, kind)
	return 0
}

func TestMetricsScrape(t *testing.T) {
	const token = "scrape-0c4e8a1f9d2b"
	l, _ := start(t, t.TempDir(), new(syncBuffer), "-debug-addr", "127.0.0.1:0", "-metrics-token", token)
	base := "http://" + l.HTTP.String()
	debug := "http://" + l.Debug.String() + "/metrics"

	before := scrape(t, debug, "")
	for name, kind := range map[string]dto.MetricType{
		"imserver_connections":                 dto.MetricType_GAUGE,
		"imserver_sessions":                    dto.MetricType_GAUGE,
		"imserver_presence_online":             dto.MetricType_GAUGE,
		"imserver_messages_stored_total":       dto.MetricType_COUNTER,
		"imserver_sends_refused_total":         dto.MetricType_COUNTER,
		"imserver_store_commits_total":         dto.MetricType_COUNTER,
		"imserver_store_commit_seconds_total":  dto.MetricType_COUNTER,
		"imserver_slow_consumers_total":        dto.MetricType_COUNTER,
		"imserver_notifications_dropped_total": dto.MetricType_COUNTER,
		"imserver_after_send_dropped_total":    dto.MetricType_COUNTER,
		"go_goroutines":                        dto.MetricType_GAUGE,
	} {
		value(t, before, name, kind)
	}
	// The process collector exists where /proc does; the Go collector
	// everywhere.
	require.Contains(t, before, "go_memstats_heap_alloc_bytes")
	require.Zero(t, value(t, before, "imserver_messages_stored_total", dto.MetricType_COUNTER))
	require.Zero(t, value(t, before, "imserver_sessions", dto.MetricType_GAUGE))

	var ids, tokens []string
	for _, u := range []string{"alice", "bobby"} {
		login := registerAndLogin(t, base, u)
		ids, tokens = append(ids, login.UserID), append(tokens, login.Token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := client.Dial(ctx, client.Options{Addr: l.TCP.String(), UserID: ids[0], Token: tokens[0]})
	require.NoError(t, err)
	defer a.Close()
	_, err = a.Send(ctx, client.Outgoing{ReceiverID: ids[1], Type: im.TextMessage, Content: []byte("hello")})
	require.NoError(t, err)
	_, err = a.Send(ctx, client.Outgoing{ReceiverID: "nobody", Type: im.TextMessage, Content: []byte("x")})
	require.ErrorIs(t, err, im.ErrNotFound)

	// The debug listener and the token-protected API route serve the
	// same registry.
	for _, after := range []map[string]*dto.MetricFamily{
		scrape(t, debug, ""),
		scrape(t, base+"/metrics", "Bearer "+token),
	} {
		require.Equal(t, 1.0, value(t, after, "imserver_messages_stored_total", dto.MetricType_COUNTER))
		require.Equal(t, 1.0, value(t, after, "imserver_sends_refused_total", dto.MetricType_COUNTER))
		require.GreaterOrEqual(t, value(t, after, "imserver_store_commits_total", dto.MetricType_COUNTER), 1.0)
		require.Greater(t, value(t, after, "imserver_store_commit_seconds_total", dto.MetricType_COUNTER), 0.0)
		require.Equal(t, 1.0, value(t, after, "imserver_sessions", dto.MetricType_GAUGE))
		require.Equal(t, 1.0, value(t, after, "imserver_connections", dto.MetricType_GAUGE))
		require.Equal(t, 1.0, value(t, after, "imserver_presence_online", dto.MetricType_GAUGE))

		// The commits' durations and sizes: the one stored message was
		// a commit of one; the refused send never reached the store.
		for _, name := range []string{"imserver_store_commit_duration_seconds", "imserver_store_commit_batch_size"} {
			f := after[name]
			require.NotNil(t, f, name)
			require.Equal(t, dto.MetricType_HISTOGRAM, f.GetType(), name)
			require.Len(t, f.GetMetric(), 1)
			h := f.GetMetric()[0].GetHistogram()
			require.GreaterOrEqual(t, h.GetSampleCount(), uint64(1), name)
			require.NotEmpty(t, h.GetBucket(), name)
		}
		batch := after["imserver_store_commit_batch_size"].GetMetric()[0].GetHistogram()
		require.Equal(t, float64(batch.GetSampleCount()), batch.GetSampleSum())
		require.Equal(t, 1.0, batch.GetBucket()[0].GetUpperBound())
		require.Equal(t, batch.GetSampleCount(), batch.GetBucket()[0].GetCumulativeCount())

		// The API's requests, by route pattern and status.
		f := after["imserver_http_request_duration_seconds"]
		require.NotNil(t, f)
		require.Equal(t, dto.MetricType_HISTOGRAM, f.GetType())
		counts := map[string]uint64{}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			counts[labels["route"]+" "+labels["code"]] = m.GetHistogram().GetSampleCount()
		}
		require.Equal(t, uint64(2), counts["POST /api/auth/register 200"])
		require.Equal(t, uint64(2), counts["POST /api/auth/login 200"])
	}

	// Without the token the API's /metrics tells nothing.
	status, _, body := getStatus(t, base+"/metrics", "", "")
	require.Equal(t, http.StatusUnauthorized, status)
	require.NotContains(t, body, "imserver_")
}

// labeled is the samples of a family with one label, by that label's
// value, checked to be of type kind.
func labeled(t *testing.T, families map[string]*dto.MetricFamily, name, label string, kind dto.MetricType) map[string]float64 {
	t.Helper()
	f, ok := families[name]
	require.True(t, ok, "no metric %s", name)
	require.Equal(t, kind, f.GetType(), name)
	out := map[string]float64{}
	for _, m := range f.GetMetric() {
		require.Len(t, m.GetLabel(), 1, name)
		require.Equal(t, label, m.GetLabel()[0].GetName(), name)
		v := m.GetGauge().GetValue()
		if kind == dto.MetricType_COUNTER {
			v = m.GetCounter().GetValue()
		}
		out[m.GetLabel()[0].GetValue()] = v
	}
	return out
}

// histogram is the one histogram of family name with the given label
// pairs (none for a family without labels).
func histogram(t *testing.T, families map[string]*dto.MetricFamily, name string, labels ...string) *dto.Histogram {
	t.Helper()
	f, ok := families[name]
	require.True(t, ok, "no metric %s", name)
	require.Equal(t, dto.MetricType_HISTOGRAM, f.GetType(), name)
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel())*2 != len(labels) {
			continue
		}
		for i, l := range m.GetLabel() {
			if l.GetName() != labels[2*i] || l.GetValue() != labels[2*i+1] {
				continue next
			}
		}
		require.NotEmpty(t, m.GetHistogram().GetBucket(), name)
		return m.GetHistogram()
	}
	t.Fatalf("no series %s%v", name, labels)
	return nil
}

// The metrics of connections, sessions, messages, refusals and latencies
// move with real traffic over both client transports.
func TestMetricsTraffic(t *testing.T) {
	l, _ := start(t, t.TempDir(), new(syncBuffer), "-debug-addr", "127.0.0.1:0")
	base := "http://" + l.HTTP.String()
	debug := "http://" + l.Debug.String() + "/metrics"

	before := scrape(t, debug, "")
	require.Equal(t, map[string]float64{"tcp": 0, "websocket": 0, "other": 0},
		labeled(t, before, "imserver_connections_by_transport", "transport", dto.MetricType_GAUGE))
	require.Len(t, labeled(t, before, "imserver_sessions_by_platform", "platform", dto.MetricType_GAUGE), 8)
	require.Len(t, labeled(t, before, "imserver_messages_stored_by_type_total", "type", dto.MetricType_COUNTER), 11)
	for code, n := range labeled(t, before, "imserver_sends_refused_by_code_total", "code", dto.MetricType_COUNTER) {
		require.Zero(t, n, code)
	}
	require.Zero(t, histogram(t, before, "imserver_send_ack_duration_seconds").GetSampleCount())
	require.Zero(t, histogram(t, before, "imserver_sync_duration_seconds", "request", "batch_sync").GetSampleCount())
	histogram(t, before, "imserver_sync_duration_seconds", "request", "sync_range")
	histogram(t, before, "imserver_queue_delay_seconds")
	for _, name := range []string{"imserver_online_users", "imserver_queued_frames", "imserver_queued_bytes", "imserver_queue_largest_frames", "imserver_queue_largest_bytes"} {
		require.Zero(t, value(t, before, name, dto.MetricType_GAUGE), name)
	}

	var ids, tokens []string
	for _, u := range []string{"carol", "dave"} {
		login := registerAndLogin(t, base, u)
		ids, tokens = append(ids, login.UserID), append(tokens, login.Token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := client.Dial(ctx, client.Options{Addr: l.TCP.String(), UserID: ids[0], Token: tokens[0], Platform: "iOS"})
	require.NoError(t, err)
	defer a.Close()
	b, err := client.Dial(ctx, client.Options{Transport: client.TransportWebSocket, Addr: "ws://" + l.WS.String() + "/ws", UserID: ids[1], Token: tokens[1], Platform: "Android"})
	require.NoError(t, err)
	defer b.Close()

	first, err := a.Send(ctx, client.Outgoing{ReceiverID: ids[1], Type: im.TextMessage, Content: []byte("hello")})
	require.NoError(t, err)
	_, err = a.Send(ctx, client.Outgoing{ReceiverID: ids[1], Type: im.ImageMessage, Content: []byte(`{"url":"x"}`)})
	require.NoError(t, err)
	_, err = a.Send(ctx, client.Outgoing{ReceiverID: ids[1], Type: 42, Content: []byte("?")})
	require.NoError(t, err)
	_, err = a.Send(ctx, client.Outgoing{ReceiverID: "nobody", Type: im.TextMessage, Content: []byte("x")})
	require.ErrorIs(t, err, im.ErrNotFound)
	_, err = b.BatchSync(ctx, nil, 0)
	require.NoError(t, err)
	_, err = b.SyncRange(ctx, im.SingleConversationID(ids[0], ids[1]), 1, first.Seq, 0)
	require.NoError(t, err)

	after := scrape(t, debug, "")
	require.Equal(t, map[string]float64{"tcp": 1, "websocket": 1, "other": 0},
		labeled(t, after, "imserver_connections_by_transport", "transport", dto.MetricType_GAUGE))
	platforms := labeled(t, after, "imserver_sessions_by_platform", "platform", dto.MetricType_GAUGE)
	require.Equal(t, 1.0, platforms["ios"])
	require.Equal(t, 1.0, platforms["android"])
	require.Equal(t, 0.0, platforms["other"])
	require.Equal(t, 2.0, value(t, after, "imserver_online_users", dto.MetricType_GAUGE))

	types := labeled(t, after, "imserver_messages_stored_by_type_total", "type", dto.MetricType_COUNTER)
	require.Equal(t, 1.0, types["text"])
	require.Equal(t, 1.0, types["image"])
	require.Equal(t, 1.0, types["other"], "type 42 is none of the protocol's")
	require.Equal(t, 3.0, value(t, after, "imserver_messages_stored_total", dto.MetricType_COUNTER))

	codes := labeled(t, after, "imserver_sends_refused_by_code_total", "code", dto.MetricType_COUNTER)
	require.Equal(t, 1.0, codes["ERR_USER_NOT_EXIST"], "%v", codes)
	sum := 0.0
	for _, n := range codes {
		sum += n
	}
	require.Equal(t, value(t, after, "imserver_sends_refused_total", dto.MetricType_COUNTER), sum)

	// The three stored sends waited for their commits; the refused one
	// never reached the store.
	ack := histogram(t, after, "imserver_send_ack_duration_seconds")
	require.Equal(t, uint64(3), ack.GetSampleCount())
	require.Greater(t, ack.GetSampleSum(), 0.0)
	require.Equal(t, uint64(1), histogram(t, after, "imserver_sync_duration_seconds", "request", "batch_sync").GetSampleCount())
	require.Equal(t, uint64(1), histogram(t, after, "imserver_sync_duration_seconds", "request", "sync_range").GetSampleCount())
	// Every answer and push above went through a connection's queue.
	require.GreaterOrEqual(t, histogram(t, after, "imserver_queue_delay_seconds").GetSampleCount(), uint64(1))

	// A WebSocket that closes leaves its transport's count.
	require.NoError(t, b.Close())
	deadline := time.Now().Add(10 * time.Second)
	for {
		now := scrape(t, debug, "")
		tr := labeled(t, now, "imserver_connections_by_transport", "transport", dto.MetricType_GAUGE)
		pl := labeled(t, now, "imserver_sessions_by_platform", "platform", dto.MetricType_GAUGE)
		if tr["websocket"] == 0 && pl["android"] == 0 {
			require.Equal(t, 1.0, tr["tcp"])
			require.Equal(t, 1.0, value(t, now, "imserver_online_users", dto.MetricType_GAUGE))
			break
		}
		require.True(t, time.Now().Before(deadline), "the closed WebSocket is still counted: %v %v", tr, pl)
		time.Sleep(10 * time.Millisecond)
	}
}
