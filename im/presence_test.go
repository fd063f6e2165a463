package im_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/stretchr/testify/require"
)

// presenceServer is a test server whose users go offline delay after their
// last session ends.
func presenceServer(t *testing.T, cfg im.Config, delay time.Duration) *imtest.Server {
	cfg.PresenceOfflineDelay = delay
	return imtest.NewServer(t, imtest.Options{Memory: true, Config: cfg})
}

// nextStatus waits for the next status change pushed to c, skipping
// messages.
func nextStatus(t *testing.T, c *client.Client) *imv1.UserStatus {
	t.Helper()
	for {
		p := nextPush(t, c)
		if sc, ok := p.Message.(*imv1.StatusChangePush); ok {
			return sc.Status
		}
		require.Equal(t, imv1.CommandType_CMD_PUSH_MSG, p.Command)
	}
}

// statusWith waits for a status change pushed to c showing want as its
// devices. A WebSocket client authenticated by its handshake tells its
// platform in its AuthRequest only, so its device is first pushed without.
func statusWith(t *testing.T, c *client.Client, want ...string) *imv1.UserStatus {
	t.Helper()
	for {
		st := nextStatus(t, c)
		if slices.Equal(devices(st), want) {
			return st
		}
	}
}

// noStatusYet checks that no status change was pushed to c before the
// answer to a request made now: pushes are read in order, so one queued
// before it would be in the channel by then.
func noStatusYet(t *testing.T, c *client.Client) {
	t.Helper()
	require.NoError(t, c.Request(testCtx(t), imv1.CommandType_CMD_HEARTBEAT_REQ, &imv1.HeartbeatRequest{}, nil))
	for {
		select {
		case p := <-c.Pushes():
			require.Equal(t, imv1.CommandType_CMD_PUSH_MSG, p.Command, "unexpected push: %v", p.Message)
		default:
			return
		}
	}
}

func devices(st *imv1.UserStatus) []string {
	var out []string
	for _, d := range st.Devices {
		out = append(out, d.Platform+"/"+d.Transport)
	}
	return out
}

func TestPresenceQuerySubscribeAndPushes(t *testing.T) {
	for _, tr := range []string{client.TransportTCP, client.TransportWebSocket} {
		t.Run(tr, func(t *testing.T) {
			const delay = 200 * time.Millisecond
			srv := presenceServer(t, im.Config{}, delay)
			a := srv.Dial(t, tr, alice)
			b1 := srv.DialWith(t, client.Options{Transport: client.TransportTCP, UserID: bob, Platform: "iOS"})
			sendText(t, a, bob, "hi") // alice and bob may now see each other

			rsp, err := a.Presence(testCtx(t), []string{bob, carol, bob}, imv1.PresenceSubscribe_PRESENCE_SUBSCRIBE)
			require.NoError(t, err)
			require.Len(t, rsp.Statuses, 2, "duplicates answered once")
			require.EqualValues(t, 2, rsp.Subscriptions)
			st := rsp.Statuses[0]
			require.Equal(t, bob, st.UserId)
			require.True(t, st.Online)
			require.Equal(t, []string{"iOS/tcp"}, devices(st))
			require.Zero(t, st.LastSeen)
			require.NotZero(t, st.Version)
			require.Equal(t, carol, rsp.Statuses[1].UserId)
			require.False(t, rsp.Statuses[1].Online)
			require.EqualValues(t, 2, srv.Stats().PresenceSubscriptions)

			// A second device is a change.
			b2 := srv.DialWith(t, client.Options{Transport: client.TransportWebSocket, UserID: bob, Platform: "Android"})
			st2 := statusWith(t, a, "iOS/tcp", "Android/websocket")
			require.True(t, st2.Online)
			require.Greater(t, st2.Version, st.Version)

			// One of two devices leaving is a change, at once.
			require.NoError(t, b1.Close())
			st3 := nextStatus(t, a)
			require.True(t, st3.Online)
			require.Equal(t, []string{"Android/websocket"}, devices(st3))

			// The last leaving is pushed once the delay has passed.
			closed := time.Now()
			require.NoError(t, b2.Close())
			st4 := nextStatus(t, a)
			require.GreaterOrEqual(t, time.Since(closed), delay)
			require.False(t, st4.Online)
			require.Empty(t, st4.Devices)
			require.GreaterOrEqual(t, st4.LastSeen, closed.UnixMilli())
			require.Greater(t, st4.Version, st3.Version)

			// A query now reads the same.
			rsp, err = a.Presence(testCtx(t), []string{bob}, imv1.PresenceSubscribe_PRESENCE_QUERY)
			require.NoError(t, err)
			require.False(t, rsp.Statuses[0].Online)
			require.Equal(t, st4.LastSeen, rsp.Statuses[0].LastSeen)

			// Unsubscribed, bob's return is not pushed.
			rsp, err = a.Presence(testCtx(t), []string{bob}, imv1.PresenceSubscribe_PRESENCE_UNSUBSCRIBE)
			require.NoError(t, err)
			require.EqualValues(t, 1, rsp.Subscriptions)
			srv.Dial(t, client.TransportTCP, bob)
			require.EqualValues(t, 2, srv.Stats().PresenceOnline)
			noStatusYet(t, a)
		})
	}
}

