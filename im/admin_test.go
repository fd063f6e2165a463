package im_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
)

// AllSessions lists every user's sessions in pages, in id order, and
// leaves out a kicked one at once.
func TestAllSessions(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	require.Empty(t, srv.AllSessions("", 10))
	srv.DialWith(t, client.Options{Transport: client.TransportTCP, UserID: alice, Platform: "iOS"})
	srv.DialWith(t, client.Options{Transport: client.TransportWebSocket, UserID: alice, Platform: "Android"})
	b := srv.DialWith(t, client.Options{Transport: client.TransportTCP, UserID: bob, Platform: "web"})

	all := srv.AllSessions("", 10)
	require.Len(t, all, 3)
	users := map[string]string{}
	for i, s := range all {
		if i > 0 {
			require.Less(t, all[i-1].ID, s.ID)
		}
		users[s.Platform] = s.UserID + "/" + s.Transport
		require.NotEmpty(t, s.RemoteAddr)
		require.WithinDuration(t, time.Now(), s.ConnectedAt, time.Minute)
	}
	require.Equal(t, map[string]string{"iOS": alice + "/tcp", "Android": alice + "/websocket", "web": bob + "/tcp"}, users)

	p1 := srv.AllSessions("", 2)
	p2 := srv.AllSessions(p1[1].ID, 2)
	require.Len(t, p2, 1)
	require.Equal(t, all, append(p1, p2...))
	require.Empty(t, srv.AllSessions(all[2].ID, 2))
	require.Empty(t, srv.AllSessions("", 0), "a limit below 1 lists none")
	require.Empty(t, srv.AllSessions("", -1))

	var bobs string
	for _, s := range all {
		if s.UserID == bob {
			bobs = s.ID
		}
	}
	require.True(t, srv.KickSession(bobs, "bye"))
	for _, s := range srv.AllSessions("", 10) {
		require.NotEqual(t, bobs, s.ID, "a kicked session is as good as gone")
	}
	require.False(t, srv.KickSession(bobs, "again"), "already on its way out")
	<-b.Done()
}

// InspectGroup shows an invite-only group and its members to the operator,
// who is no member.
func TestInspectGroup(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{GroupAddPolicy: func(_ context.Context, _, _ string) error { return nil }}})
	ctx := testCtx(t)
	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "private", JoinPolicy: im.JoinInviteOnly}, []string{bob})
	require.NoError(t, err)
	_, err = srv.Group(ctx, g.ID, carol)
	require.ErrorIs(t, err, im.ErrNotFound, "hidden from outsiders")

	got, members, err := srv.InspectGroup(ctx, g.ID)
	require.NoError(t, err)
	require.Equal(t, "private", got.Name)
	require.Len(t, members, 2)

	for _, id := range []string{"", "no-such-group", "bad id"} {
		_, members, err := srv.InspectGroup(ctx, id)
		require.ErrorIs(t, err, im.ErrNotFound, id)
		require.Nil(t, members)
	}
}
