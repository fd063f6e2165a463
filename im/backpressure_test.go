package im_test

import (
	"bytes"
	"context"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
	"github.com/imserver/imserver/store/bolt"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

func TestConfigQueueBoundsAreChecked(t *testing.T) {
	st, err := bolt.Open(t.TempDir()+"/im.db", bolt.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	authn := im.AuthenticatorFunc(func(context.Context, string) (im.Identity, error) { return im.Identity{}, im.ErrUnauthenticated })
	for _, tc := range []struct {
		name  string
		cfg   im.Config
		field string
	}{
		{"SendQueueBytes under MaxFrameSize", im.Config{SendQueueBytes: im.MaxFrameSize - 1}, "SendQueueBytes"},
		{"SendQueueBytes negative", im.Config{SendQueueBytes: -1}, "SendQueueBytes"},
		{"SendQueue negative", im.Config{SendQueue: -1}, "SendQueue"},
		{"SignalRate NaN", im.Config{SignalRate: math.NaN()}, "SignalRate"},
		{"SignalRate infinite", im.Config{SignalRate: math.Inf(1)}, "SignalRate"},
		{"SendRate NaN", im.Config{SendRate: math.NaN()}, "SendRate"},
		{"SendRate infinite", im.Config{SendRate: math.Inf(1)}, "SendRate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Store, tc.cfg.Authenticator = st, authn
			srv, err := im.NewServer(tc.cfg)
			require.Error(t, err)
			require.Nil(t, srv)
			require.Contains(t, err.Error(), "Config."+tc.field)
		})
	}
	srv, err := im.NewServer(im.Config{Store: st, Authenticator: authn, SendQueueBytes: im.MaxFrameSize})
	require.NoError(t, err, "MaxFrameSize itself is enough")
	require.NoError(t, srv.Close())
}

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A client that pipelines requests whose answers are large and never reads
// them must not make the server hold the answers: the server stops reading
// its requests instead, and everyone else is served as usual.
func TestPipelinedSyncsWithoutReadingKeepTheHeapBounded(t *testing.T) {
	const writeTimeout = 4 * time.Second
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{WriteTimeout: writeTimeout, SendRate: -1}})
	ctx := testCtx(t)

	// Enough history that every BATCH_SYNC answer is a full page, close
	// to MaxFrameSize.
	big := bytes.Repeat([]byte("x"), 60<<10)
	for i := 0; i < 20; i++ {
		_, err := srv.SendMessage(ctx, im.SendRequest{SenderID: alice, ReceiverID: bob, Type: im.FileMessage, Content: big})
		require.NoError(t, err)
	}

	// A client that pipelines requests and does read gets every answer,
	// each a page bigger than the reader's watermark: the server pauses
	// reading it, and resumes.
	reader := dialRaw(t, srv.TCPAddr)
	require.Zero(t, reader.auth(bob, srv.Token(t, bob)).ErrorCode)
	var asked []uint32
	for i := 0; i < 10; i++ {
		asked = append(asked, reader.writeMsg(imv1.CommandType_CMD_BATCH_SYNC_REQ, &imv1.BatchSyncRequest{}))
	}
	var page im.Frame
	for _, seq := range asked {
		page = reader.read()
		require.Equal(t, seq, page.Sequence)
		require.Greater(t, len(page.Body), im.DefaultSendQueueBytes/2)
		var rsp imv1.BatchSyncResponse
		require.NoError(t, proto.Unmarshal(page.Body, &rsp))
		require.Zero(t, rsp.ErrorCode)
		require.Greater(t, rsp.TotalMessageCount, int32(10))
	}
	t.Logf("one BATCH_SYNC answer is %d KiB", len(page.Body)>>10)
	reader.nc.Close()
	eventually(t, func() bool { return len(srv.Sessions(bob)) == 0 }, "the reader's session did not end")

	other := srv.Dial(t, "tcp", carol)
	before := heapInUse()

	attacker := dialRaw(t, srv.TCPAddr)
	require.Zero(t, attacker.auth(bob, srv.Token(t, bob)).ErrorCode)
	require.NoError(t, attacker.nc.(interface{ SetReadBuffer(int) error }).SetReadBuffer(4096))
	const pipelined = 400
	body, err := proto.Marshal(&imv1.BatchSyncRequest{})
	require.NoError(t, err)
	var burst []byte
	for i := 0; i < pipelined; i++ {
		burst, err = wire.AppendFrame(burst, im.Frame{Command: imv1.CommandType_CMD_BATCH_SYNC_REQ, Sequence: uint32(100 + i), Body: body})
		require.NoError(t, err)
	}
	attacker.writeBytes(burst)

	// Meanwhile another client sends and syncs; each round trip is
	// answered promptly.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var slowest time.Duration
	var rounds int
	var otherErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			_, err := other.Send(rctx, client.Outgoing{ReceiverID: alice, Type: im.TextMessage, Content: []byte("hello")})
			if err == nil {
				_, err = other.SyncAll(rctx)
			}
			cancel()
			if err != nil {
				otherErr = err
				return
			}
			slowest = max(slowest, time.Since(start))
			rounds++
			time.Sleep(20 * time.Millisecond)
		}
	}()

	// Watch the heap for the attacker's whole life: the server closes it
	// once a write has waited WriteTimeout.
	var peak uint64
	deadline := time.Now().Add(writeTimeout + 20*time.Second)
	for len(srv.Sessions(bob)) > 0 {
		require.True(t, time.Now().Before(deadline), "the attacker's connection was never closed")
		peak = max(peak, heapInUse())
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	growth := int64(peak) - int64(before)
	t.Logf("heap before %d KiB, peak %d KiB, growth %d KiB, with %d answers of %d KiB asked for",
		before>>10, peak>>10, growth>>10, pipelined, len(page.Body)>>10)
	t.Logf("the other client: %d round trips, slowest %v", rounds, slowest)
	// Holding every answer would take pipelined × ~1 MiB; the connection
	// is allowed half its 1 MiB queue bound plus one answer.
	require.Less(t, growth, int64(48<<20), "the server held the pipelined answers")
	require.NoError(t, otherErr, "the other client was not served")
	require.Positive(t, rounds)
	require.Less(t, slowest, 2*time.Second, "the other client was slowed down")
}

