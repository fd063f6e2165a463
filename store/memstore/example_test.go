package memstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/memstore"
)

func ExampleNew() {
	s := memstore.New()
	ctx := context.Background()
	res, err := s.AppendMessages(ctx, []im.AppendRequest{{
		Message: im.Message{
			ConversationID: "single_alice_bob",
			ServerID:       "s1",
			SenderID:       "alice",
			ClientMsgID:    "c1",
			Content:        []byte("hi"),
		},
		Members: []string{"alice", "bob"},
	}})
	if err != nil {
		log.Fatal(err)
	}
	convs, err := s.UserConversations(ctx, "bob")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res[0].Message.Seq, convs[0].ID, convs[0].MaxSeq)
	// Output: 1 single_alice_bob 1
}
