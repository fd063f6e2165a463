package im_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
	"github.com/stretchr/testify/require"
)

// signed makes a token with method and key over claims that are otherwise
// valid for srv.
func signed(t *testing.T, method jwt.SigningMethod, key any, sub string, exp time.Time) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, jwt.RegisteredClaims{
		Subject:   sub,
		Issuer:    auth.DefaultIssuer,
		Audience:  jwt.ClaimStrings{auth.DefaultAudience},
		ExpiresAt: jwt.NewNumericDate(exp),
		IssuedAt:  jwt.NewNumericDate(time.Now()),
	}).SignedString(key)
	require.NoError(t, err)
	return tok
}

func TestAuthIsRequiredAndChecked(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	later := time.Now().Add(time.Hour)

	t.Run("requests before auth", func(t *testing.T) {
		r := dialRaw(t, srv.TCPAddr)
		r.alive() // heartbeats are answered before auth
		send := r.send(textTo(bob, "c1", "hi"))
		require.Equal(t, imv1.ErrorCode_ERR_AUTH_FAILED, send.ErrorCode)
		require.Equal(t, "c1", send.ClientMsgId)
		sync := new(imv1.BatchSyncResponse)
		require.Equal(t, imv1.CommandType_CMD_BATCH_SYNC_RSP, r.call(imv1.CommandType_CMD_BATCH_SYNC_REQ, &imv1.BatchSyncRequest{}, sync))
		require.Equal(t, imv1.ErrorCode_ERR_AUTH_FAILED, sync.ErrorCode)
		rng := new(imv1.SyncRangeResponse)
		r.call(imv1.CommandType_CMD_SYNC_RANGE_REQ, &imv1.SyncRangeRequest{RequestId: "r1", ConversationId: aliceBob}, rng)
		require.Equal(t, imv1.ErrorCode_ERR_AUTH_FAILED, rng.ErrorCode)
		require.Equal(t, "r1", rng.RequestId)
		// Still usable: authenticate now and send.
		require.Zero(t, r.auth(alice, srv.Token(t, alice)).ErrorCode)
		require.Zero(t, r.send(textTo(bob, "c1", "hi")).ErrorCode)
	})

	otherKey := bytes.Repeat([]byte("k"), 32)
	for _, tc := range []struct {
		name  string
		user  string
		token string
		code  imv1.ErrorCode
	}{
		{"garbage", carol, "not-a-token", imv1.ErrorCode_ERR_AUTH_FAILED},
		{"empty", carol, "", imv1.ErrorCode_ERR_AUTH_FAILED},
		{"forged", carol, signed(t, jwt.SigningMethodHS256, otherKey, carol, later), imv1.ErrorCode_ERR_AUTH_FAILED},
		{"expired", carol, signed(t, jwt.SigningMethodHS256, srv.Secret, carol, time.Now().Add(-time.Minute)), imv1.ErrorCode_ERR_TOKEN_EXPIRED},
		{"alg none", carol, signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, carol, later), imv1.ErrorCode_ERR_AUTH_FAILED},
		{"HS512", carol, signed(t, jwt.SigningMethodHS512, srv.Secret, carol, later), imv1.ErrorCode_ERR_AUTH_FAILED},
		{"user_id is not the subject", carol, srv.Token(t, alice), imv1.ErrorCode_ERR_AUTH_FAILED},
	} {
		t.Run("token "+tc.name, func(t *testing.T) {
			r := dialRaw(t, srv.TCPAddr)
			rsp := r.auth(tc.user, tc.token)
			require.Equal(t, tc.code, rsp.ErrorCode)
			require.NotEmpty(t, rsp.ErrorMsg)
			require.NotContains(t, rsp.ErrorMsg, tc.token+"x", "never echo the token")
			r.expectClosed()
		})
	}

	t.Run("malformed auth body", func(t *testing.T) {
		r := dialRaw(t, srv.TCPAddr)
		rsp := new(imv1.AuthResponse)
		r.response(r.write(imv1.CommandType_CMD_AUTH_REQ, []byte{0xff, 0xff, 0xff}), rsp)
		require.Equal(t, imv1.ErrorCode_ERR_INVALID_PARAM, rsp.ErrorCode)
		r.expectClosed()
	})

	t.Run("a connection cannot change user", func(t *testing.T) {
		r := dialRaw(t, srv.TCPAddr)
		require.Zero(t, r.auth(alice, srv.Token(t, alice)).ErrorCode)
		require.Zero(t, r.auth(alice, srv.Token(t, alice)).ErrorCode, "re-auth as the same user is fine")
		require.Equal(t, imv1.ErrorCode_ERR_AUTH_FAILED, r.auth(bob, srv.Token(t, bob)).ErrorCode)
		r.expectClosed()
	})

	t.Run("websocket token in the URL", func(t *testing.T) {
		c, err := client.Dial(testCtx(t), client.Options{Transport: "websocket", Addr: srv.WSURL, UserID: carol, Token: "bad"})
		require.ErrorIs(t, err, im.ErrUnauthenticated)
		require.Nil(t, c)
	})

	// Nothing of the above stored anything but alice's one message.
	convs, err := srv.Store.UserConversations(testCtx(t), carol)
	require.NoError(t, err)
	require.Empty(t, convs)
}

