package im_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/store/memstore"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// The conversation list and per-user settings run on memstore: the only
// Store here with ReadStateStore and ConversationSettingsStore so far.

func convServer(t testing.TB, cfg im.Config) *imtest.Server {
	if cfg.GroupAddPolicy == nil {
		cfg.GroupAddPolicy = anyoneAdds
	}
	if cfg.ConversationRate == 0 {
		cfg.ConversationRate = -1
	}
	return imtest.NewServer(t, imtest.Options{Memory: true, Config: cfg})
}

// watcher is a client that keeps the conversation changes pushed to it
// and drops every other push, so that many messages never fill its
// buffer.
type watcher struct {
	*client.Client
	changes chan *imv1.ConversationSettings
}

func dialWatcher(t *testing.T, srv *imtest.Server, transport, user string) *watcher {
	t.Helper()
	w := &watcher{changes: make(chan *imv1.ConversationSettings, 64)}
	w.Client = srv.DialWith(t, client.Options{Transport: transport, UserID: user, OnPush: func(p client.Push) {
		if cp, ok := p.Message.(*imv1.ConversationChangedPush); ok {
			w.changes <- cp.Settings
		}
	}})
	return w
}

// nextChange waits for the next conversation change pushed to w.
func (w *watcher) nextChange(t *testing.T) *imv1.ConversationSettings {
	t.Helper()
	select {
	case st := <-w.changes:
		return st
	case <-time.After(10 * time.Second):
		t.Fatal("no conversation change pushed within 10 s")
	}
	return nil
}

// noChange checks that no change is pushed to w, after a request that
// follows the one that might have caused it: pushes to a connection are
// queued in order, so anything caused before that request came first.
func (w *watcher) noChange(t *testing.T) {
	t.Helper()
	listConvs(t, w.Client, client.ConversationQuery{Limit: 1})
	select {
	case st := <-w.changes:
		t.Fatalf("unexpected conversation change %v", st)
	default:
	}
}

func listConvs(t *testing.T, c *client.Client, q client.ConversationQuery) *imv1.ConversationListResponse {
	t.Helper()
	rsp, err := c.Conversations(testCtx(t), q)
	require.NoError(t, err)
	return rsp
}

func listAllConvs(t *testing.T, c *client.Client, since int64) ([]*imv1.ConversationInfo, int64) {
	t.Helper()
	out, version, err := c.AllConversations(testCtx(t), since)
	require.NoError(t, err)
	return out, version
}

func convIDs(infos []*imv1.ConversationInfo) []string {
	out := make([]string, len(infos))
	for i, c := range infos {
		out[i] = c.ConversationId
	}
	return out
}

func findConv(t *testing.T, infos []*imv1.ConversationInfo, id string) *imv1.ConversationInfo {
	t.Helper()
	for _, c := range infos {
		if c.ConversationId == id {
			return c
		}
	}
	t.Fatalf("conversation %s not listed in %v", id, convIDs(infos))
	return nil
}

func updateConv(t *testing.T, c *client.Client, conv string, ch client.ConversationChange) *imv1.ConversationSettings {
	t.Helper()
	st, err := c.UpdateConversation(testCtx(t), conv, ch)
	require.NoError(t, err)
	return st
}

// refused checks that err is a refusal with code.
func refusedWith(t *testing.T, err error, code imv1.ErrorCode) {
	t.Helper()
	var e *client.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, code, e.Code, e.Msg)
}

// longAgo is when seeded messages were sent: well before any listing's
// Version, so that an incremental listing leaves them out.
var longAgo = time.Now().Add(-time.Hour).Truncate(time.Millisecond)

// seed stores n messages of sender in the one-to-one conversation of
// sender and to, straight into the Store, the first at at and each a
// millisecond after the one before, and returns the conversation's id.
func seedSingle(t testing.TB, st im.Store, sender, to string, n int, at time.Time) string {
	t.Helper()
	conv := im.SingleConversationID(sender, to)
	batch := make([]im.AppendRequest, n)
	for i := range batch {
		id := fmt.Sprintf("%s-%d-%d", conv, at.UnixNano(), i)
		batch[i] = im.AppendRequest{Message: im.Message{
			ConversationID: conv, ServerID: "seed-" + id, SenderID: sender, ReceiverID: to, ClientMsgID: "seed-" + id,
			Type: im.TextMessage, Content: []byte(content(i)), CreatedAt: at.Add(time.Duration(i) * time.Millisecond),
		}, Members: []string{sender, to}}
	}
	res, err := st.AppendMessages(context.Background(), batch)
	require.NoError(t, err)
	for _, r := range res {
		require.NoError(t, r.Err)
	}
	return conv
}

// goSendText sends a text message through the Go API.
func goSendText(t *testing.T, srv *imtest.Server, from, to string) im.Message {
	t.Helper()
	m, err := srv.SendMessage(testCtx(t), im.SendRequest{SenderID: from, ReceiverID: to, Type: im.TextMessage, Content: []byte("hi " + to)})
	require.NoError(t, err)
	return m
}

func peerN(i int) string { return fmt.Sprintf("p%02d", i) }

func TestConversationList(t *testing.T) {
	for _, tr := range []string{client.TransportTCP, client.TransportWebSocket} {
		t.Run(tr, func(t *testing.T) { testConversationList(t, tr) })
	}
}

