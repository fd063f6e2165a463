package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/imserver/imserver/im"
)

// dedupKey is what makes a message unique: its sender's own id for it.
type dedupKey struct{ sender, clientMsgID string }

// AppendMessages implements im.MessageStore. The batch is one transaction:
// one read of the dedup keys already stored, one statement that creates,
// locks and advances every conversation of the batch (in id order, so that
// concurrent batches cannot deadlock on them), and multi-row inserts of
// members and messages. A transaction that loses a race with another
// process (a deadlock, or the same dedup key committed first) is run again
// from the start, and then sees the winner's row.
func (s *Store) AppendMessages(ctx context.Context, batch []im.AppendRequest) ([]im.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(ctx, "append messages", err)
	}
	results := make([]im.AppendResult, len(batch))
	valid := make([]int, 0, len(batch))
	for i := range batch {
		if err := im.ValidateAppend(batch[i]); err != nil {
			results[i].Err = err
			continue
		}
		valid = append(valid, i)
	}
	if len(valid) == 0 {
		return results, nil // nothing to write, so no transaction
	}
	err := s.write(ctx, true, func(q querier) error {
		return s.appendTx(ctx, q, batch, valid, results)
	})
	if err != nil {
		return nil, wrapErr(ctx, "append messages", err)
	}
	return results, nil
}

// convPlan is what one transaction appends to one conversation.
type convPlan struct {
	count   int64    // messages appended
	next    int64    // seq of the next one, once the row is locked
	members []string // recorded if this transaction creates it
}

// appendTx writes the valid requests of batch and fills their results. It
// may run several times for one call, so it sets every result it owns.
func (s *Store) appendTx(ctx context.Context, q querier, batch []im.AppendRequest, valid []int, results []im.AppendResult) error {
	for _, i := range valid {
		results[i] = im.AppendResult{} // from an earlier attempt
	}
	// The first request with each key is the one that may be stored;
	// later ones in the batch are its duplicates.
	first := make(map[dedupKey]int, len(valid))
	keys := make([]dedupKey, 0, len(valid))
	for _, i := range valid {
		k := dedupKey{batch[i].Message.SenderID, batch[i].Message.ClientMsgID}
		if _, ok := first[k]; !ok {
			first[k] = i
			keys = append(keys, k)
		}
	}
	stored, err := s.lookup(ctx, q, keys)
	if err != nil {
		return err
	}
	if err := s.checkMemberOf(ctx, q, batch, valid, results); err != nil {
		return err
	}

	plans := make(map[string]*convPlan)
	var fresh []int // requests to store, in batch order
	for _, i := range valid {
		if results[i].Err != nil {
			continue // refused by checkMemberOf
		}
		m := &batch[i].Message
		k := dedupKey{m.SenderID, m.ClientMsgID}
		if orig, ok := stored[k]; ok {
			results[i] = im.AppendResult{Message: orig, Duplicate: true, GroupVersion: results[i].GroupVersion}
			continue
		}
		if f := first[k]; f != i && results[f].Err == nil {
			continue // filled in below, once the first has its seq
		}
		p := plans[m.ConversationID]
		if p == nil {
			// Members come from the first request stored into the
			// conversation, used only if the conversation is new.
			p = &convPlan{members: batch[i].Members}
			plans[m.ConversationID] = p
		}
		p.count++
		fresh = append(fresh, i)
	}
	if len(fresh) == 0 {
		return nil // all duplicates of stored messages
	}

	convs := make([]string, 0, len(plans))
	for id := range plans {
		convs = append(convs, id)
	}
	slices.Sort(convs) // lock order: the same in every process
	maxSeqs, err := s.advanceConversations(ctx, q, convs, plans)
	if err != nil {
		return err
	}
	var members [][2]string // (user, conversation)
	for _, id := range convs {
		p := plans[id]
		newMax, ok := maxSeqs[id]
		if !ok {
			return fmt.Errorf("conversation %q: no max_seq after the upsert", id)
		}
		p.next = newMax - p.count + 1
		if p.next == 1 { // created by this transaction
			for _, u := range uniq(p.members) {
				members = append(members, [2]string{u, id})
			}
		}
	}
	for _, i := range fresh {
		p := plans[batch[i].Message.ConversationID]
		m := batch[i].Message
		m.Seq = p.next
		m.CreatedAt = m.CreatedAt.Truncate(time.Microsecond) // as stored
		p.next++
		results[i] = im.AppendResult{Message: m, GroupVersion: results[i].GroupVersion}
	}
	for _, i := range valid {
		m := &batch[i].Message
		if f := first[dedupKey{m.SenderID, m.ClientMsgID}]; f != i && !results[i].Duplicate && results[i].Err == nil && results[f].Err == nil {
			results[i] = im.AppendResult{Message: results[f].Message, Duplicate: true, GroupVersion: results[i].GroupVersion}
		}
	}
	if len(members) > 0 {
		if err := s.insertMembers(ctx, q, members); err != nil {
			return err
		}
	}
	return s.insertMessages(ctx, q, fresh, results)
}

