package main

import "time"

// pacer is the sending loop of one connection, the same for imserver's
// connections (loadConn) and the peer's (cfConn), so that both sides of a
// comparison are driven alike.
type pacer struct {
	stop <-chan struct{} // closed when the run ends
	done <-chan struct{} // closed when the connection's reader has returned
	now  func() int64    // the run's clock
	sem  chan struct{}   // a slot per unanswered send: the window
	// wake fires when something else waits to be written (MSG_ACKs),
	// which flush(0, 0, 0) writes; nil where nothing does.
	wake <-chan struct{}
	// left is how many more sends are allowed; nil for no limit.
	left func() int
	// flush writes n new sends, the k-th meant for time at+k*step, with
	// whatever else waits, in one write. It reports false when the
	// connection is broken.
	flush func(n int, at, step int64) bool
}

// idle only writes what wake says waits: the loop of a connection that
// does not send, or no longer does.
func (p *pacer) idle() {
	for p.await(nil) {
	}
}

// await waits for c, or for wake, and then writes what waits. It reports
// false once the run or the connection has ended, or a write failed.
func (p *pacer) await(c <-chan time.Time) bool {
	select {
	case <-p.stop:
		return false
	case <-p.done:
		return false
	case <-p.wake:
		return p.flush(0, 0, 0)
	case <-c:
		return true
	}
}

// closed keeps the window full: a new send for every answer.
func (p *pacer) closed() {
	for {
		if p.left != nil && p.left() <= 0 {
			p.idle()
			return
		}
		n := 0
		select {
		case <-p.stop:
			return
		case <-p.done:
			return
		case p.sem <- struct{}{}:
			n = 1
		case <-p.wake:
		}
		for n < cap(p.sem) && p.tryAcquire() {
			n++
		}
		if p.left != nil {
			if give := n - p.left(); give > 0 {
				for range give {
					<-p.sem
				}
				n -= give
			}
		}
		if !p.flush(n, p.now(), 0) {
			return
		}
	}
}

// open sends at the connection's share of rate (messages a second over
// senders connections, this one numbered slot), on a fixed schedule
// whatever the answers do. Latency counts from the scheduled time, so a
// server that falls behind shows it in latency instead of hiding it (no
// coordinated omission). The window still caps unanswered sends.
func (p *pacer) open(rate float64, senders, slot int) {
	n64 := int64(max(senders, 1))
	interval := max(int64(float64(n64)/rate*float64(time.Second)), 1)
	// Spread the senders' schedules over one interval.
	next := p.now() + interval*int64(slot)/n64
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if now := p.now(); next > now {
			timer.Reset(time.Duration(next - now))
			if !p.await(timer.C) {
				return
			}
			continue
		}
		select {
		case <-p.stop:
			return
		case <-p.done:
			return
		case <-p.wake:
			if !p.flush(0, 0, 0) {
				return
			}
			continue
		case p.sem <- struct{}{}:
		}
		now := p.now()
		n := 1
		// Everything else already due goes in the same write.
		for n < cap(p.sem) && next+int64(n)*interval <= now && p.tryAcquire() {
			n++
		}
		if !p.flush(n, next, interval) {
			return
		}
		next += int64(n) * interval
	}
}

// tryAcquire takes a window slot if one is free.
func (p *pacer) tryAcquire() bool {
	select {
	case p.sem <- struct{}{}:
		return true
	default:
		return false
	}
}
