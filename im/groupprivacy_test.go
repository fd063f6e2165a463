package im_test

import (
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
	require.ErrorIs(t, err, im.ErrPermissionDenied)

	// An open group is for anyone to find and join.
	g, err := srv.Group(ctx, public.ID, carol)
	require.NoError(t, err)
	require.Equal(t, "public", g.Name)

	// Leaving the private group, bob no longer sees it.
	require.NoError(t, srv.LeaveGroup(ctx, private.ID, bob))
	_, err = srv.Group(ctx, private.ID, bob)
	require.ErrorIs(t, err, im.ErrNotFound)
}
