package im_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/store/sqlstore"
	"github.com/imserver/imserver/store/sqlstore/sqltest"
)

// Sizes of BenchmarkBatchSync: a user in syncBenchGroups groups, each with
// its creation notice and syncBenchMsgs messages, of which
// syncBenchChanged moved on by two messages since the client's cursor.
const (
	syncBenchGroups  = 500
	syncBenchMsgs    = 3
	syncBenchChanged = 50
)

// BenchmarkBatchSync measures one BATCH_SYNC, from the request over TCP to
// the response, for a user in 500 groups, on each store, through a Server
// whose Store is an im.SyncStore (batched) and one whose Store hides it
// (fallback: one read per group and per changed conversation). Both Servers
// share the store, so both paths read the same data in the same run.
//
//	IM_TEST_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  go test ./im -run '^$' -bench BatchSync -benchtime 200x
func BenchmarkBatchSync(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) im.Store
	}{
		{"bolt", func(b *testing.B) im.Store {
			s, err := bolt.Open(filepath.Join(b.TempDir(), "im.db"), bolt.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			return s
		}},
		{"postgres", func(b *testing.B) im.Store {
			db, err := sql.Open("pgx", sqltest.Postgres(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = db.Close() })
			s, err := sqlstore.New(context.Background(), db, sqlstore.Options{Dialect: sqlstore.Postgres})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			store := st.open(b)
			plain := &plainStore{Store: store}
			withSync := &batchedStore{plainStore: &plainStore{Store: store}, sync: store.(im.SyncStore)}
			newServer := func(s im.Store) *imtest.Server {
				// The owner adds the syncer to 500 groups without a
				// conversation between them: no consent rule, no rate.
				return imtest.NewServer(b, imtest.Options{Config: im.Config{Store: s, SendRate: -1, Logger: slog.New(slog.DiscardHandler),
					GroupAddPolicy:     func(context.Context, string, string) error { return nil },
					GroupAddsPerMinute: -1}})
			}
			fallback, batched := newServer(plain), newServer(withSync)
			cursors := fillSyncBench(b, batched, store)
			paths := []struct {
				name  string
				srv   *imtest.Server
				reads func() int64
			}{{"fallback", fallback, plain.reads}, {"batched", batched, withSync.reads}}
			if sc, ok := store.(im.MessageRangeScanner); ok {
				scanned := &scannedStore{batchedStore: &batchedStore{plainStore: &plainStore{Store: store}, sync: store.(im.SyncStore)}, scan: sc}
				paths = append(paths, struct {
					name  string
					srv   *imtest.Server
					reads func() int64
				}{"scanned", newServer(scanned), scanned.reads})
			}
			for _, path := range paths {
				b.Run(path.name, func(b *testing.B) {
					c := path.srv.Dial(b, "tcp", "syncer")
					ctx := context.Background()
					var convs, msgs int
					before := path.reads()
					for b.Loop() {
						rsp, err := c.BatchSync(ctx, cursors, 100)
						if err != nil {
							b.Fatal(err)
						}
						convs, msgs = len(rsp.ConversationMessages), int(rsp.TotalMessageCount)
					}
					// Store calls per sync; the Dial's AUTH is not counted
					// since it ran before.
					b.ReportMetric(float64(path.reads()-before)/float64(b.N), "reads/op")
					if convs != syncBenchChanged || msgs != 2*syncBenchChanged {
						b.Fatalf("a sync returned %d conversations and %d messages, want %d and %d", convs, msgs, syncBenchChanged, 2*syncBenchChanged)
					}
				})
			}
		})
	}
}

// fillSyncBench makes the user "syncer" a member of syncBenchGroups groups
// and returns the client's cursors: every group read up to its newest
// message but syncBenchChanged of them, read up to two before.
func fillSyncBench(b *testing.B, srv *imtest.Server, store im.Store) map[string]int64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cursors := make(map[string]int64, syncBenchGroups)
	var batch []im.AppendRequest
	for i := range syncBenchGroups {
		g, err := srv.CreateGroup(ctx, "owner", im.GroupSpec{Name: fmt.Sprintf("g%d", i)}, []string{"syncer"})
		if err != nil {
			b.Fatal(err)
		}
		conv := im.GroupConversationID(g.ID)
		for j := range syncBenchMsgs {
			batch = append(batch, im.AppendRequest{Message: im.Message{
				ConversationID: conv, ServerID: fmt.Sprintf("s%d-%d", i, j), SenderID: "owner",
				ClientMsgID: fmt.Sprintf("c%d-%d", i, j), Type: im.TextMessage,
				Content: []byte("a message of some ordinary length, like most are"), CreatedAt: time.Now(),
			}})
		}
		cursors[conv] = 1 + syncBenchMsgs // the notice and the messages
		if i < syncBenchChanged {
			cursors[conv] -= 2
		}
	}
	res, err := store.AppendMessages(ctx, batch)
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	return cursors
}
