package im_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/stretchr/testify/require"
)

const dave = "dave"

// notice decodes a group notice push and checks its envelope.
func notice(t *testing.T, m *imv1.MessageInfo, gid string) im.GroupNotice {
	t.Helper()
	require.Equal(t, int32(im.NotificationMessage), m.MessageType)
	require.Equal(t, im.GroupConversationID(gid), m.ConversationId)
	require.Equal(t, int32(im.GroupConversation), m.ConversationType)
	require.Equal(t, gid, m.GroupId)
	var n im.GroupNotice
	require.NoError(t, json.Unmarshal(m.Content, &n))
	require.Equal(t, gid, n.GroupID)
	return n
}

func sendToGroup(t *testing.T, c *client.Client, gid, text string) (*imv1.SendMessageResponse, error) {
	t.Helper()
	return c.Send(testCtx(t), client.Outgoing{ConversationID: im.GroupConversationID(gid), Type: im.TextMessage, Content: []byte(text)})
}

func TestGroupMessageReachesEveryMemberDeviceButTheSendingOne(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{GroupAddPolicy: anyoneAdds}})
	a1 := srv.Dial(t, "tcp", alice)
	a2 := srv.Dial(t, "websocket", alice)
	b1 := srv.Dial(t, "websocket", bob)
	b2 := srv.Dial(t, "tcp", bob)
	c1 := srv.Dial(t, "tcp", carol)
	d1 := srv.Dial(t, "tcp", dave)

	g, err := srv.CreateGroup(testCtx(t), alice, im.GroupSpec{Name: "team"}, []string{bob, carol, alice, bob})
	require.NoError(t, err)
	require.Equal(t, 3, g.MemberCount, "the owner and repeats count once")
	require.Equal(t, alice, g.OwnerID)

	for _, c := range []*client.Client{a1, a2, b1, b2, c1} {
		m := nextMessage(t, c)
		require.Equal(t, int64(1), m.Seq)
		n := notice(t, m, g.ID)
		require.Equal(t, im.GroupNoticeCreated, n.Type)
		require.Equal(t, alice, n.Operator)
		require.ElementsMatch(t, []string{bob, carol}, n.UserIDs)
	}

	rsp, err := sendToGroup(t, a1, g.ID, "hello team")
	require.NoError(t, err)
	require.Equal(t, int64(2), rsp.Seq)
	for _, c := range []*client.Client{a2, b1, b2, c1} {
		m := nextMessage(t, c)
		require.Equal(t, int64(2), m.Seq)
		require.Equal(t, "hello team", string(m.Content))
		require.Equal(t, alice, m.SenderId)
		require.Empty(t, m.ReceiverId)
		require.Equal(t, g.ID, m.GroupId)
		require.Equal(t, int32(im.GroupConversation), m.ConversationType)
	}
	noPush(t, a1)
	noPush(t, d1)
}

func TestGroupSendRefusals(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{GroupAddPolicy: anyoneAdds}})
	ctx := testCtx(t)
	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "team"}, []string{bob})
	require.NoError(t, err)
	d := srv.Dial(t, "tcp", dave)

	_, err = sendToGroup(t, d, g.ID, "let me in")
	require.ErrorIs(t, err, im.ErrPermissionDenied, "a non-member cannot send")
	_, err = sendToGroup(t, d, "nosuchgroup", "anyone?")
	require.ErrorIs(t, err, im.ErrNotFound)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, imv1.ErrorCode_ERR_CONVERSATION_NOT_EXIST, ce.Code)

	c, err := srv.Store.Conversation(ctx, im.GroupConversationID(g.ID))
	require.NoError(t, err)
	require.Equal(t, int64(1), c.MaxSeq, "only the creation notice is stored")

	// Nor can a non-member read the group's history.
	_, err = d.SyncRange(ctx, im.GroupConversationID(g.ID), 1, 0, 10)
	require.ErrorIs(t, err, im.ErrPermissionDenied)
}

