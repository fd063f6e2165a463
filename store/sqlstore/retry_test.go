package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/sqlstore"
)

// captureHandler keeps every log record as "msg key=value …".
type captureHandler struct {
	mu   sync.Mutex
	recs []string
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *captureHandler) WithGroup(string) slog.Handler            { return h }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%s", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	h.recs = append(h.recs, b.String())
	h.mu.Unlock()
	return nil
}

func (h *captureHandler) contains(parts ...string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(r, p)
		}
		if ok {
			return true
		}
	}
	return false
}

// The deadlock tests make the store's transaction the victim of a real
// deadlock with another session, and check that the store runs it again
// and succeeds. The other session locks group_b; the store, appending to
// group_a and group_b, locks group_a and waits for group_b; then the other
// session asks for group_a.

func TestPostgresDeadlockIsRetried(t *testing.T) {
	testDeadlockIsRetried(t, postgresBackend, deadlockScript{
		lockB: "UPDATE conversations SET max_seq = max_seq WHERE id = 'group_b'",
		lockA: "UPDATE conversations SET max_seq = max_seq WHERE id = 'group_a'",
		// The store waits first, so its deadlock_timeout runs out first and
		// it is the one Postgres aborts.
		self:    "SELECT pg_backend_pid()",
		waiting: "SELECT count(*) FROM pg_stat_activity WHERE $1::integer = ANY(pg_blocking_pids(pid))",
		code:    "40P01",
	})
}

func TestMySQLDeadlockIsRetried(t *testing.T) {
	var heavy strings.Builder
	heavy.WriteString("INSERT INTO members (user_id, conversation_id) VALUES ")
	for i := range 200 {
		if i > 0 {
			heavy.WriteString(", ")
		}
		fmt.Fprintf(&heavy, "('heavy%d', 'group_heavy')", i)
	}
	testDeadlockIsRetried(t, mysqlBackend, deadlockScript{
		// InnoDB rolls back the transaction that changed fewer rows: make
		// the other session's the larger one.
		setup: heavy.String(),
		lockB: "UPDATE conversations SET max_seq = max_seq WHERE id = 'group_b'",
		lockA: "UPDATE conversations SET max_seq = max_seq WHERE id = 'group_a'",
		self:  "SELECT CONNECTION_ID()",
		waiting: "SELECT count(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT' AND trx_mysql_thread_id <> ? " +
			"AND trx_mysql_thread_id IN (SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE())",
		code: "1213",
	})
}

type deadlockScript struct {
	setup        string // run first by the other session, if set
	lockB, lockA string // the other session's two locks
	self         string // the other session's id
	waiting      string // counts the sessions waiting for the other one's locks, given its id
	code         string // the deadlock's error code, as logged
}

func testDeadlockIsRetried(t *testing.T, b backend, sc deadlockScript) {
	t.Parallel()
	ctx := t.Context()
	dsn := b.fresh(t)
	logs := new(captureHandler)
	s, err := sqlstore.New(ctx, openDB(t, b.driver, dsn), sqlstore.Options{Dialect: b.dialect, Logger: slog.New(logs)})
	require.NoError(t, err)
	msg := func(conv, cmid string) im.AppendRequest {
		return im.AppendRequest{Message: im.Message{ConversationID: conv, ServerID: cmid, SenderID: "u", ClientMsgID: cmid}}
	}
	_, err = s.AppendMessages(ctx, []im.AppendRequest{msg("group_a", "a1"), msg("group_b", "b1")})
	require.NoError(t, err)

	other := openDB(t, b.driver, dsn)
	tx, err := other.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback()
	if sc.setup != "" {
		_, err = tx.ExecContext(ctx, sc.setup)
		require.NoError(t, err)
	}
	_, err = tx.ExecContext(ctx, sc.lockB)
	require.NoError(t, err)
	var self int64
	require.NoError(t, tx.QueryRowContext(ctx, sc.self).Scan(&self))

	type outcome struct {
		res []im.AppendResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := s.AppendMessages(ctx, []im.AppendRequest{msg("group_a", "a2"), msg("group_b", "b2")})
		done <- outcome{res, err}
	}()
	if !waitWaiting(t, openDB(t, b.driver, dsn), sc.waiting, self) {
		select {
		case o := <-done:
			t.Fatalf("the store never waited for the other session's lock; AppendMessages returned %v", o.err)
		default:
			t.Fatal("the store never waited for the other session's lock")
		}
	}

	_, err = tx.ExecContext(ctx, sc.lockA) // closes the cycle
	require.NoError(t, err, "the other session, not the store, was rolled back")
	require.NoError(t, tx.Commit())

	select {
	case o := <-done:
		require.NoError(t, o.err)
		require.Equal(t, int64(2), o.res[0].Message.Seq)
		require.Equal(t, int64(2), o.res[1].Message.Seq)
	case <-time.After(30 * time.Second):
		t.Fatal("AppendMessages did not return after the deadlock")
	}
	require.True(t, logs.contains("retrying transaction", sc.code), "no retry after a deadlock was logged: %q", logs.recs)
	for _, conv := range []string{"group_a", "group_b"} {
		ms, err := s.Messages(ctx, conv, 1, 0, 10)
		require.NoError(t, err)
		require.Len(t, ms, 2, conv)
	}
}

// waitWaiting polls until query counts at least one session waiting for
// session self, and reports whether that happened in time.
func waitWaiting(t *testing.T, db *sql.DB, query string, self int64) bool {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		var n int
		require.NoError(t, db.QueryRowContext(t.Context(), query, self).Scan(&n))
		if n > 0 {
			return true
		}
		// Not faster: MariaDB refreshes INNODB_TRX only when it was last
		// read more than 100 ms ago.
		time.Sleep(150 * time.Millisecond)
	}
	return false
}
