// Package memstore is an im.Store that keeps everything in memory: for tests,
// examples and small tools, not for production. Nothing survives the
// process, and every call takes one lock, so it neither scales nor
// persists.
//
// It implements every rule storetest checks, so a test that runs on it
// behaves as it would on store/bolt or store/sqlstore, only faster. Beside
// im.Store it implements auth.AccountStore, auth.AccountUpdater and
// auth.TokenVersions, for the built-in accounts and revocation, and
// im.SyncStore, so that it answers a BATCH_SYNC in one read as the real
// stores do, im.RecallStore, so that messages can be recalled,
// im.FriendStore, for friendships, friend requests and blocks (indexed by
// user, so a call costs what the users it names hold), and
// im.GroupJoinRequestStore, for groups that approve who joins.
//
// A custom store can embed a *Store and override the methods it keeps
// elsewhere (examples/customstore does).
//
// # Concurrency
//
// A Store is safe for concurrent use. Each method runs under one mutex, so
// every call is atomic and sees the effect of every call that returned
// before it began.
//
// # Errors
//
// Missing data gives errors wrapping im.ErrNotFound, taken keys
// im.ErrConflict, malformed input im.ErrInvalidArgument, and a cancelled ctx
// its ctx.Err().
package memstore
