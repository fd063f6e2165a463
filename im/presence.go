package im

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Presence is a user's online status, as one viewer may see it (see
// Server.Presence and Config.PresenceVisible).
type Presence struct {
	UserID string
	// Online is true while the user has a session on this server, and for
	// Config.PresenceOfflineDelay after the last one ended.
	Online bool
	// Devices are the user's sessions, oldest first; empty when offline.
	Devices []PresenceDevice
	// LastSeen is when the user's last session ended; zero while online,
	// and when not known. It is kept in memory: a restart forgets it.
	LastSeen time.Time
	// Version orders the statuses of one user within one Server: a newer
	// status has a higher Version.
	Version uint64
}

// PresenceDevice is one connected device of a user.
type PresenceDevice struct {
	Platform  string // as the device reported it; may be empty
	Transport string // "tcp", "websocket", …
}

// presenceTracker is where the Server records and asks who is online. The
// Server feeds it from session registration and removal, and it reports
// each change of a user's status to the notify function it was built with,
// which fans the change out to the subscribed connections of this Server.
//
// Only a local tracker exists. One carried by a bus between several server
// processes would implement the same methods: it would publish connected
// and disconnected, merge what the other processes publish into status, and
// call notify for their changes too.
type presenceTracker interface {
	// connected records device d of user, named key (a session id),
	// coming online, or changing its details when key is already known.
	connected(user, key string, d PresenceDevice)
	// disconnected records the end, at at, of the device named key.
	disconnected(user, key string, at time.Time)
	// status returns user's status now; its Version is at least that of
	// every change notified before it.
	status(user string) Presence
	// online reports how many users read as online.
	online() int
	// close stops pending timers; nothing is notified after it returns.
	close()
}

// lastSeenPerShard bounds the last-seen times each of the local tracker's
// shards remembers (64 shards, so about four million users in all, at about
// a hundred bytes each); past it an arbitrary older entry is forgotten and
// that user's last_seen reads as unknown.
const lastSeenPerShard = 1 << 16

// localPresence tracks the users of this Server. A user whose last session
// ends stays online for grace, showing the devices it had, so that a quick
// reconnect (a network change, an app brought back to the foreground)
// changes nothing the subscribers see.
type localPresence struct {
	grace time.Duration
	// notify is called with the user's shard locked, so the changes of
	// one user reach it one at a time and in order. It must not call back
	// into the tracker.
	notify  func(Presence)
	version atomic.Uint64
	shards  [64]presenceShard
}

type presenceShard struct {
	mu       sync.Mutex
	closed   bool
	users    map[string]*userPresence // online users, those in their grace included
	lastSeen map[string]time.Time
}

type userPresence struct {
	devices []presenceEntry
	// leaving is what the user shows while the grace after its last
	// session runs: the devices it had then. timer ends the grace; gen
	// tells its firing from that of a timer stopped too late.
	leaving []PresenceDevice
	left    time.Time
	timer   *time.Timer
	gen     uint64
	// view is the status last notified.
	view Presence
}

type presenceEntry struct {
	key string
	dev PresenceDevice
}

func newLocalPresence(grace time.Duration, notify func(Presence)) *localPresence {
	return &localPresence{grace: grace, notify: notify}
}

func (p *localPresence) shard(user string) *presenceShard {
	return &p.shards[fnv32(user)%uint32(len(p.shards))]
}

func (p *localPresence) connected(user, key string, d PresenceDevice) {
	sh := p.shard(user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return
	}
	u := sh.users[user]
	if u == nil {
		if sh.users == nil {
			sh.users = make(map[string]*userPresence)
		}
		u = &userPresence{view: Presence{UserID: user, LastSeen: sh.lastSeen[user]}}
		sh.users[user] = u
	}
	if u.timer != nil {
		// Back within the grace: the subscribers never saw it leave.
		u.timer.Stop()
		u.timer, u.leaving = nil, nil
	}
	i := slices.IndexFunc(u.devices, func(e presenceEntry) bool { return e.key == key })
	if i >= 0 {
		u.devices[i].dev = d
	} else {
		u.devices = append(u.devices, presenceEntry{key, d})
	}
	p.changedLocked(u)
}

func (p *localPresence) disconnected(user, key string, at time.Time) {
	sh := p.shard(user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	u := sh.users[user]
	if sh.closed || u == nil {
		return
	}
	i := slices.IndexFunc(u.devices, func(e presenceEntry) bool { return e.key == key })
	if i < 0 {
		return
	}
	if len(u.devices) > 1 {
		u.devices = slices.Delete(u.devices, i, i+1)
		p.changedLocked(u)
		return
	}
	if p.grace <= 0 {
		p.offlineLocked(sh, user, u, at)
		return
	}
	u.leaving = u.view.Devices
	u.devices = nil
	u.left = at
	u.gen++
	gen := u.gen
	u.timer = time.AfterFunc(p.grace, func() { p.expire(user, u, gen) })
}

// expire ends the grace of user's entry u, if the timer numbered gen is
// still the one that should.
func (p *localPresence) expire(user string, u *userPresence, gen uint64) {
	sh := p.shard(user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed || sh.users[user] != u || u.timer == nil || u.gen != gen {
		return
	}
	p.offlineLocked(sh, user, u, u.left)
}

func (p *localPresence) offlineLocked(sh *presenceShard, user string, u *userPresence, at time.Time) {
	delete(sh.users, user)
	if sh.lastSeen == nil {
		sh.lastSeen = make(map[string]time.Time)
	}
	if _, ok := sh.lastSeen[user]; !ok && len(sh.lastSeen) >= lastSeenPerShard {
		for old := range sh.lastSeen {
			delete(sh.lastSeen, old)
			break
		}
	}
	sh.lastSeen[user] = at
	u.devices, u.leaving, u.timer, u.left = nil, nil, nil, at
	p.changedLocked(u)
}

// changedLocked notifies u's status if it differs from the last one
// notified. Called with u's shard locked.
func (p *localPresence) changedLocked(u *userPresence) {
	v := Presence{UserID: u.view.UserID}
	switch {
	case len(u.devices) > 0:
		v.Online = true
		v.Devices = make([]PresenceDevice, len(u.devices))
		for i, e := range u.devices {
			v.Devices[i] = e.dev
		}
	case u.timer != nil:
		v.Online, v.Devices = true, u.leaving
	default:
		v.LastSeen = u.left
	}
	if v.Online == u.view.Online && slices.Equal(v.Devices, u.view.Devices) && v.LastSeen.Equal(u.view.LastSeen) {
		return
	}
	v.Version = p.version.Add(1)
	u.view = v
	p.notify(v)
}

func (p *localPresence) status(user string) Presence {
	sh := p.shard(user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	// Read under the lock that every change of user is made under, so
	// every change notified before has a Version at most this one, and
	// every later change a higher one.
	v := Presence{UserID: user, LastSeen: sh.lastSeen[user], Version: p.version.Load()}
	if u := sh.users[user]; u != nil {
		v.Online, v.Devices, v.LastSeen = u.view.Online, slices.Clone(u.view.Devices), time.Time{}
	}
	return v
}

func (p *localPresence) online() int {
	n := 0
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		n += len(sh.users)
		sh.mu.Unlock()
	}
	return n
}

func (p *localPresence) close() {
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		sh.closed = true
		for _, u := range sh.users {
			if u.timer != nil {
				u.timer.Stop()
			}
		}
		sh.mu.Unlock()
	}
}
