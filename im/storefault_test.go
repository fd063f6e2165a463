package im_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/store/memstore"
	"github.com/stretchr/testify/require"
)

// faultyStore is a memstore that panics in the next call of the method it
// is armed with, and, with corrupt set, hands back messages whose strings
// are not valid UTF-8, as a damaged database would.
type faultyStore struct {
	*memstore.Store
	armed   atomic.Pointer[string]
	corrupt atomic.Bool
}

// arm makes the next call of method panic.
func (f *faultyStore) arm(method string) { f.armed.Store(&method) }

func (f *faultyStore) trip(method string) {
	if p := f.armed.Load(); p != nil && *p == method && f.armed.CompareAndSwap(p, nil) {
		panic(method + " exploded")
	}
}

func (f *faultyStore) damage(msgs []im.Message) []im.Message {
	if !f.corrupt.Load() {
		return msgs
	}
	out := make([]im.Message, len(msgs))
	for i, m := range msgs {
		m.ClientMsgID += "\xff"
		m.SenderID = "\xc3" + m.SenderID
		out[i] = m
	}
	return out
}

func (f *faultyStore) AppendMessages(ctx context.Context, reqs []im.AppendRequest) ([]im.AppendResult, error) {
	f.trip("AppendMessages")
	return f.Store.AppendMessages(ctx, reqs)
}

func (f *faultyStore) CreateGroup(ctx context.Context, g im.Group, members []im.GroupMember, notice im.AppendRequest) (im.AppendResult, error) {
	f.trip("CreateGroup")
	return f.Store.CreateGroup(ctx, g, members, notice)
}

func (f *faultyStore) ChangeGroup(ctx context.Context, id string, ch im.GroupChange) (im.AppendResult, error) {
	f.trip("ChangeGroup")
	return f.Store.ChangeGroup(ctx, id, ch)
}

func (f *faultyStore) SyncConversations(ctx context.Context, user string) ([]im.Conversation, error) {
	f.trip("SyncConversations")
	return f.Store.SyncConversations(ctx, user)
}

func (f *faultyStore) MessageRanges(ctx context.Context, ranges []im.MessageRange, limit int) ([][]im.Message, error) {
	f.trip("MessageRanges")
	pages, err := f.Store.MessageRanges(ctx, ranges, limit)
	for i := range pages {
		pages[i] = f.damage(pages[i])
	}
	return pages, err
}

func (f *faultyStore) Messages(ctx context.Context, conv string, from, to int64, limit int) ([]im.Message, error) {
	f.trip("Messages")
	msgs, err := f.Store.Messages(ctx, conv, from, to, limit)
	return f.damage(msgs), err
}

func (f *faultyStore) GroupMember(ctx context.Context, group, user string) (im.GroupMember, error) {
	f.trip("GroupMember")
	return f.Store.GroupMember(ctx, group, user)
}

func (f *faultyStore) GroupMembers(ctx context.Context, group string) (im.Group, []im.GroupMember, error) {
	f.trip("GroupMembers")
	return f.Store.GroupMembers(ctx, group)
}

