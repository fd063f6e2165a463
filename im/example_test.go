package im_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/transport/websocket"
)

// Embedding: the host keeps its own http.ServeMux and its own tokens; the
// IM server is one more handler on it.
func ExampleNewServer() {
	dir, err := os.MkdirTemp("", "imserver-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := bolt.Open(filepath.Join(dir, "chat.db"), bolt.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// The host's own authentication: here, tokens of the form "token-<user>".
	authn := im.AuthenticatorFunc(func(ctx context.Context, token string) (im.Identity, error) {
		user, ok := strings.CutPrefix(token, "token-")
		if !ok {
			return im.Identity{}, fmt.Errorf("%w: unknown token", im.ErrUnauthenticated)
		}
		return im.Identity{UserID: user}, nil
	})
	srv, err := im.NewServer(im.Config{Store: store, Authenticator: authn})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/api/hello", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "the host's own API") })
	mux.Handle("/ws", websocket.NewHandler(srv, websocket.Options{}))
	httpServer := httptest.NewServer(mux)
	wsURL := "ws" + strings.TrimPrefix(httpServer.URL, "http") + "/ws"

	ctx := context.Background()
	alice, err := client.Dial(ctx, client.Options{Transport: client.TransportWebSocket, Addr: wsURL, UserID: "alice", Token: "token-alice"})
	if err != nil {
		log.Fatal(err)
	}
	bob, err := client.Dial(ctx, client.Options{Transport: client.TransportWebSocket, Addr: wsURL, UserID: "bob", Token: "token-bob"})
	if err != nil {
		log.Fatal(err)
	}
	ack, err := alice.Send(ctx, client.Outgoing{ReceiverID: "bob", Type: im.TextMessage, Content: []byte("hi bob")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("acknowledged with seq", ack.Seq)
	push := (<-bob.Pushes()).Message.(*imv1.PushMessage).Message
	fmt.Printf("bob got %q from %s in %s\n", push.Content, push.SenderId, push.ConversationId)

	alice.Close()
	bob.Close()
	// The IM server first: its Shutdown stops the WebSocket handler and
	// waits for its connections, which net/http does not track.
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	httpServer.Close()
	// Output:
	// acknowledged with seq 1
	// bob got "hi bob" from alice in single_alice_bob
}

// A bot or a backend job sends through the Go API, with the same checks and
// delivery as a client's message.
func ExampleServer_SendMessage() {
	dir, err := os.MkdirTemp("", "imserver-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := bolt.Open(filepath.Join(dir, "chat.db"), bolt.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	srv, err := im.NewServer(im.Config{
		Store: store,
		Authenticator: im.AuthenticatorFunc(func(context.Context, string) (im.Identity, error) {
			return im.Identity{}, im.ErrUnauthenticated
		}),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	m, err := srv.SendMessage(ctx, im.SendRequest{SenderID: "helpdesk", ReceiverID: "alice", Type: im.TextMessage, Content: []byte("How can we help?")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.ConversationID, m.Seq)
	n, err := srv.SendSystemMessage(ctx, "alice", im.NotificationMessage, []byte(`{"event":"welcome"}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n.ConversationID, n.SenderID, n.Seq)
	// Output:
	// single_alice_helpdesk 1
	// system_alice system 1
}

// Groups from the Go API: the creator owns the group, a message to it is
// stored once and reaches every member, and every change to the group is
// a notice in its conversation.
func ExampleServer_CreateGroup() {
	dir, err := os.MkdirTemp("", "imserver-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := bolt.Open(filepath.Join(dir, "chat.db"), bolt.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	srv, err := im.NewServer(im.Config{
		Store: store,
		Authenticator: im.AuthenticatorFunc(func(context.Context, string) (im.Identity, error) {
			return im.Identity{}, im.ErrUnauthenticated
		}),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	// A user adds to groups only those they have exchanged a message with
	// (the default Config.GroupAddPolicy): alice has talked to both.
	for _, to := range []string{"bob", "carol"} {
		if _, err := srv.SendMessage(ctx, im.SendRequest{SenderID: "alice", ReceiverID: to, Type: im.TextMessage, Content: []byte("release today?")}); err != nil {
			log.Fatal(err)
		}
	}
	g, err := srv.CreateGroup(ctx, "alice", im.GroupSpec{Name: "Release crew", JoinPolicy: im.JoinInviteOnly}, []string{"bob", "carol"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(g.Name, g.OwnerID, g.MemberCount)

	m, err := srv.SendMessage(ctx, im.SendRequest{SenderID: "bob", ConversationID: im.GroupConversationID(g.ID), Type: im.TextMessage, Content: []byte("ship it")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bob's message has seq", m.Seq) // seq 1 is the group_created notice

	if err := srv.KickFromGroup(ctx, g.ID, "bob", []string{"carol"}); err != nil {
		fmt.Println("bob may not:", errors.Is(err, im.ErrPermissionDenied))
	}
	if err := srv.LeaveGroup(ctx, g.ID, "carol"); err != nil {
		log.Fatal(err)
	}
	history, err := store.Messages(ctx, im.GroupConversationID(g.ID), 1, 0, 10)
	if err != nil {
		log.Fatal(err)
	}
	for _, h := range history {
		if h.Type == im.NotificationMessage {
			var n im.GroupNotice
			if err := json.Unmarshal(h.Content, &n); err != nil {
				log.Fatal(err)
			}
			fmt.Println(h.Seq, n.Type, n.Operator, n.UserIDs)
		}
	}
	// Output:
	// Release crew alice 3
	// bob's message has seq 2
	// bob may not: true
	// 1 group_created alice [bob carol]
	// 3 member_left carol [carol]
}
