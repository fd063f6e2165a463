package im_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/store/memstore"
	"github.com/stretchr/testify/require"
)

// legacySyncStore is a SyncStore written before ReadFrom: it lists group
// conversations with ReadFrom 0, which leaves the first readable seq to
// the Server.
type legacySyncStore struct {
	*memstore.Store
}

func (l legacySyncStore) SyncConversations(ctx context.Context, userID string) ([]im.Conversation, error) {
	cs, err := l.Store.SyncConversations(ctx, userID)
	for i := range cs {
		cs[i].ReadFrom = 0
	}
	return cs, err
}

// historyStores are the ways a Server reads a group's messages: bbolt (a
// SyncStore), a Store without SyncStore, and a SyncStore that gives no
// ReadFrom.
var historyStores = []struct {
	name  string
	store func() im.Store
}{
	{"bolt", func() im.Store { return nil }},
	{"plain", func() im.Store { return &plainStore{Store: memstore.New()} }},
	{"legacySync", func() im.Store { return legacySyncStore{memstore.New()} }},
}

// span returns the seqs from..to.
func span(from, to int64) []int64 {
	out := []int64{}
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// groupReads is what user reads of group gid's conversation by each way
// in: BATCH_SYNC with no cursor and with a cursor of 1 (a client may claim
// any), SYNC_RANGE over everything, and a page of history reaching below
// from (the last five seqs up to upTo).
type groupReads struct {
	batch, batchFrom1, all, page []int64
}

func readGroup(t *testing.T, c *client.Client, gid string, upTo int64) groupReads {
	t.Helper()
	ctx := testCtx(t)
	conv := im.GroupConversationID(gid)
	var r groupReads
	batch := func(states map[string]int64) []int64 {
		rsp, err := c.BatchSync(ctx, states, 500)
		require.NoError(t, err)
		for _, cm := range rsp.ConversationMessages {
			if cm.ConversationId == conv {
				return seqs(cm.Messages)
			}
		}
		return []int64{}
	}
	r.batch = batch(nil)
	r.batchFrom1 = batch(map[string]int64{conv: 1})
	rsp, err := c.SyncRange(ctx, conv, 1, 0, 500)
	require.NoError(t, err)
	r.all = seqs(rsp.Messages)
	rsp, err = c.SyncRange(ctx, conv, max(upTo-4, 1), upTo, 5)
	require.NoError(t, err)
	r.page = seqs(rsp.Messages)
	return r
}

// requireReads requires every way in to give exactly the seqs from..last
// (the page those up to upTo).
func requireReads(t *testing.T, what string, got groupReads, from, last, upTo int64) {
	t.Helper()
	require.Equal(t, span(from, last), got.batch, "%s: BATCH_SYNC", what)
	require.Equal(t, span(max(from, 2), last), got.batchFrom1, "%s: BATCH_SYNC after seq 1", what)
	require.Equal(t, span(from, last), got.all, "%s: SYNC_RANGE", what)
	require.Equal(t, span(max(from, upTo-4), upTo), got.page, "%s: a page of history up to %d", what, upTo)
}

// sendN sends n texts from c to group gid and returns the seq of the last.
func sendN(t *testing.T, c *client.Client, gid string, n int) int64 {
	t.Helper()
	var last int64
	for i := range n {
		ack, err := sendToGroup(t, c, gid, fmt.Sprintf("m%d", i))
		require.NoError(t, err)
		last = ack.Seq
	}
	return last
}

// A user added to a group after N messages reads, by every way in, the
// group's messages from the notice of her joining on, not one before it,
// whatever cursor her client claims; the members of before read all. With
// the group set to show its full history she reads everything.
func TestNewMemberReadsFromJoin(t *testing.T) {
	for _, st := range historyStores {
		t.Run(st.name, func(t *testing.T) {
			srv := imtest.NewServer(t, imtest.Options{Config: im.Config{Store: st.store(), GroupAddPolicy: anyoneAdds}})
			ctx := testCtx(t)
			b := srv.Dial(t, "tcp", bob)
			c := srv.Dial(t, "tcp", carol)

			g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "private", JoinPolicy: im.JoinInviteOnly}, []string{bob})
			require.NoError(t, err)
			require.Equal(t, im.HistoryFromJoin, g.History, "the default")
			require.Equal(t, int64(8), sendN(t, b, g.ID, 7))
			require.NoError(t, srv.InviteToGroup(ctx, g.ID, alice, []string{carol})) // seq 9
			require.Equal(t, int64(11), sendN(t, b, g.ID, 2))

			requireReads(t, "carol", readGroup(t, c, g.ID, 10), 9, 11, 10)
			requireReads(t, "bob", readGroup(t, b, g.ID, 10), 1, 11, 10)
			// Only what lies before her joining: nothing, and no error.
			rsp, err := c.SyncRange(ctx, im.GroupConversationID(g.ID), 1, 8, 100)
			require.NoError(t, err)
			require.Empty(t, rsp.Messages)
			require.False(t, rsp.HasMore)

			// The client's own catch-up, from nothing.
			c2 := srv.Dial(t, "websocket", carol)
			msgs, err := c2.SyncAll(ctx)
			require.NoError(t, err)
			var got []int64
			for _, m := range msgs {
				if m.ConversationId == im.GroupConversationID(g.ID) {
					got = append(got, m.Seq)
				}
			}
			require.Equal(t, span(9, 11), got)

			// Asked for, the whole history.
			open, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "open book", History: im.HistoryFull}, []string{bob})
			require.NoError(t, err)
			require.Equal(t, im.HistoryFull, open.History)
			sendN(t, b, open.ID, 7)
			require.NoError(t, srv.InviteToGroup(ctx, open.ID, alice, []string{carol}))
			sendN(t, b, open.ID, 2)
			requireReads(t, "carol, full history", readGroup(t, c, open.ID, 10), 1, 11, 10)
		})
	}
}

