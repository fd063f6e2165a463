package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/wire"
	"github.com/imserver/imserver/store/memstore"
	"github.com/imserver/imserver/transport/httpapi"
)

// serveAPI starts the HTTP API as cmd/imserver serves it, over 127.0.0.1:
// built-in accounts on a memory store that keeps profiles, friends, join
// requests and revoked tokens, a Guard that refuses revoked tokens, and the
// accounts as the server's user directory. Anyone may add anyone to a
// group (im.Config.GroupAddPolicy), as the tests are about the client.
func serveAPI(tb testing.TB) *httptest.Server {
	tb.Helper()
	hs, stop, err := startAPIServer()
	require.NoError(tb, err)
	tb.Cleanup(stop)
	return hs
}

// startAPIServer is serveAPI for examples, which have no testing.TB.
func startAPIServer() (*httptest.Server, func(), error) {
	mem := memstore.New()
	tokens, err := auth.NewJWT(auth.JWTConfig{Secret: []byte("api-client-test-secret-9fQ2mX7kLp"), Lifetime: time.Hour})
	if err != nil {
		return nil, nil, err
	}
	accounts, err := auth.NewAccounts(auth.AccountsConfig{Store: mem, Tokens: tokens, BcryptCost: auth.MinBcryptCost})
	if err != nil {
		return nil, nil, err
	}
	guard, err := auth.NewGuard(auth.GuardConfig{Tokens: tokens, Versions: mem, Accounts: mem})
	if err != nil {
		return nil, nil, err
	}
	srv, err := im.NewServer(im.Config{
		Store:          mem,
		Authenticator:  guard,
		Users:          accounts,
		GroupAddPolicy: func(context.Context, string, string) error { return nil },
	})
	if err != nil {
		return nil, nil, err
	}
	hs := httptest.NewServer(httpapi.NewHandler(httpapi.Options{Accounts: accounts, Server: srv}))
	stop := func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	return hs, stop, nil
}

func newAPI(t *testing.T, hs *httptest.Server, token string) *client.API {
	t.Helper()
	a, err := client.NewAPI(hs.URL, client.APIOptions{HTTPClient: hs.Client(), Token: token})
	require.NoError(t, err)
	return a
}

// requireCode checks that err is an *APIError with code and matches
// sentinel.
func requireCode(t *testing.T, err error, code int, sentinel error) {
	t.Helper()
	require.Error(t, err)
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, code, ae.Code, "message %q", ae.Message)
	if sentinel != nil {
		require.ErrorIs(t, err, sentinel)
	}
}

// signup registers username and logs in as it.
func signup(t *testing.T, hs *httptest.Server, username, nickname string) (*client.API, string) {
	t.Helper()
	ctx := context.Background()
	a := newAPI(t, hs, "")
	acc, err := a.Register(ctx, username, "password-"+username, nickname)
	require.NoError(t, err)
	require.Equal(t, username, acc.Username)
	require.Equal(t, nickname, acc.Nickname)
	s, err := a.Login(ctx, username, "password-"+username, "go")
	require.NoError(t, err)
	require.Equal(t, acc.UserID, s.UserID)
	require.NotEmpty(t, s.Token)
	require.Equal(t, s.Token, a.Token())
	require.True(t, s.ExpiresAt.After(time.Now()), "expires %v", s.ExpiresAt)
	return a, acc.UserID
}

