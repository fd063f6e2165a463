package im_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/stretchr/testify/require"
)

// tokenIsUser is an Authenticator for tests: the token is the user id.
var tokenIsUser = im.AuthenticatorFunc(func(_ context.Context, token string) (im.Identity, error) {
	return im.Identity{UserID: token}, nil
})

func TestStuckAfterSendHoldsUpNoDelivery(t *testing.T) {
	const (
		n       = 10240
		senders = 32
		queue   = 256
	)
	release := make(chan struct{})
	var (
		called atomic.Int64
		logs   logBuffer
	)
	start := time.Now()
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{
		Logger:         slog.New(slog.NewTextHandler(&logs, nil)),
		SendRate:       -1,
		AfterSendQueue: queue,
		AfterSend: func(im.Message) {
			<-release // stuck until the test lets it go
			called.Add(1)
		},
	}})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the server's shutdown, which waits for the hook

	b := dialPushes(t, srv.TCPAddr, bob, srv.Token(t, bob))
	a := srv.DialWith(t, client.Options{Transport: "tcp", UserID: alice, RequestTimeout: time.Minute})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		wg    sync.WaitGroup
		acked atomic.Int64
		errs  = make(chan error, senders)
	)
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n / senders {
				if _, err := a.Send(ctx, client.Outgoing{ReceiverID: bob, Type: im.TextMessage, Content: []byte(fmt.Sprint(g, " ", i))}); err != nil {
					errs <- err
					return
				}
				acked.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("send failed (%d of %d acked): %v", acked.Load(), n, err)
	}
	waitFor(t, func() bool { return b.count() == n }, "%d of %d messages pushed", b.count(), n)
	require.Equal(t, upTo(1, n), b.seqs(aliceBob), "pushed in seq order")

	// The hook holds one message, its queue up to queue more; the rest
	// were dropped and counted.
	dropped := srv.Stats().AfterSendDropped
	require.GreaterOrEqual(t, dropped, uint64(n-queue-1))
	require.Zero(t, called.Load())
	// Drops are logged, but not one line each.
	lines := strings.Count(logs.String(), "AfterSend is behind")
	require.GreaterOrEqual(t, lines, 1)
	require.LessOrEqual(t, lines, 1+int(time.Since(start)/(10*time.Second)))

	// Let it go: it is called for exactly the messages not dropped.
	unblock()
	waitFor(t, func() bool { return called.Load() == int64(n)-int64(dropped) },
		"AfterSend called %d times, want %d", called.Load(), int64(n)-int64(dropped))
	require.Equal(t, dropped, srv.Stats().AfterSendDropped)
}

// logBuffer collects log output for tests that check what was logged.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func TestHookPanicsAreRecovered(t *testing.T) {
	var (
		logs      logBuffer
		afterMu   sync.Mutex
		afterSeen []string
		connected = make(chan string, 16)
		gone      = make(chan string, 16)
	)
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Authenticator: im.AuthenticatorFunc(func(ctx context.Context, token string) (im.Identity, error) {
			if token == "panic" {
				panic("authenticator exploded")
			}
			return tokenIsUser(ctx, token)
		}),
		Users: userDirectoryFunc(func(_ context.Context, u string) (bool, error) {
			if u == "ghost" {
				panic("directory exploded")
			}
			return true, nil
		}),
		BeforeSend: func(_ context.Context, m *im.Message) error {
			if string(m.Content) == "panic before" {
				panic("before-send exploded")
			}
			return nil
		},
		AfterSend: func(m im.Message) {
			if string(m.Content) == "panic after" {
				panic("after-send exploded")
			}
			afterMu.Lock()
			afterSeen = append(afterSeen, string(m.Content))
			afterMu.Unlock()
		},
		OnConnect: func(s im.SessionInfo) {
			if s.UserID == "mallory" {
				panic("on-connect exploded")
			}
			connected <- s.UserID
		},
		OnDisconnect: func(s im.SessionInfo, _ error) {
			if s.UserID == "trudy" {
				panic("on-disconnect exploded")
			}
			gone <- s.UserID
		},
	}})
	dial := func(user string) *client.Client {
		return srv.DialWith(t, client.Options{Transport: "tcp", UserID: user, Token: user})
	}
	a := dial(alice)
	b := dial(bob)
	require.Equal(t, alice, <-connected)
	require.Equal(t, bob, <-connected)
	ctx := testCtx(t)

	// alice and bob still talk, over the connections they had all along.
	stillServing := func(what string) {
		t.Helper()
		rsp := sendText(t, a, bob, what)
		m := nextMessage(t, b)
		require.Equal(t, rsp.Seq, m.Seq, "after %s", what)
		require.Equal(t, what, string(m.Content))
	}
	internal := func(err error) {
		t.Helper()
		var ce *client.Error
		require.ErrorAs(t, err, &ce)
		require.Equal(t, imv1.ErrorCode_ERR_UNKNOWN, ce.Code)
		require.Equal(t, "internal error", ce.Msg, "the panic is not shown to the client")
	}
	logged := func(hook, value string) {
		t.Helper()
		waitFor(t, func() bool { return strings.Contains(logs.String(), "hook="+hook) }, "no log of the %s panic", hook)
		out := logs.String()
		require.Contains(t, out, value)
		require.Contains(t, out, "hooks_test.go", "the stack is logged")
	}

	t.Run("Authenticator", func(t *testing.T) {
		_, err := client.Dial(ctx, client.Options{Addr: srv.TCPAddr, Transport: "tcp", UserID: "panic", Token: "panic"})
		internal(err)
		logged("Authenticator", "authenticator exploded")
		stillServing("after Authenticator")
	})
	t.Run("BeforeSend", func(t *testing.T) {
		_, err := a.Send(ctx, client.Outgoing{ReceiverID: bob, Type: im.TextMessage, Content: []byte("panic before")})
		internal(err)
		logged("BeforeSend", "before-send exploded")
		stillServing("after BeforeSend")
	})
	t.Run("Users", func(t *testing.T) {
		_, err := a.Send(ctx, client.Outgoing{ReceiverID: "ghost", Type: im.TextMessage, Content: []byte("boo")})
		internal(err)
		logged("UserDirectory", "directory exploded")
		stillServing("after UserDirectory")
	})
	t.Run("AfterSend", func(t *testing.T) {
		sendText(t, a, bob, "panic after")
		require.Equal(t, "panic after", string(nextMessage(t, b).Content))
		logged("AfterSend", "after-send exploded")
		stillServing("after AfterSend")
		// Only the call that panicked is lost.
		waitFor(t, func() bool {
			afterMu.Lock()
			defer afterMu.Unlock()
			return len(afterSeen) > 0 && afterSeen[len(afterSeen)-1] == "after AfterSend"
		}, "AfterSend not called after its panic")
	})
	t.Run("OnConnect", func(t *testing.T) {
		m := dial("mallory")
		logged("OnConnect", "on-connect exploded")
		// The session that OnConnect panicked for works.
		_, err := m.Send(ctx, client.Outgoing{ReceiverID: bob, Type: im.TextMessage, Content: []byte("hi from mallory")})
		require.NoError(t, err)
		require.Equal(t, "hi from mallory", string(nextMessage(t, b).Content))
		stillServing("after OnConnect")
	})
	t.Run("OnDisconnect", func(t *testing.T) {
		tr := dial("trudy")
		require.Equal(t, "trudy", <-connected)
		require.NoError(t, tr.Close())
		logged("OnDisconnect", "on-disconnect exploded")
		stillServing("after OnDisconnect")
		// The hooks still run for others.
		c := dial(carol)
		require.Equal(t, carol, <-connected)
		require.NoError(t, c.Close())
		require.Equal(t, carol, <-gone)
	})
}

