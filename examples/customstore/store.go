package main

import (
	"context"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth/account"
	"github.com/imserver/imserver/store/memstore"
)

// Store is where a database of your own goes. It embeds a memstore.Store,
// so it is a complete im.Store from the first line and the server runs on
// it at once; each area you move to your database gets methods of its own
// here, which take the place of the embedded ones, while store_test.go
// keeps proving the whole against store/storetest.
//
// Embedding also brings memstore's optional capabilities along: once
// messages live in your database, implement im.SyncStore's and
// im.RecallStore's methods here too (or hide them), or BATCH_SYNC keeps
// reading memstore's copy and recalls change it instead of yours; the same
// holds for groups and im.GroupJoinRequestStore, and for accounts and
// account.AccountSearcher and account.RevokedTokens. Areas of their own, such as
// friends (im.FriendStore), move on their own.
//
// store/memstore's source is the reference to copy from: a correct Store
// in a few hundred lines, one mutex where your database has transactions.
type Store struct {
	*memstore.Store

	// Your database handle lives here: db *sql.DB, a client, ….
}

// The compiler checks that Store is a complete im.Store, and the optional
// capabilities it offers.
var (
	_ im.Store             = (*Store)(nil)
	_ im.Pinger            = (*Store)(nil) // Server.Health asks it
	_ im.SyncStore         = (*Store)(nil) // BATCH_SYNC in one read (embedded)
	_ im.RecallStore       = (*Store)(nil) // recalling messages (embedded)
	_ account.AccountStore = (*Store)(nil) // built-in accounts (embedded)
	// Optional areas the server finds by type assertion (embedded).
	_ im.FriendStore           = (*Store)(nil) // friends, requests, blocks
	_ im.GroupJoinRequestStore = (*Store)(nil) // groups that approve who joins
	_ account.AccountSearcher  = (*Store)(nil) // profiles by id, user search
	_ account.RevokedTokens    = (*Store)(nil) // logout of one token
)

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{Store: memstore.New()}
}

// Ping implements im.Pinger, an optional capability: Server.Health calls it
// to learn whether the backend answers. A networked database pings its
// server here; memory always answers.
func (s *Store) Ping(ctx context.Context) error {
	return ctx.Err()
}
