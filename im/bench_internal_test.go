package im

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"google.golang.org/protobuf/proto"
)

// The benchmarks here measure parts of the core alone: frames come from
// memory and go nowhere. BenchmarkSendPath (bench_test.go) measures the whole
// send path through the public API.

// discardConn is a Conn whose writes vanish; BenchmarkDeliver never reads.
type discardConn struct{}

func (discardConn) ReadFrame(ctx context.Context) (Frame, error) {
	<-ctx.Done()
	return Frame{}, ctx.Err()
}
func (discardConn) WriteFrames(context.Context, []Frame) error { return nil }
func (discardConn) Close() error                               { return nil }

// noStore satisfies Config.Store for benchmarks of code that never calls
// the store (fan-out, sync page assembly); a call would panic.
type noStore struct{ Store }

func benchServer(b *testing.B, cfg Config) *Server {
	b.Helper()
	cfg.Store = noStore{}
	cfg.Authenticator = AuthenticatorFunc(func(context.Context, string) (Identity, error) {
		return Identity{}, ErrUnauthenticated
	})
	s, err := NewServer(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkDeliver measures pushing one stored message to every session of
// its recipient: one marshal, then one queue append per session.
func BenchmarkDeliver(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			s := benchServer(b, Config{MaxSessionsPerUser: n + 1, SendQueue: 1 << 20})
			for i := 0; i < n; i++ {
				sess := &session{srv: s, conn: discardConn{}, user: "bob", id: fmt.Sprint(i), inflight: make(chan struct{}, 1)}
				sess.ctx, sess.cancel = context.WithCancel(context.Background())
				sess.authed.Store(true)
				s.hub.add(sess, AllowAllDevices, n+1, 0)
				b.Cleanup(func() { sess.close(nil); sess.writer.Wait() })
			}
			m := Message{ConversationID: SingleConversationID("alice", "bob"), SenderID: "alice", ReceiverID: "bob",
				ServerID: "0123456789abcdef0123456789abcdef", ClientMsgID: "c1", Type: TextMessage,
				Content: make([]byte, 256), CreatedAt: time.Now()}
			b.ReportAllocs()
			b.ResetTimer()
			op := new(commitOp)
			for i := 0; i < b.N; i++ {
				m.Seq = int64(i + 1)
				s.deliver(m, op, nil)
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "pushes/s")
		})
	}
}

// BenchmarkDeliverGroup measures pushing one group message to every member
// (one session each) but the sender: the cached member set, a hub lookup
// per member, one marshal.
func BenchmarkDeliverGroup(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			s := benchServer(b, Config{SendQueue: 1 << 20})
			members := make([]GroupMember, n)
			for i := range members {
				members[i] = GroupMember{UserID: fmt.Sprintf("member-%d", i), Role: RoleMember}
				sess := &session{srv: s, conn: discardConn{}, user: members[i].UserID, id: fmt.Sprint(i), inflight: make(chan struct{}, 1)}
				sess.ctx, sess.cancel = context.WithCancel(context.Background())
				sess.authed.Store(true)
				s.hub.add(sess, AllowAllDevices, 1, 0)
				b.Cleanup(func() { sess.close(nil); sess.writer.Wait() })
			}
			set := newMemberSet(Group{Version: 1}, members)
			s.groups.mu.Lock()
			s.groups.put("g", set)
			s.groups.mu.Unlock()
			m := Message{ConversationID: GroupConversationID("g"), SenderID: members[0].UserID,
				ServerID: "0123456789abcdef0123456789abcdef", ClientMsgID: "c1", Type: TextMessage,
				Content: make([]byte, 256), CreatedAt: time.Now()}
			op := &commitOp{members: set}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m.Seq = int64(i + 1)
				s.deliver(m, op, nil)
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "pushes/s")
		})
	}
}

