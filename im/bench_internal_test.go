package im

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"google.golang.org/protobuf/proto"
)

// The benchmarks here measure parts of the core alone: frames come from
// memory and go nowhere. BenchmarkSendPath (bench_test.go) measures the whole
// send path through the public API.

// nopConn is a Conn whose writes vanish and whose reads come from a channel.
type nopConn struct {
	in      chan Frame
	written atomic.Int64
	acks    chan struct{} // one per SEND_MSG_RSP written, when not nil
	once    sync.Once
	closed  chan struct{}
}

func newNopConn() *nopConn {
	return &nopConn{in: make(chan Frame, 1024), closed: make(chan struct{})}
}

func (c *nopConn) ReadFrame(ctx context.Context) (Frame, error) {
	select {
	case f := <-c.in:
		return f, nil
	case <-c.closed:
		return Frame{}, io.EOF
	case <-ctx.Done():
		return Frame{}, ctx.Err()
	}
}

func (c *nopConn) WriteFrames(_ context.Context, frames []Frame) error {
	c.written.Add(int64(len(frames)))
	if c.acks != nil {
		for _, f := range frames {
			if f.Command == imv1.CommandType_CMD_SEND_MSG_RSP {
				c.acks <- struct{}{}
			}
		}
	}
	return nil
}

func (c *nopConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// memStore is the least a Store can be, so that send-path benchmarks show
// the core's own cost rather than a disk's.
type memStore struct {
	mu    sync.Mutex
	convs map[string][]Message
	dedup map[[2]string]Message
}

func newMemStore() *memStore {
	return &memStore{convs: map[string][]Message{}, dedup: map[[2]string]Message{}}
}

func (s *memStore) AppendMessages(ctx context.Context, batch []AppendRequest) ([]AppendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]AppendResult, len(batch))
	for i, r := range batch {
		k := [2]string{r.Message.SenderID, r.Message.ClientMsgID}
		if m, ok := s.dedup[k]; ok {
			out[i] = AppendResult{Message: m, Duplicate: true}
			continue
		}
		m := r.Message
		m.Seq = int64(len(s.convs[m.ConversationID]) + 1)
		s.convs[m.ConversationID] = append(s.convs[m.ConversationID], m)
		s.dedup[k] = m
		out[i] = AppendResult{Message: m}
	}
	return out, nil
}

func (s *memStore) Messages(ctx context.Context, conv string, from, to int64, limit int) ([]Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.convs[conv] {
		if m.Seq >= from && (to <= 0 || m.Seq <= to) && len(out) < limit {
			out = append(out, m)
		}
	}
	return out, nil
}

func (s *memStore) MessagesBefore(ctx context.Context, conv string, before int64, limit int) ([]Message, error) {
	return nil, errors.ErrUnsupported
}

func (s *memStore) Conversation(ctx context.Context, id string) (Conversation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.convs[id])
	if n == 0 {
		return Conversation{}, ErrNotFound
	}
	return Conversation{ID: id, MaxSeq: int64(n)}, nil
}

func (s *memStore) UserConversations(ctx context.Context, user string) ([]Conversation, error) {
	return nil, nil
}
func (s *memStore) CreateAccount(context.Context, Account) error { return errors.ErrUnsupported }
func (s *memStore) Account(context.Context, string) (Account, error) {
	return Account{}, ErrNotFound
}
func (s *memStore) AccountByUsername(context.Context, string) (Account, error) {
	return Account{}, ErrNotFound
}

func benchServer(b *testing.B, cfg Config) *Server {
	b.Helper()
	if cfg.Store == nil {
		cfg.Store = newMemStore()
	}
	cfg.Authenticator = AuthenticatorFunc(func(_ context.Context, token string) (Identity, error) {
		return Identity{UserID: token}, nil
	})
	cfg.SendRate = -1
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
				c := newNopConn()
				sess := &session{srv: s, conn: c, user: "bob", id: fmt.Sprint(i), inflight: make(chan struct{}, 1)}
				sess.ctx, sess.cancel = context.WithCancel(context.Background())
				sess.authed.Store(true)
				s.hub.add(sess, AllowAllDevices, n+1)
				b.Cleanup(func() { sess.close(nil); sess.writer.Wait() })
			}
			m := Message{ConversationID: SingleConversationID("alice", "bob"), SenderID: "alice", ReceiverID: "bob",
				ServerID: "0123456789abcdef0123456789abcdef", ClientMsgID: "c1", Type: TextMessage,
				Content: make([]byte, 256), CreatedAt: time.Now()}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m.Seq = int64(i + 1)
				s.deliver(m, nil)
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "pushes/s")
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