// The list: every kind of conversation, sorted pinned first and newest
// first, paged, each entry with what the user sees of it.
func testConversationList(t *testing.T, transport string) {
	srv := convServer(t, im.Config{})
	ctx := testCtx(t)
	const n = 12
	var want []string // newest first
	for i := range n {
		want = append([]string{seedSingle(t, srv.Store, peerN(i), alice, 2, longAgo.Add(time.Duration(i)*time.Minute))}, want...)
	}
	a := dialWatcher(t, srv, transport, alice)

	rsp := listConvs(t, a.Client, client.ConversationQuery{})
	require.Equal(t, want, convIDs(rsp.Conversations))
	require.Empty(t, rsp.NextCursor)
	require.True(t, rsp.ReadState)
	require.False(t, rsp.Changes)
	require.InDelta(t, time.Now().Add(-5*time.Second).UnixMilli(), rsp.Version, 2000)
	top := rsp.Conversations[0]
	require.Equal(t, int32(im.SingleConversation), top.ConversationType)
	require.Equal(t, int64(2), top.MaxSeq)
	require.Equal(t, int64(2), top.Unread)
	require.Zero(t, top.ReadSeq)
	require.False(t, top.Pinned || top.Muted || top.Hidden || top.Mentioned)
	require.NotNil(t, top.LastMessage)
	require.Equal(t, int64(2), top.LastMessage.Seq)
	require.Equal(t, content(1), string(top.LastMessage.Content))
	require.Equal(t, peerN(n-1), top.LastMessage.SenderId)
	require.Equal(t, longAgo.Add((n-1)*time.Minute+time.Millisecond).UnixMilli(), top.UpdatedAt)

	// A group and the system conversation join in, newest first.
	g, err := srv.CreateGroup(ctx, bob, im.GroupSpec{Name: "g"}, []string{alice})
	require.NoError(t, err)
	_, err = srv.SendSystemMessage(ctx, alice, im.TextMessage, []byte("welcome"))
	require.NoError(t, err)
	all, _ := listAllConvs(t, a.Client, 0)
	// Both are newer than the rest; they may share a millisecond.
	require.ElementsMatch(t, []string{im.SystemConversationID(alice), im.GroupConversationID(g.ID)}, convIDs(all[:2]))
	want = append(convIDs(all[:2]), want...)
	require.Equal(t, want, convIDs(all))
	sys, grp := findConv(t, all, im.SystemConversationID(alice)), findConv(t, all, im.GroupConversationID(g.ID))
	require.Equal(t, int32(im.SystemConversation), sys.ConversationType)
	require.Equal(t, "welcome", string(sys.LastMessage.Content))
	require.Equal(t, int32(im.GroupConversation), grp.ConversationType)
	require.Equal(t, g.ID, grp.LastMessage.GroupId)
	require.Equal(t, int64(1), grp.Unread)

	// Pinned conversations come first, the most recently updated of
	// them first (pinning updates).
	old, older := want[len(want)-1], want[len(want)-2]
	st := updateConv(t, a.Client, old, client.ConversationChange{Pinned: newPtr(true)})
	require.True(t, st.Pinned)
	require.Equal(t, old, st.ConversationId)
	updateConv(t, a.Client, older, client.ConversationChange{Pinned: newPtr(true), Muted: newPtr(true)})
	want = append([]string{older, old}, slices.DeleteFunc(want, func(id string) bool { return id == old || id == older })...)

	// Pages of 5, each going on where the last ended.
	var got []string
	q := client.ConversationQuery{Limit: 5}
	var version int64
	for {
		rsp := listConvs(t, a.Client, q)
		require.LessOrEqual(t, len(rsp.Conversations), 5)
		if version == 0 {
			version = rsp.Version
		}
		require.Equal(t, version, rsp.Version, "every page of a listing has its version")
		got = append(got, convIDs(rsp.Conversations)...)
		if rsp.NextCursor == "" {
			break
		}
		q.Cursor = rsp.NextCursor
	}
	require.Equal(t, want, got)
	all, _ = listAllConvs(t, a.Client, 0)
	require.True(t, all[0].Pinned && all[0].Muted)
	require.True(t, all[1].Pinned && !all[1].Muted)

	// Reading moves the read position and the unread count.
	newest := im.SingleConversationID(peerN(n-1), alice)
	_, err = srv.MarkRead(ctx, alice, newest, nil)
	require.NoError(t, err)
	e := findConv(t, listNow(t, a.Client), newest)
	require.Equal(t, int64(2), e.ReadSeq)
	require.Zero(t, e.Unread)

	// A limit above the maximum is the maximum.
	require.Len(t, listConvs(t, a.Client, client.ConversationQuery{Limit: 1000}).Conversations, len(want))
}

// listAfter lists everything, through the Go client.
func listNow(t *testing.T, c *client.Client) []*imv1.ConversationInfo {
	t.Helper()
	all, _ := listAllConvs(t, c, 0)
	return all
}

// A cursor names a place in the order, not an offset: messages arriving
// while a client pages make it skip nothing. A conversation that moved up
// past the cursor meanwhile is in the incremental listing from the
// listing's version, and nothing is listed twice.
func TestConversationCursorWhileMessagesArrive(t *testing.T) {
	srv := convServer(t, im.Config{SendRate: -1})
	const n = 30
	var all []string
	for i := range n {
		all = append(all, seedSingle(t, srv.Store, peerN(i), alice, 1, longAgo.Add(time.Duration(i)*time.Minute)))
	}
	a := dialWatcher(t, srv, client.TransportTCP, alice)

	first := listConvs(t, a.Client, client.ConversationQuery{Limit: 10})
	require.Len(t, first.Conversations, 10)
	seen := convIDs(first.Conversations)
	// Now messages arrive: in conversations already listed, in ones not
	// listed yet (they move to the top, past the cursor), and in new ones.
	moved := []int{29, 15, 3, 0}
	for _, i := range moved {
		goSendText(t, srv, peerN(i), alice)
	}
	goSendText(t, srv, "newcomer", alice)
	q := client.ConversationQuery{Limit: 10, Cursor: first.NextCursor}
	for q.Cursor != "" {
		rsp := listConvs(t, a.Client, q)
		require.Equal(t, first.Version, rsp.Version)
		seen = append(seen, convIDs(rsp.Conversations)...)
		q.Cursor = rsp.NextCursor
	}
	require.Len(t, slices.Compact(slices.Sorted(slices.Values(seen))), len(seen), "nothing twice: %v", seen)
	// What the pages missed moved up meanwhile, and the next incremental
	// listing has it.
	changed, _ := listAllConvs(t, a.Client, first.Version)
	inc := convIDs(changed)
	for _, i := range moved {
		require.Contains(t, inc, im.SingleConversationID(peerN(i), alice))
	}
	require.Contains(t, inc, im.SingleConversationID("newcomer", alice))
	for _, id := range all {
		if !slices.Contains(seen, id) {
			require.Contains(t, inc, id, "skipped and not in the incremental listing")
		}
	}
	require.Len(t, inc, len(moved)+1, "only what changed: %v", inc)
}

