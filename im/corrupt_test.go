package im_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/store/memstore"
)

// corruptStore is a memstore whose message reads fail their integrity
// check, as a damaged database's do.
type corruptStore struct{ *memstore.Store }

func (c corruptStore) Messages(ctx context.Context, conv string, from, to int64, limit int) ([]im.Message, error) {
	return nil, &im.CorruptError{Conversation: conv, Seq: from, Err: im.ErrCorrupt}
}

func (c corruptStore) MessageRanges(ctx context.Context, ranges []im.MessageRange, limit int) ([][]im.Message, error) {
	return nil, &im.CorruptError{Conversation: ranges[0].ConversationID, Seq: 1, Err: im.ErrCorrupt}
}

// TestCorruptReadIsAnError: a read the Store finds damaged is answered
// with an error that says so, and nothing of the data; the server logs it
// with the conversation and seq, and counts it.
func TestCorruptReadIsAnError(t *testing.T) {
	var logs syncBuffer
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{
		Store:  corruptStore{memstore.New()},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}})
	a := srv.Dial(t, "tcp", alice)
	rsp := sendText(t, a, bob, "hello")
	conv := im.SingleConversationID(alice, bob)
	_, err := a.SyncRange(testCtx(t), conv, 1, rsp.Seq, 10)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, imv1.ErrorCode_ERR_UNKNOWN, ce.Code)
	require.Equal(t, "stored data failed its integrity check", ce.Msg)
	require.Equal(t, uint64(1), srv.Stats().CorruptReads)
	out := logs.String()
	require.Contains(t, out, "level=ERROR")
	require.Contains(t, out, "stored data failed its integrity check")
	require.Contains(t, out, "conv="+conv)
	require.Contains(t, out, "seq=1")
}
