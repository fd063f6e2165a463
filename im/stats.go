package im

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/imserver/imserver/im/imv1"
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

	// OnlineUsers is how many users have at least one authenticated
	// session on this server now. Unlike PresenceOnline it counts no
	// user whose last session has ended.
	OnlineUsers int64
	// ConnectionsByTransport is Connections by ConnInfo.Transport:
	// "tcp", "websocket", and "other" for any other transport.
	ConnectionsByTransport map[string]int64
	// SessionsByPlatform is Sessions by the platform the client reported
	// ("ios", "android", "web", "macos", "windows", "linux", matched
	// without regard to case), "none" for sessions that reported none and
	// "other" for any other, so that clients cannot grow the set.
	SessionsByPlatform map[string]int64

	// QueuedFrames and QueuedBytes are the frames waiting to be written
	// to the open authenticated sessions now, and what they weigh against
	// Config.SendQueueBytes; LargestQueueFrames and LargestQueueBytes are
	// the most any one session holds (not necessarily the same one). Read from every session at each
	// Stats call, one shard of sessions at a time, so that nothing is
	// counted per frame.
	QueuedFrames, QueuedBytes             int64
	LargestQueueFrames, LargestQueueBytes int64

	// MessagesByType is MessagesStored by message type: the protocol's
	// types by name ("text", "image", "audio", "video", "file",
	// "location", "card", "notification", "unknown" for type 0),
	// "custom" for CustomMessage and up, "other" for the rest.
	MessagesByType map[string]uint64
	// SendsRefusedByCode is SendsRefused by the protocol error code the
	// sender was answered with ("ERR_SEND_TOO_FAST", …).
	SendsRefusedByCode map[string]uint64

	// SendLatency is the distribution of the sends from clients that
	// reached a commit, by the time from their SEND frame being read to
	// their acknowledgement being queued to the connection (the wait for
	// a free slot of Config.MaxInflight and for the commit included), in
	// seconds.
	SendLatency Histogram
	// QueueDelay is the distribution of the batches of frames written to
	// clients, by how long their oldest frame can have waited in the
	// connection's queue, in seconds: from the writer being started for
	// the first batch, from the previous batch being taken for the others
	// (an upper bound, reached under backlog).
	QueueDelay Histogram
	// BatchSyncSeconds and SyncRangeSeconds are the distributions of the
	// BATCH_SYNC and SYNC_RANGE requests by handling time, from the frame
	// being read to the response being queued, in seconds.
	BatchSyncSeconds Histogram
	SyncRangeSeconds Histogram
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

	// Indexed by small ints (transportIndex, platformIndex, typeIndex,
	// refusalIndex), so counting one is an atomic add, no map and no lock.
	byTransport [len(transportNames)]atomic.Int64
	byPlatform  [len(platformNames)]atomic.Int64
	refusedBy   [len(refusalCodes)]atomic.Uint64
	byType      [stripes]typeCounts

	// Observed for every message and every batch written, from
	// goroutines on every core: striped (stripeOf).
	sendLatency, queueDelay stripedHistogram
	batchSyncs, syncRanges  histogram
}

// stripes is how many copies of a counter that every core updates all the
// time are kept, each on cache lines of its own, so that cores updating at
// once seldom wait for one another's line; a snapshot adds them up.
const stripes = 8

// stripeOf picks the stripe of a session from its serial number, so that
// the sessions served at once are spread over the stripes.
func stripeOf(serial uint64) uint8 { return uint8(serial % stripes) }

// typeCounts is one stripe of the stored messages by type, padded to
// whole cache lines.
type typeCounts struct {
	n [len(typeNames)]atomic.Uint64
	_ [128 - len(typeNames)*8%64]byte
}

// stripedHistogram is a histogram kept in stripes.
type stripedHistogram [stripes]struct {
	h histogram
	_ [64]byte // no stripe's sum shares a line with the next one's buckets
}

func (h *stripedHistogram) observe(stripe uint8, bounds []uint64, v uint64) {
	h[stripe%stripes].h.observe(bounds, v)
}

// snapshot sums the stripes.
func (h *stripedHistogram) snapshot(bounds []uint64, scale float64) Histogram {
	var sum histogram
	for i := range h {
		for j := range sum.counts {
			sum.counts[j].Add(h[i].h.counts[j].Load())
		}
		sum.sum.Add(h[i].h.sum.Load())
	}
	return sum.snapshot(bounds, scale)
}

// Stats returns the server's counters and gauges.
func (s *Server) Stats() Stats {
	st := s.Counters()
	q := s.hub.queues()
	st.QueuedFrames = int64(q.total.frames)
	st.QueuedBytes = int64(q.total.bytes)
	st.LargestQueueFrames = int64(q.largest.frames)
	st.LargestQueueBytes = int64(q.largest.bytes)
	return st
}