// An incremental listing (since a version) holds what changed after it:
// a new message, a settings change, a read receipt, a hidden conversation
// (marked hidden, so that the client drops it).
func TestConversationListSince(t *testing.T) {
	srv := convServer(t, im.Config{})
	ctx := testCtx(t)
	for i := range 10 {
		seedSingle(t, srv.Store, peerN(i), alice, 2, longAgo.Add(time.Duration(i)*time.Minute))
	}
	conv := func(i int) string { return im.SingleConversationID(peerN(i), alice) }
	a := dialWatcher(t, srv, client.TransportWebSocket, alice)
	full, version := listAllConvs(t, a.Client, 0)
	require.Len(t, full, 10)
	rsp := listConvs(t, a.Client, client.ConversationQuery{Since: version})
	require.Empty(t, rsp.Conversations, "nothing changed")
	require.GreaterOrEqual(t, rsp.Version, version)

	goSendText(t, srv, peerN(5), alice)
	updateConv(t, a.Client, conv(2), client.ConversationChange{Pinned: newPtr(true)})
	_, err := srv.MarkRead(ctx, alice, conv(7), nil)
	require.NoError(t, err)
	updateConv(t, a.Client, conv(9), client.ConversationChange{Hidden: newPtr(true)})

	changed, next := listAllConvs(t, a.Client, version)
	require.ElementsMatch(t, []string{conv(5), conv(2), conv(7), conv(9)}, convIDs(changed))
	require.Equal(t, conv(2), changed[0].ConversationId, "pinned first")
	require.True(t, findConv(t, changed, conv(9)).Hidden)
	require.Equal(t, int64(3), findConv(t, changed, conv(5)).MaxSeq)
	require.Zero(t, findConv(t, changed, conv(7)).Unread)
	require.GreaterOrEqual(t, next, version)

	// The full listing leaves the hidden one out, until its next message.
	full, _ = listAllConvs(t, a.Client, 0)
	require.NotContains(t, convIDs(full), conv(9))
	require.Len(t, full, 9)
	goSendText(t, srv, peerN(9), alice)
	full, _ = listAllConvs(t, a.Client, 0)
	require.Equal(t, conv(9), full[1].ConversationId, "shown again, newest after the pinned one")
	require.False(t, full[1].Hidden)
	require.Equal(t, int64(3), full[1].Unread)

	// A cursor goes with the since it was made for.
	p := listConvs(t, a.Client, client.ConversationQuery{Since: version, Limit: 1})
	require.NotEmpty(t, p.NextCursor)
	_, err = a.Conversations(ctx, client.ConversationQuery{Since: version + 1, Cursor: p.NextCursor})
	refusedWith(t, err, imv1.ErrorCode_ERR_INVALID_PARAM)
	rest := listConvs(t, a.Client, client.ConversationQuery{Cursor: p.NextCursor})
	require.NotContains(t, convIDs(rest.Conversations), p.Conversations[0].ConversationId)
}

// Settings reach the user's other devices that asked for changes, and no
// one else; a fresh device gets them all by listing.
func TestConversationSettingsPushed(t *testing.T) {
	for _, tr := range []string{client.TransportTCP, client.TransportWebSocket} {
		t.Run(tr, func(t *testing.T) { testConversationSettingsPushed(t, tr) })
	}
}

