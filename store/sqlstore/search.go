package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth/account"
)

var (
	_ account.AccountSearcher = (*Store)(nil)
	_ account.RevokedTokens   = (*Store)(nil)
)

// profileQueries holds the statements of account lookups and search and
// of revoked tokens.
type profileQueries struct {
	search         string // key from, key to (or none: see searchOpen), limit → accountCols…
	searchOpen     string // key from, limit → accountCols…, for a prefix with no upper bound
	pgAccountsByID string // ids[] → accountCols…
	revoke         string // token id, expires_at; does nothing if the id is stored
	dropExpired    string // now: deletes up to maxExpiredPerRevoke expired rows
	revoked        string // token id → 1
	accountsByIDIn string // the start of "… WHERE user_id IN (…)" (not Postgres)
}

// maxExpiredPerRevoke bounds the expired rows one RevokeToken deletes: a
// revocation does a little of the cleaning, and never waits for a lot.
const maxExpiredPerRevoke = 100

func newProfileQueries(q *queries, prefix string) profileQueries {
	pq := profileQueries{}
	p := q.placeholders
	ph := p(3)
	// The range of the keys with the prefix, in the index's order: the
	// index on (nickname_key, user_id) gives the rows in the order asked,
	// and LIMIT stops the scan; deleted accounts are skipped on the way.
	sel := "SELECT " + accountCols + " FROM " + q.accounts + " WHERE nickname_key >= " + ph[0]
	order := " ORDER BY nickname_key, user_id LIMIT "
	pq.search = sel + " AND nickname_key < " + ph[1] + " AND deleted = " + q.false() + order + ph[2]
	pq.searchOpen = sel + " AND deleted = " + q.false() + order + ph[1]
	pq.accountsByIDIn = "SELECT " + accountCols + " FROM " + q.accounts + " WHERE user_id"
	t := prefix + "revoked_tokens"
	switch q.dialect {
	case Postgres:
		pq.pgAccountsByID = "SELECT " + accountCols + " FROM " + q.accounts + " WHERE user_id = ANY($1::text[])"
		pq.revoke = "INSERT INTO " + t + " (token_id, expires_at) VALUES ($1, $2) ON CONFLICT (token_id) DO NOTHING"
		pq.dropExpired = "DELETE FROM " + t + " WHERE token_id IN (SELECT token_id FROM " + t +
			" WHERE expires_at < $1 ORDER BY expires_at LIMIT " + fmt.Sprint(maxExpiredPerRevoke) + ")"
	case MySQL:
		// Not INSERT IGNORE, which would turn other errors into warnings.
		pq.revoke = "INSERT INTO " + t + " (token_id, expires_at) VALUES (?, ?) ON DUPLICATE KEY UPDATE token_id = token_id"
		pq.dropExpired = "DELETE FROM " + t + " WHERE expires_at < ? ORDER BY expires_at LIMIT " + fmt.Sprint(maxExpiredPerRevoke)
	default:
		pq.revoke = "INSERT INTO " + t + " (token_id, expires_at) VALUES (?, ?) ON CONFLICT (token_id) DO NOTHING"
		pq.dropExpired = "DELETE FROM " + t + " WHERE token_id IN (SELECT token_id FROM " + t +
			" WHERE expires_at < ? ORDER BY expires_at LIMIT " + fmt.Sprint(maxExpiredPerRevoke) + ")"
	}
	pq.revoked = "SELECT 1 FROM " + t + " WHERE token_id = " + p(1)[0]
	return pq
}

// false is the dialect's literal for a false boolean column.
func (q *queries) false() string {
	if q.dialect == SQLite {
		return "0"
	}
	return "false"
}

// AccountsByID implements account.AccountSearcher with one query (one per 500
// ids on MySQL and SQLite).
func (s *Store) AccountsByID(ctx context.Context, ids []string) ([]account.Account, error) {
	const op = "accounts by id"
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	for _, id := range ids {
		if err := im.ValidateID("user id", id); err != nil {
			return nil, err
		}
	}
	ids = uniq(ids)
	found := make(map[string]account.Account, len(ids))
	collect := func(query string, args ...any) error {
		return s.read(ctx, func() error {
			rows, err := s.db.QueryContext(ctx, query, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				a, err := scanAccount(rows)
				if err != nil {
					return err
				}
				found[a.UserID] = a
			}
			return rows.Err()
		})
	}
	var err error
	if s.dialect == Postgres {
		if len(ids) > 0 {
			err = collect(s.q.profiles.pgAccountsByID, ids)
		}
	} else {
		for chunk := range slices.Chunk(ids, maxKeysPerLookup) {
			var b strings.Builder
			b.WriteString(s.q.profiles.accountsByIDIn)
			inList(&b, len(chunk))
			args := make([]any, len(chunk))
			for i, id := range chunk {
				args[i] = id
			}
			if err = collect(b.String(), args...); err != nil {
				break
			}
		}
	}
	if err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	out := make([]account.Account, 0, len(found))
	for _, id := range ids {
		if a, ok := found[id]; ok {
			out = append(out, a)
		}
	}
	return out, nil
}