func TestAPIAccounts(t *testing.T) {
	ctx := context.Background()
	hs := serveAPI(t)
	alice, aliceID := signup(t, hs, "alice", "Alice")

	anon := newAPI(t, hs, "")
	_, err := anon.Register(ctx, "alice", "another-password", "Alice 2")
	requireCode(t, err, 1001, wire.ErrConflict)
	_, err = anon.Register(ctx, "bob", "short", "Bob")
	requireCode(t, err, 2, wire.ErrInvalidArgument)
	_, err = anon.Login(ctx, "alice", "wrong-password", "go")
	requireCode(t, err, 100, wire.ErrUnauthenticated)
	require.Empty(t, anon.Token(), "a failed login sets no token")
	_, err = anon.Friends(ctx)
	requireCode(t, err, 100, wire.ErrUnauthenticated)

	// A password change answers a fresh token, which the API keeps; the
	// old one is refused from then on.
	old := alice.Token()
	_, err = alice.ChangePassword(ctx, "wrong-password", "new-password-alice")
	requireCode(t, err, 102, wire.ErrPermissionDenied)
	_, err = alice.ChangePassword(ctx, "password-alice", "short")
	requireCode(t, err, 2, wire.ErrInvalidArgument)
	s, err := alice.ChangePassword(ctx, "password-alice", "new-password-alice")
	require.NoError(t, err)
	require.Equal(t, aliceID, s.UserID)
	require.NotEqual(t, old, s.Token)
	require.Equal(t, s.Token, alice.Token())
	_, err = newAPI(t, hs, old).Friends(ctx)
	requireCode(t, err, 100, wire.ErrUnauthenticated)
	_, err = alice.Friends(ctx)
	require.NoError(t, err)

	// Logout revokes the token: the API forgets it, and whoever still
	// holds it is refused with HTTP 401.
	phone := newAPI(t, hs, "")
	_, err = phone.Login(ctx, "alice", "new-password-alice", "go")
	require.NoError(t, err)
	loggedOut := phone.Token()
	require.NoError(t, phone.Logout(ctx))
	require.Empty(t, phone.Token())
	_, err = newAPI(t, hs, loggedOut).Friends(ctx)
	requireCode(t, err, 100, wire.ErrUnauthenticated)
	require.ErrorIs(t, err, im.ErrUnauthenticated, "the server's own sentinel, which im re-exports")
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusUnauthorized, ae.HTTPStatus)
	_, err = alice.Friends(ctx)
	require.NoError(t, err, "the other token carries on")

	// Deleting the account.
	err = alice.DeleteAccount(ctx, "password-alice")
	requireCode(t, err, 102, wire.ErrPermissionDenied)
	require.NoError(t, alice.DeleteAccount(ctx, "new-password-alice"))
	require.Empty(t, alice.Token())
	_, err = anon.Login(ctx, "alice", "new-password-alice", "go")
	requireCode(t, err, 100, wire.ErrUnauthenticated)
}

func TestAPIUsers(t *testing.T) {
	ctx := context.Background()
	hs := serveAPI(t)
	alice, aliceID := signup(t, hs, "alice", "Alice")
	bob, bobID := signup(t, hs, "bob", "Bob")

	u, err := alice.UpdateProfile(ctx, client.ProfileUpdate{Nickname: new("Alice Liddell"), Signature: new("down the hole"), Gender: new(int32(2)), Birth: new(int64(19900101))})
	require.NoError(t, err)
	require.Equal(t, aliceID, u.UserID)
	require.Equal(t, "alice", u.Username)
	require.Equal(t, "Alice Liddell", u.Nickname)
	require.Equal(t, "down the hole", u.Signature)
	require.Equal(t, int32(2), u.Gender)
	require.Equal(t, int64(19900101), u.Birth)
	require.False(t, u.CreatedAt.IsZero())
	require.False(t, u.UpdatedAt.Before(u.CreatedAt))

	// Bad input changes nothing.
	_, err = alice.UpdateProfile(ctx, client.ProfileUpdate{Nickname: new("Someone else"), Gender: new(int32(7))})
	requireCode(t, err, 2, wire.ErrInvalidArgument)
	_, err = alice.UpdateProfile(ctx, client.ProfileUpdate{Nickname: new("")})
	requireCode(t, err, 2, wire.ErrInvalidArgument)
	got, err := bob.User(ctx, aliceID)
	require.NoError(t, err)
	require.Equal(t, u, got)

	_, err = bob.User(ctx, "nobody")
	requireCode(t, err, 103, wire.ErrNotFound)
	_, err = bob.User(ctx, "")
	require.ErrorIs(t, err, wire.ErrInvalidArgument)

	list, err := bob.Users(ctx, []string{bobID, "nobody", aliceID, bobID})
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, bobID, list[0].UserID)
	require.Equal(t, aliceID, list[1].UserID)
	list, err = bob.Users(ctx, nil)
	require.NoError(t, err)
	require.NotNil(t, list)
	require.Empty(t, list)

	found, err := bob.SearchUsers(ctx, "alice l")
	require.NoError(t, err)
	require.Len(t, found, 1)
	require.Equal(t, aliceID, found[0].UserID)
	found, err = bob.SearchUsers(ctx, "bob")
	require.NoError(t, err)
	require.Len(t, found, 1)
	require.Equal(t, bobID, found[0].UserID)
	_, err = bob.SearchUsers(ctx, "a")
	requireCode(t, err, 2, wire.ErrInvalidArgument)
}