func testConversationSettingsPushed(t *testing.T, transport string) {
	srv := convServer(t, im.Config{})
	ctx := testCtx(t)
	conv := seedSingle(t, srv.Store, bob, alice, 3, longAgo)
	a1 := dialWatcher(t, srv, transport, alice)
	a2 := dialWatcher(t, srv, client.TransportTCP, alice)
	a3 := dialWatcher(t, srv, transport, alice) // never subscribes
	b := dialWatcher(t, srv, transport, bob)
	for _, c := range []*watcher{a1, a2, b} {
		rsp := listConvs(t, c.Client, client.ConversationQuery{Changes: imv1.ConversationChanges_CONVERSATION_CHANGES_SUBSCRIBE})
		require.True(t, rsp.Changes)
	}

	st := updateConv(t, a1.Client, conv, client.ConversationChange{Pinned: newPtr(true), Muted: newPtr(true)})
	require.True(t, st.Pinned && st.Muted)
	require.InDelta(t, time.Now().UnixMilli(), st.UpdatedAt, 5000)
	got := a2.nextChange(t)
	require.True(t, proto.Equal(st, got), "pushed %v, answered %v", got, st)
	a1.noChange(t) // the device that asked gets the answer only
	a3.noChange(t)
	b.noChange(t) // others are not concerned

	// A change that changes nothing is not pushed.
	updateConv(t, a1.Client, conv, client.ConversationChange{Pinned: newPtr(true)})
	a2.noChange(t)

	// Changes through the Go API reach every subscribed device.
	set, err := srv.UpdateConversationSettings(ctx, alice, conv, im.SettingsChange{Muted: newPtr(false), At: time.Unix(1, 0)})
	require.NoError(t, err)
	require.False(t, set.Muted)
	require.True(t, set.UpdatedAt.After(time.Unix(1, 0)), "the Server sets the time")
	require.False(t, a1.nextChange(t).Muted)
	require.False(t, a2.nextChange(t).Muted)

	// A cleared history moves the cursors of the device that cleared and
	// of the devices told, so that none asks for what it will not get.
	require.Zero(t, a2.Cursor(conv))
	updateConv(t, a1.Client, conv, client.ConversationChange{ClearUpTo: 1})
	require.Equal(t, int64(1), a2.nextChange(t).ClearedUpTo)
	require.Equal(t, int64(1), a2.Cursor(conv))
	require.Equal(t, int64(1), a1.Cursor(conv))
	require.Zero(t, a3.Cursor(conv), "not subscribed, not told")

	// Unsubscribing stops them.
	rsp := listConvs(t, a2.Client, client.ConversationQuery{Changes: imv1.ConversationChanges_CONVERSATION_CHANGES_UNSUBSCRIBE})
	require.False(t, rsp.Changes)
	updateConv(t, a1.Client, conv, client.ConversationChange{ClearUpTo: 2})
	a2.noChange(t)

	// A fresh device gets the whole state by listing, and syncs only what
	// was not cleared.
	fresh := dialWatcher(t, srv, transport, alice)
	all, _ := listAllConvs(t, fresh.Client, 0)
	e := findConv(t, all, conv)
	require.True(t, e.Pinned)
	require.False(t, e.Muted)
	require.Equal(t, int64(2), e.ClearedUpTo)
	require.Equal(t, int64(1), e.Unread)
	msgs, err := fresh.SyncAll(ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{3}, seqs(msgs))
}

// Hiding records the newest seq when asked; the next message shows the
// conversation again. Showing it again is hidden false.
func TestConversationHide(t *testing.T) {
	srv := convServer(t, im.Config{})
	conv := seedSingle(t, srv.Store, bob, alice, 4, longAgo)
	other := seedSingle(t, srv.Store, carol, alice, 1, longAgo)
	a := dialWatcher(t, srv, client.TransportTCP, alice)

	st := updateConv(t, a.Client, conv, client.ConversationChange{Hidden: newPtr(true)})
	require.Equal(t, int64(4), st.HiddenUpTo)
	require.Equal(t, []string{other}, convIDs(listNow(t, a.Client)))
	// Hiding leaves sync alone: it is the list's affair.
	rsp, err := a.BatchSync(testCtx(t), nil, 0)
	require.NoError(t, err)
	require.Len(t, rsp.ConversationMessages, 2)

	st = updateConv(t, a.Client, conv, client.ConversationChange{Hidden: newPtr(false)})
	require.Zero(t, st.HiddenUpTo)
	require.ElementsMatch(t, []string{conv, other}, convIDs(listNow(t, a.Client)))

	updateConv(t, a.Client, conv, client.ConversationChange{Hidden: newPtr(true)})
	goSendText(t, srv, bob, alice)
	all := listNow(t, a.Client)
	require.Equal(t, []string{conv, other}, convIDs(all))
	require.Equal(t, int64(5), all[0].LastMessage.Seq)
	require.Equal(t, int64(5), all[0].Unread)
}