func TestBadInputIsRefusedAndNothingIsStored(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{SendRate: -1}})
	b := srv.Dial(t, "tcp", bob)
	r := dialRaw(t, srv.TCPAddr)
	require.Zero(t, r.auth(alice, srv.Token(t, alice)).ErrorCode)

	for _, tc := range []struct {
		name string
		msg  *imv1.MessageInfo
		code imv1.ErrorCode
	}{
		{"empty content", textTo(bob, "e1", ""), imv1.ErrorCode_ERR_INVALID_PARAM},
		{"content over 64 KiB", &imv1.MessageInfo{ClientMsgId: "e2", ReceiverId: bob, Content: bytes.Repeat([]byte("x"), 64<<10+1)}, imv1.ErrorCode_ERR_MESSAGE_TOO_LARGE},
		{"no client_msg_id", textTo(bob, "", "x"), imv1.ErrorCode_ERR_INVALID_PARAM},
		{"over-long client_msg_id", textTo(bob, strings.Repeat("c", im.MaxIDLength+1), "x"), imv1.ErrorCode_ERR_INVALID_PARAM},
		{"control character in client_msg_id", textTo(bob, "a\x00b", "x"), imv1.ErrorCode_ERR_INVALID_PARAM},
		{"no conversation", &imv1.MessageInfo{ClientMsgId: "e3", Content: []byte("x")}, imv1.ErrorCode_ERR_INVALID_PARAM},
		{"not a member", &imv1.MessageInfo{ClientMsgId: "e4", ConversationId: "single_bob_carol", Content: []byte("x")}, imv1.ErrorCode_ERR_PERMISSION_DENIED},
		{"unsorted id", &imv1.MessageInfo{ClientMsgId: "e5", ConversationId: "single_bob_alice", Content: []byte("x")}, imv1.ErrorCode_ERR_PERMISSION_DENIED},
		{"receiver does not match", &imv1.MessageInfo{ClientMsgId: "e6", ConversationId: aliceBob, ReceiverId: carol, Content: []byte("x")}, imv1.ErrorCode_ERR_INVALID_PARAM},
		{"group that does not exist", &imv1.MessageInfo{ClientMsgId: "e7", ConversationId: "group_g1", Content: []byte("x")}, imv1.ErrorCode_ERR_CONVERSATION_NOT_EXIST},
		{"system conversation", &imv1.MessageInfo{ClientMsgId: "e8", ConversationId: "system_alice", Content: []byte("x")}, imv1.ErrorCode_ERR_PERMISSION_DENIED},
		{"unknown id form", &imv1.MessageInfo{ClientMsgId: "e9", ConversationId: "weird", Content: []byte("x")}, imv1.ErrorCode_ERR_INVALID_PARAM},
		{"extra too long", &imv1.MessageInfo{ClientMsgId: "e10", ReceiverId: bob, Content: []byte("x"), Extra: strings.Repeat("e", 17<<10)}, imv1.ErrorCode_ERR_INVALID_PARAM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rsp := r.send(tc.msg)
			require.Equal(t, tc.code, rsp.ErrorCode, rsp.ErrorMsg)
			require.NotEmpty(t, rsp.ErrorMsg)
			require.Zero(t, rsp.Seq)
			r.alive() // a bad request does not cost the connection
		})
	}

	t.Run("malformed protobuf", func(t *testing.T) {
		rsp := new(imv1.SendMessageResponse)
		r.response(r.write(imv1.CommandType_CMD_SEND_MSG_REQ, []byte{0x0a, 0x05, 0x01}), rsp)
		require.Equal(t, imv1.ErrorCode_ERR_INVALID_PARAM, rsp.ErrorCode)
		sync := new(imv1.BatchSyncResponse)
		r.response(r.write(imv1.CommandType_CMD_BATCH_SYNC_REQ, []byte{0xff}), sync)
		require.Equal(t, imv1.ErrorCode_ERR_INVALID_PARAM, sync.ErrorCode)
		r.alive()
	})

	t.Run("unknown and unsupported commands", func(t *testing.T) {
		er := new(imv1.ErrorResponse)
		require.Equal(t, imv1.CommandType_CMD_ERROR_RSP, r.response(r.write(999, nil), er))
		require.Equal(t, imv1.ErrorCode_ERR_INVALID_PARAM, er.ErrorCode)
		require.Equal(t, imv1.CommandType(999), er.Command)
		// A command the SDK knows is answered in its own response command.
		st := new(imv1.ErrorResponse)
		require.Equal(t, imv1.CommandType_CMD_REAUTH_RSP, r.response(r.write(imv1.CommandType_CMD_REAUTH_REQ, nil), st))
		require.Equal(t, imv1.ErrorCode_ERR_UNKNOWN, st.ErrorCode)
		// A push command sent by a client is not a request.
		require.Equal(t, imv1.CommandType_CMD_ERROR_RSP, r.response(r.write(imv1.CommandType_CMD_PUSH_MSG, nil), er))
		r.alive()
	})

	t.Run("sender_id is taken from the session", func(t *testing.T) {
		m := textTo(bob, "spoof", "who am I")
		m.SenderId = carol
		m.GroupId = "g"
		rsp := r.send(m)
		require.Zero(t, rsp.ErrorCode)
		got := nextMessage(t, b)
		require.Equal(t, alice, got.SenderId)
		require.Empty(t, got.GroupId)
	})

	t.Run("sync range outside membership", func(t *testing.T) {
		rng := new(imv1.SyncRangeResponse)
		r.call(imv1.CommandType_CMD_SYNC_RANGE_REQ, &imv1.SyncRangeRequest{ConversationId: "single_bob_carol", StartSeq: 1}, rng)
		require.Equal(t, imv1.ErrorCode_ERR_PERMISSION_DENIED, rng.ErrorCode)
		r.call(imv1.CommandType_CMD_SYNC_RANGE_REQ, &imv1.SyncRangeRequest{ConversationId: aliceBob, StartSeq: 5, EndSeq: 2}, rng)
		require.Equal(t, imv1.ErrorCode_ERR_INVALID_PARAM, rng.ErrorCode)
	})

	// Only the one good message was stored.
	ctx := testCtx(t)
	for _, u := range []string{alice, bob, carol} {
		convs, err := srv.Store.UserConversations(ctx, u)
		require.NoError(t, err)
		if u == carol {
			require.Empty(t, convs)
			continue
		}
		require.Equal(t, []im.Conversation{{ID: aliceBob, MaxSeq: 1}}, convs)
	}
	msgs, err := srv.Store.Messages(ctx, aliceBob, 1, 0, 10)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	require.Equal(t, alice, msgs[0].SenderID)
}

