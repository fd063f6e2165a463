package im

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"google.golang.org/protobuf/proto"
)

// Reasons a session ends, for logs and OnDisconnect.
var (
	errAuthTimeout  = errors.New("im: no authentication in time")
	errIdle         = errors.New("im: connection idle")
	errSlowConsumer = errors.New("im: client does not read fast enough")
	errKicked       = errors.New("im: session kicked")
	errAuthFailed   = errors.New("im: authentication failed")
)

// Kick-out reasons on the wire.
const (
	kickLoggedInElsewhere = 1
	kickAccountProblem    = 2
)

// session is one client connection, from accept to close.
//
// The ServeConn goroutine reads and handles frames. Frames to the client go
// through a bounded queue drained by a writer goroutine that exists only
// while there is something to write, so an idle connection costs no
// goroutine of its own.
type session struct {
	srv       *Server
	conn      Conn
	id        string
	transport string
	remote    string
	started   time.Time
	ctx       context.Context
	cancel    context.CancelFunc

	// Set once by the ServeConn goroutine on successful auth, before the
	// session is added to the hub; read-only afterwards.
	user string
	// platform changes at most once after auth (hub.setPlatform), under
	// both the hub shard's lock and mu.
	platform string
	authed   atomic.Bool

	lastRead atomic.Int64 // unix nanoseconds of the last frame read
	draining atomic.Bool  // the server is shutting down: take no new requests

	inflight chan struct{} // semaphore bounding sends awaiting commit
	tokens   float64       // rate limiter, used by the reader goroutine only
	tokensAt time.Time

	mu       sync.Mutex
	queue    []Frame
	spare    []Frame
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

// enqueue queues frames for the client. It never blocks: a client whose
// queue is full is disconnected, because silently dropping a push would
// leave a gap only a resync can repair. It reports whether the frames were
// queued.
func (s *session) enqueue(frames ...Frame) bool {
	s.mu.Lock()
	if s.closed || s.drain {
		s.mu.Unlock()
		return false
	}
	if len(s.queue)+len(frames) > s.srv.cfg.SendQueue {
		s.mu.Unlock()
		s.srv.stats.slowConsumers.Add(1)
		s.close(errSlowConsumer)
		return false
	}
	s.queue = append(s.queue, frames...)
	if !s.writing {
		s.writing = true
		s.writer.Add(1)
		go s.writeLoop()
	}
	s.mu.Unlock()
	return true
}

func (s *session) writeLoop() {
	defer s.writer.Done()
	var batch []Frame
	for {
		s.mu.Lock()
		if batch != nil {
			clear(batch) // let the bodies go
			s.spare = batch[:0]
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
		batch, s.queue, s.spare = s.queue, s.spare, nil
		s.mu.Unlock()

		ctx, done := s.writeCtx(time.Now())
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
	s.queue = nil
	s.mu.Unlock()
	s.cancel()
	_ = s.conn.Close()
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
		// Only possible with invalid UTF-8 in a string field, which the
		// server never produces from validated input.
		s.srv.log.Error("marshal response", "cmd", cmd, "err", err)
		return
	}
	s.enqueue(Frame{Command: cmd, Sequence: seq, Body: body})
}

// kick tells the client why it is being disconnected, then disconnects it.
func (s *session) kick(reason int32, msg string) {
	s.srv.log.Info("session kicked", "user", s.user, "device", s.id, "reason", msg)
	s.respond(imv1.CommandType_CMD_KICK_OUT, 0, &imv1.KickOutNotification{Reason: reason, Message: msg})
	s.mu.Lock()
	if s.closeErr == nil {
		s.closeErr = errKicked
	}
	s.mu.Unlock()
	s.closeAfterFlush()
}

// allowSend is a token bucket: SendRate per second, bursts of twice that.
func (s *session) allowSend(now time.Time) bool {
	rate := s.srv.cfg.SendRate
	if rate < 0 {
		return true
	}
	burst := 2 * rate
	if s.tokensAt.IsZero() {
		s.tokens = burst
	} else {
		s.tokens = min(burst, s.tokens+now.Sub(s.tokensAt).Seconds()*rate)
	}
	s.tokensAt = now
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	return true
}

func (s *session) logger() *slog.Logger {
	return s.srv.log.With("user", s.user, "device", s.id)
}
