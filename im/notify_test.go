package im_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/store/memstore"
	"github.com/stretchr/testify/require"
)

// notes is a Notifier that records what it is given.
type notes struct {
	mu  sync.Mutex
	got []im.Notification
}

func (n *notes) Notify(_ context.Context, x im.Notification) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, x)
	return nil
}

func (n *notes) list() []im.Notification {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.got)
}

// wait polls until k notifications were made and returns them.
func (n *notes) wait(t *testing.T, k int) []im.Notification {
	t.Helper()
	waitFor(t, func() bool { return len(n.list()) >= k }, "%d of %d notifications: %+v", len(n.list()), k, n.list())
	return n.list()
}

// recipients lists the users notified, in order.
func recipients(list []im.Notification) []string {
	out := make([]string, len(list))
	for i, x := range list {
		out[i] = x.UserID
	}
	return out
}

// allowAnyAdds lets tests put anyone into groups.
func allowAnyAdds(context.Context, string, string) error { return nil }

func mute(t *testing.T, srv *imtest.Server, user, conv string) {
	t.Helper()
	yes := true
	_, err := srv.Store.(im.ConversationSettingsStore).UpdateConversationSettings(testCtx(t), user, conv, im.SettingsChange{Muted: &yes, At: time.Now()})
	require.NoError(t, err)
}

// A recipient with a session gets the push and no notification; one
// without gets one notification per message, with her unread count over
// all her conversations and whether she muted the conversation. The sender
// is never notified, connected or not, and presence's offline delay does
// not count as connected.
func TestNotifyOfflineRecipients(t *testing.T) {
	rec := new(notes)
	srv := imtest.NewServer(t, imtest.Options{Memory: true, Config: im.Config{
		Notifier:             rec,
		PresenceOfflineDelay: time.Hour,
	}})
	ctx := testCtx(t)
	a := srv.Dial(t, "tcp", alice)
	b := srv.Dial(t, "websocket", bob)

	sendText(t, a, bob, "while bob is online")
	require.Equal(t, "while bob is online", string(nextMessage(t, b).Content))

	// Bob's last session ends; presence still shows him for an hour.
	require.NoError(t, b.Close())
	waitFor(t, func() bool { return len(srv.Sessions(bob)) == 0 }, "bob's session still open")
	p, err := srv.Presence(ctx, "", []string{bob})
	require.NoError(t, err)
	require.True(t, p[0].Online, "within the offline delay")

	ack := sendText(t, a, bob, "while bob is away")
	got := rec.wait(t, 1)
	require.Equal(t, im.Notification{
		UserID: bob, ConversationID: aliceBob, SenderID: alice, Type: im.TextMessage,
		Seq: ack.Seq, ServerID: ack.ServerMsgId,
		Badge: 2, // both messages: bob was pushed the first, not read it
	}, got[0])

	// Carol, with no session at all, writes through the Go API: bob's
	// badge counts both conversations; carol is not notified.
	m, err := srv.SendMessage(ctx, im.SendRequest{SenderID: carol, ReceiverID: bob, Type: im.TextMessage, Content: []byte("from carol")})
	require.NoError(t, err)
	got = rec.wait(t, 2)
	require.Equal(t, im.Notification{
		UserID: bob, ConversationID: m.ConversationID, SenderID: carol, Type: im.TextMessage,
		Seq: 1, ServerID: m.ServerID, Badge: 3,
	}, got[1])

	// Bob mutes alice: still notified, marked muted, badge still counting.
	mute(t, srv, bob, aliceBob)
	ack = sendText(t, a, bob, "muted")
	got = rec.wait(t, 3)
	require.Equal(t, im.Notification{
		UserID: bob, ConversationID: aliceBob, SenderID: alice, Type: im.TextMessage,
		Seq: ack.Seq, ServerID: ack.ServerMsgId, Badge: 4, Muted: true,
	}, got[2])
	n, err := srv.UnreadCount(ctx, bob)
	require.NoError(t, err)
	require.Equal(t, int64(4), n)

	// Shutdown makes whatever is queued: nothing else was.
	srv.Stop()
	require.Equal(t, []string{bob, bob, bob}, recipients(rec.list()))
	st := srv.Stats()
	require.Equal(t, uint64(3), st.Notifications)
	require.Zero(t, st.NotificationErrors)
	require.Zero(t, st.NotificationsDropped)
}

