// Package bolt is the default im.Store: one file on local disk, kept with
// go.etcd.io/bbolt, for a single imserver process.
//
//	s, err := bolt.Open("data/im.db", bolt.Options{})
//	if err != nil { … }
//	defer s.Close()
//	srv, err := im.NewServer(im.Config{Store: s, …})
//
// Every AppendMessages call is one bbolt write transaction and so one fsync,
// whatever the size of its batch: the server groups concurrent sends into
// one call, which is where the throughput comes from. A message is durable
// when AppendMessages returns; nothing is ever written with NoSync. Within a
// batch, each conversation's bucket and max seq are read once and its max
// seq written once, however many of the batch's messages it holds. The
// freelist is kept in memory and not written by each commit (bbolt's
// NoFreelistSync, as etcd runs it): commits write less, and Open rebuilds
// the freelist by scanning the file, which takes longer on a large file.
//
// # Concurrency
//
// All methods are safe for concurrent use. Reads run in parallel with each
// other and with a write; writes run one at a time, in bbolt's single
// writer transaction, which is what makes seq assignment and dedup atomic.
// The file is locked while open, so only one process can use it: clustered
// deployments need a SQL store.
//
// # Lifecycle
//
// Open locks and, if needed, creates the file; Close waits for calls in
// progress and releases it. The im.Server never closes the Store it was
// given: whoever opened it closes it, after the server has shut down.
//
// # Errors
//
// Missing data wraps im.ErrNotFound, a taken account id or username
// im.ErrConflict, malformed input im.ErrInvalidArgument (Messages and
// MessagesBefore also refuse a limit below 1), and a cancelled ctx the ctx's
// error; ctx is checked before a call starts and again once a write holds
// the writer lock, but a running bbolt transaction cannot be interrupted.
// bbolt's own errors (a locked file, a closed store, a full disk) are
// wrapped with %w. A record that cannot be decoded yields an error, never a
// panic.
//
// # File layout
//
// One top-level bucket per area: messages in a nested bucket per
// conversation keyed by big-endian seq, each conversation's max seq, the
// dedup index (sender, client_msg_id → conversation, seq), the membership
// index (user, conversation), accounts by id and a username index. Records
// are a compact binary encoding that starts with a version byte, and the
// file carries a schema version that Open checks.
package bolt
