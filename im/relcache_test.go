package im_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/memstore"
)

// relationCountingStore counts the reads of two users' relation.
type relationCountingStore struct {
	*memstore.Store
	reads atomic.Int64
}

func (s *relationCountingStore) Relation(ctx context.Context, a, b string) (im.Relation, error) {
	s.reads.Add(1)
	return s.Store.Relation(ctx, a, b)
}

// One-to-one messages ask the relation cache, not the Store: many messages
// between two users cost one read of their relation, and a block made
// through the Server applies to the very next message.
func TestRelationReadOncePerPair(t *testing.T) {
	store := &relationCountingStore{Store: memstore.New()}
	srv, err := im.NewServer(im.Config{
		Store: store,
		Authenticator: im.AuthenticatorFunc(func(context.Context, string) (im.Identity, error) {
			return im.Identity{}, im.ErrUnauthenticated
		}),
	})
	require.NoError(t, err)
	defer srv.Close()
	ctx := t.Context()

	send := func(from, to string) error {
		_, err := srv.SendMessage(ctx, im.SendRequest{SenderID: from, ReceiverID: to, Type: im.TextMessage, Content: []byte("hi")})
		return err
	}
	for range 50 {
		require.NoError(t, send("alice", "bob"))
		require.NoError(t, send("bob", "alice"))
	}
	// One read, or two should the loop outlast the cache's 2 s on a slow
	// machine: never one a message.
	require.LessOrEqual(t, store.reads.Load(), int64(2), "100 messages read the pair's relation %d times", store.reads.Load())
	require.Positive(t, store.reads.Load())

	require.NoError(t, srv.Block(ctx, "bob", "alice"))
	require.ErrorIs(t, send("alice", "bob"), im.ErrPermissionDenied)
	require.ErrorIs(t, send("bob", "alice"), im.ErrPermissionDenied)
}
