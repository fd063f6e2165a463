package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// connectParams shape a connect run.
type connectParams struct {
	conns        int
	dialParallel int
	rate         float64       // connections per second to open; 0 as fast as possible
	settle       time.Duration // wait after the ramp before measuring memory (-warmup)
	hold         time.Duration // keep the connections open this long (-duration)
	progress     io.Writer
	every        time.Duration
	logf         func(format string, args ...any)
}

// maxConnectErrors is how many failed connections end a ramp early: past
// that the server is refusing, and waiting for every dial to time out
// tells nothing more.
func maxConnectErrors(conns int) int64 { return int64(max(10, conns/20)) }

// runConnect ramps up to p.conns authenticated connections, reports the
// connect+auth rate and latency and the server's memory per connection,
// then holds them for p.hold and counts any that drop.
func runConnect(ctx context.Context, t target, users []benchUser, p connectParams) (*Report, error) {
	var (
		conns    = make([]*benchConn, p.conns)
		lat      histogram
		errs     errorCounts
		failed   atomic.Int64
		opened   atomic.Int64
		dropped  atomic.Int64
		next     atomic.Int64
		lastOpen atomic.Int64 // ns since start of the last successful connect
		readers  sync.WaitGroup
		workers  sync.WaitGroup
	)
	ignore := func(f wire.Frame) {
		if f.Command == imv1.CommandType_CMD_KICK_OUT {
			errs.add("kicked out")
		}
	}
	lost := func(error) { dropped.Add(1) }

	before := sampleUsage(t.serverPID)
	stopProgress := make(chan struct{})
	progress(&workers, stopProgress, p.progress, p.every, func(e time.Duration) string {
		return fmt.Sprintf("%s %7s connected %6d  failed %d  dropped %d", t.name, e, opened.Load(), failed.Load(), dropped.Load())
	})
	p.logf("%s: opening %d connections over %s, %d at a time", t.name, p.conns, t.dialer.transport, p.dialParallel)
	start := time.Now()
	rctx, cancel := context.WithCancel(ctx)
	var dialers sync.WaitGroup
	for range max(1, min(p.dialParallel, p.conns)) {
		dialers.Add(1)
		go func() {
			defer dialers.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= p.conns || rctx.Err() != nil {
					return
				}
				if p.rate > 0 {
					due := start.Add(time.Duration(float64(i) / p.rate * float64(time.Second)))
					if !sleepCtx(rctx, time.Until(due)) {
						return
					}
				}
				u := users[i%len(users)]
				t0 := time.Now()
				dctx, dcancel := context.WithTimeout(rctx, 15*time.Second)
				c, err := connect(dctx, t.dialer, i, u.UserID, u.Token)
				dcancel()
				if err != nil {
					if rctx.Err() != nil {
						return
					}
					errs.add(connectErrorKind(err))
					if failed.Add(1) >= maxConnectErrors(p.conns) {
						p.logf("%s: too many failed connections, stopping the ramp; last: %v", t.name, err)
						cancel()
					}
					continue
				}
				lat.Record(time.Since(t0))
				lastOpen.Store(int64(time.Since(start)))
				conns[i] = c
				opened.Add(1)
				c.serve(&readers, ignore, lost)
			}
		}()
	}
	dialers.Wait()
	cancel()
	ramp := time.Duration(lastOpen.Load())
	rampEnd := sampleUsage(t.serverPID)
	n := opened.Load()
	p.logf("%s: %d connections open in %s", t.name, n, ramp.Round(time.Millisecond))

	stopKeep := make(chan struct{})
	keepAlive(&workers, stopKeep, conns, keepAliveEvery)
	var settled usage
	ok := sleepCtx(ctx, p.settle)
	settled = sampleUsage(t.serverPID)
	if ok {
		sleepCtx(ctx, p.hold)
	}
	close(stopKeep)
	close(stopProgress)
	workers.Wait()
	closeAll(conns, &readers)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	errTotal, byKind := errs.snapshot()
	if d := dropped.Load(); d > 0 {
		if byKind == nil {
			byKind = map[string]int64{}
		}
		byKind["dropped"] += d
		errTotal += d
	}
	rep := &Report{
		Scenario:    "connect",
		Target:      t.name,
		Transport:   t.dialer.transport,
		Conns:       p.conns,
		DurationSec: ramp.Seconds(),
		Errors:      errTotal,
		ErrorKinds:  byKind,
		Dropped:     dropped.Load(),
	}
	if ramp > 0 {
		rep.ConnectPerSec = float64(n) / ramp.Seconds()
	}
	rep.ConnectP50Ms, rep.ConnectP99Ms, rep.ConnectMaxMs = ms(lat.Quantile(0.5)), ms(lat.Quantile(0.99)), ms(lat.Max())
	rep.setUsage(before, rampEnd)
	if n > 0 && before.serverAnon >= 0 && settled.serverAnon >= 0 {
		rep.ServerRSSPerConnBytes = ptr(float64(settled.serverAnon-before.serverAnon) / float64(n))
	}
	if settled.serverRSS >= 0 {
		rep.ServerRSSBytes = ptr(settled.serverRSS)
	}
	if n > 0 && before.selfAnon >= 0 && settled.selfAnon >= 0 {
		rep.ClientRSSPerConnBytes = ptr(float64(settled.selfAnon-before.selfAnon) / float64(n))
	}
	rep.setVerdict(verdict{})
	rep.OK = rep.OK && n == int64(p.conns)
	return rep, nil
}

// connectErrorKind names a failed connection for the error counts.
func connectErrorKind(err error) string {
	switch {
	case errors.Is(err, errAuth):
		return "auth refused"
	case errors.Is(err, context.DeadlineExceeded):
		return "connect timeout"
	}
	return "connect failed"
}
