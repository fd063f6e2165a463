package im_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/store/bolt"
	"github.com/stretchr/testify/require"
)

func TestPushReachesEveryDeviceButTheSendingOne(t *testing.T) {
	for _, tc := range []struct{ sender, aliceOther, bob1, bob2 string }{
		{"tcp", "websocket", "websocket", "tcp"},
		{"websocket", "tcp", "tcp", "websocket"},
	} {
		t.Run("sender over "+tc.sender, func(t *testing.T) {
			srv := imtest.NewServer(t, imtest.Options{})
			a1 := srv.Dial(t, tc.sender, alice)
			a2 := srv.Dial(t, tc.aliceOther, alice)
			b1 := srv.Dial(t, tc.bob1, bob)
			b2 := srv.Dial(t, tc.bob2, bob)

			for i := 1; i <= 3; i++ {
				rsp := sendText(t, a1, bob, content(i))
				require.Equal(t, int64(i), rsp.Seq, "acks carry consecutive seqs")
				require.NotEmpty(t, rsp.ServerMsgId)
				require.NotZero(t, rsp.ServerTime)
			}
			for _, c := range []*client.Client{b1, b2, a2} {
				for i := 1; i <= 3; i++ {
					m := nextMessage(t, c)
					require.Equal(t, int64(i), m.Seq)
					require.Equal(t, content(i), string(m.Content))
					require.Equal(t, alice, m.SenderId)
					require.Equal(t, bob, m.ReceiverId)
					require.Equal(t, aliceBob, m.ConversationId)
					require.Equal(t, int32(im.SingleConversation), m.ConversationType)
					require.Equal(t, int32(im.TextMessage), m.MessageType)
				}
			}
			noPush(t, a1)

			// And back: bob's sending connection gets nothing, everyone
			// else gets seq 4.
			require.Equal(t, int64(4), sendText(t, b1, alice, "reply").Seq)
			for _, c := range []*client.Client{a1, a2, b2} {
				m := nextMessage(t, c)
				require.Equal(t, int64(4), m.Seq)
				require.Equal(t, bob, m.SenderId)
			}
			noPush(t, b1)
		})
	}
}

func TestOfflineRecipientRecoversEverythingBySync(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	a := srv.Dial(t, "tcp", alice)
	for i := 1; i <= 250; i++ {
		sendText(t, a, bob, content(i))
	}

	t.Run("batch sync then range pulls", func(t *testing.T) {
		b := srv.Dial(t, "tcp", bob)
		ctx := testCtx(t)
		rsp, err := b.BatchSync(ctx, nil, 100)
		require.NoError(t, err)
		require.Len(t, rsp.ConversationMessages, 1)
		cm := rsp.ConversationMessages[0]
		require.Equal(t, aliceBob, cm.ConversationId)
		require.Equal(t, upTo(1, 100), seqs(cm.Messages))
		require.True(t, cm.HasMore)
		require.Equal(t, int64(100), cm.SyncedSeq)
		require.Equal(t, int64(100), cm.MaxSeq, "a truncated page reports max_seq = synced_seq")
		require.Equal(t, int32(100), rsp.TotalMessageCount)

		got := cm.Messages
		next := cm.SyncedSeq + 1
		for {
			r, err := b.SyncRange(ctx, aliceBob, next, 0, 100)
			require.NoError(t, err)
			got = append(got, r.Messages...)
			if !r.HasMore {
				break
			}
			require.Equal(t, next, r.StartSeq)
			next = r.EndSeq + 1
		}
		require.Equal(t, upTo(1, 250), seqs(got), "all 250, once each, in order")
		for i, m := range got {
			require.Equal(t, content(i+1), string(m.Content))
		}

		// Up to date: nothing more to sync.
		rsp, err = b.BatchSync(ctx, map[string]int64{aliceBob: 250}, 100)
		require.NoError(t, err)
		require.Empty(t, rsp.ConversationMessages)
	})

	t.Run("client SyncAll over websocket", func(t *testing.T) {
		b := srv.Dial(t, "websocket", bob)
		got, err := b.SyncAll(testCtx(t))
		require.NoError(t, err)
		require.Equal(t, upTo(1, 250), seqs(got))
		again, err := b.SyncAll(testCtx(t))
		require.NoError(t, err)
		require.Empty(t, again)
	})
}