func TestPresenceDebounce(t *testing.T) {
	const delay = 2 * time.Second
	srv := presenceServer(t, im.Config{}, delay)
	a := srv.Dial(t, client.TransportTCP, alice)
	b := srv.Dial(t, client.TransportTCP, bob)
	sendText(t, b, alice, "hi")
	_, err := a.Presence(testCtx(t), []string{bob}, imv1.PresenceSubscribe_PRESENCE_SUBSCRIBE)
	require.NoError(t, err)

	// Bob drops and comes back on the same kind of device within the
	// delay: the subscribers see nothing.
	require.NoError(t, b.Close())
	eventually(t, func() bool { return srv.Stats().Sessions == 1 }, "bob's session did not end")
	b = srv.Dial(t, client.TransportTCP, bob)
	rsp, err := a.Presence(testCtx(t), []string{bob}, imv1.PresenceSubscribe_PRESENCE_QUERY)
	require.NoError(t, err)
	require.True(t, rsp.Statuses[0].Online)
	noStatusYet(t, a)

	// Gone for good: the first push after all this is the offline, made
	// after this close (a flap would have pushed an offline with an
	// earlier last_seen first), and no sooner than the delay.
	closed := time.Now()
	require.NoError(t, b.Close())
	st := nextStatus(t, a)
	require.GreaterOrEqual(t, time.Since(closed), delay)
	require.False(t, st.Online)
	require.GreaterOrEqual(t, st.LastSeen, closed.UnixMilli())
}

func TestPresenceVisibility(t *testing.T) {
	srv := presenceServer(t, im.Config{GroupAddPolicy: anyoneAdds}, -1)
	a := srv.Dial(t, client.TransportWebSocket, alice)
	c := srv.Dial(t, client.TransportTCP, carol)

	// A stranger reads alice as a user never seen, and gets no pushes.
	rsp, err := c.Presence(testCtx(t), []string{alice}, imv1.PresenceSubscribe_PRESENCE_SUBSCRIBE)
	require.NoError(t, err)
	st := rsp.Statuses[0]
	require.False(t, st.Online)
	require.Empty(t, st.Devices)
	require.Zero(t, st.LastSeen)
	a2 := srv.Dial(t, client.TransportTCP, alice)
	require.NoError(t, a2.Close())
	eventually(t, func() bool { return srv.Stats().Sessions == 2 }, "alice's second session did not end")
	noStatusYet(t, c)

	// Users always see themselves.
	rsp, err = a.Presence(testCtx(t), []string{alice}, imv1.PresenceSubscribe_PRESENCE_QUERY)
	require.NoError(t, err)
	require.True(t, rsp.Statuses[0].Online)

	// After a message, carol sees alice; asking again renews the
	// subscription's view, so the next change is pushed.
	sendText(t, c, alice, "hello")
	rsp, err = c.Presence(testCtx(t), []string{alice}, imv1.PresenceSubscribe_PRESENCE_SUBSCRIBE)
	require.NoError(t, err)
	require.True(t, rsp.Statuses[0].Online)
	require.Equal(t, []string{"go/websocket"}, devices(rsp.Statuses[0]))
	srv.Dial(t, client.TransportTCP, alice)
	statusWith(t, c, "go/websocket", "go/tcp")

	// A shared group makes users visible to each other.
	d := srv.Dial(t, client.TransportTCP, dave)
	rsp, err = d.Presence(testCtx(t), []string{alice, carol}, imv1.PresenceSubscribe_PRESENCE_QUERY)
	require.NoError(t, err)
	require.False(t, rsp.Statuses[0].Online)
	require.False(t, rsp.Statuses[1].Online)
	_, err = srv.CreateGroup(testCtx(t), dave, im.GroupSpec{Name: "g"}, []string{alice})
	require.NoError(t, err)
	rsp, err = d.Presence(testCtx(t), []string{alice, carol}, imv1.PresenceSubscribe_PRESENCE_QUERY)
	require.NoError(t, err)
	require.True(t, rsp.Statuses[0].Online)
	require.False(t, rsp.Statuses[1].Online, "carol shares nothing with dave")

	// The Go API: the host sees everyone; a viewer as the rule says.
	ps, err := srv.Presence(testCtx(t), "", []string{carol, "nobody"})
	require.NoError(t, err)
	require.True(t, ps[0].Online)
	require.False(t, ps[1].Online)
	ps, err = srv.Presence(testCtx(t), dave, []string{carol})
	require.NoError(t, err)
	require.False(t, ps[0].Online)
	_, err = srv.Presence(testCtx(t), dave, []string{""})
	require.ErrorIs(t, err, im.ErrInvalidArgument)
}

