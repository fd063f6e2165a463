package im_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/store/memstore"
)

// scanningStore is a memstore with im.MessageRangeScanner that takes back
// its pages as the interface allows: once fn returns, it scribbles over
// every Content it handed out, so a Server that kept one would send the
// scribbles. fault makes it misbehave instead.
type scanningStore struct {
	*memstore.Store
	scans atomic.Int64
	fault atomic.Pointer[string] // "panic", "skip", "reorder": the next scan only
}

var _ im.MessageRangeScanner = (*scanningStore)(nil)

func (s *scanningStore) ScanMessageRanges(ctx context.Context, ranges []im.MessageRange, limit int, fn func(i int, page []im.Message) error) error {
	s.scans.Add(1)
	pages, err := s.MessageRanges(ctx, ranges, limit)
	if err != nil {
		return err
	}
	fault := ""
	if p := s.fault.Swap(nil); p != nil {
		fault = *p
	}
	order := make([]int, len(pages))
	for i := range order {
		order[i] = i
	}
	switch fault {
	case "panic":
		panic("ScanMessageRanges exploded")
	case "skip":
		order = order[:len(order)-1]
	case "reorder":
		if len(order) > 1 {
			order[0], order[1] = order[1], order[0]
		}
	}
	for _, i := range order {
		if err := fn(i, pages[i]); err != nil {
			return err
		}
		for j := range pages[i] {
			for k := range pages[i][j].Content {
				pages[i][j].Content[k] = '#'
			}
		}
	}
	return nil
}

// TestBatchSyncScannerEqualsBatched serves one store's data through a
// Server whose Store is a plain im.SyncStore and one whose Store also
// scans, taking each page back as soon as the Server has read it: both
// must answer the same, and the scanning one must not call MessageRanges.
func TestBatchSyncScannerEqualsBatched(t *testing.T) {
	mem := memstore.New()
	scanning := &scanningStore{Store: mem}
	batchedSrv := imtest.NewServer(t, imtest.Options{Config: im.Config{Store: mem}})
	scanSrv := imtest.NewServer(t, imtest.Options{Config: im.Config{Store: scanning}})
	ctx := testCtx(t)

	b := batchedSrv.Dial(t, "tcp", bob)
	for i := range 5 {
		sendText(t, b, alice, content(i))
	}
	for i := range 4 {
		g, err := batchedSrv.CreateGroup(ctx, bob, im.GroupSpec{Name: fmt.Sprintf("g%d", i)}, []string{alice})
		require.NoError(t, err)
		for j := range 2 * i {
			_, err := sendToGroup(t, b, g.ID, content(j))
			require.NoError(t, err)
		}
	}
	for _, limit := range []int32{1, 3, 100} {
		cursors := map[string]int64{aliceBob: 2}
		want, err := batchedSrv.Dial(t, "tcp", alice).BatchSync(ctx, cursors, limit)
		require.NoError(t, err)
		before := scanning.scans.Load()
		got, err := scanSrv.Dial(t, "websocket", alice).BatchSync(ctx, cursors, limit)
		require.NoError(t, err)
		require.Equal(t, before+1, scanning.scans.Load(), "one scan per sync of a few conversations")
		want.ServerTime, got.ServerTime = 0, 0
		require.True(t, proto.Equal(want, got), "limit %d, scanning:\n%v\nbatched:\n%v", limit, got, want)
		require.NotZero(t, got.TotalMessageCount)
		for _, cm := range got.ConversationMessages {
			for _, m := range cm.Messages {
				require.NotContains(t, string(m.Content), "#", "a page's content was read after it was given back")
			}
		}
	}
}

// TestBatchSyncScannerFaults: a MessageRangeScanner that panics, skips a
// range or calls back out of order fails the one sync with an internal
// error (a panic counted as the Store's), and the next sync works.
func TestBatchSyncScannerFaults(t *testing.T) {
	store := &scanningStore{Store: memstore.New()}
	var logs syncBuffer
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{Store: store, Logger: slog.New(slog.NewTextHandler(&logs, nil))}})
	ctx := testCtx(t)
	b := srv.Dial(t, "tcp", bob)
	sendText(t, b, alice, "one-to-one")
	g, err := srv.CreateGroup(ctx, bob, im.GroupSpec{Name: "g"}, []string{alice})
	require.NoError(t, err)
	_, err = sendToGroup(t, b, g.ID, "to the group")
	require.NoError(t, err)
	a := srv.Dial(t, "tcp", alice)

	for _, tc := range []struct{ fault, logged string }{
		{"panic", "ScanMessageRanges exploded"},
		{"skip", "called back for 1 of 2 ranges"},
		{"reorder", "called back for range 1 of 2, want 0"},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			panics := srv.Stats().StorePanics
			store.fault.Store(&tc.fault)
			_, err := a.BatchSync(ctx, nil, 10)
			var ce *client.Error
			require.ErrorAs(t, err, &ce)
			require.Equal(t, imv1.ErrorCode_ERR_UNKNOWN, ce.Code)
			require.Equal(t, "internal error", ce.Msg)
			wantPanics := panics
			if tc.fault == "panic" {
				wantPanics++
			}
			require.Equal(t, wantPanics, srv.Stats().StorePanics)
			require.Contains(t, logs.String(), tc.logged)

			rsp, err := a.BatchSync(ctx, nil, 10)
			require.NoError(t, err, "the next sync works")
			require.Len(t, rsp.ConversationMessages, 2)
			require.Equal(t, int32(3), rsp.TotalMessageCount, "the message and the group's notice and message")
		})
	}
}