// Clearing history is hers alone, and holds wherever she reads: the list,
// unread counts, BATCH_SYNC and SYNC_RANGE. Her peer reads everything.
func TestConversationClearHistory(t *testing.T) {
	srv := convServer(t, im.Config{})
	ctx := testCtx(t)
	conv := seedSingle(t, srv.Store, bob, alice, 5, longAgo)
	a := dialWatcher(t, srv, client.TransportTCP, alice)
	b := dialWatcher(t, srv, client.TransportWebSocket, bob)

	st := updateConv(t, a.Client, conv, client.ConversationChange{ClearUpTo: 3})
	require.Equal(t, int64(3), st.ClearedUpTo)
	e := findConv(t, listNow(t, a.Client), conv)
	require.Equal(t, int64(2), e.Unread)
	require.Equal(t, int64(3), e.ClearedUpTo)
	require.Equal(t, int64(5), e.LastMessage.Seq)

	rsp, err := a.BatchSync(ctx, nil, 0)
	require.NoError(t, err)
	require.Len(t, rsp.ConversationMessages, 1)
	cm := rsp.ConversationMessages[0]
	require.Equal(t, []int64{4, 5}, seqs(cm.Messages))
	require.Equal(t, int64(5), cm.MaxSeq)
	rsp, err = a.BatchSync(ctx, map[string]int64{conv: 1}, 0)
	require.NoError(t, err)
	require.Equal(t, []int64{4, 5}, seqs(rsp.ConversationMessages[0].Messages))
	r, err := a.SyncRange(ctx, conv, 1, 0, 0)
	require.NoError(t, err)
	require.Equal(t, []int64{4, 5}, seqs(r.Messages))
	r, err = a.SyncRange(ctx, conv, 1, 3, 0)
	require.NoError(t, err)
	require.Empty(t, r.Messages)
	require.False(t, r.HasMore)
	states, err := srv.ReadStates(ctx, alice, []string{conv})
	require.NoError(t, err)
	require.Equal(t, int64(2), states[0].Unread)

	// Bob is not affected.
	rsp, err = b.BatchSync(ctx, nil, 0)
	require.NoError(t, err)
	require.Equal(t, upTo(1, 5), seqs(rsp.ConversationMessages[0].Messages))
	r, err = b.SyncRange(ctx, conv, 1, 3, 0)
	require.NoError(t, err)
	require.Equal(t, upTo(1, 3), seqs(r.Messages))
	require.Zero(t, findConv(t, listNow(t, b.Client), conv).ClearedUpTo)

	// Clearing only moves forward; past the newest it is the newest.
	st = updateConv(t, a.Client, conv, client.ConversationChange{ClearUpTo: 1})
	require.Equal(t, int64(3), st.ClearedUpTo)
	st = updateConv(t, a.Client, conv, client.ConversationChange{ClearUpTo: 1000})
	require.Equal(t, int64(5), st.ClearedUpTo)

	// All of it cleared: listed without a last message, synced as a
	// conversation with nothing in it, so the cursor moves past.
	e = findConv(t, listNow(t, a.Client), conv)
	require.Nil(t, e.LastMessage)
	require.Zero(t, e.Unread)
	require.Equal(t, int64(5), e.MaxSeq)
	rsp, err = a.BatchSync(ctx, nil, 0)
	require.NoError(t, err)
	require.Len(t, rsp.ConversationMessages, 1)
	cm = rsp.ConversationMessages[0]
	require.Empty(t, cm.Messages)
	require.Equal(t, int64(5), cm.SyncedSeq)
	require.Equal(t, int64(5), cm.MaxSeq)
	require.False(t, cm.HasMore)
	r, err = a.SyncRange(ctx, conv, 0, 0, 0)
	require.NoError(t, err)
	require.Empty(t, r.Messages)

	// What comes after is hers again.
	goSendText(t, srv, bob, alice)
	e = findConv(t, listNow(t, a.Client), conv)
	require.Equal(t, int64(6), e.LastMessage.Seq)
	require.Equal(t, int64(1), e.Unread)
	rsp, err = a.BatchSync(ctx, nil, 0)
	require.NoError(t, err)
	require.Equal(t, []int64{6}, seqs(rsp.ConversationMessages[0].Messages))

	// clear_all clears up to the newest now.
	st = updateConv(t, a.Client, conv, client.ConversationChange{ClearAll: true})
	require.Equal(t, int64(6), st.ClearedUpTo)
}

// Clearing a group's history stacks on the member's first readable seq.
func TestConversationClearGroupHistory(t *testing.T) {
	srv := convServer(t, im.Config{})
	ctx := testCtx(t)
	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "g"}, []string{bob})
	require.NoError(t, err)
	gc := im.GroupConversationID(g.ID)
	for range 3 {
		_, err := srv.SendMessage(ctx, im.SendRequest{SenderID: alice, ConversationID: gc, Type: im.TextMessage, Content: []byte("x")})
		require.NoError(t, err)
	}
	require.NoError(t, srv.InviteToGroup(ctx, g.ID, alice, []string{carol})) // seq 5, her first
	_, err = srv.SendMessage(ctx, im.SendRequest{SenderID: alice, ConversationID: gc, Type: im.TextMessage, Content: []byte("y")})
	require.NoError(t, err)
	c := dialWatcher(t, srv, client.TransportTCP, carol)
	e := findConv(t, listNow(t, c.Client), gc)
	require.Equal(t, int64(2), e.Unread, "from her joining on")
	require.Equal(t, int64(6), e.LastMessage.Seq)

	updateConv(t, c.Client, gc, client.ConversationChange{ClearUpTo: 5})
	e = findConv(t, listNow(t, c.Client), gc)
	require.Equal(t, int64(1), e.Unread)
	r, err := c.SyncRange(ctx, gc, 1, 0, 0)
	require.NoError(t, err)
	require.Equal(t, []int64{6}, seqs(r.Messages))
	b := dialWatcher(t, srv, client.TransportTCP, bob)
	e = findConv(t, listNow(t, b.Client), gc)
	require.Equal(t, int64(6), e.Unread, "bob reads everything since the group began")
}

// Only members change settings of a conversation: others are refused and
// nothing is stored; an invite-only group looks to them exactly as a group
// that does not exist.
func TestConversationSettingsNonMember(t *testing.T) {
	srv := convServer(t, im.Config{})
	ctx := testCtx(t)
	conv := seedSingle(t, srv.Store, bob, alice, 1, longAgo)
	private, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "private", JoinPolicy: im.JoinInviteOnly}, []string{bob})
	require.NoError(t, err)
	open, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "open", JoinPolicy: im.JoinOpen}, []string{bob})
	require.NoError(t, err)
	const missing = "0123456789abcdef0123456789abcdef"
	c := dialWatcher(t, srv, client.TransportTCP, carol)
	pin := client.ConversationChange{Pinned: newPtr(true)}

	_, err = c.UpdateConversation(ctx, conv, pin)
	refusedWith(t, err, imv1.ErrorCode_ERR_PERMISSION_DENIED)
	_, err = c.UpdateConversation(ctx, im.SystemConversationID(alice), pin)
	refusedWith(t, err, imv1.ErrorCode_ERR_PERMISSION_DENIED)
	_, err = c.UpdateConversation(ctx, im.GroupConversationID(open.ID), pin)
	refusedWith(t, err, imv1.ErrorCode_ERR_PERMISSION_DENIED)
	_, want := c.UpdateConversation(ctx, im.GroupConversationID(missing), pin)
	_, got := c.UpdateConversation(ctx, im.GroupConversationID(private.ID), pin)
	refusedWith(t, want, imv1.ErrorCode_ERR_CONVERSATION_NOT_EXIST)
	require.Equal(t, want.Error(), got.Error(), "the same answer as for no group")

	for _, id := range []string{conv, im.SystemConversationID(alice), im.GroupConversationID(open.ID), im.GroupConversationID(private.ID)} {
		_, err := srv.UpdateConversationSettings(ctx, carol, id, im.SettingsChange{Pinned: newPtr(true)})
		require.Error(t, err, id)
	}
	_, goWant := srv.UpdateConversationSettings(ctx, carol, im.GroupConversationID(missing), im.SettingsChange{Pinned: newPtr(true)})
	_, goGot := srv.UpdateConversationSettings(ctx, carol, im.GroupConversationID(private.ID), im.SettingsChange{Pinned: newPtr(true)})
	require.ErrorIs(t, goGot, im.ErrNotFound)
	require.Equal(t, goWant.Error(), goGot.Error())
	_, err = srv.UpdateConversationSettings(ctx, carol, conv, im.SettingsChange{Pinned: newPtr(true)})
	require.ErrorIs(t, err, im.ErrPermissionDenied)

	changed, err := srv.Store.(im.ConversationSettingsStore).ChangedSettings(ctx, carol, time.Time{})
	require.NoError(t, err)
	require.Empty(t, changed, "nothing stored for carol")

	// A former member is an outsider too.
	require.NoError(t, srv.LeaveGroup(ctx, private.ID, bob))
	_, err = srv.UpdateConversationSettings(ctx, bob, im.GroupConversationID(private.ID), im.SettingsChange{Pinned: newPtr(true)})
	require.Equal(t, goWant.Error(), err.Error())
}

