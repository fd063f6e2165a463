package im_test

import (
	"context"
	"regexp"
	"slices"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/stretchr/testify/require"
)

// commonPrefix returns how many leading bytes a and b share.
func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// Group ids are 128 random bits: a user who sees message ids in her own
// send acks cannot work out the id of a group created just after.
func TestGroupIDsAreRandom(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{GroupAddPolicy: anyoneAdds}})
	ctx := testCtx(t)
	a := srv.Dial(t, "tcp", alice)
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)

	const n = 64
	ids := make([]string, 0, n)
	prefixes := 0
	for i := range n {
		ack, err := a.Send(ctx, client.Outgoing{ConversationID: im.SingleConversationID(alice, bob), Type: im.TextMessage, Content: []byte("x")})
		require.NoError(t, err)
		g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "g"}, nil)
		require.NoError(t, err)
		require.Regexp(t, hex32, g.ID)
		require.NoError(t, im.ValidateID("group id", g.ID))
		require.NoError(t, im.ValidateConversationID(im.GroupConversationID(g.ID)))
		// A message id taken just before shares its time and node
		// prefix (20 hex characters) with any id of the same
		// generator; a random id shares 8 with chance 16^-8.
		require.Less(t, commonPrefix(ack.ServerMsgId, g.ID), 8, "group %d id %s after message id %s", i, g.ID, ack.ServerMsgId)
		if i > 0 {
			prefixes += commonPrefix(ids[i-1], g.ID)
		}
		ids = append(ids, g.ID)
	}
	require.Len(t, slices.Compact(slices.Sorted(slices.Values(ids))), n, "distinct")
	require.False(t, slices.IsSorted(ids), "not in creation order")
	// Consecutive random ids share about 1/15 of a character on average
	// (63 pairs: about 4 in all); time-ordered ones share 12 or more each.
	require.Less(t, prefixes, 2*(n-1), "ids created back to back look alike: %v", ids)
}

// Only members see an invite-only group; to anyone else it does not exist,
// with the very error an id that names no group gets.
func TestGroupInfoOnlyForMembersUnlessOpen(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{GroupAddPolicy: anyoneAdds}})
	ctx := testCtx(t)
	private, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "private", JoinPolicy: im.JoinInviteOnly}, []string{bob})
	require.NoError(t, err)
	public, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "public", JoinPolicy: im.JoinOpen}, []string{bob})
	require.NoError(t, err)

	for _, u := range []string{alice, bob} {
		g, err := srv.Group(ctx, private.ID, u)
		require.NoError(t, err, u)
		require.Equal(t, "private", g.Name)
	}
	_, missing := srv.Group(ctx, "00000000000000000000000000000000", carol)
	require.ErrorIs(t, missing, im.ErrNotFound)
	for _, u := range []string{carol, "", "bad\nid"} {
		_, err := srv.Group(ctx, private.ID, u)
		require.ErrorIs(t, err, im.ErrNotFound, "%q", u)
		require.Equal(t, missing.Error(), err.Error(), "the same answer as for no group")
		var want, got *im.Error
		require.ErrorAs(t, missing, &want)
		require.ErrorAs(t, err, &got)
		require.Equal(t, want.Code, got.Code)
	}
	// Nor its members.
	_, err = srv.GroupMembers(ctx, private.ID, carol)
	require.ErrorIs(t, err, im.ErrNotFound)

	// An open group is for anyone to find and join.
	g, err := srv.Group(ctx, public.ID, carol)
	require.NoError(t, err)
	require.Equal(t, "public", g.Name)

	// Leaving the private group, bob no longer sees it.
	require.NoError(t, srv.LeaveGroup(ctx, private.ID, bob))
	_, err = srv.Group(ctx, private.ID, bob)
	require.ErrorIs(t, err, im.ErrNotFound)
}

