package im_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// pushReader is a raw TCP session that reads every frame the server sends it
// on a goroutine of its own and records, in arrival order, the pushed
// messages per conversation and the acks of its own sends, so a test sees
// exactly what the server sent, with no client-side repair by sync.
type pushReader struct {
	nc   net.Conn
	done chan struct{}

	wmu sync.Mutex // serializes writes
	seq uint32     // frame sequence of the last request

	mu    sync.Mutex
	convs map[string][]int64 // pushed seqs per conversation
	n     int                // pushed messages
	sent  map[uint32]string  // conversation of each send, by frame sequence
	acks  []ack              // in arrival order
	err   error              // why reading stopped, if it did
}

// ack is the answer to one send.
type ack struct {
	frame uint32 // the request's frame sequence
	conv  string
	seq   int64 // the message's seq in conv; 0 if refused
	code  imv1.ErrorCode
}

// dialPushes connects to the TCP transport as user with token and starts
// reading.
func dialPushes(t *testing.T, addr, user, token string) *pushReader {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	b, err := proto.Marshal(&imv1.AuthRequest{UserId: user, Token: token, Platform: "iOS"})
	require.NoError(t, err)
	frame, err := wire.AppendFrame(nil, im.Frame{Command: imv1.CommandType_CMD_AUTH_REQ, Sequence: 1, Body: b})
	require.NoError(t, err)
	_, err = nc.Write(frame)
	require.NoError(t, err)
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(10*time.Second)))
	f, err := wire.ReadFrame(nc, 0)
	require.NoError(t, err)
	var rsp imv1.AuthResponse
	require.NoError(t, proto.Unmarshal(f.Body, &rsp))
	require.Equal(t, imv1.ErrorCode_ERR_SUCCESS, rsp.ErrorCode, rsp.ErrorMsg)
	require.NoError(t, nc.SetReadDeadline(time.Time{}))

	r := &pushReader{nc: nc, done: make(chan struct{}), seq: 1, convs: map[string][]int64{}, sent: map[uint32]string{}}
	go r.run()
	t.Cleanup(func() {
		nc.Close()
		<-r.done
	})
	return r
}

func (r *pushReader) run() {
	defer close(r.done)
	for {
		f, err := wire.ReadFrame(r.nc, 0)
		if err == nil {
			err = r.record(f)
		}
		if err != nil {
			r.mu.Lock()
			r.err = err
			r.mu.Unlock()
			return
		}
	}
}

func (r *pushReader) record(f im.Frame) error {
	switch f.Command {
	case imv1.CommandType_CMD_PUSH_MSG:
		var pm imv1.PushMessage
		if err := proto.Unmarshal(f.Body, &pm); err != nil {
			return err
		}
		m := pm.GetMessage()
		r.mu.Lock()
		r.convs[m.GetConversationId()] = append(r.convs[m.GetConversationId()], m.GetSeq())
		r.n++
		r.mu.Unlock()
	case imv1.CommandType_CMD_SEND_MSG_RSP:
		var rsp imv1.SendMessageResponse
		if err := proto.Unmarshal(f.Body, &rsp); err != nil {
			return err
		}
		r.mu.Lock()
		r.acks = append(r.acks, ack{frame: f.Sequence, conv: r.sent[f.Sequence], seq: rsp.Seq, code: rsp.ErrorCode})
		r.mu.Unlock()
	}
	return nil
}

// send writes a send into conv without waiting for its ack.
func (r *pushReader) send(conv, text string) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.seq++
	body, err := proto.Marshal(&imv1.SendMessageRequest{Message: &imv1.MessageInfo{
		ClientMsgId: fmt.Sprint("m", r.seq), ConversationId: conv, MessageType: int32(im.TextMessage), Content: []byte(text)}})
	if err != nil {
		return err
	}
	b, err := wire.AppendFrame(nil, im.Frame{Command: imv1.CommandType_CMD_SEND_MSG_REQ, Sequence: r.seq, Body: body})
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.sent[r.seq] = conv
	r.mu.Unlock()
	if err := r.nc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
		return err
	}
	_, err = r.nc.Write(b)
	return err
}

// count returns how many messages were pushed so far.
func (r *pushReader) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// seqs returns the seqs pushed in conv, in arrival order.
func (r *pushReader) seqs(conv string) []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.convs[conv]...)
}

// answers returns the acks received so far, in arrival order.
func (r *pushReader) answers() []ack {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ack(nil), r.acks...)
}

