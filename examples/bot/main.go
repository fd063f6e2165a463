// Command bot is a chat bot for imserver: it connects as a user with
// im/client, answers every one-to-one message it gets, and reconnects on
// its own when the server goes away, catching up on what it missed.
//
//	go run ./examples/bot -addr 127.0.0.1:8082 -user <bot user id> -token <its token>
//
// The token comes from the server's login (POST /api/auth/login) like any
// user's. The bot logs what it does to standard output: connecting, logged
// in, caught up, waiting, and each reply (who to, in which conversation).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imv1"
)

func main() {
	var o client.Options
	flag.StringVar(&o.Transport, "transport", client.TransportTCP, "tcp or websocket")
	flag.StringVar(&o.Addr, "addr", "127.0.0.1:8082", "server address (ws://host:8081/ws for websocket)")
	flag.StringVar(&o.UserID, "user", "", "the bot's user id")
	flag.StringVar(&o.Token, "token", os.Getenv("BOT_TOKEN"), "the bot's token (or BOT_TOKEN)")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stdout, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o, logger)
	stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("bot stopped", "err", err)
		os.Exit(1)
	}
	logger.Info("bot stopped")
}

// reply is what the bot answers to a message.
func reply(m *imv1.MessageInfo) []byte {
	return fmt.Appendf(nil, "you said: %s", m.Content)
}

// run answers messages until ctx ends or the bot is kicked out, telling
// log what it does. The client logs to it too, so its reconnections show.
func run(ctx context.Context, o client.Options, log *slog.Logger) error {
	o.Reconnect = true
	o.Platform = "bot"
	if o.Logger == nil {
		o.Logger = log.With("component", "client")
	}
	log.Info("connecting", "addr", o.Addr, "transport", o.Transport)
	c, err := client.Dial(ctx, o)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", o.Addr, err)
	}
	defer c.Close()
	log.Info("logged in", "user", o.UserID)
	// Messages that arrived while the bot was away come first.
	missed, err := c.SyncAll(ctx)
	if err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	log.Info("caught up", "messages", len(missed))
	for _, m := range missed {
		answer(ctx, c, o.UserID, m, log)
	}
	log.Info("waiting for messages")
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.Done():
			return c.Err()
		case p := <-c.Pushes():
			if pm, ok := p.Message.(*imv1.PushMessage); ok {
				answer(ctx, c, o.UserID, pm.Message, log)
			}
		}
	}
}

// answer replies to m unless the bot sent it itself (a copy from its other
// session) or it is not a one-to-one text.
func answer(ctx context.Context, c *client.Client, self string, m *imv1.MessageInfo, log *slog.Logger) {
	if m.SenderId == self {
		return
	}
	if m.ConversationType != int32(im.SingleConversation) || m.MessageType != int32(im.TextMessage) {
		log.Info("not answering: not a one-to-one text", "from", m.SenderId, "conversation", m.ConversationId, "type", m.MessageType)
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The reply's client_msg_id derives from the message it answers, so a
	// message seen twice (once pushed, once synced after a reconnect) is
	// still answered once: the server deduplicates the second reply.
	_, err := c.Send(sctx, client.Outgoing{
		ConversationID: m.ConversationId,
		Type:           im.TextMessage,
		Content:        reply(m),
		ClientMsgID:    "re-" + m.ServerMsgId,
	})
	if err != nil {
		log.Warn("reply failed", "to", m.SenderId, "message", m.ServerMsgId, "err", err)
		return
	}
	log.Info("replied", "to", m.SenderId, "conversation", m.ConversationId, "message", m.ServerMsgId)
}
