package im

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imserver/imserver/im/imv1"
)

// Server is an instant-messaging server core. Transports hand it client
// connections (ServeConn); it authenticates them, stores and routes
// messages, and answers sync requests. It imports no transport and no store
// implementation: both are given to it.
//
// A Server starts its own background goroutines (the commit loop, the
// connection watchdog) in NewServer; Shutdown or Close stops them all.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store Store
	ids   *idGen
	hub   hub
	// groups caches the members of groups in use.
	groups *groupCache
	// sync is store's SyncStore side, nil when it has none.
	sync SyncStore

	// base is cancelled by Close; session contexts and store calls derive
	// from it. (A Server is a long-lived owner, like http.Server's
	// BaseContext, so keeping it here is the exception the rule allows.)
	base   context.Context
	cancel context.CancelFunc

	commits *committer
	after   chan Message // to the AfterSend runner; nil without the hook
	stats   counters

	mu        sync.Mutex
	closing   bool
	sessions  map[*session]struct{}
	sessWG    sync.WaitGroup // one per ServeConn
	bgWG      sync.WaitGroup // the server's own goroutines
	stopBG    chan struct{}
	closeOnce sync.Once
	sessionN  atomic.Uint64
}

// SessionInfo describes one live session.
type SessionInfo struct {
	ID          string
	UserID      string
	Platform    string
	Transport   string
	RemoteAddr  string
	ConnectedAt time.Time
}

// NewServer returns a Server for cfg. It fails if cfg lacks a Store or an
// Authenticator or holds an impossible value.
func NewServer(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		store:    cfg.Store,
		ids:      newIDGen(),
		sessions: make(map[*session]struct{}),
		stopBG:   make(chan struct{}),
	}
	s.sync, _ = cfg.Store.(SyncStore)
	s.base, s.cancel = context.WithCancel(context.Background())
	s.groups = newGroupCache(s.base, cfg.Store)
	s.commits = newCommitter(s)
	if cfg.AfterSend != nil {
		s.after = make(chan Message, afterSendQueue)
		s.goBG(s.runAfterSend)
	}
	s.goBG(s.commits.run)
	s.goBG(s.watchdog)
	return s, nil
}

const afterSendQueue = 4096

func (s *Server) goBG(f func()) {
	s.bgWG.Add(1)
	go func() {
		defer s.bgWG.Done()
		f()
	}()
}

// ServeConn runs one client session on c until the connection ends, the
// client is kicked, or the server shuts down, and closes c before returning.
// Transports call it once per accepted connection, on a goroutine of their
// own. It returns ErrServerClosed, having closed c, when the server is
// shutting down; otherwise the reason the session ended, nil for a normal
// close.
func (s *Server) ServeConn(ctx context.Context, c Conn, info ConnInfo) error {
	now := time.Now()
	sess := &session{
		srv:       s,
		conn:      c,
		id:        "s" + strconv.FormatUint(s.sessionN.Add(1), 36),
		transport: info.Transport,
		remote:    info.RemoteAddr,
		started:   now,
		platform:  info.Platform,
		inflight:  make(chan struct{}, s.cfg.MaxInflight),
	}
	sess.lastRead.Store(now.UnixNano())
	sess.ctx, sess.cancel = context.WithCancel(ctx)
	stop := context.AfterFunc(s.base, sess.cancel)
	defer stop()

	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		sess.cancel()
		_ = c.Close()
		return ErrServerClosed
	}
	s.sessions[sess] = struct{}{}
	s.sessWG.Add(1)
	s.mu.Unlock()
	defer s.sessWG.Done()
	s.stats.connections.Add(1)
	defer s.stats.connections.Add(-1)

	if info.Token != "" {
		if err := s.authenticate(sess, "", info.Token, info.Platform); err != nil {
			sess.close(err)
		}
	}
	for !sess.isClosed() {
		f, err := c.ReadFrame(sess.ctx)
		if err != nil {
			sess.close(err)
			break
		}
		sess.lastRead.Store(time.Now().UnixNano())
		s.stats.framesIn.Add(1)
		if sess.draining.Load() {
			continue // shutting down: no new work
		}
		s.handle(sess, f)
	}
	sess.writer.Wait()
	sess.releaseWriteCtx()

	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
	reason := sess.reason()
	if sess.authed.Load() {
		s.stats.sessions.Add(-1)
		s.hub.remove(sess)
		s.log.Debug("session ended", "user", sess.user, "device", sess.id, "err", reason)
		if s.cfg.OnDisconnect != nil {
			s.cfg.OnDisconnect(sess.info(), reason)
		}
	}
	if isClosedConn(reason) {
		return nil
	}
	return reason
}

