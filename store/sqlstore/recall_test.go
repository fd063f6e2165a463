package sqlstore_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/sqlstore"
	"github.com/imserver/imserver/store/sqlstore/sqltest"
)

func TestSQLiteRecall(t *testing.T)   { testRecall(t, sqliteBackend) }
func TestPostgresRecall(t *testing.T) { testRecall(t, postgresBackend) }
func TestMySQLRecall(t *testing.T)    { testRecall(t, mysqlBackend) }
func TestMySQLInterpolateParamsRecall(t *testing.T) {
	testRecall(t, mysqlInterpolatedBackend)
}

func testRecall(t *testing.T, b backend) {
	need(t, b)
	s, _ := b.open(t)
	ctx := t.Context()
	conv := "group_rc"
	created := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	in := im.Message{
		ConversationID: conv, ServerID: "srv-target", SenderID: "ann", ReceiverID: "rcv", ClientMsgID: "c2",
		Type: im.TextMessage, Content: []byte("secret"), Extra: "x-extra", AttachedInfo: "x-attached",
		SendTime: 1234, CreatedAt: created,
	}
	before := appendBatch(t, s, msg(conv, "ben", "c1"), in, msg(conv, "ben", "c3"))
	orig := before[1]
	require.Equal(t, int64(2), orig.Seq)

	t.Run("ByServerID", func(t *testing.T) {
		got, err := s.MessageByServerID(ctx, conv, "srv-target")
		require.NoError(t, err)
		require.Equal(t, orig, got)
		for name, c := range map[string][2]string{
			"unknown id":             {conv, "srv-none"},
			"another conversation's": {"group_other", "srv-target"},
			"empty id":               {conv, ""},
			"invalid conversation":   {"", "srv-target"},
		} {
			_, err := s.MessageByServerID(ctx, c[0], c[1])
			require.ErrorIs(t, err, im.ErrNotFound, name)
		}
	})

	t.Run("Refused", func(t *testing.T) {
		at := time.Now()
		_, err := s.RecallMessage(ctx, conv, 2, "", at)
		require.ErrorIs(t, err, im.ErrInvalidArgument)
		_, err = s.RecallMessage(ctx, conv, 2, "a\x00b", at)
		require.ErrorIs(t, err, im.ErrInvalidArgument)
		_, err = s.RecallMessage(ctx, conv, 2, "ann", time.Time{})
		require.ErrorIs(t, err, im.ErrInvalidArgument)
		for _, c := range []struct {
			conv string
			seq  int64
		}{{conv, 4}, {conv, 0}, {conv, -1}, {"group_none", 1}, {"", 1}} {
			_, err := s.RecallMessage(ctx, c.conv, c.seq, "ann", at)
			require.ErrorIs(t, err, im.ErrNotFound, "%q/%d", c.conv, c.seq)
		}
		got, err := s.Messages(ctx, conv, 2, 2, 1)
		require.NoError(t, err)
		require.Equal(t, []im.Message{orig}, got, "refused recalls change nothing")
	})

	at := time.Date(2026, 3, 1, 12, 5, 0, 987654321, time.FixedZone("X", 3600))
	var tomb im.Message
	t.Run("Recall", func(t *testing.T) {
		var err error
		tomb, err = s.RecallMessage(ctx, conv, 2, "ann", at)
		require.NoError(t, err)
		require.Empty(t, tomb.Content)
		want := orig
		want.Content, want.Extra, want.AttachedInfo = tomb.Content, "", ""
		want.RevokedBy, want.RevokedAt = "ann", at.Truncate(time.Microsecond).UTC()
		require.Equal(t, want, tomb)
		require.True(t, tomb.Revoked())

		// Again, by another and later: the first recall stays.
		again, err := s.RecallMessage(ctx, conv, 2, "owner", at.Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, tomb, again)
	})

	t.Run("EveryRead", func(t *testing.T) {
		require.True(t, tomb.Revoked(), "needs Recall")
		ms, err := s.Messages(ctx, conv, 1, 0, 10)
		require.NoError(t, err)
		require.Len(t, ms, 3)
		require.Equal(t, tomb, ms[1])
		require.False(t, ms[0].Revoked())
		require.False(t, ms[2].Revoked())
		require.True(t, ms[0].RevokedAt.IsZero())

		ms, err = s.MessagesBefore(ctx, conv, 0, 2)
		require.NoError(t, err)
		require.Equal(t, tomb, ms[0])

		rs, err := s.MessageRanges(ctx, []im.MessageRange{{ConversationID: conv, From: 2, To: 2}, {ConversationID: conv, From: 1}}, 10)
		require.NoError(t, err)
		require.Equal(t, []im.Message{tomb}, rs[0])
		require.Equal(t, tomb, rs[1][1])

		got, err := s.MessageByServerID(ctx, conv, "srv-target")
		require.NoError(t, err)
		require.Equal(t, tomb, got)

		// A resend of its client_msg_id is answered with the tombstone.
		res, err := s.AppendMessages(ctx, []im.AppendRequest{{Message: in}})
		require.NoError(t, err)
		require.NoError(t, res[0].Err)
		require.True(t, res[0].Duplicate)
		require.Equal(t, tomb, res[0].Message)
	})

	t.Run("Cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.RecallMessage(cctx, conv, 1, "ben", at)
		require.ErrorIs(t, err, context.Canceled)
		_, err = s.MessageByServerID(cctx, conv, "srv-target")
		require.ErrorIs(t, err, context.Canceled)
		ms, err := s.Messages(ctx, conv, 1, 1, 1)
		require.NoError(t, err)
		require.False(t, ms[0].Revoked())
	})
}

