package httpapi

import (
	"crypto/subtle"
	"fmt"
	"net/http"

	"github.com/imserver/imserver/im"
)

// NewMetricsHandler serves stats (pass the im.Server's Stats method), with
// the Go runtime's and the process's metrics (go_goroutines,
// process_resident_memory_bytes, … named as the Prometheus Go client names
// them), in the Prometheus text format to any GET, with no
// authentication: mount it on a listener only operators reach, such as the
// one serving pprof.
func NewMetricsHandler(stats func() im.Stats) http.Handler {
	a := &api{stats: stats}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		a.serveMetrics(w, r)
	})
}

// serveMetricsWithToken serves /metrics on the public API to a scraper
// that shows Options.MetricsToken.
func (a *api) serveMetricsWithToken(w http.ResponseWriter, r *http.Request) {
	token, ok := bearerToken(r)
	// Constant time, so the answer's timing does not tell how much of a
	// guess was right.
	if !ok || subtle.ConstantTimeCompare([]byte(token), []byte(a.metricsToken)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
		writeEnvelope(w, http.StatusUnauthorized, codeAuthFailed, "authentication failed", nil)
		return
	}
	if a.metrics != nil {
		a.metrics.ServeHTTP(w, r)
		return
	}
	a.serveMetrics(w, r)
}

// serveMetrics writes the server's Stats, then the Go runtime's and the
// process's metrics, in the Prometheus text format, so
// any Prometheus-compatible scraper can collect them without a client
// library in the server.
func (a *api) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	st := a.stats()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	metric := func(name, kind, help string, v any) {
		fmt.Fprintf(w, "# HELP imserver_%s %s\n# TYPE imserver_%s %s\nimserver_%s %v\n", name, help, name, kind, name, v)
	}
	metric("connections", "gauge", "Open client connections.", st.Connections)
	metric("sessions", "gauge", "Authenticated sessions.", st.Sessions)
	metric("frames_in_total", "counter", "Frames read from clients.", st.FramesIn)
	metric("frames_out_total", "counter", "Frames written to clients.", st.FramesOut)
	metric("messages_stored_total", "counter", "New messages committed.", st.MessagesStored)
	metric("sends_deduplicated_total", "counter", "Sends answered from the dedup index.", st.Duplicates)
	metric("sends_refused_total", "counter", "Sends answered with an error.", st.SendsRefused)
	metric("store_commits_total", "counter", "Store commits, each a batch of sends.", st.Commits)
	metric("store_commit_seconds_total", "counter", "Time spent in store commits.", st.CommitTime.Seconds())
	metric("slow_consumers_total", "counter", "Connections closed because their queue was full.", st.SlowConsumers)
	metric("store_panics_total", "counter", "Store calls that panicked, each failing its request or commit.", st.StorePanics)
	metric("store_corrupt_reads_total", "counter", "Requests failed because stored data failed its integrity check.", st.CorruptReads)
	metric("signals_limited_total", "counter", "Signals (typing) refused by their sender's rate limit.", st.SignalsLimited)
	metric("receipts_limited_total", "counter", "Read receipts and read-state requests refused by their user's rate limit.", st.ReceiptsLimited)
	metric("signals_dropped_total", "counter", "Signal pushes replaced by a newer one or dropped at a full queue.", st.SignalsDropped)
	metric("notifications_total", "counter", "Calls of the offline-push Notifier.", st.Notifications)
	metric("notification_errors_total", "counter", "Notifier calls that failed or panicked.", st.NotificationErrors)
	metric("notifications_dropped_total", "counter", "Messages whose offline-push notifications were dropped at a full queue.", st.NotificationsDropped)
	metric("presence_online", "gauge", "Users reading as online, those within the offline delay included.", st.PresenceOnline)
	metric("presence_subscriptions", "gauge", "Presence subscriptions held by open connections.", st.PresenceSubscriptions)
	metric("presence_watched_users", "gauge", "Users with at least one presence subscriber.", st.PresenceWatched)
	writeRuntimeMetrics(w)
}
