package sqlstore

import (
	"bytes"
	"context"
	"fmt"
	"math"

	"github.com/imserver/imserver/im"
)

// maxRangesPerStatement bounds the ranges one MySQL or SQLite statement
// reads (three parameters each), under both parameter limits; the Server
// asks for fewer at a time.
const maxRangesPerStatement = 300

// SyncConversations implements im.SyncStore with one query: the user's own
// conversations and its groups', joined on the conversations' and the
// groups' primary keys, each group's with the user's first readable seq.
func (s *Store) SyncConversations(ctx context.Context, userID string) ([]im.Conversation, error) {
	const op = "sync conversations"
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	if im.ValidateID("user id", userID) != nil {
		return []im.Conversation{}, nil
	}
	var out []im.Conversation
	err := s.read(ctx, func() error {
		out = []im.Conversation{}
		rows, err := s.db.QueryContext(ctx, s.q.syncConversations, userID, userID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c im.Conversation
			if err := rows.Scan(&c.ID, &c.MaxSeq, &c.ReadFrom); err != nil {
				return err
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	return out, nil
}

// span is one range of MessageRanges, as read: its index and [from, to].
type span struct {
	i        int
	conv     string
	from, to int64
}

// MessageRanges implements im.SyncStore. Seqs are gap-free, so the first
// limit messages from seq f are those up to f+limit-1, and each range is a
// plain index range: one query on PostgreSQL (the ranges as arrays), one
// per maxRangesPerStatement ranges on MySQL and SQLite (an OR of ranges,
// which both read as index ranges).
func (s *Store) MessageRanges(ctx context.Context, ranges []im.MessageRange, limit int) ([][]im.Message, error) {
	const op = "message ranges"
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("sqlstore: %s: limit %d: %w", op, limit, im.ErrInvalidArgument)
	}
	out := make([][]im.Message, len(ranges))
	var spans []span
	for i, r := range ranges {
		out[i] = []im.Message{}
		from, to := max(r.From, 1), r.To
		if to <= 0 {
			to = math.MaxInt64
		}
		if to-from >= int64(limit) {
			to = from + int64(limit) - 1
		}
		if from > to || im.ValidateConversationID(r.ConversationID) != nil {
			continue // as Messages: nothing to read
		}
		spans = append(spans, span{i, r.ConversationID, from, to})
	}
	var err error
	if s.q.dialect == Postgres {
		err = s.pgMessageRanges(ctx, spans, out)
	} else {
		for start := 0; start < len(spans) && err == nil; start += maxRangesPerStatement {
			err = s.messageRanges(ctx, spans[start:min(start+maxRangesPerStatement, len(spans))], out)
		}
	}
	if err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	return out, nil
}

func (s *Store) pgMessageRanges(ctx context.Context, spans []span, out [][]im.Message) error {
	if len(spans) == 0 {
		return nil
	}
	idx := make([]int32, len(spans))
	convs := make([]string, len(spans))
	froms := make([]int64, len(spans))
	tos := make([]int64, len(spans))
	for k, sp := range spans {
		idx[k], convs[k], froms[k], tos[k] = int32(sp.i), sp.conv, sp.from, sp.to
	}
	return s.read(ctx, func() error {
		for _, sp := range spans {
			out[sp.i] = out[sp.i][:0]
		}
		rows, err := s.db.QueryContext(ctx, s.q.pgMessageRanges, idx, convs, froms, tos)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var i int
			m, err := scanMessage(indexed{rows, &i}, "")
			if err != nil {
				return err
			}
			if i < 0 || i >= len(out) {
				return fmt.Errorf("range index %d out of bounds", i)
			}
			out[i] = append(out[i], m)
		}
		return rows.Err()
	})
}

// indexed scans a leading range index, then the row scanMessage reads.
type indexed struct {
	r rowScanner
	i *int
}

func (x indexed) Scan(dest ...any) error { return x.r.Scan(append([]any{x.i}, dest...)...) }

func (s *Store) messageRanges(ctx context.Context, spans []span, out [][]im.Message) error {
	args := make([]any, 0, 3*len(spans))
	byConv := make(map[string][]span, len(spans))
	for _, sp := range spans {
		args = append(args, sp.conv, sp.from, sp.to)
		byConv[sp.conv] = append(byConv[sp.conv], sp)
	}
	return s.read(ctx, func() error {
		for _, sp := range spans {
			out[sp.i] = out[sp.i][:0]
		}
		rows, err := s.db.QueryContext(ctx, s.q.messageRanges(len(spans)), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanMessage(rows, "")
			if err != nil {
				return err
			}
			// Rows come once however many ranges hold them: give each
			// range its own copy.
			shared := false
			for _, sp := range byConv[m.ConversationID] {
				if m.Seq >= sp.from && m.Seq <= sp.to {
					if shared {
						m.Content = bytes.Clone(m.Content)
					}
					out[sp.i] = append(out[sp.i], m)
					shared = true
				}
			}
		}
		return rows.Err()
	})
}
