// Package sqlstore is an im.Store in a SQL database reached through
// database/sql: SQLite, PostgreSQL or MySQL/MariaDB. It is the store for
// several imserver processes sharing one database, and for deployments
// whose data belongs in a database they already run.
//
//	db, err := sql.Open("pgx", dsn) // or "sqlite", "mysql": the caller's driver
//	if err != nil { … }
//	defer db.Close()
//	s, err := sqlstore.New(ctx, db, sqlstore.Options{Dialect: sqlstore.Postgres})
//	if err != nil { … }
//	srv, err := im.NewServer(im.Config{Store: s, …})
//
// # Drivers and settings
//
// The program imports the driver it uses. This package links in no driver:
// it recognises each driver's errors by their methods or shape, so a
// program that uses only PostgreSQL carries neither SQLite nor MySQL.
//
//   - SQLite: modernc.org/sqlite (pure Go, no cgo), sql.Open("sqlite",
//     path). New switches the file to WAL journal mode, so that reads do
//     not wait for writes. Keep the driver's default synchronous=FULL: with
//     less, a commit can be lost in a power cut.
//   - PostgreSQL: github.com/jackc/pgx/v5/stdlib, sql.Open("pgx", url).
//     The tables go in the first schema of the connection's search_path.
//   - MySQL or MariaDB, with InnoDB: github.com/go-sql-driver/mysql,
//     sql.Open("mysql", dsn). Add interpolateParams=true to the DSN: each
//     statement is then one round trip instead of two (a prepare and an
//     execute), which the benchmarks show in every operation. Tested with
//     MariaDB 10.11.
//
// The pool is the caller's to size. database/sql keeps two idle
// connections by default; set SetMaxIdleConns to about the number of
// concurrent store calls, or busy servers reconnect all the time.
//
// A message is durable when AppendMessages returns as far as the
// database's own commit is: keep PostgreSQL's synchronous_commit and
// InnoDB's innodb_flush_log_at_trx_commit=1 at their defaults.
//
// # Schema and migrations
//
// The tables (conversations, messages, members, accounts, chat_groups,
// group_members, token_versions, read_states, conversation_settings,
// revoked_tokens, friends, friend_requests, user_blocks, friend_pairs,
// group_join_requests) and
// their indexes are created by versioned migrations embedded in the
// package, recorded in a schema_migrations table. New
// applies those the database has not seen, under a lock that makes
// processes starting at once take turns: a PostgreSQL advisory lock, a
// MySQL named lock, SQLite's write lock. It refuses a database migrated by
// a newer version of this package. PostgreSQL and SQLite run all of it in
// one transaction; MySQL commits each DDL statement on its own, so every
// MySQL migration statement is safe to run again, and a process killed
// half-way through a migration leaves one that the next New finishes.
// Options.TablePrefix puts a prefix
// before every table name, so that several stores can share one database.
// A store_meta table holds the store's identity (Store.ID), random, made
// once by the migration that added the table, the same for every Store on
// those tables: imserver keeps it in its data dir to tell the database it
// was set up with from another one. The SQL stores keep no checksums of
// their own; the databases check their pages themselves (PostgreSQL with
// data checksums enabled, InnoDB, SQLite's integrity_check).
//
// read_states holds one row per conversation and user with a read,
// delivered or mentioned position above 0, and when a receipt last moved
// one, keyed by the conversation first. A
// recalled message keeps its row in messages, with revoked_by and
// revoked_at set and its content, extra and attached_info emptied; the
// messages stored before migration 0008 read as not recalled.
//
// Ids are stored so that they compare byte by byte (PostgreSQL's "C"
// collation, MySQL's VARBINARY, SQLite's BINARY); the strings the server
// treats as opaque (Extra, AttachedInfo, Nickname, …) are binary columns
// and come back exactly as given. Times are unix microseconds.
//
// # Concurrency
//
// All methods are safe for concurrent use, and any number of Stores, in
// one process or many, may share a database. Each AppendMessages call is
// one transaction: it reads the batch's dedup keys that are stored
// already, then creates, locks and advances the batch's conversation rows
// with one upsert, in id order so that concurrent batches cannot deadlock
// on them, then inserts the members and messages with multi-row inserts,
// and raises each sender's read position to her newest message with one
// upsert that keeps the greater value (on PostgreSQL, part of the
// messages' insert). Seqs are therefore gap-free across processes: a
// conversation's row stays locked until the commit. A unique
// index on (sender, client_msg_id) settles dedup races: the transaction
// that loses is run again, and then reports the winner's message as the
// duplicate. Deadlocks, serialization failures and a busy SQLite file are
// retried the same way, up to ten attempts with a growing random pause.
//
// Each change to a group is one transaction that first locks the group's
// row, so that changes to one group take turns across processes; in it the
// group's version is compared with the one the change was decided on, the
// member limit with the member_count kept in that row, and the notice is
// appended, so that a change, its checks and its notice commit together.
// An append batch holding group messages (AppendRequest.MemberOf)
// share-locks those groups' rows, in id order, before it locks any
// conversation, and reads the senders' memberships in one statement: a
// group message commits wholly before or wholly after any change to its
// group, in whatever process.
//
// On SQLite, which has one writer at a time, a Store queues its own writes
// before taking the file's lock, and waits up to five seconds for the
// lock of other processes on each attempt.
//
// # Lifecycle
//
// New checks its options and runs the migrations; it starts no goroutine.
// The Store holds nothing but the *sql.DB, which the caller opened and
// closes, after the im.Server using the Store has shut down. There is no
// Close.
//
// # Errors
//
// A malformed request in a batch gets its own AppendResult.Err wrapping
// im.ErrInvalidArgument, before anything is written; the rest of the batch
// is stored. CreateAccount returns im.ErrInvalidArgument for malformed ids
// and im.ErrConflict for a taken user id or username. The group methods
// that write return im.ErrInvalidArgument for input that
// im.ValidateCreateGroup or im.ValidateGroupChange refuses, im.ErrConflict
// for a group id that is taken or a version that is not the group's,
// and im.ErrLimitExceeded past GroupChange.MaxMembers. Missing
// data wraps im.ErrNotFound; an id that no valid call could have stored is
// simply not found. Messages and MessagesBefore refuse a limit below 1 with
// im.ErrInvalidArgument. Driver errors are wrapped with %w.
//
// An error from a write means nothing of it was stored. When ctx ends
// during a write, the statement running is cancelled and the transaction
// rolled back, and the error satisfies errors.Is with ctx.Err(); a commit
// that has started is not interrupted, so it either completes (and the
// call succeeds) or fails as a whole.
//
// # Optional interfaces
//
// Store implements im.Pinger, with the pool's PingContext;
// auth.AccountStore, auth.AccountUpdater and auth.TokenVersions, for
// im/auth's built-in accounts and revocation; and im.SyncStore: a
// BATCH_SYNC lists the user's conversations and its groups' in one query
// (a UNION joined on the conversations' key), and reads the messages of
// many conversations in one query (PostgreSQL passes the ranges as arrays;
// MySQL and SQLite an OR of index ranges, 300 to a statement).
//
// It implements im.ReadStateStore: UpdateReadStates is one transaction
// whose upsert raises each position to the greater of the stored and the
// given value, clamped to the conversation's max_seq, so that concurrent
// receipts and appends, in any process, only move positions forward. And
// im.RecallStore: MessageByServerID reads the conversation's messages from
// the newest backwards (there is no index on server_id, which every append
// would pay for); RecallMessage empties the payload with one UPDATE, the
// first recall's user and time staying. The old payload may linger in the
// database's files until they are reused (PostgreSQL until VACUUM, InnoDB
// until purge); on SQLite the recall turns secure_delete on, which
// overwrites it with zeros.
//
// It implements auth.AccountSearcher: AccountsByID is one query;
// SearchAccounts reads the range of an index on (nickname_key, user_id)
// from the prefix to the prefix with its last byte raised, in the index's
// order, stopping at the limit. nickname_key is auth.NicknameKey of the
// nickname, computed in Go on every write (cut to 1024 bytes) and stored
// as bytes, so that the three dialects compare it alike; migration 0010
// filled it in with the database's LOWER, which may fold some non-ASCII
// letters differently (SQLite's only ASCII ones) until the nickname next
// changes. And auth.RevokedTokens: RevokeToken also deletes up to 100
// records of tokens that have expired.
//
// It implements im.FriendStore: each method is one transaction, and those
// that decide on what they read of two users first lock the pair's row in
// friend_pairs (created on first use; SQLite's write lock does it there),
// so that two users asking each other at once, from any processes, end as
// one friendship. Relation is one statement, so one snapshot.
//
// It implements im.GroupJoinRequestStore: PutJoinRequest share-locks the
// group's row, as a group message does, so it commits wholly before or
// after a change to the group; ChangeGroup removes the requests of the
// users it puts, and of a group it deletes. Group.MuteAll and
// GroupMember.MutedUntil are kept with the group and its members, and the
// MemberOf check of an append reads them in the statements that lock the
// groups and read the memberships: a muted sender is refused with
// im.ErrMuted at no extra round trip.
//
// It implements im.ConversationSettingsStore too: a change is one
// transaction that locks the (user, conversation) row (SELECT … FOR
// UPDATE; on SQLite the write lock), so that changes of different fields
// from any process lose none of each other; the first change of a pair
// may lose the race to insert the row, or on MySQL deadlock on the gap,
// and is then run again.
package sqlstore
