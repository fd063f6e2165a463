package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imserver/imserver/store/sqlstore/sqltest"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/store/sqlstore"
)

func TestNewRefusesBadOptions(t *testing.T) {
	db := openDB(t, "sqlite", sqltest.SQLite(t))
	tests := []struct {
		name string
		db   *sql.DB
		opts sqlstore.Options
	}{
		{"NilDB", nil, sqlstore.Options{Dialect: sqlstore.SQLite}},
		{"NoDialect", db, sqlstore.Options{}},
		{"UnknownDialect", db, sqlstore.Options{Dialect: sqlstore.MySQL + 1}},
		{"PrefixUpperCase", db, sqlstore.Options{Dialect: sqlstore.SQLite, TablePrefix: "Im_"}},
		{"PrefixDigitFirst", db, sqlstore.Options{Dialect: sqlstore.SQLite, TablePrefix: "1im_"}},
		{"PrefixUnderscoreFirst", db, sqlstore.Options{Dialect: sqlstore.SQLite, TablePrefix: "_im"}},
		{"PrefixQuote", db, sqlstore.Options{Dialect: sqlstore.SQLite, TablePrefix: "im\"; DROP TABLE x; --"}},
		{"PrefixSpace", db, sqlstore.Options{Dialect: sqlstore.SQLite, TablePrefix: "im x"}},
		{"PrefixTooLong", db, sqlstore.Options{Dialect: sqlstore.SQLite, TablePrefix: strings.Repeat("a", 33)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sqlstore.New(t.Context(), tt.db, tt.opts)
			require.Error(t, err)
			require.Nil(t, s)
		})
	}
	// Nothing was created by the refused calls.
	var n int
	require.NoError(t, db.QueryRowContext(t.Context(), "SELECT count(*) FROM sqlite_master").Scan(&n))
	require.Zero(t, n)

	// The longest prefix is fine.
	_, err := sqlstore.New(t.Context(), db, sqlstore.Options{Dialect: sqlstore.SQLite, TablePrefix: "a" + strings.Repeat("_9", 15) + "z"})
	require.NoError(t, err)
}

func TestDialectString(t *testing.T) {
	require.Equal(t, "sqlite", sqlstore.SQLite.String())
	require.Equal(t, "postgres", sqlstore.Postgres.String())
	require.Equal(t, "mysql", sqlstore.MySQL.String())
	require.Equal(t, "Dialect(0)", sqlstore.Dialect(0).String())
}

