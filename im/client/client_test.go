package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imv1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitTime = 5 * time.Second

var transports = []string{client.TransportTCP, client.TransportWebSocket}

// forTransports runs f once per transport.
func forTransports(t *testing.T, f func(t *testing.T, transport string)) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) { f(t, tr) })
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func options(t testing.TB, s *fakeServer, user string) client.Options {
	return client.Options{
		Transport: s.transport,
		Addr:      s.addr,
		UserID:    user,
		Token:     tokenFor(user),
		Logger:    testLogger(t),
	}
}

// dial connects user to s; edit, if not nil, changes the options first.
func dial(t testing.TB, s *fakeServer, user string, edit func(*client.Options)) *client.Client {
	t.Helper()
	o := options(t, s, user)
	if edit != nil {
		edit(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	c, err := client.Dial(ctx, o)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	t.Cleanup(cancel)
	return ctx
}

func nextPush(t testing.TB, c *client.Client) client.Push {
	t.Helper()
	select {
	case p, ok := <-c.Pushes():
		require.True(t, ok, "Pushes closed")
		return p
	case <-time.After(waitTime):
		t.Fatal("no push")
	}
	panic("unreachable")
}

func nextMessage(t testing.TB, c *client.Client) *imv1.MessageInfo {
	t.Helper()
	p := nextPush(t, c)
	require.Equal(t, imv1.CommandType_CMD_PUSH_MSG, p.Command)
	return p.Message.(*imv1.PushMessage).GetMessage()
}

func seqsOf(msgs []*imv1.MessageInfo) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

func seqRange(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func waitDone(t testing.TB, c *client.Client) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(waitTime):
		t.Fatal("client did not end")
	}
}

func TestDialAuth(t *testing.T) {
	forTransports(t, func(t *testing.T, tr string) {
		s := newFakeServer(t, tr)
		tests := []struct {
			name     string
			token    string
			wantCode imv1.ErrorCode
			wantIs   []error
		}{
			{"ok", tokenFor("alice"), imv1.ErrorCode_ERR_SUCCESS, nil},
			{"bad token", "nope", imv1.ErrorCode_ERR_AUTH_FAILED, []error{im.ErrUnauthenticated}},
			{"expired", "expired", imv1.ErrorCode_ERR_TOKEN_EXPIRED, []error{im.ErrTokenExpired, im.ErrUnauthenticated}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				o := options(t, s, "alice")
				o.Token = tt.token
				c, err := client.Dial(ctxT(t), o)
				if tt.wantCode == imv1.ErrorCode_ERR_SUCCESS {
					require.NoError(t, err)
					require.NoError(t, c.Close())
					require.ErrorIs(t, c.Err(), client.ErrClosed)
					return
				}
				require.Nil(t, c)
				var e *client.Error
				require.ErrorAs(t, err, &e)
				require.Equal(t, tt.wantCode, e.Code)
				for _, want := range tt.wantIs {
					require.ErrorIs(t, err, want)
				}
			})
		}
		if tr == client.TransportWebSocket {
			s.locked(func() {
				require.Equal(t, []string{tokenFor("alice"), "nope", "expired"}, s.urlTokens, "the token goes in the URL too")
			})
		}
		s.locked(func() { require.Equal(t, 1, s.auths["alice"]) })
	})
}

func TestDialBadOptions(t *testing.T) {
	ok := client.Options{Addr: "127.0.0.1:1", UserID: "alice", Token: "t"}
	tests := []struct {
		name string
		edit func(*client.Options)
	}{
		{"no addr", func(o *client.Options) { o.Addr = "" }},
		{"no token", func(o *client.Options) { o.Token = "" }},
		{"unknown transport", func(o *client.Options) { o.Transport = "udp" }},
		{"websocket without URL", func(o *client.Options) { o.Transport = client.TransportWebSocket }},
		{"websocket http URL", func(o *client.Options) { o.Transport = client.TransportWebSocket; o.Addr = "http://127.0.0.1:1/ws" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.edit(&o)
			c, err := client.Dial(ctxT(t), o)
			require.Nil(t, c)
			require.ErrorIs(t, err, im.ErrInvalidArgument)
		})
	}
}

