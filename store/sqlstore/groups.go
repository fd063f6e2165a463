package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/imserver/imserver/im"
)

// Every transaction that changes a group's members, or the group, first
// locks the group's row (SQLite's writer holds the whole database anyway),
// so that the changes to one group take turns across processes: what a
// transaction reads of the members then stays true until it commits, and
// member_count, kept in the group's row, is changed by exactly the members
// it added or removed. A group's members are never written without its row
// existing, so no membership outlives its group.

// CreateGroup implements im.GroupStore. The primary key on the group id
// decides between concurrent creators, in this process or another.
func (s *Store) CreateGroup(ctx context.Context, g im.Group, members []im.GroupMember) error {
	const op = "create group"
	if err := ctx.Err(); err != nil {
		return wrapErr(ctx, op, err)
	}
	if err := im.ValidateGroup(g); err != nil {
		return err
	}
	if err := im.ValidateGroupMembers(members); err != nil {
		return err
	}
	err := s.write(ctx, false, func(q querier) error {
		_, err := q.ExecContext(ctx, s.q.createGroup, g.ID, blob(g.Name), blob(g.FaceURL), blob(g.Introduction),
			blob(g.Notification), blob(g.Extra), g.OwnerID, int64(g.JoinPolicy), int64(len(members)),
			g.CreatedAt.UnixMicro(), g.UpdatedAt.UnixMicro())
		if err != nil {
			if s.isUnique(err) {
				return fmt.Errorf("group %q exists: %w", g.ID, im.ErrConflict)
			}
			return err
		}
		return s.insertGroupMembers(ctx, q, g.ID, members)
	})
	if err != nil {
		return wrapErr(ctx, op, err)
	}
	return nil
}

// Group implements im.GroupStore. An id that no group can have is not
// found.
func (s *Store) Group(ctx context.Context, id string) (im.Group, error) {
	const op = "group"
	if err := ctx.Err(); err != nil {
		return im.Group{}, wrapErr(ctx, op, err)
	}
	if im.ValidateID("group id", id) != nil {
		return im.Group{}, fmt.Errorf("sqlstore: %s %q: %w", op, id, im.ErrNotFound)
	}
	var (
		g                    im.Group
		policy, count        int64
		createdAt, updatedAt int64
	)
	err := s.read(ctx, func() error {
		return s.db.QueryRowContext(ctx, s.q.group, id).Scan(&g.ID, &g.Name, &g.FaceURL, &g.Introduction,
			&g.Notification, &g.Extra, &g.OwnerID, &policy, &count, &createdAt, &updatedAt)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return im.Group{}, fmt.Errorf("sqlstore: %s %q: %w", op, id, im.ErrNotFound)
	case err != nil:
		return im.Group{}, wrapErr(ctx, op, err)
	}
	if policy < math.MinInt32 || policy > math.MaxInt32 {
		return im.Group{}, fmt.Errorf("sqlstore: %s %q: join policy %d out of range", op, id, policy)
	}
	g.JoinPolicy = im.JoinPolicy(policy)
	g.MemberCount = int(count)
	g.CreatedAt = time.UnixMicro(createdAt).UTC()
	g.UpdatedAt = time.UnixMicro(updatedAt).UTC()
	return g, nil
}

// UpdateGroup implements im.GroupStore.
func (s *Store) UpdateGroup(ctx context.Context, g im.Group) error {
	const op = "update group"
	if err := ctx.Err(); err != nil {
		return wrapErr(ctx, op, err)
	}
	if err := im.ValidateGroup(g); err != nil {
		return err
	}
	err := s.write(ctx, false, func(q querier) error {
		// Locked first rather than judged by the rows the UPDATE
		// affected: MySQL counts only the rows it changed.
		if err := s.lockGroup(ctx, q, g.ID); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, s.q.updateGroup, blob(g.Name), blob(g.FaceURL), blob(g.Introduction),
			blob(g.Notification), blob(g.Extra), g.OwnerID, int64(g.JoinPolicy), g.UpdatedAt.UnixMicro(), g.ID)
		return err
	})
	if err != nil {
		return wrapErr(ctx, op, err)
	}
	return nil
}

// DeleteGroup implements im.GroupStore.
func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	const op = "delete group"
	if err := ctx.Err(); err != nil {
		return wrapErr(ctx, op, err)
	}
	if err := im.ValidateID("group id", id); err != nil {
		return err
	}
	err := s.write(ctx, false, func(q querier) error {
		// The group's row first, as every other change to the group.
		res, err := q.ExecContext(ctx, s.q.deleteGroup, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("group %q: %w", id, im.ErrNotFound)
		}
		_, err = q.ExecContext(ctx, s.q.deleteAllMembers, id)
		return err
	})
	if err != nil {
		return wrapErr(ctx, op, err)
	}
	return nil
}

