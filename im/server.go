package im

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server is an instant-messaging server core. Transports hand it client
// connections (ServeConn); it authenticates them, stores and routes
// messages, and answers sync requests. It imports no transport and no store
// implementation: both are given to it.
//
// A Server starts its own background goroutines (the commit loop, the
// connection watchdog) in NewServer; Shutdown or Close stops them all.
type Server struct {
	cfg Config
	// scratch holds *wireScratch buffers for encoding BATCH_SYNC
	// responses and pushes, shared by the sessions and the delivery
	// goroutines instead of kept by each.
	scratch sync.Pool
	log     *slog.Logger
	store   Store
	ids     *idGen
	hub     hub
	// kicks counts calls of Kick (see Identity.kicks).
	kicks atomic.Uint64
	// groups caches the members of groups in use.
	groups *groupCache
	// sync is store's SyncStore side, nil when it has none; scan its
	// MessageRangeScanner side, nil when it has none.
	sync SyncStore
	scan MessageRangeScanner
	// reads is store's ReadStateStore side, nil when it has none (read
	// receipts are then off); receipts limits each user's receipts;
	// delivered gathers delivery acks between flushes.
	reads     ReadStateStore
	receipts  *userLimiter
	delivered deliveredAcks
	// receiptSubs counts the sessions subscribed to delivery receipts,
	// so that an ack looks for the peer's only when some session is.
	receiptSubs atomic.Int64
	// settings is store's ConversationSettingsStore side, nil when it has
	// none; convRequests limits each user's conversation list and
	// settings requests.
	settings     ConversationSettingsStore
	convRequests *userLimiter
	// profiles and editor are Config.Users' UserProfiles and
	// ProfileEditor sides, nil when it has none; profileRequests limits
	// each user's profile updates and searches.
	profiles        UserProfiles
	editor          ProfileEditor
	profileRequests *userLimiter

	// base is cancelled by Close; session contexts and store calls derive
	// from it. (A Server is a long-lived owner, like http.Server's
	// BaseContext, so keeping it here is the exception the rule allows.)
	base   context.Context
	cancel context.CancelFunc

	commits *committer
	// after queues messages for the AfterSend runner (nil without the
	// hook); the commit loop closes it when it ends, and the runner closes
	// afterDone when it returns.
	after        chan Message
	afterDone    chan struct{}
	afterDropLog logLimit // the log lines about drops
	stats        counters
	// writeFailure is the storage reason the last commit failed with (see
	// storageFailure), nil after a commit that succeeded; writeFailures
	// counts the failed commits since the last that succeeded. Health
	// reads them.
	writeFailure  atomic.Pointer[error]
	writeFailures atomic.Int64
	// signals limits the relayed signals each user causes, sends the
	// messages each user sends from its connections, and groupAdds the
	// users each user adds to groups.
	signals, sends, groupAdds *userLimiter
	// presence knows who is online; watchers are the connections
	// subscribed to changes; presenceQueries limits each user's
	// ONLINE_STATUS_REQs.
	presence        presenceTracker
	watchers        presenceWatchers
	presenceQueries *userLimiter
	// recall is store's RecallStore side, nil when it has none; recalls
	// limits each user's REVOKE_MSG_REQs.
	recall  RecallStore
	recalls *userLimiter
	// friends is store's FriendStore side, nil when it has none;
	// friendRequests limits each user's friend requests; relations
	// caches who blocks whom and who are friends, for the send path.
	friends        FriendStore
	friendRequests *userLimiter
	relations      *relationCache

	mu        sync.Mutex
	closing   bool
	sessions  map[*session]struct{}
	sessWG    sync.WaitGroup // one per ServeConn
	bgWG      sync.WaitGroup // the server's own goroutines
	stopBG    chan struct{}
	closeOnce sync.Once
	sessionN  atomic.Uint64
	// epoch is when the Server was made. Stats times queue delays as
	// durations since it: a monotonic clock reading (time.Since) costs a
	// fraction of time.Now's wall clock and monotonic pair.
	epoch time.Time

	// transports are stopped by Shutdown and Close; guarded by mu.
	transports []Transport

	// notify runs Config.Notifier; nil without one.
	notify *notifier
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
		epoch:     time.Now(),
		cfg:       cfg,
		log:       cfg.Logger,
		store:     cfg.Store,
		ids:       newIDGen(),
		sessions:  make(map[*session]struct{}),
		stopBG:    make(chan struct{}),
		signals:   newUserLimiter(cfg.SignalRate, 2*cfg.SignalRate),
		sends:     newUserLimiter(cfg.SendRate, 2*cfg.SendRate),
		groupAdds: newUserLimiter(float64(cfg.GroupAddsPerMinute)/60, float64(cfg.GroupAddsPerMinute)),

		presenceQueries: newUserLimiter(cfg.PresenceQueryRate, 2*cfg.PresenceQueryRate),
		recalls:         newUserLimiter(recallRate, recallBurst),
	}
	s.presence = newLocalPresence(max(0, cfg.PresenceOfflineDelay), s.presenceChanged)
	s.guardHooks()
	if s.cfg.GroupAddPolicy == nil {
		s.cfg.GroupAddPolicy = s.sharesMessages
	}
	s.sync, _ = cfg.Store.(SyncStore)
	if s.sync != nil {
		s.scan, _ = cfg.Store.(MessageRangeScanner)
	}
	s.reads, _ = cfg.Store.(ReadStateStore)
	s.receipts = newUserLimiter(cfg.ReadReceiptRate, 2*cfg.ReadReceiptRate)
	s.recall, _ = cfg.Store.(RecallStore)
	s.settings, _ = cfg.Store.(ConversationSettingsStore)
	s.friends, _ = cfg.Store.(FriendStore)
	s.friendRequests = newUserLimiter(cfg.FriendRequestRate, friendRequestBurst)
	s.relations = newRelationCache(relationTTL, s.loadRelation)
	s.convRequests = newUserLimiter(cfg.ConversationRate, 2*cfg.ConversationRate)
	s.profiles, _ = cfg.Users.(UserProfiles)
	s.editor, _ = cfg.Users.(ProfileEditor)
	s.profileRequests = newUserLimiter(cfg.ProfileRate, 2*cfg.ProfileRate)
	s.base, s.cancel = context.WithCancel(context.Background())
	s.groups = newGroupCache(s.base, cfg.Store)
	s.groups.panicked = s.storePanicked
	s.commits = newCommitter(s)
	s.afterDone = make(chan struct{})
	if cfg.AfterSend != nil {
		s.after = make(chan Message, cfg.AfterSendQueue)
		s.goBG(s.runAfterSend)
	} else {
		close(s.afterDone)
	}
	s.startNotifier()
	s.goBG(s.commits.run)
	s.goBG(s.watchdog)
	if s.reads != nil {
		s.goBG(s.runAcks)
	}
	return s, nil
}

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
// own, with a ctx whose values the session keeps (Config.ConnContext may add
// more). It returns ErrServerClosed, having closed c, when the server is
// shutting down; otherwise the reason the session ended (see
// Config.OnDisconnect), nil for a normal close or a kick.
func (s *Server) ServeConn(ctx context.Context, c Conn, info ConnInfo) error {
	// This frame stays on the stack under every wait for a frame, for the
	// connection's whole life, so the work before and after the loop is
	// in functions of their own: a larger frame here pushed idle WebSocket
	// connections past 4 KiB of stack (see aside).
	sess, err := s.openSession(ctx, c, &info)
	if err != nil {
		return err
	}
	defer s.leaveSession(sess)
	s.readFrames(sess)
	return s.endSession(sess)
}

