package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat. It
// is 100 on every Linux architecture Go supports; reading it properly needs
// sysconf, which needs cgo.
const clockTicks = 100

// usage is a sample of this process's and the server's resource use.
type usage struct {
	at                 time.Time
	selfCPU, serverCPU float64 // seconds of user+system time; -1 unknown
	selfRSS, serverRSS int64   // VmRSS in bytes; -1 unknown
	// Anonymous resident memory (RssAnon) in bytes; -1 unknown. Memory
	// per connection is measured with it, since VmRSS also counts the
	// pages of bbolt's memory-mapped file that happen to be resident.
	selfAnon, serverAnon int64
}

func sampleUsage(serverPID int) usage {
	u := usage{at: time.Now()}
	u.selfCPU, u.selfRSS, u.selfAnon = sampleProc("self")
	u.serverCPU, u.serverRSS, u.serverAnon = -1, -1, -1
	if serverPID > 0 {
		u.serverCPU, u.serverRSS, u.serverAnon = sampleProc(strconv.Itoa(serverPID))
	}
	return u
}

// sampleProc reads a process's CPU seconds, VmRSS and RssAnon; -1 for
// what cannot be read.
func sampleProc(pid string) (cpu float64, rss, anon int64) {
	cpu, rss, anon = -1, -1, -1
	if v, err := cpuSeconds(pid); err == nil {
		cpu = v
	}
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return cpu, rss, anon
	}
	if v, err := statusBytes(b, "VmRSS:"); err == nil {
		rss = v
	}
	if v, err := statusBytes(b, "RssAnon:"); err == nil {
		anon = v
	}
	return cpu, rss, anon
}

// cpuSeconds returns the user+system CPU time of a process ("self" or a
// pid) from /proc/<pid>/stat.
func cpuSeconds(pid string) (float64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime, fields 14 and 15 of /proc/<pid>/stat.
// The command name (field 2) is in parentheses and may hold spaces or
// parentheses itself, so fields are counted after the last ')'.
func parseStatCPU(b []byte) (float64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("imbench: malformed /proc stat")
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (state), so field k is fields[k-3].
	if len(fields) < 13 {
		return 0, errors.New("imbench: short /proc stat")
	}
	ut, err1 := strconv.ParseUint(fields[11], 10, 64)
	st, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("imbench: /proc stat: %w", err)
	}
	return float64(ut+st) / clockTicks, nil
}

// statusBytes reads a "Key:  123 kB" line of /proc/<pid>/status.
func statusBytes(b []byte, key string) (int64, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, key)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("imbench: malformed %s line", key)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("imbench: %s %w", key, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("imbench: no %s (a kernel thread, or not Linux)", key)
}

// resetPeakRSS starts a new peak for VmHWM of a process ("self" or a pid),
// so that a later peakRSS covers only what follows.
func resetPeakRSS(pid string) error {
	return os.WriteFile("/proc/"+pid+"/clear_refs", []byte("5"), 0)
}

// peakRSS returns VmHWM of a process, or -1.
func peakRSS(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return -1
	}
	v, err := statusBytes(b, "VmHWM:")
	if err != nil {
		return -1
	}
	return v
}

// anonPeak samples RssAnon of this process and the server every interval
// until stop is called, which returns the highest values seen (-1 for
// what could not be read).
func anonPeak(serverPID int, interval time.Duration) (stop func() (self, server int64)) {
	done := make(chan struct{})
	var self, server int64 = -1, -1
	sample := func() {
		_, _, a := sampleProc("self")
		self = max(self, a)
		if serverPID > 0 {
			_, _, a := sampleProc(strconv.Itoa(serverPID))
			server = max(server, a)
		}
	}
	sample()
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() (int64, int64) {
		close(done)
		<-finished
		sample()
		return self, server
	}
}