func TestPresenceVisibleHook(t *testing.T) {
	hook := func(_ context.Context, viewer, user string) (bool, error) {
		switch user {
		case bob:
			return true, nil
		case carol:
			return false, errors.New("directory down")
		}
		panic("no rule for " + user)
	}
	srv := presenceServer(t, im.Config{PresenceVisible: hook}, -1)
	a := srv.Dial(t, client.TransportTCP, alice)
	srv.Dial(t, client.TransportTCP, bob)
	srv.Dial(t, client.TransportTCP, carol)
	srv.Dial(t, client.TransportTCP, dave)
	rsp, err := a.Presence(testCtx(t), []string{bob, carol, dave}, imv1.PresenceSubscribe_PRESENCE_QUERY)
	require.NoError(t, err)
	require.True(t, rsp.Statuses[0].Online, "visible to the hook, without a conversation")
	require.False(t, rsp.Statuses[1].Online, "an error reads as offline")
	require.False(t, rsp.Statuses[2].Online, "a panic reads as offline")
}

func TestPresenceBounds(t *testing.T) {
	srv := presenceServer(t, im.Config{MaxPresenceSubscriptions: 3}, -1)
	r := dialRaw(t, srv.TCPAddr)
	r.auth(alice, srv.Token(t, alice))
	call := func(req *imv1.OnlineStatusRequest) *imv1.OnlineStatusResponse {
		t.Helper()
		rsp := new(imv1.OnlineStatusResponse)
		require.Equal(t, imv1.CommandType_CMD_ONLINE_STATUS_RSP, r.call(imv1.CommandType_CMD_ONLINE_STATUS_REQ, req, rsp))
		return rsp
	}
	sub := imv1.PresenceSubscribe_PRESENCE_SUBSCRIBE
	rsp := call(&imv1.OnlineStatusRequest{UserIds: []string{"u1", "u2", "u3"}, Subscribe: sub})
	require.Zero(t, rsp.ErrorCode, rsp.ErrorMsg)
	require.EqualValues(t, 3, rsp.Subscriptions)

	many := make([]string, im.MaxPresenceQueryIDs+1)
	for i := range many {
		many[i] = fmt.Sprintf("u%d", i)
	}
	for name, req := range map[string]*imv1.OnlineStatusRequest{
		"past the subscription bound": {UserIds: []string{"u1", "u4"}, Subscribe: sub},
		"too many ids":                {UserIds: many},
		"no ids":                      {Subscribe: sub},
		"an invalid id":               {UserIds: []string{"u5", strings.Repeat("x", im.MaxIDLength+1)}, Subscribe: sub},
		"an empty id":                 {UserIds: []string{"u5", ""}, Subscribe: sub},
		"an unknown subscribe value":  {UserIds: []string{"u5"}, Subscribe: 7},
	} {
		t.Run(name, func(t *testing.T) {
			rsp := call(req)
			require.Equal(t, imv1.ErrorCode_ERR_INVALID_PARAM, rsp.ErrorCode)
			require.NotEmpty(t, rsp.ErrorMsg)
			require.Empty(t, rsp.Statuses)
			require.EqualValues(t, 3, srv.Stats().PresenceSubscriptions, "a refused request changes nothing")
		})
	}
	// Resubscribing to users it has costs nothing; a query is not bound.
	rsp = call(&imv1.OnlineStatusRequest{UserIds: []string{"u3", "u2", "u1"}, Subscribe: sub})
	require.Zero(t, rsp.ErrorCode, rsp.ErrorMsg)
	rsp = call(&imv1.OnlineStatusRequest{UserIds: many[:im.MaxPresenceQueryIDs]})
	require.Zero(t, rsp.ErrorCode, rsp.ErrorMsg)
	require.Len(t, rsp.Statuses, im.MaxPresenceQueryIDs)
	require.EqualValues(t, 3, rsp.Subscriptions)
	r.alive()

	// Malformed body.
	er := new(imv1.OnlineStatusResponse)
	require.Equal(t, imv1.CommandType_CMD_ONLINE_STATUS_RSP, r.response(r.write(imv1.CommandType_CMD_ONLINE_STATUS_REQ, []byte{0x0a, 0x05, 0x01}), er))
	require.Equal(t, imv1.ErrorCode_ERR_INVALID_PARAM, er.ErrorCode)
}