// openSession registers a session for c and authenticates it if the
// transport's handshake carried a token or an identity. It returns
// ErrServerClosed, having closed c, when the server is shutting down.
func (s *Server) openSession(ctx context.Context, c Conn, info *ConnInfo) (*session, error) {
	if s.cfg.ConnContext != nil {
		cctx := s.cfg.ConnContext(ctx, *info)
		if cctx == nil {
			_ = c.Close()
			s.log.Error("Config.ConnContext returned a nil context; connection refused", "transport", info.Transport)
			return nil, errors.New("im: Config.ConnContext returned a nil context")
		}
		ctx = cctx
	}
	now := time.Now()
	serial := s.sessionN.Add(1)
	sess := &session{
		srv:       s,
		conn:      c,
		id:        "s" + strconv.FormatUint(serial, 36),
		stripe:    stripeOf(serial),
		transport: info.Transport,
		remote:    info.RemoteAddr,
		started:   now,
		platform:  info.Platform,
		inflight:  make(chan struct{}, s.cfg.MaxInflight),
	}
	sess.lastRead.Store(now.UnixNano())
	sess.ctx, sess.cancel = context.WithCancel(ctx)
	sess.stopBase = context.AfterFunc(s.base, sess.cancel)

	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		sess.stopBase()
		sess.cancel()
		_ = c.Close()
		return nil, ErrServerClosed
	}
	s.sessions[sess] = struct{}{}
	s.sessWG.Add(1)
	s.mu.Unlock()
	s.stats.connections.Add(1)
	s.stats.byTransport[transportIndex(sess.transport)].Add(1)

	platform := info.Platform
	switch {
	case info.Identity.UserID != "":
		// Verified by the transport's handshake: not asked again.
		id := info.Identity
		aside(func() {
			if err := s.bind(sess, id, "", platform); err != nil {
				sess.close(errors.Join(ErrAuthFailed, err))
			}
		})
	case info.Token != "":
		token := info.Token
		aside(func() {
			if err := s.authenticate(sess, "", token, platform); err != nil {
				sess.close(errors.Join(ErrAuthFailed, err))
			}
		})
	}
	return sess, nil
}