func TestSQLiteNewCancelled(t *testing.T) {
	db := openDB(t, "sqlite", sqltest.SQLite(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := sqlstore.New(ctx, db, sqlstore.Options{Dialect: sqlstore.SQLite})
	require.ErrorIs(t, err, context.Canceled)
}

// The behaviour below is not im.Store's contract, so storetest does not
// check it; it is this package's, on every dialect.

func TestSQLiteBehaviour(t *testing.T)   { testBehaviour(t, sqliteBackend) }
func TestPostgresBehaviour(t *testing.T) { testBehaviour(t, postgresBackend) }
func TestMySQLBehaviour(t *testing.T)    { testBehaviour(t, mysqlBackend) }

func testBehaviour(t *testing.T, b backend) {
	s, dsn := b.open(t)
	ctx := t.Context()
	_, err := s.AppendMessages(ctx, []im.AppendRequest{{
		Message: im.Message{ConversationID: "group_b", ServerID: "s1", SenderID: "alice", ClientMsgID: "c1"},
		Members: []string{"alice"},
	}})
	require.NoError(t, err)

	t.Run("Limit", func(t *testing.T) {
		for _, limit := range []int{0, -1} {
			_, err := s.Messages(ctx, "group_b", 1, 0, limit)
			require.ErrorIs(t, err, im.ErrInvalidArgument)
			_, err = s.MessagesBefore(ctx, "group_b", 0, limit)
			require.ErrorIs(t, err, im.ErrInvalidArgument)
		}
	})

	t.Run("MalformedIDsAreNotFound", func(t *testing.T) {
		// Ids that validation would refuse cannot be stored, so reading
		// them finds nothing, and no database sees them (Postgres would
		// refuse invalid UTF-8 with an error of its own).
		for _, id := range []string{"", "group_\xff", "a\x00b", strings.Repeat("g", im.MaxConversationIDLen+1)} {
			_, err := s.Conversation(ctx, id)
			require.ErrorIs(t, err, im.ErrNotFound, "%q", id)
			ms, err := s.Messages(ctx, id, 1, 0, 10)
			require.NoError(t, err)
			require.Empty(t, ms)
			ms, err = s.MessagesBefore(ctx, id, 0, 10)
			require.NoError(t, err)
			require.Empty(t, ms)
			cs, err := s.UserConversations(ctx, id)
			require.NoError(t, err)
			require.Empty(t, cs)
			_, err = s.Account(ctx, id)
			require.ErrorIs(t, err, im.ErrNotFound, "%q", id)
			_, err = s.AccountByUsername(ctx, id)
			require.ErrorIs(t, err, im.ErrNotFound, "%q", id)
		}
	})

	t.Run("OpaqueBytes", func(t *testing.T) {
		// The server treats these fields as opaque: any bytes come back
		// as given, even where a text column would refuse them.
		odd := "nul\x00, bad utf-8 \xff\xfe, trailing space "
		m := im.Message{
			ConversationID: "group_bytes", ServerID: odd, SenderID: "alice", ReceiverID: odd,
			ClientMsgID: "bytes", Content: []byte(odd), Extra: odd, AttachedInfo: odd,
			Type: -7, SendTime: -1, CreatedAt: time.Unix(-1, 1000),
		}
		res, err := s.AppendMessages(ctx, []im.AppendRequest{{Message: m}})
		require.NoError(t, err)
		require.NoError(t, res[0].Err)
		require.False(t, res[0].Duplicate)
		ms, err := s.Messages(ctx, "group_bytes", 1, 0, 10)
		require.NoError(t, err)
		require.Len(t, ms, 1)
		got := ms[0]
		require.Equal(t, odd, got.ServerID)
		require.Equal(t, odd, got.ReceiverID)
		require.Equal(t, []byte(odd), got.Content)
		require.Equal(t, odd, got.Extra)
		require.Equal(t, odd, got.AttachedInfo)
		require.Equal(t, im.MessageType(-7), got.Type)
		require.Equal(t, int64(-1), got.SendTime)
		require.True(t, m.CreatedAt.Equal(got.CreatedAt), "CreatedAt %v, want %v", got.CreatedAt, m.CreatedAt)

		a := auth.Account{UserID: "u-bytes", Username: "bytes", Nickname: odd, PasswordHash: []byte{0, 0xff}}
		require.NoError(t, s.CreateAccount(ctx, a))
		gotA, err := s.Account(ctx, "u-bytes")
		require.NoError(t, err)
		require.Equal(t, odd, gotA.Nickname)
		require.Equal(t, []byte{0, 0xff}, gotA.PasswordHash)
		require.True(t, gotA.CreatedAt.IsZero(), "zero CreatedAt came back as %v", gotA.CreatedAt)
	})

	t.Run("IDsAreExact", func(t *testing.T) {
		// Case, trailing spaces and Unicode normalisation all matter:
		// MySQL's PAD SPACE and case-insensitive collations would not.
		for i, id := range []string{"x", "X", "x ", "é", "e\u0301"} {
			a := auth.Account{UserID: "exact" + id, Username: "n" + id}
			require.NoError(t, s.CreateAccount(ctx, a), "account %d %q", i, id)
		}
		for _, id := range []string{"x", "X", "x ", "é", "e\u0301"} {
			a, err := s.AccountByUsername(ctx, "n"+id)
			require.NoError(t, err)
			require.Equal(t, "exact"+id, a.UserID)
		}
		_, err := s.AccountByUsername(ctx, "nx  ")
		require.ErrorIs(t, err, im.ErrNotFound)
	})

	t.Run("Ping", func(t *testing.T) {
		require.NoError(t, s.Ping(ctx))
		// A store on a closed pool reports it.
		db := openDB(t, b.driver, dsn)
		s2 := b.newStore(t, db)
		require.NoError(t, db.Close())
		require.Error(t, s2.Ping(ctx))
		_, err := s2.Conversation(ctx, "group_b")
		require.Error(t, err)
		require.False(t, errors.Is(err, im.ErrNotFound), "a closed pool is not a missing conversation: %v", err)
	})

	t.Run("ErrorsAreWrapped", func(t *testing.T) {
		_, err := s.Conversation(ctx, "group_none")
		require.ErrorIs(t, err, im.ErrNotFound)
		require.Contains(t, err.Error(), "group_none")
		require.Contains(t, err.Error(), "sqlstore")
	})
}

func TestSQLiteLargeBatch(t *testing.T) {
	t.Parallel()
	testLargeBatch(t, sqliteBackend)
}

func TestPostgresLargeBatch(t *testing.T) {
	t.Parallel()
	testLargeBatch(t, postgresBackend)
}
func TestMySQLLargeBatch(t *testing.T) {
	t.Parallel()
	testLargeBatch(t, mysqlBackend)
}

func TestMySQLInterpolateParamsLargeBatch(t *testing.T) {
	t.Parallel()
	testLargeBatch(t, mysqlInterpolatedBackend)
}

// testLargeBatch appends, in one call, more message data than MySQL takes
// in one statement by default (16 MiB on MariaDB) and more rows than one
// multi-row INSERT holds.
func testLargeBatch(t *testing.T, b backend) {
	s, _ := b.open(t)
	const (
		large = 300
		small = 700
	)
	content := []byte(strings.Repeat("0123456789abcdef", 4096)) // 64 KiB
	batch := make([]im.AppendRequest, 0, large+small)
	for i := range large + small {
		m := im.Message{
			ConversationID: "group_large", ServerID: "s", SenderID: "u", ClientMsgID: strconv.Itoa(i),
			Content: []byte("short"), CreatedAt: time.Unix(int64(i), 0),
		}
		if i < large {
			m.Content = content
		}
		batch = append(batch, im.AppendRequest{Message: m})
	}
	res, err := s.AppendMessages(t.Context(), batch)
	require.NoError(t, err)
	for i, r := range res {
		require.NoError(t, r.Err)
		require.Equal(t, int64(i+1), r.Message.Seq)
	}
	ms, err := s.Messages(t.Context(), "group_large", 1, 0, 10_000)
	require.NoError(t, err)
	require.Len(t, ms, len(batch))
	total := 0
	for i, m := range ms {
		require.Equal(t, int64(i+1), m.Seq)
		require.Equal(t, batch[i].Message.Content, m.Content, "message %d", i)
		total += len(m.Content)
	}
	require.Greater(t, total, 16<<20)
}
