package im

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"google.golang.org/protobuf/proto"
)

// MaxPresenceQueryIDs bounds the user ids one ONLINE_STATUS_REQ may name.
const MaxPresenceQueryIDs = 500

// presenceWatchers is the subscriber table: user id → the connections of
// this Server subscribed to that user, each with whether the subscriber may
// see the user (decided when it last asked about them). A session's own
// list (session.watching) mirrors its entries, so that they are removed
// when it ends.
type presenceWatchers struct {
	mu    sync.RWMutex
	users map[string]map[*session]bool
	n     int // entries across users
}

// watch adds or updates sess's subscription to user.
func (w *presenceWatchers) watch(sess *session, user string, visible bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.users == nil {
		w.users = make(map[string]map[*session]bool)
	}
	m := w.users[user]
	if m == nil {
		m = make(map[*session]bool)
		w.users[user] = m
	}
	if _, ok := m[sess]; !ok {
		w.n++
	}
	m[sess] = visible
}

// hideBetween makes the subscriptions of a's sessions to b, and of b's to
// a, read as not visible: one of them blocked the other.
func (w *presenceWatchers) hideBetween(a, b string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range [2][2]string{{a, b}, {b, a}} {
		for sess := range w.users[p[1]] {
			if sess.user == p[0] {
				w.users[p[1]][sess] = false
			}
		}
	}
}

// unwatch removes sess's subscriptions to users.
func (w *presenceWatchers) unwatch(sess *session, users []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, u := range users {
		m := w.users[u]
		if _, ok := m[sess]; !ok {
			continue
		}
		delete(m, sess)
		w.n--
		if len(m) == 0 {
			delete(w.users, u)
		}
	}
}

// setVisible updates sess's subscription to user, if it has one.
func (w *presenceWatchers) setVisible(sess *session, user string, visible bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if m := w.users[user]; m != nil {
		if _, ok := m[sess]; ok {
			m[sess] = visible
		}
	}
}

func (w *presenceWatchers) size() (subscriptions, users int) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.n, len(w.users)
}

// presenceChanged pushes p to the connections subscribed to its user that
// may see it. The tracker calls it with the user's shard locked, so the
// pushes about one user are queued in the order of its changes; as a
// signal, a newer one replaces an older still waiting in a queue.
func (s *Server) presenceChanged(p Presence) {
	s.watchers.mu.RLock()
	defer s.watchers.mu.RUnlock()
	m := s.watchers.users[p.UserID]
	if len(m) == 0 {
		return
	}
	body, err := proto.Marshal(&imv1.StatusChangePush{Status: wirePresence(p)})
	if err != nil {
		s.log.Error("marshal status change", "user", p.UserID, "err", err)
		return
	}
	f := Frame{Command: imv1.CommandType_CMD_STATUS_CHANGE_PUSH, Body: body}
	key := signalKey{cmd: f.Command, from: p.UserID}
	for sess, visible := range m {
		if visible {
			sess.enqueueSignal(f, key)
		}
	}
}

func wirePresence(p Presence) *imv1.UserStatus {
	st := &imv1.UserStatus{UserId: p.UserID, Online: p.Online, Version: p.Version}
	if !p.LastSeen.IsZero() {
		st.LastSeen = p.LastSeen.UnixMilli()
	}
	for _, d := range p.Devices {
		st.Devices = append(st.Devices, &imv1.DeviceStatus{Platform: d.Platform, Transport: d.Transport})
	}
	return st
}

// sessionOnline and sessionOffline feed the tracker from the hub.
func (s *Server) sessionOnline(sess *session) {
	sess.mu.Lock()
	d := PresenceDevice{Platform: sess.platform, Transport: sess.transport}
	sess.mu.Unlock()
	s.presence.connected(sess.user, sess.id, d)
}

func (s *Server) sessionOffline(sess *session) {
	s.presence.disconnected(sess.user, sess.id, time.Now())
	if sess.receipts.Swap(false) {
		s.receiptSubs.Add(-1)
	}
	if len(sess.watching) > 0 {
		users := make([]string, 0, len(sess.watching))
		for u := range sess.watching {
			users = append(users, u)
		}
		s.watchers.unwatch(sess, users)
		clear(sess.watching)
	}
}

