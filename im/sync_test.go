package im_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/store/memstore"
)

// plainStore hides every optional capability of the Store it wraps, and
// counts the reads a sync makes one by one.
type plainStore struct {
	im.Store
	conversation, messages, userGroups, userConversations atomic.Int64
}

func (p *plainStore) UserConversations(ctx context.Context, userID string) ([]im.Conversation, error) {
	p.userConversations.Add(1)
	return p.Store.UserConversations(ctx, userID)
}

// reads returns how many calls of the sync's read methods p has seen.
func (p *plainStore) reads() int64 {
	return p.conversation.Load() + p.messages.Load() + p.userGroups.Load() + p.userConversations.Load()
}

func (p *plainStore) Conversation(ctx context.Context, id string) (im.Conversation, error) {
	p.conversation.Add(1)
	return p.Store.Conversation(ctx, id)
}

func (p *plainStore) Messages(ctx context.Context, conv string, from, to int64, limit int) ([]im.Message, error) {
	p.messages.Add(1)
	return p.Store.Messages(ctx, conv, from, to, limit)
}

func (p *plainStore) UserGroups(ctx context.Context, userID string) ([]string, error) {
	p.userGroups.Add(1)
	return p.Store.UserGroups(ctx, userID)
}

func (p *plainStore) reset() {
	p.conversation.Store(0)
	p.messages.Store(0)
	p.userGroups.Store(0)
	p.userConversations.Store(0)
}

// reads returns how many calls of the sync's read methods b has seen.
func (b *batchedStore) reads() int64 {
	return b.plainStore.reads() + b.syncConvs.Load() + b.syncRanges.Load()
}

// batchedStore is plainStore with im.SyncStore, counting its calls.
type batchedStore struct {
	*plainStore
	sync                  im.SyncStore
	syncConvs, syncRanges atomic.Int64
}

func (b *batchedStore) SyncConversations(ctx context.Context, userID string) ([]im.Conversation, error) {
	b.syncConvs.Add(1)
	return b.sync.SyncConversations(ctx, userID)
}

func (b *batchedStore) MessageRanges(ctx context.Context, ranges []im.MessageRange, limit int) ([][]im.Message, error) {
	b.syncRanges.Add(1)
	return b.sync.MessageRanges(ctx, ranges, limit)
}

// scannedStore is batchedStore with im.MessageRangeScanner, whose scans
// count as MessageRanges calls.
type scannedStore struct {
	*batchedStore
	scan im.MessageRangeScanner
}

func (s *scannedStore) ScanMessageRanges(ctx context.Context, ranges []im.MessageRange, limit int, fn func(int, []im.Message) error) error {
	s.syncRanges.Add(1)
	return s.scan.ScanMessageRanges(ctx, ranges, limit, fn)
}

func (b *batchedStore) reset() {
	b.plainStore.reset()
	b.syncConvs.Store(0)
	b.syncRanges.Store(0)
}

