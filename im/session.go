package im

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"google.golang.org/protobuf/proto"
)

// Kick-out reasons on the wire.
const (
	kickLoggedInElsewhere = 1
	kickAccountProblem    = 2
)

// session is one client connection, from accept to close.
//
// The ServeConn goroutine reads and handles frames, one at a time (most
// requests on a goroutine it waits for; see aside). Frames to the client go
// through a queue drained by a writer goroutine that exists only while there
// is something to write, so an idle connection costs no goroutine of its
// own.
//
// The queue is bounded two ways. Pushes (frames caused by others) are
// refused past Config.SendQueue frames or Config.SendQueueBytes bytes, and
// the session is closed: dropping one would leave a gap that only a resync
// repairs. Signals (typing) are the exception: they are dropped or replaced,
// never the reason a session is closed (see signals.go). Responses (frames the client asked for) are never refused;
// instead the reader stops reading requests while the queue holds more than
// half of either bound, so a client that sends requests without reading the
// answers holds up no one but itself, and its answers take at most half the
// bound plus one response.
type session struct {
	srv       *Server
	conn      Conn
	id        string
	transport string
	remote    string
	started   time.Time
	ctx       context.Context
	cancel    context.CancelFunc
	stopBase  func() bool // undoes the hook that cancels ctx with the Server's

	// Set once by the session's request handling on successful auth, before the
	// session is added to the hub; read-only afterwards.
	user string
	// platform changes at most once after auth (hub.setPlatform), under
	// both the hub shard's lock and mu.
	platform string
	// platformSlot is where the session is counted in Stats'
	// SessionsByPlatform; only the ServeConn goroutine touches it.
	platformSlot int
	stripe       uint8 // of the Stats counters it updates per frame (stripeOf)
	authed       atomic.Bool
	// tokenID is the Identity.TokenID the session authenticated with;
	// guarded by mu, since a re-authentication may change it.
	tokenID string

	lastRead atomic.Int64 // unix nanoseconds of the last frame read
	// unauthed and badRequests count what maxUnauthedRequests and
	// maxBadRequests limit.
	unauthed    atomic.Int32
	badRequests atomic.Int32
	draining    atomic.Bool // the server is shutting down: take no new requests

	inflight chan struct{} // semaphore bounding sends awaiting commit

	// receipts is set while the connection is subscribed to delivery
	// receipts (DELIVERY_RECEIPT_PUSH).
	receipts atomic.Bool
	// convChanges is set while the connection is subscribed to the
	// user's conversation changes (CONVERSATION_CHANGED_PUSH).
	convChanges atomic.Bool
	// friendEvents is set while the connection is subscribed to
	// FRIEND_EVENT_PUSH.
	friendEvents atomic.Bool
	// groupEvents is set while the connection is subscribed to the group
	// management pushes (GROUP_JOIN_REQUEST_PUSH, GROUP_JOIN_REJECTED_PUSH).
	groupEvents atomic.Bool

	// watching is the users this connection subscribed to the presence
	// of; only the session's request handling touches it, one request at
	// a time (on the reader goroutine or one it waits for).
	watching map[string]struct{}

	paused atomic.Bool // the reader waits for the queue to drain (waitForRoom)
	// over mirrors full(), set under mu wherever the backlog changes, so
	// that the reader checks it per frame without taking mu.
	over atomic.Bool

	mu     sync.Mutex
	queue  []Frame
	spare  []Frame
	queued backlog // every frame in queue and in the batch being written
	pushed backlog // the pushes among them
	// signals maps each droppable push waiting in queue (not yet in the
	// writer's batch) to its index there; see enqueueSignal.
	signals map[signalKey]int
	// acks are the last ackRing messages pushed, to map a MSG_ACK to its
	// conversation and seq; ackNext is where the next one goes. Allocated
	// with the first push of a message: at 2.5 KiB it would otherwise be
	// most of the session of a connection that never gets one.
	acks    *[ackRing]pushRef
	ackNext int
	// room, when not nil, is closed once the backlog is back under the
	// reader's watermark or the session closes.
	room     chan struct{}
	writing  bool
	drain    bool // close once the queue is written
	closed   bool
	closeErr error
	writer   sync.WaitGroup

	// A busy session's write context and its deadline, reused across
	// batches: setting up a deadline (a timer, a child context, and the
	// transport's hooks) per batch cost a tenth of the server's CPU under
	// load. A quiet session keeps none, so an idle connection costs no
	// memory for it. Only the writer goroutine touches these; writers of a
	// session never overlap.
	wctx      context.Context
	wcancel   context.CancelFunc
	wdeadline time.Time
	lastWrite time.Time
}

