// Package metrics exposes an im.Server's Stats as Prometheus metrics
// through the Prometheus Go client, so the core package im stays free of
// any metrics library: NewCollector reads Stats at each scrape, and
// NewRegistry and NewHandler serve it, with the Go runtime's and the
// process's metrics, the way cmd/imserver does at /metrics.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/imserver/imserver/im"
)

// metric is one figure of im.Stats with its description.
type metric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*im.Stats) float64
}

// collector reads its Stats function at each scrape. It keeps no state of
// its own, so the hot path pays nothing for it: the counters are the
// Server's atomics.
type collector struct {
	stats   func() im.Stats
	metrics []metric

	commitSeconds, commitBatch *prometheus.Desc
	sendLatency, queueDelay    *prometheus.Desc
	syncSeconds                *prometheus.Desc
	labeled                    []labeled
}

// labeled is a figure of im.Stats kept by one label, such as the
// connections by transport. The label's values are a fixed set, chosen by
// the core.
type labeled struct {
	desc   *prometheus.Desc
	kind   prometheus.ValueType
	values func(*im.Stats) map[string]float64
}

func signed(m map[string]int64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = float64(v)
	}
	return out
}

func unsigned(m map[string]uint64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = float64(v)
	}
	return out
}

// NewCollector returns a prometheus.Collector of the server's Stats (pass
// the im.Server's Stats method), named imserver_*: counters as counters,
// gauges as gauges, under the names the hand-written format of
// httpapi.NewMetricsHandler uses. Register it on the embedder's own
// registry; it may be registered once per registry.
func NewCollector(stats func() im.Stats) prometheus.Collector {
	c := &collector{stats: stats}
	add := func(name string, kind prometheus.ValueType, help string, value func(*im.Stats) float64) {
		c.metrics = append(c.metrics, metric{
			desc:  prometheus.NewDesc("imserver_"+name, help, nil, nil),
			kind:  kind,
			value: value,
		})
	}
	counter, gauge := prometheus.CounterValue, prometheus.GaugeValue
	add("connections", gauge, "Open client connections.", func(s *im.Stats) float64 { return float64(s.Connections) })
	add("sessions", gauge, "Authenticated sessions.", func(s *im.Stats) float64 { return float64(s.Sessions) })
	add("frames_in_total", counter, "Frames read from clients.", func(s *im.Stats) float64 { return float64(s.FramesIn) })
	add("frames_out_total", counter, "Frames written to clients.", func(s *im.Stats) float64 { return float64(s.FramesOut) })
	add("messages_stored_total", counter, "New messages committed.", func(s *im.Stats) float64 { return float64(s.MessagesStored) })
	add("sends_deduplicated_total", counter, "Sends answered from the dedup index.", func(s *im.Stats) float64 { return float64(s.Duplicates) })
	add("sends_refused_total", counter, "Sends answered with an error.", func(s *im.Stats) float64 { return float64(s.SendsRefused) })
	add("store_commits_total", counter, "Store commits, each a batch of sends.", func(s *im.Stats) float64 { return float64(s.Commits) })
	add("store_commit_seconds_total", counter, "Time spent in store commits.", func(s *im.Stats) float64 { return s.CommitTime.Seconds() })
	add("slow_consumers_total", counter, "Connections closed because their queue was full.", func(s *im.Stats) float64 { return float64(s.SlowConsumers) })
	add("after_send_dropped_total", counter, "Messages not handed to the AfterSend hook because its queue was full.", func(s *im.Stats) float64 { return float64(s.AfterSendDropped) })
	add("store_panics_total", counter, "Store calls that panicked, each failing its request or commit.", func(s *im.Stats) float64 { return float64(s.StorePanics) })
	add("store_corrupt_reads_total", counter, "Requests failed because stored data failed its integrity check.", func(s *im.Stats) float64 { return float64(s.CorruptReads) })
	add("signals_limited_total", counter, "Signals (typing) refused by their sender's rate limit.", func(s *im.Stats) float64 { return float64(s.SignalsLimited) })
	add("receipts_limited_total", counter, "Read receipts and read-state requests refused by their user's rate limit.", func(s *im.Stats) float64 { return float64(s.ReceiptsLimited) })
	add("signals_dropped_total", counter, "Signal pushes replaced by a newer one or dropped at a full queue.", func(s *im.Stats) float64 { return float64(s.SignalsDropped) })
	add("notifications_total", counter, "Calls of the offline-push Notifier.", func(s *im.Stats) float64 { return float64(s.Notifications) })
	add("notification_errors_total", counter, "Notifier calls that failed or panicked.", func(s *im.Stats) float64 { return float64(s.NotificationErrors) })
	add("notifications_dropped_total", counter, "Messages whose offline-push notifications were dropped at a full queue.", func(s *im.Stats) float64 { return float64(s.NotificationsDropped) })
	add("presence_online", gauge, "Users reading as online, those within the offline delay included.", func(s *im.Stats) float64 { return float64(s.PresenceOnline) })
	add("presence_subscriptions", gauge, "Presence subscriptions held by open connections.", func(s *im.Stats) float64 { return float64(s.PresenceSubscriptions) })
	add("presence_watched_users", gauge, "Users with at least one presence subscriber.", func(s *im.Stats) float64 { return float64(s.PresenceWatched) })
	add("online_users", gauge, "Users with at least one authenticated session on this server.", func(s *im.Stats) float64 { return float64(s.OnlineUsers) })
	add("queued_frames", gauge, "Frames waiting to be written to the authenticated sessions.", func(s *im.Stats) float64 { return float64(s.QueuedFrames) })
	add("queued_bytes", gauge, "Bytes waiting to be written to the authenticated sessions, as counted against the queue's bound.", func(s *im.Stats) float64 { return float64(s.QueuedBytes) })
	add("queue_largest_frames", gauge, "Frames waiting in the longest queue of one session.", func(s *im.Stats) float64 { return float64(s.LargestQueueFrames) })
	add("queue_largest_bytes", gauge, "Bytes waiting in the heaviest queue of one session.", func(s *im.Stats) float64 { return float64(s.LargestQueueBytes) })
	addLabeled := func(name, label string, kind prometheus.ValueType, help string, values func(*im.Stats) map[string]float64) {
		c.labeled = append(c.labeled, labeled{
			desc:   prometheus.NewDesc("imserver_"+name, help, []string{label}, nil),
			kind:   kind,
			values: values,
		})
	}
	addLabeled("connections_by_transport", "transport", gauge, "Open client connections by transport.", func(s *im.Stats) map[string]float64 { return signed(s.ConnectionsByTransport) })
	addLabeled("sessions_by_platform", "platform", gauge, "Authenticated sessions by the platform the client reported.", func(s *im.Stats) map[string]float64 { return signed(s.SessionsByPlatform) })
	addLabeled("messages_stored_by_type_total", "type", counter, "New messages committed, by message type.", func(s *im.Stats) map[string]float64 { return unsigned(s.MessagesByType) })
	addLabeled("sends_refused_by_code_total", "code", counter, "Sends answered with an error, by protocol error code.", func(s *im.Stats) map[string]float64 { return unsigned(s.SendsRefusedByCode) })
	c.sendLatency = prometheus.NewDesc("imserver_send_ack_duration_seconds", "Client sends that reached a commit, by the time from their frame being read to their acknowledgement being queued.", nil, nil)
	c.queueDelay = prometheus.NewDesc("imserver_queue_delay_seconds", "Batches written to clients, by how long their oldest frame can have waited in the connection's queue.", nil, nil)
	c.syncSeconds = prometheus.NewDesc("imserver_sync_duration_seconds", "Sync requests by handling time, from the frame being read to the response being queued.", []string{"request"}, nil)
	c.commitSeconds = prometheus.NewDesc("imserver_store_commit_duration_seconds", "Store commits by duration.", nil, nil)
	c.commitBatch = prometheus.NewDesc("imserver_store_commit_batch_size", "Store commits by size, in messages.", nil, nil)
	return c
}