// A client that knows only its token learns its user id from the server's
// AuthResponse, sends as that user and reconnects with it.
func TestDialLearnsUserID(t *testing.T) {
	forTransports(t, func(t *testing.T, tr string) {
		s := newFakeServer(t, tr)
		alice := dial(t, s, "alice", func(o *client.Options) { o.UserID = ""; o.Reconnect = true })
		require.Equal(t, "alice", alice.UserID())
		bob := dial(t, s, "bob", nil)
		require.Equal(t, "bob", bob.UserID(), "Options.UserID as given")

		s.locked(func() { s.dropOnSend = 1 }) // a reconnect, mid-send
		rsp, err := alice.Send(ctxT(t), client.Outgoing{ReceiverID: "bob", Content: []byte("hi")})
		require.NoError(t, err)
		m := nextMessage(t, bob)
		require.Equal(t, "alice", m.SenderId)
		require.Equal(t, im.SingleConversationID("alice", "bob"), m.ConversationId)
		require.Equal(t, int64(1), rsp.Seq)
		s.locked(func() {
			require.Equal(t, []string{"", "bob", "alice"}, s.authIDs, "the reconnect names the user learnt")
		})
	})
}

// A server that does not name the user in its AuthResponse leaves a client
// without Options.UserID unable to go on: Dial says so and closes.
func TestDialLearnsUserIDFromOldServer(t *testing.T) {
	s := newFakeServer(t, client.TransportTCP)
	s.locked(func() { s.noAuthID = true })
	o := options(t, s, "alice")
	o.UserID = ""
	c, err := client.Dial(ctxT(t), o)
	require.Nil(t, c)
	require.ErrorIs(t, err, im.ErrInvalidArgument)
	require.ErrorContains(t, err, "set Options.UserID")

	o.UserID = "alice"
	c, err = client.Dial(ctxT(t), o)
	require.NoError(t, err, "with Options.UserID the answer need not name the user")
	require.Equal(t, "alice", c.UserID())
	require.NoError(t, c.Close())
}

func TestDialRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	for _, o := range []client.Options{
		{Addr: addr, UserID: "alice", Token: "t"},
		{Transport: client.TransportWebSocket, Addr: "ws://" + addr + "/ws", UserID: "alice", Token: "t"},
	} {
		t.Run(o.Transport, func(t *testing.T) {
			c, err := client.Dial(ctxT(t), o)
			require.Nil(t, c)
			require.ErrorIs(t, err, client.ErrConnLost)
		})
	}
}

func TestSendAndPush(t *testing.T) {
	forTransports(t, func(t *testing.T, tr string) {
		s := newFakeServer(t, tr)
		alice := dial(t, s, "alice", nil)
		bob := dial(t, s, "bob", nil)
		conv := im.SingleConversationID("alice", "bob")

		rsp, err := alice.Send(ctxT(t), client.Outgoing{ReceiverID: "bob", Type: im.TextMessage, Content: []byte("hi")})
		require.NoError(t, err)
		require.Equal(t, int64(1), rsp.Seq)
		require.Len(t, rsp.ClientMsgId, 32, "a generated 128-bit hex id")

		m := nextMessage(t, bob)
		require.Equal(t, "hi", string(m.Content))
		require.Equal(t, "alice", m.SenderId)
		require.Equal(t, conv, m.ConversationId)
		require.Equal(t, rsp.ClientMsgId, m.ClientMsgId)
		require.Equal(t, int64(1), bob.Cursor(conv))
		require.Equal(t, int64(1), alice.Cursor(conv), "a Send moves the sender's cursor")

		rsp, err = bob.Send(ctxT(t), client.Outgoing{ConversationID: conv, Type: im.TextMessage, Content: []byte("hello"), ClientMsgID: "bob-1"})
		require.NoError(t, err)
		require.Equal(t, int64(2), rsp.Seq)
		require.Equal(t, "bob-1", rsp.ClientMsgId)
		m = nextMessage(t, alice)
		require.Equal(t, "hello", string(m.Content))
		require.Equal(t, int64(2), alice.Cursor(conv))
		require.Equal(t, map[string]int64{conv: 2}, bob.Cursors())

		// Neither got its own message back, by push or by sync.
		require.Empty(t, alice.Pushes())
		require.Empty(t, bob.Pushes())
		msgs, err := alice.SyncAll(ctxT(t))
		require.NoError(t, err)
		require.Empty(t, msgs)
	})
}