func (s *session) info() SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SessionInfo{
		ID:          s.id,
		UserID:      s.user,
		Platform:    s.platform,
		Transport:   s.transport,
		RemoteAddr:  s.remote,
		ConnectedAt: s.started,
	}
}

// backlog counts frames waiting to be written and what they weigh.
type backlog struct{ frames, bytes int }

// frameCost is what a frame weighs against Config.SendQueueBytes: its body
// and a header's worth, so that a flood of empty frames counts too.
func frameCost(f Frame) int { return len(f.Body) + frameOverhead }

const frameOverhead = 32

func (b *backlog) add(f Frame) {
	b.frames++
	b.bytes += frameCost(f)
}

func (b *backlog) sub(o backlog) {
	b.frames -= o.frames
	b.bytes -= o.bytes
}

// enqueue queues a push for the client. It never blocks: a client whose
// pushes fill its queue is disconnected, because silently dropping a push
// would leave a gap only a resync can repair; signals waiting in the queue
// (enqueueSignal) are dropped first. It reports whether the frame was
// queued.
func (s *session) enqueue(f Frame) bool {
	return s.put(f, true, nil, nil)
}

// enqueueMessage is enqueue for the push of a new message, which the
// session remembers for the client's MSG_ACK. A writer it needs is left
// to held, when not nil.
func (s *session) enqueueMessage(f Frame, ref *pushRef, held *heldWriters) bool {
	return s.put(f, true, ref, held)
}

// heldWriters gathers the sessions whose writers a delivery goroutine holds
// back while it queues a batch of committed messages: started at once, a
// session's writer would write the first of its frames (an ack, a push) on
// its own and the rest in later writes; started once the batch is queued, it
// writes them all with one system call. Only its goroutine touches it.
type heldWriters struct {
	sessions []*session
	// since is when the first writer was held (see Server.epoch): every
	// held session's first frame was queued after it, so it stands, an
	// upper bound, for each one's wait in Stats.QueueDelay, without a
	// clock read per session.
	since time.Duration
}

// hold holds back the start of s's writer.
func (h *heldWriters) hold(s *session) {
	if len(h.sessions) == 0 {
		h.since = time.Since(s.srv.epoch)
	}
	h.sessions = append(h.sessions, s)
}

// start starts the writers held back so far.
func (h *heldWriters) start() {
	for _, s := range h.sessions {
		go s.writeLoop(h.since)
	}
	clear(h.sessions)
	h.sessions = h.sessions[:0]
}

// put queues f, a push or a response, and starts the writer if it is not
// running: at once, or, if held is not nil, when held.start is called.
func (s *session) put(f Frame, push bool, ref *pushRef, held *heldWriters) bool {
	s.mu.Lock()
	if s.closed || s.drain {
		s.mu.Unlock()
		return false
	}
	// Signals waiting in the queue are given up before the session is:
	// someone else's typing must not cost this client its connection.
	if push && s.overPushBound(f) && (!s.evictSignalsLocked() || s.overPushBound(f)) {
		s.mu.Unlock()
		s.srv.stats.slowConsumers.Add(1)
		s.close(ErrSlowConsumer)
		return false
	}
	s.appendLocked(f, push, held)
	if ref != nil {
		s.rememberPushLocked(ref)
	}
	s.mu.Unlock()
	return true
}

// rememberPushLocked keeps ref in the ring MSG_ACKs are matched against,
// which is allocated with the session's first message push: most idle
// connections never get one.
func (s *session) rememberPushLocked(ref *pushRef) {
	if s.acks == nil {
		s.acks = new([ackRing]pushRef)
	}
	s.acks[s.ackNext] = *ref
	s.ackNext = (s.ackNext + 1) % ackRing
}

// enqueueMessages queues the pushes of several new messages at once, in
// order, skipping each one the session sent itself (origins[i] == s):
// one lock and at most one writer started for all of them, so that they
// leave in one write. refs[i] is what enqueueMessage's ref is, or nil. A
// push past the queue's bounds closes the session, as in enqueue. It
// reports whether it queued any.
func (s *session) enqueueMessages(frames []Frame, refs []*pushRef, origins []*session, held *heldWriters) bool {
	queued := false
	s.mu.Lock()
	for i, f := range frames {
		if origins[i] == s {
			continue
		}
		if s.closed || s.drain {
			break
		}
		if s.overPushBound(f) && (!s.evictSignalsLocked() || s.overPushBound(f)) {
			s.mu.Unlock()
			s.srv.stats.slowConsumers.Add(1)
			s.close(ErrSlowConsumer)
			return queued
		}
		s.appendLocked(f, true, held)
		if refs[i] != nil {
			s.rememberPushLocked(refs[i])
		}
		queued = true
	}
	s.mu.Unlock()
	return queued
}

