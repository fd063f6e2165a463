// Command bot is a chat bot for imserver: it connects as a user with
// im/client, answers every one-to-one message it gets, and reconnects on
// its own when the server goes away, catching up on what it missed.
//
//	go run ./examples/bot -addr 127.0.0.1:8082 -user <bot user id> -token <its token>
//
// The token comes from the server's login (POST /api/auth/login) like any
// user's.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

// reply is what the bot answers to a message.
func reply(m *imv1.MessageInfo) []byte {
	return fmt.Appendf(nil, "you said: %s", m.Content)
}

// run answers messages until ctx ends or the bot is kicked out.
func run(ctx context.Context, o client.Options) error {
	o.Reconnect = true
	o.Platform = "bot"
	c, err := client.Dial(ctx, o)
	if err != nil {
		return err
	}
	defer c.Close()
	// Messages that arrived while the bot was away come first.
	missed, err := c.SyncAll(ctx)
	if err != nil {
		return err
	}
	for _, m := range missed {
		answer(ctx, c, o.UserID, m)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.Done():
			return c.Err()
		case p := <-c.Pushes():
			if pm, ok := p.Message.(*imv1.PushMessage); ok {
				answer(ctx, c, o.UserID, pm.Message)
			}
		}
	}
}

// answer replies to m unless the bot sent it itself (a copy from its other
// session) or it is not a one-to-one text.
func answer(ctx context.Context, c *client.Client, self string, m *imv1.MessageInfo) {
	if m.SenderId == self || m.ConversationType != int32(im.SingleConversation) || m.MessageType != int32(im.TextMessage) {
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
		log.Printf("bot: reply to %s: %v", m.ServerMsgId, err)
	}
}
