package sqlstore

import (
	"strconv"
	"strings"
)

// Columns of a message row, in the order every statement lists them.
const (
	messageCols     = "conversation_id, seq, server_id, sender_id, receiver_id, client_msg_id, type, content, extra, attached_info, send_time, created_at"
	messageColCount = 12
	// rangeCols leaves out conversation_id, which a range read knows.
	rangeCols   = "seq, server_id, sender_id, receiver_id, client_msg_id, type, content, extra, attached_info, send_time, created_at"
	accountCols = "user_id, username, nickname, password_hash, disabled, created_at"
)

// Rows per statement for the dialects that list rows as VALUES, which keeps
// every statement under the parameter limits (SQLite: 32766, MySQL: 65535).
const (
	maxRowsPerInsert = 500
	maxKeysPerLookup = 500
	maxInsertBytes   = 4 << 20
)

// queries holds the SQL text of one Store, built once in New with its
// dialect's placeholders and its table prefix. Only table names are
// pasted in, and only a validated prefix; every value is a parameter.
type queries struct {
	dialect Dialect
	// Table names with the prefix.
	conversations, messages, members, accounts, migrations string

	conversation      string // id → max_seq
	userConversations string // user → (id, max_seq)…
	messagesRange     string // conv, from, to, limit → rangeCols…
	messagesBefore    string // conv, before, limit → rangeCols…, newest first
	createAccount     string
	accountByID       string
	accountByUsername string

	// Postgres passes batches as arrays, so its batch statements are fixed.
	pgLookup         string // senders[], client ids[] → messageCols…
	pgUpsertConvs    string // ids[], counts[] → (id, max_seq)…
	pgInsertMembers  string // users[], conversations[]
	pgInsertMessages string // one array per column
}

func newQueries(d Dialect, prefix string) queries {
	q := queries{
		dialect:       d,
		conversations: prefix + "conversations",
		messages:      prefix + "messages",
		members:       prefix + "members",
		accounts:      prefix + "accounts",
		migrations:    prefix + "schema_migrations",
	}
	p := q.placeholders
	q.conversation = "SELECT max_seq FROM " + q.conversations + " WHERE id = " + p(1)[0]
	q.userConversations = "SELECT c.id, c.max_seq FROM " + q.members + " m JOIN " + q.conversations +
		" c ON c.id = m.conversation_id WHERE m.user_id = " + p(1)[0]
	ph := p(4)
	q.messagesRange = "SELECT " + rangeCols + " FROM " + q.messages + " WHERE conversation_id = " + ph[0] +
		" AND seq >= " + ph[1] + " AND seq <= " + ph[2] + " ORDER BY seq LIMIT " + ph[3]
	q.messagesBefore = "SELECT " + rangeCols + " FROM " + q.messages + " WHERE conversation_id = " + ph[0] +
		" AND seq < " + ph[1] + " ORDER BY seq DESC LIMIT " + ph[2]
	q.createAccount = "INSERT INTO " + q.accounts + " (" + accountCols + ") VALUES (" + strings.Join(p(6), ", ") + ")"
	q.accountByID = "SELECT " + accountCols + " FROM " + q.accounts + " WHERE user_id = " + p(1)[0]
	q.accountByUsername = "SELECT " + accountCols + " FROM " + q.accounts + " WHERE username = " + p(1)[0]

	if d == Postgres {
		q.pgLookup = "SELECT " + prefixed("m.", messageCols) + " FROM " + q.messages +
			" m JOIN unnest($1::text[], $2::text[]) AS k(s, c) ON m.sender_id = k.s AND m.client_msg_id = k.c"
		// ON CONFLICT DO UPDATE locks each existing row, in the order of
		// the arrays (sorted ids, the same order in every process), and
		// RETURNING hands back the new max_seq: creating, locking and
		// advancing the conversations is one round trip.
		q.pgUpsertConvs = "INSERT INTO " + q.conversations + " AS c (id, max_seq) SELECT * FROM unnest($1::text[], $2::bigint[])" +
			" ON CONFLICT (id) DO UPDATE SET max_seq = c.max_seq + EXCLUDED.max_seq RETURNING id, max_seq"
		q.pgInsertMembers = "INSERT INTO " + q.members + " (user_id, conversation_id) SELECT * FROM unnest($1::text[], $2::text[])"
		q.pgInsertMessages = "INSERT INTO " + q.messages + " (" + messageCols + ") SELECT * FROM unnest(" +
			"$1::text[], $2::bigint[], $3::bytea[], $4::text[], $5::bytea[], $6::text[], $7::integer[], " +
			"$8::bytea[], $9::bytea[], $10::bytea[], $11::bigint[], $12::bigint[])"
	}
	return q
}