func TestConcurrentSends(t *testing.T) {
	forTransports(t, func(t *testing.T, tr string) {
		s := newFakeServer(t, tr)
		alice := dial(t, s, "alice", nil)
		bob := dial(t, s, "bob", nil)
		conv := im.SingleConversationID("alice", "bob")
		const senders, each = 8, 25

		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			seqs []int64
		)
		for g := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					rsp, err := alice.Send(context.Background(), client.Outgoing{ReceiverID: "bob", Content: []byte(fmt.Sprintf("%d/%d", g, i))})
					if !errors.Is(err, nil) {
						t.Error(err)
						return
					}
					mu.Lock()
					seqs = append(seqs, rsp.Seq)
					mu.Unlock()
				}
			}()
		}
		var got []int64
		for range senders * each {
			got = append(got, nextMessage(t, bob).Seq)
		}
		wg.Wait()
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
		require.Equal(t, seqRange(1, senders*each), seqs)
		require.Equal(t, seqRange(1, senders*each), got, "pushes in seq order, each once")
		require.Equal(t, int64(senders*each), alice.Cursor(conv))
		require.Equal(t, int64(senders*each), bob.Cursor(conv))
	})
}

func TestGapRepair(t *testing.T) {
	forTransports(t, func(t *testing.T, tr string) {
		s := newFakeServer(t, tr)
		bob := dial(t, s, "bob", nil)
		conv := im.SingleConversationID("alice", "bob")
		for i := range 6 {
			s.store(conv, "alice", fmt.Sprint("m", i+1))
		}

		s.push("bob", conv, 1, 5)
		require.Equal(t, int64(1), nextMessage(t, bob).Seq)
		require.Equal(t, int64(5), nextMessage(t, bob).Seq, "a push beyond a gap is delivered at once")
		for _, want := range []int64{2, 3, 4} {
			m := nextMessage(t, bob)
			require.Equal(t, want, m.Seq, "then the gap, repaired by SyncRange")
			require.Equal(t, conv, m.ConversationId)
			require.Equal(t, fmt.Sprint("m", want), string(m.Content))
		}
		require.Eventually(t, func() bool { return bob.Cursor(conv) == 5 }, waitTime, time.Millisecond)

		// Duplicates are dropped: the next thing bob sees is seq 6.
		s.push("bob", conv, 3, 5, 1, 6, 6)
		require.Equal(t, int64(6), nextMessage(t, bob).Seq)
		s.kick("bob", 1) // a marker: nothing may come before it
		require.Equal(t, imv1.CommandType_CMD_KICK_OUT, nextPush(t, bob).Command)
		require.Equal(t, int64(6), bob.Cursor(conv))
	})
}

func TestBatchMessagesPush(t *testing.T) {
	s := newFakeServer(t, client.TransportTCP)
	bob := dial(t, s, "bob", nil)
	conv := im.SingleConversationID("alice", "bob")
	batch := &imv1.BatchMessages{}
	for range 3 {
		batch.Messages = append(batch.Messages, &imv1.PushMessage{Message: s.store(conv, "alice", "x")})
	}
	batch.Messages = append(batch.Messages, batch.Messages[1]) // a duplicate inside the batch
	s.pushTo("bob", nil, imv1.CommandType_CMD_BATCH_MSG, batch)
	for _, want := range []int64{1, 2, 3} {
		require.Equal(t, want, nextMessage(t, bob).Seq)
	}
	s.kick("bob", 1)
	require.Equal(t, imv1.CommandType_CMD_KICK_OUT, nextPush(t, bob).Command, "the duplicate was dropped")
}

func TestSyncAll(t *testing.T) {
	forTransports(t, func(t *testing.T, tr string) {
		s := newFakeServer(t, tr)
		long := im.SingleConversationID("alice", "bob")
		short := im.SingleConversationID("bob", "carol")
		other := im.SingleConversationID("alice", "carol") // bob is no member
		for range 250 {
			s.store(long, "alice", "x")
		}
		for range 3 {
			s.store(short, "carol", "y")
		}
		s.store(other, "alice", "z")

		bob := dial(t, s, "bob", nil)
		msgs, err := bob.SyncAll(ctxT(t))
		require.NoError(t, err)
		byConv := map[string][]*imv1.MessageInfo{}
		for _, m := range msgs {
			byConv[m.ConversationId] = append(byConv[m.ConversationId], m)
		}
		require.Len(t, byConv, 2)
		require.Equal(t, seqRange(1, 250), seqsOf(byConv[long]), "BatchSync's page, then SyncRange pages")
		require.Equal(t, seqRange(1, 3), seqsOf(byConv[short]))
		require.Equal(t, map[string]int64{long: 250, short: 3}, bob.Cursors())

		msgs, err = bob.SyncAll(ctxT(t))
		require.NoError(t, err)
		require.Empty(t, msgs, "nothing is returned twice")

		s.store(long, "alice", "new")
		msgs, err = bob.SyncAll(ctxT(t))
		require.NoError(t, err)
		require.Equal(t, []int64{251}, seqsOf(msgs))
		require.Equal(t, "new", string(msgs[0].Content))

		// A client that starts from known cursors gets only what is newer.
		bob2 := dial(t, s, "bob", func(o *client.Options) { o.Cursors = map[string]int64{long: 240} })
		msgs, err = bob2.SyncAll(ctxT(t))
		require.NoError(t, err)
		byConv = map[string][]*imv1.MessageInfo{}
		for _, m := range msgs {
			byConv[m.ConversationId] = append(byConv[m.ConversationId], m)
		}
		require.Equal(t, seqRange(241, 251), seqsOf(byConv[long]))
		require.Equal(t, seqRange(1, 3), seqsOf(byConv[short]))
		require.Len(t, msgs, 14)
		require.Empty(t, bob2.Pushes())
	})
}

