package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/transport/httpapi"
)

// parseMetrics reads a Prometheus text exposition into its samples by
// name (labels included) and the TYPE of each family, failing on any line
// that is not a comment, a HELP or TYPE line, or "name value".
func parseMetrics(t *testing.T, body string) (samples map[string]float64, types map[string]string) {
	t.Helper()
	samples, types = map[string]float64{}, map[string]string{}
	helps := map[string]bool{}
	for line := range strings.Lines(body) {
		line = strings.TrimSuffix(line, "\n")
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, help, _ := strings.Cut(rest, " ")
			require.NotEmpty(t, help, "HELP of %s", name)
			helps[name] = true
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, kind, _ := strings.Cut(rest, " ")
			require.Contains(t, []string{"gauge", "counter", "summary"}, kind, "TYPE of %s", name)
			require.True(t, helps[name], "TYPE of %s before its HELP", name)
			types[name] = kind
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		require.Positive(t, i, "line %q", line)
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, "line %q", line)
		name := line[:i]
		family, _, _ := strings.Cut(name, "{")
		family = strings.TrimSuffix(strings.TrimSuffix(family, "_sum"), "_count")
		require.Contains(t, types, family, "sample %s before its TYPE", name)
		samples[name] = v
	}
	return samples, types
}

func TestRuntimeMetrics(t *testing.T) {
	srv := httptest.NewServer(httpapi.NewMetricsHandler(func() im.Stats { return im.Stats{} }))
	t.Cleanup(srv.Close)
	runtime.GC() // so that the GC count is at least one
	status, body := getMetrics(t, srv.URL+"/metrics", "")
	require.Equal(t, http.StatusOK, status)
	samples, types := parseMetrics(t, body)

	require.Equal(t, 1.0, samples[`go_info{version="`+runtime.Version()+`"}`], "%s", body)
	positive := map[string]string{
		"go_goroutines":                "gauge",
		"go_sched_gomaxprocs_threads":  "gauge",
		"go_memstats_heap_alloc_bytes": "gauge",
		"go_memstats_heap_sys_bytes":   "gauge",
		"go_memstats_heap_objects":     "gauge",
		"go_memstats_sys_bytes":        "gauge",
		"go_gc_duration_seconds_count": "summary",
	}
	if runtime.GOOS == "linux" {
		for name, kind := range map[string]string{
			"process_resident_memory_bytes": "gauge",
			"process_virtual_memory_bytes":  "gauge",
			"process_open_fds":              "gauge",
			"process_max_fds":               "gauge",
			"process_start_time_seconds":    "gauge",
		} {
			positive[name] = kind
		}
	}
	for name, kind := range positive {
		family := strings.TrimSuffix(name, "_count")
		require.Equal(t, kind, types[family], "TYPE of %s", family)
		require.Positive(t, samples[name], "%s", name)
	}
	require.Contains(t, samples, "go_gc_duration_seconds_sum")
	require.Equal(t, float64(runtime.GOMAXPROCS(0)), samples["go_sched_gomaxprocs_threads"])
	require.GreaterOrEqual(t, samples["go_memstats_heap_sys_bytes"], samples["go_memstats_heap_alloc_bytes"])
	require.GreaterOrEqual(t, samples["go_memstats_sys_bytes"], samples["go_memstats_heap_sys_bytes"])
	if runtime.GOOS == "linux" {
		// The test binary started within the last hour and not in the
		// future (a second's slack for the clock ticks' rounding).
		now := float64(time.Now().Unix())
		start := samples["process_start_time_seconds"]
		require.LessOrEqual(t, start, now+1)
		require.Greater(t, start, now-3600)
		require.GreaterOrEqual(t, samples["process_max_fds"], samples["process_open_fds"])
		// A process this young may not have used a clock tick of CPU yet.
		require.Equal(t, "counter", types["process_cpu_seconds_total"])
		require.Contains(t, samples, "process_cpu_seconds_total")
		require.GreaterOrEqual(t, samples["process_cpu_seconds_total"], 0.0)
	}
	// The server's own metrics are still there, first.
	require.Less(t, strings.Index(body, "imserver_connections"), strings.Index(body, "go_goroutines"))
}
