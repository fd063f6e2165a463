package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
)

// manageEnv is a real server (memstore, which keeps join requests) with
// its HTTP API and sockets.
type manageEnv struct {
	srv *imtest.Server
	hc  *http.Client
}

func setupManage(t *testing.T, maxMembers int) *manageEnv {
	t.Helper()
	srv := imtest.NewServer(t, imtest.Options{Memory: true, Config: im.Config{GroupAddPolicy: anyoneAdds, MaxGroupMembers: maxMembers}})
	hc := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	return &manageEnv{srv: srv, hc: hc}
}

func (e *manageEnv) call(t *testing.T, user, method, path string, body any) response {
	t.Helper()
	b := ""
	if s, isString := body.(string); isString {
		b = s
	} else if body != nil {
		b = jsonBody(t, body)
	}
	return callAPI(t, e.hc, e.srv.HTTPURL, "Bearer "+e.srv.Token(t, user), method, path, b)
}

// create makes a group owned by owner with members; joinPolicy as given.
func (e *manageEnv) create(t *testing.T, owner string, joinPolicy int, members ...string) string {
	t.Helper()
	r := ok(t, e.call(t, owner, http.MethodPost, "/api/group/create", map[string]any{"groupName": "g", "memberUserIDs": members, "joinPolicy": joinPolicy}))
	return decodeGroup(t, r.data).GroupID
}

func (e *manageEnv) send(t *testing.T, c *client.Client, conv, text string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Send(ctx, client.Outgoing{ConversationID: conv, Type: im.TextMessage, Content: []byte(text)})
	return err
}

// requireMuted requires err to be the socket's refusal of a muted sender.
func requireMuted(t *testing.T, err error) {
	t.Helper()
	var ce *client.Error
	require.True(t, errors.As(err, &ce), "want a refusal, got %v", err)
	require.Equal(t, imv1.ErrorCode_ERR_PERMISSION_DENIED, ce.Code)
	require.Equal(t, "you are muted in this group", ce.Msg)
}

// nextPush waits for the next push of command cmd to c, skipping others.
func nextPush(t *testing.T, c *client.Client, cmd imv1.CommandType) client.Push {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case p := <-c.Pushes():
			if p.Command == cmd {
				return p
			}
		case <-deadline:
			t.Fatalf("no %v push within 10 s", cmd)
		}
	}
}

// nextNotice waits for the next group notice of type typ pushed to c.
func nextNotice(t *testing.T, c *client.Client, typ string) im.GroupNotice {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case p := <-c.Pushes():
			pm, isMsg := p.Message.(*imv1.PushMessage)
			if !isMsg || pm.Message.MessageType != int32(im.NotificationMessage) {
				continue
			}
			var n im.GroupNotice
			require.NoError(t, json.Unmarshal(pm.Message.Content, &n))
			if n.Type == typ {
				return n
			}
		case <-deadline:
			t.Fatalf("no %s notice within 10 s", typ)
		}
	}
}

// With the group muted, a member's send is refused over the socket and an
// admin's is not; unmuted, the member sends again. Only admins mute.
func TestGroupMuteAllOverSockets(t *testing.T) {
	e := setupManage(t, 0)
	id := e.create(t, alice, 1, bob, carol)
	conv := "group_" + id
	ok(t, e.call(t, alice, http.MethodPost, "/api/group/"+id+"/admin", map[string]any{"userID": carol, "admin": true}))
	b := e.srv.Dial(t, client.TransportTCP, bob)
	c := e.srv.Dial(t, client.TransportWebSocket, carol)

	failed(t, e.call(t, bob, http.MethodPost, "/api/group/"+id+"/mute", map[string]any{"muteAll": true}), 102, "only admins")
	failed(t, e.call(t, alice, http.MethodPost, "/api/group/"+id+"/mute", `{}`), 2, "muteAll")
	failed(t, e.call(t, alice, http.MethodPost, "/api/group/"+id+"/mute", `{"muteAll":"yes"}`), 2, "muteAll")
	ok(t, e.call(t, carol, http.MethodPost, "/api/group/"+id+"/mute", map[string]any{"muteAll": true}))
	n := nextNotice(t, b, im.GroupNoticeMuted)
	require.Equal(t, carol, n.Operator)
	require.NotNil(t, n.MuteAll)
	require.True(t, *n.MuteAll)
	require.True(t, decodeGroup(t, ok(t, e.call(t, bob, http.MethodGet, "/api/group/"+id, nil)).data).MuteAll)

	requireMuted(t, e.send(t, b, conv, "may I?"))
	require.NoError(t, e.send(t, c, conv, "admins may"))

	// The update route switches it too.
	ok(t, e.call(t, alice, http.MethodPost, "/api/group/update", map[string]any{"groupID": id, "muteAll": false}))
	require.False(t, nextNoticeMuteAll(t, b))
	require.NoError(t, e.send(t, b, conv, "thanks"))
}

