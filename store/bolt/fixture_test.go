package bolt

import (
	"fmt"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
)

// The contents of testdata/v3.db, a store written by this package before
// records were sealed (schema version 3), by a program that did what
// v3Fixture lists: the account, the group, then fixtureMessages(0, 40),
// Close, Open, fixtureMessages(40, 45) and an exit without Close, so that
// the last five are in the log only. testdata/v4.db was written the same
// way by the version before read states and recall (schema version 4,
// every record sealed), and exited with Abandon.

var fixtureTime = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

func fixtureAccount() auth.Account {
	return auth.Account{UserID: "u1", Username: "alice", Nickname: "Alice", PasswordHash: []byte("not-a-real-hash"), CreatedAt: fixtureTime}
}

func fixtureGroup() (im.Group, []im.GroupMember, im.AppendRequest) {
	g := im.Group{ID: "g1", Name: "Group one", OwnerID: "u1", Introduction: "hello", CreatedAt: fixtureTime, UpdatedAt: fixtureTime}
	members := []im.GroupMember{{UserID: "u1", Role: im.RoleOwner, JoinedAt: fixtureTime}, {UserID: "u2", Role: im.RoleMember, JoinedAt: fixtureTime}}
	notice := im.AppendRequest{Message: im.Message{ConversationID: im.GroupConversationID("g1"), ServerID: "s-notice", SenderID: "u1", ClientMsgID: "notice-1", Content: []byte("created"), CreatedAt: fixtureTime}}
	return g, members, notice
}

// fixtureMessages returns messages from to to-1 of conversation
// "si_u1_u2", one a batch.
func fixtureMessages(from, to int) [][]im.AppendRequest {
	var out [][]im.AppendRequest
	for i := from; i < to; i++ {
		out = append(out, []im.AppendRequest{{Message: im.Message{
			ConversationID: "si_u1_u2", ServerID: fmt.Sprintf("s-%d", i),
			SenderID: []string{"u1", "u2"}[i%2], ReceiverID: []string{"u2", "u1"}[i%2],
			ClientMsgID: fmt.Sprintf("c-%d", i), Content: []byte(fmt.Sprintf("message %d", i)),
			Type: 1, SendTime: int64(1000 + i), CreatedAt: fixtureTime.Add(time.Duration(i) * time.Second),
		}, Members: []string{"u1", "u2"}}})
	}
	return out
}