// Bad input is refused with INVALID_PARAM, and changes nothing.
func TestConversationBadInput(t *testing.T) {
	srv := convServer(t, im.Config{})
	ctx := testCtx(t)
	conv := seedSingle(t, srv.Store, bob, alice, 3, longAgo)
	a := dialWatcher(t, srv, client.TransportTCP, alice)
	updateConv(t, a.Client, conv, client.ConversationChange{ClearUpTo: 1})
	before := findConv(t, listNow(t, a.Client), conv)

	settings := []*imv1.ConversationSettingsRequest{
		{ConversationId: conv, Pinned: newPtr(true), ClearUpTo: -1},
		{ConversationId: conv, Pinned: newPtr(true), ClearUpTo: 2, ClearAll: true},
		{ConversationId: "", Pinned: newPtr(true)},
		{ConversationId: "single_alice_\x01", Pinned: newPtr(true)},
		{ConversationId: "elsewhere_alice", Pinned: newPtr(true)},
		{ConversationId: strings.Repeat("x", 300), Pinned: newPtr(true)},
	}
	for i, req := range settings {
		err := a.Request(ctx, imv1.CommandType_CMD_CONVERSATION_SETTINGS_REQ, req, new(imv1.ConversationSettingsResponse))
		require.Error(t, err, "settings request %d", i)
		refusedWith(t, err, imv1.ErrorCode_ERR_INVALID_PARAM)
	}
	lists := []*imv1.ConversationListRequest{
		{Limit: -1},
		{Since: -1},
		{Cursor: "not a cursor"},
		{Cursor: "YzF8MnwxfDB8MXx4"}, // "c1|2|1|0|1|x": pinned neither 0 nor 1
		{Cursor: "YzF8MHwxfDB8MHx4"}, // "c1|0|1|0|0|x": no version
		{Cursor: "Yzl8MHwxfDB8MXx4"}, // "c9|0|1|0|1|x": another format
		{Cursor: strings.Repeat("A", 1000)},
		{Changes: 7},
	}
	for i, req := range lists {
		err := a.Request(ctx, imv1.CommandType_CMD_CONVERSATION_LIST_REQ, req, new(imv1.ConversationListResponse))
		require.Error(t, err, "list request %d", i)
		refusedWith(t, err, imv1.ErrorCode_ERR_INVALID_PARAM)
	}
	rsp := listConvs(t, a.Client, client.ConversationQuery{})
	require.False(t, rsp.Changes, "a refused request subscribes nothing")
	after := findConv(t, rsp.Conversations, conv)
	require.True(t, proto.Equal(before, after), "before %v, after %v", before, after)

	// The Go API refuses the same.
	for _, ch := range []im.SettingsChange{{HiddenUpTo: newPtr(int64(-1))}, {ClearedUpTo: newPtr(int64(-5))}} {
		_, err := srv.UpdateConversationSettings(ctx, alice, conv, ch)
		require.ErrorIs(t, err, im.ErrInvalidArgument)
	}
	_, err := srv.UpdateConversationSettings(ctx, "bad\nuser", conv, im.SettingsChange{Pinned: newPtr(true)})
	require.ErrorIs(t, err, im.ErrInvalidArgument)
	_, err = srv.Conversations(ctx, alice, im.ConversationQuery{Limit: -1})
	require.ErrorIs(t, err, im.ErrInvalidArgument)
	_, err = srv.Conversations(ctx, "", im.ConversationQuery{})
	require.ErrorIs(t, err, im.ErrInvalidArgument)

	// A malformed body counts as a bad request and keeps the connection.
	r := dialRaw(t, srv.TCPAddr)
	r.auth(alice, srv.Token(t, alice))
	seq := r.write(imv1.CommandType_CMD_CONVERSATION_LIST_REQ, []byte{0xff, 0xff})
	var lr imv1.ConversationListResponse
	require.Equal(t, imv1.CommandType_CMD_CONVERSATION_LIST_RSP, r.response(seq, &lr))
	require.Equal(t, imv1.ErrorCode_ERR_INVALID_PARAM, lr.ErrorCode)
	seq = r.write(imv1.CommandType_CMD_CONVERSATION_SETTINGS_REQ, []byte{0xff, 0xff})
	var sr imv1.ConversationSettingsResponse
	require.Equal(t, imv1.CommandType_CMD_CONVERSATION_SETTINGS_RSP, r.response(seq, &sr))
	require.Equal(t, imv1.ErrorCode_ERR_INVALID_PARAM, sr.ErrorCode)
	r.alive()
}

