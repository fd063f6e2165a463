package sqlstore

import (
	"strconv"
	"strings"
)

// Columns of a message row, in the order every statement lists them.
const (
	// newMessageCols are those an append writes; the tombstone columns
	// take their defaults (not recalled).
	newMessageCols     = "conversation_id, seq, server_id, sender_id, receiver_id, client_msg_id, type, content, extra, attached_info, send_time, created_at"
	newMessageColCount = 12
	// messageCols are those every read returns, tombstone included.
	messageCols = newMessageCols + ", revoked_by, revoked_at"
	// rangeCols leaves out conversation_id, which a range read knows.
	rangeCols = "seq, server_id, sender_id, receiver_id, client_msg_id, type, content, extra, attached_info, send_time, created_at, revoked_by, revoked_at"
	// accountCols are those every account read returns; an account write
	// stores nickname_key after them.
	accountCols = "user_id, username, nickname, password_hash, disabled, created_at, avatar, signature, gender, birth, updated_at, deleted"
	groupCols   = "id, name, face_url, introduction, notification, extra, owner_id, join_policy, member_count, created_at, updated_at, version, history, mute_all"
	// positionCols are a read_states row's values, after its key.
	positionCols = "read_seq, delivered_seq, mentioned_seq, updated_at"
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
	groups, groupMembers, tokenVersions, positions         string

	conversation      string // id → max_seq
	userConversations string // user → (id, max_seq)…
	messagesRange     string // conv, from, to, limit → rangeCols…
	messagesBefore    string // conv, before, limit → rangeCols…, newest first
	createAccount     string
	accountByID       string
	accountByUsername string
	tokenVersion      string // user id → version
	bumpTokenVersion  string // user id; inserts at 1 or adds one (RETURNING version but on MySQL)

	createGroup      string // groupCols
	group            string // id → groupCols
	lockGroup        string // id → (version, owner_id, member_count), the row locked until the commit
	updateGroup      string // name, face_url, introduction, notification, extra, join_policy, history, mute_all, updated_at, id
	storeGroupCount  string // member_count, owner_id, id; adds one to version
	groupMember      string // group id, user id → (role, joined_at, join_seq, muted_until)
	groupAndMembers  string // id → groupCols, then (user_id, role, joined_at, join_seq, muted_until) or NULLs, per member
	deleteGroup      string // id
	deleteAllMembers string // group id
	userGroups       string // user id → group id…

	syncConversations string // user id, user id → (id, max_seq, read_from)…: own (read_from 0) and groups'
	pgMessageRanges   string // indexes[], conversations[], froms[], tos[] → index, messageCols…

	convReadStates  string // conversation id → (user_id, positionCols)… of the rows with a position above 0
	messageByServer string // conversation id, server id → rangeCols of the newest such message
	message         string // conversation id, seq → rangeCols
	recall          string // revoked_by, revoked_at, conversation id, seq; erases the payload unless recalled already

	// Postgres passes batches as arrays, so its batch statements are fixed.
	pgLookup          string // senders[], client ids[] → messageCols…
	pgUpsertConvs     string // ids[], counts[] → (id, max_seq)…
	pgInsertMembers   string // users[], conversations[]
	pgInsertMessages  string // one array per column, then conversations[], senders[], seqs[] of the read positions to raise
	pgMembersIn       string // group id, users[] → (user_id, role, muted_until)…
	pgInsertMembersOf string // group id, users[], roles[], joined_ats[], muted_untils[], join seq
	pgSetRole         string // role, muted_until, group id, users[]
	pgRemoveMembers   string // group id, users[]
	pgShareGroups     string // ids[] → (id, version, mute_all), the rows share-locked
	pgMembersOf       string // group ids[], users[] → (group_id, user_id, role, muted_until) of those pairs that are members
	pgReadStates      string // user id, conversations[] → (conversation_id, positionCols)…
	pgUpdateReads     string // conversations[], users[], reads[], delivered[], mentioned[], times[] → (conversation_id, user_id, positionCols)…
	pgPairReadStates  string // conversations[], users[] → (conversation_id, user_id, positionCols)…

	settings settingsQueries // see settings.go
	profiles profileQueries  // see search.go
	friends  friendQueries   // see friends.go
	joins    joinQueries     // see joinrequests.go
}

