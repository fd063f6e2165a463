package im

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// Notifier is told of messages for users who have no session on this
// Server, so that the host can reach them another way: an offline push
// through APNs or FCM, an e-mail digest, a counter. Set it in
// Config.Notifier.
//
// It is an interface rather than a func field, unlike the hooks: a push
// client is an object with state of its own (credentials, an HTTP/2
// connection, a device-token table), as an Authenticator or a Store is.
// NotifierFunc adapts a function.
type Notifier interface {
	// Notify is called once per recipient and message, after the message
	// is stored and pushed to the sessions that were online, on one of
	// Config.NotifyWorkers goroutines of the Server. Calls about one
	// conversation are made one at a time, in the order of its messages
	// (and of recalls), so a withdrawal never overtakes the notification
	// it withdraws; calls about different conversations run concurrently.
	// It should hand the notification over and return: while it runs, the
	// conversations of its goroutine wait, and past Config.NotifyQueue
	// their notifications are dropped. ctx ends when the Server closes
	// (Close, or a Shutdown whose ctx ended). An error is counted in
	// Stats.NotificationErrors and logged (at most every 10 s), and the
	// Server does not retry: push is a hint, and the app syncs when it
	// opens. A panic is recovered and counted the same way.
	Notify(ctx context.Context, n Notification) error
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, n Notification) error

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, n Notification) error { return f(ctx, n) }

// Notification is what a Notifier is told about one message for one user.
type Notification struct {
	// UserID is the recipient, a member of the conversation other than
	// the sender who had no open session on this Server when the message
	// was delivered (or, for a recall, when the recall was made).
	UserID         string
	ConversationID string
	SenderID       string
	Type           MessageType
	Seq            int64
	ServerID       string
	// Badge is the recipient's unread messages over all her
	// conversations (Server.UnreadCount, muted conversations included)
	// when the notification was made, so a new message counts itself
	// unless she read it meanwhile. 0 means unknown when the Store has no
	// ReadStateStore or the count failed (logged): a host then leaves
	// the app's badge as it is.
	Badge int64
	// Muted reports that the recipient muted the conversation
	// (ConversationSettings.Muted): a host sends a silent push, or none.
	// Always false when the Store has no ConversationSettingsStore.
	Muted bool
	// Preview reports whether the host may show the message's content:
	// Config.NotifyPreview is set, the conversation is not muted and this
	// is not a recall. Content is the message's content then, nil
	// otherwise.
	Preview bool
	Content []byte
	// Recalled marks the notification of a recall: the message
	// ConversationID, ServerID (and Seq) was recalled, and whatever was
	// shown for it should be withdrawn (APNs: a notification with the
	// same apns-collapse-id, FCM: the same tag). Type and SenderID are the
	// recalled message's.
	Recalled bool
}

// maxNotifyWorkers bounds Config.NotifyWorkers.
const maxNotifyWorkers = 256

// notifier runs Config.Notifier: a bounded queue per worker goroutine, each
// worker owning the conversations that hash to it.
type notifier struct {
	n        Notifier
	preview  bool
	settings ConversationSettingsStore // nil when the Store has none

	// mu is read-held to queue a job and write-held to close the queues,
	// so nothing is sent on a closed channel.
	mu     sync.RWMutex
	closed bool
	queues []chan notifyJob
	// running counts the workers that have not returned; the last one
	// closes done.
	running atomic.Int32
	done    chan struct{}

	dropLog, errLog, panicLog, readLog logLimit
}

// notifyJob is one message (or recall) whose notifications are to be made.
// The recipients are worked out by the worker from the members the message
// was delivered to, so a message to a large group is one entry.
type notifyJob struct {
	conv, sender, serverID string
	typ                    MessageType
	seq                    int64
	content                []byte // only with Config.NotifyPreview
	recalled               bool

	// checked says that who was offline was decided when the job was queued:
	// for a one-to-one message, to was; for a group message, the
	// members of set whose bit is set in offline were. Otherwise the
	// worker reads the members (group messages) and asks the hub itself.
	checked bool
	to      string
	set     *memberSet
	offline []uint64
}