func TestRawSyncLeavesCursors(t *testing.T) {
	s := newFakeServer(t, client.TransportTCP)
	conv := im.SingleConversationID("alice", "bob")
	for range 5 {
		s.store(conv, "alice", "x")
	}
	bob := dial(t, s, "bob", nil)

	bs, err := bob.BatchSync(ctxT(t), map[string]int64{conv: 2}, 2)
	require.NoError(t, err)
	require.Len(t, bs.ConversationMessages, 1)
	cm := bs.ConversationMessages[0]
	require.Equal(t, []int64{3, 4}, seqsOf(cm.Messages))
	require.True(t, cm.HasMore)

	sr, err := bob.SyncRange(ctxT(t), conv, 2, 4, 10)
	require.NoError(t, err)
	require.Equal(t, []int64{2, 3, 4}, seqsOf(sr.Messages))
	require.Equal(t, int64(0), bob.Cursor(conv))

	_, err = bob.SyncRange(ctxT(t), im.SingleConversationID("alice", "carol"), 1, 4, 10)
	require.ErrorIs(t, err, im.ErrPermissionDenied)
	_, err = bob.SyncRange(ctxT(t), conv, 4, 2, 10)
	var e *client.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, imv1.ErrorCode_ERR_INVALID_PARAM, e.Code)

	msgs, err := bob.SyncAll(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, seqRange(1, 5), seqsOf(msgs), "the raw calls held nothing back from SyncAll")
}

func TestOwnMessagesAcrossDevices(t *testing.T) {
	s := newFakeServer(t, client.TransportTCP)
	conv := im.SingleConversationID("alice", "bob")
	phone := dial(t, s, "alice", nil)
	laptop := dial(t, s, "alice", nil)
	for range 3 {
		_, err := phone.Send(ctxT(t), client.Outgoing{ConversationID: conv, Content: []byte("x")})
		require.NoError(t, err)
	}
	for _, want := range []int64{1, 2, 3} {
		m := nextMessage(t, laptop)
		require.Equal(t, want, m.Seq, "the sender's other device gets the message")
		require.Equal(t, "alice", m.SenderId)
	}
	msgs, err := phone.SyncAll(ctxT(t))
	require.NoError(t, err)
	require.Empty(t, msgs)
	require.Empty(t, phone.Pushes())

	// A third device that syncs sees them: they are not its own sends.
	tablet := dial(t, s, "alice", nil)
	msgs, err = tablet.SyncAll(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2, 3}, seqsOf(msgs))
}

// TestOwnSendBeforeAck covers a push beyond the client's own Send arriving
// before that Send's acknowledgement: the gap repair fetches the client's
// own message, which must not be delivered.
func TestOwnSendBeforeAck(t *testing.T) {
	s := newFakeServer(t, client.TransportTCP)
	conv := im.SingleConversationID("alice", "bob")
	alice := dial(t, s, "alice", nil)
	bob := dial(t, s, "bob", nil)

	hold := make(chan struct{})
	s.locked(func() { s.holdAck = hold })
	type result struct {
		seq int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		rsp, err := alice.Send(context.Background(), client.Outgoing{ConversationID: conv, Content: []byte("mine")})
		done <- result{rsp.GetSeq(), err}
	}()
	require.Equal(t, int64(1), nextMessage(t, bob).Seq)
	s.locked(func() { s.holdAck = nil })
	_, err := bob.Send(ctxT(t), client.Outgoing{ConversationID: conv, Content: []byte("theirs")})
	require.NoError(t, err)

	m := nextMessage(t, alice)
	require.Equal(t, int64(2), m.Seq)
	require.Equal(t, "theirs", string(m.Content))
	// Let the repair of seq 1 happen before the ack arrives.
	require.Eventually(t, func() bool { return alice.Cursor(conv) == 2 }, waitTime, time.Millisecond)
	close(hold)
	r := <-done
	require.NoError(t, r.err)
	require.Equal(t, int64(1), r.seq)

	s.kick("alice", 1)
	require.Equal(t, imv1.CommandType_CMD_KICK_OUT, nextPush(t, alice).Command, "alice's own message was not delivered")
}