func TestAPIFriends(t *testing.T) {
	ctx := context.Background()
	hs := serveAPI(t)
	alice, aliceID := signup(t, hs, "alice", "Alice")
	bob, bobID := signup(t, hs, "bob", "Bob")

	require.NoError(t, alice.AddFriend(ctx, bobID, "hi, it's Alice"))
	in, out, err := bob.FriendRequests(ctx)
	require.NoError(t, err)
	require.Empty(t, out)
	require.Len(t, in, 1)
	require.Equal(t, aliceID, in[0].From)
	require.Equal(t, bobID, in[0].To)
	require.Equal(t, "hi, it's Alice", in[0].Message)
	require.WithinDuration(t, time.Now(), in[0].CreatedAt, time.Minute)
	_, out, err = alice.FriendRequests(ctx)
	require.NoError(t, err)
	require.Equal(t, in, out)

	f, err := bob.AcceptFriend(ctx, aliceID)
	require.NoError(t, err)
	require.Equal(t, aliceID, f.UserID)
	require.Equal(t, bobID, f.OwnerID)
	_, err = bob.AcceptFriend(ctx, aliceID)
	requireCode(t, err, 202, wire.ErrNotFound)

	friends, err := alice.Friends(ctx)
	require.NoError(t, err)
	require.Len(t, friends, 1)
	require.Equal(t, bobID, friends[0].UserID)
	require.Equal(t, aliceID, friends[0].OwnerID)
	ok, err := alice.IsFriend(ctx, bobID)
	require.NoError(t, err)
	require.True(t, ok)

	f, err = alice.SetFriendRemark(ctx, bobID, "Bobby")
	require.NoError(t, err)
	require.Equal(t, "Bobby", f.Remark)
	_, err = alice.SetFriendRemark(ctx, bobID, strings.Repeat("x", 65))
	requireCode(t, err, 2, wire.ErrInvalidArgument)
	friends, err = alice.Friends(ctx)
	require.NoError(t, err)
	require.Equal(t, "Bobby", friends[0].Remark, "a refused remark changes nothing")

	require.NoError(t, bob.DeleteFriend(ctx, aliceID))
	ok, err = alice.IsFriend(ctx, bobID)
	require.NoError(t, err)
	require.False(t, ok)
	friends, err = alice.Friends(ctx)
	require.NoError(t, err)
	require.NotNil(t, friends)
	require.Empty(t, friends)
	err = bob.DeleteFriend(ctx, aliceID)
	requireCode(t, err, 202, wire.ErrNotFound)

	// Requests and their refusals.
	requireCode(t, alice.AddFriend(ctx, aliceID, ""), 2, wire.ErrInvalidArgument)
	requireCode(t, alice.AddFriend(ctx, "", ""), 2, wire.ErrInvalidArgument)
	requireCode(t, alice.AddFriend(ctx, "nobody", ""), 103, wire.ErrNotFound)
	requireCode(t, alice.AddFriend(ctx, bobID, strings.Repeat("x", 257)), 2, wire.ErrInvalidArgument)
	require.NoError(t, alice.AddFriend(ctx, bobID, ""))
	require.NoError(t, alice.CancelFriendRequest(ctx, bobID))
	requireCode(t, alice.CancelFriendRequest(ctx, bobID), 202, wire.ErrNotFound)
	require.NoError(t, alice.AddFriend(ctx, bobID, ""))
	require.NoError(t, bob.RejectFriend(ctx, aliceID))
	in, _, err = bob.FriendRequests(ctx)
	require.NoError(t, err)
	require.Empty(t, in)

	// Blocks refuse requests both ways.
	require.NoError(t, bob.Block(ctx, aliceID))
	blocks, err := bob.Blocks(ctx)
	require.NoError(t, err)
	require.Len(t, blocks, 1)
	require.Equal(t, aliceID, blocks[0].UserID)
	require.False(t, blocks[0].CreatedAt.IsZero())
	requireCode(t, alice.AddFriend(ctx, bobID, "please"), 102, wire.ErrPermissionDenied)
	requireCode(t, bob.AddFriend(ctx, aliceID, ""), 102, wire.ErrPermissionDenied)
	_, out, err = alice.FriendRequests(ctx)
	require.NoError(t, err)
	require.Empty(t, out, "a refused request is not stored")
	require.NoError(t, bob.Unblock(ctx, aliceID))
	blocks, err = bob.Blocks(ctx)
	require.NoError(t, err)
	require.Empty(t, blocks)
	require.NoError(t, alice.AddFriend(ctx, bobID, "again"))
}