func TestResendWithSameClientMsgIDIsStoredOnce(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	b := srv.Dial(t, "tcp", bob)

	r1 := dialRaw(t, srv.TCPAddr)
	require.Zero(t, r1.auth(alice, srv.Token(t, alice)).ErrorCode)
	first := r1.send(textTo(bob, "cmid-1", "hello"))
	require.Zero(t, first.ErrorCode)
	require.NoError(t, r1.nc.Close()) // the connection drops before the client saw… anything

	r2 := dialRaw(t, srv.TCPAddr)
	require.Zero(t, r2.auth(alice, srv.Token(t, alice)).ErrorCode)
	again := r2.send(textTo(bob, "cmid-1", "hello"))
	require.Zero(t, again.ErrorCode)
	require.Equal(t, first.ServerMsgId, again.ServerMsgId)
	require.Equal(t, first.Seq, again.Seq)
	require.Equal(t, first.ServerTime, again.ServerTime)
	require.Equal(t, "cmid-1", again.ClientMsgId)

	reused := r2.send(textTo(bob, "cmid-1", "something else"))
	require.Equal(t, imv1.ErrorCode_ERR_INVALID_PARAM, reused.ErrorCode)
	require.Equal(t, "cmid-1", reused.ClientMsgId)

	msgs, err := srv.Store.Messages(testCtx(t), aliceBob, 1, 0, 10)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	require.Equal(t, "hello", string(msgs[0].Content))
	require.Equal(t, "hello", string(nextMessage(t, b).Content))
	noPush(t, b)
}

func TestConcurrentSendersGetGapFreeSeqs(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{MaxSessionsPerUser: 64, SendRate: -1}})
	const senders, each = 50, 20
	clients := make([]*client.Client, senders)
	for i := range clients {
		user, tr := alice, "tcp"
		if i%2 == 1 {
			user = bob
		}
		if i%3 == 0 {
			tr = "websocket"
		}
		// Every session gets a push or a copy of nearly every message;
		// this test is about the acks, so pushes are dropped unread.
		clients[i] = srv.DialWith(t, client.Options{Transport: tr, UserID: user, OnPush: func(client.Push) {}})
	}
	var (
		mu  sync.Mutex
		got []int64
		wg  sync.WaitGroup
	)
	for i, c := range clients {
		peer := bob
		if i%2 == 1 {
			peer = alice
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				rsp, err := c.Send(testCtx(t), client.Outgoing{ReceiverID: peer, Type: im.TextMessage, Content: []byte("x")})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, rsp.Seq)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(got)
	require.Equal(t, upTo(1, senders*each), got, "every seq once, none missing")

	conv, err := srv.Store.Conversation(testCtx(t), aliceBob)
	require.NoError(t, err)
	require.Equal(t, int64(senders*each), conv.MaxSeq)
}

func TestRestartKeepsHistoryAndSeqs(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	a := srv.Dial(t, "tcp", alice)
	for i := 1; i <= 5; i++ {
		sendText(t, a, bob, content(i))
	}
	require.NoError(t, a.Close())

	srv = srv.Restart(t)
	a = srv.Dial(t, "websocket", alice)
	require.Equal(t, int64(6), sendText(t, a, bob, content(6)).Seq)

	b := srv.Dial(t, "tcp", bob)
	got, err := b.SyncAll(testCtx(t))
	require.NoError(t, err)
	require.Equal(t, upTo(1, 6), seqs(got))
	for i, m := range got {
		require.Equal(t, content(i+1), string(m.Content))
	}
}

func TestSlowReaderIsDisconnectedAndResyncs(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{SendQueue: 32, SendRate: -1}})
	a := srv.Dial(t, "tcp", alice)
	fast := srv.Dial(t, "websocket", bob)

	slow := dialRaw(t, srv.TCPAddr)
	require.Zero(t, slow.auth(bob, srv.Token(t, bob)).ErrorCode)
	// Shrink the slow side's receive window so its socket fills quickly;
	// from here on it never reads.
	require.NoError(t, slow.nc.(interface{ SetReadBuffer(int) error }).SetReadBuffer(4096))
	require.Len(t, srv.Sessions(bob), 2)

	big := bytes.Repeat([]byte("x"), 32<<10)
	const n = 300
	received := make(chan []int64, 1)
	go func() {
		var got []int64
		for len(got) < n {
			select {
			case p := <-fast.Pushes():
				got = append(got, p.Message.(*imv1.PushMessage).Message.Seq)
			case <-fast.Done():
				received <- got
				return
			}
		}
		received <- got
	}()
	for i := 0; i < n; i++ {
		_, err := a.Send(testCtx(t), client.Outgoing{ReceiverID: bob, Type: im.FileMessage, Content: big})
		require.NoError(t, err)
	}
	require.Equal(t, upTo(1, n), <-received, "the reading device got every push, in order")
	eventually(t, func() bool { return len(srv.Sessions(bob)) == 1 }, "the slow connection was not closed")
	require.EqualValues(t, 1, srv.Stats().SlowConsumers)

	back := srv.Dial(t, "tcp", bob)
	got, err := back.SyncAll(testCtx(t))
	require.NoError(t, err)
	require.Equal(t, upTo(1, n), seqs(got), "the slow device recovers everything by sync")
}