func nextNoticeMuteAll(t *testing.T, c *client.Client) bool {
	t.Helper()
	n := nextNotice(t, c, im.GroupNoticeMuted)
	require.NotNil(t, n.MuteAll)
	return *n.MuteAll
}

// A member muted until a time is refused until then and sends after it;
// only a member of higher rank mutes, and bad input is refused.
func TestGroupMuteMemberUntil(t *testing.T) {
	e := setupManage(t, 0)
	id := e.create(t, alice, 1, bob, carol, dave)
	conv := "group_" + id
	ok(t, e.call(t, alice, http.MethodPost, "/api/group/"+id+"/role", map[string]any{"userID": carol, "role": "admin"}))
	b := e.srv.Dial(t, client.TransportTCP, bob)
	d := e.srv.Dial(t, client.TransportWebSocket, dave)
	path := "/api/group/" + id + "/mute-member"

	for _, tc := range []struct {
		user string
		body any
		code int
		msg  string
	}{
		{bob, map[string]any{"userID": dave, "seconds": 60}, 102, "only admins"},
		{carol, map[string]any{"userID": alice, "seconds": 60}, 102, "equal or lower rank"},
		{carol, map[string]any{"userID": carol, "seconds": 60}, 2, "yourself"},
		{alice, map[string]any{"userID": erin, "seconds": 60}, 102, "not a member"},
		{alice, map[string]any{"userID": bob}, 2, "either until"},
		{alice, map[string]any{"userID": bob, "until": 1, "seconds": 1}, 2, "either until"},
		{alice, map[string]any{"userID": bob, "until": time.Now().Add(-time.Minute).UnixMilli()}, 2, "future"},
		{alice, map[string]any{"userID": bob, "seconds": -1}, 2, "seconds"},
		{alice, map[string]any{"userID": bob, "seconds": 400 * 24 * 3600}, 2, "seconds"},
		{alice, map[string]any{"userID": "", "seconds": 1}, 2, "userID"},
	} {
		failed(t, e.call(t, tc.user, http.MethodPost, path, tc.body), tc.code, tc.msg)
	}
	require.NoError(t, e.send(t, b, conv, "nobody is muted yet"))

	until := time.Now().Add(1500 * time.Millisecond)
	ok(t, e.call(t, carol, http.MethodPost, path, map[string]any{"userID": bob, "until": until.UnixMilli()}))
	n := nextNotice(t, d, im.GroupNoticeMemberMuted)
	require.Equal(t, []string{bob}, n.UserIDs)
	require.Equal(t, until.UnixMilli(), n.MutedUntil)
	members := decodeMembers(t, ok(t, e.call(t, dave, http.MethodGet, "/api/group/"+id+"/members", nil)).data)
	i := slices.IndexFunc(members, func(m sdkMember) bool { return m.UserID == bob })
	require.Equal(t, until.UnixMilli(), members[i].MutedUntil)

	requireMuted(t, e.send(t, b, conv, "muted"))
	require.NoError(t, e.send(t, d, conv, "dave is not muted"))
	// Once the time has passed, bob sends again.
	require.Eventually(t, func() bool { return e.send(t, b, conv, "back") == nil }, 10*time.Second, 100*time.Millisecond)

	// seconds, then an unmute with 0.
	ok(t, e.call(t, alice, http.MethodPost, path, map[string]any{"userID": dave, "seconds": 3600}))
	requireMuted(t, e.send(t, d, conv, "muted for an hour"))
	ok(t, e.call(t, alice, http.MethodPost, path, map[string]any{"userID": dave, "until": 0}))
	for n = nextNotice(t, b, im.GroupNoticeMemberMuted); n.MutedUntil != 0; n = nextNotice(t, b, im.GroupNoticeMemberMuted) {
		// bob's own mute and dave's hour come first.
	}
	require.Equal(t, []string{dave}, n.UserIDs)
	require.NoError(t, e.send(t, d, conv, "unmuted"))
}