// overPushBound reports whether queueing push f would take the pushes
// waiting past either of the queue's bounds. Called with mu held.
func (s *session) overPushBound(f Frame) bool {
	return s.pushed.frames >= s.srv.cfg.SendQueue || s.pushed.bytes+frameCost(f) > s.srv.cfg.SendQueueBytes
}

// appendLocked queues f and starts the writer if it is not running, or
// leaves it to held. Called with mu held.
func (s *session) appendLocked(f Frame, push bool, held *heldWriters) {
	s.queue = append(s.queue, f)
	s.queued.add(f)
	if push {
		s.pushed.add(f)
	}
	if !s.over.Load() && s.full() {
		s.over.Store(true)
	}
	if !s.writing {
		// writing is set now even when the start is held: the session
		// counts as being written, so nothing else starts a writer, and
		// its close waits for the writer through s.writer.
		s.writing = true
		s.writer.Add(1)
		if held != nil {
			held.hold(s)
		} else {
			go s.writeLoop(time.Since(s.srv.epoch))
		}
	}
}

// full reports whether the backlog is over the reader's watermark, half of
// either bound. Called with mu held.
func (s *session) full() bool {
	return s.queued.frames > s.srv.cfg.SendQueue/2 || s.queued.bytes > s.srv.cfg.SendQueueBytes/2
}

// waitForRoom holds the reader while the backlog is over the watermark, and
// returns once the writer has brought it under, the session has closed, or
// its context has ended. Requests the client pipelines meanwhile wait in the
// connection's buffers, and then the client's: the back-pressure it feels.
func (s *session) waitForRoom() {
	if !s.over.Load() {
		return // the common case: one atomic load per frame, no lock
	}
	for {
		s.mu.Lock()
		if s.closed || !s.full() {
			s.mu.Unlock()
			return
		}
		if s.room == nil {
			s.room = make(chan struct{})
		}
		room := s.room
		s.mu.Unlock()
		s.paused.Store(true)
		select {
		case <-room:
		case <-s.ctx.Done():
		}
		s.paused.Store(false)
		// The client was not heard while the server did not listen: its
		// idle time starts again now.
		s.lastRead.Store(time.Now().UnixNano())
		if s.ctx.Err() != nil {
			return
		}
	}
}

// wakeReader lets a waiting reader go on once the backlog is under the
// watermark. Called with mu held.
func (s *session) wakeReader() {
	if s.room != nil && (s.closed || !s.full()) {
		close(s.room)
		s.room = nil
	}
}

// writeLoop writes the queue in batches until it is empty. started is
// when it was started (since the Server's epoch), which Stats.QueueDelay
// counts from.
func (s *session) writeLoop(started time.Duration) {
	defer s.writer.Done()
	since := started
	var batch []Frame
	var inBatch, pushesInBatch backlog
	for {
		s.mu.Lock()
		if batch != nil {
			clear(batch) // let the bodies go
			s.spare = batch[:0]
			s.queued.sub(inBatch)
			s.pushed.sub(pushesInBatch)
			s.over.Store(s.full())
			s.wakeReader()
		}
		if s.closed || len(s.queue) == 0 {
			s.writing = false
			closeNow := !s.closed && s.drain
			s.mu.Unlock()
			if closeNow {
				s.close(nil)
			}
			return
		}
		// The batch is the whole queue, so what it weighs is the backlog.
		batch, s.queue, s.spare = s.queue, s.spare, nil
		if len(s.signals) > 0 {
			// Signals in the batch are on their way; the queue's
			// indices start again.
			clear(s.signals)
		}
		inBatch, pushesInBatch = s.queued, s.pushed
		s.mu.Unlock()

		// The batch's oldest frame came after since: the writer's start
		// or the previous batch being taken. The clock read is the one the
		// write's deadline needs anyway.
		now := time.Now()
		at := now.Sub(s.srv.epoch)
		s.srv.stats.queueDelay.observe(s.stripe, queueDelayBounds, uint64(max(at-since, 0)))
		since = at
		ctx, done := s.writeCtx(now)
		err := s.conn.WriteFrames(ctx, batch)
		done()
		s.srv.stats.framesOut.Add(uint64(len(batch)))
		if err != nil {
			s.close(err)
			return
		}
	}
}