func TestGroupMembershipChangesDecideWhoReceives(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{GroupAddPolicy: anyoneAdds}})
	ctx := testCtx(t)
	a := srv.Dial(t, "tcp", alice)
	b := srv.Dial(t, "tcp", bob)
	c := srv.Dial(t, "websocket", carol)
	d := srv.Dial(t, "tcp", dave)

	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "team"}, []string{bob})
	require.NoError(t, err)
	for _, cl := range []*client.Client{a, b} {
		require.Equal(t, im.GroupNoticeCreated, notice(t, messageAt(t, cl, 1), g.ID).Type)
	}

	// carol joins by herself (the group is open); everyone, her included,
	// hears of it. (Her client, seeing the group first at seq 2, asks for
	// seq 1 and gets nothing: she reads from her joining on.)
	joined, err := srv.JoinGroup(ctx, g.ID, carol)
	require.NoError(t, err)
	require.Equal(t, 3, joined.MemberCount)
	for _, cl := range []*client.Client{a, b, c} {
		n := notice(t, messageAt(t, cl, 2), g.ID)
		require.Equal(t, im.GroupNoticeJoined, n.Type)
		require.Equal(t, []string{carol}, n.UserIDs)
	}
	again, err := srv.JoinGroup(ctx, g.ID, carol)
	require.NoError(t, err, "joining twice is no error")
	require.Equal(t, 3, again.MemberCount)

	// bob invites dave.
	require.NoError(t, srv.InviteToGroup(ctx, g.ID, bob, []string{dave, carol}))
	for _, cl := range []*client.Client{a, b, c, d} {
		n := notice(t, messageAt(t, cl, 3), g.ID)
		require.Equal(t, im.GroupNoticeInvited, n.Type)
		require.Equal(t, []string{dave}, n.UserIDs, "carol is a member already")
		require.Equal(t, bob, n.Operator)
	}

	// A new member reads the history from her joining on (the group
	// keeps the default, HistoryFromJoin).
	history, err := d.SyncRange(ctx, im.GroupConversationID(g.ID), 1, 0, 10)
	require.NoError(t, err)
	require.Equal(t, []int64{3}, seqs(history.Messages))

	// dave's first message reaches the three others.
	_, err = sendToGroup(t, d, g.ID, "thanks")
	require.NoError(t, err)
	for _, cl := range []*client.Client{a, b, c} {
		require.Equal(t, "thanks", string(messageAt(t, cl, 4).Content))
	}

	// alice kicks bob: bob is told, then hears nothing more and can read
	// nothing more.
	require.NoError(t, srv.KickFromGroup(ctx, g.ID, alice, []string{bob}))
	for _, cl := range []*client.Client{a, b, c, d} {
		n := notice(t, messageAt(t, cl, 5), g.ID)
		require.Equal(t, im.GroupNoticeKicked, n.Type)
		require.Equal(t, []string{bob}, n.UserIDs)
	}
	_, err = sendToGroup(t, c, g.ID, "bye bob")
	require.NoError(t, err)
	for _, cl := range []*client.Client{a, d} {
		require.Equal(t, "bye bob", string(messageAt(t, cl, 6).Content))
	}
	noPush(t, b)
	_, err = sendToGroup(t, b, g.ID, "wait")
	require.ErrorIs(t, err, im.ErrPermissionDenied)
	_, err = b.SyncRange(ctx, im.GroupConversationID(g.ID), 1, 0, 10)
	require.ErrorIs(t, err, im.ErrPermissionDenied)
	bs, err := b.BatchSync(ctx, nil, 100)
	require.NoError(t, err)
	require.Empty(t, bs.ConversationMessages, "a former member syncs nothing of the group")

	// carol leaves.
	require.NoError(t, srv.LeaveGroup(ctx, g.ID, carol))
	for _, cl := range []*client.Client{a, c, d} {
		n := notice(t, messageAt(t, cl, 7), g.ID)
		require.Equal(t, im.GroupNoticeLeft, n.Type)
		require.Equal(t, carol, n.Operator)
	}
	members, err := srv.GroupMembers(ctx, g.ID, alice)
	require.NoError(t, err)
	var ids []string
	for _, m := range members {
		ids = append(ids, m.UserID)
	}
	require.ElementsMatch(t, []string{alice, dave}, ids)
	after, err := srv.Group(ctx, g.ID, alice)
	require.NoError(t, err)
	require.Equal(t, 2, after.MemberCount)
}