// A group that approves who joins: a join stores a request, answered with
// code 1201 and the group, pushed to the online admins; admins list,
// approve and reject; nobody else may.
func TestGroupJoinApprovalFlow(t *testing.T) {
	e := setupManage(t, 4)
	id := e.create(t, alice, 2, bob, carol)
	ok(t, e.call(t, alice, http.MethodPost, "/api/group/"+id+"/admin", map[string]any{"userID": carol, "admin": true}))
	a := e.srv.Dial(t, client.TransportTCP, alice)
	c := e.srv.Dial(t, client.TransportWebSocket, carol)
	d := e.srv.Dial(t, client.TransportTCP, dave)
	for _, cl := range []*client.Client{a, c} {
		require.NoError(t, cl.SubscribeGroupEvents(t.Context(), true))
	}
	// A connection that did not subscribe, as an SDK client's, whose TCP
	// decoder refuses commands it does not know, gets no such push.
	sdk := e.srv.Dial(t, client.TransportTCP, alice)
	reqPath := "/api/group/" + id + "/requests"

	// Anyone may look the group up.
	require.Equal(t, 2, decodeGroup(t, ok(t, e.call(t, dave, http.MethodGet, "/api/group/"+id, nil)).data).JoinPolicy)
	r := e.call(t, dave, http.MethodPost, "/api/group/"+id+"/join", map[string]any{"message": "let me in ✓"})
	require.Equal(t, 1201, r.code, "%s", r.raw)
	require.Contains(t, r.message, "approve")
	require.Equal(t, id, decodeGroup(t, r.data).GroupID)
	for _, cl := range []*client.Client{a, c} {
		p := nextPush(t, cl, imv1.CommandType_CMD_GROUP_JOIN_REQUEST_PUSH).Message.(*imv1.GroupJoinRequestPush)
		require.Equal(t, id, p.GroupId)
		require.Equal(t, dave, p.UserId)
		require.Equal(t, "let me in ✓", p.Message)
		require.NotZero(t, p.CreateTime)
	}
	failed(t, e.call(t, erin, http.MethodPost, "/api/group/"+id+"/join", map[string]any{"message": strings.Repeat("x", 257)}), 2, "message")
	require.Equal(t, 1201, e.call(t, erin, http.MethodPost, "/api/group/"+id+"/join", nil).code, "no body, as the SDK sends it")

	failed(t, e.call(t, bob, http.MethodGet, reqPath, nil), 102, "only admins")
	failed(t, e.call(t, bob, http.MethodPost, reqPath+"/approve", map[string]any{"userID": dave}), 102, "only admins")
	failed(t, e.call(t, bob, http.MethodPost, reqPath+"/reject", map[string]any{"userID": dave}), 102, "only admins")
	failed(t, e.call(t, dave, http.MethodGet, reqPath, nil), 102, "only admins")
	var reqs []struct {
		GroupID, UserID, Message string
		CreateTime               int64
	}
	require.NoError(t, json.Unmarshal(ok(t, e.call(t, carol, http.MethodGet, reqPath, nil)).data, &reqs))
	require.Len(t, reqs, 2)
	require.Equal(t, []string{dave, erin}, []string{reqs[0].UserID, reqs[1].UserID})
	require.Equal(t, "let me in ✓", reqs[0].Message)

	ok(t, e.call(t, carol, http.MethodPost, reqPath+"/approve", map[string]any{"userID": dave}))
	n := nextNotice(t, d, im.GroupNoticeJoined)
	require.Equal(t, carol, n.Operator)
	require.Equal(t, []string{dave}, n.UserIDs)
	// The approval's notice reaches the unsubscribed connection after
	// both requests were pushed to the subscribed ones.
	for seen := false; !seen; {
		select {
		case p := <-sdk.Pushes():
			require.NotEqual(t, imv1.CommandType_CMD_GROUP_JOIN_REQUEST_PUSH, p.Command, "pushed to a connection that did not subscribe")
			pm, isMsg := p.Message.(*imv1.PushMessage)
			seen = isMsg && pm.Message.MessageType == int32(im.NotificationMessage) && strings.Contains(string(pm.Message.Content), im.GroupNoticeJoined)
		case <-time.After(10 * time.Second):
			t.Fatal("no member_joined notice on the unsubscribed connection within 10 s")
		}
	}
	require.NoError(t, e.send(t, d, "group_"+id, "thanks"))

	ok(t, e.call(t, alice, http.MethodPost, reqPath+"/reject", map[string]any{"userID": erin}))
	failed(t, e.call(t, alice, http.MethodPost, reqPath+"/reject", map[string]any{"userID": erin}), 202, "no pending request")
	failed(t, e.call(t, alice, http.MethodPost, reqPath+"/approve", map[string]any{"userID": erin}), 202, "no pending request")
	failed(t, e.call(t, alice, http.MethodPost, reqPath+"/approve", `{}`), 2, "userID")
	require.Equal(t, "[]", string(ok(t, e.call(t, alice, http.MethodGet, reqPath, nil)).data))

	// Full (4 members), the group refuses requests.
	failed(t, e.call(t, erin, http.MethodPost, "/api/group/"+id+"/join", nil), 2, "at most 4 members")

	// An unknown join policy is refused.
	failed(t, e.call(t, alice, http.MethodPost, "/api/group/update", map[string]any{"groupID": id, "joinPolicy": 3}), 2, "join policy")
}

