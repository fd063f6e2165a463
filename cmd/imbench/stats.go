package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Phases of a load run.
const (
	phaseSetup int32 = iota
	phaseWarmup
	phaseMeasure
	phaseDrain
)

// runStats are the counters a load run shares between its goroutines.
// Throughput and latency count only events that happen while the phase is
// phaseMeasure; totals count everything.
type runStats struct {
	base  time.Time // the run's clock: now() is nanoseconds since base
	phase atomic.Int32

	sent, acked, delivered    atomic.Int64 // totals
	wSent, wAcked, wDelivered atomic.Int64 // in the measurement window

	ackLat, pushLat histogram

	errs errorCounts
}

func newRunStats() *runStats { return &runStats{base: time.Now()} }

// now returns the run's monotonic clock in nanoseconds.
func (s *runStats) now() int64 { return int64(time.Since(s.base)) }

func (s *runStats) measuring() bool { return s.phase.Load() == phaseMeasure }

func (s *runStats) countSent() {
	s.sent.Add(1)
	if s.measuring() {
		s.wSent.Add(1)
	}
}

// countAck counts an acknowledgement of a message meant to be sent at
// sentAt.
func (s *runStats) countAck(sentAt int64) {
	s.acked.Add(1)
	if s.measuring() {
		s.wAcked.Add(1)
		s.ackLat.Record(time.Duration(s.now() - sentAt))
	}
}

// countDelivery counts a delivery of a message sent at sentAt.
func (s *runStats) countDelivery(sentAt int64) {
	s.delivered.Add(1)
	if s.measuring() {
		s.wDelivered.Add(1)
		s.pushLat.Record(time.Duration(s.now() - sentAt))
	}
}

// errorCounts counts errors by kind ("SEND_TOO_FAST", "connection lost", …).
type errorCounts struct {
	mu sync.Mutex
	m  map[string]int64
}

func (e *errorCounts) add(kind string) {
	e.mu.Lock()
	if e.m == nil {
		e.m = make(map[string]int64)
	}
	e.m[kind]++
	e.mu.Unlock()
}

func (e *errorCounts) snapshot() (total int64, byKind map[string]int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	byKind = maps.Clone(e.m)
	for _, n := range byKind {
		total += n
	}
	return total, byKind
}

// progress prints a status line to w every interval until stop is closed.
// It runs on a goroutine of wg.
func progress(wg *sync.WaitGroup, stop <-chan struct{}, w io.Writer, interval time.Duration, line func(elapsed time.Duration) string) {
	if w == nil || interval <= 0 {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Fprintln(w, line(time.Since(start).Truncate(100*time.Millisecond)))
			}
		}
	}()
}

// rateLine is the progress line of a send/deliver run.
type rateLine struct {
	s                 *runStats
	lastAck, lastPush int64
	last              time.Time
}

func (r *rateLine) line(elapsed time.Duration, outstanding func() int64) string {
	now := time.Now()
	a, p := r.s.acked.Load(), r.s.delivered.Load()
	dt := now.Sub(r.last).Seconds()
	if r.last.IsZero() {
		dt = elapsed.Seconds()
	}
	r.last = now
	ackRate, pushRate := float64(a-r.lastAck)/dt, float64(p-r.lastPush)/dt
	r.lastAck, r.lastPush = a, p
	errs, _ := r.s.errs.snapshot()
	phase := [...]string{"setup", "warmup", "measure", "drain"}[r.s.phase.Load()]
	return fmt.Sprintf("%7s %-7s acked %8.0f/s  delivered %8.0f/s  ack p99 %7.2fms  deliver p99 %7.2fms  in flight %6d  errors %d",
		elapsed, phase, ackRate, pushRate, ms(r.s.ackLat.Quantile(0.99)), ms(r.s.pushLat.Quantile(0.99)), outstanding(), errs)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// sortedKinds returns the keys of m in order, for stable output.
func sortedKinds(m map[string]int64) []string { return slices.Sorted(maps.Keys(m)) }