// messageAt waits for the pushed message with seq, skipping older ones (the
// history a client pulls when it first sees a conversation past seq 1) and
// failing on a newer one.
func messageAt(t *testing.T, c *client.Client, seq int64) *imv1.MessageInfo {
	t.Helper()
	for {
		m := nextMessage(t, c)
		switch {
		case m.Seq == seq:
			return m
		case m.Seq > seq:
			t.Fatalf("got seq %d while waiting for %d", m.Seq, seq)
		}
	}
}

func TestGroupPermissions(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{GroupAddPolicy: anyoneAdds, MaxGroupMembers: 4}})
	ctx := testCtx(t)
	closed := im.JoinInviteOnly
	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "club", JoinPolicy: closed}, []string{bob, carol})
	require.NoError(t, err)
	require.NoError(t, srv.SetGroupRole(ctx, g.ID, alice, bob, im.RoleAdmin))

	name := "renamed"
	tooLong := string(make([]byte, im.MaxGroupNameLen+1))
	for _, tc := range []struct {
		name string
		do   func() error
		want error
	}{
		{"join an invite-only group", func() error { _, err := srv.JoinGroup(ctx, g.ID, dave); return err }, im.ErrNotFound}, // an invite-only group hides from non-members,
		{"a member invites to an invite-only group", func() error { return srv.InviteToGroup(ctx, g.ID, carol, []string{dave}) }, im.ErrPermissionDenied},
		{"a non-member invites", func() error { return srv.InviteToGroup(ctx, g.ID, dave, []string{"erin"}) }, im.ErrNotFound}, // an invite-only group hides from non-members,
		{"a member kicks", func() error { return srv.KickFromGroup(ctx, g.ID, carol, []string{bob}) }, im.ErrPermissionDenied},
		{"an admin kicks the owner", func() error { return srv.KickFromGroup(ctx, g.ID, bob, []string{alice}) }, im.ErrPermissionDenied},
		{"kick oneself", func() error { return srv.KickFromGroup(ctx, g.ID, bob, []string{bob}) }, im.ErrInvalidArgument},
		{"the owner leaves", func() error { return srv.LeaveGroup(ctx, g.ID, alice) }, im.ErrPermissionDenied},
		{"a non-member leaves", func() error { return srv.LeaveGroup(ctx, g.ID, dave) }, im.ErrNotFound}, // an invite-only group hides from non-members,
		{"an admin dismisses", func() error { return srv.DismissGroup(ctx, g.ID, bob) }, im.ErrPermissionDenied},
		{"an admin sets roles", func() error { return srv.SetGroupRole(ctx, g.ID, bob, carol, im.RoleAdmin) }, im.ErrPermissionDenied},
		{"the owner demotes itself", func() error { return srv.SetGroupRole(ctx, g.ID, alice, alice, im.RoleAdmin) }, im.ErrInvalidArgument},
		{"an admin hands the group over", func() error { return srv.SetGroupRole(ctx, g.ID, bob, carol, im.RoleOwner) }, im.ErrPermissionDenied},
		{"an unknown role", func() error { return srv.SetGroupRole(ctx, g.ID, alice, carol, 9) }, im.ErrInvalidArgument},
		{"a member edits", func() error {
			_, err := srv.UpdateGroup(ctx, g.ID, carol, im.GroupUpdate{Name: &name})
			return err
		}, im.ErrPermissionDenied},
		{"a name too long", func() error {
			_, err := srv.UpdateGroup(ctx, g.ID, bob, im.GroupUpdate{Name: &tooLong})
			return err
		}, im.ErrInvalidArgument},
		{"past the member limit", func() error { return srv.InviteToGroup(ctx, g.ID, bob, []string{dave, "erin"}) }, im.ErrLimitExceeded},
		{"an invalid member id", func() error { return srv.InviteToGroup(ctx, g.ID, bob, []string{"bad\x00id"}) }, im.ErrInvalidArgument},
		{"kick an invalid id", func() error { return srv.KickFromGroup(ctx, g.ID, alice, []string{carol, ""}) }, im.ErrInvalidArgument},
		{"a role for an invalid id", func() error { return srv.SetGroupRole(ctx, g.ID, alice, "", im.RoleAdmin) }, im.ErrInvalidArgument},
		{"members of another group", func() error { _, err := srv.GroupMembers(ctx, g.ID, dave); return err }, im.ErrNotFound}, // an invite-only group hides from non-members,
		{"a group that does not exist", func() error { _, err := srv.JoinGroup(ctx, "nosuch", dave); return err }, im.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, tc.do(), tc.want)
			got, err := srv.Group(ctx, g.ID, alice)
			require.NoError(t, err)
			require.Equal(t, "club", got.Name, "nothing changed")
			require.Equal(t, 3, got.MemberCount, "nothing changed")
		})
	}

	// An edit that changes nothing stores nothing and tells nobody.
	conv := im.GroupConversationID(g.ID)
	seqBefore, err := srv.Store.Conversation(ctx, conv)
	require.NoError(t, err)
	same := "club"
	unchanged, err := srv.UpdateGroup(ctx, g.ID, alice, im.GroupUpdate{Name: &same})
	require.NoError(t, err)
	require.True(t, unchanged.UpdatedAt.Equal(g.UpdatedAt))
	seqAfter, err := srv.Store.Conversation(ctx, conv)
	require.NoError(t, err)
	require.Equal(t, seqBefore.MaxSeq, seqAfter.MaxSeq)

	// What the owner and admins may do, they can.
	require.NoError(t, srv.InviteToGroup(ctx, g.ID, bob, []string{dave}))
	require.NoError(t, srv.KickFromGroup(ctx, g.ID, bob, []string{carol}))
	updated, err := srv.UpdateGroup(ctx, g.ID, bob, im.GroupUpdate{Name: &name})
	require.NoError(t, err)
	require.Equal(t, name, updated.Name)
	require.True(t, updated.UpdatedAt.After(g.UpdatedAt) || updated.UpdatedAt.Equal(g.UpdatedAt))
	require.NoError(t, srv.KickFromGroup(ctx, g.ID, alice, []string{bob}), "the owner removes an admin")

	_, err = srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "too big"}, []string{bob, carol, dave, "erin"})
	require.ErrorIs(t, err, im.ErrLimitExceeded)
	_, err = srv.CreateGroup(ctx, alice, im.GroupSpec{Name: ""}, nil)
	require.ErrorIs(t, err, im.ErrInvalidArgument)
	groups, err := srv.UserGroups(ctx, alice)
	require.NoError(t, err)
	require.Len(t, groups, 1, "refused creations stored nothing")
}