func TestKickOut(t *testing.T) {
	forTransports(t, func(t *testing.T, tr string) {
		s := newFakeServer(t, tr)
		bob := dial(t, s, "bob", func(o *client.Options) { o.Reconnect = true })
		require.NoError(t, bob.Err())
		s.kick("bob", 1)

		p := nextPush(t, bob)
		require.Equal(t, imv1.CommandType_CMD_KICK_OUT, p.Command)
		require.Equal(t, int32(1), p.Message.(*imv1.KickOutNotification).Reason)
		waitDone(t, bob)
		require.ErrorIs(t, bob.Err(), client.ErrKicked)
		_, ok := <-bob.Pushes()
		require.False(t, ok, "Pushes is closed")

		_, err := bob.Send(ctxT(t), client.Outgoing{ReceiverID: "alice"})
		require.ErrorIs(t, err, client.ErrKicked)
		s.locked(func() { require.Equal(t, 1, s.auths["bob"], "no reconnect after KICK_OUT") })
		require.NoError(t, bob.Close())
		require.ErrorIs(t, bob.Err(), client.ErrKicked, "Close keeps the reason")
	})
}

func TestReconnectResendsSameID(t *testing.T) {
	forTransports(t, func(t *testing.T, tr string) {
		s := newFakeServer(t, tr)
		alice := dial(t, s, "alice", func(o *client.Options) { o.Reconnect = true })
		bob := dial(t, s, "bob", nil)
		conv := im.SingleConversationID("alice", "bob")
		s.locked(func() { s.dropOnSend = 1 })

		rsp, err := alice.Send(ctxT(t), client.Outgoing{ReceiverID: "bob", Content: []byte("once"), ClientMsgID: "c1"})
		require.NoError(t, err)
		require.Equal(t, int64(1), rsp.Seq)
		require.Equal(t, "c1", rsp.ClientMsgId)
		s.locked(func() {
			require.Equal(t, []string{"c1", "c1"}, s.sendIDs, "resent with the same client_msg_id")
			require.Len(t, s.msgs[conv], 1, "stored once")
			require.Equal(t, 2, s.auths["alice"])
		})
		require.Equal(t, int64(1), nextMessage(t, bob).Seq)
		require.Equal(t, int64(1), alice.Cursor(conv))
		require.NoError(t, alice.Err())

		// The connection works after the reconnect.
		rsp, err = alice.Send(ctxT(t), client.Outgoing{ReceiverID: "bob", Content: []byte("again")})
		require.NoError(t, err)
		require.Equal(t, int64(2), rsp.Seq)
		require.Equal(t, int64(2), nextMessage(t, bob).Seq)
		require.Empty(t, alice.Pushes(), "the sync after reconnecting did not deliver alice's own message")
	})
}

func TestReconnectCatchesUp(t *testing.T) {
	forTransports(t, func(t *testing.T, tr string) {
		s := newFakeServer(t, tr)
		conv := im.SingleConversationID("alice", "bob")
		s.store(conv, "alice", "before")
		bob := dial(t, s, "bob", func(o *client.Options) { o.Reconnect = true })
		msgs, err := bob.SyncAll(ctxT(t))
		require.NoError(t, err)
		require.Equal(t, []int64{1}, seqsOf(msgs))

		// Messages that were never pushed, as if they came while bob was away.
		for range 3 {
			s.store(conv, "alice", "missed")
		}
		s.drop("bob")
		for _, want := range []int64{2, 3, 4} {
			m := nextMessage(t, bob)
			require.Equal(t, want, m.Seq)
			require.Equal(t, "missed", string(m.Content))
		}
		require.Equal(t, int64(4), bob.Cursor(conv))
		s.locked(func() { require.Equal(t, 2, s.auths["bob"]) })
		require.NoError(t, bob.Err())
	})
}

