package bolt_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/bolt"
)

func Example() {
	dir, err := os.MkdirTemp("", "imserver-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := bolt.Open(filepath.Join(dir, "im.db"), bolt.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx := context.Background()
	conv := im.SingleConversationID("alice", "bob")
	res, err := s.AppendMessages(ctx, []im.AppendRequest{{
		Message: im.Message{
			ConversationID: conv,
			ServerID:       "m-0001",
			SenderID:       "alice",
			ReceiverID:     "bob",
			ClientMsgID:    "alice-1",
			Type:           im.TextMessage,
			Content:        []byte("hi Bob"),
			CreatedAt:      time.Now(),
		},
		Members: []string{"alice", "bob"},
	}})
	if err != nil {
		log.Fatal(err)
	}
	if res[0].Err != nil {
		log.Fatal(res[0].Err)
	}

	ms, err := s.Messages(ctx, conv, 1, 0, 50)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range ms {
		fmt.Printf("%s #%d from %s: %s\n", m.ConversationID, m.Seq, m.SenderID, m.Content)
	}
	// Output:
	// single_alice_bob #1 from alice: hi Bob
}

// Check verifies both files and the invariants between them, for example
// after a crash or before a backup is trusted.
func ExampleStore_Check() {
	dir, err := os.MkdirTemp("", "imserver-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := bolt.Open(filepath.Join(dir, "im.db"), bolt.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	if err := s.Check(context.Background()); err != nil {
		log.Fatal(err) // the store is damaged: restore it from a backup
	}
	fmt.Println("ok")
	// Output: ok
}