func TestUnknownRecipient(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{CheckRecipients: true})
	_, err := srv.Accounts.Register(testCtx(t), "bobby", "correct horse", "Bob")
	require.NoError(t, err)
	a := srv.Dial(t, "tcp", alice)
	_, err = a.Send(testCtx(t), client.Outgoing{ReceiverID: "nobody", Type: im.TextMessage, Content: []byte("x")})
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, imv1.ErrorCode_ERR_USER_NOT_EXIST, ce.Code)
}

func TestFramingErrorsCloseTheConnection(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	good, err := wire.AppendFrame(nil, im.Frame{Command: imv1.CommandType_CMD_HEARTBEAT_REQ, Sequence: 1})
	require.NoError(t, err)
	withCRC := func(h []byte) []byte {
		// Recompute the checksum so that only the field under test is bad.
		var crc uint16 = 0xFFFF
		for _, b := range h[:14] {
			crc ^= uint16(b) << 8
			for i := 0; i < 8; i++ {
				if crc&0x8000 != 0 {
					crc = crc<<1 ^ 0x1021
				} else {
					crc <<= 1
				}
			}
		}
		binary.BigEndian.PutUint16(h[14:], crc)
		return h
	}
	mutate := func(f func(h []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name  string
		bytes []byte
	}{
		{"bad magic", mutate(func(h []byte) []byte { h[0] = 0x12; return withCRC(h) })},
		{"bad version", mutate(func(h []byte) []byte { h[2] = 9; return withCRC(h) })},
		{"bad checksum", mutate(func(h []byte) []byte { h[15] ^= 0xff; return h })},
		{"body over 1 MiB", mutate(func(h []byte) []byte { binary.BigEndian.PutUint32(h[10:], im.MaxFrameSize+1); return withCRC(h) })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, srv.TCPAddr)
			require.Zero(t, r.auth(alice, srv.Token(t, alice)).ErrorCode)
			r.writeBytes(tc.bytes)
			r.expectClosed()
		})
	}
	t.Run("websocket message over 1 MiB", func(t *testing.T) {
		c := srv.Dial(t, "websocket", alice)
		err := c.Request(testCtx(t), imv1.CommandType_CMD_SEND_MSG_REQ, &imv1.SendMessageRequest{Message: textTo(bob, "big", strings.Repeat("x", im.MaxFrameSize+10))}, new(imv1.SendMessageResponse))
		require.Error(t, err)
		<-c.Done()
	})
}

