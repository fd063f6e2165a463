package httpapi_test

import (
	"net/http"
	"regexp"
	"strings"
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

	failed(t, e.call(t, dave, http.MethodPost, "/api/group/"+g.GroupID+"/join", ""), 202, "group does not exist")
	missing := e.call(t, dave, http.MethodGet, "/api/group/00000000000000000000000000000000", "")
	failed(t, missing, 202, "group does not exist")
	stranger := e.call(t, dave, http.MethodGet, "/api/group/"+g.GroupID, "")
	failed(t, stranger, 202, "group does not exist")
	require.Equal(t, missing.message, stranger.message, "the same answer as for no group")
	require.Nil(t, stranger.data)
	failed(t, e.call(t, dave, http.MethodGet, "/api/group/"+g.GroupID+"/members", ""), 202, "group does not exist")
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

// Every group call by id answers a non-member of an invite-only group with
// the very response (status, code, message, body) a random id gets, so a
// prober who has a real id learns nothing from any of them; neither does a
// member who left. Nothing changes.
func TestInviteOnlyGroupLooksMissingToOutsiders(t *testing.T) {
	e := setupGroups(t, nil, nil)
	g := decodeGroup(t, ok(t, e.call(t, alice, http.MethodPost, "/api/group/create", `{"groupName":"team","memberUserIDs":["bob","carol"]}`)).data)
	ok(t, e.call(t, carol, http.MethodPost, "/api/group/"+g.GroupID+"/leave", ""))
	random := "5f0c7e1a9b3d4c2e8f6a0b1c2d3e4f50"

	probes := []struct{ name, method, path, body string }{
		{"info", http.MethodGet, "/api/group/{id}", ""},
		{"members", http.MethodGet, "/api/group/{id}/members", ""},
		{"join", http.MethodPost, "/api/group/{id}/join", ""},
		{"leave", http.MethodPost, "/api/group/{id}/leave", ""},
		{"dismiss", http.MethodPost, "/api/group/{id}/dismiss", ""},
		{"invite", http.MethodPost, "/api/group/{id}/invite", `{"userIDs":["dave"]}`},
		{"kick", http.MethodPost, "/api/group/{id}/kick", `{"userIDs":["bob"]}`},
		{"kick the owner", http.MethodPost, "/api/group/{id}/kick", `{"userIDs":["alice"]}`},
		{"role", http.MethodPost, "/api/group/{id}/role", `{"userID":"bob","role":"admin"}`},
		{"take ownership", http.MethodPost, "/api/group/{id}/role", `{"userID":"dave","role":"owner"}`},
		{"update", http.MethodPost, "/api/group/update", `{"groupID":"{id}","groupName":"mine"}`},
		{"update nothing", http.MethodPost, "/api/group/update", `{"groupID":"{id}"}`},
		{"update the history", http.MethodPost, "/api/group/update", `{"groupID":"{id}","history":1}`},
	}
	for _, p := range probes {
		for _, u := range []string{dave, carol} {
			t.Run(p.name+"/"+u, func(t *testing.T) {
				at := func(id string) response {
					return e.call(t, u, p.method, strings.ReplaceAll(p.path, "{id}", id), strings.ReplaceAll(p.body, "{id}", id))
				}
				missing, real := at(random), at(g.GroupID)
				failed(t, missing, 202, "group does not exist")
				require.Equal(t, missing.status, real.status)
				require.Equal(t, string(missing.raw), string(real.raw), "the same answer as for no group")
			})
		}
	}

	now := decodeGroup(t, ok(t, e.call(t, alice, http.MethodGet, "/api/group/"+g.GroupID, "")).data)
	require.Equal(t, "team", now.GroupName, "nothing changed")
	require.Equal(t, 2, now.MemberCount, "nothing changed")
}