func TestReconnectRefused(t *testing.T) {
	s := newFakeServer(t, client.TransportTCP)
	bob := dial(t, s, "bob", func(o *client.Options) { o.Reconnect = true })
	s.locked(func() { s.refused["bob"] = true })
	s.drop("bob")
	waitDone(t, bob)
	require.ErrorIs(t, bob.Err(), im.ErrUnauthenticated)
}

func TestConnLostWithoutReconnect(t *testing.T) {
	forTransports(t, func(t *testing.T, tr string) {
		s := newFakeServer(t, tr)
		bob := dial(t, s, "bob", nil)
		s.drop("bob")
		waitDone(t, bob)
		require.ErrorIs(t, bob.Err(), client.ErrConnLost)
		_, ok := <-bob.Pushes()
		require.False(t, ok)
		_, err := bob.Send(ctxT(t), client.Outgoing{ReceiverID: "alice"})
		require.ErrorIs(t, err, client.ErrConnLost)
		require.ErrorIs(t, bob.Request(ctxT(t), imv1.CommandType_CMD_HEARTBEAT_REQ, nil, nil), client.ErrConnLost)
	})
}

func TestSendRetriesOnTimeout(t *testing.T) {
	s := newFakeServer(t, client.TransportTCP)
	alice := dial(t, s, "alice", func(o *client.Options) { o.RequestTimeout = 200 * time.Millisecond })
	conv := im.SingleConversationID("alice", "bob")

	s.locked(func() { s.ignoreSend = 1 })
	rsp, err := alice.Send(ctxT(t), client.Outgoing{ReceiverID: "bob", Content: []byte("x"), ClientMsgID: "c1"})
	require.NoError(t, err)
	require.Equal(t, int64(1), rsp.Seq)

	s.locked(func() { s.ignoreSend = 3 })
	_, err = alice.Send(ctxT(t), client.Outgoing{ReceiverID: "bob", Content: []byte("y"), ClientMsgID: "c2"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	s.locked(func() {
		require.Equal(t, []string{"c1", "c1", "c2", "c2", "c2"}, s.sendIDs)
		require.Len(t, s.msgs[conv], 2)
	})
	require.NoError(t, alice.Err(), "a timeout does not end the client")
}

func TestSendErrors(t *testing.T) {
	s := newFakeServer(t, client.TransportTCP)
	alice := dial(t, s, "alice", nil)
	tests := []struct {
		name     string
		m        client.Outgoing
		wantIs   error
		wantCode imv1.ErrorCode
	}{
		{"no recipient", client.Outgoing{Content: []byte("x")}, im.ErrInvalidArgument, imv1.ErrorCode_ERR_SUCCESS},
		{"too large", client.Outgoing{ReceiverID: "bob", Content: make([]byte, 101)}, im.ErrTooLarge, imv1.ErrorCode_ERR_MESSAGE_TOO_LARGE},
		{"not a member", client.Outgoing{ConversationID: "single_bob_carol", Content: []byte("x")}, im.ErrPermissionDenied, imv1.ErrorCode_ERR_PERMISSION_DENIED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rsp, err := alice.Send(ctxT(t), tt.m)
			require.Nil(t, rsp)
			require.ErrorIs(t, err, tt.wantIs)
			var e *client.Error
			if tt.wantCode == imv1.ErrorCode_ERR_SUCCESS {
				require.False(t, errors.As(err, &e), "refused before reaching the server")
				return
			}
			require.ErrorAs(t, err, &e)
			require.Equal(t, tt.wantCode, e.Code)
			require.NotEmpty(t, e.Msg)
		})
	}
	s.locked(func() { require.Len(t, s.sendIDs, 2, "refused sends are not retried") })
	require.Equal(t, int64(0), alice.Cursor("single_bob_carol"))
}

func TestRequest(t *testing.T) {
	s := newFakeServer(t, client.TransportTCP)
	alice := dial(t, s, "alice", nil)

	var hb imv1.HeartbeatResponse
	require.NoError(t, alice.Request(ctxT(t), imv1.CommandType_CMD_HEARTBEAT_REQ, &imv1.HeartbeatRequest{ClientTime: 1}, &hb))
	require.Positive(t, hb.ServerTime)

	err := alice.Request(ctxT(t), imv1.CommandType_CMD_ONLINE_STATUS_REQ, nil, nil)
	var e *client.Error
	require.ErrorAs(t, err, &e, "ERROR_RSP fails the request")
	require.Equal(t, imv1.ErrorCode_ERR_UNKNOWN, e.Code)
	require.Equal(t, "unsupported command", e.Msg)
	require.NoError(t, errors.Unwrap(e))

	err = alice.Request(ctxT(t), imv1.CommandType_CMD_HEARTBEAT_REQ, nil, new(imv1.AuthResponse))
	require.ErrorContains(t, err, "answered with CMD_HEARTBEAT_RSP")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, alice.Request(ctx, imv1.CommandType_CMD_HEARTBEAT_REQ, nil, nil), context.Canceled)
}

