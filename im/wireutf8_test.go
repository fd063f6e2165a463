package im_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/store/memstore"
	"github.com/stretchr/testify/require"
)

// TestInvalidUTF8StillAnswered stores messages whose strings are not valid
// UTF-8, which protobuf refuses to encode: one at rest (Extra, which no
// Store checks), and reads that come back damaged (client_msg_id, sender).
// SYNC_RANGE and BATCH_SYNC are answered all the same, with each bad byte
// sequence replaced by U+FFFD, and so is the push of such a message.
func TestInvalidUTF8StillAnswered(t *testing.T) {
	store := &faultyStore{Store: memstore.New()}
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{Store: store, SendRate: -1}})
	a := srv.Dial(t, "tcp", alice)
	b := srv.Dial(t, "websocket", bob)
	ctx := testCtx(t)

	// The server refuses such an Extra at its door (see
	// TestInvalidUTF8Refused), so this one is put in the store behind its
	// back, as a store written by other software or damaged could hold it.
	_, err := store.Store.AppendMessages(ctx, []im.AppendRequest{{
		Message: im.Message{ServerID: "bad-extra", ClientMsgID: "bad-extra", ConversationID: aliceBob, SenderID: alice, ReceiverID: bob,
			Type: im.TextMessage, Content: []byte("bad extra"), Extra: "ok\xffok", CreatedAt: time.Now()},
		Members: []string{alice, bob},
	}})
	require.NoError(t, err)
	sendText(t, a, bob, "fine")
	// Bob's client sees seq 2 pushed without seq 1 and fetches it: both
	// reach it, in either order.
	waitFor := func(content string) {
		t.Helper()
		for string(nextMessage(t, b).Content) != content {
		}
	}
	waitFor("fine")

	// An answer well before the client's own timeout, or none at all.
	answer := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	check := func(t *testing.T, msgs []*imv1.MessageInfo, damaged bool) {
		t.Helper()
		require.Len(t, msgs, 2)
		require.Equal(t, "ok\uFFFDok", msgs[0].Extra)
		require.Equal(t, "bad extra", string(msgs[0].Content))
		require.Equal(t, "fine", string(msgs[1].Content))
		for _, m := range msgs {
			if damaged {
				require.True(t, strings.HasSuffix(m.ClientMsgId, "\uFFFD"), "client_msg_id %q", m.ClientMsgId)
				require.Equal(t, "\uFFFD"+alice, m.SenderId)
			} else {
				require.Equal(t, alice, m.SenderId)
			}
		}
	}
	for _, damaged := range []bool{false, true} {
		store.corrupt.Store(damaged)
		name := "AtRest"
		if damaged {
			name = "DamagedReads"
		}
		t.Run(name, func(t *testing.T) {
			sr, err := b.SyncRange(answer(t), aliceBob, 1, 0, 10)
			require.NoError(t, err, "SYNC_RANGE is answered")
			check(t, sr.Messages, damaged)

			bs, err := b.BatchSync(answer(t), nil, 10)
			require.NoError(t, err, "BATCH_SYNC is answered")
			require.Len(t, bs.ConversationMessages, 1)
			check(t, bs.ConversationMessages[0].Messages, damaged)
		})
	}
	store.corrupt.Store(false)
	sendText(t, a, bob, "still serving")
	waitFor("still serving")
}

// Extra and attached_info that are not UTF-8 cannot travel as protobuf
// strings: the Go API refuses them, and a BeforeSend hook that writes them,
// with INVALID_PARAM, and stores nothing.
func TestInvalidUTF8Refused(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{
		BeforeSend: func(_ context.Context, m *im.Message) error {
			if string(m.Content) == "hooked" {
				m.Extra = "\xc3("
			}
			return nil
		},
	}})
	ctx := testCtx(t)
	for _, req := range []im.SendRequest{
		{SenderID: alice, ReceiverID: bob, Type: im.TextMessage, Content: []byte("x"), Extra: "ok\xffok"},
		{SenderID: alice, ReceiverID: bob, Type: im.TextMessage, Content: []byte("hooked")},
	} {
		_, err := srv.SendMessage(ctx, req)
		require.ErrorIs(t, err, im.ErrInvalidArgument)
		require.Contains(t, err.Error(), "UTF-8")
	}
	msgs, err := srv.Store.Messages(ctx, aliceBob, 1, 0, 10)
	require.NoError(t, err)
	require.Empty(t, msgs, "nothing stored")
	_, err = srv.SendMessage(ctx, im.SendRequest{SenderID: alice, ReceiverID: bob, Type: im.TextMessage, Content: []byte("fine"), Extra: "ok ✓"})
	require.NoError(t, err)
}
