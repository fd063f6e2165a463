package main

import (
	"context"
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

func TestBotAnswersNewAndMissedMessages(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	alice := srv.Dial(t, "tcp", "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Sent while the bot is offline: answered when it starts.
	_, err := alice.Send(ctx, client.Outgoing{ReceiverID: "helper", Type: im.TextMessage, Content: []byte("anyone there?")})
	require.NoError(t, err)

	botCtx, stopBot := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(botCtx, client.Options{Addr: srv.TCPAddr, UserID: "helper", Token: srv.Token(t, "helper")})
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
			require.Equal(t, "helper", m.SenderId)
			return string(m.Content)
		case <-ctx.Done():
			t.Fatal("no answer from the bot")
			return ""
		}
	}
	require.Equal(t, "you said: anyone there?", next())

	_, err = alice.Send(ctx, client.Outgoing{ReceiverID: "helper", Type: im.TextMessage, Content: []byte("hello")})
	require.NoError(t, err)
	require.Equal(t, "you said: hello", next())

	// Not a text: no answer.
	_, err = alice.Send(ctx, client.Outgoing{ReceiverID: "helper", Type: im.ImageMessage, Content: []byte("img")})
	require.NoError(t, err)
	select {
	case p := <-alice.Pushes():
		t.Fatalf("unexpected push %v", p.Message)
	case <-time.After(300 * time.Millisecond):
	}
}