// Describe sends the descriptions of every metric the collector makes.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
	for _, m := range c.labeled {
		ch <- m.desc
	}
	ch <- c.commitSeconds
	ch <- c.commitBatch
	ch <- c.sendLatency
	ch <- c.queueDelay
	ch <- c.syncSeconds
}

// Collect reads Stats once, so a scrape's figures are one snapshot.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(&st))
	}
	for _, m := range c.labeled {
		for value, v := range m.values(&st) {
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, v, value)
		}
	}
	ch <- constHistogram(c.commitSeconds, st.CommitSeconds)
	ch <- constHistogram(c.commitBatch, st.CommitBatch)
	ch <- constHistogram(c.sendLatency, st.SendLatency)
	ch <- constHistogram(c.queueDelay, st.QueueDelay)
	ch <- constHistogram(c.syncSeconds, st.BatchSyncSeconds, "batch_sync")
	ch <- constHistogram(c.syncSeconds, st.SyncRangeSeconds, "sync_range")
}

// constHistogram passes an im.Histogram on; both count cumulatively.
func constHistogram(desc *prometheus.Desc, h im.Histogram, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		buckets[b] = h.Counts[i]
	}
	return prometheus.MustNewConstHistogram(desc, h.Count, h.Sum, buckets, labels...)
}

// NewRegistry returns a registry holding NewCollector(stats), the
// Prometheus client's Go runtime and process collectors (go_*,
// process_*) and the extra collectors given (such as a
// RequestDurations): what a binary serving only this server exposes.
func NewRegistry(stats func() im.Stats, extra ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(extra...)
	reg.MustRegister(
		NewCollector(stats),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// NewHandler serves the registry's metrics in the Prometheus exposition
// formats, with no authentication: mount it where only operators reach,
// or behind a check such as httpapi.Options.MetricsHandler's token.
func NewHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// RequestDurations is a histogram of the HTTP API's requests,
// imserver_http_request_duration_seconds, by route pattern and status
// code. Register it, and plug its Observe method into
// httpapi.Options.ObserveRequest.
type RequestDurations struct {
	vec *prometheus.HistogramVec
}

// NewRequestDurations returns an empty RequestDurations with the
// Prometheus client's default buckets (5ms to 10s).
func NewRequestDurations() *RequestDurations {
	return &RequestDurations{vec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "imserver_http_request_duration_seconds",
		Help: "HTTP API requests by route pattern and status code, and how long their handlers took.",
	}, []string{"route", "code"})}
}

// Observe records one request; route is a pattern, never a raw path, so
// that the label's values stay few.
func (r *RequestDurations) Observe(route string, status int, d time.Duration) {
	r.vec.WithLabelValues(route, strconv.Itoa(status)).Observe(d.Seconds())
}

// Describe describes the histogram.
func (r *RequestDurations) Describe(ch chan<- *prometheus.Desc) { r.vec.Describe(ch) }

// Collect collects the histogram's series.
func (r *RequestDurations) Collect(ch chan<- prometheus.Metric) { r.vec.Collect(ch) }
