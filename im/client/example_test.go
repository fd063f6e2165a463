package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// A bot that catches up, answers every text message it gets, and reconnects
// by itself. It needs a running server, so it is compiled but not run.
func Example() {
	ctx := context.Background()
	c, err := client.Dial(ctx, client.Options{
		Addr:      "127.0.0.1:8082",
		UserID:    "echo-bot",
		Token:     "<token from /api/auth/login>",
		Reconnect: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	missed, err := c.SyncAll(ctx)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("%d messages arrived while the bot was away", len(missed))

	// Replies are sent from a goroutine of their own: a Send waits for its
	// acknowledgement, which the client reads only while Pushes is drained.
	replies := make(chan *imv1.MessageInfo, 64)
	go func() {
		for m := range replies {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, err := c.Send(sctx, client.Outgoing{
				ConversationID: m.ConversationId,
				Type:           wire.TextMessage,
				Content:        append([]byte("echo: "), m.Content...),
			})
			cancel()
			if err != nil {
				log.Print(err)
			}
		}
	}()
	for p := range c.Pushes() { // ends when the client ends (kicked, closed)
		pm, ok := p.Message.(*imv1.PushMessage)
		if !ok || pm.Message.GetMessageType() != int32(wire.TextMessage) {
			continue
		}
		select {
		case replies <- pm.Message:
		default:
			log.Print("too busy to answer; message skipped")
		}
	}
	close(replies)
	log.Print(c.Err())
}

// The server's error codes match the sentinels the server itself uses, those
// of package wire (which package im re-exports as im.ErrUnauthenticated and
// so on).
func ExampleError() {
	err := error(&client.Error{Code: imv1.ErrorCode_ERR_TOKEN_EXPIRED, Msg: "token expired"})
	fmt.Println(err)
	fmt.Println(errors.Is(err, wire.ErrUnauthenticated), errors.Is(err, wire.ErrTokenExpired))
	// Output:
	// client: server error ERR_TOKEN_EXPIRED: token expired
	// true true
}

// Watching contacts come and go: one request answers their status now and
// subscribes to their changes, which arrive as pushes. It needs a running
// server, so it is compiled but not run.
func ExampleClient_Presence() {
	ctx := context.Background()
	c, err := client.Dial(ctx, client.Options{Addr: "127.0.0.1:8082", UserID: "alice", Token: "<token>"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// A push may overtake the response: keep the highest version per user.
	latest := make(map[string]*imv1.UserStatus)
	keep := func(st *imv1.UserStatus) {
		if old := latest[st.UserId]; old == nil || st.Version > old.Version {
			latest[st.UserId] = st
			log.Printf("%s online=%v devices=%d", st.UserId, st.Online, len(st.Devices))
		}
	}
	rsp, err := c.Presence(ctx, []string{"bob", "carol"}, imv1.PresenceSubscribe_PRESENCE_SUBSCRIBE)
	if err != nil {
		log.Fatal(err)
	}
	for _, st := range rsp.Statuses {
		keep(st)
	}
	for p := range c.Pushes() {
		if sc, ok := p.Message.(*imv1.StatusChangePush); ok {
			keep(sc.Status)
		}
	}
}

// Read ticks for the messages a user sent: her connection subscribes to
// delivery receipts, which tell how far each peer has received and read.
// It needs a running server, so it is compiled but not run.
func ExampleClient_ReadState() {
	ctx := context.Background()
	c, err := client.Dial(ctx, client.Options{Addr: "127.0.0.1:8082", UserID: "alice", Token: "<token>"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	rsp, err := c.ReadState(ctx, imv1.ReceiptSubscribe_RECEIPTS_SUBSCRIBE)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("%d unread in %d conversations", rsp.TotalUnread, len(rsp.States))
	for p := range c.Pushes() {
		switch m := p.Message.(type) {
		case *imv1.PushMessage:
			// Delivered: the sender's tick turns double.
			if err := c.Ack(ctx, m.Message.ServerMsgId); err != nil {
				log.Print(err)
			}
		case *imv1.DeliveryReceiptPush:
			log.Printf("%s has received up to %d and read up to %d in %s", m.UserId, m.DeliveredSeq, m.ReadSeq, m.ConversationId)
		}
	}
}

// Taking a message back: the sender recalls it, and every device of the
// conversation's members, this one too, is told by a push, which is what
// a client acts on (it replaces the message shown by "message recalled").
// It needs a running server, so it is compiled but not run.
func ExampleClient_Recall() {
	ctx := context.Background()
	c, err := client.Dial(ctx, client.Options{Addr: "127.0.0.1:8082", UserID: "alice", Token: "<token>"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ack, err := c.Send(ctx, client.Outgoing{ReceiverID: "bob", Type: wire.TextMessage, Content: []byte("wrong chat")})
	if err != nil {
		log.Fatal(err)
	}
	conv := wire.SingleConversationID("alice", "bob")
	switch err := c.Recall(ctx, conv, ack.ServerMsgId); {
	case errors.Is(err, wire.ErrPermissionDenied):
		log.Print("too late to recall it: ", err)
	case err != nil:
		log.Fatal(err)
	}
	for p := range c.Pushes() {
		if r, ok := p.Message.(*imv1.RevokeMessagePush); ok {
			log.Printf("%s recalled message %s of %s", r.RevokedBy, r.ServerMsgId, r.ConversationId)
		}
	}
}
