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
)

var _ im.GroupJoinRequestStore = (*Store)(nil)

// joinQueries holds the statements of group join requests.
type joinQueries struct {
	table string

	shareGroup string // group id → 1, the row share-locked until the commit (but on SQLite)
	isMember   string // group id, user id → 1
	put        string // group id, user id, message, created_at; replaces a stored one
	count      string // group id → count
	list       string // group id → user_id, message, created_at…, by created_at, user_id
	one        string // group id, user id → message, created_at
	drop       string // group id, user id
	dropAll    string // group id
	pgDropSome string // group id, users[]
}

func newJoinQueries(q *queries, prefix string) joinQueries {
	t := prefix + "group_join_requests"
	jq := joinQueries{table: t}
	ph := q.placeholders(4)
	jq.shareGroup = "SELECT 1 FROM " + q.groups + " WHERE id = " + ph[0]
	switch q.dialect {
	case Postgres:
		jq.shareGroup += " FOR SHARE"
	case MySQL:
		jq.shareGroup += " LOCK IN SHARE MODE"
	}
	jq.isMember = "SELECT 1 FROM " + q.groupMembers + " WHERE group_id = " + ph[0] + " AND user_id = " + ph[1]
	jq.put = "INSERT INTO " + t + " (group_id, user_id, message, created_at) VALUES (" + strings.Join(ph, ", ") + ")"
	if q.dialect == MySQL {
		jq.put += " ON DUPLICATE KEY UPDATE message = VALUES(message), created_at = VALUES(created_at)"
	} else {
		jq.put += " ON CONFLICT (group_id, user_id) DO UPDATE SET message = excluded.message, created_at = excluded.created_at"
	}
	jq.count = "SELECT COUNT(*) FROM " + t + " WHERE group_id = " + ph[0]
	jq.list = "SELECT user_id, message, created_at FROM " + t + " WHERE group_id = " + ph[0] + " ORDER BY created_at, user_id"
	jq.one = "SELECT message, created_at FROM " + t + " WHERE group_id = " + ph[0] + " AND user_id = " + ph[1]
	jq.drop = "DELETE FROM " + t + " WHERE group_id = " + ph[0] + " AND user_id = " + ph[1]
	jq.dropAll = "DELETE FROM " + t + " WHERE group_id = " + ph[0]
	if q.dialect == Postgres {
		jq.pgDropSome = "DELETE FROM " + t + " WHERE group_id = $1 AND user_id = ANY($2::text[])"
	}
	return jq
}

// dropSome returns the statement that deletes the requests of n users to
// a group, given as the group id and the users (not Postgres).
func (jq *joinQueries) dropSome(n int) string {
	var b strings.Builder
	b.WriteString("DELETE FROM ")
	b.WriteString(jq.table)
	b.WriteString(" WHERE group_id = ? AND user_id")
	inList(&b, n)
	return b.String()
}

// dropJoinRequests deletes the join requests to group id of the members
// put, in q's transaction (ChangeGroup's, which holds the group's lock).
func (s *Store) dropJoinRequests(ctx context.Context, q querier, id string, put []im.GroupMember) error {
	if len(put) == 0 {
		return nil
	}
	users := make([]string, len(put))
	for i, m := range put {
		users[i] = m.UserID
	}
	if s.dialect == Postgres {
		_, err := q.ExecContext(ctx, s.q.joins.pgDropSome, id, users)
		return err
	}
	for chunk := range slices.Chunk(users, maxKeysPerLookup) {
		if _, err := q.ExecContext(ctx, s.q.joins.dropSome(len(chunk)), idArgs(id, chunk)...); err != nil {
			return err
		}
	}
	return nil
}

// checkJoinIDs refuses ids that no group or user can have.
func checkJoinIDs(groupID, userID string) error {
	if err := im.ValidateID("group id", groupID); err != nil {
		return err
	}
	return im.ValidateID("user id", userID)
}