// readKey names one row of read_states.
type readKey struct{ conv, user string }

func compareReadKeys(a, b readKey) int {
	if c := strings.Compare(a.conv, b.conv); c != 0 {
		return c
	}
	return strings.Compare(a.user, b.user)
}

// senderReads returns the read positions that the messages results[i],
// i in idx, set: each sender's in each conversation, at the seq of her
// newest message there (sending a message reads everything before it),
// in key order, the order in which every writer of read_states locks its
// rows.
func senderReads(idx []int, results []im.AppendResult) ([]readKey, map[readKey]int64) {
	seqs := make(map[readKey]int64, len(idx))
	for _, i := range idx {
		m := &results[i].Message
		k := readKey{m.ConversationID, m.SenderID}
		seqs[k] = max(seqs[k], m.Seq)
	}
	return slices.SortedFunc(maps.Keys(seqs), compareReadKeys), seqs
}

// uniq returns ids without repeats, in their first order.
func uniq(ids []string) []string {
	if len(ids) < 2 {
		return ids
	}
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// lookup returns the stored messages with the given dedup keys.
func (s *Store) lookup(ctx context.Context, q querier, keys []dedupKey) (map[dedupKey]im.Message, error) {
	out := make(map[dedupKey]im.Message)
	collect := func(rows *sql.Rows, err error) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanMessage(rows, "")
			if err != nil {
				return err
			}
			out[dedupKey{m.SenderID, m.ClientMsgID}] = m
		}
		return rows.Err()
	}
	if s.dialect == Postgres {
		senders, cmids := make([]string, len(keys)), make([]string, len(keys))
		for i, k := range keys {
			senders[i], cmids[i] = k.sender, k.clientMsgID
		}
		if err := collect(q.QueryContext(ctx, s.q.pgLookup, senders, cmids)); err != nil {
			return nil, err
		}
		return out, nil
	}
	for chunk := range slices.Chunk(keys, maxKeysPerLookup) {
		args := make([]any, 0, 2*len(chunk))
		for _, k := range chunk {
			args = append(args, k.sender, k.clientMsgID)
		}
		if err := collect(q.QueryContext(ctx, s.q.lookup(len(chunk)), args...)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// advanceConversations creates the conversations that don't exist, locks
// them all in the order of ids, adds each plan's count to its max_seq and
// returns the new max_seq of each.
func (s *Store) advanceConversations(ctx context.Context, q querier, ids []string, plans map[string]*convPlan) (map[string]int64, error) {
	out := make(map[string]int64, len(ids))
	collect := func(rows *sql.Rows, err error) error {
		return eachIDValue(rows, err)(func(id string, seq int64) { out[id] = seq })
	}
	if s.dialect == Postgres {
		counts := make([]int64, len(ids))
		for i, id := range ids {
			counts[i] = plans[id].count
		}
		if err := collect(q.QueryContext(ctx, s.q.pgUpsertConvs, ids, counts)); err != nil {
			return nil, err
		}
		return out, nil
	}
	for chunk := range slices.Chunk(ids, maxRowsPerInsert) {
		args := make([]any, 0, 2*len(chunk))
		for _, id := range chunk {
			args = append(args, id, plans[id].count)
		}
		if s.dialect == SQLite {
			if err := collect(q.QueryContext(ctx, s.q.upsertConvs(len(chunk)), args...)); err != nil {
				return nil, err
			}
			continue
		}
		if _, err := q.ExecContext(ctx, s.q.upsertConvs(len(chunk)), args...); err != nil {
			return nil, err
		}
		// The rows are ours now: this reads the values just written.
		idArgs := make([]any, len(chunk))
		for i, id := range chunk {
			idArgs[i] = id
		}
		if err := collect(q.QueryContext(ctx, s.q.selectConvs(len(chunk)), idArgs...)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) insertMembers(ctx context.Context, q querier, rows [][2]string) error {
	if s.dialect == Postgres {
		users, convs := make([]string, len(rows)), make([]string, len(rows))
		for i, r := range rows {
			users[i], convs[i] = r[0], r[1]
		}
		_, err := q.ExecContext(ctx, s.q.pgInsertMembers, users, convs)
		return err
	}
	for chunk := range slices.Chunk(rows, maxRowsPerInsert) {
		args := make([]any, 0, 2*len(chunk))
		for _, r := range chunk {
			args = append(args, r[0], r[1])
		}
		if _, err := q.ExecContext(ctx, s.q.insertMembers(len(chunk)), args...); err != nil {
			return err
		}
	}
	return nil
}

// insertMessages inserts the messages of results[i] for each i in idx,
// and raises their senders' read positions (senderReads) to them. The
// conversations are locked by this transaction, so no other append
// reaches these positions before the commit; receipts may, and the upsert
// keeps the greater of theirs and the seq. On PostgreSQL both are one
// statement; elsewhere the positions take one more, for the batch.
func (s *Store) insertMessages(ctx context.Context, q querier, idx []int, results []im.AppendResult) error {
	keys, seqs := senderReads(idx, results)
	if s.dialect == Postgres {
		rconvs, rusers, rseqs := make([]string, len(keys)), make([]string, len(keys)), make([]int64, len(keys))
		for j, k := range keys {
			rconvs[j], rusers[j], rseqs[j] = k.conv, k.user, seqs[k]
		}
		n := len(idx)
		var (
			convs, senders, cmids          = make([]string, n), make([]string, n), make([]string, n)
			msgSeqs, sendTimes, createdAts = make([]int64, n), make([]int64, n), make([]int64, n)
			types                          = make([]int32, n)
			serverIDs, receivers, contents = make([][]byte, n), make([][]byte, n), make([][]byte, n)
			extras, attached               = make([][]byte, n), make([][]byte, n)
		)
		for j, i := range idx {
			m := &results[i].Message
			convs[j], msgSeqs[j], serverIDs[j] = m.ConversationID, m.Seq, blob(m.ServerID)
			senders[j], receivers[j], cmids[j] = m.SenderID, blob(m.ReceiverID), m.ClientMsgID
			types[j], contents[j], extras[j] = int32(m.Type), content(m.Content), blob(m.Extra)
			attached[j], sendTimes[j], createdAts[j] = blob(m.AttachedInfo), m.SendTime, m.CreatedAt.UnixMicro()
		}
		_, err := q.ExecContext(ctx, s.q.pgInsertMessages, convs, msgSeqs, serverIDs, senders, receivers, cmids,
			types, contents, extras, attached, sendTimes, createdAts, rconvs, rusers, rseqs)
		return err
	}
	for chunk := range insertChunks(idx, results) {
		args := make([]any, 0, newMessageColCount*len(chunk))
		for _, i := range chunk {
			m := &results[i].Message
			args = append(args, m.ConversationID, m.Seq, blob(m.ServerID), m.SenderID, blob(m.ReceiverID),
				m.ClientMsgID, int64(m.Type), content(m.Content), blob(m.Extra), blob(m.AttachedInfo),
				m.SendTime, m.CreatedAt.UnixMicro())
		}
		if _, err := q.ExecContext(ctx, s.q.insertMessages(len(chunk)), args...); err != nil {
			return err
		}
	}
	for chunk := range slices.Chunk(keys, maxRowsPerInsert) {
		args := make([]any, 0, 3*len(chunk))
		for _, k := range chunk {
			args = append(args, k.conv, k.user, seqs[k])
		}
		if _, err := q.ExecContext(ctx, s.q.senderReads(len(chunk)), args...); err != nil {
			return err
		}
	}
	return nil
}

// insertChunks splits idx into runs that each fit one INSERT statement: at
// most maxRowsPerInsert rows and, past the first row, maxInsertBytes of
// message data, which keeps a statement under MySQL's max_allowed_packet
// (16 MiB by default on MariaDB) even when a batch holds a thousand large
// messages.
func insertChunks(idx []int, results []im.AppendResult) iter.Seq[[]int] {
	return func(yield func([]int) bool) {
		start, size := 0, 0
		for j, i := range idx {
			m := &results[i].Message
			n := len(m.Content) + len(m.Extra) + len(m.AttachedInfo) + len(m.ServerID) + len(m.ReceiverID) + 512
			if j > start && (j-start == maxRowsPerInsert || size+n > maxInsertBytes) {
				if !yield(idx[start:j]) {
					return
				}
				start, size = j, 0
			}
			size += n
		}
		if start < len(idx) {
			yield(idx[start:])
		}
	}
}

// blob returns s as bytes for a binary column, never nil: a nil []byte
// would be NULL, and the columns are NOT NULL.
func blob(s string) []byte {
	if s == "" {
		return []byte{}
	}
	return []byte(s)
}

func content(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// rowScanner is *sql.Rows or *sql.Row.
type rowScanner interface{ Scan(dest ...any) error }

// scanMessage reads a row of messageCols, or of rangeCols when conv is not
// empty: then the row is a message of conv.
func scanMessage(r rowScanner, conv string) (im.Message, error) {
	var (
		m im.Message
		// One variable for the integers that need converting: each
		// escapes to the heap through Scan's arguments, together they
		// cost one allocation per row.
		n struct{ typ, created, revoked int64 }
	)
	// Binary columns scan straight into strings: database/sql copies the
	// driver's bytes once, where a []byte would be copied twice.
	rest := []any{&m.Seq, &m.ServerID, &m.SenderID, &m.ReceiverID, &m.ClientMsgID, &n.typ, &m.Content,
		&m.Extra, &m.AttachedInfo, &m.SendTime, &n.created, &m.RevokedBy, &n.revoked}
	var err error
	if conv == "" {
		err = r.Scan(append([]any{&m.ConversationID}, rest...)...)
	} else {
		m.ConversationID = conv
		err = r.Scan(rest...)
	}
	if err != nil {
		return im.Message{}, err
	}
	if n.typ < math.MinInt32 || n.typ > math.MaxInt32 {
		return im.Message{}, fmt.Errorf("message %q/%d: type %d out of range", m.ConversationID, m.Seq, n.typ)
	}
	m.Type = im.MessageType(n.typ)
	m.CreatedAt = time.UnixMicro(n.created).UTC()
	if m.RevokedBy != "" {
		m.RevokedAt = time.UnixMicro(n.revoked).UTC()
	}
	return m, nil
}

// Messages implements im.MessageStore. limit must be positive. A
// conversation id that no message can have yields no messages.
func (s *Store) Messages(ctx context.Context, conv string, from, to int64, limit int) ([]im.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(ctx, "messages", err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("sqlstore: messages: limit %d: %w", limit, im.ErrInvalidArgument)
	}
	from = max(from, 1)
	if to <= 0 {
		to = math.MaxInt64
	}
	if from > to || im.ValidateConversationID(conv) != nil {
		return []im.Message{}, nil
	}
	ms, err := s.readMessages(ctx, conv, min(limit, 1024), s.q.messagesRange, conv, from, to, limit)
	if err != nil {
		return nil, wrapErr(ctx, "messages", err)
	}
	return ms, nil
}

// MessagesBefore implements im.MessageStore. limit must be positive. A
// conversation id that no message can have yields no messages.
func (s *Store) MessagesBefore(ctx context.Context, conv string, before int64, limit int) ([]im.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(ctx, "messages before", err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("sqlstore: messages before: limit %d: %w", limit, im.ErrInvalidArgument)
	}
	if before <= 0 {
		before = math.MaxInt64
	}
	if before == 1 || im.ValidateConversationID(conv) != nil {
		return []im.Message{}, nil
	}
	ms, err := s.readMessages(ctx, conv, min(limit, 1024), s.q.messagesBefore, conv, before, limit)
	if err != nil {
		return nil, wrapErr(ctx, "messages before", err)
	}
	slices.Reverse(ms) // read newest first, returned oldest first
	return ms, nil
}

// readMessages runs a range query over conv's messages.
func (s *Store) readMessages(ctx context.Context, conv string, capacity int, query string, args ...any) ([]im.Message, error) {
	var out []im.Message
	err := s.read(ctx, func() error {
		out = make([]im.Message, 0, capacity)
		rows, err := s.db.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanMessage(rows, conv)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return rows.Err()
	})
	return out, err
}

// Conversation implements im.ConversationStore. An id that no message can
// have is not found.
func (s *Store) Conversation(ctx context.Context, id string) (im.Conversation, error) {
	if err := ctx.Err(); err != nil {
		return im.Conversation{}, wrapErr(ctx, "conversation", err)
	}
	if im.ValidateConversationID(id) != nil {
		return im.Conversation{}, fmt.Errorf("sqlstore: conversation %q: %w", id, im.ErrNotFound)
	}
	c := im.Conversation{ID: id}
	err := s.read(ctx, func() error {
		return s.db.QueryRowContext(ctx, s.q.conversation, id).Scan(&c.MaxSeq)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return im.Conversation{}, fmt.Errorf("sqlstore: conversation %q: %w", id, im.ErrNotFound)
	case err != nil:
		return im.Conversation{}, wrapErr(ctx, "conversation", err)
	}
	return c, nil
}

// UserConversations implements im.ConversationStore.
func (s *Store) UserConversations(ctx context.Context, userID string) ([]im.Conversation, error) {
	return s.conversationsOf(ctx, "user conversations", userID, s.q.userConversations, userID)
}

// conversationsOf runs query, whose rows are (id, max_seq), for userID's
// conversations. A user id no store could hold has none.
func (s *Store) conversationsOf(ctx context.Context, op, userID, query string, args ...any) ([]im.Conversation, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	if im.ValidateID("user id", userID) != nil {
		return []im.Conversation{}, nil
	}
	var out []im.Conversation
	err := s.read(ctx, func() error {
		out = []im.Conversation{}
		return eachIDValue(s.db.QueryContext(ctx, query, args...))(func(id string, seq int64) {
			out = append(out, im.Conversation{ID: id, MaxSeq: seq})
		})
	})
	if err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	return out, nil
}

// eachIDValue returns a function that calls fn for each row, a (string,
// int64) pair, of a query's result, then closes the rows.
func eachIDValue(rows *sql.Rows, err error) func(fn func(string, int64)) error {
	return func(fn func(string, int64)) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id string
				v  int64
			)
			if err := rows.Scan(&id, &v); err != nil {
				return err
			}
			fn(id, v)
		}
		return rows.Err()
	}
}