// waitFor polls cond for up to a minute, a bound for work whose duration
// depends on how loaded the machine is.
func waitFor(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf(format, args...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOrderPerConversationUnderConcurrentSends has several connections send,
// all at once and without waiting for acks, into many groups and one-to-one
// conversations, while other connections only receive. Each receiving
// connection must get every message of each of its conversations exactly
// once, in seq order, and each sender must get the acks of one
// conversation in the order it sent.
func TestOrderPerConversationUnderConcurrentSends(t *testing.T) {
	const (
		users   = 12
		senders = 4
		groups  = 8
		perConv = 150 // messages each sender sends into each of its conversations
	)
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{SendRate: -1, GroupAddPolicy: anyoneAdds}})
	ctx := testCtx(t)
	user := func(i int) string { return fmt.Sprint("user", i) }

	// Group g has users g, g+1, …, g+5 (mod users): every user is in six
	// groups, and the groups overlap.
	convs := map[string][]string{} // members of each conversation
	base := map[string]int64{}     // its seq before the load (the group's notices)
	for g := range groups {
		var members []string
		for i := range 6 {
			members = append(members, user((g+i)%users))
		}
		grp, err := srv.CreateGroup(ctx, members[0], im.GroupSpec{Name: fmt.Sprint("g", g)}, members[1:])
		require.NoError(t, err)
		conv := im.GroupConversationID(grp.ID)
		convs[conv] = members
		c, err := srv.Store.Conversation(ctx, conv)
		require.NoError(t, err)
		base[conv] = c.MaxSeq
	}
	// Every sender also writes to each non-sender one to one.
	for s := range senders {
		for u := senders; u < users; u++ {
			conv := im.SingleConversationID(user(s), user(u))
			if _, ok := convs[conv]; !ok {
				convs[conv] = []string{user(s), user(u)}
			}
		}
	}

	// One receive-only connection per user, and one sending connection
	// per sender.
	recv := make([]*pushReader, users)
	for i := range recv {
		recv[i] = dialPushes(t, srv.TCPAddr, user(i), srv.Token(t, user(i)))
	}
	send := make([]*pushReader, senders)
	mine := make([][]string, senders) // the conversations each sender writes to
	for s := range send {
		send[s] = dialPushes(t, srv.TCPAddr, user(s), srv.Token(t, user(s)))
		for conv, members := range convs {
			for _, m := range members {
				if m == user(s) {
					mine[s] = append(mine[s], conv)
				}
			}
		}
	}
	sentTo := map[string]int{}
	for s := range senders {
		for _, conv := range mine[s] {
			sentTo[conv] += perConv
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for s := range send {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perConv {
				for _, conv := range mine[s] {
					if err := send[s].send(conv, fmt.Sprint(i)); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	for s, r := range send {
		want := perConv * len(mine[s])
		waitFor(t, func() bool { return len(r.answers()) == want }, "sender %d: %d of %d acks", s, len(r.answers()), want)
		last := map[string]ack{}
		for _, a := range r.answers() {
			require.Equal(t, imv1.ErrorCode_ERR_SUCCESS, a.code, "send %d refused", a.frame)
			if prev, ok := last[a.conv]; ok {
				require.Greater(t, a.frame, prev.frame, "sender %d, %s: ack of request %d came after that of %d", s, a.conv, a.frame, prev.frame)
				require.Greater(t, a.seq, prev.seq, "sender %d, %s: seqs of acks out of order", s, a.conv)
			}
			last[a.conv] = a
		}
	}
	for i, r := range recv {
		want := 0
		for conv, members := range convs {
			for _, m := range members {
				if m == user(i) {
					want += sentTo[conv]
				}
			}
		}
		waitFor(t, func() bool { return r.count() == want }, "%s: %d of %d pushes", user(i), r.count(), want)
		for conv, members := range convs {
			for _, m := range members {
				if m == user(i) {
					require.Equal(t, upTo(base[conv]+1, base[conv]+int64(sentTo[conv])), r.seqs(conv),
						"%s: pushes of %s are not every seq once, in order", user(i), conv)
				}
			}
		}
	}
}

// TestShutdownDrainsDelivery checks that a Shutdown while sends are being
// delivered lets every accepted send be acked and pushed first.
func TestShutdownDrainsDelivery(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{SendRate: -1}})
	const n = 2000
	a := dialPushes(t, srv.TCPAddr, alice, srv.Token(t, alice))
	b := dialPushes(t, srv.TCPAddr, bob, srv.Token(t, bob))
	c := dialPushes(t, srv.TCPAddr, carol, srv.Token(t, carol))
	for i := range n {
		conv := aliceBob
		if i%2 == 1 {
			conv = im.SingleConversationID(alice, carol)
		}
		require.NoError(t, a.send(conv, content(i)))
	}
	// Wait until the server has taken some but not all of them.
	waitFor(t, func() bool { return len(a.answers()) > 0 }, "no ack")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	<-a.done
	<-b.done
	<-c.done
	// Every send the server acked was pushed, in order, before the
	// connections closed. (Sends it took while stopping are refused.)
	got := map[string]int{}
	for _, x := range a.answers() {
		if x.code == imv1.ErrorCode_ERR_SUCCESS {
			got[x.conv]++
		}
	}
	require.NotZero(t, got[aliceBob])
	require.Equal(t, upTo(1, int64(got[aliceBob])), b.seqs(aliceBob))
	require.Equal(t, upTo(1, int64(got[im.SingleConversationID(alice, carol)])), c.seqs(im.SingleConversationID(alice, carol)))
}

// TestCloseUnderLoad closes the server while sends into many conversations
// are being committed and delivered: Close returns, every connection ends,
// and no goroutine is left (TestMain checks).
func TestCloseUnderLoad(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{SendRate: -1}})
	a := dialPushes(t, srv.TCPAddr, alice, srv.Token(t, alice))
	b := dialPushes(t, srv.TCPAddr, bob, srv.Token(t, bob))
	for i := range 1000 {
		require.NoError(t, a.send(im.SingleConversationID(alice, fmt.Sprint("user", i%50)), content(i)))
		if i%2 == 0 {
			require.NoError(t, a.send(aliceBob, content(i)))
		}
	}
	waitFor(t, func() bool { return b.count() > 0 }, "nothing delivered")
	require.NoError(t, srv.Close())
	<-a.done
	<-b.done
	// What bob got before the end is in order, without gaps.
	require.Equal(t, upTo(1, int64(len(b.seqs(aliceBob)))), b.seqs(aliceBob))
}
