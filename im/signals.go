package im

import (
	"github.com/imserver/imserver/im/imv1"
)

// Signals are pushes that say something about now and nothing that has to
// last: typing and presence today, read receipts as they come. Nothing is
// stored for them and a lost one is repaired by the next, so the server
// limits how many a user may cause (a userLimiter, Config.SignalRate), and
// a recipient's queue drops or replaces them rather than let someone
// else's signals disconnect it.

// signalKey names what a queued signal is about: a newer signal with the
// same key makes an older one still waiting in the queue worthless.
type signalKey struct {
	cmd  imv1.CommandType
	from string
	conv string
}

// enqueueSignal queues a droppable push. A newer signal replaces an older
// one with the same key that is still waiting, in its place; a signal that
// finds the push queue at its bound is dropped, never closing the session.
// Stats.SignalsDropped counts both. Ordinary pushes go through enqueue and
// pay nothing for this: the bookkeeping lives in signals, which is nil
// unless a signal is waiting.
func (s *session) enqueueSignal(f Frame, key signalKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.drain {
		return
	}
	if i, ok := s.signals[key]; ok {
		d := frameCost(f) - frameCost(s.queue[i])
		s.queue[i] = f
		s.queued.bytes += d
		s.pushed.bytes += d
		s.srv.stats.signalsDropped.Add(1)
		return
	}
	if s.overPushBound(f) {
		s.srv.stats.signalsDropped.Add(1)
		return
	}
	if s.signals == nil {
		s.signals = make(map[signalKey]int)
	}
	s.signals[key] = len(s.queue)
	s.appendLocked(f, true, nil)
}

// evictSignalsLocked removes the signals waiting in the queue (not those in
// a batch being written), to make room for a push that must not be lost.
// It reports whether it removed any. Called with mu held.
func (s *session) evictSignalsLocked() bool {
	if len(s.signals) == 0 {
		return false
	}
	drop := make(map[int]bool, len(s.signals))
	for _, i := range s.signals {
		drop[i] = true
	}
	kept := s.queue[:0]
	for i, f := range s.queue {
		if drop[i] {
			c := frameCost(f)
			s.queued.frames--
			s.queued.bytes -= c
			s.pushed.frames--
			s.pushed.bytes -= c
			continue
		}
		kept = append(kept, f)
	}
	clear(s.queue[len(kept):])
	s.queue = kept
	s.srv.stats.signalsDropped.Add(uint64(len(s.signals)))
	clear(s.signals)
	s.over.Store(s.full())
	return true
}