// A rejected user's connections are told.
func TestGroupJoinRejectedPush(t *testing.T) {
	e := setupManage(t, 0)
	id := e.create(t, alice, 1)
	ok(t, e.call(t, alice, http.MethodPost, "/api/group/update", map[string]any{"groupID": id, "joinPolicy": 2}))
	er := e.srv.Dial(t, client.TransportTCP, erin)
	require.NoError(t, er.SubscribeGroupEvents(t.Context(), true))
	require.Equal(t, 1201, e.call(t, erin, http.MethodPost, "/api/group/"+id+"/join", nil).code)
	ok(t, e.call(t, alice, http.MethodPost, "/api/group/"+id+"/requests/reject", map[string]any{"userID": erin}))
	p := nextPush(t, er, imv1.CommandType_CMD_GROUP_JOIN_REJECTED_PUSH).Message.(*imv1.GroupJoinRejectedPush)
	require.Equal(t, id, p.GroupId)
}

// Approvals of many requests at once, by two admins over HTTP, stop
// exactly at the member limit.
func TestConcurrentApprovalsStopAtLimit(t *testing.T) {
	const limit, requesters = 6, 20
	e := setupManage(t, limit)
	id := e.create(t, alice, 2, carol)
	ok(t, e.call(t, alice, http.MethodPost, "/api/group/"+id+"/admin", map[string]any{"userID": carol, "admin": true}))
	var users []string
	for i := range requesters {
		u := fmt.Sprintf("user%02d", i)
		users = append(users, u)
		require.Equal(t, 1201, e.call(t, u, http.MethodPost, "/api/group/"+id+"/join", nil).code)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		approved int
	)
	for _, admin := range []string{alice, carol} {
		for _, u := range users {
			wg.Go(func() {
				r := e.call(t, admin, http.MethodPost, "/api/group/"+id+"/requests/approve", map[string]any{"userID": u})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case r.code == 0:
					approved++
				case r.code == 2 && strings.Contains(r.message, "at most"):
				default:
					t.Errorf("approve %s by %s: %s", u, admin, r.raw)
				}
			})
		}
	}
	wg.Wait()
	members := decodeMembers(t, ok(t, e.call(t, alice, http.MethodGet, "/api/group/"+id+"/members", nil)).data)
	require.Len(t, members, limit)
	require.GreaterOrEqual(t, approved, limit-2, "an approval of a member already in answers ok too")
	require.Equal(t, limit, decodeGroup(t, ok(t, e.call(t, alice, http.MethodGet, "/api/group/"+id, nil)).data).MemberCount)
}