// A device that stops reading is disconnected once its pushes weigh more
// than SendQueueBytes, long before it has SendQueue frames waiting; its user
// loses nothing.
func TestSlowReaderIsDisconnectedByQueuedBytes(t *testing.T) {
	var mu sync.Mutex
	var reasons []error
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{
		SendRate: -1,
		OnDisconnect: func(s im.SessionInfo, err error) {
			mu.Lock()
			reasons = append(reasons, err)
			mu.Unlock()
		},
	}})
	a := srv.Dial(t, "tcp", alice)
	fast := srv.Dial(t, "websocket", bob)
	slow := dialRaw(t, srv.TCPAddr)
	require.Zero(t, slow.auth(bob, srv.Token(t, bob)).ErrorCode)
	require.NoError(t, slow.nc.(interface{ SetReadBuffer(int) error }).SetReadBuffer(4096))

	// 200 pushes, far fewer than SendQueue, weighing 6 MiB: more than the
	// byte bound and what the sockets can buffer.
	big := bytes.Repeat([]byte("y"), 32<<10)
	const n = 200
	for i := 0; i < n; i++ {
		_, err := a.Send(testCtx(t), client.Outgoing{ReceiverID: bob, Type: im.FileMessage, Content: big})
		require.NoError(t, err)
		require.EqualValues(t, i+1, nextMessage(t, fast).Seq)
	}
	eventually(t, func() bool { return len(srv.Sessions(bob)) == 1 }, "the slow connection was not closed")
	require.EqualValues(t, 1, srv.Stats().SlowConsumers)
	mu.Lock()
	require.Len(t, reasons, 1)
	require.ErrorIs(t, reasons[0], im.ErrSlowConsumer)
	mu.Unlock()

	back := srv.Dial(t, "tcp", bob)
	got, err := back.SyncAll(testCtx(t))
	require.NoError(t, err)
	require.Equal(t, upTo(1, n), seqs(got), "the slow device recovers everything by sync")
}
