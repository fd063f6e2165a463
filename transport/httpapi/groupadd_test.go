package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
)

// groupAddEnv is a test server whose users call the group routes over HTTP
// and talk over TCP.
type groupAddEnv struct {
	srv *imtest.Server
	hc  *http.Client
}

func (e *groupAddEnv) call(t *testing.T, user, path string, body any) response {
	t.Helper()
	return callAPI(t, e.hc, e.srv.HTTPURL, "Bearer "+e.srv.Token(t, user), http.MethodPost, path, jsonBody(t, body))
}

func (e *groupAddEnv) get(t *testing.T, user, path string) response {
	t.Helper()
	return callAPI(t, e.hc, e.srv.HTTPURL, "Bearer "+e.srv.Token(t, user), http.MethodGet, path, "")
}

// message sends one one-to-one message from user to peer over TCP.
func (e *groupAddEnv) message(t *testing.T, from, to string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.srv.Dial(t, client.TransportTCP, from).Send(ctx, client.Outgoing{ReceiverID: to, Type: im.TextMessage, Content: []byte("hello")})
	require.NoError(t, err)
}

// joined returns the ids of the groups user is a member of.
func (e *groupAddEnv) joined(t *testing.T, user string) []string {
	t.Helper()
	var groups []sdkGroup
	require.NoError(t, json.Unmarshal(ok(t, e.get(t, user, "/api/group/joined")).data, &groups))
	ids := []string{}
	for _, g := range groups {
		ids = append(ids, g.GroupID)
	}
	return ids
}

func (e *groupAddEnv) members(t *testing.T, user, gid string) []string {
	t.Helper()
	var ms []memberJSON
	require.NoError(t, json.Unmarshal(ok(t, e.get(t, user, "/api/group/"+gid+"/members")).data, &ms))
	ids := []string{}
	for _, m := range ms {
		ids = append(ids, m.UserID)
	}
	return ids
}

type memberJSON struct {
	UserID string `json:"userID"`
}

func newGroupAddEnv(t *testing.T, cfg im.Config) *groupAddEnv {
	hc := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	return &groupAddEnv{srv: imtest.NewServer(t, imtest.Options{Memory: true, Config: cfg}), hc: hc}
}

// By default a user adds to groups only users they have exchanged a
// message with: a stranger can put the victim neither in a new group nor
// in one of theirs, and a refusal adds nobody, not even the users the
// stranger was allowed to add.
func TestStrangersCannotAddUsersToGroups(t *testing.T) {
	e := newGroupAddEnv(t, im.Config{})
	const mallory, victim, friend = "mallory", "victim", "friend"
	e.message(t, friend, mallory) // mallory may add friend, not victim

	r := e.call(t, mallory, "/api/group/create", map[string]any{"groupName": "spam", "memberUserIDs": []string{victim}})
	failed(t, r, 102, victim)
	r = e.call(t, mallory, "/api/group/create", map[string]any{"groupName": "spam", "memberUserIDs": []string{friend, victim}})
	failed(t, r, 102, victim)
	require.Empty(t, e.joined(t, mallory), "no group was created")
	require.Empty(t, e.joined(t, friend))
	require.Empty(t, e.joined(t, victim))

	// Her own group, open or invite-only: the same.
	for _, policy := range []im.JoinPolicy{im.JoinOpen, im.JoinInviteOnly} {
		g := decodeGroup(t, ok(t, e.call(t, mallory, "/api/group/create", map[string]any{"groupName": "mine", "joinPolicy": policy})).data)
		failed(t, e.call(t, mallory, "/api/group/"+g.GroupID+"/invite", map[string]any{"userIDs": []string{friend, victim}}), 102, victim)
		require.Equal(t, []string{mallory}, e.members(t, mallory, g.GroupID), "nobody was added")
	}
	require.Empty(t, e.joined(t, victim))

	// Once the victim has written to her (or she to the victim), she may.
	e.message(t, victim, mallory)
	g := decodeGroup(t, ok(t, e.call(t, mallory, "/api/group/create", map[string]any{"groupName": "friends", "memberUserIDs": []string{friend, victim}})).data)
	require.ElementsMatch(t, []string{mallory, friend, victim}, e.members(t, mallory, g.GroupID))

	// Joining an open group oneself needs nobody's consent.
	open := decodeGroup(t, ok(t, e.call(t, mallory, "/api/group/create", map[string]any{"groupName": "open", "joinPolicy": im.JoinOpen})).data)
	ok(t, e.call(t, "passerby", "/api/group/"+open.GroupID+"/join", map[string]any{}))
}

// Config.GroupAddsPerMinute bounds the users one user adds to groups; a
// call that would go over it adds nobody, and another user keeps a budget
// of their own.
func TestGroupAddsPerMinute(t *testing.T) {
	e := newGroupAddEnv(t, im.Config{GroupAddsPerMinute: 3})
	const owner, other = "owner", "other"
	for _, u := range []string{"u1", "u2", "u3", "u4"} {
		e.message(t, u, owner)
		e.message(t, u, other)
	}
	g := decodeGroup(t, ok(t, e.call(t, owner, "/api/group/create", map[string]any{"groupName": "g", "memberUserIDs": []string{"u1", "u2"}})).data)
	failed(t, e.call(t, owner, "/api/group/"+g.GroupID+"/invite", map[string]any{"userIDs": []string{"u3", "u4"}}), 201, "at most 3 a minute")
	require.ElementsMatch(t, []string{owner, "u1", "u2"}, e.members(t, owner, g.GroupID), "nobody was added")
	failed(t, e.call(t, owner, "/api/group/create", map[string]any{"groupName": "h", "memberUserIDs": []string{"u3", "u4"}}), 201, "at most 3 a minute")
	require.Len(t, e.joined(t, owner), 1, "no group was created")

	ok(t, e.call(t, owner, "/api/group/"+g.GroupID+"/invite", map[string]any{"userIDs": []string{"u3"}}))
	failed(t, e.call(t, owner, "/api/group/"+g.GroupID+"/invite", map[string]any{"userIDs": []string{"u4"}}), 201, "too fast")
	// Inviting members already in adds nobody and costs nothing.
	ok(t, e.call(t, owner, "/api/group/"+g.GroupID+"/invite", map[string]any{"userIDs": []string{"u1", "u3"}}))

	ok(t, e.call(t, other, "/api/group/create", map[string]any{"groupName": "o", "memberUserIDs": []string{"u1", "u2", "u3"}}))
}
