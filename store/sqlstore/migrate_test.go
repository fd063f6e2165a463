package sqlstore_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/imserver/imserver/store/sqlstore/sqltest"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/sqlstore"
)

func TestSQLiteConcurrentMigrations(t *testing.T)   { testConcurrentMigrations(t, sqliteBackend) }
func TestPostgresConcurrentMigrations(t *testing.T) { testConcurrentMigrations(t, postgresBackend) }
func TestMySQLConcurrentMigrations(t *testing.T)    { testConcurrentMigrations(t, mysqlBackend) }

func TestSQLiteUpgradeFromV1(t *testing.T)   { testUpgradeFromV1(t, sqliteBackend) }
func TestPostgresUpgradeFromV1(t *testing.T) { testUpgradeFromV1(t, postgresBackend) }
func TestMySQLUpgradeFromV1(t *testing.T)    { testUpgradeFromV1(t, mysqlBackend) }

func TestSQLiteNewerSchema(t *testing.T)   { testNewerSchema(t, sqliteBackend) }
func TestPostgresNewerSchema(t *testing.T) { testNewerSchema(t, postgresBackend) }
func TestMySQLNewerSchema(t *testing.T)    { testNewerSchema(t, mysqlBackend) }

// migrationVersions lists the versions of the migration files of b, read
// from the source tree: what New must have recorded.
func migrationVersions(t *testing.T, b backend) []int64 {
	entries, err := os.ReadDir(filepath.Join("migrations", b.dialect.String()))
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	var out []int64
	for _, e := range entries {
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseInt(num, 10, 64)
		require.NoError(t, err, e.Name())
		out = append(out, v)
	}
	return out
}

// recordedVersions reads schema_migrations.
func recordedVersions(t *testing.T, db *sql.DB, prefix string) []int64 {
	rows, err := db.QueryContext(t.Context(), "SELECT version FROM "+prefix+"schema_migrations ORDER BY version")
	require.NoError(t, err)
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		require.NoError(t, rows.Scan(&v))
		out = append(out, v)
	}
	require.NoError(t, rows.Err())
	return out
}

