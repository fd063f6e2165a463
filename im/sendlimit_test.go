package im_test

import (
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/stretchr/testify/require"
)

// SendRate is a budget per user: two connections of one user share it,
// hanging up and dialling again does not refill it, and another user's
// sends are not charged to it. Refused sends answer SEND_TOO_FAST on a
// connection that stays open; the Go API is not limited.
func TestSendRateIsPerUserAcrossConnections(t *testing.T) {
	const rate = 10 // burst 20
	srv := imtest.NewServer(t, imtest.Options{Memory: true, Config: im.Config{SendRate: rate}})
	start := time.Now()
	// budget is the most one user can have been allowed since start: the
	// burst plus what refilled meanwhile (plus one for rounding).
	budget := func() int { return 2*rate + int(time.Since(start).Seconds()*rate) + 1 }
	n := 0
	sendFrom := func(r *raw, k int) (ok, limited int) {
		for range k {
			n++
			switch code := r.send(textTo(bob, content(n), "hi")).ErrorCode; code {
			case 0:
				ok++
			case imv1.ErrorCode_ERR_SEND_TOO_FAST:
				limited++
			default:
				t.Fatalf("send %d: %v", n, code)
			}
		}
		return ok, limited
	}

	a1, a2 := dialRaw(t, srv.TCPAddr), dialRaw(t, srv.TCPAddr)
	require.Zero(t, a1.auth(alice, srv.Token(t, alice)).ErrorCode)
	require.Zero(t, a2.auth(alice, srv.Token(t, alice)).ErrorCode)
	sent := 0
	for range 15 {
		ok1, _ := sendFrom(a1, 2)
		ok2, _ := sendFrom(a2, 2)
		sent += ok1 + ok2
	}
	require.GreaterOrEqual(t, sent, 2*rate, "the burst")
	require.LessOrEqual(t, sent, budget(), "two connections share one bucket")
	a1.alive()
	a2.alive()

	// Reconnecting starts with the bucket as the user left it.
	a1.nc.Close()
	a2.nc.Close()
	a3 := dialRaw(t, srv.TCPAddr)
	require.Zero(t, a3.auth(alice, srv.Token(t, alice)).ErrorCode)
	ok, limited := sendFrom(a3, 30)
	sent += ok
	require.Positive(t, limited)
	require.LessOrEqual(t, sent, budget(), "a new connection does not refill the bucket")
	a3.alive()

	// Bob has a bucket of his own.
	b := dialRaw(t, srv.TCPAddr)
	require.Zero(t, b.auth(bob, srv.Token(t, bob)).ErrorCode)
	require.Zero(t, b.send(textTo(alice, "b-1", "hi")).ErrorCode)

	// The host's own sends are not the user's.
	_, err := srv.SendMessage(testCtx(t), im.SendRequest{SenderID: alice, ReceiverID: bob, Content: []byte("from the host")})
	require.NoError(t, err)
	_, err = srv.SendSystemMessage(testCtx(t), alice, im.TextMessage, []byte("notice"))
	require.NoError(t, err)
}
