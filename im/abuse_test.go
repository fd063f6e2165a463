package im_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/stretchr/testify/require"
)

// A connection that keeps sending requests before authenticating is answered
// a few times, then closed.
func TestRequestsBeforeAuthCloseTheConnection(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	r := dialRaw(t, srv.TCPAddr)
	r.alive() // heartbeats do not count
	for range 3 {
		rsp := new(imv1.ErrorResponse)
		r.call(imv1.CommandType_CMD_CONNECT_REQ, &imv1.ConnectRequest{}, rsp)
		require.Equal(t, imv1.ErrorCode_ERR_AUTH_FAILED, rsp.ErrorCode)
	}
	r.alive()
	rsp := new(imv1.ErrorResponse)
	r.call(imv1.CommandType_CMD_CONNECT_REQ, &imv1.ConnectRequest{}, rsp) // still answered
	require.Equal(t, imv1.ErrorCode_ERR_AUTH_FAILED, rsp.ErrorCode)
	r.expectClosed()

	// Pushes-only commands, which get no answer, count too.
	r = dialRaw(t, srv.TCPAddr)
	for range 4 {
		r.writeMsg(imv1.CommandType_CMD_TYPING_STATUS_REQ, &imv1.TypingStatusRequest{ConversationId: "x", Status: 1})
	}
	r.expectClosed()

	// Three, then authenticating, is fine.
	r = dialRaw(t, srv.TCPAddr)
	for range 3 {
		r.call(imv1.CommandType_CMD_CONNECT_REQ, &imv1.ConnectRequest{}, new(imv1.ErrorResponse))
	}
	require.Zero(t, r.auth(alice, srv.Token(t, alice)).ErrorCode)
	for range 5 {
		r.alive()
	}
}

// After authentication, many unknown commands or malformed bodies close the
// connection with ErrProtocolAbuse; refusals a correct client meets do not.
func TestUnknownAndMalformedRequestsCloseTheConnection(t *testing.T) {
	var mu sync.Mutex
	var reasons []error
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{
		SendRate: 1,
		OnDisconnect: func(_ im.SessionInfo, err error) {
			mu.Lock()
			reasons = append(reasons, err)
			mu.Unlock()
		},
	}})

	// Refusals (a rate-limited send, an unsupported known command) many
	// times over leave the connection open.
	r := dialRaw(t, srv.TCPAddr)
	require.Zero(t, r.auth(alice, srv.Token(t, alice)).ErrorCode)
	limited := 0
	for i := range 80 {
		if r.send(textTo(bob, content(i), "hi")).ErrorCode == imv1.ErrorCode_ERR_SEND_TOO_FAST {
			limited++
		}
		r.call(imv1.CommandType_CMD_REVOKE_MSG_REQ, &imv1.RevokeMessageRequest{}, new(imv1.RevokeMessageResponse))
	}
	require.Greater(t, limited, 40)
	r.alive()

	// 32 unknown commands and malformed bodies are answered; the 33rd
	// is answered and the connection closed.
	for i := range 33 {
		var seq uint32
		if i%2 == 0 {
			seq = r.write(imv1.CommandType(9999), nil)
		} else {
			seq = r.write(imv1.CommandType_CMD_SYNC_RANGE_REQ, []byte{0xff, 0xff, 0xff})
		}
		r.response(seq, new(imv1.ErrorResponse))
	}
	r.expectClosed()
	eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(reasons) == 1
	}, "OnDisconnect called")
	mu.Lock()
	require.True(t, errors.Is(reasons[0], im.ErrProtocolAbuse), "reason %v", reasons[0])
	mu.Unlock()
}