// Presence returns the status of each of userIDs, in order, as viewerID
// may see it (Config.PresenceVisible): a user viewerID may not see reads as
// offline, with no devices and no LastSeen. An empty viewerID is the host,
// who sees everyone. It fails with ErrInvalidArgument for an invalid id,
// and with the Store's error if the default visibility rule cannot read
// what it needs.
func (s *Server) Presence(ctx context.Context, viewerID string, userIDs []string) ([]Presence, error) {
	if viewerID != "" && !validID(viewerID) {
		return nil, errorf(CodeInvalidArgument, ErrInvalidArgument, "invalid viewer id")
	}
	for _, id := range userIDs {
		if !validID(id) {
			return nil, errorf(CodeInvalidArgument, ErrInvalidArgument, "invalid user id %q", id)
		}
	}
	visible, err := s.presenceVisible(ctx, viewerID, userIDs)
	if err != nil {
		return nil, err
	}
	out := make([]Presence, len(userIDs))
	for i, id := range userIDs {
		out[i] = s.presenceOf(id, visible[i])
	}
	return out, nil
}

// presenceOf is user's status, or what a viewer who may not see user is
// shown: offline, nothing more, with a Version like any other.
func (s *Server) presenceOf(user string, visible bool) Presence {
	p := s.presence.status(user)
	if !visible {
		p = Presence{UserID: user, Version: p.Version}
	}
	return p
}

// presenceVisible reports, for each of users, whether viewer may see them.
// Users always see themselves; the host (viewer "") sees everyone.
func (s *Server) presenceVisible(ctx context.Context, viewer string, users []string) ([]bool, error) {
	visible := make([]bool, len(users))
	var others []int // indexes of the users still to decide
	for i, u := range users {
		if viewer == "" || u == viewer {
			visible[i] = true
		} else {
			others = append(others, i)
		}
	}
	if s.friends != nil {
		// Users who block each other see each other as never seen,
		// whatever the rule below would say.
		left := others[:0]
		for _, i := range others {
			b, err := s.blocked(ctx, viewer, users[i])
			if err != nil {
				s.log.Warn("presence: read relation", "user", viewer, "err", err)
				b = true
			}
			if !b {
				left = append(left, i)
			}
		}
		others = left
	}
	if len(others) == 0 {
		return visible, nil
	}
	if hook := s.cfg.PresenceVisible; hook != nil {
		for _, i := range others {
			ok, err := hook(ctx, viewer, users[i])
			if err != nil {
				// Read as not visible: the viewer learns nothing from a
				// failure about one user.
				s.log.Warn("Config.PresenceVisible failed", "user", viewer, "err", err)
				ok = false
			}
			visible[i] = ok
		}
		return visible, nil
	}
	return visible, s.sharesConversation(ctx, viewer, users, visible, others)
}

// sharesConversation is the default visibility rule: viewer sees the users
// with whom it has a one-to-one conversation holding a message, and those
// in a group with it. It reads the viewer's conversations and groups once,
// then either the members of each of the viewer's groups (cached, see
// groupCache) or the groups of each undecided user, whichever is fewer
// reads; so a request costs at most two reads plus the lesser of the
// viewer's groups and the users it names.
func (s *Server) sharesConversation(ctx context.Context, viewer string, users []string, visible []bool, others []int) (err error) {
	defer s.recoverStore("presence visibility", &err)
	convs, err := s.store.UserConversations(ctx, viewer)
	if err != nil {
		return err
	}
	peers := make(map[string]bool)
	for _, c := range convs {
		if p, ok := peerOf(c.ID, viewer); ok && c.MaxSeq > 0 {
			peers[p] = true
		}
	}
	left := others[:0:0]
	for _, i := range others {
		if peers[users[i]] {
			visible[i] = true
		} else {
			left = append(left, i)
		}
	}
	if len(left) == 0 {
		return nil
	}
	groups, err := s.store.UserGroups(ctx, viewer)
	if err != nil || len(groups) == 0 {
		return err
	}
	if len(groups) <= len(left) {
		for _, g := range groups {
			set, err := s.groups.get(ctx, g)
			if errors.Is(err, ErrNotFound) {
				continue // deleted since listed
			}
			if err != nil {
				return err
			}
			for _, i := range left {
				if _, ok := set.roles[users[i]]; ok {
					visible[i] = true
				}
			}
		}
		return nil
	}
	mine := make(map[string]bool, len(groups))
	for _, g := range groups {
		mine[g] = true
	}
	for _, i := range left {
		theirs, err := s.store.UserGroups(ctx, users[i])
		if err != nil {
			return err
		}
		for _, g := range theirs {
			if mine[g] {
				visible[i] = true
				break
			}
		}
	}
	return nil
}