func (s *session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// isClosedConn reports errors that only say the connection went away.
func isClosedConn(err error) bool {
	return err == nil || errors.Is(err, errKicked) || errors.Is(err, context.Canceled)
}

// Authenticate verifies token with the configured Authenticator. Transports
// use it to refuse a bad token before upgrading a connection: an error
// wrapping ErrUnauthenticated means the token is bad; any other error means
// it could not be checked now.
func (s *Server) Authenticate(ctx context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, errorf(imv1.ErrorCode_ERR_AUTH_FAILED, ErrUnauthenticated, "token is empty")
	}
	id, err := s.cfg.Authenticator.Authenticate(ctx, token)
	if err != nil {
		// Passed on as it is: an error that is not ErrUnauthenticated
		// (the host's user database is down) must not read as "bad
		// token", or clients would throw away tokens that are fine.
		return Identity{}, err
	}
	if !validID(id.UserID) {
		return Identity{}, errorf(imv1.ErrorCode_ERR_AUTH_FAILED, ErrUnauthenticated, "authenticator returned an invalid user id")
	}
	return id, nil
}

// authenticate binds sess to the user of token. userID, when not empty, must
// be the token's user (the SDK sends both).
func (s *Server) authenticate(sess *session, userID, token, platform string) error {
	ctx, cancel := context.WithTimeout(sess.ctx, s.cfg.AuthTimeout)
	defer cancel()
	id, err := s.Authenticate(ctx, token)
	if err != nil {
		return err
	}
	if userID != "" && userID != id.UserID {
		return errorf(imv1.ErrorCode_ERR_AUTH_FAILED, ErrUnauthenticated, "user_id does not match the token")
	}
	if sess.authed.Load() {
		if id.UserID != sess.user {
			return errorf(imv1.ErrorCode_ERR_AUTH_FAILED, ErrUnauthenticated, "a connection cannot change its user")
		}
		for _, old := range s.hub.setPlatform(sess, platform, s.cfg.DevicePolicy, s.cfg.MaxSessionsPerUser) {
			old.kick(kickLoggedInElsewhere, "logged in on another device")
		}
		return nil
	}
	sess.user = id.UserID
	if platform != "" {
		sess.platform = platform
	}
	sess.authed.Store(true)
	s.stats.sessions.Add(1)
	for _, old := range s.hub.add(sess, s.cfg.DevicePolicy, s.cfg.MaxSessionsPerUser) {
		old.kick(kickLoggedInElsewhere, "logged in on another device")
	}
	s.log.Debug("session authenticated", "user", sess.user, "device", sess.id, "transport", sess.transport)
	if s.cfg.OnConnect != nil {
		s.cfg.OnConnect(sess.info())
	}
	return nil
}

// watchdog closes connections that did not authenticate in time or went
// quiet. One goroutine for all sessions is cheaper than a timer per frame.
func (s *Server) watchdog() {
	interval := min(s.cfg.AuthTimeout, s.cfg.IdleTimeout) / 5
	interval = max(10*time.Millisecond, min(interval, time.Second))
	t := time.NewTicker(interval)
	defer t.Stop()
	var expired []*session
	var reasons []error
	for {
		select {
		case <-s.stopBG:
			return
		case now := <-t.C:
			expired, reasons = expired[:0], reasons[:0]
			s.mu.Lock()
			for sess := range s.sessions {
				if !sess.authed.Load() {
					if now.Sub(sess.started) > s.cfg.AuthTimeout {
						expired, reasons = append(expired, sess), append(reasons, errAuthTimeout)
					}
					continue
				}
				last := time.Unix(0, sess.lastRead.Load())
				if ka, ok := sess.conn.(KeepAliver); ok {
					if t := ka.LastKeepAlive(); t.After(last) {
						last = t
					}
				}
				if now.Sub(last) > s.cfg.IdleTimeout {
					expired, reasons = append(expired, sess), append(reasons, errIdle)
				}
			}
			s.mu.Unlock()
			for i, sess := range expired {
				sess.close(reasons[i])
			}
			clear(expired)
		}
	}
}

