package im_test

import (
	"context"
	"errors"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imtest"
	"github.com/stretchr/testify/require"
)

// A host's GroupAddPolicy is asked about each user to be added, and only
// those; its refusal is PERMISSION_DENIED naming the user unless it chose a
// code, and a panic in it fails the call, adding nobody.
func TestGroupAddPolicyHook(t *testing.T) {
	var asked [][2]string
	srv := imtest.NewServer(t, imtest.Options{Memory: true, Config: im.Config{
		GroupAddPolicy: func(_ context.Context, actor, user string) error {
			asked = append(asked, [2]string{actor, user})
			switch user {
			case "blocked":
				return errors.New("blocked by the host")
			case "unknown":
				return &im.Error{Code: im.CodeUserNotFound, Msg: "no such user", Err: im.ErrNotFound}
			case "boom":
				panic("policy bug")
			}
			return nil
		},
	}})
	ctx := testCtx(t)

	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "g"}, []string{alice, bob, bob})
	require.NoError(t, err)
	require.Equal(t, [][2]string{{alice, bob}}, asked, "not the owner, and each user once")

	err = srv.InviteToGroup(ctx, g.ID, alice, []string{"carol", "blocked"})
	require.ErrorIs(t, err, im.ErrPermissionDenied)
	require.ErrorContains(t, err, "you may not add blocked to a group")
	err = srv.InviteToGroup(ctx, g.ID, alice, []string{"unknown"})
	var e *im.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, im.CodeUserNotFound, e.Code)
	_, err = srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "h"}, []string{"carol", "boom"})
	require.ErrorAs(t, err, &e)
	require.Equal(t, im.CodeUnknown, e.Code)

	members, err := srv.GroupMembers(ctx, g.ID, alice)
	require.NoError(t, err)
	require.Len(t, members, 2, "alice and bob only")
	groups, err := srv.UserGroups(ctx, "carol")
	require.NoError(t, err)
	require.Empty(t, groups)
}