func TestAPIGroups(t *testing.T) {
	ctx := context.Background()
	hs := serveAPI(t)
	alice, aliceID := signup(t, hs, "alice", "Alice")
	bob, bobID := signup(t, hs, "bob", "Bob")
	carol, carolID := signup(t, hs, "carol", "Carol")

	// A group that approves who joins.
	g, err := alice.CreateGroup(ctx, client.GroupSpec{Name: "book club", Introduction: "we read", JoinPolicy: new(client.JoinApproval)})
	require.NoError(t, err)
	require.Len(t, g.ID, 32)
	require.Equal(t, "book club", g.Name)
	require.Equal(t, aliceID, g.OwnerID)
	require.Equal(t, 1, g.MemberCount)
	require.Equal(t, client.JoinApproval, g.JoinPolicy)
	require.WithinDuration(t, time.Now(), g.CreatedAt, time.Minute)

	seen, err := bob.Group(ctx, g.ID)
	require.NoError(t, err, "anyone may look up a group that approves joins")
	require.Equal(t, g.ID, seen.ID)
	joined, pending, err := bob.JoinGroup(ctx, g.ID, "let me in")
	require.NoError(t, err)
	require.True(t, pending)
	require.Equal(t, g.ID, joined.ID)
	_, err = bob.GroupMembers(ctx, g.ID)
	requireCode(t, err, 102, wire.ErrPermissionDenied)

	reqs, err := alice.JoinRequests(ctx, g.ID)
	require.NoError(t, err)
	require.Len(t, reqs, 1)
	require.Equal(t, client.JoinRequest{GroupID: g.ID, UserID: bobID, Message: "let me in", CreatedAt: reqs[0].CreatedAt}, reqs[0])
	_, err = bob.JoinRequests(ctx, g.ID)
	requireCode(t, err, 102, wire.ErrPermissionDenied)
	require.NoError(t, alice.ApproveJoin(ctx, g.ID, bobID))
	reqs, err = alice.JoinRequests(ctx, g.ID)
	require.NoError(t, err)
	require.Empty(t, reqs)

	ms, err := bob.GroupMembers(ctx, g.ID)
	require.NoError(t, err)
	require.Len(t, ms, 2)
	require.Equal(t, aliceID, ms[0].UserID)
	require.Equal(t, client.RoleOwner, ms[0].Role)
	require.Equal(t, bobID, ms[1].UserID)
	require.Equal(t, client.RoleMember, ms[1].Role)
	require.True(t, ms[1].MutedUntil.IsZero())

	// Mutes.
	until := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	require.NoError(t, alice.MuteMember(ctx, g.ID, bobID, until))
	ms, err = alice.GroupMembers(ctx, g.ID)
	require.NoError(t, err)
	require.True(t, until.Equal(ms[1].MutedUntil), "muted until %v, want %v", ms[1].MutedUntil, until)
	requireCode(t, bob.MuteMember(ctx, g.ID, aliceID, until), 102, wire.ErrPermissionDenied)
	requireCode(t, alice.MuteMember(ctx, g.ID, bobID, time.UnixMilli(-1)), 2, wire.ErrInvalidArgument)
	require.NoError(t, alice.MuteMember(ctx, g.ID, bobID, time.Time{}))
	ms, err = alice.GroupMembers(ctx, g.ID)
	require.NoError(t, err)
	require.True(t, ms[1].MutedUntil.IsZero())
	require.NoError(t, alice.MuteGroup(ctx, g.ID, true))
	g, err = bob.Group(ctx, g.ID)
	require.NoError(t, err)
	require.True(t, g.MuteAll)
	requireCode(t, bob.MuteGroup(ctx, g.ID, false), 102, wire.ErrPermissionDenied)

	// Roles and updates.
	require.NoError(t, alice.SetAdmin(ctx, g.ID, bobID, true))
	ms, err = alice.GroupMembers(ctx, g.ID)
	require.NoError(t, err)
	require.Equal(t, client.RoleAdmin, ms[1].Role)
	g, err = bob.UpdateGroup(ctx, g.ID, client.GroupUpdate{Notification: new("chapter 3 by Friday"), MuteAll: new(false)})
	require.NoError(t, err)
	require.Equal(t, "chapter 3 by Friday", g.Notification)
	require.Equal(t, "we read", g.Introduction, "left out, it stays")
	require.False(t, g.MuteAll)
	require.NoError(t, alice.SetRole(ctx, g.ID, bobID, client.RoleMember))
	requireCode(t, alice.SetRole(ctx, g.ID, bobID, "king"), 2, wire.ErrInvalidArgument)
	_, err = bob.UpdateGroup(ctx, g.ID, client.GroupUpdate{Name: new("mine")})
	requireCode(t, err, 102, wire.ErrPermissionDenied)
	_, err = alice.UpdateGroup(ctx, g.ID, client.GroupUpdate{Name: new("")})
	requireCode(t, err, 2, wire.ErrInvalidArgument)
	_, err = alice.UpdateGroup(ctx, "", client.GroupUpdate{Name: new("x")})
	require.ErrorIs(t, err, wire.ErrInvalidArgument)

	// Invite, kick, paging.
	require.NoError(t, alice.Invite(ctx, g.ID, []string{carolID}))
	requireCode(t, alice.Invite(ctx, g.ID, nil), 2, wire.ErrInvalidArgument)
	page, next, err := alice.GroupMembersPage(ctx, g.ID, "", 2)
	require.NoError(t, err)
	require.Len(t, page, 2)
	require.NotEmpty(t, next)
	rest, next, err := alice.GroupMembersPage(ctx, g.ID, next, 2)
	require.NoError(t, err)
	require.Len(t, rest, 1)
	require.Empty(t, next)
	ids := []string{page[0].UserID, page[1].UserID, rest[0].UserID}
	require.ElementsMatch(t, []string{aliceID, bobID, carolID}, ids)
	require.NoError(t, alice.Kick(ctx, g.ID, []string{carolID}))
	ms, err = alice.GroupMembers(ctx, g.ID)
	require.NoError(t, err)
	require.Len(t, ms, 2)

	// A rejected request, an invite-only group, an open one.
	invOnly, err := alice.CreateGroup(ctx, client.GroupSpec{Name: "private", Members: []string{bobID}})
	require.NoError(t, err)
	require.Equal(t, client.JoinInviteOnly, invOnly.JoinPolicy)
	require.Equal(t, 2, invOnly.MemberCount)
	_, _, err = carol.JoinGroup(ctx, invOnly.ID, "")
	requireCode(t, err, 202, wire.ErrNotFound)
	_, err = carol.Group(ctx, invOnly.ID)
	requireCode(t, err, 202, wire.ErrNotFound)
	_, pending, err = carol.JoinGroup(ctx, g.ID, "")
	require.NoError(t, err)
	require.True(t, pending)
	require.NoError(t, alice.RejectJoin(ctx, g.ID, carolID))
	requireCode(t, alice.RejectJoin(ctx, g.ID, carolID), 202, wire.ErrNotFound)
	open, err := alice.CreateGroup(ctx, client.GroupSpec{Name: "open", JoinPolicy: new(client.JoinOpen), History: new(client.HistoryFull)})
	require.NoError(t, err)
	require.Equal(t, client.HistoryFull, open.History)
	joined, pending, err = carol.JoinGroup(ctx, open.ID, "")
	require.NoError(t, err)
	require.False(t, pending)
	require.Equal(t, 2, joined.MemberCount)

	all, err := alice.JoinedGroups(ctx)
	require.NoError(t, err)
	require.Len(t, all, 3)
	require.Equal(t, []string{g.ID, invOnly.ID, open.ID}, []string{all[0].ID, all[1].ID, all[2].ID}, "oldest first")
	var paged []client.Group
	for cursor := ""; ; {
		gs, next, err := alice.JoinedGroupsPage(ctx, cursor, 1)
		require.NoError(t, err)
		require.LessOrEqual(t, len(gs), 1)
		paged = append(paged, gs...)
		if next == "" {
			break
		}
		cursor = next
	}
	require.ElementsMatch(t, all, paged)
	_, _, err = alice.JoinedGroupsPage(ctx, "", 201)
	requireCode(t, err, 2, wire.ErrInvalidArgument)

	requireCode(t, alice.LeaveGroup(ctx, open.ID), 102, wire.ErrPermissionDenied)
	require.NoError(t, carol.LeaveGroup(ctx, open.ID))
	requireCode(t, bob.DismissGroup(ctx, invOnly.ID), 102, wire.ErrPermissionDenied)
	require.NoError(t, alice.DismissGroup(ctx, invOnly.ID))
	_, err = bob.Group(ctx, invOnly.ID)
	requireCode(t, err, 202, wire.ErrNotFound)
	_, err = bob.Group(ctx, "")
	require.ErrorIs(t, err, wire.ErrInvalidArgument)
	_, err = alice.CreateGroup(ctx, client.GroupSpec{})
	requireCode(t, err, 2, wire.ErrInvalidArgument)
}

