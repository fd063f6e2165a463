package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/stretchr/testify/require"
)

// -log-notifications logs a line per notification of a user who is not
// connected, without the message's content; without it there is no
// Notifier at all.
func TestLogNotificationsFlag(t *testing.T) {
	require.Nil(t, notificationLogger(false, slog.New(slog.DiscardHandler)))

	logs := new(syncBuffer)
	l, _ := start(t, t.TempDir(), logs, "-log-notifications", "-bcrypt-cost", "10")
	base := "http://" + l.HTTP.String()
	a, b := registerAndLogin(t, base, "alice"), registerAndLogin(t, base, "bobby")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{Addr: l.TCP.String(), UserID: a.UserID, Token: a.Token})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Send(ctx, client.Outgoing{ReceiverID: b.UserID, Type: im.TextMessage, Content: []byte("secret words")})
	require.NoError(t, err)

	line := func() string {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "offline notification") {
				return l
			}
		}
		return ""
	}
	deadline := time.Now().Add(time.Minute)
	for line() == "" {
		require.True(t, time.Now().Before(deadline), "no notification logged")
		time.Sleep(10 * time.Millisecond)
	}
	require.Contains(t, line(), "level=INFO")
	require.Contains(t, line(), "user="+b.UserID)
	require.Contains(t, line(), "sender="+a.UserID)
	require.Contains(t, line(), "seq=1")
	require.Contains(t, line(), "badge=")
	require.NotContains(t, logs.String(), "secret words")
}
