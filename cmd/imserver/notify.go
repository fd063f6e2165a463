package main

import (
	"context"
	"log/slog"

	"github.com/imserver/imserver/im"
)

// notificationLogger is the Notifier of -log-notifications: it logs each
// notification, without its content, so that an operator can see what an
// offline push would carry before wiring one up. Nil when off, which leaves
// the server without a Notifier and its cost.
func notificationLogger(on bool, log *slog.Logger) im.Notifier {
	if !on {
		return nil
	}
	return im.NotifierFunc(func(ctx context.Context, n im.Notification) error {
		log.LogAttrs(ctx, slog.LevelInfo, "offline notification",
			slog.String("user", n.UserID),
			slog.String("conv", n.ConversationID),
			slog.Int64("seq", n.Seq),
			slog.String("sender", n.SenderID),
			slog.Int("type", int(n.Type)),
			slog.Int64("badge", n.Badge),
			slog.Bool("muted", n.Muted),
			slog.Bool("recalled", n.Recalled))
		return nil
	})
}