// Content goes to the Notifier only with Config.NotifyPreview, and never
// for a muted conversation or a recall. A recall notifies the members then
// offline, after the notification of the message it recalls.
func TestNotifyPreviewAndRecall(t *testing.T) {
	rec := new(notes)
	srv := imtest.NewServer(t, imtest.Options{Memory: true, Config: im.Config{Notifier: rec, NotifyPreview: true}})
	ctx := testCtx(t)

	m, err := srv.SendMessage(ctx, im.SendRequest{SenderID: alice, ReceiverID: bob, Type: im.TextMessage, Content: []byte("see this")})
	require.NoError(t, err)
	mute(t, srv, bob, im.SingleConversationID(bob, carol))
	_, err = srv.SendMessage(ctx, im.SendRequest{SenderID: carol, ReceiverID: bob, Type: im.TextMessage, Content: []byte("not this")})
	require.NoError(t, err)

	tomb, err := srv.RecallMessage(ctx, alice, aliceBob, m.ServerID)
	require.NoError(t, err)
	got := rec.wait(t, 3)
	byConv := map[string][]im.Notification{}
	for _, x := range got {
		byConv[x.ConversationID] = append(byConv[x.ConversationID], x)
	}
	require.Len(t, byConv[aliceBob], 2)
	first, recall := byConv[aliceBob][0], byConv[aliceBob][1]
	require.True(t, first.Preview)
	require.Equal(t, "see this", string(first.Content))
	require.False(t, first.Recalled)
	require.Equal(t, im.Notification{
		UserID: bob, ConversationID: aliceBob, SenderID: alice, Type: im.TextMessage,
		Seq: m.Seq, ServerID: m.ServerID, Badge: recall.Badge, Recalled: true,
	}, recall, "a recall shows no content")
	require.Positive(t, recall.Badge)

	muted := byConv[im.SingleConversationID(bob, carol)]
	require.Len(t, muted, 1)
	require.True(t, muted[0].Muted)
	require.False(t, muted[0].Preview)
	require.Nil(t, muted[0].Content)

	// Bob connected: a recall has nobody to notify.
	srv.Dial(t, "tcp", bob)
	srv.NotifyRecalled(tomb)
	srv.Stop()
	require.Len(t, rec.list(), 3)
}

// In a group, every member without a session is notified of each message,
// the sender and the connected members are not; the group's own notices
// notify too (a host may skip them by Type).
func TestNotifyGroupMembers(t *testing.T) {
	const erin = "erin"
	rec := new(notes)
	srv := imtest.NewServer(t, imtest.Options{Memory: true, Config: im.Config{Notifier: rec, GroupAddPolicy: allowAnyAdds}})
	ctx := testCtx(t)
	a := srv.Dial(t, "tcp", alice)
	b := srv.Dial(t, "websocket", bob)

	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "g"}, []string{bob, carol, dave, erin})
	require.NoError(t, err)
	conv := im.GroupConversationID(g.ID)
	nextPush(t, b) // the notice
	created := rec.wait(t, 3)
	require.ElementsMatch(t, []string{carol, dave, erin}, recipients(created))
	for _, x := range created {
		require.Equal(t, im.NotificationMessage, x.Type)
		require.Equal(t, int64(1), x.Seq)
	}

	fromAlice, err := a.Send(ctx, client.Outgoing{ConversationID: conv, Type: im.TextMessage, Content: []byte("hi all")})
	require.NoError(t, err)
	fromBob, err := b.Send(ctx, client.Outgoing{ConversationID: conv, Type: im.TextMessage, Content: []byte("hi from bob")})
	require.NoError(t, err)
	got := rec.wait(t, 9)[3:]
	bySeq := map[int64][]string{}
	for _, x := range got {
		require.Equal(t, conv, x.ConversationID)
		require.False(t, x.Preview, "no preview without Config.NotifyPreview")
		require.Nil(t, x.Content)
		bySeq[x.Seq] = append(bySeq[x.Seq], x.UserID)
	}
	require.Equal(t, map[int64][]string{
		fromAlice.Seq: {carol, dave, erin},
		fromBob.Seq:   {carol, dave, erin},
	}, sortedValues(bySeq), "the sender and the connected members are not notified")
	// The badge counts what each has not read: the notice and both.
	last := map[string]int64{}
	for _, x := range got {
		last[x.UserID] = max(last[x.UserID], x.Badge)
	}
	require.Equal(t, map[string]int64{carol: 3, dave: 3, erin: 3}, last)

	// Erin, without a session, writes through the Go API: she is not
	// notified of her own message.
	fromErin, err := srv.SendMessage(ctx, im.SendRequest{SenderID: erin, ConversationID: conv, Type: im.TextMessage, Content: []byte("hi from erin")})
	require.NoError(t, err)
	got = rec.wait(t, 11)[9:]
	require.Equal(t, []string{carol, dave}, slices.Sorted(slices.Values(recipients(got))))
	for _, x := range got {
		require.Equal(t, fromErin.Seq, x.Seq)
		require.Equal(t, erin, x.SenderID)
	}

	// Carol connects; dave mutes the group. A recall of alice's message
	// then notifies dave (muted) and erin.
	srv.Dial(t, "tcp", carol)
	mute(t, srv, dave, conv)
	tomb := im.Message{ConversationID: conv, Seq: fromAlice.Seq, ServerID: fromAlice.ServerMsgId, SenderID: alice, Type: im.TextMessage, RevokedBy: alice, RevokedAt: time.Now()}
	srv.NotifyRecalled(tomb)
	got = rec.wait(t, 13)[11:]
	require.Equal(t, []string{dave, erin}, slices.Sorted(slices.Values(recipients(got))))
	for _, x := range got {
		require.True(t, x.Recalled)
		require.Equal(t, fromAlice.ServerMsgId, x.ServerID)
		require.Equal(t, x.UserID == dave, x.Muted)
	}
	srv.Stop()
	require.Len(t, rec.list(), 13)
}