// Leaving and joining again is a new membership: the messages of the
// first one, and those sent while away, are not read again.
func TestRejoinedMemberReadsFromNewJoin(t *testing.T) {
	for _, st := range historyStores {
		t.Run(st.name, func(t *testing.T) {
			srv := imtest.NewServer(t, imtest.Options{Config: im.Config{Store: st.store(), GroupAddPolicy: anyoneAdds}})
			ctx := testCtx(t)
			b := srv.Dial(t, "tcp", bob)
			c := srv.Dial(t, "tcp", carol)
			g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "open"}, []string{bob})
			require.NoError(t, err)
			sendN(t, b, g.ID, 3) // 2..4
			_, err = srv.JoinGroup(ctx, g.ID, carol)
			require.NoError(t, err) // 5
			sendN(t, b, g.ID, 2)    // 6, 7
			requireReads(t, "first membership", readGroup(t, c, g.ID, 7), 5, 7, 7)
			require.NoError(t, srv.LeaveGroup(ctx, g.ID, carol)) // 8
			sendN(t, b, g.ID, 2)                                 // 9, 10
			_, err = srv.JoinGroup(ctx, g.ID, carol)
			require.NoError(t, err) // 11
			sendN(t, b, g.ID, 1)    // 12
			requireReads(t, "second membership", readGroup(t, c, g.ID, 12), 11, 12, 12)
		})
	}
}

// Switching a group between full history and from-join changes what its
// members read at once, both ways; the members from its creation read
// everything either way.
func TestHistorySettingSwitchesBothWays(t *testing.T) {
	for _, st := range historyStores {
		t.Run(st.name, func(t *testing.T) {
			srv := imtest.NewServer(t, imtest.Options{Config: im.Config{Store: st.store(), GroupAddPolicy: anyoneAdds}})
			ctx := testCtx(t)
			b := srv.Dial(t, "tcp", bob)
			c := srv.Dial(t, "tcp", carol)
			g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "g", History: im.HistoryFull}, []string{bob})
			require.NoError(t, err)
			sendN(t, b, g.ID, 4)                                                     // 2..5
			require.NoError(t, srv.InviteToGroup(ctx, g.ID, alice, []string{carol})) // 6
			sendN(t, b, g.ID, 1)                                                     // 7
			requireReads(t, "full", readGroup(t, c, g.ID, 7), 1, 7, 7)

			fromJoin := im.HistoryFromJoin
			u, err := srv.UpdateGroup(ctx, g.ID, alice, im.GroupUpdate{History: &fromJoin}) // 8
			require.NoError(t, err)
			require.Equal(t, im.HistoryFromJoin, u.History)
			requireReads(t, "from join", readGroup(t, c, g.ID, 8), 6, 8, 8)
			requireReads(t, "a first member", readGroup(t, b, g.ID, 8), 1, 8, 8)

			full := im.HistoryFull
			_, err = srv.UpdateGroup(ctx, g.ID, alice, im.GroupUpdate{History: &full}) // 9
			require.NoError(t, err)
			requireReads(t, "full again", readGroup(t, c, g.ID, 9), 1, 9, 9)

			bad := im.HistoryVisibility(2)
			_, err = srv.UpdateGroup(ctx, g.ID, alice, im.GroupUpdate{History: &bad})
			require.ErrorIs(t, err, im.ErrInvalidArgument)
			_, err = srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "bad", History: bad}, nil)
			require.ErrorIs(t, err, im.ErrInvalidArgument)
			got, err := srv.Group(ctx, g.ID, alice)
			require.NoError(t, err)
			require.Equal(t, im.HistoryFull, got.History, "nothing changed")
			require.Equal(t, u.Version+1, got.Version, "nothing changed")
		})
	}
}

// A bbolt-backed server restarted keeps each member's join and the
// group's setting.
func TestHistoryVisibilitySurvivesRestart(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{GroupAddPolicy: anyoneAdds}})
	ctx := testCtx(t)
	b := srv.Dial(t, "tcp", bob)
	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "g", JoinPolicy: im.JoinInviteOnly}, []string{bob})
	require.NoError(t, err)
	full, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "full", History: im.HistoryFull}, []string{bob})
	require.NoError(t, err)
	sendN(t, b, g.ID, 3)
	sendN(t, b, full.ID, 3)
	require.NoError(t, srv.InviteToGroup(ctx, g.ID, alice, []string{carol}))    // 5
	require.NoError(t, srv.InviteToGroup(ctx, full.ID, alice, []string{carol})) // 5
	sendN(t, b, g.ID, 1)
	sendN(t, b, full.ID, 1)

	srv = srv.Restart(t)
	c := srv.Dial(t, "tcp", carol)
	requireReads(t, "from join, after a restart", readGroup(t, c, g.ID, 6), 5, 6, 6)
	requireReads(t, "full, after a restart", readGroup(t, c, full.ID, 6), 1, 6, 6)
	got, err := srv.Group(ctx, full.ID, carol)
	require.NoError(t, err)
	require.Equal(t, im.HistoryFull, got.History)
}