func newQueries(d Dialect, prefix string) queries {
	q := queries{
		dialect:       d,
		conversations: prefix + "conversations",
		messages:      prefix + "messages",
		members:       prefix + "members",
		accounts:      prefix + "accounts",
		migrations:    prefix + "schema_migrations",
		groups:        prefix + "chat_groups",
		groupMembers:  prefix + "group_members",
		tokenVersions: prefix + "token_versions",
		positions:     prefix + "read_states",
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
	q.createAccount = "INSERT INTO " + q.accounts + " (" + accountCols + ", nickname_key) VALUES (" + strings.Join(p(13), ", ") + ")"
	q.accountByID = "SELECT " + accountCols + " FROM " + q.accounts + " WHERE user_id = " + p(1)[0]
	q.accountByUsername = "SELECT " + accountCols + " FROM " + q.accounts + " WHERE username = " + p(1)[0]
	q.tokenVersion = "SELECT version FROM " + q.tokenVersions + " WHERE user_id = " + p(1)[0]
	// One statement that creates or raises the row, holding its lock to
	// the commit: concurrent bumps, from any process, queue on it.
	if d == MySQL {
		// MySQL has no RETURNING; the bump reads its row back in the
		// same transaction.
		q.bumpTokenVersion = "INSERT INTO " + q.tokenVersions + " (user_id, version) VALUES (?, 1) ON DUPLICATE KEY UPDATE version = version + 1"
	} else {
		q.bumpTokenVersion = "INSERT INTO " + q.tokenVersions + " AS t (user_id, version) VALUES (" + p(1)[0] +
			", 1) ON CONFLICT (user_id) DO UPDATE SET version = t.version + 1 RETURNING version"
	}

	q.createGroup = "INSERT INTO " + q.groups + " (" + groupCols + ") VALUES (" + strings.Join(p(14), ", ") + ")"
	q.group = "SELECT " + groupCols + " FROM " + q.groups + " WHERE id = " + p(1)[0]
	q.lockGroup = "SELECT version, owner_id, member_count FROM " + q.groups + " WHERE id = " + p(1)[0]
	if d != SQLite { // SQLite's writer holds the whole database already
		q.lockGroup += " FOR UPDATE"
	}
	ph = p(10)
	q.updateGroup = "UPDATE " + q.groups + " SET name = " + ph[0] + ", face_url = " + ph[1] + ", introduction = " + ph[2] +
		", notification = " + ph[3] + ", extra = " + ph[4] + ", join_policy = " + ph[5] + ", history = " + ph[6] +
		", mute_all = " + ph[7] + ", updated_at = " + ph[8] + " WHERE id = " + ph[9]
	ph = p(3)
	q.storeGroupCount = "UPDATE " + q.groups + " SET member_count = " + ph[0] + ", owner_id = " + ph[1] +
		", version = version + 1 WHERE id = " + ph[2]
	ph = p(2)
	q.groupMember = "SELECT role, joined_at, join_seq, muted_until FROM " + q.groupMembers + " WHERE group_id = " + ph[0] + " AND user_id = " + ph[1]
	q.groupAndMembers = "SELECT " + prefixed("g.", groupCols) + ", m.user_id, m.role, m.joined_at, m.join_seq, m.muted_until FROM " + q.groups +
		" g LEFT JOIN " + q.groupMembers + " m ON m.group_id = g.id WHERE g.id = " + p(1)[0]
	q.deleteGroup = "DELETE FROM " + q.groups + " WHERE id = " + p(1)[0]
	q.deleteAllMembers = "DELETE FROM " + q.groupMembers + " WHERE group_id = " + p(1)[0]
	q.userGroups = "SELECT group_id FROM " + q.groupMembers + " WHERE user_id = " + p(1)[0]
	groupConv := "'group_' || g.group_id"
	if d == MySQL {
		groupConv = "CONCAT('group_', g.group_id)" // || is OR there
	}
	ph = p(2)
	// UNION drops a conversation found both ways. The second half looks up
	// each group's conversation and the group by their primary keys, and
	// computes the first readable seq as im.FirstReadableSeq does.
	q.syncConversations = "SELECT c.id, c.max_seq, 0 FROM " + q.members + " m JOIN " + q.conversations +
		" c ON c.id = m.conversation_id WHERE m.user_id = " + ph[0] +
		" UNION SELECT c.id, c.max_seq, CASE WHEN gr.history = 1 OR g.join_seq < 1 THEN 1 ELSE g.join_seq END FROM " + // history 1 is im.HistoryFull
		q.groupMembers + " g JOIN " + q.conversations +
		" c ON c.id = " + groupConv + " JOIN " + q.groups + " gr ON gr.id = g.group_id WHERE g.user_id = " + ph[1]

	ph = p(2)
	q.convReadStates = "SELECT user_id, " + positionCols + " FROM " + q.positions + " WHERE conversation_id = " + ph[0] +
		" AND (read_seq > 0 OR delivered_seq > 0 OR mentioned_seq > 0)"
	// No index on server_id: the conversation's rows, newest first, by
	// the primary key; recall asks of recent messages.
	q.messageByServer = "SELECT " + rangeCols + " FROM " + q.messages + " WHERE conversation_id = " + ph[0] +
		" AND server_id = " + ph[1] + " ORDER BY seq DESC LIMIT 1"
	q.message = "SELECT " + rangeCols + " FROM " + q.messages + " WHERE conversation_id = " + ph[0] + " AND seq = " + ph[1]
	ph = p(4)
	empty := "''"
	switch d {
	case Postgres:
		empty = "''::bytea"
	case SQLite:
		empty = "X''" // a BLOB column of a STRICT table takes no TEXT
	}
	q.recall = "UPDATE " + q.messages + " SET revoked_by = " + ph[0] + ", revoked_at = " + ph[1] +
		", content = " + empty + ", extra = " + empty + ", attached_info = " + empty +
		" WHERE conversation_id = " + ph[2] + " AND seq = " + ph[3] + " AND revoked_by = ''"

	if d == Postgres {
		q.pgReadStates = "SELECT conversation_id, " + positionCols + " FROM " + q.positions +
			" WHERE user_id = $1 AND conversation_id = ANY($2::text[])"
		// Each position is clamped to its conversation's max_seq, read
		// per row in the order of the arrays, then raised to; rows that
		// would stay at 0 are not written. updated_at goes with a move.
		q.pgUpdateReads = "INSERT INTO " + q.positions + " AS r (conversation_id, user_id, " + positionCols + ")" +
			" SELECT k.c, k.u, LEAST(k.r, m.s), LEAST(k.d, m.s), LEAST(k.n, m.s), k.t" +
			" FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) AS k(c, u, r, d, n, t)" +
			" CROSS JOIN LATERAL (SELECT COALESCE((SELECT max_seq FROM " + q.conversations + " WHERE id = k.c), 0) AS s) AS m" +
			" WHERE LEAST(GREATEST(k.r, k.d, k.n), m.s) > 0" +
			" ON CONFLICT (conversation_id, user_id) DO UPDATE SET " + raiseSet("r.", "EXCLUDED.") +
			" RETURNING conversation_id, user_id, " + positionCols
		q.pgPairReadStates = "SELECT r.conversation_id, r.user_id, " + prefixed("r.", positionCols) + " FROM " + q.positions +
			" r JOIN unnest($1::text[], $2::text[]) AS k(c, u) ON r.conversation_id = k.c AND r.user_id = k.u"
		q.pgLookup = "SELECT " + prefixed("m.", messageCols) + " FROM " + q.messages +
			" m JOIN unnest($1::text[], $2::text[]) AS k(s, c) ON m.sender_id = k.s AND m.client_msg_id = k.c"
		// ON CONFLICT DO UPDATE locks each existing row, in the order of
		// the arrays (sorted ids, the same order in every process), and
		// RETURNING hands back the new max_seq: creating, locking and
		// advancing the conversations is one round trip.
		q.pgUpsertConvs = "INSERT INTO " + q.conversations + " AS c (id, max_seq) SELECT * FROM unnest($1::text[], $2::bigint[])" +
			" ON CONFLICT (id) DO UPDATE SET max_seq = c.max_seq + EXCLUDED.max_seq RETURNING id, max_seq"
		q.pgInsertMembers = "INSERT INTO " + q.members + " (user_id, conversation_id) SELECT * FROM unnest($1::text[], $2::text[])"
		// The messages, and their senders' read positions: one statement,
		// one round trip. GREATEST: a position only moves forward,
		// whatever a receipt raised it to. The positions' arrays are in
		// (conversation, user) order, the order every writer of the table
		// locks rows in.
		q.pgInsertMessages = "WITH m AS (INSERT INTO " + q.messages + " (" + newMessageCols + ") SELECT * FROM unnest(" +
			"$1::text[], $2::bigint[], $3::bytea[], $4::text[], $5::bytea[], $6::text[], $7::integer[], " +
			"$8::bytea[], $9::bytea[], $10::bytea[], $11::bigint[], $12::bigint[]))" +
			" INSERT INTO " + q.positions + " AS r (conversation_id, user_id, read_seq)" +
			" SELECT * FROM unnest($13::text[], $14::text[], $15::bigint[])" +
			" ON CONFLICT (conversation_id, user_id) DO UPDATE SET read_seq = GREATEST(r.read_seq, EXCLUDED.read_seq)"
		q.pgMembersIn = "SELECT user_id, role, muted_until FROM " + q.groupMembers + " WHERE group_id = $1 AND user_id = ANY($2::text[])"
		q.pgInsertMembersOf = "INSERT INTO " + q.groupMembers + " (group_id, user_id, role, joined_at, muted_until, join_seq)" +
			" SELECT $1::text, k.*, $6::bigint FROM unnest($2::text[], $3::integer[], $4::bigint[], $5::bigint[]) AS k"
		q.pgSetRole = "UPDATE " + q.groupMembers + " SET role = $1, muted_until = $2 WHERE group_id = $3 AND user_id = ANY($4::text[])"
		q.pgRemoveMembers = "DELETE FROM " + q.groupMembers + " WHERE group_id = $1 AND user_id = ANY($2::text[])"
		q.pgShareGroups = "SELECT id, version, mute_all FROM " + q.groups + " WHERE id = ANY($1::text[]) ORDER BY id FOR SHARE"
		q.pgMembersOf = "SELECT m.group_id, m.user_id, m.role, m.muted_until FROM " + q.groupMembers +
			" m JOIN unnest($1::text[], $2::text[]) AS k(g, u) ON m.group_id = k.g AND m.user_id = k.u"
		// One index range scan per range, each range's rows tagged with
		// its index, so that overlapping ranges each get theirs.
		q.pgMessageRanges = "SELECT r.i, " + prefixed("m.", messageCols) +
			" FROM unnest($1::integer[], $2::text[], $3::bigint[], $4::bigint[]) AS r(i, c, f, t) JOIN " + q.messages +
			" m ON m.conversation_id = r.c AND m.seq >= r.f AND m.seq <= r.t ORDER BY r.i, m.seq"
	}
	q.settings = newSettingsQueries(&q, prefix)
	q.profiles = newProfileQueries(&q, prefix)
	q.friends = newFriendQueries(&q, prefix)
	q.joins = newJoinQueries(&q, prefix)
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
	b.WriteString(newMessageCols)
	b.WriteString(") VALUES ")
	values(&b, n, newMessageColCount)
	return b.String()
}

// userReadStates returns the statement that reads a user's positions in n
// conversations, given as the user id and the conversation ids: one
// lookup by the primary key each (not Postgres).
func (q *queries) userReadStates(n int) string {
	var b strings.Builder
	b.WriteString("SELECT conversation_id, " + positionCols + " FROM ")
	b.WriteString(q.positions)
	b.WriteString(" WHERE user_id = ? AND conversation_id")
	inList(&b, n)
	return b.String()
}

// pairReadStates returns the statement that reads the positions of n
// (conversation_id, user_id) pairs (not Postgres).
func (q *queries) pairReadStates(n int) string {
	var b strings.Builder
	b.WriteString("SELECT conversation_id, user_id, " + positionCols + " FROM ")
	b.WriteString(q.positions)
	b.WriteString(" WHERE (conversation_id, user_id) IN (")
	if q.dialect == SQLite {
		b.WriteString("VALUES ")
	}
	values(&b, n, 2)
	b.WriteByte(')')
	return b.String()
}

// raiseSet is the SET list of the upsert of receipts: each position
// becomes the greater of the stored one (old is the prefix of the stored
// row's columns) and the given one (in) and, if one of them grows, the
// given updated_at is stored. updated_at comes first because MySQL
// evaluates the assignments in order, each seeing those before it;
// PostgreSQL and SQLite see the stored row in all of them.
func raiseSet(old, in string) string {
	var b strings.Builder
	b.WriteString("updated_at = CASE WHEN ")
	for i, c := range []string{"read_seq", "delivered_seq", "mentioned_seq"} {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString(in + c + " > " + old + c)
	}
	b.WriteString(" THEN " + in + "updated_at ELSE " + old + "updated_at END")
	for _, c := range []string{"read_seq", "delivered_seq", "mentioned_seq"} {
		b.WriteString(", " + c + " = GREATEST(" + old + c + ", " + in + c + ")")
	}
	return b.String()
}

// raiseReads returns the statement that raises n positions, given as
// (conversation_id, user_id, positionCols) rows in key order, as raiseSet
// does; a missing row is created (not Postgres).
func (q *queries) raiseReads(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(q.positions)
	b.WriteString(" (conversation_id, user_id, " + positionCols + ") VALUES ")
	values(&b, n, 6)
	if q.dialect == SQLite {
		b.WriteString(" ON CONFLICT (conversation_id, user_id) DO UPDATE SET ")
		b.WriteString(strings.ReplaceAll(raiseSet("", "excluded."), "GREATEST(", "max("))
	} else {
		b.WriteString(" ON DUPLICATE KEY UPDATE ")
		b.WriteString(mysqlValues(raiseSet("", "new.")))
	}
	return b.String()
}

// senderReads returns the statement that raises n senders' read
// positions, given as (conversation_id, user_id, read_seq) rows in key
// order, to the greater of the stored and the given seq, leaving
// updated_at: a message of her own is no receipt (not Postgres).
func (q *queries) senderReads(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(q.positions)
	b.WriteString(" (conversation_id, user_id, read_seq) VALUES ")
	values(&b, n, 3)
	if q.dialect == SQLite {
		b.WriteString(" ON CONFLICT (conversation_id, user_id) DO UPDATE SET read_seq = max(read_seq, excluded.read_seq)")
	} else {
		b.WriteString(" ON DUPLICATE KEY UPDATE read_seq = GREATEST(read_seq, VALUES(read_seq))")
	}
	return b.String()
}

// mysqlValues turns the "new.col" references of raiseSet into VALUES(col),
// which both MySQL and MariaDB know in ON DUPLICATE KEY UPDATE.
func mysqlValues(set string) string {
	for _, c := range []string{"read_seq", "delivered_seq", "mentioned_seq", "updated_at"} {
		set = strings.ReplaceAll(set, "new."+c, "VALUES("+c+")")
	}
	return set
}

// inList appends " IN (?, …)" with n markers (not Postgres).
func inList(b *strings.Builder, n int) {
	b.WriteString(" IN (")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('?')
	}
	b.WriteByte(')')
}

