package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
)

// Two servers, each with its own store and connection pool on one database,
// as two processes of a deployment: the group rules hold whichever server a
// change and a message go through.

func TestPostgresGroupsAcrossServers(t *testing.T) { testGroupsAcrossServers(t, postgresBackend) }
func TestMySQLGroupsAcrossServers(t *testing.T)    { testGroupsAcrossServers(t, mysqlBackend) }

const maxMembersAcross = 6

// twoServers starts two servers on one fresh database of b.
func twoServers(t *testing.T, b backend) (a, bs *imtest.Server) {
	dsn := b.fresh(t)
	secret := []byte("k7Qm2vX9pL4sT8wZ1nB6cR3yH5dF0jGe")
	start := func() *imtest.Server {
		st := b.newStore(t, openDB(t, b.driver, dsn))
		// These tests are about groups across servers, not whom one may add.
		anyone := func(context.Context, string, string) error { return nil }
		return imtest.NewServer(t, imtest.Options{Secret: secret, Config: im.Config{Store: st, MaxGroupMembers: maxMembersAcross, GroupAddPolicy: anyone}})
	}
	return start(), start()
}

func testGroupsAcrossServers(t *testing.T, b backend) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	srvA, srvB := twoServers(t, b)

	t.Run("JoinedThroughAnotherReadsFromJoin", func(t *testing.T) {
		// Invited through A, carol syncs through B: B reads her join seq
		// and the group's setting from the database, as A's commit
		// wrote them, and gives her nothing older; turned to full history
		// through B, A shows her everything.
		g, err := srvA.CreateGroup(ctx, "owner", im.GroupSpec{Name: "H"}, []string{"bob"})
		require.NoError(t, err)
		conv := im.GroupConversationID(g.ID)
		for i := range 4 {
			_, err := srvB.SendMessage(ctx, im.SendRequest{SenderID: "bob", ConversationID: conv, Type: im.TextMessage, Content: fmt.Appendf(nil, "m%d", i)})
			require.NoError(t, err)
		}
		require.NoError(t, srvA.InviteToGroup(ctx, g.ID, "owner", []string{"carol"})) // seq 6
		seqsOf := func(msgs []*imv1.MessageInfo) []int64 {
			out := []int64{}
			for _, m := range msgs {
				out = append(out, m.Seq)
			}
			return out
		}
		read := func(srv *imtest.Server) (batch, all []int64) {
			c := srv.Dial(t, "tcp", "carol")
			rsp, err := c.BatchSync(ctx, nil, 100)
			require.NoError(t, err)
			batch = []int64{}
			for _, cm := range rsp.ConversationMessages {
				if cm.ConversationId == conv {
					batch = seqsOf(cm.Messages)
				}
			}
			r, err := c.SyncRange(ctx, conv, 1, 0, 100)
			require.NoError(t, err)
			return batch, seqsOf(r.Messages)
		}
		batch, all := read(srvB)
		require.Equal(t, []int64{6}, batch, "BATCH_SYNC through B")
		require.Equal(t, []int64{6}, all, "SYNC_RANGE through B")
		full := im.HistoryFull
		_, err = srvB.UpdateGroup(ctx, g.ID, "owner", im.GroupUpdate{History: &full}) // seq 7
		require.NoError(t, err)
		batch, all = read(srvA)
		require.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7}, batch, "BATCH_SYNC through A")
		require.Equal(t, batch, all, "SYNC_RANGE through A")
	})

	t.Run("KickedThroughAnother", func(t *testing.T) {
		g, err := srvA.CreateGroup(ctx, "owner", im.GroupSpec{Name: "G"}, []string{"alice", "bob"})
		require.NoError(t, err)
		conv := im.GroupConversationID(g.ID)
		alice := srvB.Dial(t, "tcp", "alice")
		bob := srvB.Dial(t, "tcp", "bob")

		// Alice sends through B, which caches the members.
		_, err = alice.Send(ctx, client.Outgoing{ConversationID: conv, Type: im.TextMessage, Content: []byte("before")})
		require.NoError(t, err)

		// Kicked through A: B's cache still lists her.
		require.NoError(t, srvA.KickFromGroup(ctx, g.ID, "owner", []string{"alice"}))
		// Posted through A: B has not heard of the kick yet, and must not
		// let her read it.
		_, err = srvA.SendMessage(ctx, im.SendRequest{SenderID: "bob", ConversationID: conv, Type: im.TextMessage, Content: []byte("through A")})
		require.NoError(t, err)
		var e *client.Error
		_, err = alice.SyncRange(ctx, conv, 1, 0, 100)
		require.ErrorAs(t, err, &e, "B lets a member kicked through A read the group")
		require.Equal(t, imv1.ErrorCode_ERR_PERMISSION_DENIED, e.Code)

		_, err = alice.Send(ctx, client.Outgoing{ConversationID: conv, Type: im.TextMessage, Content: []byte("after")})
		require.ErrorAs(t, err, &e, "a kicked member's send through another server is refused")
		require.Equal(t, imv1.ErrorCode_ERR_PERMISSION_DENIED, e.Code)

		// Bob's message through B is not pushed to her: the commit
		// reports the new version and B reloads the members first. A
		// direct message sent after it is, and pushes of one connection
		// keep their order, so once it arrives the group's would have.
		gm, err := bob.Send(ctx, client.Outgoing{ConversationID: conv, Type: im.TextMessage, Content: []byte("secret")})
		require.NoError(t, err)
		_, err = bob.Send(ctx, client.Outgoing{ReceiverID: "alice", Type: im.TextMessage, Content: []byte("marker")})
		require.NoError(t, err)
		for {
			select {
			case p := <-alice.Pushes():
				pm, ok := p.Message.(*imv1.PushMessage)
				if !ok {
					continue
				}
				require.NotEqual(t, "secret", string(pm.Message.Content), "pushed a group message after her removal: %v", pm.Message)
				if string(pm.Message.Content) == "marker" {
					goto pushed
				}
			case <-ctx.Done():
				t.Fatal("the marker was not pushed")
			}
		}
	pushed:
		// Nothing of the group is readable through B.
		_, err = alice.SyncRange(ctx, conv, 1, 0, 100)
		require.ErrorAs(t, err, &e)
		require.Equal(t, imv1.ErrorCode_ERR_PERMISSION_DENIED, e.Code)
		rsp, err := alice.BatchSync(ctx, map[string]int64{}, 100)
		require.NoError(t, err)
		for _, cm := range rsp.ConversationMessages {
			require.NotEqual(t, conv, cm.ConversationId, "batch sync lists the group she left")
		}
		// Bob reads everything, her last message and his own included.
		sr, err := bob.SyncRange(ctx, conv, 1, 0, 100)
		require.NoError(t, err)
		require.Equal(t, gm.Seq, sr.Messages[len(sr.Messages)-1].Seq)
	})

	t.Run("ConcurrentJoins", func(t *testing.T) {
		g, err := srvA.CreateGroup(ctx, "owner", im.GroupSpec{Name: "Open", JoinPolicy: im.JoinOpen}, nil)
		require.NoError(t, err)
		const joiners = 20
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			joined int
		)
		for i := range joiners {
			srv := srvA
			if i%2 == 1 {
				srv = srvB
			}
			wg.Go(func() {
				_, err := srv.JoinGroup(ctx, g.ID, fmt.Sprintf("j%02d", i))
				switch {
				case err == nil:
					mu.Lock()
					joined++
					mu.Unlock()
				case !errors.Is(err, im.ErrLimitExceeded):
					t.Errorf("join %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		require.Equal(t, maxMembersAcross-1, joined)
		members, err := srvB.GroupMembers(ctx, g.ID, "owner")
		require.NoError(t, err)
		require.Len(t, members, maxMembersAcross)
	})

	t.Run("ReadAndRecallThroughAnother", func(t *testing.T) {
		// Receipts and recalls go through one server and are seen
		// through the other: both read the positions and tombstones
		// from the database.
		g, err := srvA.CreateGroup(ctx, "owner", im.GroupSpec{Name: "R"}, []string{"bob", "carol"})
		require.NoError(t, err)
		conv := im.GroupConversationID(g.ID)
		var sent []im.Message
		for i := range 3 {
			m, err := srvB.SendMessage(ctx, im.SendRequest{SenderID: "bob", ConversationID: conv, Type: im.TextMessage, Content: fmt.Appendf(nil, "r%d", i)})
			require.NoError(t, err)
			sent = append(sent, m)
		}
		unread := func(srv *imtest.Server, user string) int64 {
			t.Helper()
			st, err := srv.ReadStates(ctx, user, []string{conv})
			require.NoError(t, err)
			require.Len(t, st, 1)
			return st[0].Unread
		}
		require.Equal(t, sent[2].Seq, unread(srvA, "carol"), "the notice and bob's messages")
		_, err = srvA.MarkRead(ctx, "carol", conv, []string{sent[1].ServerID})
		require.NoError(t, err)
		r, err := srvB.ReadBy(ctx, "bob", conv, sent[1].ServerID)
		require.NoError(t, err)
		require.Contains(t, r.ReadBy, "carol")
		r, err = srvB.ReadBy(ctx, "bob", conv, sent[2].ServerID)
		require.NoError(t, err)
		require.Contains(t, r.UnreadBy, "carol")
		require.Equal(t, int64(1), unread(srvB, "carol"))
		// Bob's messages read everything before them, through A too.
		require.Zero(t, unread(srvA, "bob"))

		tomb, err := srvA.RecallMessage(ctx, "bob", conv, sent[2].ServerID)
		require.NoError(t, err)
		require.True(t, tomb.Revoked())
		c := srvB.Dial(t, "tcp", "carol")
		rsp, err := c.SyncRange(ctx, conv, sent[2].Seq, sent[2].Seq, 10)
		require.NoError(t, err)
		require.Len(t, rsp.Messages, 1)
		require.True(t, rsp.Messages[0].IsRevoked, "the tombstone through B")
		require.Equal(t, "bob", rsp.Messages[0].RevokedBy)
		require.Empty(t, rsp.Messages[0].Content)
	})

	t.Run("Dismissed", func(t *testing.T) {
		g, err := srvA.CreateGroup(ctx, "owner", im.GroupSpec{Name: "Gone"}, []string{"carol"})
		require.NoError(t, err)
		conv := im.GroupConversationID(g.ID)
		carol := srvB.Dial(t, "tcp", "carol")
		_, err = carol.Send(ctx, client.Outgoing{ConversationID: conv, Type: im.TextMessage, Content: []byte("hi")})
		require.NoError(t, err)
		require.NoError(t, srvA.DismissGroup(ctx, g.ID, "owner"))
		for _, srv := range []*imtest.Server{srvA, srvB} {
			_, err = srv.SendMessage(ctx, im.SendRequest{SenderID: "owner", ConversationID: conv, Type: im.TextMessage, Content: []byte("x")})
			require.Error(t, err, "a dismissed group accepts nothing")
		}
		_, err = carol.Send(ctx, client.Outgoing{ConversationID: conv, Type: im.TextMessage, Content: []byte("still there?")})
		require.Error(t, err, "a dismissed group accepts nothing through the server that cached it")
		_, err = carol.SyncRange(ctx, conv, 1, 0, 100)
		require.Error(t, err)
	})
}