func TestGroupDismiss(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{GroupAddPolicy: anyoneAdds}})
	ctx := testCtx(t)
	a := srv.Dial(t, "tcp", alice)
	b := srv.Dial(t, "websocket", bob)
	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "short-lived"}, []string{bob})
	require.NoError(t, err)
	_, err = sendToGroup(t, a, g.ID, "hi")
	require.NoError(t, err)
	nextMessage(t, a) // created
	nextMessage(t, b) // created
	nextMessage(t, b) // hi

	require.NoError(t, srv.DismissGroup(ctx, g.ID, alice))
	for _, c := range []*client.Client{a, b} {
		require.Equal(t, im.GroupNoticeDismissed, notice(t, nextMessage(t, c), g.ID).Type)
	}
	_, err = srv.Group(ctx, g.ID, alice)
	require.ErrorIs(t, err, im.ErrNotFound)
	_, err = sendToGroup(t, b, g.ID, "hello?")
	require.ErrorIs(t, err, im.ErrNotFound)
	bs, err := b.BatchSync(ctx, nil, 100)
	require.NoError(t, err)
	require.Empty(t, bs.ConversationMessages)
	groups, err := srv.UserGroups(ctx, bob)
	require.NoError(t, err)
	require.Empty(t, groups)
}

func TestGroupHistorySyncsForOfflineMembers(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{GroupAddPolicy: anyoneAdds}})
	ctx := testCtx(t)
	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "team"}, []string{bob})
	require.NoError(t, err)
	a := srv.Dial(t, "tcp", alice)
	for i := 1; i <= 150; i++ {
		_, err := sendToGroup(t, a, g.ID, content(i))
		require.NoError(t, err)
	}

	// bob was offline throughout; after a restart (an empty cache) he
	// catches up on all of it, pages and all.
	srv = srv.Restart(t)
	b := srv.Dial(t, "tcp", bob)
	rsp, err := b.BatchSync(ctx, nil, 100)
	require.NoError(t, err)
	require.Len(t, rsp.ConversationMessages, 1)
	cm := rsp.ConversationMessages[0]
	require.Equal(t, im.GroupConversationID(g.ID), cm.ConversationId)
	require.Equal(t, upTo(1, 100), seqs(cm.Messages))
	require.True(t, cm.HasMore)
	for _, m := range cm.Messages {
		require.Equal(t, int32(im.GroupConversation), m.ConversationType)
		require.Equal(t, g.ID, m.GroupId)
	}
	all, err := b.SyncAll(ctx)
	require.NoError(t, err)
	require.Equal(t, upTo(1, 151), seqs(all))

	// And the restarted server routes the group's messages again.
	a = srv.Dial(t, "tcp", alice)
	_, err = sendToGroup(t, b, g.ID, "back")
	require.NoError(t, err)
	m := nextMessage(t, a)
	require.Equal(t, "back", string(m.Content))
	require.Equal(t, int64(152), m.Seq)
}