// PutJoinRequest implements im.GroupJoinRequestStore in one transaction
// that share-locks the group's row first, as an append to the group does:
// a change to the group (which locks the row exclusively, and removes the
// requests of the members it adds) commits wholly before or after it, so
// a request is never stored for a user who has just been added.
func (s *Store) PutJoinRequest(ctx context.Context, r im.GroupJoinRequest) (int, error) {
	const op = "put join request"
	if err := ctx.Err(); err != nil {
		return 0, wrapErr(ctx, op, err)
	}
	if err := checkJoinIDs(r.GroupID, r.UserID); err != nil {
		return 0, err
	}
	if err := im.ValidateFriendText("message", r.Message, im.MaxFriendMessageLen); err != nil {
		return 0, err
	}
	var n int64
	err := s.write(ctx, true, func(q querier) error {
		found, err := exists(ctx, q, s.q.joins.shareGroup, r.GroupID)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("group %q: %w", r.GroupID, im.ErrNotFound)
		}
		member, err := exists(ctx, q, s.q.joins.isMember, r.GroupID, r.UserID)
		if err != nil {
			return err
		}
		if member {
			return fmt.Errorf("%q is a member of group %q already: %w", r.UserID, r.GroupID, im.ErrConflict)
		}
		if _, err := q.ExecContext(ctx, s.q.joins.put, r.GroupID, r.UserID, blob(r.Message), r.CreatedAt.UnixMicro()); err != nil {
			return err
		}
		return q.QueryRowContext(ctx, s.q.joins.count, r.GroupID).Scan(&n)
	})
	if err != nil {
		return 0, wrapErr(ctx, op, err)
	}
	return int(n), nil
}

// JoinRequests implements im.GroupJoinRequestStore with one range of the
// index on (group_id, created_at, user_id).
func (s *Store) JoinRequests(ctx context.Context, groupID string) ([]im.GroupJoinRequest, error) {
	const op = "join requests"
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	if err := im.ValidateID("group id", groupID); err != nil {
		return nil, err
	}
	out, err := readRows(ctx, s, s.q.joins.list, []any{groupID}, func(rows *sql.Rows) (im.GroupJoinRequest, error) {
		r := im.GroupJoinRequest{GroupID: groupID}
		var at int64
		err := rows.Scan(&r.UserID, &r.Message, &at)
		r.CreatedAt = time.UnixMicro(at).UTC()
		return r, err
	})
	if err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	return out, nil
}

// JoinRequest implements im.GroupJoinRequestStore.
func (s *Store) JoinRequest(ctx context.Context, groupID, userID string) (im.GroupJoinRequest, error) {
	const op = "join request"
	if err := ctx.Err(); err != nil {
		return im.GroupJoinRequest{}, wrapErr(ctx, op, err)
	}
	if err := checkJoinIDs(groupID, userID); err != nil {
		return im.GroupJoinRequest{}, err
	}
	r := im.GroupJoinRequest{GroupID: groupID, UserID: userID}
	err := s.read(ctx, func() error {
		var at int64
		if err := s.db.QueryRowContext(ctx, s.q.joins.one, groupID, userID).Scan(&r.Message, &at); err != nil {
			return err
		}
		r.CreatedAt = time.UnixMicro(at).UTC()
		return nil
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return im.GroupJoinRequest{}, fmt.Errorf("sqlstore: %s of %q to %q: %w", op, userID, groupID, im.ErrNotFound)
	case err != nil:
		return im.GroupJoinRequest{}, wrapErr(ctx, op, err)
	}
	return r, nil
}

// DeleteJoinRequest implements im.GroupJoinRequestStore.
func (s *Store) DeleteJoinRequest(ctx context.Context, groupID, userID string) error {
	const op = "delete join request"
	if err := ctx.Err(); err != nil {
		return wrapErr(ctx, op, err)
	}
	if err := checkJoinIDs(groupID, userID); err != nil {
		return err
	}
	err := s.write(ctx, false, func(q querier) error {
		return affected(q.ExecContext(ctx, s.q.joins.drop, groupID, userID))(
			fmt.Errorf("no request of %q to group %q: %w", userID, groupID, im.ErrNotFound))
	})
	if err != nil {
		return wrapErr(ctx, op, err)
	}
	return nil
}