// readFrames reads and handles the client's frames until the session is
// closed.
func (s *Server) readFrames(sess *session) {
	for !sess.isClosed() {
		sess.waitForRoom()
		f, err := sess.conn.ReadFrame(sess.ctx)
		if err != nil {
			sess.close(err)
			return
		}
		sess.lastRead.Store(time.Now().UnixNano())
		s.stats.framesIn.Add(1)
		if sess.draining.Load() {
			continue // shutting down: no new work
		}
		if shallow(f.Command) {
			s.handle(sess, f)
		} else {
			aside(func() { s.handle(sess, f) })
		}
	}
}

// endSession waits for sess's writer, unregisters sess and returns what
// ServeConn returns for it.
func (s *Server) endSession(sess *session) error {
	sess.writer.Wait()
	sess.releaseWriteCtx()

	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
	reason := sess.reason()
	if sess.authed.Load() {
		s.stats.sessions.Add(-1)
		s.stats.byPlatform[sess.platformSlot].Add(-1)
		s.hub.remove(sess)
		s.sessionOffline(sess)
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

// countPlatform moves sess to the count of its platform, which a
// re-authentication may have set. Only the ServeConn goroutine, the one
// that authenticates, calls it.
func (s *Server) countPlatform(sess *session) {
	if slot := platformIndex(sess.platform); slot != sess.platformSlot {
		s.stats.byPlatform[sess.platformSlot].Add(-1)
		s.stats.byPlatform[slot].Add(1)
		sess.platformSlot = slot
	}
}

// leaveSession is the last of a registered session, deferred so that it
// runs even if handling a frame panics.
func (s *Server) leaveSession(sess *session) {
	s.stats.connections.Add(-1)
	s.stats.byTransport[transportIndex(sess.transport)].Add(-1)
	s.sessWG.Done()
	sess.stopBase()
}

func (s *session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// isClosedConn reports errors that only say the connection went away.
func isClosedConn(err error) bool {
	return err == nil || errors.Is(err, ErrKicked) || errors.Is(err, context.Canceled)
}

// Authenticate verifies token with the configured Authenticator. Transports
// use it to refuse a bad token before upgrading a connection: an error
// wrapping ErrUnauthenticated means the token is bad; any other error means
// it could not be checked now.
func (s *Server) Authenticate(ctx context.Context, token string) (id Identity, err error) {
	if token == "" {
		return Identity{}, errorf(CodeUnauthenticated, ErrUnauthenticated, "token is empty")
	}
	// Recovered here rather than in a wrapper: verifying a token runs deep
	// (JWT parsing), and one more frame on the way pushed the goroutines of
	// many connections past their first stack size, for good.
	defer s.recoverHook("Authenticator", &err)
	kicks := s.kicks.Load() + 1
	id, err = s.cfg.Authenticator.Authenticate(ctx, token)
	if err != nil {
		// Passed on as it is: an error that is not ErrUnauthenticated
		// (the host's user database is down) must not read as "bad
		// token", or clients would throw away tokens that are fine.
		return Identity{}, err
	}
	if !validID(id.UserID) {
		return Identity{}, errorf(CodeUnauthenticated, ErrUnauthenticated, "authenticator returned an invalid user id")
	}
	id.kicks = kicks
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
	return s.bind(sess, id, userID, platform)
}

// bind makes sess a session of id's user. userID, when not empty, must be
// that user.
func (s *Server) bind(sess *session, id Identity, userID, platform string) error {
	if !validID(id.UserID) {
		return errorf(CodeUnauthenticated, ErrUnauthenticated, "invalid user id")
	}
	if userID != "" && userID != id.UserID {
		return errorf(CodeUnauthenticated, ErrUnauthenticated, "user_id does not match the token")
	}
	if sess.authed.Load() {
		if id.UserID != sess.user {
			return errorf(CodeUnauthenticated, ErrUnauthenticated, "a connection cannot change its user")
		}
		sess.mu.Lock()
		sess.tokenID = id.TokenID
		sess.mu.Unlock()
		for _, old := range s.hub.setPlatform(sess, platform, s.cfg.DevicePolicy, s.cfg.MaxSessionsPerUser) {
			old.kick(kickLoggedInElsewhere, "logged in on another device", ErrLoggedInElsewhere)
		}
		s.countPlatform(sess)
		s.sessionOnline(sess)
		return nil
	}
	sess.user = id.UserID
	sess.mu.Lock()
	sess.tokenID = id.TokenID
	sess.mu.Unlock()
	if platform != "" {
		sess.platform = platform
	}
	sess.authed.Store(true)
	s.stats.sessions.Add(1)
	sess.platformSlot = platformIndex(sess.platform)
	s.stats.byPlatform[sess.platformSlot].Add(1)
	displaced, reason, kicked := s.hub.add(sess, s.cfg.DevicePolicy, s.cfg.MaxSessionsPerUser, id.kicks)
	s.sessionOnline(sess)
	for _, old := range displaced {
		old.kick(kickLoggedInElsewhere, "logged in on another device", ErrLoggedInElsewhere)
	}
	if kicked {
		// Kick was called while this token was being verified (its
		// tokens revoked, say): the session is one of those it meant.
		sess.kick(kickAccountProblem, reason, fmt.Errorf("%w: %s", ErrKicked, reason))
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
						expired, reasons = append(expired, sess), append(reasons, ErrAuthTimeout)
					}
					continue
				}
				if sess.paused.Load() {
					// The server is not reading it, not the client
					// silent; WriteTimeout bounds the wait.
					continue
				}
				last := time.Unix(0, sess.lastRead.Load())
				if ka, ok := sess.conn.(KeepAliver); ok {
					if t := ka.LastKeepAlive(); t.After(last) {
						last = t
					}
				}
				if now.Sub(last) > s.cfg.IdleTimeout {
					expired, reasons = append(expired, sess), append(reasons, ErrIdle)
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

// Kick disconnects every session of userID after telling each, with a
// KICK_OUT frame, the reason given. It returns how many sessions it kicked.
// Clients built on IM-iOS-SDK do not reconnect after a kick. A connection
// of userID whose token Server.Authenticate was verifying when Kick was
// called is kicked as soon as it authenticates, so that revoking a user's
// tokens and then kicking the user leaves no session behind.
func (s *Server) Kick(userID, reason string) int {
	// Kept for twice the auth timeout: verification is bounded by it (the
	// Authenticator gets a context that ends then), with room for a slow
	// one that ignores its context.
	s.hub.noteKick(userID, "", kickNote{serial: s.kicks.Add(1) + 1, at: time.Now(), reason: reason}, 2*s.cfg.AuthTimeout)
	list := s.hub.list(userID)
	for _, sess := range list {
		sess.kick(kickAccountProblem, reason, fmt.Errorf("%w: %s", ErrKicked, reason))
	}
	return len(list)
}

// KickToken disconnects the sessions of userID that authenticated with the
// token whose Identity.TokenID is tokenID, after telling each the reason
// with a KICK_OUT frame, and returns how many it kicked; the user's other
// sessions stay. It is how a logout of one device (the token revoked
// first, so that it cannot authenticate again) ends that device's
// connections. An empty tokenID kicks nothing.
func (s *Server) KickToken(userID, tokenID, reason string) int {
	if tokenID == "" {
		return 0
	}
	// Noted first, as Kick does, so that a session whose token was being
	// verified now is kicked as soon as it registers.
	s.hub.noteKick(userID, tokenID, kickNote{serial: s.kicks.Add(1) + 1, at: time.Now(), reason: reason}, 2*s.cfg.AuthTimeout)
	n := 0
	for _, sess := range s.hub.list(userID) {
		sess.mu.Lock()
		match := sess.tokenID == tokenID
		sess.mu.Unlock()
		if match {
			sess.kick(kickAccountProblem, reason, fmt.Errorf("%w: %s", ErrKicked, reason))
			n++
		}
	}
	return n
}

// KickSession disconnects one session, the one whose SessionInfo.ID is id,
// after telling it the reason with a KICK_OUT frame. It reports whether such
// a session was connected and authenticated, and not already on its way
// out (kicked before, its KICK_OUT still being written).
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
	if target == nil || target.ending() {
		return false
	}
	target.kick(kickAccountProblem, reason, fmt.Errorf("%w: %s", ErrKicked, reason))
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

// AllSessions lists the live, authenticated sessions of every user on this
// server, for operators, ordered by SessionInfo.ID (as strings): at most
// limit of them, those whose ID sorts after after (empty: from the first).
// Pass the last ID of one page as after to get the next; a page shorter
// than limit is the last. A session on its way out (kicked, closing) is
// left out. A limit below 1 lists none. Sessions that come
// and go between pages may be missed or seen; each page is a snapshot.
func (s *Server) AllSessions(after string, limit int) []SessionInfo {
	if limit < 1 {
		return []SessionInfo{}
	}
	s.mu.Lock()
	live := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		if sess.authed.Load() && sess.id > after {
			live = append(live, sess)
		}
	}
	s.mu.Unlock()
	// The ids are fixed at creation, so sorting needs no session's lock.
	slices.SortFunc(live, func(a, b *session) int { return strings.Compare(a.id, b.id) })
	out := make([]SessionInfo, 0, min(limit, len(live)))
	for _, sess := range live {
		if len(out) == limit {
			break
		}
		if sess.ending() {
			// Kicked or closing: as good as gone.
			continue
		}
		out = append(out, sess.info())
	}
	return out
}

// Transport is a source of connections that Shutdown and Close stop along
// with the Server. transport/tcp and transport/websocket register theirs
// when they are created, so one Server.Shutdown stops everything.
type Transport interface {
	// Shutdown stops taking new connections at once and then waits until
	// every connection it handed to ServeConn is over, or until ctx ends
	// (then it returns ctx.Err()). Server.Shutdown calls it as it begins,
	// and ends the sessions meanwhile.
	Shutdown(ctx context.Context) error
	// Close stops taking new connections, drops those it has, and waits
	// for their goroutines.
	Close() error
}

// RegisterTransport makes Shutdown and Close stop t with the Server.
// Transports call it when they are created; a host only needs it for a
// transport of its own. A transport registered after Shutdown or Close has
// begun is closed at once.
func (s *Server) RegisterTransport(t Transport) {
	s.mu.Lock()
	closing := s.closing
	if !closing {
		s.transports = append(s.transports, t)
	}
	s.mu.Unlock()
	if closing {
		_ = t.Close()
	}
}

// Shutdown stops the server gracefully, in this order: its transports stop
// taking connections (the TCP listeners close, the WebSocket handler
// answers new upgrades with 503); it takes no new requests, lets every send
// already accepted commit and be acknowledged, flushes what is queued to
// each client and closes the connections; it waits for the transports'
// connection goroutines (WebSocket close handshakes included), hands
// AfterSend and the Notifier what is queued for them, and stops its own
// goroutines. If
// ctx ends first it closes everything at once (as Close) and returns
// ctx.Err().
//
// A host that mounts the WebSocket handler on its own http.Server calls
// Server.Shutdown, then http.Server.Shutdown for its other handlers. The
// WebSocket connections are the Server's to wait for: net/http does not
// track hijacked connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for sess := range s.sessions {
		sess.draining.Store(true)
	}
	transports := slices.Clone(s.transports)
	s.mu.Unlock()

	// The transports stop accepting now, and then wait for their
	// connections, which end as the sessions drain below.
	var twg sync.WaitGroup
	terrs := make([]error, len(transports))
	for i, t := range transports {
		twg.Add(1)
		go func() {
			defer twg.Done()
			terrs[i] = t.Shutdown(ctx)
		}()
	}
	abort := func() error {
		_ = s.Close()
		twg.Wait() // they return: Close dropped their connections
		return ctx.Err()
	}

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
		return abort()
	}

	s.mu.Lock()
	for sess := range s.sessions {
		sess.setReason(ErrServerClosed)
		sess.closeAfterFlush()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.sessWG.Wait()
		twg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		err := abort()
		<-done
		return err
	}
	if err := errors.Join(terrs...); err != nil {
		_ = s.Close()
		return err
	}
	// Delivery acks the clients sent before closing are stored.
	if s.reads != nil {
		s.flushAcks(ctx)
	}
	// The messages already queued for AfterSend are handed to it.
	select {
	case <-s.afterDone:
	case <-ctx.Done():
		_ = s.Close()
		return ctx.Err()
	}
	// And the notifications already queued to the Notifier.
	if err := s.flushNotifications(ctx); err != nil {
		_ = s.Close()
		return err
	}
	return s.Close()
}