// Both requests are limited per user (Config.ConversationRate).
func TestConversationRate(t *testing.T) {
	srv := convServer(t, im.Config{ConversationRate: 0.01}) // a burst of one
	conv := seedSingle(t, srv.Store, bob, alice, 1, longAgo)
	a := dialWatcher(t, srv, client.TransportTCP, alice)
	listConvs(t, a.Client, client.ConversationQuery{})
	_, err := a.Conversations(testCtx(t), client.ConversationQuery{})
	refusedWith(t, err, imv1.ErrorCode_ERR_SEND_TOO_FAST)
	_, err = a.UpdateConversation(testCtx(t), conv, client.ConversationChange{Pinned: newPtr(true)})
	refusedWith(t, err, imv1.ErrorCode_ERR_SEND_TOO_FAST)
	st, err := srv.Store.(im.ConversationSettingsStore).ConversationSettings(testCtx(t), alice, []string{conv})
	require.NoError(t, err)
	require.False(t, st[0].Pinned, "nothing changed")
}

// The last message may be a recalled one's tombstone, and a mention shows
// while the message that mentions her is unread and not cleared.
func TestConversationTombstoneAndMention(t *testing.T) {
	srv := convServer(t, im.Config{})
	ctx := testCtx(t)
	conv := seedSingle(t, srv.Store, bob, alice, 2, longAgo)
	res, err := srv.Store.AppendMessages(ctx, []im.AppendRequest{{Message: im.Message{
		ConversationID: conv, ServerID: "recalled", SenderID: bob, ReceiverID: alice, ClientMsgID: "recalled",
		Type: im.TextMessage, Content: []byte("gone"), CreatedAt: longAgo.Add(time.Second),
	}}})
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
	_, err = srv.Store.(im.RecallStore).RecallMessage(ctx, conv, res[0].Message.Seq, bob, longAgo.Add(time.Minute))
	require.NoError(t, err)
	a := dialWatcher(t, srv, client.TransportTCP, alice)
	e := findConv(t, listNow(t, a.Client), conv)
	require.Equal(t, int64(3), e.LastMessage.Seq)
	require.True(t, e.LastMessage.IsRevoked)
	require.Equal(t, bob, e.LastMessage.RevokedBy)
	require.Empty(t, e.LastMessage.Content)
	require.Equal(t, int64(3), e.Unread, "a tombstone counts")
	require.False(t, e.Mentioned)

	_, err = srv.Store.(im.ReadStateStore).UpdateReadStates(ctx, []im.ReadState{{UserID: alice, ConversationID: conv, Mentioned: 2, UpdatedAt: time.Now()}})
	require.NoError(t, err)
	page, err := srv.Conversations(ctx, alice, im.ConversationQuery{})
	require.NoError(t, err)
	require.True(t, page.HasReadState)
	require.True(t, page.Conversations[0].Mentioned)
	require.True(t, page.Conversations[0].LastMessage.Revoked())

	updateConv(t, a.Client, conv, client.ConversationChange{ClearUpTo: 2})
	require.False(t, findConv(t, listNow(t, a.Client), conv).Mentioned, "cleared")
	_, err = srv.Store.(im.ReadStateStore).UpdateReadStates(ctx, []im.ReadState{{UserID: alice, ConversationID: conv, Mentioned: 3, UpdatedAt: time.Now()}})
	require.NoError(t, err)
	require.True(t, findConv(t, listNow(t, a.Client), conv).Mentioned)
	_, err = srv.MarkRead(ctx, alice, conv, nil)
	require.NoError(t, err)
	require.False(t, findConv(t, listNow(t, a.Client), conv).Mentioned, "read")
}

// A page stops before its last messages would pass a frame's worth, so
// that it always fits in one; the pages still cover everything.
func TestConversationPageFitsAFrame(t *testing.T) {
	srv := convServer(t, im.Config{MaxContentSize: 200 << 10})
	ctx := testCtx(t)
	const n = 12
	big := []byte(strings.Repeat("z", 200<<10))
	for i := range n {
		_, err := srv.SendMessage(ctx, im.SendRequest{SenderID: peerN(i), ReceiverID: alice, Type: im.TextMessage, Content: big})
		require.NoError(t, err)
	}
	page, err := srv.Conversations(ctx, alice, im.ConversationQuery{})
	require.NoError(t, err)
	require.Less(t, len(page.Conversations), n)
	require.NotEmpty(t, page.Next)
	a := dialWatcher(t, srv, client.TransportTCP, alice)
	all, _ := listAllConvs(t, a.Client, 0)
	require.Len(t, all, n)
}

// listCountingStore counts the calls of the reads the list makes.
type listCountingStore struct {
	*memstore.Store
	syncConvs, ranges, readStates, settings atomic.Int64
}

func (c *listCountingStore) SyncConversations(ctx context.Context, user string) ([]im.Conversation, error) {
	c.syncConvs.Add(1)
	return c.Store.SyncConversations(ctx, user)
}

func (c *listCountingStore) MessageRanges(ctx context.Context, r []im.MessageRange, limit int) ([][]im.Message, error) {
	c.ranges.Add(1)
	return c.Store.MessageRanges(ctx, r, limit)
}

func (c *listCountingStore) ReadStates(ctx context.Context, user string, convs []string) ([]im.ReadState, error) {
	c.readStates.Add(1)
	return c.Store.ReadStates(ctx, user, convs)
}

