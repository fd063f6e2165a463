package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/imserver/imserver/im"
)

// position is a read_states row's values: positionCols.
type position struct {
	read, delivered, mentioned int64
	updated                    int64 // unix microseconds, 0 for never
}

// state returns p as user's state in conv.
func (p position) state(user, conv string) im.ReadState {
	st := im.ReadState{UserID: user, ConversationID: conv, Read: p.read, Delivered: p.delivered, Mentioned: p.mentioned}
	if p.updated != 0 {
		st.UpdatedAt = time.UnixMicro(p.updated).UTC()
	}
	return st
}

// scanPosition reads the positionCols of a row, after dest.
func scanPosition(r rowScanner, dest ...any) (position, error) {
	var p position
	err := r.Scan(append(dest, &p.read, &p.delivered, &p.mentioned, &p.updated)...)
	return p, err
}

// UpdateReadStates implements im.ReadStateStore in one transaction. The
// states of the batch are combined per (conversation, user) first: the
// greatest of each position, and the latest UpdatedAt of those states
// that give a position at all. They are then written by one upsert in key
// order, each position raised to the greater of the stored and the given
// value after being clamped to its conversation's max_seq, and the
// UpdatedAt stored if one of them grew. On PostgreSQL that is one
// statement, which reads max_seq itself; elsewhere the max_seqs are read
// first in the same transaction. A conversation's max_seq only grows, so a
// position clamped to a value read a moment before the commit is never
// past the newest message either. Rows that would stay at 0 are not
// written.
func (s *Store) UpdateReadStates(ctx context.Context, states []im.ReadState) ([]im.ReadState, error) {
	const op = "update read states"
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	want := make(map[readKey]position, len(states))
	for i, st := range states {
		if err := im.ValidateReadState(st); err != nil {
			return nil, fmt.Errorf("sqlstore: %s: state %d: %w", op, i, err)
		}
		k := readKey{st.ConversationID, st.UserID}
		p := want[k]
		p.read, p.delivered, p.mentioned = max(p.read, st.Read), max(p.delivered, st.Delivered), max(p.mentioned, st.Mentioned)
		if st.Read > 0 || st.Delivered > 0 || st.Mentioned > 0 {
			var at int64
			if !st.UpdatedAt.IsZero() {
				at = st.UpdatedAt.UnixMicro()
			}
			if _, seen := want[k]; !seen || at > p.updated {
				p.updated = at
			}
		}
		want[k] = p
	}
	out := make([]im.ReadState, len(states))
	if len(states) == 0 {
		return out, nil
	}
	keys := slices.SortedFunc(maps.Keys(want), compareReadKeys)
	var got map[readKey]position
	err := s.write(ctx, false, func(q querier) error {
		var err error
		got, err = s.updateReadStatesTx(ctx, q, keys, want)
		return err
	})
	if err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	for i, st := range states {
		out[i] = got[readKey{st.ConversationID, st.UserID}].state(st.UserID, st.ConversationID)
	}
	return out, nil
}

// updateReadStatesTx raises the positions of keys to want, clamped, and
// returns the stored positions of all keys; a key without a row is absent.
func (s *Store) updateReadStatesTx(ctx context.Context, q querier, keys []readKey, want map[readKey]position) (map[readKey]position, error) {
	got := make(map[readKey]position, len(keys))
	collect := func(rows *sql.Rows, err error) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k readKey
			p, err := scanPosition(rows, &k.conv, &k.user)
			if err != nil {
				return err
			}
			got[k] = p
		}
		return rows.Err()
	}
	// Keys whose stored positions are read afterwards: those the upsert
	// did not return.
	var rest []readKey
	if s.dialect == Postgres {
		n := len(keys)
		convs, users := make([]string, n), make([]string, n)
		reads, delivered, mentioned, times := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		for j, k := range keys {
			p := want[k]
			convs[j], users[j] = k.conv, k.user
			reads[j], delivered[j], mentioned[j], times[j] = p.read, p.delivered, p.mentioned, p.updated
		}
		if err := collect(q.QueryContext(ctx, s.q.pgUpdateReads, convs, users, reads, delivered, mentioned, times)); err != nil {
			return nil, err
		}
		for _, k := range keys {
			if _, ok := got[k]; !ok {
				rest = append(rest, k)
			}
		}
	} else {
		maxSeqs, err := s.maxSeqs(ctx, q, keys)
		if err != nil {
			return nil, err
		}
		rows := make([]any, 0, 6*len(keys))
		n := 0
		for _, k := range keys {
			m, p := maxSeqs[k.conv], want[k]
			r, d, men := min(p.read, m), min(p.delivered, m), min(p.mentioned, m)
			if r > 0 || d > 0 || men > 0 {
				rows = append(rows, k.conv, k.user, r, d, men, p.updated)
				n++
			}
		}
		for start := 0; start < n; start += maxRowsPerInsert {
			end := min(start+maxRowsPerInsert, n)
			if _, err := q.ExecContext(ctx, s.q.raiseReads(end-start), rows[6*start:6*end]...); err != nil {
				return nil, err
			}
		}
		rest = keys // no RETURNING on MySQL; on SQLite a read costs no round trip
	}
	for chunk := range slices.Chunk(rest, maxKeysPerLookup) {
		var err error
		if s.dialect == Postgres {
			convs, users := make([]string, len(chunk)), make([]string, len(chunk))
			for j, k := range chunk {
				convs[j], users[j] = k.conv, k.user
			}
			err = collect(q.QueryContext(ctx, s.q.pgPairReadStates, convs, users))
		} else {
			args := make([]any, 0, 2*len(chunk))
			for _, k := range chunk {
				args = append(args, k.conv, k.user)
			}
			err = collect(q.QueryContext(ctx, s.q.pairReadStates(len(chunk)), args...))
		}
		if err != nil {
			return nil, err
		}
	}
	return got, nil
}