// startNotifier starts the notifier's workers when Config.Notifier is set.
func (s *Server) startNotifier() {
	if s.cfg.Notifier == nil {
		return
	}
	nt := &notifier{n: s.cfg.Notifier, preview: s.cfg.NotifyPreview, done: make(chan struct{})}
	nt.settings, _ = s.store.(ConversationSettingsStore)
	w := s.cfg.NotifyWorkers
	per := max(1, (s.cfg.NotifyQueue+w-1)/w)
	nt.queues = make([]chan notifyJob, w)
	nt.running.Store(int32(w))
	for i := range nt.queues {
		nt.queues[i] = make(chan notifyJob, per)
	}
	s.notify = nt
	for _, q := range nt.queues {
		s.goBG(func() { s.runNotifier(q) })
	}
}

// notifyGroupMessage queues the notifications of m, a group message just
// delivered to set's members, for those deliver did not reach (offline);
// with no set (the group was not cached), the worker reads the members
// and asks the hub itself. No Store read here: the worker does them.
func (s *Server) notifyGroupMessage(m Message, set *memberSet, offline []uint64) {
	j := s.messageJob(m, "")
	if set != nil {
		if offline == nil {
			return // everybody is online
		}
		j.checked, j.set, j.offline = true, set, offline
	}
	s.queueNotify(j)
}

// messageJob is the job of m's notifications; to, if set, is the one
// recipient deliver did not reach.
func (s *Server) messageJob(m Message, to string) notifyJob {
	j := notifyJob{conv: m.ConversationID, sender: m.SenderID, serverID: m.ServerID, typ: m.Type, seq: m.Seq, to: to, checked: to != ""}
	if s.notify.preview {
		j.content = m.Content
	}
	return j
}

// notifyRecalled queues Recalled notifications of m, a tombstone just
// stored, for the members of its conversation but its sender who have no
// open session now (those online get the recall pushed). Who they are is
// worked out by a worker, off the caller's goroutine. It does nothing
// without a Notifier.
func (s *Server) notifyRecalled(m Message) {
	if s.notify == nil {
		return
	}
	to := m.ReceiverID
	if _, group := groupOf(m.ConversationID); !group && to == "" {
		to, _ = peerOf(m.ConversationID, m.SenderID)
	}
	s.queueNotify(notifyJob{conv: m.ConversationID, sender: m.SenderID, serverID: m.ServerID, typ: m.Type, seq: m.Seq, recalled: true, to: to})
}

// queueNotify hands j to the worker owning its conversation without
// waiting: if that worker is that far behind, j is dropped and counted.
func (s *Server) queueNotify(j notifyJob) {
	nt := s.notify
	nt.mu.RLock()
	if !nt.closed {
		select {
		case nt.queues[fnv32(j.conv)%uint32(len(nt.queues))] <- j:
			nt.mu.RUnlock()
			return
		default:
		}
	}
	closed := nt.closed
	nt.mu.RUnlock()
	n := s.stats.notifyDropped.Add(1)
	if !closed && nt.dropLog.allow() {
		s.log.Warn("Notifier is behind: notifications dropped", "conv", j.conv, "seq", j.seq, "dropped", n)
	}
}

// runNotifier makes the notifications of q's jobs until q is closed
// (Shutdown: everything queued is made) or the server closes (Close: what
// is still queued is not).
func (s *Server) runNotifier(q chan notifyJob) {
	defer func() {
		if s.notify.running.Add(-1) == 0 {
			close(s.notify.done)
		}
	}()
	drain(s.stopBG, q, func(j notifyJob) { s.runNotifyJob(&j) })
}

