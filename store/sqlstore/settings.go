package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/imserver/imserver/im"
)

var _ im.ConversationSettingsStore = (*Store)(nil)

// settingsCols are the columns of a conversation_settings row that a read
// returns, after conversation_id.
const settingsCols = "pinned, muted, hidden_up_to, cleared_up_to, updated_at"

// settingsQueries holds the statements of conversation settings.
type settingsQueries struct {
	table   string
	lock    string // user, conv → settingsCols, the row locked until the commit (but on SQLite)
	insert  string // user, conv, then settingsCols
	update  string // settingsCols, then user, conv
	changed string // user, since → conversation_id, settingsCols…
	pgSome  string // user, convs[] → conversation_id, settingsCols…
}

func newSettingsQueries(q *queries, prefix string) settingsQueries {
	t := prefix + "conversation_settings"
	sq := settingsQueries{table: t}
	p := q.placeholders
	ph := p(7)
	sq.lock = "SELECT " + settingsCols + " FROM " + t + " WHERE user_id = " + ph[0] + " AND conversation_id = " + ph[1]
	if q.dialect != SQLite { // SQLite's writer holds the whole database already
		sq.lock += " FOR UPDATE"
	}
	sq.insert = "INSERT INTO " + t + " (user_id, conversation_id, " + settingsCols + ") VALUES (" + strings.Join(ph, ", ") + ")"
	sq.update = "UPDATE " + t + " SET pinned = " + ph[0] + ", muted = " + ph[1] + ", hidden_up_to = " + ph[2] +
		", cleared_up_to = " + ph[3] + ", updated_at = " + ph[4] + " WHERE user_id = " + ph[5] + " AND conversation_id = " + ph[6]
	sq.changed = "SELECT conversation_id, " + settingsCols + " FROM " + t + " WHERE user_id = " + ph[0] + " AND updated_at > " + ph[1]
	if q.dialect == Postgres {
		sq.pgSome = "SELECT conversation_id, " + settingsCols + " FROM " + t + " WHERE user_id = $1 AND conversation_id = ANY($2::text[])"
	}
	return sq
}

// some returns the statement that reads a user's settings of n
// conversations, given as the user and the conversations (not Postgres).
func (sq *settingsQueries) some(n int) string {
	var b strings.Builder
	b.WriteString("SELECT conversation_id, ")
	b.WriteString(settingsCols)
	b.WriteString(" FROM ")
	b.WriteString(sq.table)
	b.WriteString(" WHERE user_id = ? AND conversation_id")
	inList(&b, n)
	return b.String()
}

// UpdateConversationSettings implements im.ConversationSettingsStore in
// one transaction: it reads the conversation's max seq, locks and reads
// the settings' row (on SQLite the transaction holds the database's write
// lock from its start), and writes the row whole. Concurrent changes of
// one pair, from any process, take turns on the row lock, so none loses
// another's fields; two first changes of a pair race to insert the row,
// and the loser runs again and finds it. A change that changes nothing
// writes nothing.
func (s *Store) UpdateConversationSettings(ctx context.Context, userID, conv string, ch im.SettingsChange) (im.ConversationSettings, error) {
	const op = "update conversation settings"
	if err := ctx.Err(); err != nil {
		return im.ConversationSettings{}, wrapErr(ctx, op, err)
	}
	if err := im.ValidateSettingsChange(userID, conv, ch); err != nil {
		return im.ConversationSettings{}, err
	}
	at := time.UnixMicro(ch.At.UnixMicro()).UTC() // what a read gives back
	var st im.ConversationSettings
	err := s.write(ctx, true, func(q querier) error {
		var maxSeq int64
		if err := q.QueryRowContext(ctx, s.q.conversation, conv).Scan(&maxSeq); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		old := im.ConversationSettings{UserID: userID, ConversationID: conv}
		err := scanSettings(q.QueryRowContext(ctx, s.q.settings.lock, userID, conv), &old)
		exists := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		st = ch.Apply(old, maxSeq)
		if st == old {
			return nil
		}
		st.UpdatedAt = at
		cols := []any{st.Pinned, st.Muted, st.HiddenUpTo, st.ClearedUpTo, at.UnixMicro()}
		if exists {
			_, err = q.ExecContext(ctx, s.q.settings.update, append(cols, userID, conv)...)
		} else {
			_, err = q.ExecContext(ctx, s.q.settings.insert, append([]any{userID, conv}, cols...)...)
		}
		return err
	})
	if err != nil {
		return im.ConversationSettings{}, wrapErr(ctx, op, err)
	}
	return st, nil
}