// testConcurrentMigrations starts several stores on one new database at
// the same moment, each with its own pool as separate processes would:
// all must succeed, and each migration must be recorded once.
func testConcurrentMigrations(t *testing.T, b backend) {
	dsn := b.fresh(t)
	const n = 4
	var (
		dbs    [n]*sql.DB
		stores [n]*sqlstore.Store
		errs   [n]error
		wg     sync.WaitGroup
		start  = make(chan struct{})
	)
	for i := range n {
		dbs[i] = openDB(t, b.driver, dsn)
		wg.Go(func() {
			<-start
			stores[i], errs[i] = sqlstore.New(t.Context(), dbs[i], sqlstore.Options{Dialect: b.dialect, Logger: testLogger(t)})
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "store %d", i)
	}
	want := migrationVersions(t, b)
	require.Equal(t, want, recordedVersions(t, dbs[0], ""))

	// Starting again applies nothing.
	again := b.newStore(t, dbs[1])
	require.Equal(t, want, recordedVersions(t, dbs[0], ""))

	// They share the one identity, made once.
	for _, s := range append(stores[:], again) {
		require.Len(t, s.ID(), 32)
		require.Equal(t, stores[0].ID(), s.ID())
	}
	other := b.newStore(t, openDB(t, b.driver, b.fresh(t)))
	require.NotEqual(t, stores[0].ID(), other.ID(), "another database, another identity")

	// And every store works on the one schema.
	for i, s := range append(stores[:], again) {
		res, err := s.AppendMessages(t.Context(), []im.AppendRequest{{Message: im.Message{
			ConversationID: "group_m", ServerID: "s", SenderID: "u", ClientMsgID: string(rune('a' + i)),
		}}})
		require.NoError(t, err)
		require.NoError(t, res[0].Err)
		require.Equal(t, int64(i+1), res[0].Message.Seq)
	}
}

// testUpgradeFromV1: New brings a database that the first release
// migrated, and that holds data, up to date, and the data stays.
func testUpgradeFromV1(t *testing.T, b backend) {
	ctx := t.Context()
	dsn := b.fresh(t)
	db := openDB(t, b.driver, dsn)
	require.NoError(t, sqlstore.MigrateTo(ctx, db, b.dialect, 1))
	require.Equal(t, []int64{1}, recordedVersions(t, db, ""))
	_, err := db.ExecContext(ctx, "INSERT INTO conversations (id, max_seq) VALUES ('group_old', 7)")
	require.NoError(t, err)

	s := b.newStore(t, db)
	require.Equal(t, migrationVersions(t, b), recordedVersions(t, db, ""))
	require.Len(t, s.ID(), 32, "an upgraded database gets an identity")
	c, err := s.Conversation(ctx, "group_old")
	require.NoError(t, err)
	require.Equal(t, int64(7), c.MaxSeq)
	g := im.Group{ID: "old", Name: "Old", OwnerID: "alice"}
	_, err = s.CreateGroup(ctx, g, []im.GroupMember{{UserID: "alice", Role: im.RoleOwner}}, im.AppendRequest{})
	require.NoError(t, err)
	got, err := s.Group(ctx, "old")
	require.NoError(t, err)
	require.Equal(t, 1, got.MemberCount)
}

func TestSQLiteUpgradeGroupsToVersions(t *testing.T) { testUpgradeGroupsToVersions(t, sqliteBackend) }
func TestPostgresUpgradeGroupsToVersions(t *testing.T) {
	testUpgradeGroupsToVersions(t, postgresBackend)
}
func TestMySQLUpgradeGroupsToVersions(t *testing.T) { testUpgradeGroupsToVersions(t, mysqlBackend) }

// testUpgradeGroupsToVersions: a group stored before groups had versions
// is at version 1 after the upgrade, and changes from there.
func testUpgradeGroupsToVersions(t *testing.T, b backend) {
	ctx := t.Context()
	dsn := b.fresh(t)
	db := openDB(t, b.driver, dsn)
	require.NoError(t, sqlstore.MigrateTo(ctx, db, b.dialect, 2))
	ph := "?, ?, ?, ?, ?"
	if b.dialect == sqlstore.Postgres {
		ph = "$1, $2, $3, $4, $5"
	}
	_, err := db.ExecContext(ctx, "INSERT INTO chat_groups (id, name, face_url, introduction, notification, extra, owner_id, join_policy, member_count, created_at, updated_at)"+
		" VALUES ('old', "+ph+", 'alice', 0, 0, 0, 0)", []byte("Old"), []byte{}, []byte{}, []byte{}, []byte{})
	require.NoError(t, err)

	s := b.newStore(t, db)
	got, err := s.Group(ctx, "old")
	require.NoError(t, err)
	require.Equal(t, int64(1), got.Version)
	r, err := s.ChangeGroup(ctx, "old", im.GroupChange{Version: 1, Put: []im.GroupMember{{UserID: "bob", Role: im.RoleMember}}})
	require.NoError(t, err)
	require.Equal(t, int64(2), r.GroupVersion)
}

// testNewerSchema: a database migrated by a newer version of the package
// is refused rather than written to with the wrong expectations.
func testNewerSchema(t *testing.T, b backend) {
	dsn := b.fresh(t)
	db := openDB(t, b.driver, dsn)
	b.newStore(t, db)
	_, err := db.ExecContext(t.Context(), "INSERT INTO schema_migrations (version, applied_at) VALUES (999999, 0)")
	require.NoError(t, err)

	s, err := sqlstore.New(t.Context(), openDB(t, b.driver, dsn), sqlstore.Options{Dialect: b.dialect})
	require.ErrorContains(t, err, "newer")
	require.Nil(t, s)
}

// TestSQLiteTablePrefix: stores with different prefixes share a database
// without seeing each other's data, each with its own migrations.
func TestSQLiteTablePrefix(t *testing.T) {
	db := openDB(t, "sqlite", sqltest.SQLite(t))
	ctx := t.Context()
	var stores []*sqlstore.Store
	for _, prefix := range []string{"", "a_", "b2_"} {
		s, err := sqlstore.New(ctx, db, sqlstore.Options{Dialect: sqlstore.SQLite, TablePrefix: prefix})
		require.NoError(t, err)
		require.Equal(t, migrationVersions(t, sqliteBackend), recordedVersions(t, db, prefix))
		stores = append(stores, s)
	}
	for i, s := range stores {
		for k := range i + 1 {
			res, err := s.AppendMessages(ctx, []im.AppendRequest{{Message: im.Message{
				ConversationID: "group_p", ServerID: "s", SenderID: "u", ClientMsgID: strconv.Itoa(k),
			}}})
			require.NoError(t, err)
			require.NoError(t, res[0].Err)
		}
	}
	for i, s := range stores {
		c, err := s.Conversation(ctx, "group_p")
		require.NoError(t, err)
		require.Equal(t, int64(i+1), c.MaxSeq, "store %d", i)
	}
}

func TestSQLiteUpgradeGroupsToHistory(t *testing.T)   { testUpgradeGroupsToHistory(t, sqliteBackend) }
func TestPostgresUpgradeGroupsToHistory(t *testing.T) { testUpgradeGroupsToHistory(t, postgresBackend) }
func TestMySQLUpgradeGroupsToHistory(t *testing.T)    { testUpgradeGroupsToHistory(t, mysqlBackend) }

// testUpgradeGroupsToHistory: a group and a membership stored before
// migrations 0004 and 0005 read as HistoryFromJoin and JoinSeq 0, so the
// member of then still reads every message; one who joins after the
// upgrade joins at her notice's seq.
func testUpgradeGroupsToHistory(t *testing.T, b backend) {
	ctx := t.Context()
	dsn := b.fresh(t)
	db := openDB(t, b.driver, dsn)
	require.NoError(t, sqlstore.MigrateTo(ctx, db, b.dialect, 3))
	ph := "?, ?, ?, ?, ?"
	if b.dialect == sqlstore.Postgres {
		ph = "$1, $2, $3, $4, $5"
	}
	_, err := db.ExecContext(ctx, "INSERT INTO chat_groups (id, name, face_url, introduction, notification, extra, owner_id, join_policy, member_count, created_at, updated_at, version)"+
		" VALUES ('old', "+ph+", 'alice', 1, 1, 0, 0, 4)", []byte("Old"), []byte{}, []byte{}, []byte{}, []byte{})
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, "INSERT INTO group_members (group_id, user_id, role, joined_at) VALUES ('old', 'alice', 3, 0)")
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, "INSERT INTO conversations (id, max_seq) VALUES ('group_old', 9)")
	require.NoError(t, err)

	s := b.newStore(t, db)
	got, err := s.Group(ctx, "old")
	require.NoError(t, err)
	require.Equal(t, im.HistoryFromJoin, got.History)
	m, err := s.GroupMember(ctx, "old", "alice")
	require.NoError(t, err)
	require.Zero(t, m.JoinSeq)
	require.Equal(t, int64(1), im.FirstReadableSeq(got, m), "a member of before reads everything")

	_, err = s.ChangeGroup(ctx, "old", im.GroupChange{Version: 4, Put: []im.GroupMember{{UserID: "bob", Role: im.RoleMember}}})
	require.NoError(t, err)
	m, err = s.GroupMember(ctx, "old", "bob")
	require.NoError(t, err)
	require.Equal(t, int64(10), m.JoinSeq)
	cs, err := s.SyncConversations(ctx, "bob")
	require.NoError(t, err)
	require.Equal(t, []im.Conversation{{ID: "group_old", MaxSeq: 9, ReadFrom: 10}}, cs)
	cs, err = s.SyncConversations(ctx, "alice")
	require.NoError(t, err)
	require.Equal(t, []im.Conversation{{ID: "group_old", MaxSeq: 9, ReadFrom: 1}}, cs)
}