func (s *Server) runAfterSend() {
	for m := range s.after {
		s.cfg.AfterSend(m)
	}
}

// Kick disconnects every session of userID after telling each, with a
// KICK_OUT frame, the reason given. It returns how many sessions it kicked.
// Clients built on IM-iOS-SDK do not reconnect after a kick.
func (s *Server) Kick(userID, reason string) int {
	list := s.hub.list(userID)
	for _, sess := range list {
		sess.kick(kickAccountProblem, reason)
	}
	return len(list)
}

// KickSession disconnects one session, the one whose SessionInfo.ID is id,
// after telling it the reason with a KICK_OUT frame. It reports whether such
// a session was connected and authenticated.
func (s *Server) KickSession(id, reason string) bool {
	var target *session
	s.mu.Lock()
	for sess := range s.sessions {
		if sess.id == id && sess.authed.Load() {
			target = sess
			break
		}
	}
	s.mu.Unlock()
	if target == nil || target.isClosed() {
		return false
	}
	target.kick(kickAccountProblem, reason)
	return true
}

// Sessions lists the live, authenticated sessions of userID on this server.
func (s *Server) Sessions(userID string) []SessionInfo {
	list := s.hub.list(userID)
	out := make([]SessionInfo, len(list))
	for i, sess := range list {
		out[i] = sess.info()
	}
	return out
}

// Shutdown stops the server gracefully: it takes no new connections or
// requests, lets every send already accepted commit and be acknowledged,
// flushes what is queued to each client, closes the connections and stops
// the server's goroutines. If ctx ends first it closes everything at once
// (as Close) and returns ctx.Err().
//
// Hosts that mount the WebSocket handler on their own http.Server call
// Server.Shutdown before http.Server.Shutdown: net/http does not track
// hijacked (WebSocket) connections, so it would not wait for them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for sess := range s.sessions {
		sess.draining.Store(true)
	}
	s.mu.Unlock()

	// Every accepted send commits and is acknowledged before connections
	// close: the guarantee is "durable before acknowledged", and an
	// acknowledged send must reach its sender.
	committed := make(chan struct{})
	go func() {
		s.commits.stop()
		close(committed)
	}()
	select {
	case <-committed:
	case <-ctx.Done():
		_ = s.Close()
		return ctx.Err()
	}

	s.mu.Lock()
	for sess := range s.sessions {
		sess.closeAfterFlush()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.sessWG.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		_ = s.Close()
		return ctx.Err()
	}
	return s.Close()
}

// Close stops the server immediately: connections are closed without
// flushing and sends not yet committed fail. It waits for the server's
// goroutines, including every ServeConn, to return. Close and Shutdown may
// be called more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		for sess := range s.sessions {
			sess.close(ErrServerClosed)
		}
		s.mu.Unlock()
		s.cancel()
		s.commits.stop()
		s.sessWG.Wait()
		close(s.stopBG)
		if s.after != nil {
			close(s.after)
		}
		s.bgWG.Wait()
	})
	return nil
}

// Pinger is an optional Store capability: a cheap check that the backend
// answers. Server.Health uses it when the Store has it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Health reports whether the server can serve: it is not shutting down and
// its Store answers (Pinger.Ping, or else a cheap read).
func (s *Server) Health(ctx context.Context) error {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return ErrServerClosed
	}
	if p, ok := s.store.(Pinger); ok {
		return p.Ping(ctx)
	}
	_, err := s.store.Conversation(ctx, "health_check")
	if errors.Is(err, ErrNotFound) {
		err = nil
	}
	return err
}