func TestSendFrame(t *testing.T) {
	forTransports(t, func(t *testing.T, tr string) {
		s := newFakeServer(t, tr)
		alice := dial(t, s, "alice", nil)
		bob := dial(t, s, "bob", nil)
		conv := im.SingleConversationID("alice", "bob")

		require.NoError(t, bob.SendFrame(ctxT(t), imv1.CommandType_CMD_MSG_ACK, &imv1.MessageAck{ServerMsgId: "m1", Seq: 1}))
		require.NoError(t, bob.SendFrame(ctxT(t), imv1.CommandType_CMD_TYPING_STATUS_REQ, &imv1.TypingStatusRequest{ConversationId: conv, Status: 1}))
		p := nextPush(t, alice)
		require.Equal(t, imv1.CommandType_CMD_TYPING_STATUS_PUSH, p.Command)
		require.Equal(t, "bob", p.Message.(*imv1.TypingStatusPush).UserId)
		s.locked(func() {
			require.Len(t, s.msgAcks, 1)
			require.Equal(t, "m1", s.msgAcks[0].ServerMsgId)
		})
	})
}

func TestOnPush(t *testing.T) {
	s := newFakeServer(t, client.TransportTCP)
	got := make(chan client.Push, 10)
	bob := dial(t, s, "bob", func(o *client.Options) { o.OnPush = func(p client.Push) { got <- p } })
	require.Nil(t, bob.Pushes())
	alice := dial(t, s, "alice", nil)
	_, err := alice.Send(ctxT(t), client.Outgoing{ReceiverID: "bob", Content: []byte("cb")})
	require.NoError(t, err)
	select {
	case p := <-got:
		require.Equal(t, "cb", string(p.Message.(*imv1.PushMessage).Message.Content))
	case <-time.After(waitTime):
		t.Fatal("OnPush not called")
	}
}

func TestHeartbeat(t *testing.T) {
	forTransports(t, func(t *testing.T, tr string) {
		s := newFakeServer(t, tr)
		dial(t, s, "alice", func(o *client.Options) { o.Heartbeat = 10 * time.Millisecond })
		require.Eventually(t, func() bool {
			n := 0
			s.locked(func() { n = s.heartbeat + s.pings })
			return n >= 3
		}, waitTime, time.Millisecond)
	})
}

func TestHeartbeatTimeoutReconnects(t *testing.T) {
	s := newFakeServer(t, client.TransportTCP)
	s.locked(func() { s.ignoreHeartbeat = true })
	alice := dial(t, s, "alice", func(o *client.Options) {
		o.Heartbeat = 20 * time.Millisecond
		o.RequestTimeout = 100 * time.Millisecond
		o.Reconnect = true
	})
	require.Eventually(t, func() bool {
		n := 0
		s.locked(func() { n = s.auths["alice"] })
		return n >= 2
	}, waitTime, time.Millisecond)
	s.locked(func() { s.ignoreHeartbeat = false })
	_, err := alice.Send(ctxT(t), client.Outgoing{ReceiverID: "bob", Content: []byte("x")})
	require.NoError(t, err)
}

func TestCloseWithUndrainedPushes(t *testing.T) {
	s := newFakeServer(t, client.TransportTCP)
	conv := im.SingleConversationID("alice", "bob")
	bob := dial(t, s, "bob", func(o *client.Options) { o.PushBuffer = 1 })
	for range 20 {
		s.store(conv, "alice", "x")
	}
	s.push("bob", conv, seqRange(1, 20)...)
	require.Eventually(t, func() bool { return len(bob.Pushes()) == 1 }, waitTime, time.Millisecond)

	require.NoError(t, bob.Close(), "Close does not wait for the consumer")
	require.NoError(t, bob.Close())
	require.ErrorIs(t, bob.Err(), client.ErrClosed)
	_, err := bob.Send(ctxT(t), client.Outgoing{ReceiverID: "alice"})
	require.ErrorIs(t, err, client.ErrClosed)
	_, err = bob.SyncAll(ctxT(t))
	require.ErrorIs(t, err, client.ErrClosed)
}

