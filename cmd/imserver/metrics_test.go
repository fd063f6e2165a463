package main

import (
	"context"
	"encoding/json"
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
		e := post(t, base+"/api/auth/register", map[string]string{"username": u, "password": "secret-" + u, "nickname": u})
		require.Zero(t, e.Code, e.Message)
		e = post(t, base+"/api/auth/login", map[string]string{"username": u, "password": "secret-" + u})
		require.Zero(t, e.Code, e.Message)
		var login struct{ Token, UserID string }
		require.NoError(t, json.Unmarshal(e.Data, &login))
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
