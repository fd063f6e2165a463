package im_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/store/memstore"
	"google.golang.org/protobuf/proto"
)

// memConn is a Conn fed from memory whose writes only count acks, so that
// the send-path benchmark measures the core and the store, not a network.
type memConn struct {
	in     chan im.Frame
	acks   chan struct{}
	once   sync.Once
	closed chan struct{}
}

func (c *memConn) ReadFrame(ctx context.Context) (im.Frame, error) {
	select {
	case f := <-c.in:
		return f, nil
	case <-c.closed:
		return im.Frame{}, io.EOF
	}
}

func (c *memConn) WriteFrames(_ context.Context, frames []im.Frame) error {
	for _, f := range frames {
		if f.Command == imv1.CommandType_CMD_SEND_MSG_RSP {
			c.acks <- struct{}{}
		}
	}
	return nil
}

func (c *memConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// BenchmarkSendPath measures the core's whole send path with a real bbolt
// store (fsync'd): decode, checks, group commit, push to the recipient's
// session, ack to the sender, with conns senders at once, each with up to
// 64 sends in flight. msgs/s is acknowledged messages per second.
func BenchmarkSendPath(b *testing.B) {
	for _, conns := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			store, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			benchSendPath(b, store, conns)
		})
	}
}

// BenchmarkSendPathFriends compares the send path over a store without
// friends (no relation check) with one that has them and no blocks, where
// every one-to-one message asks the Server's relation cache. The store is
// in memory, so that the difference is not lost in fsync time.
func BenchmarkSendPathFriends(b *testing.B) {
	for _, friends := range []bool{false, true} {
		b.Run(fmt.Sprintf("friends=%v", friends), func(b *testing.B) {
			mem := memstore.New()
			var store im.Store = struct{ im.Store }{mem}
			if friends {
				store = struct {
					im.Store
					im.FriendStore
				}{mem, mem}
			}
			benchSendPath(b, store, 16)
		})
	}
}

func benchSendPath(b *testing.B, store im.Store, conns int) {
	srv, err := im.NewServer(im.Config{
		Store: store,
		Authenticator: im.AuthenticatorFunc(func(_ context.Context, token string) (im.Identity, error) {
			return im.Identity{UserID: token}, nil
		}),
		// On, but never reached: its cost is part of the path.
		SendRate:    1e9,
		MaxInflight: 64,
		SendQueue:   1 << 16,
	})
	if err != nil {
		b.Fatal(err)
	}
	var sessions sync.WaitGroup
	defer func() {
		_ = srv.Close()
		sessions.Wait()
	}()
	dial := func(user string) *memConn {
		c := &memConn{in: make(chan im.Frame, 64), acks: make(chan struct{}, 1<<16), closed: make(chan struct{})}
		sessions.Add(1)
		go func() {
			defer sessions.Done()
			_ = srv.ServeConn(context.Background(), c, im.ConnInfo{Token: user})
		}()
		return c
	}
	senders := make([]*memConn, conns)
	for i := range senders {
		senders[i] = dial(fmt.Sprintf("user%d", i))
		dial(fmt.Sprintf("peer%d", i))
	}
	for i := range senders {
		for len(srv.Sessions(fmt.Sprintf("peer%d", i))) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	content := make([]byte, 256)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, c := range senders {
		n := b.N / conns
		if i < b.N%conns {
			n++
		}
		peer := fmt.Sprintf("peer%d", i)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < n; j++ {
				<-c.acks
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < n; j++ {
				body, _ := proto.Marshal(&imv1.SendMessageRequest{Message: &imv1.MessageInfo{
					ClientMsgId: fmt.Sprintf("c%d", j), ReceiverId: peer, MessageType: 1, Content: content}})
				c.in <- im.Frame{Command: imv1.CommandType_CMD_SEND_MSG_REQ, Sequence: uint32(j + 1), Body: body}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