func TestDevicePolicies(t *testing.T) {
	kicked := func(t *testing.T, c *client.Client, reason int32) {
		t.Helper()
		p := nextPush(t, c)
		require.Equal(t, imv1.CommandType_CMD_KICK_OUT, p.Command)
		require.Equal(t, reason, p.Message.(*imv1.KickOutNotification).Reason)
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("kicked client still connected")
		}
		require.ErrorIs(t, c.Err(), client.ErrKicked)
	}
	dial := func(srv *imtest.Server, tr, platform string) *client.Client {
		return srv.DialWith(t, client.Options{Transport: tr, UserID: alice, Platform: platform})
	}

	t.Run("one session", func(t *testing.T) {
		srv := imtest.NewServer(t, imtest.Options{Config: im.Config{DevicePolicy: im.OneSession}})
		first := dial(srv, "tcp", "iOS")
		second := dial(srv, "websocket", "Android")
		kicked(t, first, 1)
		eventually(t, func() bool { return len(srv.Sessions(alice)) == 1 }, "kicked session still listed")
		require.Equal(t, "Android", srv.Sessions(alice)[0].Platform)
		noPush(t, second)
	})
	t.Run("one per platform", func(t *testing.T) {
		srv := imtest.NewServer(t, imtest.Options{Config: im.Config{DevicePolicy: im.OnePerPlatform}})
		ios := dial(srv, "tcp", "iOS")
		android := dial(srv, "tcp", "Android")
		dial(srv, "websocket", "iOS")
		kicked(t, ios, 1)
		noPush(t, android)
		eventually(t, func() bool { return len(srv.Sessions(alice)) == 2 }, "kicked session still listed")
	})
	t.Run("allow all, bounded", func(t *testing.T) {
		srv := imtest.NewServer(t, imtest.Options{Config: im.Config{MaxSessionsPerUser: 2}})
		oldest := dial(srv, "tcp", "iOS")
		second := dial(srv, "tcp", "iOS")
		dial(srv, "tcp", "iOS")
		kicked(t, oldest, 1)
		noPush(t, second)
		eventually(t, func() bool { return len(srv.Sessions(alice)) == 2 }, "kicked session still listed")
	})
	t.Run("KickSession", func(t *testing.T) {
		srv := imtest.NewServer(t, imtest.Options{})
		a1, a2 := dial(srv, "tcp", "iOS"), dial(srv, "websocket", "Android")
		var target string
		for _, si := range srv.Sessions(alice) {
			if si.Platform == "Android" {
				target = si.ID
			}
		}
		require.NotEmpty(t, target)
		require.True(t, srv.KickSession(target, "signed out remotely"))
		kicked(t, a2, 2)
		noPush(t, a1)
		eventually(t, func() bool { return len(srv.Sessions(alice)) == 1 }, "kicked session still listed")
		require.False(t, srv.KickSession(target, "again"), "already gone")
		require.False(t, srv.KickSession("no-such-session", "x"))
	})
	t.Run("Kick", func(t *testing.T) {
		srv := imtest.NewServer(t, imtest.Options{})
		a1, a2 := dial(srv, "tcp", "iOS"), dial(srv, "websocket", "iOS")
		b := srv.Dial(t, "tcp", bob)
		require.Equal(t, 2, srv.Kick(alice, "account suspended"))
		kicked(t, a1, 2)
		kicked(t, a2, 2)
		eventually(t, func() bool { return len(srv.Sessions(alice)) == 0 }, "kicked sessions still listed")
		require.Len(t, srv.Sessions(bob), 1)
		noPush(t, b)
	})
}

