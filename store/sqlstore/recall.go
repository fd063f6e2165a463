package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/imserver/imserver/im"
)

// MessageByServerID implements im.RecallStore. There is no index on
// server_id, which every append would pay for: the conversation's rows are
// read by their primary key from the newest backwards until one matches,
// which for the recent messages a recall is about is a few rows.
func (s *Store) MessageByServerID(ctx context.Context, conv, serverID string) (im.Message, error) {
	const op = "message by server id"
	if err := ctx.Err(); err != nil {
		return im.Message{}, wrapErr(ctx, op, err)
	}
	if serverID == "" || im.ValidateConversationID(conv) != nil {
		return im.Message{}, fmt.Errorf("sqlstore: %s: %q in %q: %w", op, serverID, conv, im.ErrNotFound)
	}
	var m im.Message
	err := s.read(ctx, func() error {
		var err error
		m, err = scanMessage(s.db.QueryRowContext(ctx, s.q.messageByServer, conv, blob(serverID)), conv)
		return err
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return im.Message{}, fmt.Errorf("sqlstore: %s: %q in %q: %w", op, serverID, conv, im.ErrNotFound)
	case err != nil:
		return im.Message{}, wrapErr(ctx, op, err)
	}
	return m, nil
}

// RecallMessage implements im.RecallStore with one transaction: an UPDATE
// that stores the tombstone and empties the payload, only of a message not
// recalled yet, then a read of the row. The old payload is gone from the
// table at the commit; the database's files may keep its bytes until they
// are reused: PostgreSQL's old row version until VACUUM, InnoDB's undo log
// until purge. On SQLite the transaction turns secure_delete on, which
// overwrites the freed space with zeros.
func (s *Store) RecallMessage(ctx context.Context, conv string, seq int64, by string, at time.Time) (im.Message, error) {
	const op = "recall message"
	if err := ctx.Err(); err != nil {
		return im.Message{}, wrapErr(ctx, op, err)
	}
	if err := im.ValidateID("revoked by", by); err != nil {
		return im.Message{}, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	if at.IsZero() {
		return im.Message{}, fmt.Errorf("sqlstore: %s: zero time: %w", op, im.ErrInvalidArgument)
	}
	notFound := fmt.Errorf("sqlstore: %s: %q/%d: %w", op, conv, seq, im.ErrNotFound)
	if seq < 1 || im.ValidateConversationID(conv) != nil {
		return im.Message{}, notFound
	}
	var m im.Message
	err := s.write(ctx, false, func(q querier) error {
		if s.dialect == SQLite {
			restore, err := sqliteSecureDelete(ctx, q)
			if err != nil {
				return err
			}
			defer restore()
		}
		if _, err := q.ExecContext(ctx, s.q.recall, by, at.UnixMicro(), conv, seq); err != nil {
			return err
		}
		var err error
		m, err = scanMessage(q.QueryRowContext(ctx, s.q.message, conv, seq), conv)
		return err
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return im.Message{}, notFound
	case err != nil:
		return im.Message{}, wrapErr(ctx, op, err)
	}
	return m, nil
}

// sqliteSecureDelete turns SQLite's secure_delete on for the connection of
// q, so that the pages and cells a recall frees are overwritten with
// zeros, and returns the function that puts the setting back as it was.
func sqliteSecureDelete(ctx context.Context, q querier) (restore func(), err error) {
	var was int64
	if err := q.QueryRowContext(ctx, "PRAGMA secure_delete").Scan(&was); err != nil {
		return nil, err
	}
	if was == 1 {
		return func() {}, nil
	}
	if _, err := q.ExecContext(ctx, "PRAGMA secure_delete = ON"); err != nil {
		return nil, err
	}
	return func() {
		// Should this fail, the connection keeps zeroing freed space:
		// slower writes, never wrong ones. was is 0 (off) or 2 (FAST).
		_, _ = q.ExecContext(context.WithoutCancel(ctx), "PRAGMA secure_delete = "+strconv.FormatInt(was, 10))
	}, nil
}
