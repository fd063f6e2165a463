package httpapi

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
)

// The Go runtime's and the process's metrics, named and typed as the
// Prometheus Go client names them (go_goroutines, process_cpu_seconds_total,
// …), so dashboards built for any Go service work unchanged, without the
// client library in the server.

// userHZ is the unit of the CPU times and start time in /proc/<pid>/stat.
// It is 100 on every Linux architecture Go supports, and the Prometheus
// client assumes the same.
const userHZ = 100

// writeRuntimeMetrics writes the Go runtime's metrics and, where /proc
// has them (Linux), the process's. A value the platform does not provide
// is left out rather than written as zero, which a dashboard would take
// for a reading.
func writeRuntimeMetrics(w io.Writer) {
	names := []string{
		"/sched/goroutines:goroutines",
		"/sched/gomaxprocs:threads",
		"/memory/classes/heap/objects:bytes",
		"/memory/classes/heap/unused:bytes",
		"/memory/classes/heap/free:bytes",
		"/memory/classes/heap/released:bytes",
		"/memory/classes/total:bytes",
		"/gc/heap/objects:objects",
	}
	samples := make([]metrics.Sample, len(names))
	for i, name := range names {
		samples[i].Name = name
	}
	metrics.Read(samples)
	val := make(map[string]float64, len(samples))
	for _, s := range samples {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			val[s.Name] = float64(s.Value.Uint64())
		case metrics.KindFloat64:
			val[s.Name] = s.Value.Float64()
		}
	}
	metric := func(name, kind, help string, v float64) {
		io.WriteString(w, "# HELP "+name+" "+help+"\n# TYPE "+name+" "+kind+"\n"+name+" "+formatFloat(v)+"\n")
	}
	// each writes name as the sum of the runtime/metrics samples keys, if
	// the runtime has them all (a name it does not know reads KindBad).
	each := func(name, kind, help string, keys ...string) {
		var sum float64
		for _, k := range keys {
			v, ok := val[k]
			if !ok {
				return
			}
			sum += v
		}
		metric(name, kind, help, sum)
	}

	io.WriteString(w, "# HELP go_info Information about the Go environment.\n# TYPE go_info gauge\ngo_info{version="+strconv.Quote(runtime.Version())+"} 1\n")
	each("go_goroutines", "gauge", "Number of goroutines that currently exist.", "/sched/goroutines:goroutines")
	each("go_sched_gomaxprocs_threads", "gauge", "The current runtime.GOMAXPROCS setting.", "/sched/gomaxprocs:threads")
	each("go_memstats_heap_alloc_bytes", "gauge", "Number of heap bytes allocated and currently in use.", "/memory/classes/heap/objects:bytes")
	each("go_memstats_heap_sys_bytes", "gauge", "Number of heap bytes obtained from the system.",
		"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes", "/memory/classes/heap/free:bytes", "/memory/classes/heap/released:bytes")
	each("go_memstats_heap_objects", "gauge", "Number of currently allocated objects.", "/gc/heap/objects:objects")
	each("go_memstats_sys_bytes", "gauge", "Number of bytes obtained from the system.", "/memory/classes/total:bytes")

	// The pause total is exact only in the GC's own statistics (the
	// runtime/metrics pause histogram has buckets, not a sum); a summary
	// without quantiles is valid in the text format.
	var gc debug.GCStats
	debug.ReadGCStats(&gc)
	io.WriteString(w, "# HELP go_gc_duration_seconds Total stop-the-world pause time and number of completed garbage collection cycles.\n# TYPE go_gc_duration_seconds summary\n"+
		"go_gc_duration_seconds_sum "+formatFloat(gc.PauseTotal.Seconds())+"\n"+
		"go_gc_duration_seconds_count "+strconv.FormatInt(gc.NumGC, 10)+"\n")

	writeProcessMetrics(w, metric)
}

// writeProcessMetrics writes what /proc tells of this process; on a system
// without /proc, or with one that reads differently, it writes what it
// could read and nothing else.
func writeProcessMetrics(w io.Writer, metric func(name, kind, help string, v float64)) {
	if stat, err := os.ReadFile("/proc/self/stat"); err == nil {
		if f := statFields(stat); len(f) > 21 {
			utime, err1 := strconv.ParseUint(f[11], 10, 64)
			stime, err2 := strconv.ParseUint(f[12], 10, 64)
			if err1 == nil && err2 == nil {
				metric("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", float64(utime+stime)/userHZ)
			}
			if vsize, err := strconv.ParseUint(f[20], 10, 64); err == nil {
				metric("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", float64(vsize))
			}
			if rss, err := strconv.ParseInt(f[21], 10, 64); err == nil {
				metric("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", float64(rss*int64(os.Getpagesize())))
			}
			if start, err := strconv.ParseUint(f[19], 10, 64); err == nil {
				if boot, ok := bootTime(); ok {
					metric("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", float64(boot)+float64(start)/userHZ)
				}
			}
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		// The listing counts its own descriptor, as the Prometheus
		// client's does.
		metric("process_open_fds", "gauge", "Number of open file descriptors.", float64(len(fds)))
	}
	if limit, ok := maxOpenFiles(); ok {
		metric("process_max_fds", "gauge", "Maximum number of open file descriptors.", limit)
	}
}

// statFields splits /proc/<pid>/stat into its fields after the command
// name, which is in parentheses and may itself hold spaces and
// parentheses: f[0] is the state, field 3 in proc(5), so field n is
// f[n-3].
func statFields(stat []byte) []string {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(stat[i+1:]))
}

// bootTime reads the system's boot time, in seconds since the epoch, from
// /proc/stat.
func bootTime() (uint64, bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "btime "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// maxOpenFiles reads the soft limit on open files from
// /proc/self/limits; "unlimited" is left out.
func maxOpenFiles() (float64, bool) {
	b, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				return 0, false
			}
			n, err := strconv.ParseUint(f[0], 10, 64)
			return float64(n), err == nil
		}
	}
	return 0, false
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