func TestPresenceRateLimit(t *testing.T) {
	srv := presenceServer(t, im.Config{PresenceQueryRate: 0.01}, -1) // a burst of one
	a1 := srv.Dial(t, client.TransportTCP, alice)
	a2 := srv.Dial(t, client.TransportWebSocket, alice)
	_, err := a1.Presence(testCtx(t), []string{bob}, imv1.PresenceSubscribe_PRESENCE_SUBSCRIBE)
	require.NoError(t, err)
	// The user's limit, not the connection's.
	_, err = a2.Presence(testCtx(t), []string{bob}, imv1.PresenceSubscribe_PRESENCE_SUBSCRIBE)
	var e *client.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, imv1.ErrorCode_ERR_SEND_TOO_FAST, e.Code)
	require.EqualValues(t, 1, srv.Stats().PresenceSubscriptions, "a limited request changes nothing")
}

func TestPresenceSubscriptionsEndWithConnection(t *testing.T) {
	srv := presenceServer(t, im.Config{PresenceQueryRate: -1}, -1)
	users := make([]string, 50)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i)
	}
	for i := range 40 {
		tr := client.TransportTCP
		if i%2 == 1 {
			tr = client.TransportWebSocket
		}
		c := srv.Dial(t, tr, fmt.Sprintf("viewer%d", i%5))
		_, err := c.Presence(testCtx(t), users[i%10:], imv1.PresenceSubscribe_PRESENCE_SUBSCRIBE)
		require.NoError(t, err)
		require.Positive(t, srv.Stats().PresenceSubscriptions)
		require.NoError(t, c.Close())
	}
	eventually(t, func() bool {
		st := srv.Stats()
		return st.Connections == 0 && st.PresenceSubscriptions == 0 && st.PresenceWatched == 0
	}, fmt.Sprintf("subscriptions left behind: %+v", srv.Stats()))
}

func TestPresenceNoPushUnlessSubscribed(t *testing.T) {
	srv := presenceServer(t, im.Config{}, -1)
	// An SDK-shaped connection that never subscribes, and a Go client
	// over WebSocket that only queries.
	r := dialRaw(t, srv.TCPAddr)
	r.auth(alice, srv.Token(t, alice))
	q := srv.Dial(t, client.TransportWebSocket, alice)
	w := srv.Dial(t, client.TransportTCP, alice)
	b := srv.Dial(t, client.TransportTCP, bob)
	sendText(t, b, alice, "hi")
	for _, c := range []*client.Client{q, w} {
		sub := imv1.PresenceSubscribe_PRESENCE_QUERY
		if c == w {
			sub = imv1.PresenceSubscribe_PRESENCE_SUBSCRIBE
		}
		_, err := c.Presence(testCtx(t), []string{bob}, sub)
		require.NoError(t, err)
	}
	srv.Dial(t, client.TransportWebSocket, bob)
	statusWith(t, w, "go/tcp", "go/websocket")
	require.NoError(t, b.Close())
	require.Len(t, nextStatus(t, w).Devices, 1)

	// Both changes were fanned out before w saw them; none went to r or q.
	noStatusYet(t, q)
	seq := r.writeMsg(imv1.CommandType_CMD_HEARTBEAT_REQ, &imv1.HeartbeatRequest{})
	for {
		f := r.read()
		require.NotEqual(t, imv1.CommandType_CMD_STATUS_CHANGE_PUSH, f.Command)
		if f.Sequence == seq {
			break
		}
	}
}

// BenchmarkPresenceQuery measures an ONLINE_STATUS_REQ naming 500 users,
// a tenth of them online, a fifth sharing a conversation with the viewer
// and 80 sharing one of its 20 groups, over TCP to a bbolt store, one request at a time.
func BenchmarkPresenceQuery(b *testing.B) {
	srv := imtest.NewServer(b, imtest.Options{Config: im.Config{PresenceQueryRate: -1, GroupAddsPerMinute: -1, GroupAddPolicy: anyoneAdds}})
	ctx := context.Background()
	users := make([]string, im.MaxPresenceQueryIDs)
	for i := range users {
		users[i] = fmt.Sprintf("u%03d", i)
		if i%10 == 5 {
			srv.Dial(b, client.TransportTCP, users[i])
		}
		if i%5 == 0 {
			if _, err := srv.SendMessage(ctx, im.SendRequest{SenderID: alice, ReceiverID: users[i], Type: im.TextMessage, Content: []byte("hi")}); err != nil {
				b.Fatal(err)
			}
		}
	}
	for g := range 20 {
		if _, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "g"}, users[g*20+1:g*20+5]); err != nil {
			b.Fatal(err)
		}
	}
	a := srv.Dial(b, client.TransportTCP, alice)
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.Presence(ctx, users, imv1.PresenceSubscribe_PRESENCE_QUERY); err != nil {
			b.Fatal(err)
		}
	}
}