func sortedValues(m map[int64][]string) map[int64][]string {
	for k, v := range m {
		m[k] = slices.Sorted(slices.Values(v))
	}
	return m
}

// A Notifier that never returns holds up no send, no ack and no push, in
// one-to-one conversations and in a group of thousands of offline members:
// what the queue cannot hold is dropped, counted and logged (not once per
// message), and Close ends the calls in progress through their ctx.
func TestStuckNotifierHoldsUpNoDelivery(t *testing.T) {
	const (
		members = 2000
		direct  = 200
		inGroup = 100
		queue   = 8
		workers = 2
	)
	release := make(chan struct{})
	var (
		called atomic.Int64
		logs   logBuffer
	)
	start := time.Now()
	srv := imtest.NewServer(t, imtest.Options{Memory: true, Config: im.Config{
		Logger:             slog.New(slog.NewTextHandler(&logs, nil)),
		SendRate:           -1,
		GroupAddPolicy:     allowAnyAdds,
		GroupAddsPerMinute: -1,
		MaxGroupMembers:    members + 2,
		NotifyQueue:        queue,
		NotifyWorkers:      workers,
		Notifier: im.NotifierFunc(func(ctx context.Context, n im.Notification) error {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			called.Add(1)
			return nil
		}),
	}})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)

	ids := make([]string, members)
	for i := range ids {
		ids[i] = fmt.Sprintf("m%04d", i)
	}
	ctx := testCtx(t)
	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "big"}, append(ids, bob))
	require.NoError(t, err)
	conv := im.GroupConversationID(g.ID)
	a := srv.Dial(t, "tcp", alice)
	b := dialPushes(t, srv.TCPAddr, bob, srv.Token(t, bob))

	// Every send is acknowledged within the test's deadline, though the
	// Notifier has not returned once.
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, o := range []client.Outgoing{{ReceiverID: carol}, {ConversationID: conv}} {
		n := direct
		if o.ConversationID != "" {
			n = inGroup
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				o.Type, o.Content = im.TextMessage, []byte(fmt.Sprint(i))
				if _, err := a.Send(ctx, o); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return b.count() == inGroup }, "%d of %d group messages pushed to bob", b.count(), inGroup)
	require.Zero(t, called.Load())

	// At most queue jobs wait and one per worker is stuck; the rest of
	// the 1 + direct + inGroup messages were dropped.
	st := srv.Stats()
	require.GreaterOrEqual(t, st.NotificationsDropped, uint64(1+direct+inGroup-queue-workers))
	lines := strings.Count(logs.String(), "Notifier is behind")
	require.GreaterOrEqual(t, lines, 1)
	require.LessOrEqual(t, lines, 1+int(time.Since(start)/(10*time.Second)))

	// Let it go: what was queued is made, for offline members only.
	unblock()
	srv.Stop()
	require.Positive(t, called.Load())
	require.Equal(t, uint64(called.Load()), srv.Stats().Notifications)
	t.Logf("%d notifications made, %d messages dropped", called.Load(), st.NotificationsDropped)
}

// Close (or a Shutdown whose ctx ends) does not wait for queued
// notifications: the Notifier's ctx ends, and Shutdown returns ctx.Err().
func TestShutdownCutShortEndsNotifier(t *testing.T) {
	started := make(chan struct{}, 1)
	var cancelled atomic.Bool
	srv, err := im.NewServer(im.Config{Store: memstore.New(), Authenticator: tokenIsUser, Notifier: im.NotifierFunc(func(ctx context.Context, n im.Notification) error {
		started <- struct{}{}
		<-ctx.Done()
		cancelled.Store(true)
		return ctx.Err()
	})})
	require.NoError(t, err)
	_, err = srv.SendMessage(testCtx(t), im.SendRequest{SenderID: alice, ReceiverID: bob, Type: im.TextMessage, Content: []byte("x")})
	require.NoError(t, err)
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, srv.Shutdown(ctx), context.DeadlineExceeded)
	require.True(t, cancelled.Load())
}