// placeholders returns n parameter markers: $1…$n on Postgres, ? elsewhere.
func (q *queries) placeholders(n int) []string {
	out := make([]string, n)
	for i := range out {
		if q.dialect == Postgres {
			out[i] = "$" + strconv.Itoa(i+1)
		} else {
			out[i] = "?"
		}
	}
	return out
}

// prefixed puts p before each name of a comma-separated column list.
func prefixed(p, cols string) string {
	names := strings.Split(cols, ", ")
	for i := range names {
		names[i] = p + names[i]
	}
	return strings.Join(names, ", ")
}

// values appends rows groups of cols "?" markers: "(?, ?), (?, ?)". Only
// for the dialects that use "?".
func values(b *strings.Builder, rows, cols int) {
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('?')
		}
		b.WriteByte(')')
	}
}

// lookup returns the statement that reads the stored messages with n
// (sender_id, client_msg_id) keys, given as 2n parameters (not Postgres).
func (q *queries) lookup(n int) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(messageCols)
	b.WriteString(" FROM ")
	b.WriteString(q.messages)
	if q.dialect == SQLite {
		b.WriteString(" WHERE (sender_id, client_msg_id) IN (VALUES ")
	} else {
		b.WriteString(" WHERE (sender_id, client_msg_id) IN (")
	}
	values(&b, n, 2)
	b.WriteByte(')')
	return b.String()
}

// upsertConvs returns the statement that creates or advances n
// conversations, given as (id, count) pairs in id order (not Postgres).
// On SQLite it returns the new (id, max_seq); on MySQL, which has no
// RETURNING, selectConvs reads them afterwards.
func (q *queries) upsertConvs(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(q.conversations)
	b.WriteString(" (id, max_seq) VALUES ")
	values(&b, n, 2)
	if q.dialect == SQLite {
		b.WriteString(" ON CONFLICT (id) DO UPDATE SET max_seq = max_seq + excluded.max_seq RETURNING id, max_seq")
	} else {
		// VALUES() is deprecated in MySQL 8.0.20 in favour of a row alias
		// that MariaDB does not know; both still accept this form. The
		// duplicate key takes an exclusive lock on the row, in the order
		// of the list.
		b.WriteString(" ON DUPLICATE KEY UPDATE max_seq = max_seq + VALUES(max_seq)")
	}
	return b.String()
}

// selectConvs returns the statement that reads max_seq of n conversations
// (MySQL, after upsertConvs).
func (q *queries) selectConvs(n int) string {
	var b strings.Builder
	b.WriteString("SELECT id, max_seq FROM ")
	b.WriteString(q.conversations)
	b.WriteString(" WHERE id IN (")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('?')
	}
	b.WriteByte(')')
	return b.String()
}

// insertMembers returns the statement that adds n (user_id,
// conversation_id) rows (not Postgres).
func (q *queries) insertMembers(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(q.members)
	b.WriteString(" (user_id, conversation_id) VALUES ")
	values(&b, n, 2)
	return b.String()
}

// insertMessages returns the statement that adds n message rows (not
// Postgres).
func (q *queries) insertMessages(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(q.messages)
	b.WriteString(" (")
	b.WriteString(messageCols)
	b.WriteString(") VALUES ")
	values(&b, n, messageColCount)
	return b.String()
}