// Groups and members page through by id; without paging parameters the
// answers keep their shape.
func TestGroupPaging(t *testing.T) {
	e := setupManage(t, 0)
	var ids []string
	for range 5 {
		ids = append(ids, e.create(t, alice, 1, bob, carol, dave, erin, "frank", "grace"))
	}
	slices.Sort(ids)

	type groupsPage struct {
		Groups     []sdkGroup `json:"groups"`
		NextCursor string     `json:"nextCursor"`
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 3)
		var p groupsPage
		require.NoError(t, json.Unmarshal(ok(t, e.call(t, bob, http.MethodGet, "/api/group/joined?limit=2&cursor="+cursor, nil)).data, &p))
		for _, g := range p.Groups {
			got = append(got, g.GroupID)
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	require.Equal(t, ids, got)
	require.Len(t, decodeGroups(t, ok(t, e.call(t, bob, http.MethodGet, "/api/group/joined", nil)).data), 5)
	// The SDK's way: parameters in a GET body.
	var p groupsPage
	require.NoError(t, json.Unmarshal(ok(t, e.call(t, bob, http.MethodGet, "/api/group/joined", map[string]any{"limit": 4})).data, &p))
	require.Len(t, p.Groups, 4)
	require.Equal(t, ids[3], p.NextCursor)

	type membersPage struct {
		Members    []sdkMember `json:"members"`
		NextCursor string      `json:"nextCursor"`
	}
	var members []string
	cursor = ""
	for {
		var mp membersPage
		require.NoError(t, json.Unmarshal(ok(t, e.call(t, carol, http.MethodGet, "/api/group/"+ids[0]+"/members?limit=3&cursor="+cursor, nil)).data, &mp))
		for _, m := range mp.Members {
			members = append(members, m.UserID)
		}
		if mp.NextCursor == "" {
			break
		}
		cursor = mp.NextCursor
	}
	require.Equal(t, []string{alice, bob, carol, dave, erin, "frank", "grace"}, members)

	for _, q := range []string{"?limit=201", "?limit=-1", "?limit=x", "?cursor=%00"} {
		failed(t, e.call(t, bob, http.MethodGet, "/api/group/joined"+q, nil), 2, "")
		failed(t, e.call(t, bob, http.MethodGet, "/api/group/"+ids[0]+"/members"+q, nil), 2, "")
	}
	// An outsider pages nothing of an invite-only group.
	failed(t, e.call(t, "mallory", http.MethodGet, "/api/group/"+ids[0]+"/members?limit=3", nil), 202, "group does not exist")
}

// A change of the announcement reaches members as a notice of its own,
// carrying the text.
func TestGroupAnnouncementNotice(t *testing.T) {
	e := setupManage(t, 0)
	id := e.create(t, alice, 1, bob)
	b := e.srv.Dial(t, client.TransportTCP, bob)
	ok(t, e.call(t, alice, http.MethodPost, "/api/group/update", map[string]any{"groupID": id, "notification": "Meeting at 5 ✓"}))
	n := nextNotice(t, b, im.GroupNoticeAnnouncement)
	require.Equal(t, "Meeting at 5 ✓", n.Notification)
	require.Equal(t, alice, n.Operator)
	ok(t, e.call(t, alice, http.MethodPost, "/api/group/update", map[string]any{"groupID": id, "groupName": "renamed"}))
	require.Empty(t, nextNotice(t, b, im.GroupNoticeUpdated).Notification)
}

// To an outsider, every new call on an invite-only group answers as for
// an unknown id.
func TestGroupManagementHiddenFromOutsiders(t *testing.T) {
	e := setupManage(t, 0)
	id := e.create(t, alice, 1, bob)
	for _, gid := range []string{id, "0123456789abcdef0123456789abcdef"} {
		for _, c := range []struct{ method, path, body string }{
			{http.MethodPost, "/mute", `{"muteAll":true}`},
			{http.MethodPost, "/mute-member", `{"userID":"bob","seconds":60}`},
			{http.MethodPost, "/admin", `{"userID":"bob","admin":true}`},
			{http.MethodGet, "/requests", ``},
			{http.MethodPost, "/requests/approve", `{"userID":"bob"}`},
			{http.MethodPost, "/requests/reject", `{"userID":"bob"}`},
			{http.MethodPost, "/join", `{"message":"hi"}`},
			{http.MethodGet, "/members?limit=2", ``},
		} {
			r := e.call(t, "mallory", c.method, "/api/group/"+gid+c.path, c.body)
			require.Equal(t, 202, r.code, "%s %s: %s", c.method, c.path, r.raw)
			require.Equal(t, "group does not exist", r.message)
		}
	}
}
