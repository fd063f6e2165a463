package im_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/store/memstore"
)

// onlyStore hides every optional part of a Store.
type onlyStore struct{ im.Store }

func newManageServer(t *testing.T, store im.Store) *im.Server {
	t.Helper()
	tokens, err := auth.NewJWT(auth.JWTConfig{Secret: []byte("manage-test-secret-0123456789abcd"), Lifetime: time.Hour})
	require.NoError(t, err)
	srv, err := im.NewServer(im.Config{Store: store, Authenticator: tokens, GroupAddPolicy: func(context.Context, string, string) error { return nil }})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	})
	return srv
}

// A store without GroupJoinRequestStore cannot have approval groups.
func TestJoinApprovalNeedsJoinRequestStore(t *testing.T) {
	srv := newManageServer(t, onlyStore{memstore.New()})
	ctx := t.Context()
	_, err := srv.CreateGroup(ctx, "alice", im.GroupSpec{Name: "g", JoinPolicy: im.JoinApproval}, nil)
	require.ErrorIs(t, err, im.ErrInvalidArgument)
	require.ErrorIs(t, err, im.ErrUnsupported)
	g, err := srv.CreateGroup(ctx, "alice", im.GroupSpec{Name: "g"}, nil)
	require.NoError(t, err)
	p := im.JoinApproval
	_, err = srv.UpdateGroup(ctx, g.ID, "alice", im.GroupUpdate{JoinPolicy: &p})
	require.ErrorIs(t, err, im.ErrUnsupported)
	reqs, err := srv.JoinRequests(ctx, g.ID, "alice")
	require.NoError(t, err)
	require.Empty(t, reqs)
}

// Two servers share a store: a mute set through one holds for sends
// through the other, whose cache knew nothing of it, and an unmute
// through the first frees the member on the second at once.
func TestMuteHoldsAcrossServers(t *testing.T) {
	store := memstore.New()
	a, b := newManageServer(t, store), newManageServer(t, store)
	ctx := t.Context()
	g, err := a.CreateGroup(ctx, "alice", im.GroupSpec{Name: "g"}, []string{"bob"})
	require.NoError(t, err)
	send := func(srv *im.Server) error {
		_, err := srv.SendMessage(ctx, im.SendRequest{SenderID: "bob", ConversationID: im.GroupConversationID(g.ID), Type: im.TextMessage, Content: []byte("hi")})
		return err
	}
	require.NoError(t, send(b)) // b caches the members, unmuted

	require.NoError(t, a.MuteMember(ctx, g.ID, "alice", "bob", time.Now().Add(time.Hour)))
	err = send(b)
	require.ErrorIs(t, err, im.ErrMuted)
	var e *im.Error
	require.True(t, errors.As(err, &e))
	require.Equal(t, im.CodePermissionDenied, e.Code)
	require.Equal(t, "you are muted in this group", e.Msg)
	require.ErrorIs(t, send(a), im.ErrMuted)

	require.NoError(t, a.MuteMember(ctx, g.ID, "alice", "bob", time.Time{}))
	require.NoError(t, send(b), "b's cache said muted; the stored group says otherwise")

	require.NoError(t, a.MuteGroup(ctx, g.ID, "alice", true))
	require.ErrorIs(t, send(b), im.ErrMuted)
	_, err = b.SendMessage(ctx, im.SendRequest{SenderID: "alice", ConversationID: im.GroupConversationID(g.ID), Type: im.TextMessage, Content: []byte("owner")})
	require.NoError(t, err)
	require.NoError(t, a.MuteGroup(ctx, g.ID, "alice", false))
	require.NoError(t, send(b))
}