// Counters is Stats without the queue figures (QueuedFrames, QueuedBytes,
// LargestQueueFrames, LargestQueueBytes, left zero), which Stats reads from
// every session: for a caller that reads often and needs none of them,
// such as a sampler, to whom that walk (tens of milliseconds at 100,000
// sessions) would be a steady cost for nothing.
func (s *Server) Counters() Stats {
	c := &s.stats
	subs, watched := s.watchers.size()
	st := Stats{
		OnlineUsers:      s.hub.users.Load(),
		SendLatency:      c.sendLatency.snapshot(latencyBounds, 1e-9),
		QueueDelay:       c.queueDelay.snapshot(queueDelayBounds, 1e-9),
		BatchSyncSeconds: c.batchSyncs.snapshot(syncBounds, 1e-9),
		SyncRangeSeconds: c.syncRanges.snapshot(syncBounds, 1e-9),

		ConnectionsByTransport: make(map[string]int64, len(transportNames)),
		SessionsByPlatform:     make(map[string]int64, len(platformNames)),
		MessagesByType:         make(map[string]uint64, len(typeNames)),
		SendsRefusedByCode:     make(map[string]uint64, len(refusalCodes)),

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
	// Every label at every scrape, zeros included, so that a series does
	// not appear only once something happens.
	for i, name := range transportNames {
		st.ConnectionsByTransport[name] = c.byTransport[i].Load()
	}
	for i, name := range platformNames {
		st.SessionsByPlatform[name] = c.byPlatform[i].Load()
	}
	for i, name := range typeNames {
		for j := range c.byType {
			st.MessagesByType[name] += c.byType[j].n[i].Load()
		}
	}
	for i, code := range refusalCodes {
		st.SendsRefusedByCode[code.String()] = c.refusedBy[i].Load()
	}
	return st
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
	// latencyBounds are send-to-ack times in nanoseconds, 0.25ms to 5s.
	latencyBounds = []uint64{
		250e3, 500e3, 1e6, 2.5e6, 5e6, 10e6, 25e6, 50e6, 100e6, 250e6, 500e6, 1e9, 2.5e9, 5e9,
	}
	// queueDelayBounds are waits in a connection's queue in nanoseconds,
	// 10µs to 5s: a healthy connection's are the time a goroutine takes
	// to be scheduled and a write to be made.
	queueDelayBounds = []uint64{
		10e3, 25e3, 50e3, 100e3, 250e3, 500e3, 1e6, 2.5e6, 5e6, 10e6, 25e6, 100e6, 250e6, 1e9, 5e9,
	}
	// syncBounds are sync handling times in nanoseconds, 1ms to 10s.
	syncBounds = []uint64{1e6, 2.5e6, 5e6, 10e6, 25e6, 50e6, 100e6, 250e6, 500e6, 1e9, 2.5e9, 5e9, 10e9}
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

// observeSince records in h the time from since (unix nanoseconds) to now;
// a clock step backwards counts as no time.
func (h *histogram) observeSince(bounds []uint64, since int64, now time.Time) {
	h.observe(bounds, nanosSince(since, now))
}

func nanosSince(since int64, now time.Time) uint64 {
	return uint64(max(now.UnixNano()-since, 0))
}

// Label values of the counters kept by index. The sets are fixed, so that
// no client can make a label's values grow.
var (
	transportNames = [...]string{"tcp", "websocket", "other"}
	platformNames  = [...]string{"ios", "android", "web", "macos", "windows", "linux", "none", "other"}
	// typeNames are by MessageType for 0 to NotificationMessage, then
	// custom and other (typeIndex).
	typeNames = [...]string{"unknown", "text", "image", "audio", "video", "file", "location", "card", "notification", "custom", "other"}
	// refusalCodes are the error codes a send can be refused with; any
	// other counts as ERR_UNKNOWN (refusalIndex).
	refusalCodes = [...]imv1.ErrorCode{
		imv1.ErrorCode_ERR_UNKNOWN,
		imv1.ErrorCode_ERR_INVALID_PARAM,
		imv1.ErrorCode_ERR_AUTH_FAILED,
		imv1.ErrorCode_ERR_TOKEN_EXPIRED,
		imv1.ErrorCode_ERR_PERMISSION_DENIED,
		imv1.ErrorCode_ERR_USER_NOT_EXIST,
		imv1.ErrorCode_ERR_MESSAGE_TOO_LARGE,
		imv1.ErrorCode_ERR_SEND_TOO_FAST,
		imv1.ErrorCode_ERR_CONVERSATION_NOT_EXIST,
	}
)

func transportIndex(t string) int {
	for i, name := range transportNames[:len(transportNames)-1] {
		if t == name {
			return i
		}
	}
	return len(transportNames) - 1
}

// platformIndex matches without regard to case: clients spell their
// platforms as they like ("iOS", "ios").
func platformIndex(p string) int {
	if p == "" {
		return len(platformNames) - 2 // none
	}
	for i, name := range platformNames[:len(platformNames)-2] {
		if strings.EqualFold(p, name) {
			return i
		}
	}
	return len(platformNames) - 1
}

func typeIndex(t MessageType) int {
	switch {
	case t >= 0 && t <= NotificationMessage:
		return int(t)
	case t >= CustomMessage:
		return len(typeNames) - 2
	}
	return len(typeNames) - 1
}

func refusalIndex(code imv1.ErrorCode) int {
	for i, c := range refusalCodes {
		if c == code {
			return i
		}
	}
	return 0
}

// refusedWith counts a send answered with code.
func (c *counters) refusedWith(code imv1.ErrorCode) {
	c.refused.Add(1)
	c.refusedBy[refusalIndex(code)].Add(1)
}