func TestGroupConcurrentSendersGetGapFreeOrderedDelivery(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{GroupAddPolicy: anyoneAdds}})
	ctx := testCtx(t)
	const members, each = 6, 40
	var ids []string
	for i := range members {
		ids = append(ids, fmt.Sprintf("m%d", i))
	}
	clients := make([]*client.Client, members)
	for i, u := range ids {
		clients[i] = srv.Dial(t, []string{"tcp", "websocket"}[i%2], u)
	}
	g, err := srv.CreateGroup(ctx, ids[0], im.GroupSpec{Name: "busy"}, ids)
	require.NoError(t, err)
	for _, c := range clients {
		nextMessage(t, c) // the creation notice
	}

	var wg sync.WaitGroup
	errs := make(chan error, members*each)
	own := make([][]int64, members) // the seqs each member's sends were acknowledged with
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				rsp, err := c.Send(ctx, client.Outgoing{ConversationID: im.GroupConversationID(g.ID), Type: im.TextMessage, Content: []byte(fmt.Sprintf("%d/%d", i, j))})
				if err != nil {
					errs <- err
					return
				}
				own[i] = append(own[i], rsp.Seq)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// Each member gets every message but its own, in seq order: what it
	// was pushed and what it sent make up every seq after the notice.
	total := int64(members*each + 1)
	for i, c := range clients {
		var got []int64
		for len(got) < (members-1)*each {
			m := nextMessage(t, c)
			require.NotEqual(t, ids[i], m.SenderId)
			got = append(got, m.Seq)
		}
		require.True(t, slices.IsSorted(got), "pushes in seq order")
		seen := slices.Concat(got, own[i])
		slices.Sort(seen)
		require.Equal(t, upTo(2, total), seen, "every seq exactly once")
		all, err := c.SyncAll(ctx)
		require.NoError(t, err)
		require.Empty(t, all, "nothing left to sync")
	}
}