// PutGroupMembers implements im.GroupStore. It reads which of the users
// are members already, inserts the others and sets the role of those whose
// role changes, keeping their joined_at.
func (s *Store) PutGroupMembers(ctx context.Context, id string, members []im.GroupMember) error {
	const op = "put group members"
	if err := ctx.Err(); err != nil {
		return wrapErr(ctx, op, err)
	}
	if err := im.ValidateID("group id", id); err != nil {
		return err
	}
	if err := im.ValidateGroupMembers(members); err != nil {
		return err
	}
	users := make([]string, len(members))
	for i, m := range members {
		users[i] = m.UserID
	}
	err := s.write(ctx, false, func(q querier) error {
		if err := s.lockGroup(ctx, q, id); err != nil {
			return err
		}
		stored, err := s.groupMembersIn(ctx, q, id, users)
		if err != nil {
			return err
		}
		var (
			fresh   []im.GroupMember
			changed = make(map[im.GroupRole][]string)
		)
		for _, m := range members {
			role, ok := stored[m.UserID]
			switch {
			case !ok:
				fresh = append(fresh, m)
			case role != m.Role:
				changed[m.Role] = append(changed[m.Role], m.UserID)
			}
		}
		if err := s.insertGroupMembers(ctx, q, id, fresh); err != nil {
			return err
		}
		for _, role := range []im.GroupRole{im.RoleMember, im.RoleAdmin, im.RoleOwner} {
			if err := s.setGroupRole(ctx, q, id, role, changed[role]); err != nil {
				return err
			}
		}
		for _, m := range members {
			if m.Role == im.RoleOwner { // at most one, by validation
				if _, err := q.ExecContext(ctx, s.q.setGroupOwner, m.UserID, id); err != nil {
					return err
				}
			}
		}
		return s.addMemberCount(ctx, q, id, len(fresh))
	})
	if err != nil {
		return wrapErr(ctx, op, err)
	}
	return nil
}

// RemoveGroupMembers implements im.GroupStore. It reads which of the users
// are members and removes exactly those.
func (s *Store) RemoveGroupMembers(ctx context.Context, id string, userIDs []string) error {
	const op = "remove group members"
	if err := ctx.Err(); err != nil {
		return wrapErr(ctx, op, err)
	}
	if err := im.ValidateID("group id", id); err != nil {
		return err
	}
	for _, u := range userIDs {
		if err := im.ValidateID("member id", u); err != nil {
			return err
		}
	}
	users := uniq(userIDs)
	err := s.write(ctx, false, func(q querier) error {
		if err := s.lockGroup(ctx, q, id); err != nil {
			return err
		}
		// Deleting only the rows that exist keeps MySQL from locking the
		// gaps where the others would be, which other groups' inserts
		// could fall into.
		stored, err := s.groupMembersIn(ctx, q, id, users)
		if err != nil {
			return err
		}
		gone := make([]string, 0, len(stored))
		for _, u := range users {
			if _, ok := stored[u]; ok {
				gone = append(gone, u)
			}
		}
		if err := s.deleteGroupMembers(ctx, q, id, gone); err != nil {
			return err
		}
		return s.addMemberCount(ctx, q, id, -len(gone))
	})
	if err != nil {
		return wrapErr(ctx, op, err)
	}
	return nil
}

// GroupMembers implements im.GroupStore. The group and its members are
// read by one statement, so from one snapshot. An id that no group can
// have is not found.
func (s *Store) GroupMembers(ctx context.Context, id string) ([]im.GroupMember, error) {
	const op = "group members"
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	if im.ValidateID("group id", id) != nil {
		return nil, fmt.Errorf("sqlstore: %s %q: %w", op, id, im.ErrNotFound)
	}
	var (
		out   []im.GroupMember
		found bool
	)
	err := s.read(ctx, func() error {
		out, found = []im.GroupMember{}, false
		rows, err := s.db.QueryContext(ctx, s.q.membersOfGroup, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				user           sql.NullString
				role, joinedAt sql.NullInt64
			)
			if err := rows.Scan(&user, &role, &joinedAt); err != nil {
				return err
			}
			found = true
			if !user.Valid {
				continue // the group has no members
			}
			if role.Int64 < math.MinInt32 || role.Int64 > math.MaxInt32 {
				return fmt.Errorf("member %q: role %d out of range", user.String, role.Int64)
			}
			out = append(out, im.GroupMember{
				UserID:   user.String,
				Role:     im.GroupRole(role.Int64),
				JoinedAt: time.UnixMicro(joinedAt.Int64).UTC(),
			})
		}
		return rows.Err()
	})
	switch {
	case err != nil:
		return nil, wrapErr(ctx, op, err)
	case !found:
		return nil, fmt.Errorf("sqlstore: %s %q: %w", op, id, im.ErrNotFound)
	}
	return out, nil
}