// runNotifyJob makes one notification per offline recipient of j, in the
// order of the members, and stops early if the server closes.
func (s *Server) runNotifyJob(j *notifyJob) {
	one := func(user string) bool {
		select {
		case <-s.stopBG:
			return false
		default:
		}
		if user != "" && user != j.sender && (j.checked || !s.hub.online(user)) {
			s.notifyUser(j, user)
		}
		return true
	}
	gid, ok := groupOf(j.conv)
	if !ok {
		one(j.to)
		return
	}
	set := j.set
	if set == nil {
		var err error
		set, err = s.groups.get(s.base, gid)
		if err != nil {
			if !errors.Is(err, ErrNotFound) && !errors.Is(err, context.Canceled) && s.notify.readLog.allow() {
				s.log.Error("notifications: read group members", "conv", j.conv, "seq", j.seq, "err", err)
			}
			return // dismissed meanwhile, or no way to know who is in it
		}
	}
	for i, u := range set.ids {
		if j.offline != nil && j.offline[i/64]&(1<<(i%64)) == 0 {
			continue
		}
		if !one(u) {
			return
		}
	}
}

// notifyUser reads user's badge and mute setting and calls the Notifier.
func (s *Server) notifyUser(j *notifyJob, user string) {
	nt := s.notify
	n := Notification{
		UserID:         user,
		ConversationID: j.conv,
		SenderID:       j.sender,
		Type:           j.typ,
		Seq:            j.seq,
		ServerID:       j.serverID,
		Recalled:       j.recalled,
	}
	if s.reads != nil {
		badge, err := s.UnreadCount(s.base, user)
		if err != nil {
			s.notifyReadFailed("unread count", j, user, err)
		}
		n.Badge = badge
	}
	if nt.settings != nil {
		muted, err := s.mutedFor(user, j.conv)
		if err != nil {
			s.notifyReadFailed("conversation settings", j, user, err)
		}
		n.Muted = muted
	}
	n.Preview = nt.preview && !n.Muted && !n.Recalled
	if n.Preview {
		n.Content = j.content
	}
	err := s.callNotifier(n)
	s.stats.notifications.Add(1)
	if err != nil {
		c := s.stats.notifyErrors.Add(1)
		// A panic was logged with its stack already.
		if !errors.Is(err, errNotifierPanicked) && nt.errLog.allow() {
			s.log.Warn("Notifier failed", "user", user, "conv", j.conv, "seq", j.seq, "failed", c, "err", err)
		}
	}
}

// mutedFor reads whether user muted conv.
func (s *Server) mutedFor(user, conv string) (_ bool, err error) {
	defer s.recoverStore("ConversationSettings", &err)
	st, err := s.notify.settings.ConversationSettings(s.base, user, []string{conv})
	if err != nil {
		return false, err
	}
	if len(st) != 1 {
		return false, fmt.Errorf("%w: store returned %d settings for 1 conversation", ErrCorrupt, len(st))
	}
	return st[0].Muted, nil
}

// notifyReadFailed logs, at most every quietLogEvery, a read a
// notification goes without.
func (s *Server) notifyReadFailed(what string, j *notifyJob, user string, err error) {
	if errors.Is(err, context.Canceled) {
		return // closing
	}
	if s.notify.readLog.allow() {
		s.log.Error("notifications: read "+what, "user", user, "conv", j.conv, "seq", j.seq, "err", err)
	}
}

// errNotifierPanicked is the error of a Notifier call that panicked.
var errNotifierPanicked = errors.New("im: Notifier panicked")

// callNotifier calls the Notifier, turning a panic into an error that is
// logged with its stack (at most every quietLogEvery).
func (s *Server) callNotifier(n Notification) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %v", errNotifierPanicked, v)
			if s.notify.panicLog.allow() {
				s.log.Error("hook panicked", "hook", "Notifier", "panic", v, "stack", string(debug.Stack()))
			}
		}
	}()
	return s.notify.n.Notify(s.base, n)
}

// flushNotifications closes the notifier's queues and waits, within ctx,
// until the workers have made every notification queued. Nothing is queued
// after it begins.
func (s *Server) flushNotifications(ctx context.Context) error {
	nt := s.notify
	if nt == nil {
		return nil
	}
	nt.mu.Lock()
	if !nt.closed {
		nt.closed = true
		for _, q := range nt.queues {
			close(q)
		}
	}
	nt.mu.Unlock()
	select {
	case <-nt.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