// SearchAccounts implements account.AccountSearcher: one range scan of the
// index on (nickname_key, user_id), from prefix to prefixEnd(prefix).
func (s *Store) SearchAccounts(ctx context.Context, prefix string, limit int) ([]account.Account, error) {
	const op = "search accounts"
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	if prefix == "" {
		return nil, fmt.Errorf("sqlstore: %s: empty prefix: %w", op, im.ErrInvalidArgument)
	}
	if limit < 1 {
		return nil, fmt.Errorf("sqlstore: %s: limit %d: %w", op, limit, im.ErrInvalidArgument)
	}
	// Keys are cut at maxNicknameKey bytes: a longer prefix is looked up
	// by its cut, and the full keys are compared here.
	from := []byte(prefix)
	long := len(from) > maxNicknameKey
	if long {
		from = nicknameKey(prefix)
	}
	query, args := s.q.profiles.searchOpen, []any{from, limit}
	if to, ok := prefixEnd(from); ok {
		query, args = s.q.profiles.search, []any{from, to, limit}
	}
	var out []account.Account
	err := s.read(ctx, func() error {
		out = []account.Account{}
		rows, err := s.db.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			a, err := scanAccount(rows)
			if err != nil {
				return err
			}
			if !long || strings.HasPrefix(account.NicknameKey(a.Nickname), prefix) {
				out = append(out, a)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	return out, nil
}

// prefixEnd returns the least byte string greater than every string that
// begins with prefix: prefix with its last byte below 0xff raised by one
// and what follows it dropped. The keys are compared as bytes in every
// dialect, so this is the upper bound of the range of keys with the
// prefix, whatever the prefix holds; for a prefix of valid UTF-8 it is
// the prefix with its last character raised by one (UTF-8 orders as the
// code points do). ok is false when there is none: the prefix is all 0xff.
func prefixEnd(prefix []byte) (end []byte, ok bool) {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] < 0xff {
			end = append(slices.Clip(prefix[:i]), prefix[i]+1)
			return end, true
		}
	}
	return nil, false
}

// checkTokenID refuses an id RevokedTokens may not store.
func checkTokenID(id string) error {
	if id == "" || len(id) > im.MaxIDLength {
		return fmt.Errorf("sqlstore: token id must be 1 to %d bytes: %w", im.MaxIDLength, im.ErrInvalidArgument)
	}
	return nil
}

// RevokeToken implements account.RevokedTokens: one transaction that stores
// the id, unless it is stored already, and deletes up to 100 of the
// records whose token has expired, oldest first, so that they do not
// pile up. Token ids are stored as bytes, exactly as given.
func (s *Store) RevokeToken(ctx context.Context, tokenID string, expires time.Time) error {
	const op = "revoke token"
	if err := ctx.Err(); err != nil {
		return wrapErr(ctx, op, err)
	}
	if err := checkTokenID(tokenID); err != nil {
		return err
	}
	now := time.Now().UnixMicro()
	err := s.write(ctx, true, func(q querier) error {
		if _, err := q.ExecContext(ctx, s.q.profiles.revoke, []byte(tokenID), expires.UnixMicro()); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, s.q.profiles.dropExpired, now)
		return err
	})
	if err != nil {
		return wrapErr(ctx, op, err)
	}
	return nil
}

// TokenRevoked implements account.RevokedTokens. A record whose token has
// expired may still be there, and still says revoked.
func (s *Store) TokenRevoked(ctx context.Context, tokenID string) (bool, error) {
	const op = "token revoked"
	if err := ctx.Err(); err != nil {
		return false, wrapErr(ctx, op, err)
	}
	if err := checkTokenID(tokenID); err != nil {
		return false, err
	}
	var found bool
	err := s.read(ctx, func() error {
		var one int64
		err := s.db.QueryRowContext(ctx, s.q.profiles.revoked, []byte(tokenID)).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			found = false
			return nil
		}
		found = err == nil
		return err
	})
	if err != nil {
		return false, wrapErr(ctx, op, err)
	}
	return found, nil
}