// handleOnlineStatus answers an ONLINE_STATUS_REQ and applies its
// subscription change. A refused request changes nothing.
func (s *Server) handleOnlineStatus(sess *session, f Frame) {
	var req imv1.OnlineStatusRequest
	if err := proto.Unmarshal(f.Body, &req); err != nil {
		s.respondError(sess, f, errMalformed(err))
		return
	}
	switch req.Subscribe {
	case imv1.PresenceSubscribe_PRESENCE_QUERY, imv1.PresenceSubscribe_PRESENCE_SUBSCRIBE, imv1.PresenceSubscribe_PRESENCE_UNSUBSCRIBE:
	default:
		s.respondError(sess, f, errorf(CodeInvalidArgument, ErrInvalidArgument, "unknown subscribe value %d", req.Subscribe))
		return
	}
	if len(req.UserIds) == 0 {
		s.respondError(sess, f, errorf(CodeInvalidArgument, ErrInvalidArgument, "no user ids"))
		return
	}
	if len(req.UserIds) > MaxPresenceQueryIDs {
		s.respondError(sess, f, errorf(CodeInvalidArgument, ErrInvalidArgument, "at most %d user ids per request", MaxPresenceQueryIDs))
		return
	}
	users := make([]string, 0, len(req.UserIds))
	seen := make(map[string]bool, len(req.UserIds))
	added := 0
	for _, id := range req.UserIds {
		if !validID(id) {
			s.respondError(sess, f, errorf(CodeInvalidArgument, ErrInvalidArgument, "invalid user id"))
			return
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		users = append(users, id)
		if _, ok := sess.watching[id]; !ok {
			added++
		}
	}
	if req.Subscribe == imv1.PresenceSubscribe_PRESENCE_SUBSCRIBE && len(sess.watching)+added > s.cfg.MaxPresenceSubscriptions {
		s.respondError(sess, f, errorf(CodeInvalidArgument, ErrInvalidArgument,
			"a connection may subscribe to at most %d users; it has %d", s.cfg.MaxPresenceSubscriptions, len(sess.watching)))
		return
	}
	if !s.presenceQueries.allow(sess.user, time.Now()) {
		s.respondError(sess, f, errorf(CodeRateLimited, ErrRateLimited, "asking for presence too fast"))
		return
	}
	visible, err := s.presenceVisible(sess.ctx, sess.user, users)
	if err != nil {
		s.respondError(sess, f, err)
		return
	}
	// Subscribed before the statuses are read, so that no change falls
	// between the two; a push may then overtake the response, which
	// UserStatus.version lets the client tell.
	for i, u := range users {
		switch _, subscribed := sess.watching[u]; {
		case req.Subscribe == imv1.PresenceSubscribe_PRESENCE_SUBSCRIBE:
			if sess.watching == nil {
				sess.watching = make(map[string]struct{})
			}
			sess.watching[u] = struct{}{}
			s.watchers.watch(sess, u, visible[i])
		case req.Subscribe == imv1.PresenceSubscribe_PRESENCE_UNSUBSCRIBE && subscribed:
			delete(sess.watching, u)
			s.watchers.unwatch(sess, []string{u})
		case subscribed:
			s.watchers.setVisible(sess, u, visible[i])
		}
	}
	rsp := &imv1.OnlineStatusResponse{
		Statuses:      make([]*imv1.UserStatus, len(users)),
		Subscriptions: int32(len(sess.watching)),
		ServerTime:    time.Now().UnixMilli(),
	}
	for i, u := range users {
		rsp.Statuses[i] = wirePresence(s.presenceOf(u, visible[i]))
	}
	sess.respond(imv1.CommandType_CMD_ONLINE_STATUS_RSP, f.Sequence, rsp)
}