// TestBatchSyncBatchedEqualsFallback serves one store's data through two
// Servers, one whose Store is an im.SyncStore and one whose Store hides
// it, and requires the same BATCH_SYNC and AUTH answers from both, from
// one read each on the first and one read per group and per conversation on
// the second.
func TestBatchSyncBatchedEqualsFallback(t *testing.T) {
	mem := memstore.New()
	plain := &plainStore{Store: mem}
	batched := &batchedStore{plainStore: &plainStore{Store: mem}, sync: mem}
	fallbackSrv := imtest.NewServer(t, imtest.Options{Config: im.Config{Store: plain}})
	batchedSrv := imtest.NewServer(t, imtest.Options{Config: im.Config{Store: batched}})
	ctx := testCtx(t)

	b := batchedSrv.Dial(t, "tcp", bob)
	for i := range 3 {
		sendText(t, b, alice, content(i))
	}
	// Groups alice is in: one quiet since her cursor, several with news,
	// one with more news than a page holds; one she left and one
	// dismissed, which she reads nothing of.
	var groups []im.Group
	for i := range 6 {
		g, err := batchedSrv.CreateGroup(ctx, bob, im.GroupSpec{Name: fmt.Sprintf("g%d", i)}, []string{alice})
		require.NoError(t, err)
		groups = append(groups, g)
		for j := range i {
			_, err := sendToGroup(t, b, g.ID, content(j))
			require.NoError(t, err)
		}
	}
	left, err := batchedSrv.CreateGroup(ctx, bob, im.GroupSpec{Name: "left"}, []string{alice})
	require.NoError(t, err)
	require.NoError(t, batchedSrv.LeaveGroup(ctx, left.ID, alice))
	gone, err := batchedSrv.CreateGroup(ctx, bob, im.GroupSpec{Name: "gone"}, []string{alice})
	require.NoError(t, err)
	require.NoError(t, batchedSrv.DismissGroup(ctx, gone.ID, bob))

	cursors := map[string]int64{
		aliceBob:                             1,
		im.GroupConversationID(groups[0].ID): 1, // all read: the group holds only its creation notice
		im.GroupConversationID(groups[2].ID): 2,
	}
	syncOn := func(srv *imtest.Server) (*imv1.BatchSyncResponse, *imv1.AuthResponse) {
		t.Helper()
		c := srv.Dial(t, "tcp", alice)
		rsp, err := c.BatchSync(ctx, cursors, 3)
		require.NoError(t, err)
		rsp.ServerTime = 0
		r := dialRaw(t, srv.TCPAddr)
		return rsp, r.auth(alice, srv.Token(t, alice))
	}
	plain.reset()
	batched.reset()
	wantSync, wantAuth := syncOn(fallbackSrv)
	gotSync, gotAuth := syncOn(batchedSrv)

	require.True(t, proto.Equal(wantSync, gotSync), "batched:\n%v\nfallback:\n%v", gotSync, wantSync)
	require.True(t, proto.Equal(wantAuth, gotAuth), "batched:\n%v\nfallback:\n%v", gotAuth, wantAuth)

	// What alice should see: the one-to-one conversation from seq 2, and
	// the groups with news, the last one cut to a page of 3.
	got := map[string][]int64{}
	more := map[string]bool{}
	for _, cm := range gotSync.ConversationMessages {
		got[cm.ConversationId] = seqs(cm.Messages)
		more[cm.ConversationId] = cm.HasMore
	}
	want := map[string][]int64{aliceBob: {2, 3}}
	for i, g := range groups {
		conv := im.GroupConversationID(g.ID)
		switch i {
		case 0:
		case 2:
			want[conv] = []int64{3}
		default:
			want[conv] = upTo(1, min(int64(i)+1, 3))
		}
	}
	require.Equal(t, want, got)
	require.True(t, more[im.GroupConversationID(groups[5].ID)], "a group with more than a page has has_more")
	// AUTH's max_seq covers group conversations: the busiest group's.
	require.Equal(t, int64(6), gotAuth.MaxSeq)

	// Three listings each (two AUTHs, one BATCH_SYNC): the fallback reads
	// every group's conversation and every changed one's messages one by
	// one; the batched path makes one call of each kind.
	require.Equal(t, int64(3), plain.userGroups.Load())
	require.Equal(t, int64(3*len(groups)), plain.conversation.Load())
	require.Equal(t, int64(len(want)), plain.messages.Load())
	require.Zero(t, batched.userGroups.Load()+batched.conversation.Load()+batched.messages.Load())
	require.Equal(t, int64(3), batched.syncConvs.Load())
	require.Equal(t, int64(1), batched.syncRanges.Load())
}

// TestBatchSyncManyGroups: a user in more groups than one MessageRanges
// call covers gets every one of them, from a read per maxRangesPerRead.
func TestBatchSyncManyGroups(t *testing.T) {
	mem := memstore.New()
	store := &batchedStore{plainStore: &plainStore{Store: mem}, sync: mem}
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{Store: store, GroupAddPolicy: anyoneAdds, GroupAddsPerMinute: -1}})
	ctx := testCtx(t)
	const groups = 300
	want := map[string][]int64{}
	for i := range groups {
		g, err := srv.CreateGroup(ctx, bob, im.GroupSpec{Name: fmt.Sprintf("g%d", i)}, []string{alice})
		require.NoError(t, err)
		want[im.GroupConversationID(g.ID)] = []int64{1}
	}
	store.reset()
	rsp, err := srv.Dial(t, "tcp", alice).BatchSync(ctx, nil, 5)
	require.NoError(t, err)
	got := map[string][]int64{}
	for _, cm := range rsp.ConversationMessages {
		got[cm.ConversationId] = seqs(cm.Messages)
		require.False(t, cm.HasMore)
	}
	require.Equal(t, want, got)
	// The Dial's AUTH lists conversations once more.
	require.Equal(t, int64(2), store.syncConvs.Load())
	require.Equal(t, int64(2), store.syncRanges.Load(), "300 ranges of one message: 256, then 44")
}
