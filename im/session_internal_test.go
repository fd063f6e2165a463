package im

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// A busy session reuses one write context; a quiet one keeps none, so an
// idle connection holds no timer and no hooks for it.
func TestWriteCtxKeptOnlyWhileBusy(t *testing.T) {
	s := &session{srv: &Server{cfg: Config{WriteTimeout: 10 * time.Second}}, ctx: context.Background()}
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	first, done := s.writeCtx(at(0))
	require.Nil(t, s.wctx, "a first write gets a context of its own")
	done()
	require.Error(t, first.Err(), "and it ends with the write")

	busy, done := s.writeCtx(at(100 * time.Millisecond))
	require.Same(t, s.wctx, busy, "a write soon after another reuses a context")
	done()
	require.NoError(t, busy.Err(), "which outlives the write")
	again, _ := s.writeCtx(at(200 * time.Millisecond))
	require.Equal(t, busy, again)
	dl, _ := again.Deadline()
	require.Equal(t, at(10*time.Second+100*time.Millisecond), dl)

	// Less than nine tenths of the timeout left: renewed.
	renewed, _ := s.writeCtx(at(1100*time.Millisecond + time.Millisecond))
	require.NotEqual(t, busy, renewed)
	require.Error(t, busy.Err(), "the old one is released")
	dl, _ = renewed.Deadline()
	require.Equal(t, at(11*time.Second+101*time.Millisecond), dl)

	// Quiet for more than a second: released, and the write gets its own.
	quiet, done := s.writeCtx(at(3 * time.Second))
	require.Nil(t, s.wctx)
	require.Error(t, renewed.Err())
	done()
	require.Error(t, quiet.Err())
}

// gateConn is a Conn whose writes wait until the test lets them go.
type gateConn struct {
	discardConn
	gate chan struct{}
}

func (c gateConn) WriteFrames(ctx context.Context, _ []Frame) error {
	select {
	case <-c.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// The backlog counts what waits and what is being written, pushes apart,
// and returns to zero once everything is out, so the reader never stays
// paused on bytes already written.
func TestBacklogAccounting(t *testing.T) {
	gate := make(chan struct{})
	s := &session{
		srv:  &Server{cfg: Config{WriteTimeout: 10 * time.Second, SendQueue: 100, SendQueueBytes: 1000}},
		conn: gateConn{gate: gate},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer s.cancel()
	frame := func(n int) Frame { return Frame{Body: make([]byte, n-frameOverhead)} }

	require.True(t, s.put(frame(300), false, nil, nil)) // taken by the writer, which waits at the gate
	require.True(t, s.enqueue(frame(300)))
	s.mu.Lock()
	require.Equal(t, backlog{2, 600}, s.queued)
	require.Equal(t, backlog{1, 300}, s.pushed)
	require.True(t, s.full(), "over half of SendQueueBytes")
	s.mu.Unlock()

	// A response is never refused; a push past the byte bound is.
	require.True(t, s.put(frame(800), false, nil, nil))
	require.True(t, s.enqueue(frame(700)), "pushes weigh 1000: at the bound, not past it")
	require.False(t, s.enqueue(frame(40)), "past it: the session is closed")
	require.True(t, s.isClosed())
	require.ErrorIs(t, s.reason(), ErrSlowConsumer)
	close(gate)
	s.writer.Wait()

	// A session that drains wakes its reader and ends at zero.
	gate = make(chan struct{})
	s = &session{
		srv:  &Server{cfg: Config{WriteTimeout: 10 * time.Second, SendQueue: 100, SendQueueBytes: 1000}},
		conn: gateConn{gate: gate},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer s.cancel()
	require.True(t, s.put(frame(900), false, nil, nil))
	woke := make(chan struct{})
	go func() {
		s.waitForRoom()
		close(woke)
	}()
	require.Eventually(t, s.paused.Load, 5*time.Second, time.Millisecond, "the reader waits")
	close(gate)
	select {
	case <-woke:
	case <-time.After(5 * time.Second):
		t.Fatal("the reader was not woken once the queue drained")
	}
	s.writer.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Equal(t, backlog{}, s.queued)
	require.Equal(t, backlog{}, s.pushed)
}

// frameConn is a Conn that hands every frame written to it to out.
type frameConn struct {
	discardConn
	out chan Frame
}

func (c frameConn) WriteFrames(_ context.Context, fs []Frame) error {
	for _, f := range fs {
		c.out <- f
	}
	return nil
}

// A response that cannot be encoded (a string that is not UTF-8) is still
// answered, with an internal error in the request's own response command,
// so the client is not left waiting for its timeout.
func TestUnencodableResponseAnswered(t *testing.T) {
	out := make(chan Frame, 1)
	s := &session{
		srv:  &Server{cfg: Config{WriteTimeout: 10 * time.Second, SendQueue: 100, SendQueueBytes: 1 << 20}, log: slog.New(slog.DiscardHandler)},
		conn: frameConn{out: out},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer s.cancel()

	s.respond(imv1.CommandType_CMD_SYNC_RANGE_RSP, 7, &imv1.SyncRangeResponse{ConversationId: "bad\xff"})
	var f Frame
	select {
	case f = <-out:
	case <-time.After(5 * time.Second):
		t.Fatal("no response")
	}
	s.writer.Wait()
	require.Equal(t, imv1.CommandType_CMD_SYNC_RANGE_RSP, f.Command)
	require.Equal(t, uint32(7), f.Sequence)
	var rsp imv1.SyncRangeResponse
	require.NoError(t, proto.Unmarshal(f.Body, &rsp))
	require.Equal(t, imv1.ErrorCode_ERR_UNKNOWN, rsp.ErrorCode)
	require.NotEmpty(t, rsp.ErrorMsg)
}

// recordConn is a Conn that records how many frames each write carried.
type recordConn struct {
	discardConn
	writes chan int
}

func (c recordConn) WriteFrames(_ context.Context, frames []Frame) error {
	c.writes <- len(frames)
	return nil
}

// Frames queued with held writers wait for held.start, and then go out in
// one write: what a delivery goroutine does with a committed batch's acks
// and pushes to one connection.
func TestHeldWriterWritesOnce(t *testing.T) {
	conn := recordConn{writes: make(chan int, 10)}
	s := &session{
		srv:  &Server{cfg: Config{WriteTimeout: 10 * time.Second, SendQueue: 100, SendQueueBytes: 1 << 20}},
		conn: conn,
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer s.cancel()

	var held heldWriters
	body := []byte("x")
	require.True(t, s.put(Frame{Command: imv1.CommandType_CMD_SEND_MSG_RSP, Body: body}, false, nil, &held))
	require.True(t, s.enqueueMessage(Frame{Command: imv1.CommandType_CMD_PUSH_MSG, Body: body}, nil, &held))
	require.True(t, s.put(Frame{Command: imv1.CommandType_CMD_SEND_MSG_RSP, Body: body}, false, nil, &held))
	require.Len(t, held.sessions, 1, "one writer held, however many frames")
	select {
	case n := <-conn.writes:
		t.Fatalf("a write of %d frames before the writers were started", n)
	default:
	}

	held.start()
	require.Empty(t, held.sessions)
	require.Equal(t, 3, <-conn.writes, "the three frames in one write")
	s.writer.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.False(t, s.writing)
	require.Zero(t, s.queued)
}
