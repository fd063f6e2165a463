package im

import (
	"sync"
	"sync/atomic"
	"time"
)

// hub is the routing table: user id → that user's live, authenticated
// sessions on this server. It is sharded so that pushes to different users
// never contend on one lock.
type hub struct {
	shards [64]hubShard
	// users counts the users with at least one registered session,
	// maintained as users come and go so that reading it costs nothing.
	users atomic.Int64
}

type hubShard struct {
	mu    sync.RWMutex
	users map[string][]*session
	// kicks remembers the users Kick was called for lately, so that a
	// session whose token was verified before the kick but which
	// registers after it is kicked too (see Server.Kick).
	kicks map[string]kickNote
	// tokenKicks is kicks for Server.KickToken, by token id (token ids
	// are unique, so a user's notes need no key of their own).
	tokenKicks map[string]kickNote
}

// kickNote is a recent Server.Kick of one user.
type kickNote struct {
	serial uint64 // the server's kick count after this kick
	at     time.Time
	reason string
}

// noteKick records a kick of user, forgetting notes older than keep. The
// caller lists the user's sessions after it, so that any authentication
// racing with the kick either registers before that list or finds the note.
//
// With tokenID set, the note is of a KickToken and concerns only the
// sessions verified with that token.
func (h *hub) noteKick(user, tokenID string, n kickNote, keep time.Duration) {
	sh := h.shard(user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.kicks == nil {
		sh.kicks = make(map[string]kickNote)
		sh.tokenKicks = make(map[string]kickNote)
	}
	for _, notes := range [...]map[string]kickNote{sh.kicks, sh.tokenKicks} {
		for k, old := range notes {
			if n.at.Sub(old.at) > keep {
				delete(notes, k)
			}
		}
	}
	if tokenID != "" {
		sh.tokenKicks[tokenID] = n
	} else {
		sh.kicks[user] = n
	}
}

func (h *hub) shard(user string) *hubShard {
	return &h.shards[fnv32(user)%uint32(len(h.shards))]
}

// fnv32 is FNV-1a of s, inlined to avoid allocating a hash.Hash per call;
// it spreads keys over lock shards.
func fnv32(s string) uint32 {
	var x uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		x ^= uint32(s[i])
		x *= 16777619
	}
	return x
}

// add registers s and returns the sessions that policy displaces, and the
// reason of a kick of s's user made after its verification began (serial
// is the server's kick count then; 0 means unknown), if there was one.
func (h *hub) add(s *session, policy DevicePolicy, max int, serial uint64) (displaced []*session, kicked string, wasKicked bool) {
	sh := h.shard(s.user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if n, ok := sh.kicks[s.user]; ok && serial > 0 && n.serial > serial {
		kicked, wasKicked = n.reason, true
	} else if n, ok := sh.tokenKicks[s.tokenID]; ok && s.tokenID != "" && serial > 0 && n.serial > serial {
		kicked, wasKicked = n.reason, true
	}
	if _, had := sh.users[s.user]; !had {
		h.users.Add(1)
	}
	return sh.addLocked(s, policy, max), kicked, wasKicked
}

// setPlatform records the platform of a registered session that had none
// (authenticated by a transport token, then told its platform by an
// AuthRequest) and applies policy again.
func (h *hub) setPlatform(s *session, platform string, policy DevicePolicy, max int) (displaced []*session) {
	sh := h.shard(s.user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.platform != "" || platform == "" {
		return nil
	}
	sh.removeLocked(s)
	s.mu.Lock() // info() reads it under s.mu; the hub under the shard lock
	s.platform = platform
	s.mu.Unlock()
	return sh.addLocked(s, policy, max)
}

func (sh *hubShard) addLocked(s *session, policy DevicePolicy, max int) (displaced []*session) {
	if sh.users == nil {
		sh.users = make(map[string][]*session)
	}
	var kept []*session
	open := 0
	for _, old := range sh.users[s.user] {
		switch {
		case old.isClosed():
			// On its way out (its ServeConn removes it); no longer one
			// of the user's devices, so the policy ignores it.
		case policy == OneSession,
			policy == OnePerPlatform && old.platform == s.platform:
			displaced = append(displaced, old)
			continue
		default:
			open++
		}
		kept = append(kept, old)
	}
	// Oldest first, so the overflow to kick is at the front.
	for i := 0; policy == AllowAllDevices && open >= max && i < len(kept); i++ {
		if !kept[i].isClosed() {
			displaced = append(displaced, kept[i])
			kept = append(kept[:i:i], kept[i+1:]...)
			i--
			open--
		}
	}
	sh.users[s.user] = append(kept, s)
	return displaced
}

func (h *hub) remove(s *session) {
	sh := h.shard(s.user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, had := sh.users[s.user]; !had {
		return
	}
	sh.removeLocked(s)
	if _, has := sh.users[s.user]; !has {
		h.users.Add(-1)
	}
}

func (sh *hubShard) removeLocked(s *session) {
	list := sh.users[s.user]
	for i, x := range list {
		if x == s {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(sh.users, s.user)
	} else {
		sh.users[s.user] = list
	}
}

// each calls fn for every session of user while holding the shard's read
// lock: fn must be quick and must not call back into the hub.
func (h *hub) each(user string, fn func(*session)) {
	sh := h.shard(user)
	sh.mu.RLock()
	for _, s := range sh.users[user] {
		fn(s)
	}
	sh.mu.RUnlock()
}

// list returns the user's sessions that are still open. A closed session
// stays registered until its ServeConn returns (a WebSocket close handshake
// can take seconds), but it is no longer one of the user's devices.
func (h *hub) list(user string) []*session {
	sh := h.shard(user)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	var out []*session
	for _, s := range sh.users[user] {
		if !s.isClosed() {
			out = append(out, s)
		}
	}
	return out
}

// online reports whether user has a session on this server that is still
// open. Unlike list it allocates nothing: it runs for every recipient of a
// message when offline notifications are on.
func (h *hub) online(user string) bool {
	sh := h.shard(user)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	for _, s := range sh.users[user] {
		if !s.isClosed() {
			return true
		}
	}
	return false
}

// queueFigures are the backlogs of the registered sessions: their sum, and
// the most frames and the most bytes any one of them holds (not
// necessarily the same session's).
type queueFigures struct{ total, largest backlog }

// queues reads the backlog of every open registered session. At 100,000
// sessions that takes tens of milliseconds, mostly cache misses, so no lock
// is held for long: a shard's only to list its sessions, each session's for
// two loads.
func (h *hub) queues() queueFigures {
	var q queueFigures
	var list []*session
	for i := range h.shards {
		sh := &h.shards[i]
		list = list[:0]
		sh.mu.RLock()
		for _, sessions := range sh.users {
			list = append(list, sessions...)
		}
		sh.mu.RUnlock()
		for _, s := range list {
			s.mu.Lock()
			b, closed := s.queued, s.closed
			s.mu.Unlock()
			if closed {
				continue // what it held is not sent; its count may be stale
			}
			q.total.frames += b.frames
			q.total.bytes += b.bytes
			q.largest.frames = max(q.largest.frames, b.frames)
			q.largest.bytes = max(q.largest.bytes, b.bytes)
		}
		clear(list) // hold no session past the scan
	}
	return q
}