// TestMySQLMigrationInterrupted: MySQL commits each DDL statement on its
// own, so a process killed while migrating can leave any prefix of a
// migration's statements applied and the migration unrecorded. For every
// such point, the next New must finish the migration and end with the
// schema of a database migrated in one go.
func TestMySQLMigrationInterrupted(t *testing.T) {
	b := mysqlBackend
	sqltest.Need(t, b.env)
	counts, err := sqlstore.MigrationStatements(b.dialect)
	require.NoError(t, err)
	wholeDB := openDB(t, b.driver, b.fresh(t))
	b.newStore(t, wholeDB)
	want := mysqlSchema(t, wholeDB)
	for _, v := range migrationVersions(t, b) {
		require.Positive(t, counts[v], "migration %d has statements", v)
		for n := 1; n <= counts[v]; n++ {
			t.Run(fmt.Sprintf("%04d/%d", v, n), func(t *testing.T) {
				t.Parallel()
				ctx := t.Context()
				db := openDB(t, b.driver, b.fresh(t))
				require.NoError(t, sqlstore.MigrateInterrupted(ctx, db, v, n))
				s, err := sqlstore.New(ctx, db, sqlstore.Options{Dialect: b.dialect, Logger: testLogger(t)})
				require.NoError(t, err, "New after a kill after statement %d of migration %d", n, v)
				require.Equal(t, migrationVersions(t, b), recordedVersions(t, db, ""))
				require.Equal(t, want, mysqlSchema(t, db))
				_, err = s.AppendMessages(ctx, []im.AppendRequest{{Message: im.Message{
					ConversationID: "group_g", ServerID: "s", SenderID: "u", ClientMsgID: "c",
				}}})
				require.NoError(t, err)
			})
		}
	}
}

// mysqlSchema describes the columns and indexes of db's current database,
// one line each, in a fixed order.
func mysqlSchema(t *testing.T, db *sql.DB) []string {
	var out []string
	for _, q := range []string{
		"SELECT CONCAT_WS(' ', table_name, column_name, column_type, is_nullable, COALESCE(column_default, 'NULL')) FROM information_schema.columns WHERE table_schema = DATABASE() ORDER BY table_name, ordinal_position",
		"SELECT CONCAT_WS(' ', table_name, index_name, non_unique, seq_in_index, column_name) FROM information_schema.statistics WHERE table_schema = DATABASE() ORDER BY table_name, index_name, seq_in_index",
	} {
		rows, err := db.QueryContext(t.Context(), q)
		require.NoError(t, err)
		for rows.Next() {
			var line string
			require.NoError(t, rows.Scan(&line))
			out = append(out, line)
		}
		require.NoError(t, rows.Err())
		rows.Close()
	}
	require.NotEmpty(t, out)
	return out
}
