package httpapi_test

import (
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// A group created with the SDK's body, which knows nothing of join
// policies, is invite-only: a stranger who has its id can neither join it
// nor look it up (it answers as a missing group does), nor list its
// members. Asking for an open group ("joinPolicy":0) makes one.
func TestGroupCreatedBySDKIsInviteOnly(t *testing.T) {
	e := setupGroups(t, nil, nil)
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	sdkBody := `{"groupName":"team","faceURL":"","introduction":"","memberUserIDs":["bob"]}`
	r := ok(t, e.call(t, alice, http.MethodPost, "/api/group/create", sdkBody))
	g := decodeGroup(t, r.data)
	require.Regexp(t, hex32, g.GroupID)
	require.Equal(t, 1, g.JoinPolicy, "invite-only")
	nullPolicy := decodeGroup(t, ok(t, e.call(t, alice, http.MethodPost, "/api/group/create", `{"groupName":"x","joinPolicy":null}`)).data)
	require.Equal(t, 1, nullPolicy.JoinPolicy, "null asks for nothing")

	failed(t, e.call(t, dave, http.MethodPost, "/api/group/"+g.GroupID+"/join", ""), 102, "invitation only")
	missing := e.call(t, dave, http.MethodGet, "/api/group/00000000000000000000000000000000", "")
	failed(t, missing, 202, "group does not exist")
	stranger := e.call(t, dave, http.MethodGet, "/api/group/"+g.GroupID, "")
	failed(t, stranger, 202, "group does not exist")
	require.Equal(t, missing.message, stranger.message, "the same answer as for no group")
	require.Nil(t, stranger.data)
	failed(t, e.call(t, dave, http.MethodGet, "/api/group/"+g.GroupID+"/members", ""), 102, "not a member")
	require.Empty(t, e.userGroups(t, dave))

	// Members see it.
	for _, u := range []string{alice, bob} {
		require.Equal(t, g, decodeGroup(t, ok(t, e.call(t, u, http.MethodGet, "/api/group/"+g.GroupID, "")).data), u)
		require.Len(t, e.members(t, u, g.GroupID), 2)
	}
	// A member other than an admin cannot bring the stranger in either.
	failed(t, e.call(t, bob, http.MethodPost, "/api/group/"+g.GroupID+"/invite", `{"userIDs":["dave"]}`), 102, "only admins invite")

	// Asked for, an open group: anyone finds and joins it.
	open := e.createGroup(t, alice, map[string]any{"groupName": "open", "memberUserIDs": []string{bob}, "joinPolicy": 0})
	require.Zero(t, open.JoinPolicy)
	require.Regexp(t, hex32, open.GroupID)
	require.NotEqual(t, g.GroupID, open.GroupID)
	require.Equal(t, open, decodeGroup(t, ok(t, e.call(t, dave, http.MethodGet, "/api/group/"+open.GroupID, "")).data))
	require.Equal(t, 3, decodeGroup(t, ok(t, e.call(t, dave, http.MethodPost, "/api/group/"+open.GroupID+"/join", "")).data).MemberCount)
	require.Equal(t, []string{open.GroupID}, e.userGroups(t, dave))
}