// shareGroups returns the statement that reads (id, version, mute_all) of n groups
// and, but on SQLite, share-locks their rows until the commit, so that no
// change to them commits in between (not Postgres).
func (q *queries) shareGroups(n int) string {
	var b strings.Builder
	b.WriteString("SELECT id, version, mute_all FROM ")
	b.WriteString(q.groups)
	b.WriteString(" WHERE id")
	inList(&b, n)
	b.WriteString(" ORDER BY id")
	if q.dialect == MySQL {
		b.WriteString(" LOCK IN SHARE MODE")
	}
	return b.String()
}

// membersOf returns the statement that reads which of n (group_id,
// user_id) pairs are memberships, with their role and muted_until (not
// Postgres). On MySQL it is a locking
// read, which sees the latest committed rows whatever the transaction's
// snapshot.
func (q *queries) membersOf(n int) string {
	var b strings.Builder
	b.WriteString("SELECT group_id, user_id, role, muted_until FROM ")
	b.WriteString(q.groupMembers)
	b.WriteString(" WHERE (group_id, user_id) IN (")
	if q.dialect == SQLite {
		b.WriteString("VALUES ")
	}
	values(&b, n, 2)
	b.WriteByte(')')
	if q.dialect == MySQL {
		b.WriteString(" LOCK IN SHARE MODE")
	}
	return b.String()
}

