package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/wire"
)

// Logging in over HTTP and asking someone to be a friend; the other user
// lists her requests and accepts. The example runs its own server on
// 127.0.0.1; a program passes the address of the server's HTTP API
// (":8080" in the standalone binary) instead.
func ExampleAPI() {
	hs, stop, err := startAPIServer()
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	baseURL := hs.URL // "http://127.0.0.1:8080"
	ctx := context.Background()

	alice, err := client.NewAPI(baseURL, client.APIOptions{HTTPClient: hs.Client()})
	if err != nil {
		log.Fatal(err)
	}
	bob, err := client.NewAPI(baseURL, client.APIOptions{HTTPClient: hs.Client()})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := alice.Register(ctx, "alice", "alice-password", "Alice"); err != nil {
		log.Fatal(err)
	}
	bobAccount, err := bob.Register(ctx, "bob", "bob-password", "Bob")
	if err != nil {
		log.Fatal(err)
	}

	// Login keeps the token for the calls that follow; the session also
	// has what client.Dial needs (Options.UserID and Options.Token).
	if _, err := alice.Login(ctx, "alice", "alice-password", "go"); err != nil {
		log.Fatal(err)
	}
	if _, err := bob.Login(ctx, "bob", "bob-password", "go"); err != nil {
		log.Fatal(err)
	}

	if err := alice.AddFriend(ctx, bobAccount.UserID, "hi Bob, it's Alice"); err != nil {
		log.Fatal(err)
	}
	incoming, _, err := bob.FriendRequests(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range incoming {
		from, err := bob.User(ctx, r.From)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s asks: %q\n", from.Nickname, r.Message)
		if _, err := bob.AcceptFriend(ctx, r.From); err != nil {
			log.Fatal(err)
		}
	}
	friends, err := alice.Friends(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("Alice's friends:", len(friends))

	// Refusals are *client.APIError, matched with the protocol's sentinels.
	err = alice.AddFriend(ctx, "no-such-user", "")
	fmt.Println(errors.Is(err, wire.ErrNotFound))
	// Output:
	// Alice asks: "hi Bob, it's Alice"
	// Alice's friends: 1
	// true
}