func TestSQLiteRecallRace(t *testing.T)   { testRecallRace(t, sqliteBackend) }
func TestPostgresRecallRace(t *testing.T) { testRecallRace(t, postgresBackend) }
func TestMySQLRecallRace(t *testing.T)    { testRecallRace(t, mysqlBackend) }

// testRecallRace: two processes recall the same messages at once, each
// several times; every call returns the same tombstone, that of one of
// them, and the message is recalled once.
func testRecallRace(t *testing.T, b backend) {
	need(t, b)
	dsn := b.fresh(t)
	stores := [2]*sqlstore.Store{b.newStore(t, openDB(t, b.driver, dsn)), b.newStore(t, openDB(t, b.driver, dsn))}
	const n = 10
	var msgs []im.Message
	for i := range n {
		msgs = append(msgs, msg("group_race", "ann", fmt.Sprintf("r%d", i)))
	}
	appendBatch(t, stores[0], msgs...)
	results := make([][]im.Message, 4)
	var wg sync.WaitGroup
	for w := range results {
		s := stores[w%2]
		by := fmt.Sprintf("by%d", w)
		at := time.UnixMicro(int64(1e15 + w))
		wg.Go(func() {
			for seq := range int64(n) {
				m, err := s.RecallMessage(t.Context(), "group_race", seq+1, by, at)
				if err != nil {
					t.Errorf("recall %d: %v", seq+1, err)
					return
				}
				results[w] = append(results[w], m)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	stored, err := stores[1].Messages(t.Context(), "group_race", 1, 0, n)
	require.NoError(t, err)
	for i, m := range stored {
		require.True(t, m.Revoked())
		require.Equal(t, fmt.Sprintf("by%d", m.RevokedAt.UnixMicro()-1e15), m.RevokedBy, "the time and the user of one recall")
		for w := range results {
			require.Equal(t, m, results[w][i], "recaller %d, seq %d", w, i+1)
		}
	}
}

// TestSQLiteRecallErasesFile: the recalled content is gone from the
// database file, not only from the table, once the WAL is checkpointed:
// both a message small enough to sit in its page and one that spills into
// overflow pages.
func TestSQLiteRecallErasesFile(t *testing.T) {
	path := sqltest.SQLite(t)
	db := openDB(t, "sqlite", path)
	s := sqliteBackend.newStore(t, db)
	small := "SMALL-SECRET-" + strings.Repeat("s", 40)
	large := "LARGE-SECRET-" + strings.Repeat("0123456789", 2000)
	extra := "EXTRA-SECRET-" + strings.Repeat("e", 30)
	m1 := msg("group_erase", "ann", "e1")
	m1.Content, m1.Extra = []byte(small), extra
	m2 := msg("group_erase", "ann", "e2")
	m2.Content = []byte(large)
	m3 := msg("group_erase", "ann", "e3") // a neighbour that stays
	appendBatch(t, s, m1, m2, m3)
	checkpoint := func() []byte {
		_, err := db.ExecContext(t.Context(), "PRAGMA wal_checkpoint(TRUNCATE)")
		require.NoError(t, err)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		return data
	}
	data := checkpoint()
	require.True(t, bytes.Contains(data, []byte(small)), "the test cannot see the content in the file")
	require.True(t, bytes.Contains(data, []byte(large[:100])))

	for seq := range int64(2) {
		_, err := s.RecallMessage(t.Context(), "group_erase", seq+1, "ann", time.Now())
		require.NoError(t, err)
	}
	data = checkpoint()
	for _, secret := range []string{"SMALL-SECRET-", "LARGE-SECRET-", "EXTRA-SECRET-", "0123456789012345678901234567890123456789"} {
		require.False(t, bytes.Contains(data, []byte(secret)), "%s still in the file", secret)
	}
	require.True(t, bytes.Contains(data, []byte("text e3")), "the neighbour is gone too: the check proves nothing")

	// The connection's setting is as it was.
	conn, err := db.Conn(t.Context())
	require.NoError(t, err)
	defer conn.Close()
	var sd int
	require.NoError(t, conn.QueryRowContext(t.Context(), "PRAGMA secure_delete").Scan(&sd))
	require.Zero(t, sd)
}

func TestSQLiteUpgradeToReadStates(t *testing.T)   { testUpgradeToReadStates(t, sqliteBackend) }
func TestPostgresUpgradeToReadStates(t *testing.T) { testUpgradeToReadStates(t, postgresBackend) }
func TestMySQLUpgradeToReadStates(t *testing.T)    { testUpgradeToReadStates(t, mysqlBackend) }

// testUpgradeToReadStates: messages stored at schema 0007 read as not
// recalled after migration 0008, every position is 0 (the senders of old
// messages included: nothing is derived from them), and both capabilities
// work on the old data.
func testUpgradeToReadStates(t *testing.T, b backend) {
	ctx := t.Context()
	dsn := b.fresh(t)
	db := openDB(t, b.driver, dsn)
	require.NoError(t, sqlstore.MigrateTo(ctx, db, b.dialect, 7))
	p := []string{"?", "?", "?", "?", "?", "?", "?"}
	if b.dialect == sqlstore.Postgres {
		p = []string{"$1", "$2", "$3", "$4", "$5", "$6", "$7"}
	}
	_, err := db.ExecContext(ctx, "INSERT INTO conversations (id, max_seq) VALUES ('group_old', 2)")
	require.NoError(t, err)
	for seq := range int64(2) {
		_, err := db.ExecContext(ctx, "INSERT INTO messages (conversation_id, seq, server_id, sender_id, receiver_id, client_msg_id,"+
			" type, content, extra, attached_info, send_time, created_at) VALUES ('group_old', "+strconv.FormatInt(seq+1, 10)+", "+
			p[0]+", "+p[1]+", "+p[2]+", "+p[3]+", 1, "+p[4]+", "+p[5]+", "+p[6]+", 0, 0)",
			[]byte(fmt.Sprintf("srv%d", seq+1)), "ann", []byte{}, fmt.Sprintf("old%d", seq+1), []byte("hello"), []byte("x"), []byte{})
		require.NoError(t, err)
	}

	s := b.newStore(t, db)
	require.Equal(t, migrationVersions(t, b), recordedVersions(t, db, ""))
	ms, err := s.Messages(ctx, "group_old", 1, 0, 10)
	require.NoError(t, err)
	require.Len(t, ms, 2)
	for _, m := range ms {
		require.False(t, m.Revoked())
		require.True(t, m.RevokedAt.IsZero())
		require.Equal(t, "hello", string(m.Content))
	}
	rs, err := s.ReadStates(ctx, "ann", []string{"group_old"})
	require.NoError(t, err)
	require.Equal(t, []im.ReadState{state("ann", "group_old", 0, 0)}, rs)
	all, err := s.ConversationReadStates(ctx, "group_old")
	require.NoError(t, err)
	require.Empty(t, all)

	got, err := s.UpdateReadStates(ctx, []im.ReadState{state("bob", "group_old", 5, 1)})
	require.NoError(t, err)
	require.Equal(t, []im.ReadState{state("bob", "group_old", 2, 1)}, got, "clamped to the old max_seq")
	m, err := s.MessageByServerID(ctx, "group_old", "srv1")
	require.NoError(t, err)
	require.Equal(t, int64(1), m.Seq)
	tomb, err := s.RecallMessage(ctx, "group_old", 1, "ann", time.Now())
	require.NoError(t, err)
	require.True(t, tomb.Revoked())
	require.Empty(t, tomb.Content)
	require.Empty(t, tomb.Extra)

	// New messages follow the sender rule.
	appendBatch(t, s, msg("group_old", "ann", "new"))
	rs, err = s.ReadStates(ctx, "ann", []string{"group_old"})
	require.NoError(t, err)
	require.Equal(t, []im.ReadState{state("ann", "group_old", 3, 0)}, rs)
}