// Every call on a group by id answers a non-member of an invite-only group
// exactly as it answers for an id that names no group: the same error, code
// and message. A prober holding a real id learns nothing from any of them,
// nor does a member who left. Nothing is changed by the attempts.
func TestInviteOnlyGroupHiddenFromEveryCall(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{GroupAddPolicy: anyoneAdds}})
	ctx := testCtx(t)
	private, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "private", JoinPolicy: im.JoinInviteOnly}, []string{bob, carol})
	require.NoError(t, err)
	require.NoError(t, srv.LeaveGroup(ctx, private.ID, carol))
	missing := "0123456789abcdef0123456789abcdef"
	name := "mine now"

	calls := []struct {
		name string
		do   func(id, user string) error
	}{
		{"Group", func(id, u string) error { _, err := srv.Group(ctx, id, u); return err }},
		{"GroupMembers", func(id, u string) error { _, err := srv.GroupMembers(ctx, id, u); return err }},
		{"JoinGroup", func(id, u string) error { _, err := srv.JoinGroup(ctx, id, u); return err }},
		{"LeaveGroup", func(id, u string) error { return srv.LeaveGroup(ctx, id, u) }},
		{"InviteToGroup", func(id, u string) error { return srv.InviteToGroup(ctx, id, u, []string{dave}) }},
		{"KickFromGroup", func(id, u string) error { return srv.KickFromGroup(ctx, id, u, []string{bob}) }},
		{"KickFromGroupOwner", func(id, u string) error { return srv.KickFromGroup(ctx, id, u, []string{alice}) }},
		{"SetGroupRole", func(id, u string) error { return srv.SetGroupRole(ctx, id, u, bob, im.RoleAdmin) }},
		{"SetGroupRoleOwner", func(id, u string) error { return srv.SetGroupRole(ctx, id, u, u, im.RoleOwner) }},
		{"UpdateGroup", func(id, u string) error {
			_, err := srv.UpdateGroup(ctx, id, u, im.GroupUpdate{Name: &name})
			return err
		}},
		{"UpdateGroupNothing", func(id, u string) error { _, err := srv.UpdateGroup(ctx, id, u, im.GroupUpdate{}); return err }},
		{"DismissGroup", func(id, u string) error { return srv.DismissGroup(ctx, id, u) }},
	}
	for _, c := range calls {
		for _, u := range []string{dave, carol} {
			t.Run(c.name+"/"+u, func(t *testing.T) {
				want := c.do(missing, u)
				got := c.do(private.ID, u)
				require.ErrorIs(t, want, im.ErrNotFound)
				require.ErrorIs(t, got, im.ErrNotFound)
				require.Equal(t, want.Error(), got.Error(), "the same answer as for no group")
				var we, ge *im.Error
				require.ErrorAs(t, want, &we)
				require.ErrorAs(t, got, &ge)
				require.Equal(t, we.Code, ge.Code)
			})
		}
	}
	g, err := srv.Group(ctx, private.ID, alice)
	require.NoError(t, err)
	require.Equal(t, "private", g.Name, "nothing changed")
	require.Equal(t, private.Version+1, g.Version, "nothing changed since carol left")
	members, err := srv.GroupMembers(ctx, private.ID, alice)
	require.NoError(t, err)
	require.Len(t, members, 2)

	// An open group is no secret: a non-member is told what she may not do.
	open, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "open", JoinPolicy: im.JoinOpen}, []string{bob})
	require.NoError(t, err)
	_, err = srv.GroupMembers(ctx, open.ID, dave)
	require.ErrorIs(t, err, im.ErrPermissionDenied)
	require.ErrorIs(t, srv.KickFromGroup(ctx, open.ID, dave, []string{bob}), im.ErrPermissionDenied)
}

// Sending into an invite-only group's conversation as a non-member, over
// the socket and through the Go API, answers as for a group that does not
// exist; into an open group's, "not a member".
func TestSendToInviteOnlyGroupAsOutsiderLooksMissing(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{GroupAddPolicy: anyoneAdds}})
	ctx := testCtx(t)
	private, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "private", JoinPolicy: im.JoinInviteOnly}, []string{bob, carol})
	require.NoError(t, err)
	require.NoError(t, srv.LeaveGroup(ctx, private.ID, carol))
	open, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "open"}, []string{bob})
	require.NoError(t, err)
	const missing = "0123456789abcdef0123456789abcdef"

	for _, u := range []string{dave, carol} {
		c := srv.Dial(t, "tcp", u)
		want, err1 := sendToGroup(t, c, missing, "hi")
		got, err2 := sendToGroup(t, c, private.ID, "hi")
		require.Nil(t, want)
		require.Nil(t, got)
		require.Error(t, err1)
		require.Equal(t, err1.Error(), err2.Error(), "%s: the same answer as for no group", u)
		_, err = sendToGroup(t, c, open.ID, "hi")
		require.ErrorIs(t, err, im.ErrPermissionDenied)

		goWant := goSend(ctx, srv, u, missing)
		goGot := goSend(ctx, srv, u, private.ID)
		require.ErrorIs(t, goGot, im.ErrNotFound)
		require.Equal(t, goWant.Error(), goGot.Error())
	}
	// Members still send.
	_, err = sendToGroup(t, srv.Dial(t, "tcp", bob), private.ID, "hi")
	require.NoError(t, err)
}

func goSend(ctx context.Context, srv *imtest.Server, from, gid string) error {
	_, err := srv.SendMessage(ctx, im.SendRequest{SenderID: from, ConversationID: im.GroupConversationID(gid), Type: im.TextMessage, Content: []byte("hi")})
	return err
}
