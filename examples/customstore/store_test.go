package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/store/storetest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// This is all a Store needs to prove itself: the conformance suite. A
// persistent store also sets Harness.Reopen to test durability.
func TestStore(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) im.Store { return NewStore() },
	})
}

func TestPing(t *testing.T) {
	require.NoError(t, NewStore().Ping(t.Context()))
}

func BenchmarkStore(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) im.Store { return NewStore() })
}

func TestServerOnStore(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", func(a net.Addr) { addrs <- a }) }()
	addr := (<-addrs).String()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	alice, err := client.Dial(dctx, client.Options{Addr: addr, UserID: "alice", Token: "token-alice"})
	require.NoError(t, err)
	defer alice.Close()
	var last string
	for i := 1; i <= 3; i++ {
		rsp, err := alice.Send(dctx, client.Outgoing{ReceiverID: "bob", Type: im.TextMessage, Content: []byte("hi")})
		require.NoError(t, err)
		require.Equal(t, int64(i), rsp.Seq)
		last = rsp.ServerMsgId
	}
	// The store recalls too: the last message stays, as a tombstone.
	require.NoError(t, alice.Recall(dctx, im.SingleConversationID("alice", "bob"), last))
	bob, err := client.Dial(dctx, client.Options{Addr: addr, UserID: "bob", Token: "token-bob"})
	require.NoError(t, err)
	defer bob.Close()
	got, err := bob.SyncAll(dctx)
	require.NoError(t, err)
	require.Len(t, got, 3)
	for i, m := range got {
		require.Equal(t, int64(i+1), m.Seq)
		require.Equal(t, "alice", m.SenderId)
		require.Equal(t, i == 2, m.IsRevoked)
	}
	require.Empty(t, got[2].Content)
}