func TestAPIConversations(t *testing.T) {
	ctx := context.Background()
	hs := serveAPI(t)
	alice, _ := signup(t, hs, "alice", "Alice")
	g, err := alice.CreateGroup(ctx, client.GroupSpec{Name: "notes"})
	require.NoError(t, err)

	list, err := alice.Conversations(ctx, client.ConversationQuery{})
	require.NoError(t, err)
	require.Len(t, list.Conversations, 1)
	c := list.Conversations[0]
	require.Equal(t, "group_"+g.ID, c.ConversationId)
	require.NotNil(t, c.LastMessage, "the group's creation notice")
	require.Equal(t, g.ID, c.LastMessage.GroupId)
	require.Contains(t, string(c.LastMessage.Content), "group_created")
	require.NotZero(t, list.Version)

	st, err := alice.UpdateConversation(ctx, c.ConversationId, client.ConversationChange{Pinned: new(true)})
	require.NoError(t, err)
	require.True(t, st.Pinned)
	require.Equal(t, c.ConversationId, st.ConversationId)
	_, err = alice.UpdateConversation(ctx, c.ConversationId, client.ConversationChange{ClearAll: true, ClearUpTo: 1, Muted: new(true)})
	requireCode(t, err, 2, wire.ErrInvalidArgument)
	list, err = alice.Conversations(ctx, client.ConversationQuery{})
	require.NoError(t, err)
	require.True(t, list.Conversations[0].Pinned)
	require.False(t, list.Conversations[0].Muted, "a refused change changes nothing")
}

