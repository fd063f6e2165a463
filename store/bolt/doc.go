// Package bolt is the default im.Store: a file on local disk, kept with
// go.etcd.io/bbolt, for a single imserver process, and beside it a second
// file for the dedup index.
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
// batch, each conversation's max seq is read once and written once, however
// many of the batch's messages it holds.
//
// # The log
//
// A commit does not write its messages into their conversations' buckets,
// which would rewrite a page per conversation per commit, but appends them
// to a log, whose pages fill in order, and keeps them in memory. A later
// commit moves a conversation's messages to its bucket all at once, when
// 32 of them wait or when 16,384 messages have been logged after the
// oldest. Reads combine the bucket with the waiting messages; a lock taken
// around each commit and each reader's transaction start keeps the two in
// agreement. Open reads the log back after a crash; Close moves every
// waiting message to its bucket.
//
// The
// freelist is kept in memory and not written by each commit (bbolt's
// NoFreelistSync, as etcd runs it): commits write less, and Open rebuilds
// the freelist by scanning the file, which takes longer on a large file.
//
// # Dedup
//
// Client message ids are random, so an index keyed by them would dirty a
// page for nearly every message a commit stores. Instead the keys of the
// logged messages are kept in memory, and a background merger writes them,
// sorted and
// tens of thousands at a time, to the index file (path + IndexSuffix),
// whose commits run beside the main file's. Lookups read memory, then the
// index file. Close merges what is left, and empties the log, so the next
// Open has nothing to read back. The index holds nothing the
// messages do not, so a missing index file, or one from another store, is
// rebuilt from them at Open. If merges fall behind (half a million keys
// wait), appends wait for them.
//
// # Groups
//
// A group change and the notice that reports it (im.GroupStore's
// CreateGroup and ChangeGroup) are one bbolt write transaction: the
// groups' buckets are written and the notice is logged, by the same code as
// AppendMessages and under the same lock, before the one commit. A crash
// therefore keeps both or neither, and Open's replay of the log needs
// nothing new. The version check and the member limit are judged inside
// that transaction. A group message's MemberOf is checked against the
// groups' buckets inside the append's own transaction, which no change can
// interleave with, since bbolt runs one writer at a time.
//
// # Read states and recall
//
// Store implements im.ReadStateStore without adding anything to the
// commits of AppendMessages, which a put per message or per sender and
// conversation in a bucket of its own would slow down (it rewrites a page
// per conversation per commit). A sender's own messages count as read
// (Read): ReadStates takes the greatest of her receipt, her newest
// pending message (in memory, fewer than 32 a conversation) and her sent
// position, which a merge records beside the conversation's bucket, on
// the page the merge rewrites anyway, as it moves the messages there; so
// it is exactly as durable as they are. Receipts (UpdateReadStates: Read,
// Delivered, Mentioned and the time one last moved) are a bucket keyed by
// conversation and user, one commit per call; a call that moves nothing
// forward commits nothing. See readstate.go.
//
// im.RecallStore: RecallMessage rewrites the message as a tombstone, its
// content, extra and attached info erased, wherever the store holds it:
// its bucket or its pending copy, and its log record while the log keeps
// it. bbolt does not overwrite the pages it frees, so the old bytes stay
// in the file until a later commit reuses their page. MessageByServerID
// has no index to use: it reads the conversation from its newest message
// back, which is quick for recent messages and reads all of it for an id
// it does not hold. See recall.go.
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
// Open locks and, if needed, creates the files; Close waits for calls in
// progress and the merger, and releases them. The im.Server never closes
// the Store it was given: whoever opened it closes it, after the server has
// shut down. A backup needs only the main file (bbolt's Tx.WriteTo makes a
// consistent copy of an open one): restored beside a missing, older or
// newer index file, it is detected at Open and the index rebuilt.
//
// # Crash safety
//
// The two files, the log and memory are tied by counters (the next log
// key, the last one trimmed, the last one merged into the index), and a
// crash can come between any two of their commits. The store's crash test
// (storetest.RunCrash) kills a process appending to it with SIGKILL, at
// random times, during Open's recovery too, and at failpoints: in the
// middle of a commit's writes and fsyncs, after a commit before memory
// knows of it, between a merge's transactions, after a merge before the
// log is trimmed, during a rebuild of the index; and it makes commits of
// either file fail. After each kill the store must open and pass Check,
// hold every acknowledged message unchanged at its seq, with gap-free seqs,
// find every acknowledged (sender, client_msg_id) as a duplicate, and hold
// nothing of a failed append. A default run makes about 30 kills in 25 s;
// to make more:
//
//	STORETEST_CRASH_DURATION=10m go test -run '^TestCrash$' ./store/bolt
//
// TestCrashReadStatesAndRecall does the same to a process that also
// recalls messages and sends receipts, and requires every sender to have
// read her acknowledged messages, every acknowledged recall to have left
// a tombstone, and every acknowledged receipt to be kept.
//
// A kill leaves what the process wrote in the operating system's page
// cache: this proves safety against a crash of the process, while safety
// against power loss rests on bbolt's order of writes and fsyncs, which
// the test does not simulate.
//
// Check reads both files through, runs bbolt's page checks on each and
// verifies the invariants between them and memory and every record's
// checksum; operators can run it on a live store, at a quiet time, as
// writes wait for it. CheckFile does the same for a store no process has
// open, on a copy, so that it changes nothing (imserver check runs it).
//
// # Integrity
//
// bbolt checks its meta pages but not the data: a bit flipped on disk, in
// memory on its way there, or in a copy would be decoded and served as a
// different message. So every value the main file stores is sealed (see
// seal.go): the record as its codec encodes it, behind a byte 0x00 and
// followed by a CRC-32C of the bucket's name, the key and the record. A
// message, its log record, a conversation's max seq, a membership, an
// account, a username, a group and a group membership, and the log's
// counters, are all checked on every read, and a failed check is an error
// wrapping im.ErrCorrupt (an *im.CorruptError naming the conversation and
// seq of a message), never the data; tombstones, sent positions,
// receipts, the nickname index, revoked tokens, friendships, friend
// requests, blocks and join requests are sealed the same way. Because the checksum covers the key
// and the bucket's name, a record that was moved (to another seq, another
// conversation) fails it too; reads also require a conversation's seqs
// from the first one asked for to be there without a gap, and a
// conversation's max seq and messages to come together, so that a damaged
// key does not quietly shorten a conversation. The dedup index file holds
// nothing the messages do not: a send the index names as a duplicate is
// answered only if the message it names carries the same (sender,
// client_msg_id).
//
// A file created by this version records that every record is sealed, and
// then refuses a record that is not, so that a damaged first byte cannot
// pass a record off as one written before sealing. A file written by an
// earlier version (schema version 3 or older) is upgraded in place at
// Open: its old records are read as they are, unchecked, and everything
// written from then on is sealed. Older versions of this package refuse
// an upgraded file (its schema version is 4).
//
// bbolt trusts its pages, and some damage makes it panic, or read past the
// end of the file, in a goroutine of its own where neither can be
// recovered; Open therefore first walks the file's pages itself (every
// page reached within the file and reached once, every element, key and
// value within its page, keys in order), and recovers a panic or fault of
// bbolt's, so that a damaged file is an error wrapping im.ErrCorrupt,
// never a crash. The walk reads every page of the B+trees once, as bbolt's
// rebuild of the freelist at Open does. Each method recovers the same way
// from damage met while running. A file of 0 bytes is refused rather than
// made into a new store.
//
// Each file carries a random identity (Store.ID), which a data dir can
// keep beside it to tell its own file from another one.
//
// # Errors
//
// Missing data wraps im.ErrNotFound, a taken account id, username or group
// id im.ErrConflict, malformed input im.ErrInvalidArgument (Messages and
// MessagesBefore also refuse a limit below 1, and the read state and
// recall methods ids that cannot be stored), and a cancelled ctx the ctx's
// error; ctx is checked before a call starts and again once a write holds
// the writer lock, but a running bbolt transaction cannot be interrupted.
// bbolt's own errors (a locked file, a closed store, a full disk) are
// wrapped with %w. A record that fails its checksum or cannot be decoded,
// and a damaged page, yield an error wrapping im.ErrCorrupt, never a
// panic and never the data.
//
// # File layout
//
// One top-level bucket per area: messages in a nested bucket per
// conversation keyed by big-endian seq (and beside it, under conversation
// 0x00 user, each sender's position), each conversation's max seq, the
// log (in generations of 4,096 messages, each a nested bucket, so that it
// is trimmed a bucket at a time), the membership index (user,
// conversation), accounts by id and a username index, groups by id (each
// with its member count and version, kept in the same transaction as its
// members), and
// their memberships twice, under (group, user) with the role and join time
// and under (user, group), so that a group's members and a user's groups
// are each one prefix scan. The index file maps (sender, client_msg_id) to
// (conversation, seq). Both files carry the same random id, which is how
// Open tells that they belong together. Records are a compact binary
// encoding that starts with a version byte, sealed with a checksum (see
// Integrity), and the file carries a schema version that Open checks. The groups' buckets came later without a new
// schema version: Open creates them in a file that lacks them, and older
// versions of this package ignore them. The token versions' bucket (user
// id → 8-byte big-endian version) is made by the first revocation, and is
// ignored the same way, as are the receipts' bucket (conversation 0x00
// user → read state) and the sent positions, plain keys where older
// versions look for buckets only. A tombstone is a message record of
// version 2 (the tombstone's fields could not be appended to version 1,
// whose content runs to its end), which older versions would take for
// damage: a file's first recall raises its schema version to 5, which
// they refuse, and until then they still open it. Files written before
// read states have no sent positions for the messages merged then, whose
// senders read 0 from them.
//
// Profiles, mutes and join requests came the same way. An account without
// a profile is still the record of version 1; one with a profile (or
// Deleted) is a record of version 2, a muted group or member a record with
// a field appended, and older versions would take either for damage; and
// their group changes would leave join requests behind. The first commit
// that writes one of these raises the schema version to 6, which older
// versions refuse. The nickname index (folded nickname 0x00 user id, for
// every account not deleted) must be kept by every writer of accounts:
// Open rebuilds it, writing only what differs, in a file below version 6,
// whose accounts an older version may have changed, and trusts it from
// version 6 on. Friendships, friend requests, blocks and revoked tokens
// are buckets of their own, keyed so that a user's records are a prefix
// scan (see friends.go and revoked.go), which older versions ignore.
//
// # Optional interfaces
//
// Store implements auth.AccountStore, auth.AccountUpdater,
// auth.AccountSearcher (a search is a seek in the nickname index to its
// prefix and a walk over the keys that begin with it, never a read of
// every account), auth.TokenVersions and auth.RevokedTokens (each
// revocation also removes up to 16 records past their expiry), for
// im/auth's built-in accounts and revocation;
// im.SyncStore: a BATCH_SYNC lists the user's conversations and its
// groups' in one read transaction (two prefix scans and a lookup per
// group), and reads the messages of all its conversations in another,
// through im.MessageRangeScanner into memory the Store keeps for the next
// sync (the strings are the caller's, the pages and contents are not);
// im.ReadStateStore and im.RecallStore (see Read states and recall). It
// implements im.ConversationSettingsStore too: each user's settings of a
// conversation are one sealed record keyed (user, conversation), in a
// bucket Open adds to older files, so that her changed settings are one
// prefix scan; a change is one write transaction, and one that changes
// nothing is rolled back rather than committed.
//
// im.FriendStore: each change is one write transaction, which judges by
// what it reads there; bbolt's single writer is what makes two users who
// ask each other at once one friendship, and a block and a friendship or
// request never coexist. im.GroupJoinRequestStore: requests keyed (group,
// user), removed by a group change that puts their user, and all of a
// group by its deletion, in the change's transaction. A group message's
// MemberOf check also refuses, with im.ErrMuted, a sender muted at the
// message's CreatedAt or below an admin in a group with MuteAll, inside
// the append's transaction as the membership is.
package bolt