func TestCloseFailsPendingRequests(t *testing.T) {
	s := newFakeServer(t, client.TransportTCP)
	alice := dial(t, s, "alice", nil)
	s.locked(func() { s.ignoreSend = 1 })
	errc := make(chan error, 1)
	go func() {
		_, err := alice.Send(context.Background(), client.Outgoing{ReceiverID: "bob", Content: []byte("x")})
		errc <- err
	}()
	require.Eventually(t, func() bool {
		n := 0
		s.locked(func() { n = len(s.sendIDs) })
		return n == 1
	}, waitTime, time.Millisecond)
	require.NoError(t, alice.Close())
	require.ErrorIs(t, <-errc, client.ErrClosed)
}

func TestErrorSentinels(t *testing.T) {
	tests := []struct {
		code imv1.ErrorCode
		want error
	}{
		{imv1.ErrorCode_ERR_INVALID_PARAM, im.ErrInvalidArgument},
		{imv1.ErrorCode_ERR_AUTH_FAILED, im.ErrUnauthenticated},
		{imv1.ErrorCode_ERR_TOKEN_EXPIRED, im.ErrTokenExpired},
		{imv1.ErrorCode_ERR_PERMISSION_DENIED, im.ErrPermissionDenied},
		{imv1.ErrorCode_ERR_USER_NOT_EXIST, im.ErrNotFound},
		{imv1.ErrorCode_ERR_CONVERSATION_NOT_EXIST, im.ErrNotFound},
		{imv1.ErrorCode_ERR_MESSAGE_TOO_LARGE, im.ErrTooLarge},
		{imv1.ErrorCode_ERR_SEND_TOO_FAST, im.ErrRateLimited},
		{imv1.ErrorCode_ERR_UNKNOWN, nil},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			e := &client.Error{Code: tt.code, Msg: "m"}
			require.Equal(t, tt.want, errors.Unwrap(e))
			require.Contains(t, e.Error(), tt.code.String())
			if tt.want != nil {
				require.ErrorIs(t, fmt.Errorf("wrapped: %w", e), tt.want)
			}
		})
	}
	require.ErrorIs(t, &client.Error{Code: imv1.ErrorCode_ERR_TOKEN_EXPIRED}, im.ErrUnauthenticated)
	require.NotErrorIs(t, &client.Error{Code: imv1.ErrorCode_ERR_AUTH_FAILED}, im.ErrTokenExpired)
}

func TestNewClientMsgID(t *testing.T) {
	a, b := client.NewClientMsgID(), client.NewClientMsgID()
	require.Len(t, a, 32)
	require.Regexp(t, "^[0-9a-f]{32}$", a)
	require.NotEqual(t, a, b)
}

// A server may check ?token= before upgrading and answer 401; that is the
// same refusal as a failed AuthRequest.
func TestWebSocketHandshakeRefused(t *testing.T) {
	tests := []struct {
		body     string
		wantCode imv1.ErrorCode
		wantIs   error
	}{
		{"authentication failed", imv1.ErrorCode_ERR_AUTH_FAILED, im.ErrUnauthenticated},
		{"token expired", imv1.ErrorCode_ERR_TOKEN_EXPIRED, im.ErrTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, tt.body, http.StatusUnauthorized)
			}))
			defer hs.Close()
			c, err := client.Dial(ctxT(t), client.Options{
				Transport: client.TransportWebSocket,
				Addr:      "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws",
				UserID:    "alice",
				Token:     "t",
			})
			require.Nil(t, c)
			var e *client.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tt.wantCode, e.Code)
			require.Equal(t, tt.body, e.Msg)
			require.ErrorIs(t, err, tt.wantIs)
		})
	}

	// Any other refusal is a failed connection.
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	defer hs.Close()
	_, err := client.Dial(ctxT(t), client.Options{Transport: client.TransportWebSocket, Addr: "ws" + strings.TrimPrefix(hs.URL, "http"), UserID: "alice", Token: "t"})
	require.ErrorIs(t, err, client.ErrConnLost)
	require.NotErrorIs(t, err, im.ErrUnauthenticated)
}