func (c *listCountingStore) ConversationSettings(ctx context.Context, user string, convs []string) ([]im.ConversationSettings, error) {
	c.settings.Add(1)
	return c.Store.ConversationSettings(ctx, user, convs)
}

func (c *listCountingStore) counts() [4]int64 {
	return [4]int64{c.syncConvs.Load(), c.ranges.Load(), c.readStates.Load(), c.settings.Load()}
}

// The list reads in batches: one SyncConversations, one ReadStates and one
// ConversationSettings for up to 1,000 conversations, one MessageRanges
// per 256; clearing costs BATCH_SYNC and SYNC_RANGE one read each.
func TestConversationListReads(t *testing.T) {
	store := &listCountingStore{Store: memstore.New()}
	srv := convServer(t, im.Config{Store: store})
	ctx := testCtx(t)
	const n = 600
	for i := range n {
		seedSingle(t, store, fmt.Sprintf("u%03d", i), alice, 1, longAgo)
	}
	a := dialWatcher(t, srv, client.TransportTCP, alice)
	before := store.counts()
	rsp := listConvs(t, a.Client, client.ConversationQuery{Limit: 10})
	require.Len(t, rsp.Conversations, 10)
	after := store.counts()
	require.Equal(t, [4]int64{1, 3, 1, 1}, [4]int64{after[0] - before[0], after[1] - before[1], after[2] - before[2], after[3] - before[3]})

	before = store.counts()
	_, err := a.BatchSync(ctx, nil, 1)
	require.NoError(t, err)
	require.Equal(t, before[3]+1, store.counts()[3], "one settings read per BATCH_SYNC")
	before = store.counts()
	_, err = a.SyncRange(ctx, im.SingleConversationID("u000", alice), 1, 0, 0)
	require.NoError(t, err)
	require.Equal(t, before[3]+1, store.counts()[3], "one settings read per SYNC_RANGE")
}

// Without the optional stores the list still works: no settings (every
// conversation unpinned and shown, changes refused as unsupported), no
// read states (the page says so, rather than claim 0 unread), and without
// SyncStore the Server reads conversation by conversation.
func TestConversationListWithoutCapabilities(t *testing.T) {
	mem := memstore.New()
	stores := []struct {
		name     string
		store    im.Store
		readable bool
	}{
		{"no settings", struct {
			im.Store
			im.SyncStore
			im.ReadStateStore
		}{mem, mem, mem}, true},
		{"no read state", struct {
			im.Store
			im.SyncStore
		}{mem, mem}, false},
		{"required only", struct{ im.Store }{mem}, false},
	}
	conv := seedSingle(t, mem, bob, alice, 3, longAgo)
	g := seedSingle(t, mem, carol, alice, 1, longAgo.Add(time.Minute))
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			srv := convServer(t, im.Config{Store: st.store})
			ctx := testCtx(t)
			a := dialWatcher(t, srv, client.TransportTCP, alice)
			rsp := listConvs(t, a.Client, client.ConversationQuery{})
			require.Equal(t, []string{g, conv}, convIDs(rsp.Conversations))
			require.Equal(t, st.readable, rsp.ReadState)
			e := rsp.Conversations[1]
			require.Equal(t, int64(3), e.LastMessage.Seq)
			if st.readable {
				require.Equal(t, int64(3), e.Unread)
			} else {
				require.Zero(t, e.Unread)
				require.Zero(t, e.ReadSeq)
			}
			require.False(t, e.Pinned)

			_, err := a.UpdateConversation(ctx, conv, client.ConversationChange{Pinned: newPtr(true)})
			refusedWith(t, err, imv1.ErrorCode_ERR_UNKNOWN)
			_, err = srv.UpdateConversationSettings(ctx, alice, conv, im.SettingsChange{Pinned: newPtr(true)})
			require.ErrorIs(t, err, im.ErrUnsupported)
			rs, err := a.BatchSync(ctx, nil, 0)
			require.NoError(t, err)
			require.Len(t, rs.ConversationMessages, 2)
			r, err := a.SyncRange(ctx, conv, 1, 0, 0)
			require.NoError(t, err)
			require.Equal(t, upTo(1, 3), seqs(r.Messages))
		})
	}
}

func newPtr[T any](v T) *T { return &v }

// The Go API pages as the protocol does; a Since of any precision goes
// with the cursors made for it.
func TestConversationsGoAPI(t *testing.T) {
	srv := convServer(t, im.Config{})
	ctx := testCtx(t)
	for i := range 5 {
		seedSingle(t, srv.Store, peerN(i), alice, 1, longAgo.Add(time.Duration(i)*time.Minute))
	}
	since := longAgo.Add(-time.Minute + 123*time.Nanosecond)
	var got []string
	q := im.ConversationQuery{Limit: 2, Since: since}
	for {
		p, err := srv.Conversations(ctx, alice, q)
		require.NoError(t, err)
		require.LessOrEqual(t, len(p.Conversations), 2)
		for _, e := range p.Conversations {
			got = append(got, e.ID)
			require.Equal(t, im.SingleConversation, e.Type)
			require.Equal(t, int64(1), e.Unread)
			require.NotNil(t, e.LastMessage)
		}
		if p.Next == "" {
			break
		}
		_, err = srv.Conversations(ctx, alice, im.ConversationQuery{Cursor: p.Next, Since: since.Add(time.Second)})
		require.ErrorIs(t, err, im.ErrInvalidArgument, "another since")
		q.Cursor = p.Next
	}
	want := make([]string, 5)
	for i := range want {
		want[i] = im.SingleConversationID(peerN(4-i), alice)
	}
	require.Equal(t, want, got)
}