func TestTimeouts(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{AuthTimeout: 300 * time.Millisecond, IdleTimeout: 600 * time.Millisecond}})
	t.Run("no auth in time", func(t *testing.T) {
		r := dialRaw(t, srv.TCPAddr)
		r.expectClosed()
	})
	t.Run("idle", func(t *testing.T) {
		r := dialRaw(t, srv.TCPAddr)
		require.Zero(t, r.auth(alice, srv.Token(t, alice)).ErrorCode)
		r.expectClosed()
	})
	t.Run("heartbeats keep it open", func(t *testing.T) {
		r := dialRaw(t, srv.TCPAddr)
		require.Zero(t, r.auth(alice, srv.Token(t, alice)).ErrorCode)
		for i := 0; i < 15; i++ {
			time.Sleep(100 * time.Millisecond)
			r.alive()
		}
	})
	t.Run("websocket pings keep it open", func(t *testing.T) {
		c := srv.DialWith(t, client.Options{Transport: "websocket", UserID: alice, Heartbeat: 100 * time.Millisecond})
		time.Sleep(1500 * time.Millisecond)
		require.Equal(t, int64(1), sendText(t, c, bob, "still here").Seq)
	})
}

func TestShutdownAcknowledgesOnlyDurableSends(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{SendRate: -1}})
	a := srv.Dial(t, "tcp", alice)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		acked []string
	)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				rsp, err := a.Send(context.Background(), client.Outgoing{ReceiverID: bob, Type: im.TextMessage, Content: []byte("x")})
				if err != nil {
					return
				}
				mu.Lock()
				acked = append(acked, rsp.ServerMsgId)
				mu.Unlock()
			}
		}()
	}
	eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 50 }, "sends did not get going")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	wg.Wait()
	require.ErrorIs(t, srv.Health(ctx), im.ErrServerClosed)

	srv = srv.Restart(t)
	stored, err := srv.Store.Messages(testCtx(t), aliceBob, 1, 0, 100000)
	require.NoError(t, err)
	ids := map[string]bool{}
	for _, m := range stored {
		ids[m.ServerID] = true
	}
	for _, id := range acked {
		require.True(t, ids[id], "acknowledged message %s was not stored", id)
	}
	require.Equal(t, upTo(1, int64(len(stored))), func() []int64 {
		out := make([]int64, len(stored))
		for i, m := range stored {
			out[i] = m.Seq
		}
		return out
	}())
}

func TestAuthenticatorOutageIsNotABadToken(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{
		Authenticator: im.AuthenticatorFunc(func(_ context.Context, token string) (im.Identity, error) {
			if token == "flaky" {
				return im.Identity{}, errors.New("user database unreachable")
			}
			return im.Identity{}, im.ErrUnauthenticated
		}),
	}})
	r := dialRaw(t, srv.TCPAddr)
	rsp := r.auth(alice, "flaky")
	require.Equal(t, imv1.ErrorCode_ERR_UNKNOWN, rsp.ErrorCode, "the client should retry later, not drop its token")
	require.NotContains(t, rsp.ErrorMsg, "database", "internal details stay internal")
	r.expectClosed()

	r = dialRaw(t, srv.TCPAddr)
	require.Equal(t, imv1.ErrorCode_ERR_AUTH_FAILED, r.auth(alice, "bad").ErrorCode)
}

