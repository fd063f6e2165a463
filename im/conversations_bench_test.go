package im_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/store/memstore"
)

// Sizes of BenchmarkConversationList: a user with listBenchConvs
// one-to-one conversations of one message each, listBenchPinned of them
// pinned and listBenchChanged of them with a new message since the
// listing an incremental one starts from.
const (
	listBenchConvs   = 10000
	listBenchPinned  = 20
	listBenchChanged = 20
)

// BenchmarkConversationList measures Server.Conversations for a user with
// 10,000 conversations: the first page of 50, and an incremental listing
// (since the version of an earlier one) of what changed. It runs on each
// store with whatever optional capabilities it has: read states and
// settings are filled in and read only where the store keeps them.
//
//	go test ./im -run '^$' -bench ConversationList -benchtime 20x
func BenchmarkConversationList(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) im.Store
	}{
		{"memstore", func(*testing.B) im.Store { return memstore.New() }},
		{"bolt", func(b *testing.B) im.Store {
			s, err := bolt.Open(filepath.Join(b.TempDir(), "im.db"), bolt.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			return s
		}},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			store := st.open(b)
			srv := imtest.NewServer(b, imtest.Options{Config: im.Config{Store: store, SendRate: -1, Logger: slog.New(slog.DiscardHandler)}})
			ctx := context.Background()
			fillListBench(b, srv, store)
			first, err := srv.Conversations(ctx, "lister", im.ConversationQuery{})
			if err != nil {
				b.Fatal(err)
			}
			if len(first.Conversations) != im.DefaultConversationPage {
				b.Fatalf("first page of %d conversations", len(first.Conversations))
			}
			for i := range listBenchChanged {
				if _, err := srv.SendMessage(ctx, im.SendRequest{SenderID: fmt.Sprintf("peer%05d", 5000+i), ReceiverID: "lister", Type: im.TextMessage, Content: []byte("news")}); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("first", func(b *testing.B) {
				for b.Loop() {
					p, err := srv.Conversations(ctx, "lister", im.ConversationQuery{})
					if err != nil || len(p.Conversations) != im.DefaultConversationPage {
						b.Fatalf("%d conversations, %v", len(p.Conversations), err)
					}
				}
			})
			b.Run("since", func(b *testing.B) {
				// What changed since the first listing: the new messages,
				// and the pins if the store keeps them, which were set
				// within the version's margin.
				want := listBenchChanged
				if _, ok := store.(im.ConversationSettingsStore); ok {
					want += listBenchPinned
				}
				for b.Loop() {
					p, err := srv.Conversations(ctx, "lister", im.ConversationQuery{Since: first.Version})
					if err != nil || len(p.Conversations) != want {
						b.Fatalf("%d conversations, want %d, %v", len(p.Conversations), want, err)
					}
				}
			})
		})
	}
}

// fillListBench gives the user "lister" listBenchConvs conversations of
// one message each, sent an hour ago, and, where the store keeps them,
// read positions in half of them and listBenchPinned pinned.
func fillListBench(b *testing.B, srv *imtest.Server, store im.Store) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	at := time.Now().Add(-time.Hour)
	var batch []im.AppendRequest
	var states []im.ReadState
	for i := range listBenchConvs {
		peer := fmt.Sprintf("peer%05d", i)
		conv := im.SingleConversationID(peer, "lister")
		batch = append(batch, im.AppendRequest{Message: im.Message{
			ConversationID: conv, ServerID: "bench-" + peer, SenderID: peer, ReceiverID: "lister",
			ClientMsgID: "bench-" + peer, Type: im.TextMessage,
			Content:   []byte("a message of some ordinary length, like most are"),
			CreatedAt: at.Add(time.Duration(i) * time.Millisecond),
		}, Members: []string{peer, "lister"}})
		if i%2 == 0 {
			states = append(states, im.ReadState{UserID: "lister", ConversationID: conv, Read: 1, UpdatedAt: at})
		}
		if len(batch) == 1000 || i == listBenchConvs-1 {
			res, err := store.AppendMessages(ctx, batch)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range res {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			batch = batch[:0]
		}
	}
	if rs, ok := store.(im.ReadStateStore); ok {
		if _, err := rs.UpdateReadStates(ctx, states); err != nil {
			b.Fatal(err)
		}
	}
	if _, ok := store.(im.ConversationSettingsStore); ok {
		for i := range listBenchPinned {
			conv := im.SingleConversationID(fmt.Sprintf("peer%05d", i*13), "lister")
			if _, err := srv.UpdateConversationSettings(ctx, "lister", conv, im.SettingsChange{Pinned: newPtr(true)}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
