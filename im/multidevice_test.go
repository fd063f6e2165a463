package im_test

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imv1"
	"github.com/stretchr/testify/require"
)

// One user's devices converge: what one sends, reads and recalls reaches
// the others at once, and a device that connects later gets the same state
// by sync alone.
func TestDevicesConverge(t *testing.T) {
	for _, st := range readStateStores {
		t.Run(st.name, func(t *testing.T) {
			srv := readStateServer(t, st.memory, im.Config{})
			ctx := testCtx(t)
			phone := srv.Dial(t, client.TransportTCP, alice)
			laptop := srv.Dial(t, client.TransportWebSocket, alice)
			b := srv.Dial(t, client.TransportTCP, bob)

			// Sent on one device, pushed to the other.
			mine := sendText(t, phone, bob, "from the phone")
			require.Equal(t, mine.ServerMsgId, nextMessage(t, laptop).ServerMsgId)
			nextMessage(t, b)
			var ids []string
			for i := range 3 {
				ids = append(ids, sendText(t, b, alice, content(i)).ServerMsgId)
				nextMessage(t, phone)
				nextMessage(t, laptop)
			}

			// Read on the laptop: the phone is told, and both read the same.
			require.NoError(t, laptop.MarkRead(ctx, aliceBob, ids[1]))
			r := nextReceipt(t, phone)
			require.Equal(t, alice, r.UserId, "read on another device")
			for _, c := range []*client.Client{phone, laptop} {
				rs, err := c.ReadState(ctx, imv1.ReceiptSubscribe_RECEIPTS_UNCHANGED, aliceBob)
				require.NoError(t, err)
				require.Equal(t, int64(3), rs.States[0].ReadSeq)
				require.Equal(t, int64(1), rs.States[0].Unread)
			}

			// Recalled on the phone: every device of both is told.
			require.NoError(t, phone.Recall(ctx, aliceBob, mine.ServerMsgId))
			for _, c := range []*client.Client{phone, laptop, b} {
				for {
					p := nextPush(t, c)
					if rp, ok := p.Message.(*imv1.RevokeMessagePush); ok {
						require.Equal(t, mine.ServerMsgId, rp.ServerMsgId)
						break
					}
				}
			}

			// A new device: sync gives every message, the recalled one as a
			// tombstone, and the same read state.
			tablet := srv.Dial(t, client.TransportTCP, alice)
			msgs, err := tablet.SyncAll(ctx)
			require.NoError(t, err)
			require.Len(t, msgs, 4)
			require.True(t, msgs[0].IsRevoked)
			require.Empty(t, msgs[0].Content)
			require.Equal(t, alice, msgs[0].RevokedBy)
			rs, err := tablet.ReadState(ctx, imv1.ReceiptSubscribe_RECEIPTS_UNCHANGED)
			require.NoError(t, err)
			require.Equal(t, int64(1), rs.TotalUnread)

			// Reading everything on it clears the others too.
			require.NoError(t, tablet.MarkRead(ctx, aliceBob))
			require.Equal(t, ids[2:], nextReceipt(t, phone).ServerMsgIds)
			require.Equal(t, ids[2:], nextReceipt(t, laptop).ServerMsgIds)
			n, err := srv.UnreadCount(ctx, alice)
			require.NoError(t, err)
			require.Zero(t, n)
		})
	}
}

// A device that syncs a conversation whose history its user cleared gets
// no messages for it, and takes the sync as complete: the next message is
// the next seq to it, with no gap to repair.
func TestClearedConversationSyncsAsComplete(t *testing.T) {
	srv := readStateServer(t, false, im.Config{})
	ctx := testCtx(t)
	for i := range 3 {
		_, err := srv.SendMessage(ctx, im.SendRequest{SenderID: bob, ReceiverID: alice, Type: im.TextMessage, Content: []byte(content(i))})
		require.NoError(t, err)
	}
	all := int64(1 << 40)
	_, err := srv.UpdateConversationSettings(ctx, alice, aliceBob, im.SettingsChange{ClearedUpTo: &all})
	require.NoError(t, err)

	logs := &lockedBuffer{}
	c := srv.DialWith(t, client.Options{Transport: client.TransportTCP, UserID: alice, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	msgs, err := c.SyncAll(ctx)
	require.NoError(t, err)
	require.Empty(t, msgs)

	_, err = srv.SendMessage(ctx, im.SendRequest{SenderID: bob, ReceiverID: alice, Type: im.TextMessage, Content: []byte("after")})
	require.NoError(t, err)
	require.Equal(t, int64(4), nextMessage(t, c).Seq)
	// A repair would have asked for 1–3 and logged that the server
	// skipped them; nothing is asked.
	msgs, err = c.SyncAll(ctx)
	require.NoError(t, err)
	require.Empty(t, msgs)
	require.NotContains(t, logs.String(), "skipped")
}

// lockedBuffer is a bytes.Buffer for a logger on other goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