// A Kick reaches a connection whose token was being verified when it was
// called: revoking a user's tokens and kicking the user leaves no session
// that slipped in between.
func TestKickReachesSessionsStillAuthenticating(t *testing.T) {
	for _, tr := range []string{"tcp", "websocket"} {
		t.Run(tr, func(t *testing.T) {
			entered, release := make(chan struct{}, 1), make(chan struct{})
			srv := imtest.NewServer(t, imtest.Options{Config: im.Config{
				Authenticator: im.AuthenticatorFunc(func(ctx context.Context, token string) (im.Identity, error) {
					if token == "slow" {
						entered <- struct{}{}
						<-release
					}
					return im.Identity{UserID: alice}, nil
				}),
			}})
			type dialed struct {
				c   *client.Client
				err error
			}
			done := make(chan dialed, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c, err := client.Dial(ctx, client.Options{Transport: tr, Addr: srv.Addr(tr), UserID: alice, Token: "slow"})
				done <- dialed{c, err}
			}()
			<-entered
			require.Zero(t, srv.Kick(alice, "tokens revoked"), "nothing is registered yet")
			close(release)
			d := <-done
			if d.err == nil {
				t.Cleanup(func() { _ = d.c.Close() })
				select {
				case <-d.c.Done():
				case <-time.After(10 * time.Second):
					t.Fatal("a session authenticated during the kick is still connected")
				}
				require.ErrorIs(t, d.c.Err(), client.ErrKicked)
			}
			eventually(t, func() bool { return len(srv.Sessions(alice)) == 0 }, "the session is still registered")

			// A later connection is not affected by the old kick.
			c := srv.DialWith(t, client.Options{Transport: tr, UserID: alice, Token: "fresh"})
			require.NoError(t, c.Request(testCtx(t), imv1.CommandType_CMD_HEARTBEAT_REQ, &imv1.HeartbeatRequest{}, new(imv1.HeartbeatResponse)))
			require.Len(t, srv.Sessions(alice), 1)
		})
	}
}

// A KickToken reaches a connection verifying that token when it was
// called, and only that token: logging one device out leaves no session of
// it behind, and another device of the user verifying its own token at
// the same moment stays.
func TestKickTokenReachesSessionsStillAuthenticating(t *testing.T) {
	entered, release := make(chan struct{}, 2), make(chan struct{})
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{
		Authenticator: im.AuthenticatorFunc(func(ctx context.Context, token string) (im.Identity, error) {
			if token == "slow-out" || token == "slow-other" {
				entered <- struct{}{}
				<-release
			}
			return im.Identity{UserID: alice, TokenID: "id-" + token}, nil
		}),
	}})
	type dialed struct {
		c   *client.Client
		err error
	}
	dial := func(token string) chan dialed {
		done := make(chan dialed, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := client.Dial(ctx, client.Options{Transport: "tcp", Addr: srv.TCPAddr, UserID: alice, Token: token})
			done <- dialed{c, err}
		}()
		return done
	}
	out, other := dial("slow-out"), dial("slow-other")
	<-entered
	<-entered
	require.Zero(t, srv.KickToken(alice, "id-slow-out", "logged out"), "nothing is registered yet")
	close(release)
	d := <-out
	if d.err == nil {
		t.Cleanup(func() { _ = d.c.Close() })
		select {
		case <-d.c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("a session of the logged-out token authenticated during the kick is still connected")
		}
		require.ErrorIs(t, d.c.Err(), client.ErrKicked)
	}
	o := <-other
	require.NoError(t, o.err)
	t.Cleanup(func() { _ = o.c.Close() })
	require.NoError(t, o.c.Request(testCtx(t), imv1.CommandType_CMD_HEARTBEAT_REQ, &imv1.HeartbeatRequest{}, new(imv1.HeartbeatResponse)))
	eventually(t, func() bool { return len(srv.Sessions(alice)) == 1 }, "the logged-out token's session is still registered")
}
