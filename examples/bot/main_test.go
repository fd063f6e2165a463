package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// logBuffer collects the bot's log lines, written on its goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestBotAnswersNewAndMissedMessages(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	alice := srv.Dial(t, "tcp", "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Sent while the bot is offline: answered when it starts.
	_, err := alice.Send(ctx, client.Outgoing{ReceiverID: "echobot", Type: im.TextMessage, Content: []byte("anyone there?")})
	require.NoError(t, err)

	botCtx, stopBot := context.WithCancel(ctx)
	done := make(chan error, 1)
	logs := new(logBuffer)
	go func() {
		done <- run(botCtx, client.Options{Addr: srv.TCPAddr, UserID: "echobot", Token: srv.Token(t, "echobot")}, slog.New(slog.NewTextHandler(logs, nil)))
	}()
	defer func() {
		stopBot()
		require.ErrorIs(t, <-done, context.Canceled)
	}()

	next := func() string {
		t.Helper()
		select {
		case p := <-alice.Pushes():
			m := p.Message.(*imv1.PushMessage).Message
			require.Equal(t, "echobot", m.SenderId)
			return string(m.Content)
		case <-ctx.Done():
			t.Fatal("no answer from the bot")
			return ""
		}
	}
	require.Equal(t, "you said: anyone there?", next())

	_, err = alice.Send(ctx, client.Outgoing{ReceiverID: "echobot", Type: im.TextMessage, Content: []byte("hello")})
	require.NoError(t, err)
	require.Equal(t, "you said: hello", next())

	// It says what it does: connecting, logged in, caught up on the
	// missed message, waiting, and each reply.
	for _, want := range []string{"msg=connecting", `msg="logged in" user=echobot`, `msg="caught up" messages=1`, `msg="waiting for messages"`, "msg=replied to=alice"} {
		require.Eventually(t, func() bool { return strings.Contains(logs.String(), want) }, 5*time.Second, 10*time.Millisecond, "%q in\n%s", want, logs)
	}
	require.Eventually(t, func() bool { return strings.Count(logs.String(), "msg=replied") == 2 }, 5*time.Second, 10*time.Millisecond, "two replies in\n%s", logs)

	// Not a text: no answer.
	_, err = alice.Send(ctx, client.Outgoing{ReceiverID: "echobot", Type: im.ImageMessage, Content: []byte("img")})
	require.NoError(t, err)
	select {
	case p := <-alice.Pushes():
		t.Fatalf("unexpected push %v", p.Message)
	case <-time.After(300 * time.Millisecond):
	}
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), `msg="not answering: not a one-to-one text" from=alice`)
	}, 5*time.Second, 10*time.Millisecond, "%s", logs)
}