func TestGroupInputIsChecked(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{CheckRecipients: true, Config: im.Config{GroupAddPolicy: anyoneAdds}})
	ctx := testCtx(t)
	_, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "x"}, []string{"nobody"})
	require.ErrorIs(t, err, im.ErrNotFound, "members must exist when Config.Users is set")
	_, err = srv.CreateGroup(ctx, "bad\nid", im.GroupSpec{Name: "x"}, nil)
	require.ErrorIs(t, err, im.ErrInvalidArgument)
	_, err = srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "x", JoinPolicy: 7}, nil)
	require.ErrorIs(t, err, im.ErrInvalidArgument)
	groups, err := srv.UserGroups(ctx, alice)
	require.NoError(t, err)
	require.Empty(t, groups)
}

func TestGroupOwnershipTransfer(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{GroupAddPolicy: anyoneAdds}})
	ctx := testCtx(t)
	a := srv.Dial(t, "tcp", alice)
	b := srv.Dial(t, "websocket", bob)
	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "handover"}, []string{bob, carol})
	require.NoError(t, err)
	messageAt(t, a, 1)
	messageAt(t, b, 1)

	require.NoError(t, srv.SetGroupRole(ctx, g.ID, alice, bob, im.RoleOwner))
	for _, c := range []*client.Client{a, b} {
		m := messageAt(t, c, 2)
		n := notice(t, m, g.ID)
		require.Equal(t, im.GroupNoticeRoleChanged, n.Type)
		require.Equal(t, []string{bob}, n.UserIDs)
		require.Equal(t, im.RoleOwner, n.Role)
		require.Contains(t, string(m.Content), `"role":"owner"`, "roles travel as names")
	}
	got, err := srv.Group(ctx, g.ID, alice)
	require.NoError(t, err)
	require.Equal(t, bob, got.OwnerID)
	members, err := srv.GroupMembers(ctx, g.ID, alice)
	require.NoError(t, err)
	roles := map[string]im.GroupRole{}
	for _, m := range members {
		roles[m.UserID] = m.Role
	}
	require.Equal(t, map[string]im.GroupRole{alice: im.RoleAdmin, bob: im.RoleOwner, carol: im.RoleMember}, roles)

	// The old owner has an admin's rights only, and may leave now; the
	// new one may dismiss.
	require.ErrorIs(t, srv.DismissGroup(ctx, g.ID, alice), im.ErrPermissionDenied)
	require.ErrorIs(t, srv.LeaveGroup(ctx, g.ID, bob), im.ErrPermissionDenied)
	require.NoError(t, srv.LeaveGroup(ctx, g.ID, alice))
	require.NoError(t, srv.DismissGroup(ctx, g.ID, bob))
}

// Changes to one group are decided on its stored state one at a time, so
// concurrent joins cannot take it past its member limit.
func TestGroupConcurrentJoinsStopAtTheLimit(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{GroupAddPolicy: anyoneAdds, MaxGroupMembers: 5}})
	ctx := testCtx(t)
	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "small"}, nil)
	require.NoError(t, err)

	const joiners = 20
	var wg sync.WaitGroup
	errs := make([]error, joiners)
	for i := range joiners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = srv.JoinGroup(ctx, g.ID, fmt.Sprintf("joiner%d", i))
		}()
	}
	wg.Wait()
	joined := 0
	for _, err := range errs {
		if err == nil {
			joined++
			continue
		}
		require.ErrorIs(t, err, im.ErrLimitExceeded)
	}
	require.Equal(t, 4, joined)
	got, err := srv.Group(ctx, g.ID, alice)
	require.NoError(t, err)
	require.Equal(t, 5, got.MemberCount)
	members, err := srv.GroupMembers(ctx, g.ID, alice)
	require.NoError(t, err)
	require.Len(t, members, 5)
}