// Shutdown hands every queued notification to the Notifier before it
// returns.
func TestShutdownFlushesNotifications(t *testing.T) {
	const n = 20
	release := make(chan struct{})
	rec := new(notes)
	srv, err := im.NewServer(im.Config{Store: memstore.New(), Authenticator: tokenIsUser, NotifyWorkers: 1, Notifier: im.NotifierFunc(func(ctx context.Context, x im.Notification) error {
		<-release
		return rec.Notify(ctx, x)
	})})
	require.NoError(t, err)
	for i := range n {
		_, err = srv.SendMessage(testCtx(t), im.SendRequest{SenderID: alice, ReceiverID: bob, Type: im.TextMessage, Content: []byte(fmt.Sprint(i))})
		require.NoError(t, err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(testCtx(t)) }()
	waitFor(t, func() bool { return errors.Is(srv.Health(testCtx(t)), im.ErrServerClosed) }, "shutdown has not begun")
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with %d notifications waiting", err, n)
	default:
	}
	close(release)
	require.NoError(t, <-done)
	got := rec.list()
	require.Len(t, got, n)
	for i, x := range got {
		require.Equal(t, int64(i+1), x.Seq, "in seq order")
		// Read when the worker came to it: at least the messages so far.
		require.GreaterOrEqual(t, x.Badge, int64(i+1))
		require.LessOrEqual(t, x.Badge, int64(n))
	}
	// Nothing is queued after Shutdown began.
	srv.NotifyRecalled(im.Message{ConversationID: aliceBob, Seq: 1, ServerID: "x", SenderID: alice, ReceiverID: bob})
	require.Len(t, rec.list(), n)
}

// A Notifier that panics or fails is counted and logged; the server and
// its connections carry on, and later notifications are made.
func TestNotifierFailures(t *testing.T) {
	var (
		logs     logBuffer
		panicked atomic.Bool
		rec      notes
	)
	srv := imtest.NewServer(t, imtest.Options{Memory: true, Config: im.Config{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Notifier: im.NotifierFunc(func(ctx context.Context, n im.Notification) error {
			switch n.UserID {
			case bob:
				if panicked.CompareAndSwap(false, true) {
					panic("push client exploded")
				}
			case carol:
				return errors.New("push service unavailable")
			}
			return rec.Notify(ctx, n)
		}),
	}})
	a := srv.Dial(t, "tcp", alice)
	sendText(t, a, bob, "1")
	for i := range 3 {
		sendText(t, a, carol, fmt.Sprint(i))
	}
	sendText(t, a, bob, "2")
	sendText(t, a, dave, "3")
	waitFor(t, func() bool { return srv.Stats().Notifications == 6 }, "%d of 6 notifications", srv.Stats().Notifications)
	require.Equal(t, uint64(4), srv.Stats().NotificationErrors)
	require.Equal(t, []string{bob, dave}, slices.Sorted(slices.Values(recipients(rec.list()))))
	require.Contains(t, logs.String(), "push client exploded")
	require.Equal(t, 1, strings.Count(logs.String(), "Notifier failed"), "failures are logged at most every 10 s")
	sendText(t, a, bob, "the connection still works")
}

// Without a Notifier nothing is queued, whatever NotifyQueue says.
func TestNoNotifier(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Memory: true, Config: im.Config{NotifyQueue: 1, NotifyWorkers: 1}})
	a := srv.Dial(t, "tcp", alice)
	for i := range 20 {
		sendText(t, a, bob, fmt.Sprint(i))
	}
	srv.NotifyRecalled(im.Message{ConversationID: aliceBob, Seq: 1, ServerID: "x", SenderID: alice, ReceiverID: bob})
	srv.Stop()
	st := srv.Stats()
	require.Zero(t, st.Notifications)
	require.Zero(t, st.NotificationsDropped)
}

func TestNotifyConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  im.Config
		want string
	}{
		{"negative queue", im.Config{NotifyQueue: -1}, "NotifyQueue must be positive"},
		{"negative workers", im.Config{NotifyWorkers: -1}, "NotifyWorkers is -1"},
		{"too many workers", im.Config{NotifyWorkers: 257}, "NotifyWorkers is 257; it must be 1 to 256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Store, tc.cfg.Authenticator, tc.cfg.Notifier = memstore.New(), tokenIsUser, new(notes)
			srv, err := im.NewServer(tc.cfg)
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, srv)
		})
	}
}
