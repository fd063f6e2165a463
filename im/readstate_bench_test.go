package im_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/bolt"
)

// benchStoreServer is a Server on a fresh bbolt store (fsync'd), with
// aliceBob holding n messages by from, appended straight to the store in
// large batches; it returns their server ids in seq order.
func benchStoreServer(b *testing.B, n int, from string) (*im.Server, []string) {
	b.Helper()
	store, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	srv, err := im.NewServer(im.Config{
		Store: store,
		Authenticator: im.AuthenticatorFunc(func(_ context.Context, token string) (im.Identity, error) {
			return im.Identity{UserID: token}, nil
		}),
		ReadReceiptRate: -1,
		RecallWindow:    -1,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	ids := make([]string, 0, n)
	now := time.Now()
	for len(ids) < n {
		batch := make([]im.AppendRequest, 0, 1000)
		for i := len(ids); i < n && len(batch) < 1000; i++ {
			id := fmt.Sprintf("%032x", i+1)
			batch = append(batch, im.AppendRequest{
				Message: im.Message{
					ConversationID: aliceBob, ServerID: id, SenderID: from, ReceiverID: peerOfBench(from),
					ClientMsgID: fmt.Sprintf("c%d", i), Type: im.TextMessage, Content: []byte("benchmark message content"),
					CreatedAt: now,
				},
				Members: []string{alice, bob},
			})
			ids = append(ids, id)
		}
		if _, err := store.AppendMessages(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	return srv, ids
}

func peerOfBench(u string) string {
	if u == alice {
		return bob
	}
	return alice
}

// BenchmarkMarkRead is the cost of a read receipt through the Go API on
// bbolt: the reads that find the named message, one store commit (an
// fsync), and the pushes (to nobody connected). covers is how many messages
// each receipt reads, which must not change the cost much: a receipt is one
// position, whatever it covers.
func BenchmarkMarkRead(b *testing.B) {
	for _, covers := range []int{1, 100} {
		b.Run(fmt.Sprintf("covers=%d", covers), func(b *testing.B) {
			srv, ids := benchStoreServer(b, (b.N+1)*covers, bob)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := srv.MarkRead(ctx, alice, aliceBob, []string{ids[(i+1)*covers-1]}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadStates is the cost of asking for a user's read state and
// unread counts over her conversations (READ_STATE_REQ with none named).
func BenchmarkReadStates(b *testing.B) {
	srv, _ := benchStoreServer(b, 100, bob)
	ctx := context.Background()
	if _, err := srv.MarkRead(ctx, alice, aliceBob, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := srv.UnreadCount(ctx, alice); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecall is the cost of a recall through the Go API on bbolt:
// finding the message by its server id among the newest, one store commit,
// and the pushes (to nobody connected).
func BenchmarkRecall(b *testing.B) {
	srv, ids := benchStoreServer(b, b.N, alice)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	// Newest first: each recall finds its message at once, as a recall
	// within its window does.
	for i := b.N - 1; i >= 0; i-- {
		if _, err := srv.RecallMessage(ctx, alice, aliceBob, ids[i]); err != nil {
			b.Fatal(err)
		}
	}
}