// seqStore numbers messages and stores nothing, so that a benchmark of the
// commit loop measures what happens around the store. Only the commit loop
// calls it, one call at a time.
type seqStore struct {
	noStore
	seqs map[string]int64
}

func (s *seqStore) AppendMessages(_ context.Context, batch []AppendRequest) ([]AppendResult, error) {
	out := make([]AppendResult, len(batch))
	for i, r := range batch {
		s.seqs[r.Message.ConversationID]++
		r.Message.Seq = s.seqs[r.Message.ConversationID]
		out[i].Message = r.Message
	}
	return out, nil
}

// BenchmarkCommitDeliver measures the path from a send's submission to its
// completion, pushes included, with a store that costs nothing: the commit
// loop, the delivery stage (fan-out to every member's session, whose
// writer discards the frames) and the completion of each send. Messages go
// round-robin to groups groups of members members, one session each.
func BenchmarkCommitDeliver(b *testing.B) {
	for _, tc := range []struct{ groups, members int }{{1, 1000}, {10, 100}, {100, 10}} {
		b.Run(fmt.Sprintf("groups=%d/members=%d", tc.groups, tc.members), func(b *testing.B) {
			s := benchServer(b, Config{SendQueue: 1 << 20})
			s.store = &seqStore{seqs: map[string]int64{}}
			sets := make([]*memberSet, tc.groups)
			for g := range sets {
				members := make([]GroupMember, tc.members)
				for i := range members {
					members[i] = GroupMember{UserID: fmt.Sprintf("g%d-member-%d", g, i), Role: RoleMember}
					sess := &session{srv: s, conn: discardConn{}, user: members[i].UserID, id: members[i].UserID, inflight: make(chan struct{}, 1)}
					sess.ctx, sess.cancel = context.WithCancel(context.Background())
					sess.authed.Store(true)
					s.hub.add(sess, AllowAllDevices, 1, 0)
					b.Cleanup(func() { sess.close(nil); sess.writer.Wait() })
				}
				sets[g] = newMemberSet(Group{Version: 1}, members)
				s.groups.mu.Lock()
				s.groups.put(fmt.Sprint("g", g), sets[g])
				s.groups.mu.Unlock()
			}
			var wg sync.WaitGroup
			done := func(AppendResult, error, *heldWriters) { wg.Done() }
			b.ReportAllocs()
			b.ResetTimer()
			wg.Add(b.N)
			for i := 0; i < b.N; i++ {
				g := i % tc.groups
				m := Message{ConversationID: GroupConversationID(fmt.Sprint("g", g)), SenderID: fmt.Sprintf("g%d-member-0", g),
					ServerID: "0123456789abcdef0123456789abcdef", ClientMsgID: fmt.Sprint("c", i), Type: TextMessage,
					Content: make([]byte, 128), CreatedAt: time.Now()}
				if err := s.commits.submit(&commitOp{req: AppendRequest{Message: m}, members: sets[g], done: done}); err != nil {
					b.Fatal(err)
				}
			}
			wg.Wait()
			b.ReportMetric(float64(b.N*tc.members)/b.Elapsed().Seconds(), "pushes/s")
		})
	}
}

// BenchmarkSyncPage measures turning a page of stored messages into the
// wire form of a sync response.
func BenchmarkSyncPage(b *testing.B) {
	msgs := make([]Message, 100)
	for i := range msgs {
		msgs[i] = Message{ConversationID: "single_alice_bob", Seq: int64(i + 1), SenderID: "alice", ReceiverID: "bob",
			ServerID: "0123456789abcdef0123456789abcdef", ClientMsgID: "0123456789abcdef", Type: TextMessage,
			Content: make([]byte, 256), CreatedAt: time.Now()}
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		rsp := &imv1.SyncRangeResponse{ConversationId: "single_alice_bob"}
		rsp.Messages, _ = appendWithin(nil, msgs, syncByteBudget, true)
		if _, err := proto.Marshal(rsp); err != nil {
			b.Fatal(err)
		}
	}
}
