package im

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a Server's counters (since NewServer) and gauges
// (now), for metrics and health pages.
type Stats struct {
	Connections int64 // open connections, authenticated or not
	Sessions    int64 // authenticated sessions

	FramesIn  uint64 // frames read from clients
	FramesOut uint64 // frames written to clients

	MessagesStored uint64 // new messages committed
	Duplicates     uint64 // sends answered from the dedup index
	SendsRefused   uint64 // sends answered with an error

	Commits    uint64        // store commits (each a batch of sends)
	CommitTime time.Duration // total time spent in those commits
	// CommitSeconds is the distribution of the commits' durations, in
	// seconds, and CommitBatch that of their sizes, in messages (a
	// group change is a commit of one).
	CommitSeconds Histogram
	CommitBatch   Histogram
	SlowConsumers uint64 // connections closed because their queue was full

	// AfterSendDropped counts messages not handed to Config.AfterSend
	// because its queue was full.
	AfterSendDropped uint64

	// Notifications counts calls of Config.Notifier, NotificationErrors
	// those that returned an error or panicked, and NotificationsDropped
	// the messages and recalls whose notifications were not made because
	// the Notifier's queue was full (each may have been for many
	// recipients).
	Notifications        uint64
	NotificationErrors   uint64
	NotificationsDropped uint64

	// StorePanics counts Store calls that panicked. Each failed the one
	// request or commit it was for, with an internal error.
	StorePanics uint64
	// CorruptReads counts requests and sends that failed because stored
	// data failed its integrity check (ErrCorrupt); each is logged.
	CorruptReads uint64
	// SignalsLimited counts signals (typing) refused because their
	// sender was over Config.SignalRate.
	SignalsLimited uint64
	// ReceiptsLimited counts read receipts and read-state requests
	// refused by their user's rate limit (Config.ReadReceiptRate).
	ReceiptsLimited uint64
	// SignalsDropped counts signal pushes not delivered to a connection:
	// replaced by a newer one from the same sender about the same
	// conversation while still queued, dropped because the connection's
	// queue was full, or given up to make room for a message.
	SignalsDropped uint64

	// PresenceOnline is how many users read as online now (those within
	// Config.PresenceOfflineDelay of their last session included).
	PresenceOnline int64
	// PresenceSubscriptions is how many presence subscriptions the open
	// connections hold, and PresenceWatched how many users they are
	// about. Both fall back as connections close.
	PresenceSubscriptions int64
	PresenceWatched       int64
}

// counters are the Server's live Stats. Atomics, so the hot path takes no
// lock for them.
type counters struct {
	connections, sessions               atomic.Int64
	framesIn, framesOut                 atomic.Uint64
	stored, duplicates, refused         atomic.Uint64
	commits, commitNanos, slowConsumers atomic.Uint64
	afterSendDropped, storePanics       atomic.Uint64
	corruptReads                        atomic.Uint64
	signalsLimited, signalsDropped      atomic.Uint64
	receiptsLimited                     atomic.Uint64

	notifications, notifyErrors, notifyDropped atomic.Uint64

	commitTimes, commitSizes histogram
}

// Stats returns the server's counters and gauges.
func (s *Server) Stats() Stats {
	c := &s.stats
	subs, watched := s.watchers.size()
	return Stats{
		PresenceOnline:        int64(s.presence.online()),
		PresenceSubscriptions: int64(subs),
		PresenceWatched:       int64(watched),

		Connections:    c.connections.Load(),
		Sessions:       c.sessions.Load(),
		FramesIn:       c.framesIn.Load(),
		FramesOut:      c.framesOut.Load(),
		MessagesStored: c.stored.Load(),
		Duplicates:     c.duplicates.Load(),
		SendsRefused:   c.refused.Load(),
		Commits:        c.commits.Load(),
		CommitTime:     time.Duration(c.commitNanos.Load()),
		CommitSeconds:  c.commitTimes.snapshot(commitBounds, 1e-9),
		CommitBatch:    c.commitSizes.snapshot(batchBounds, 1),
		SlowConsumers:  c.slowConsumers.Load(),

		AfterSendDropped: c.afterSendDropped.Load(),
		StorePanics:      c.storePanics.Load(),
		CorruptReads:     c.corruptReads.Load(),
		SignalsLimited:   c.signalsLimited.Load(),
		SignalsDropped:   c.signalsDropped.Load(),
		ReceiptsLimited:  c.receiptsLimited.Load(),

		Notifications:        c.notifications.Load(),
		NotificationErrors:   c.notifyErrors.Load(),
		NotificationsDropped: c.notifyDropped.Load(),
	}
}

// Histogram is a distribution in fixed buckets, in the shape of a
// Prometheus histogram, so an exporter passes it on unchanged.
type Histogram struct {
	// Bounds are the buckets' upper bounds, ascending; a last bucket
	// without bound (+Inf) is implied.
	Bounds []float64
	// Counts[i] is how many observations were at most Bounds[i]
	// (cumulative, as Prometheus counts them); Count is all of them, the
	// +Inf bucket.
	Counts []uint64
	Count  uint64
	Sum    float64
}

// Buckets of the histograms in Stats, fixed so that observing needs no
// setup and no lock. Read only.
var (
	// commitBounds are commit durations in nanoseconds, 0.5ms to 2.5s.
	commitBounds = []uint64{
		500e3, 1e6, 2.5e6, 5e6, 10e6, 25e6, 50e6, 100e6, 250e6, 500e6, 1e9, 2.5e9,
	}
	// batchBounds are commit sizes in messages, up to maxCommitBatch.
	batchBounds = []uint64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, maxCommitBatch}
)

// maxBuckets bounds the buckets of a histogram.
const maxBuckets = 16

// histogram is a Histogram kept in atomics: an observation is a search of
// a few bounds and two atomic adds, no lock. A snapshot read during an
// observation may see its bucket without its sum; scrapes tolerate that.
type histogram struct {
	counts [maxBuckets + 1]atomic.Uint64 // per bucket, not cumulative; +Inf after the bounds
	sum    atomic.Uint64
}

func (h *histogram) observe(bounds []uint64, v uint64) {
	i := 0
	for i < len(bounds) && v > bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(v)
}

// snapshot returns the histogram with bounds and sum times scale, the
// size of one observed unit in the Histogram's unit.
func (h *histogram) snapshot(bounds []uint64, scale float64) Histogram {
	s := Histogram{
		Bounds: make([]float64, len(bounds)),
		Counts: make([]uint64, len(bounds)),
		Sum:    float64(h.sum.Load()) * scale,
	}
	for i, b := range bounds {
		s.Bounds[i] = float64(b) * scale
		s.Count += h.counts[i].Load()
		s.Counts[i] = s.Count
	}
	s.Count += h.counts[len(bounds)].Load()
	return s
}