func TestSystemMessageToUnknownUser(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{CheckRecipients: true})
	ctx := testCtx(t)
	acct, err := srv.Accounts.Register(ctx, "bobby", "correct horse", "Bob")
	require.NoError(t, err)
	before := srv.Stats().MessagesStored
	_, err = srv.SendSystemMessage(ctx, "nobody", im.TextMessage, []byte("hello?"))
	require.ErrorIs(t, err, im.ErrNotFound)
	require.Equal(t, before, srv.Stats().MessagesStored, "nothing was stored")
	m, err := srv.SendSystemMessage(ctx, acct.UserID, im.TextMessage, []byte("hello"))
	require.NoError(t, err)
	require.Equal(t, int64(1), m.Seq)
}

func TestSystemMessagesAndGoAPI(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	a := srv.Dial(t, "tcp", alice)
	b := srv.Dial(t, "websocket", bob)
	ctx := testCtx(t)

	m, err := srv.SendSystemMessage(ctx, alice, im.NotificationMessage, []byte("welcome"))
	require.NoError(t, err)
	require.Equal(t, im.SystemConversationID(alice), m.ConversationID)
	require.Equal(t, int64(1), m.Seq)
	p := nextMessage(t, a)
	require.Equal(t, "system_alice", p.ConversationId)
	require.Equal(t, im.DefaultSystemSender, p.SenderId)
	require.Equal(t, int32(im.SystemConversation), p.ConversationType)
	noPush(t, b)

	// The Go API sends as a user: all of the sender's sessions get a copy.
	sent, err := srv.SendMessage(ctx, im.SendRequest{SenderID: alice, ReceiverID: bob, Type: im.TextMessage, Content: []byte("from a bot"), ClientMsgID: "bot-1"})
	require.NoError(t, err)
	require.Equal(t, int64(1), sent.Seq)
	require.Equal(t, "from a bot", string(nextMessage(t, b).Content))
	require.Equal(t, "from a bot", string(nextMessage(t, a).Content))
	dup, err := srv.SendMessage(ctx, im.SendRequest{SenderID: alice, ReceiverID: bob, Type: im.TextMessage, Content: []byte("from a bot"), ClientMsgID: "bot-1"})
	require.NoError(t, err)
	require.Equal(t, sent.ServerID, dup.ServerID)
	_, err = srv.SendMessage(ctx, im.SendRequest{SenderID: alice, ReceiverID: bob, Type: im.TextMessage, Content: []byte("changed"), ClientMsgID: "bot-1"})
	require.ErrorIs(t, err, im.ErrConflict)
	_, err = srv.SendMessage(ctx, im.SendRequest{SenderID: alice, ConversationID: "single_bob_carol", Type: im.TextMessage, Content: []byte("x")})
	require.ErrorIs(t, err, im.ErrPermissionDenied)
	_, err = srv.SendMessage(ctx, im.SendRequest{SenderID: "", ReceiverID: bob, Content: []byte("x")})
	require.ErrorIs(t, err, im.ErrInvalidArgument)
	noPush(t, b)

	// A fresh device syncs the system conversation too.
	a2 := srv.Dial(t, "tcp", alice)
	got, err := a2.SyncAll(ctx)
	require.NoError(t, err)
	convs := map[string]int{}
	for _, m := range got {
		convs[m.ConversationId]++
	}
	require.Equal(t, map[string]int{"system_alice": 1, aliceBob: 1}, convs)
}

func TestTypingIsRelayedToThePeer(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	a := srv.Dial(t, "tcp", alice)
	b := srv.Dial(t, "websocket", bob)
	require.NoError(t, a.SendFrame(testCtx(t), imv1.CommandType_CMD_TYPING_STATUS_REQ, &imv1.TypingStatusRequest{ConversationId: aliceBob, Status: 1}))
	p := nextPush(t, b)
	require.Equal(t, imv1.CommandType_CMD_TYPING_STATUS_PUSH, p.Command)
	tp := p.Message.(*imv1.TypingStatusPush)
	require.Equal(t, alice, tp.UserId)
	require.Equal(t, int32(1), tp.Status)
	require.Equal(t, aliceBob, tp.ConversationId)

	// Not a member: nothing is relayed.
	require.NoError(t, a.SendFrame(testCtx(t), imv1.CommandType_CMD_TYPING_STATUS_REQ, &imv1.TypingStatusRequest{ConversationId: "single_bob_carol", Status: 1}))
	noPush(t, b)
}