func TestConnContextPanicRefusesOnlyThatConnection(t *testing.T) {
	var (
		logs    logBuffer
		explode atomic.Bool
	)
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{
		Logger:        slog.New(slog.NewTextHandler(&logs, nil)),
		Authenticator: tokenIsUser,
		ConnContext: func(ctx context.Context, _ im.ConnInfo) context.Context {
			if explode.Load() {
				panic("conn-context exploded")
			}
			return ctx
		},
	}})
	ctx := testCtx(t)
	a := srv.DialWith(t, client.Options{Transport: "tcp", UserID: alice, Token: alice})
	b := srv.DialWith(t, client.Options{Transport: "tcp", UserID: bob, Token: bob})

	explode.Store(true)
	_, err := client.Dial(ctx, client.Options{Addr: srv.TCPAddr, Transport: "tcp", UserID: carol, Token: carol})
	require.Error(t, err, "the connection whose ConnContext panicked is refused")
	waitFor(t, func() bool { return strings.Contains(logs.String(), "hook=ConnContext") }, "no log of the ConnContext panic")
	require.Contains(t, logs.String(), "conn-context exploded")

	explode.Store(false)
	rsp := sendText(t, a, bob, "still here")
	require.Equal(t, rsp.Seq, nextMessage(t, b).Seq)
	c := srv.DialWith(t, client.Options{Transport: "tcp", UserID: carol, Token: carol})
	sendText(t, c, alice, "and carol too")
}

type userDirectoryFunc func(ctx context.Context, userID string) (bool, error)

func (f userDirectoryFunc) UserExists(ctx context.Context, userID string) (bool, error) {
	return f(ctx, userID)
}

func TestAfterSendQueueMustBePositive(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	_, err := im.NewServer(im.Config{Store: srv.Store, Authenticator: tokenIsUser, AfterSendQueue: -1})
	require.ErrorContains(t, err, "AfterSendQueue")
}

func TestShutdownHandsQueuedMessagesToAfterSend(t *testing.T) {
	const n = 5
	release := make(chan struct{})
	var called atomic.Int64
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{
		AfterSend: func(im.Message) {
			<-release
			called.Add(1)
		},
	}})
	for i := range n {
		_, err := srv.SendMessage(testCtx(t), im.SendRequest{SenderID: alice, ReceiverID: bob, Type: im.TextMessage, Content: []byte(content(i))})
		require.NoError(t, err)
	}
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(testCtx(t)) }()
	close(release)
	require.NoError(t, <-shut)
	require.EqualValues(t, n, called.Load(), "every queued message reached AfterSend")
	require.Zero(t, srv.Stats().AfterSendDropped)
}