// membersIn returns the statement that reads (user_id, role, muted_until) of those of n
// users who are members of a group, given as the group id and the users
// (not Postgres).
func (q *queries) membersIn(n int) string {
	var b strings.Builder
	b.WriteString("SELECT user_id, role, muted_until FROM ")
	b.WriteString(q.groupMembers)
	b.WriteString(" WHERE group_id = ? AND user_id")
	inList(&b, n)
	return b.String()
}

// insertMembersOf returns the statement that adds n (group_id, user_id,
// role, joined_at, muted_until, join_seq) rows (not Postgres).
func (q *queries) insertMembersOf(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(q.groupMembers)
	b.WriteString(" (group_id, user_id, role, joined_at, muted_until, join_seq) VALUES ")
	values(&b, n, 6)
	return b.String()
}

// setRole returns the statement that gives n members of a group one role
// and muted_until, given as those, the group id and the users (not
// Postgres).
func (q *queries) setRole(n int) string {
	var b strings.Builder
	b.WriteString("UPDATE ")
	b.WriteString(q.groupMembers)
	b.WriteString(" SET role = ?, muted_until = ? WHERE group_id = ? AND user_id")
	inList(&b, n)
	return b.String()
}

// removeMembers returns the statement that removes n members of a group,
// given as the group id and the users (not Postgres).
func (q *queries) removeMembers(n int) string {
	var b strings.Builder
	b.WriteString("DELETE FROM ")
	b.WriteString(q.groupMembers)
	b.WriteString(" WHERE group_id = ? AND user_id")
	inList(&b, n)
	return b.String()
}

// messageRanges returns the statement that reads the messages of n seq
// ranges, given as (conversation_id, from, to) triples, ordered by
// conversation and seq (not Postgres). Overlapping ranges share rows,
// which the caller hands to each.
func (q *queries) messageRanges(n int) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(messageCols)
	b.WriteString(" FROM ")
	b.WriteString(q.messages)
	b.WriteString(" WHERE ")
	for i := range n {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString("(conversation_id = ? AND seq >= ? AND seq <= ?)")
	}
	b.WriteString(" ORDER BY conversation_id, seq")
	return b.String()
}