// writeCtx returns the context for a write starting at now, and what to
// call once the write is over. A session that wrote less than a second ago
// reuses one context, whose deadline is renewed once less than nine tenths
// of WriteTimeout is left (so a write is given between 90% and all of it);
// any other write gets a context of its own.
func (s *session) writeCtx(now time.Time) (context.Context, func()) {
	timeout := s.srv.cfg.WriteTimeout
	busy := !s.lastWrite.IsZero() && now.Sub(s.lastWrite) < time.Second
	s.lastWrite = now
	if !busy {
		s.releaseWriteCtx()
		ctx, cancel := context.WithDeadline(s.ctx, now.Add(timeout))
		return ctx, cancel
	}
	if s.wctx == nil || s.wdeadline.Sub(now) < timeout-timeout/10 {
		s.releaseWriteCtx()
		s.wdeadline = now.Add(timeout)
		s.wctx, s.wcancel = context.WithDeadline(s.ctx, s.wdeadline)
	}
	return s.wctx, nop
}

// releaseWriteCtx lets go of the reused write context, if any.
func (s *session) releaseWriteCtx() {
	if s.wcancel != nil {
		s.wcancel()
		s.wctx, s.wcancel = nil, nil
	}
}

func nop() {}

// closeAfterFlush closes the session once everything queued so far is
// written; nothing queued later is sent.
func (s *session) closeAfterFlush() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.drain = true
	idle := !s.writing
	s.mu.Unlock()
	if idle {
		s.close(nil)
	}
}

// close ends the session now. The first reason wins.
func (s *session) close(reason error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.closeErr == nil {
		s.closeErr = reason
	}
	reason = s.closeErr
	s.queue = nil
	s.signals = nil
	s.wakeReader()
	s.mu.Unlock()
	// The connection is closed before the context is cancelled: the
	// cancellation wakes the reader, whose return lets the transport close
	// the connection its own way, and the first close is the one the
	// client sees (a WebSocket's status code).
	if rc, ok := s.conn.(ReasonCloser); ok {
		_ = rc.CloseWithReason(reason)
	} else {
		_ = s.conn.Close()
	}
	s.cancel()
}

// ending reports whether the session is closed or on its way out: a
// reason to end it is known (a kick waiting for its KICK_OUT to flush).
func (s *session) ending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed || s.closeErr != nil
}

func (s *session) reason() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeErr
}

// respond queues a response to the request with sequence seq.
func (s *session) respond(cmd imv1.CommandType, seq uint32, m proto.Message) {
	body, err := proto.Marshal(m)
	if err != nil {
		// Only possible with invalid UTF-8 in a string field, which
		// toWire repairs in what comes from the store. Should any other
		// slip through, the request is still answered, with an error: a
		// client would otherwise wait for its timeout. Every response
		// type has error_code and error_msg as fields 1 and 2, as
		// ErrorResponse does.
		s.srv.log.Error("marshal response", "cmd", cmd, "err", err)
		body, err = proto.Marshal(&imv1.ErrorResponse{ErrorCode: imv1.ErrorCode_ERR_UNKNOWN, ErrorMsg: "internal error: the response could not be encoded"})
		if err != nil {
			return
		}
	}
	s.put(Frame{Command: cmd, Sequence: seq, Body: body}, false, nil, nil)
}

// respondBody answers with a response already encoded.
func (s *session) respondBody(cmd imv1.CommandType, seq uint32, body []byte) {
	s.put(Frame{Command: cmd, Sequence: seq, Body: body}, false, nil, nil)
}

// kick tells the client why it is being disconnected, then disconnects it
// for reason, which wraps ErrKicked.
func (s *session) kick(code int32, msg string, reason error) {
	s.srv.log.Info("session kicked", "user", s.user, "device", s.id, "reason", msg)
	s.respond(imv1.CommandType_CMD_KICK_OUT, 0, &imv1.KickOutNotification{Reason: code, Message: msg})
	s.setReason(reason)
	s.closeAfterFlush()
}

// setReason records why the session is ending, unless a reason is known
// already: the first one wins.
func (s *session) setReason(err error) {
	s.mu.Lock()
	if s.closeErr == nil {
		s.closeErr = err
	}
	s.mu.Unlock()
}

func (s *session) logger() *slog.Logger {
	return s.srv.log.With("user", s.user, "device", s.id)
}