func TestAPILimits(t *testing.T) {
	ctx := context.Background()
	hs := serveAPI(t)
	alice, aliceID := signup(t, hs, "alice", "Alice")

	// A body over the limit is not sent.
	small, err := client.NewAPI(hs.URL, client.APIOptions{HTTPClient: hs.Client(), Token: alice.Token(), MaxRequestBytes: 100})
	require.NoError(t, err)
	_, err = small.UpdateProfile(ctx, client.ProfileUpdate{Signature: new(strings.Repeat("x", 200))})
	require.ErrorIs(t, err, wire.ErrInvalidArgument)
	var ae *client.APIError
	require.False(t, errors.As(err, &ae), "refused before sending: %v", err)
	u, err := alice.User(ctx, aliceID)
	require.NoError(t, err)
	require.Empty(t, u.Signature)

	// An answer over the limit fails the call.
	tiny, err := client.NewAPI(hs.URL, client.APIOptions{HTTPClient: hs.Client(), Token: alice.Token(), MaxResponseBytes: 64})
	require.NoError(t, err)
	_, err = tiny.User(ctx, aliceID)
	require.ErrorContains(t, err, "over 64 bytes")

	// The context bounds the call.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = alice.Friends(cctx)
	require.ErrorIs(t, err, context.Canceled)

	// Too many searches.
	var limited error
	for range 50 {
		if _, err := alice.SearchUsers(ctx, "alice"); err != nil {
			limited = err
			break
		}
	}
	requireCode(t, limited, 201, wire.ErrRateLimited)

	// Too many wrong passwords: the server says how long to wait.
	anon := newAPI(t, hs, "")
	for range 50 {
		if _, err = anon.Login(ctx, "alice", "wrong-password", "go"); errors.Is(err, wire.ErrRateLimited) {
			break
		}
		requireCode(t, err, 100, wire.ErrUnauthenticated)
	}
	requireCode(t, err, 201, wire.ErrRateLimited)
	require.ErrorAs(t, err, &ae)
	require.Positive(t, ae.RetryAfter)
}

func TestNewAPIRefusesBadURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://example.com", "http://", "http://example.com/?x=1", "://"} {
		_, err := client.NewAPI(u, client.APIOptions{})
		require.ErrorIs(t, err, wire.ErrInvalidArgument, "%q", u)
	}
	a, err := client.NewAPI("https://example.com/im/", client.APIOptions{Token: "t"})
	require.NoError(t, err)
	require.Equal(t, "t", a.Token())
}

// A base URL with a path prefix reaches the API mounted under it, and an
// answer that is not the API's envelope (a proxy's error page) is an error
// that names the HTTP status, not an *APIError.
func TestAPIMountedAndForeignAnswers(t *testing.T) {
	ctx := context.Background()
	inner := serveAPI(t)
	mux := http.NewServeMux()
	mux.Handle("/im/", http.StripPrefix("/im", inner.Config.Handler))
	mux.HandleFunc("/broken/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>bad gateway</html>"))
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)

	a, err := client.NewAPI(hs.URL+"/im/", client.APIOptions{HTTPClient: hs.Client()})
	require.NoError(t, err)
	_, err = a.Register(ctx, "alice", "password-alice", "Alice")
	require.NoError(t, err)

	b, err := client.NewAPI(hs.URL+"/broken", client.APIOptions{HTTPClient: hs.Client()})
	require.NoError(t, err)
	_, err = b.Login(ctx, "alice", "password-alice", "go")
	require.ErrorContains(t, err, "HTTP 502")
	var ae *client.APIError
	require.False(t, errors.As(err, &ae))
}

func TestAPIErrorIs(t *testing.T) {
	for _, c := range []struct {
		code    int
		message string
		want    error
	}{
		{2, "invalid parameter", wire.ErrInvalidArgument},
		{100, "token revoked", wire.ErrUnauthenticated},
		{101, "token expired", wire.ErrTokenExpired},
		{101, "token expired", wire.ErrUnauthenticated},
		{102, "permission denied", wire.ErrPermissionDenied},
		{103, "user not found", wire.ErrNotFound},
		{201, "too many attempts", wire.ErrRateLimited},
		{202, "not found", wire.ErrNotFound},
		{1001, "username is taken", wire.ErrConflict},
		{1, "not supported by this server", wire.ErrUnsupported},
	} {
		err := error(&client.APIError{HTTPStatus: 200, Code: c.code, Message: c.message})
		require.ErrorIs(t, err, c.want, "code %d", c.code)
	}
	for _, code := range []int{1, 404, 405, 415, 1201} {
		err := &client.APIError{Code: code, Message: "x"}
		require.Nil(t, err.Unwrap(), "code %d", code)
	}
	err := &client.APIError{HTTPStatus: 401, Code: 100, Message: "logged out"}
	require.Equal(t, "client: API error 100 (HTTP 401): logged out", err.Error())
}