// ConversationSettings implements im.ConversationSettingsStore: one query
// on PostgreSQL (the conversations as an array), one per 500
// conversations on MySQL and SQLite.
func (s *Store) ConversationSettings(ctx context.Context, userID string, convs []string) ([]im.ConversationSettings, error) {
	const op = "conversation settings"
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	out := make([]im.ConversationSettings, len(convs))
	for i, c := range convs {
		out[i] = im.ConversationSettings{UserID: userID, ConversationID: c}
	}
	if im.ValidateID("user id", userID) != nil {
		return out, nil // nothing stored under it
	}
	// Each conversation once, and only those that can have been stored.
	var ask []string
	seen := make(map[string]bool, len(convs))
	for _, c := range convs {
		if !seen[c] && im.ValidateConversationID(c) == nil {
			ask = append(ask, c)
		}
		seen[c] = true
	}
	found := make(map[string]im.ConversationSettings)
	read := func(query string, args ...any) error {
		return s.read(ctx, func() error {
			return s.scanSettingsRows(ctx, userID, query, args, func(st im.ConversationSettings) { found[st.ConversationID] = st })
		})
	}
	var err error
	if s.dialect == Postgres {
		if len(ask) > 0 {
			err = read(s.q.settings.pgSome, userID, ask)
		}
	} else {
		for start := 0; start < len(ask) && err == nil; start += maxKeysPerLookup {
			chunk := ask[start:min(start+maxKeysPerLookup, len(ask))]
			args := make([]any, 0, 1+len(chunk))
			args = append(args, userID)
			for _, c := range chunk {
				args = append(args, c)
			}
			err = read(s.q.settings.some(len(chunk)), args...)
		}
	}
	if err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	for i, c := range convs {
		if st, ok := found[c]; ok {
			out[i] = st
		}
	}
	return out, nil
}

// ChangedSettings implements im.ConversationSettingsStore with one query
// on the primary key's user prefix. Times are whole microseconds, so
// "after since" is "after since's microsecond".
func (s *Store) ChangedSettings(ctx context.Context, userID string, since time.Time) ([]im.ConversationSettings, error) {
	const op = "changed settings"
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	if im.ValidateID("user id", userID) != nil {
		return nil, nil
	}
	var out []im.ConversationSettings
	err := s.read(ctx, func() error {
		out = out[:0]
		return s.scanSettingsRows(ctx, userID, s.q.settings.changed, []any{userID, since.UnixMicro()}, func(st im.ConversationSettings) { out = append(out, st) })
	})
	if err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	return out, nil
}

// scanSettingsRows runs query and calls fn with each row of userID's
// settings it returns (conversation_id, then settingsCols).
func (s *Store) scanSettingsRows(ctx context.Context, userID, query string, args []any, fn func(im.ConversationSettings)) error {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		st := im.ConversationSettings{UserID: userID}
		if err := scanSettings(rows, &st, &st.ConversationID); err != nil {
			return err
		}
		fn(st)
	}
	return rows.Err()
}

// scanSettings reads the columns before, if any, then settingsCols into
// st.
func scanSettings(r rowScanner, st *im.ConversationSettings, before ...any) error {
	var updatedAt int64
	if err := r.Scan(append(before, &st.Pinned, &st.Muted, &st.HiddenUpTo, &st.ClearedUpTo, &updatedAt)...); err != nil {
		return err
	}
	st.UpdatedAt = time.UnixMicro(updatedAt).UTC()
	return nil
}
