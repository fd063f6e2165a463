package im_test

import (
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

// typingFlood is n typing requests for conv in one buffer, alternating
// status and ending with status 0.
func typingFlood(t *testing.T, r *raw, conv string, n int) []byte {
	t.Helper()
	var buf []byte
	for i := range n {
		body, err := proto.Marshal(&imv1.TypingStatusRequest{ConversationId: conv, Status: int32((n - 1 - i) % 2)})
		require.NoError(t, err)
		r.seq++
		buf, err = wire.AppendFrame(buf, im.Frame{Command: imv1.CommandType_CMD_TYPING_STATUS_REQ, Sequence: r.seq, Body: body})
		require.NoError(t, err)
	}
	return buf
}

// floodSetup starts a server with cfg, a victim (bob) who reads nothing for
// now, and a flooder (alice), and records why sessions end.
func floodSetup(t *testing.T, cfg im.Config) (srv *imtest.Server, victim, flooder *raw, reasons func() []error) {
	var mu sync.Mutex
	var got []error
	cfg.OnDisconnect = func(_ im.SessionInfo, err error) {
		mu.Lock()
		got = append(got, err)
		mu.Unlock()
	}
	srv = imtest.NewServer(t, imtest.Options{Config: cfg})
	victim = dialRaw(t, srv.TCPAddr)
	require.Zero(t, victim.auth(bob, srv.Token(t, bob)).ErrorCode)
	require.NoError(t, victim.nc.(interface{ SetReadBuffer(int) error }).SetReadBuffer(4096))
	flooder = dialRaw(t, srv.TCPAddr)
	require.Zero(t, flooder.auth(alice, srv.Token(t, alice)).ErrorCode)
	return srv, victim, flooder, func() []error {
		mu.Lock()
		defer mu.Unlock()
		return append([]error(nil), got...)
	}
}

// readUntilMessage reads the victim's frames until the pushed message with
// content want, and returns the typing pushes on the way.
func readUntilMessage(t *testing.T, r *raw, want string) []*imv1.TypingStatusPush {
	t.Helper()
	var typing []*imv1.TypingStatusPush
	for {
		f := r.read()
		switch f.Command {
		case imv1.CommandType_CMD_TYPING_STATUS_PUSH:
			p := new(imv1.TypingStatusPush)
			require.NoError(t, proto.Unmarshal(f.Body, p))
			typing = append(typing, p)
		case imv1.CommandType_CMD_PUSH_MSG:
			p := new(imv1.PushMessage)
			require.NoError(t, proto.Unmarshal(f.Body, p))
			if string(p.GetMessage().GetContent()) == want {
				return typing
			}
		}
	}
}

// 100,000 typing requests, the size of a few seconds' flood, weigh
// megabytes of pushes: without limits they fill the victim's queue and the
// victim is disconnected as a slow reader. With the default SignalRate the
// flooder gets a burst through and the rest is dropped; the victim stays
// connected, gets the message that follows, and others' typing still
// reaches it.
func TestTypingFloodIsLimitedPerSender(t *testing.T) {
	const n = 100_000
	srv, victim, flooder, reasons := floodSetup(t, im.Config{})
	cr := dialRaw(t, srv.TCPAddr)
	require.Zero(t, cr.auth(carol, srv.Token(t, carol)).ErrorCode)

	flood := typingFlood(t, flooder, aliceBob, n)
	start := time.Now()
	flooder.writeBytes(flood)
	flooder.alive() // the server has handled every frame before it
	elapsed := time.Since(start)
	// A burst, and what the bucket refilled while the flood was read.
	allowed := 2*im.DefaultSignalRate + int(elapsed.Seconds()*im.DefaultSignalRate) + 1
	require.Zero(t, flooder.send(textTo(bob, "after-flood", "after the flood")).ErrorCode)
	cr.writeMsg(imv1.CommandType_CMD_TYPING_STATUS_REQ, &imv1.TypingStatusRequest{ConversationId: im.SingleConversationID(carol, bob), Status: 1})
	cr.alive()
	require.Zero(t, cr.send(textTo(bob, "carol-1", "from carol")).ErrorCode)

	st := srv.Stats()
	require.Zero(t, st.SlowConsumers, "the victim was disconnected: %v", reasons())
	require.GreaterOrEqual(t, st.SignalsLimited, uint64(n-allowed), "the flood went through")
	require.Len(t, srv.Sessions(bob), 1)

	typing := readUntilMessage(t, victim, "after the flood")
	require.NotEmpty(t, typing, "the flooder's first typing arrives")
	require.LessOrEqual(t, len(typing), allowed, "more than the limit reached the victim")
	typing = readUntilMessage(t, victim, "from carol")
	require.Len(t, typing, 1, "someone else's typing still arrives")
	require.Equal(t, carol, typing[0].UserId)
	victim.alive()
	require.Empty(t, reasons())
}

// Without a rate limit (SignalRate negative), the same flood at a victim
// who reads nothing still never disconnects it: typing waiting in its
// queue is replaced by the newer one, and the victim gets the message that
// follows and the flooder's latest status.
func TestTypingFloodIsCoalescedAtASlowReader(t *testing.T) {
	const n = 100_000
	srv, victim, flooder, reasons := floodSetup(t, im.Config{SignalRate: -1})

	flooder.writeBytes(typingFlood(t, flooder, aliceBob, n))
	flooder.alive()
	require.Zero(t, flooder.send(textTo(bob, "after-flood", "after the flood")).ErrorCode)

	st := srv.Stats()
	require.Zero(t, st.SlowConsumers, "the victim was disconnected: %v", reasons())
	require.Zero(t, st.SignalsLimited)
	require.Positive(t, st.SignalsDropped, "nothing was coalesced or dropped")
	require.Len(t, srv.Sessions(bob), 1)

	typing := readUntilMessage(t, victim, "after the flood")
	require.NotEmpty(t, typing)
	require.EqualValues(t, 0, typing[len(typing)-1].Status, "the latest status is the one kept")
	require.Less(t, len(typing), n, "every typing push was queued")
	victim.alive()
	require.Empty(t, reasons())
}