// Close stops the server immediately: its transports stop taking
// connections, connections are closed without flushing, sends not yet
// committed fail, and messages still queued for AfterSend, and
// notifications for the Notifier, are not handed to them (a call in
// progress is waited for; the Notifier's ctx ends). It waits for the server's
// goroutines, including every ServeConn and the transports' connection
// goroutines, to return. Close and Shutdown may be called more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		for sess := range s.sessions {
			sess.close(ErrServerClosed)
		}
		transports := slices.Clone(s.transports)
		s.mu.Unlock()
		s.cancel()
		s.commits.stop()
		for _, t := range transports {
			_ = t.Close()
		}
		s.sessWG.Wait()
		s.presence.close()
		close(s.stopBG)
		s.bgWG.Wait()
	})
	return nil
}

// Pinger is an optional Store capability: a cheap check that the backend
// answers. Server.Health uses it when the Store has it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Health reports whether the server can serve: it is not shutting down, its
// last commit to the Store did not fail, and its Store answers (Pinger.Ping,
// or else a cheap read).
//
// While writes fail (the disk is full, the file system went read-only, the
// database refuses commits) every send is refused, so the server is not
// ready even if reads still work: Health returns an error wrapping
// ErrStorageFull, ErrStorageReadOnly or ErrStorageUnavailable (all match
// errors.Is(err, ErrStorageUnavailable)) from the first failed commit until
// the next commit that succeeds. Clients keep retrying their sends on the
// connections they have, and the first that is stored makes the server
// healthy again. A Store that does not answer is ErrStorageUnavailable too.
func (s *Server) Health(ctx context.Context) error {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return ErrServerClosed
	}
	if reason := s.writeFailure.Load(); reason != nil {
		return fmt.Errorf("%w: the last %d commits failed", *reason, s.writeFailures.Load())
	}
	var err error
	if p, ok := s.store.(Pinger); ok {
		err = p.Ping(ctx)
	} else {
		_, err = s.store.Conversation(ctx, "health_check")
		if errors.Is(err, ErrNotFound) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStorageUnavailable, err)
	}
	return nil
}

// noteCommit records a commit's outcome for Health and returns the error
// its operations complete with: err, classified by storageFailure when it
// is one, so that the senders are told why (storage full, read-only or
// unavailable, never the store's own words, which may name a path). It
// costs one atomic load when commits succeed.
func (s *Server) noteCommit(err error) error {
	f := storageFailure(err)
	if f == nil {
		// A refusal the store answered (ErrNotFound, …) is no failure
		// to write.
		if s.writeFailure.Load() != nil {
			s.writeFailure.Store(nil)
			s.writeFailures.Store(0)
		}
		return err
	}
	reason := ErrStorageUnavailable
	switch {
	case errors.Is(f, ErrStorageFull):
		reason = ErrStorageFull
	case errors.Is(f, ErrStorageReadOnly):
		reason = ErrStorageReadOnly
	}
	s.writeFailures.Add(1)
	s.writeFailure.Store(&reason)
	return f
}