func (f *faultyStore) Group(ctx context.Context, id string) (im.Group, error) {
	f.trip("Group")
	return f.Store.Group(ctx, id)
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestStorePanicFailsOneRequest has the Store panic in each call the Server
// makes: in the commit loop (a send, a group creation) and on a session's
// reader (sync, group reads). Each time the one request it was for is
// answered with an internal error, the panic is logged with its stack and
// counted, and the server goes on serving everyone, the same connections
// included.
func TestStorePanicFailsOneRequest(t *testing.T) {
	store := &faultyStore{Store: memstore.New()}
	var logs syncBuffer
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{
		Store:    store,
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
		SendRate: -1,
	}})
	a := srv.Dial(t, "tcp", alice)
	b := srv.Dial(t, "websocket", bob)
	ctx := testCtx(t)

	stillServing := func(t *testing.T, what string) {
		t.Helper()
		rsp := sendText(t, a, bob, what)
		m := nextMessage(t, b)
		require.Equal(t, rsp.Seq, m.Seq, "after %s", what)
		require.Equal(t, what, string(m.Content))
	}
	internal := func(t *testing.T, err error) {
		t.Helper()
		var ce *client.Error
		require.ErrorAs(t, err, &ce)
		require.Equal(t, imv1.ErrorCode_ERR_UNKNOWN, ce.Code)
		require.Equal(t, "internal error", ce.Msg, "the panic is not shown to the client")
	}
	internalAPI := func(t *testing.T, err error) {
		t.Helper()
		var e *im.Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, im.CodeUnknown, e.Code)
		require.Equal(t, "internal error", e.Msg)
	}
	panics := uint64(0)
	logged := func(t *testing.T, call string) {
		t.Helper()
		panics++
		require.Equal(t, panics, srv.Stats().StorePanics, "the %s panic is counted", call)
		out := logs.String()
		require.Contains(t, out, "call="+call)
		require.Contains(t, out, call+" exploded")
		require.Contains(t, out, "storefault_test.go", "the stack is logged")
	}

	stillServing(t, "before")

	t.Run("AppendMessages", func(t *testing.T) {
		store.arm("AppendMessages")
		_, err := a.Send(ctx, client.Outgoing{ReceiverID: bob, Type: im.TextMessage, Content: []byte("lost")})
		internal(t, err)
		logged(t, "AppendMessages")
		stillServing(t, "after AppendMessages")
		noPush(t, b) // the failed send was not stored, so not pushed
	})

	var gid string
	t.Run("CreateGroup", func(t *testing.T) {
		store.arm("CreateGroup")
		_, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "g"}, []string{bob})
		internalAPI(t, err)
		logged(t, "CreateGroup")
		g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "g"}, []string{bob})
		require.NoError(t, err, "the next change is committed")
		gid = g.ID
		require.Equal(t, im.GroupConversationID(gid), nextMessage(t, b).ConversationId, "only the stored group's notice is pushed")
		stillServing(t, "after CreateGroup")
	})

	t.Run("ChangeGroup", func(t *testing.T) {
		name := "renamed"
		store.arm("ChangeGroup")
		_, err := srv.UpdateGroup(ctx, gid, alice, im.GroupUpdate{Name: &name})
		internalAPI(t, err)
		logged(t, "ChangeGroup")
		g, err := srv.UpdateGroup(ctx, gid, alice, im.GroupUpdate{Name: &name})
		require.NoError(t, err, "the next change is committed")
		require.Equal(t, name, g.Name)
		require.Equal(t, im.GroupConversationID(gid), nextMessage(t, b).ConversationId, "only the stored change's notice is pushed")
		stillServing(t, "after ChangeGroup")
	})

	t.Run("SyncConversations", func(t *testing.T) {
		store.arm("SyncConversations")
		_, err := b.BatchSync(ctx, nil, 10)
		internal(t, err)
		logged(t, "SyncConversations")
		// At authentication the listing only sets max_seq: a panic there
		// leaves the login working.
		store.arm("SyncConversations")
		c := srv.Dial(t, "tcp", carol)
		logged(t, "SyncConversations")
		sendText(t, c, alice, "carol logged in")
		stillServing(t, "after SyncConversations")
	})

	t.Run("MessageRanges", func(t *testing.T) {
		store.arm("MessageRanges")
		_, err := b.BatchSync(ctx, nil, 10)
		internal(t, err)
		logged(t, "MessageRanges")
		rsp, err := b.BatchSync(ctx, nil, 10)
		require.NoError(t, err)
		require.NotZero(t, rsp.TotalMessageCount)
		stillServing(t, "after MessageRanges")
	})

	t.Run("Messages", func(t *testing.T) {
		store.arm("Messages")
		_, err := b.SyncRange(ctx, aliceBob, 1, 0, 10)
		internal(t, err)
		logged(t, "Messages")
		rsp, err := b.SyncRange(ctx, aliceBob, 1, 0, 10)
		require.NoError(t, err)
		require.NotEmpty(t, rsp.Messages)
		stillServing(t, "after Messages")
	})

	t.Run("GroupMember", func(t *testing.T) {
		store.arm("GroupMember")
		_, err := b.SyncRange(ctx, im.GroupConversationID(gid), 1, 0, 10)
		internal(t, err)
		logged(t, "GroupMember")
		_, err = b.SyncRange(ctx, im.GroupConversationID(gid), 1, 0, 10)
		require.NoError(t, err)
		stillServing(t, "after GroupMember")
	})

	t.Run("GroupReads", func(t *testing.T) {
		store.arm("Group")
		_, err := srv.Group(ctx, gid, alice)
		internalAPI(t, err)
		logged(t, "Group")
		store.arm("GroupMembers")
		_, err = srv.GroupMembers(ctx, gid, alice)
		internalAPI(t, err)
		logged(t, "GroupMembers")
		members, err := srv.GroupMembers(ctx, gid, alice)
		require.NoError(t, err)
		require.Len(t, members, 2)
		stillServing(t, "after group reads")
	})

	t.Run("GroupCacheLoad", func(t *testing.T) {
		// A group this Server has not cached (created through another
		// server on the same store): a send to it loads its members.
		cold := im.Group{ID: "coldgroup", OwnerID: alice, Name: "cold"}
		_, err := store.Store.CreateGroup(ctx, cold, []im.GroupMember{{UserID: alice, Role: im.RoleOwner}, {UserID: bob, Role: im.RoleMember}}, im.AppendRequest{})
		require.NoError(t, err)
		conv := im.GroupConversationID(cold.ID)
		store.arm("GroupMembers")
		_, err = a.Send(ctx, client.Outgoing{ConversationID: conv, Type: im.TextMessage, Content: []byte("lost")})
		internal(t, err)
		logged(t, "GroupMembers")
		rsp, err := a.Send(ctx, client.Outgoing{ConversationID: conv, Type: im.TextMessage, Content: []byte("to the group")})
		require.NoError(t, err, "the next send loads the members")
		m := nextMessage(t, b)
		require.Equal(t, rsp.Seq, m.Seq)
		require.Equal(t, "to the group", string(m.Content))
		stillServing(t, "after the group cache's load")
	})
}
