package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/imserver/imserver/im"
)

// The admin API's history of the server's figures (GET
// /admin/api/history), which the dashboard draws its charts from.
const (
	// AdminHistoryInterval is how often the figures are sampled.
	AdminHistoryInterval = 2 * time.Second
	// AdminHistoryLen is how many points the history keeps: 10 minutes
	// at AdminHistoryInterval.
	AdminHistoryLen = 300
)

// rawSample is what the history keeps of one im.Stats: the counters the
// rates are made from and the gauges as they were.
type rawSample struct {
	at                                 time.Time
	connections, sessions, online      int64
	stored, framesIn, framesOut        uint64
	commits, commitNanos, refused, dup uint64
}

// adminHistoryPoint is one point of the history: gauges at T, rates over
// the interval that ended at T.
type adminHistoryPoint struct {
	T               int64   `json:"t"` // Unix milliseconds
	Connections     int64   `json:"connections"`
	Sessions        int64   `json:"sessions"`
	OnlineUsers     int64   `json:"onlineUsers"`
	MessagesPerSec  float64 `json:"messagesPerSec"`
	FramesInPerSec  float64 `json:"framesInPerSec"`
	FramesOutPerSec float64 `json:"framesOutPerSec"`
	CommitsPerSec   float64 `json:"commitsPerSec"`
	// CommitMillis is the mean commit time over the interval; 0 when
	// there was no commit.
	CommitMillis     float64 `json:"commitMillis"`
	RefusedPerSec    float64 `json:"refusedPerSec"`
	DuplicatesPerSec float64 `json:"duplicatesPerSec"`
}

// history samples the Server's Stats every interval into a ring of
// AdminHistoryLen+1 samples (a point's rates need the sample before it).
//
// It samples in a goroutine of its own, rather than lazily when the
// history is asked for: the operator opens the dashboard when something
// has already gone wrong, and then wants the minutes before, which only
// a sampler that ran all along has. The goroutine is the handler's, but
// its lifetime is the Server's: the history registers with the Server
// as an im.Transport, the Server's hook for whatever must stop with it,
// so that Server.Shutdown and Close stop the sampler and wait for it.
// No goroutine outlives them, whatever the host does with the handler.
type history struct {
	stats    func() im.Stats
	interval time.Duration

	mu    sync.Mutex
	ring  []rawSample // len AdminHistoryLen+1 once full
	start int         // index of the oldest sample once full

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// startHistory starts sampling srv's Stats every interval until srv shuts
// down or closes.
func startHistory(srv *im.Server, interval time.Duration) *history {
	h := &history{
		stats:    srv.Counters, // no queue figures: the history keeps none
		interval: interval,
		ring:     make([]rawSample, 0, AdminHistoryLen+1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go h.run()
	// Registered after the goroutine starts: a Server already shutting
	// down closes h at once, which then waits for it.
	srv.RegisterTransport(h)
	return h
}

func (h *history) run() {
	defer close(h.done)
	tick := time.NewTicker(h.interval)
	defer tick.Stop()
	h.sample(time.Now())
	for {
		select {
		case <-h.stop:
			return
		case now := <-tick.C:
			h.sample(now)
		}
	}
}

func (h *history) sample(now time.Time) {
	st := h.stats()
	s := rawSample{
		at:          now,
		connections: st.Connections, sessions: st.Sessions, online: st.PresenceOnline,
		stored: st.MessagesStored, framesIn: st.FramesIn, framesOut: st.FramesOut,
		commits: st.Commits, commitNanos: uint64(st.CommitTime),
		refused: st.SendsRefused, dup: st.Duplicates,
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.ring) < cap(h.ring) {
		h.ring = append(h.ring, s)
		return
	}
	h.ring[h.start] = s
	h.start = (h.start + 1) % len(h.ring)
}

// points returns the points after since (Unix milliseconds), oldest first.
func (h *history) points(since int64) []adminHistoryPoint {
	h.mu.Lock()
	samples := make([]rawSample, 0, len(h.ring))
	samples = append(samples, h.ring[h.start:]...)
	samples = append(samples, h.ring[:h.start]...)
	h.mu.Unlock()
	out := []adminHistoryPoint{}
	for i := 1; i < len(samples); i++ {
		prev, cur := samples[i-1], samples[i]
		t := cur.at.UnixMilli()
		if t <= since {
			continue
		}
		secs := cur.at.Sub(prev.at).Seconds()
		if secs <= 0 {
			continue
		}
		rate := func(a, b uint64) float64 {
			if b < a {
				return 0
			}
			return float64(b-a) / secs
		}
		p := adminHistoryPoint{
			T:           t,
			Connections: cur.connections, Sessions: cur.sessions, OnlineUsers: cur.online,
			MessagesPerSec:   rate(prev.stored, cur.stored),
			FramesInPerSec:   rate(prev.framesIn, cur.framesIn),
			FramesOutPerSec:  rate(prev.framesOut, cur.framesOut),
			CommitsPerSec:    rate(prev.commits, cur.commits),
			RefusedPerSec:    rate(prev.refused, cur.refused),
			DuplicatesPerSec: rate(prev.dup, cur.dup),
		}
		if n := cur.commits - prev.commits; cur.commits > prev.commits && cur.commitNanos >= prev.commitNanos {
			p.CommitMillis = float64(cur.commitNanos-prev.commitNanos) / float64(n) / 1e6
		}
		out = append(out, p)
	}
	return out
}

// Shutdown stops the sampler; it is im.Transport's, called by
// Server.Shutdown.
func (h *history) Shutdown(context.Context) error { return h.Close() }

// Close stops the sampler and waits for its goroutine; it is
// im.Transport's, called by Server.Close.
func (h *history) Close() error {
	h.stopOnce.Do(func() { close(h.stop) })
	<-h.done
	return nil
}

type adminHistoryResponse struct {
	// Interval is the sampling interval in milliseconds.
	Interval int64               `json:"interval"`
	Points   []adminHistoryPoint `json:"points"`
}

func (ad *adminAPI) serveHistory(w http.ResponseWriter, r *http.Request) {
	var since int64
	if s := r.URL.Query().Get("since"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			ad.fail(w, r, "history", badRequest(fmt.Sprintf("since must be a time in Unix milliseconds, not %q", s)))
			return
		}
		since = n
	}
	pts := ad.history.points(since)
	ad.debugf(r, "admin: read history (%d points)", len(pts))
	writeOK(w, adminHistoryResponse{Interval: ad.history.interval.Milliseconds(), Points: pts})
}