// maxSeqs reads the max_seq of the conversations of keys, which are in
// key order; a conversation without a row is absent (at 0).
func (s *Store) maxSeqs(ctx context.Context, q querier, keys []readKey) (map[string]int64, error) {
	convs := make([]string, 0, len(keys))
	for _, k := range keys {
		if len(convs) == 0 || convs[len(convs)-1] != k.conv {
			convs = append(convs, k.conv)
		}
	}
	out := make(map[string]int64, len(convs))
	for chunk := range slices.Chunk(convs, maxKeysPerLookup) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		err := eachIDValue(q.QueryContext(ctx, s.q.selectConvs(len(chunk)), args...))(func(id string, seq int64) { out[id] = seq })
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ReadStates implements im.ReadStateStore: one lookup by the primary key
// per conversation, all in one statement (PostgreSQL) or one per
// maxKeysPerLookup conversations. Ids that no valid call could have
// stored are at 0.
func (s *Store) ReadStates(ctx context.Context, userID string, convs []string) ([]im.ReadState, error) {
	const op = "read states"
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	out := make([]im.ReadState, len(convs))
	for i, c := range convs {
		out[i] = im.ReadState{UserID: userID, ConversationID: c}
	}
	if im.ValidateID("user id", userID) != nil {
		return out, nil
	}
	seen := make(map[string]bool, len(convs))
	ids := make([]string, 0, len(convs))
	for _, c := range convs {
		if !seen[c] && im.ValidateConversationID(c) == nil {
			seen[c] = true
			ids = append(ids, c)
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	got := make(map[string]position, len(ids))
	collect := func(rows *sql.Rows, err error) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c string
			p, err := scanPosition(rows, &c)
			if err != nil {
				return err
			}
			got[c] = p
		}
		return rows.Err()
	}
	err := s.read(ctx, func() error {
		clear(got)
		if s.dialect == Postgres {
			return collect(s.db.QueryContext(ctx, s.q.pgReadStates, userID, ids))
		}
		for chunk := range slices.Chunk(ids, maxKeysPerLookup) {
			args := make([]any, 0, 1+len(chunk))
			args = append(args, userID)
			for _, c := range chunk {
				args = append(args, c)
			}
			if err := collect(s.db.QueryContext(ctx, s.q.userReadStates(len(chunk)), args...)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	for i, st := range out {
		if p, ok := got[st.ConversationID]; ok {
			out[i] = p.state(userID, st.ConversationID)
		}
	}
	return out, nil
}

// ConversationReadStates implements im.ReadStateStore: one range of the
// primary key. A conversation id that no valid call could have stored has
// none.
func (s *Store) ConversationReadStates(ctx context.Context, conv string) ([]im.ReadState, error) {
	const op = "conversation read states"
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	out := []im.ReadState{}
	if im.ValidateConversationID(conv) != nil {
		return out, nil
	}
	err := s.read(ctx, func() error {
		out = out[:0]
		rows, err := s.db.QueryContext(ctx, s.q.convReadStates, conv)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var user string
			p, err := scanPosition(rows, &user)
			if err != nil {
				return err
			}
			out = append(out, p.state(user, conv))
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	return out, nil
}