func TestHooks(t *testing.T) {
	var (
		mu    sync.Mutex
		after []im.Message
	)
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{
		BeforeSend: func(_ context.Context, m *im.Message) error {
			switch string(m.Content) {
			case "spam":
				return &im.Error{Code: im.CodePermissionDenied, Msg: "no spam"}
			case "darn":
				m.Content = []byte("d**n")
			case "boom":
				return errors.New("moderation service down")
			}
			return nil
		},
		AfterSend: func(m im.Message) {
			mu.Lock()
			after = append(after, m)
			mu.Unlock()
		},
	}})
	a := srv.Dial(t, "tcp", alice)
	b := srv.Dial(t, "tcp", bob)
	ctx := testCtx(t)

	_, err := a.Send(ctx, client.Outgoing{ReceiverID: bob, Type: im.TextMessage, Content: []byte("spam")})
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, imv1.ErrorCode_ERR_PERMISSION_DENIED, ce.Code)
	require.Equal(t, "no spam", ce.Msg)
	_, err = a.Send(ctx, client.Outgoing{ReceiverID: bob, Type: im.TextMessage, Content: []byte("boom")})
	require.ErrorIs(t, err, im.ErrPermissionDenied)

	sendText(t, a, bob, "darn")
	sendText(t, a, bob, "ok")
	require.Equal(t, "d**n", string(nextMessage(t, b).Content))
	require.Equal(t, "ok", string(nextMessage(t, b).Content))
	eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(after) == 2 }, "AfterSend not called twice")
	mu.Lock()
	require.Equal(t, int64(1), after[0].Seq)
	require.Equal(t, "d**n", string(after[0].Content))
	require.Equal(t, int64(2), after[1].Seq)
	mu.Unlock()
}

func TestStats(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	a := srv.Dial(t, "tcp", alice)
	srv.Dial(t, "websocket", bob)
	st := srv.Stats()
	require.EqualValues(t, 2, st.Connections)
	require.EqualValues(t, 2, st.Sessions)

	sendText(t, a, bob, "one")
	_, err := a.Send(testCtx(t), client.Outgoing{ReceiverID: bob, Type: im.TextMessage, Content: []byte("two"), ClientMsgID: "same"})
	require.NoError(t, err)
	_, err = a.Send(testCtx(t), client.Outgoing{ReceiverID: bob, Type: im.TextMessage, Content: []byte("two"), ClientMsgID: "same"})
	require.NoError(t, err)
	_, err = a.Send(testCtx(t), client.Outgoing{ReceiverID: bob, Type: im.TextMessage})
	require.Error(t, err)

	st = srv.Stats()
	require.EqualValues(t, 2, st.MessagesStored)
	require.EqualValues(t, 1, st.Duplicates)
	require.EqualValues(t, 1, st.SendsRefused)
	require.GreaterOrEqual(t, st.Commits, uint64(2))
	require.Positive(t, st.CommitTime)
	require.GreaterOrEqual(t, st.FramesIn, uint64(6), "2 auths and 4 sends at least")
	require.GreaterOrEqual(t, st.FramesOut, uint64(6))

	require.NoError(t, a.Close())
	eventually(t, func() bool { return srv.Stats().Connections == 1 }, "closed connection still counted")
	require.EqualValues(t, 1, srv.Stats().Sessions)
}

// slowStore makes every commit take a while, as a busy disk does, so that
// sends arriving meanwhile pile up.
type slowStore struct{ *bolt.Store }

func (s slowStore) AppendMessages(ctx context.Context, batch []im.AppendRequest) ([]im.AppendResult, error) {
	time.Sleep(20 * time.Millisecond)
	return s.Store.AppendMessages(ctx, batch)
}

func TestConcurrentSendsShareCommits(t *testing.T) {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "im.db"), bolt.Options{})
	require.NoError(t, err)
	defer store.Close()
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{Store: slowStore{store}}})
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := srv.SendMessage(testCtx(t), im.SendRequest{SenderID: alice, ReceiverID: bob, Type: im.TextMessage, Content: []byte(content(i))}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	st := srv.Stats()
	require.EqualValues(t, n, st.MessagesStored)
	// One commit per send would be 50; group commit lets the sends that
	// arrive during a commit share the next one.
	require.Less(t, st.Commits, uint64(n/2), "commits for %d concurrent sends", n)
	srv.Stop() // before the deferred store.Close
}