// UserGroups implements im.GroupStore. A user id that no member can have
// is in no group.
func (s *Store) UserGroups(ctx context.Context, userID string) ([]string, error) {
	const op = "user groups"
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	if im.ValidateID("user id", userID) != nil {
		return []string{}, nil
	}
	var out []string
	err := s.read(ctx, func() error {
		out = []string{}
		rows, err := s.db.QueryContext(ctx, s.q.userGroups, userID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			out = append(out, id)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	return out, nil
}

// lockGroup locks group id's row until the transaction ends; ErrNotFound
// if there is none. It must be the transaction's first read: on MySQL, a
// plain read before it would fix the snapshot that later plain reads see,
// older than the changes committed while the lock was awaited.
func (s *Store) lockGroup(ctx context.Context, q querier, id string) error {
	var one int
	err := q.QueryRowContext(ctx, s.q.lockGroup, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("group %q: %w", id, im.ErrNotFound)
	}
	return err
}

// groupMembersIn returns the role of each of users who is a member of
// group id. The caller holds the group's lock: on MySQL this plain read
// comes after the locking one, so its snapshot has every change committed
// before the lock was granted.
func (s *Store) groupMembersIn(ctx context.Context, q querier, id string, users []string) (map[string]im.GroupRole, error) {
	out := make(map[string]im.GroupRole, len(users))
	if len(users) == 0 {
		return out, nil
	}
	collect := func(rows *sql.Rows, err error) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				user string
				role int64
			)
			if err := rows.Scan(&user, &role); err != nil {
				return err
			}
			out[user] = im.GroupRole(role)
		}
		return rows.Err()
	}
	if s.dialect == Postgres {
		if err := collect(q.QueryContext(ctx, s.q.pgMembersIn, id, users)); err != nil {
			return nil, err
		}
		return out, nil
	}
	for chunk := range slices.Chunk(users, maxKeysPerLookup) {
		if err := collect(q.QueryContext(ctx, s.q.membersIn(len(chunk)), idArgs(id, chunk)...)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// insertGroupMembers adds members, none of whom is a member yet, to group
// id.
func (s *Store) insertGroupMembers(ctx context.Context, q querier, id string, members []im.GroupMember) error {
	if len(members) == 0 {
		return nil
	}
	if s.dialect == Postgres {
		n := len(members)
		users, roles, joined := make([]string, n), make([]int32, n), make([]int64, n)
		for i, m := range members {
			users[i], roles[i], joined[i] = m.UserID, int32(m.Role), m.JoinedAt.UnixMicro()
		}
		_, err := q.ExecContext(ctx, s.q.pgInsertMembersOf, id, users, roles, joined)
		return err
	}
	for chunk := range slices.Chunk(members, maxRowsPerInsert) {
		args := make([]any, 0, 4*len(chunk))
		for _, m := range chunk {
			args = append(args, id, m.UserID, int64(m.Role), m.JoinedAt.UnixMicro())
		}
		if _, err := q.ExecContext(ctx, s.q.insertMembersOf(len(chunk)), args...); err != nil {
			return err
		}
	}
	return nil
}

// setGroupRole gives users, members of group id, role.
func (s *Store) setGroupRole(ctx context.Context, q querier, id string, role im.GroupRole, users []string) error {
	if len(users) == 0 {
		return nil
	}
	if s.dialect == Postgres {
		_, err := q.ExecContext(ctx, s.q.pgSetRole, int64(role), id, users)
		return err
	}
	for chunk := range slices.Chunk(users, maxKeysPerLookup) {
		args := append([]any{int64(role)}, idArgs(id, chunk)...)
		if _, err := q.ExecContext(ctx, s.q.setRole(len(chunk)), args...); err != nil {
			return err
		}
	}
	return nil
}

// deleteGroupMembers removes users from group id.
func (s *Store) deleteGroupMembers(ctx context.Context, q querier, id string, users []string) error {
	if len(users) == 0 {
		return nil
	}
	if s.dialect == Postgres {
		_, err := q.ExecContext(ctx, s.q.pgRemoveMembers, id, users)
		return err
	}
	for chunk := range slices.Chunk(users, maxKeysPerLookup) {
		if _, err := q.ExecContext(ctx, s.q.removeMembers(len(chunk)), idArgs(id, chunk)...); err != nil {
			return err
		}
	}
	return nil
}

// addMemberCount adds delta to group id's member_count.
func (s *Store) addMemberCount(ctx context.Context, q querier, id string, delta int) error {
	if delta == 0 {
		return nil
	}
	_, err := q.ExecContext(ctx, s.q.addMemberCount, int64(delta), id)
	return err
}

// idArgs returns id followed by users, as statement arguments.
func idArgs(id string, users []string) []any {
	args := make([]any, 0, 1+len(users))
	args = append(args, id)
	for _, u := range users {
		args = append(args, u)
	}
	return args
}
