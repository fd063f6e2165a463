package im

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// quietLogEvery is the least time between two log lines of one kind about
// a hook or plug-in that is stuck or failing (messages AfterSend did not
// get, notifications dropped or failed): every send would log otherwise.
const quietLogEvery = 10 * time.Second

// logLimit lets a kind of log line through at most every quietLogEvery.
type logLimit struct{ last atomic.Int64 }

func (l *logLimit) allow() bool {
	now := time.Now().UnixNano()
	last := l.last.Load()
	return now-last >= int64(quietLogEvery) && l.last.CompareAndSwap(last, now)
}

// drain calls fn with each value from q until q is closed (Shutdown: every
// value queued is handed over) or stop is (Close: what is still queued is
// not).
func drain[T any](stop <-chan struct{}, q <-chan T, fn func(T)) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		select {
		case v, ok := <-q:
			if !ok {
				return
			}
			fn(v)
		case <-stop:
			return
		}
	}
}

// guardHooks replaces the host's hooks and plug-ins in s.cfg by versions
// that recover a panic and log it with its stack, as net/http does for
// handlers: host code that panics fails the one call it was in, not the
// connection and not the server. Wrapping them once here leaves every call
// site as it is; only the Authenticator is guarded at its one call site,
// Server.Authenticate, because a wrapper's frame made connections' stacks
// grow (see there).
func (s *Server) guardHooks() {
	c := &s.cfg
	if c.Users != nil {
		c.Users = guardedUsers{s, c.Users}
	}
	if f := c.BeforeSend; f != nil {
		c.BeforeSend = func(ctx context.Context, m *Message) (err error) {
			defer s.recoverHook("BeforeSend", &err)
			return f(ctx, m)
		}
	}
	if f := c.AfterSend; f != nil {
		c.AfterSend = func(m Message) {
			defer s.recoverHook("AfterSend", nil)
			f(m)
		}
	}
	if f := c.AfterRecall; f != nil {
		c.AfterRecall = func(ctx context.Context, m Message) {
			defer s.recoverHook("AfterRecall", nil)
			f(ctx, m)
		}
	}
	if f := c.GroupAddPolicy; f != nil {
		c.GroupAddPolicy = func(ctx context.Context, actorID, userID string) (err error) {
			defer s.recoverHook("GroupAddPolicy", &err)
			return f(ctx, actorID, userID)
		}
	}
	if f := c.PresenceVisible; f != nil {
		c.PresenceVisible = func(ctx context.Context, viewerID, userID string) (ok bool, err error) {
			defer s.recoverHook("PresenceVisible", &err)
			return f(ctx, viewerID, userID)
		}
	}
	if f := c.ConnContext; f != nil {
		// A panic leaves the result nil, which refuses the connection.
		c.ConnContext = func(ctx context.Context, info ConnInfo) (out context.Context) {
			defer s.recoverHook("ConnContext", nil)
			return f(ctx, info)
		}
	}
	if f := c.OnConnect; f != nil {
		c.OnConnect = func(si SessionInfo) {
			defer s.recoverHook("OnConnect", nil)
			f(si)
		}
	}
	if f := c.OnDisconnect; f != nil {
		c.OnDisconnect = func(si SessionInfo, err error) {
			defer s.recoverHook("OnDisconnect", nil)
			f(si, err)
		}
	}
}

// recoverHook, deferred around a call of host code, recovers its panic,
// logs it with the stack and, when errp is not nil, makes it the call's
// error: an internal error, so the client is told no more than that.
func (s *Server) recoverHook(hook string, errp *error) {
	v := recover()
	if v == nil {
		return
	}
	// debug.Stack allocates what it needs on the heap. (A fixed buffer
	// here would sit in this function's frame, which every hook call's
	// deferred check enters, growing each goroutine's stack to fit it.)
	s.log.Error("hook panicked", "hook", hook, "panic", v, "stack", string(debug.Stack()))
	if errp != nil {
		*errp = &Error{Code: CodeUnknown, Msg: "internal error", Err: fmt.Errorf("im: %s panicked: %v", hook, v)}
	}
}

// recoverStore, deferred around a Store call, recovers its panic the way
// recoverHook does for host hooks: the call fails with an internal error,
// the panic is logged with its stack and counted (Stats.StorePanics), and
// the request or batch it was for is answered with that error. Only recover
// is called here, so that the frame every deferred check enters stays
// small; the rest is in storePanicked.
func (s *Server) recoverStore(call string, errp *error) {
	if v := recover(); v != nil {
		*errp = s.storePanicked(call, v)
	}
}

// storePanicked logs and counts a panic of Store call call, and returns the
// error the call fails with.
//
//go:noinline
func (s *Server) storePanicked(call string, v any) error {
	s.stats.storePanics.Add(1)
	s.log.Error("store panicked", "call", call, "panic", v, "stack", string(debug.Stack()))
	return &Error{Code: CodeUnknown, Msg: "internal error", Err: fmt.Errorf("im: Store.%s panicked: %v", call, v)}
}

type guardedUsers struct {
	s *Server
	u UserDirectory
}

func (g guardedUsers) UserExists(ctx context.Context, userID string) (ok bool, err error) {
	defer g.s.recoverHook("UserDirectory", &err)
	return g.u.UserExists(ctx, userID)
}

// queueAfterSend hands m to the AfterSend runner without waiting: if the
// hook is that far behind, m is dropped and counted, so that a slow or
// stuck hook never holds up acks and pushes. (AfterSend is at most once;
// the store has every message.)
func (s *Server) queueAfterSend(m Message) {
	select {
	case s.after <- m:
		return
	default:
	}
	n := s.stats.afterSendDropped.Add(1)
	if s.afterDropLog.allow() {
		s.log.Warn("AfterSend is behind: messages not handed to it", "conv", m.ConversationID, "seq", m.Seq, "dropped", n)
	}
}

// runAfterSend calls AfterSend for each queued message until the queue is
// closed (Shutdown: everything queued is handed over) or the server closes
// (Close: what is still queued is not).
func (s *Server) runAfterSend() {
	defer close(s.afterDone)
	drain(s.stopBG, s.after, s.cfg.AfterSend)
}
