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

// Every transaction that changes a group, or the group's members, first
// locks the group's row (SQLite's writer holds the whole database anyway),
// so that the changes to one group take turns across processes: what a
// transaction reads of the members then stays true until it commits, and
// member_count and version, kept in the group's row, are changed by exactly
// the change it makes. The version check (GroupChange.Version) and the
// member limit are judged on that locked row. A group's notice is appended
// by the same transaction, through appendTx. A group message with MemberOf
// share-locks its group's row before it reads the membership (appendTx),
// so it commits entirely before or entirely after any change to the group.
// A group's members are never written without its row existing, so no
// membership outlives its group.

// CreateGroup implements im.GroupStore. The primary key on the group id
// decides between concurrent creators, in this process or another.
func (s *Store) CreateGroup(ctx context.Context, g im.Group, members []im.GroupMember, notice im.AppendRequest) (im.AppendResult, error) {
	const op = "create group"
	if err := ctx.Err(); err != nil {
		return im.AppendResult{}, wrapErr(ctx, op, err)
	}
	if err := im.ValidateCreateGroup(g, members, notice); err != nil {
		return im.AppendResult{}, err
	}
	var r im.AppendResult
	err := s.write(ctx, true, func(q querier) error {
		_, err := q.ExecContext(ctx, s.q.createGroup, g.ID, blob(g.Name), blob(g.FaceURL), blob(g.Introduction),
			blob(g.Notification), blob(g.Extra), g.OwnerID, int64(g.JoinPolicy), int64(len(members)),
			g.CreatedAt.UnixMicro(), g.UpdatedAt.UnixMicro(), int64(1), int64(g.History), g.MuteAll)
		if err != nil {
			if s.isUnique(err) {
				return fmt.Errorf("group %q exists: %w", g.ID, errGroupExists)
			}
			return err
		}
		// The notice first: its seq is the members' JoinSeq.
		if r, err = s.appendNotice(ctx, q, notice, 1); err != nil {
			return err
		}
		joinSeq, err := s.joinSeq(ctx, q, g.ID, r)
		if err != nil {
			return err
		}
		return s.insertGroupMembers(ctx, q, g.ID, members, joinSeq)
	})
	if errors.Is(err, errGroupExists) {
		err = fmt.Errorf("%w: %w", err, im.ErrConflict)
	}
	if err != nil {
		return im.AppendResult{}, wrapErr(ctx, op, err)
	}
	return r, nil
}

// errGroupExists marks a taken group id, which, unlike the unique
// violation of a dedup key raced by another process, is not retried.
var errGroupExists = errors.New("group id taken")

// appendNotice appends n, unless it is empty, in q's transaction, and
// returns its result with GroupVersion version. A notice stored before is
// ErrConflict.
func (s *Store) appendNotice(ctx context.Context, q querier, n im.AppendRequest, version int64) (im.AppendResult, error) {
	if n.Message.ConversationID == "" {
		return im.AppendResult{GroupVersion: version}, nil
	}
	results := make([]im.AppendResult, 1)
	if err := s.appendTx(ctx, q, []im.AppendRequest{n}, []int{0}, results); err != nil {
		return im.AppendResult{}, err
	}
	if results[0].Duplicate {
		return im.AppendResult{}, fmt.Errorf("notice %q: %w", n.Message.ClientMsgID, im.ErrConflict)
	}
	results[0].GroupVersion = version
	return results[0], nil
}

// joinSeq returns the JoinSeq of the members a change to group id adds, in
// q's transaction: the seq its notice took (r), or without a notice the
// seq the group's conversation gives next.
func (s *Store) joinSeq(ctx context.Context, q querier, id string, r im.AppendResult) (int64, error) {
	if r.Message.Seq > 0 {
		return r.Message.Seq, nil
	}
	var maxSeq int64
	err := q.QueryRowContext(ctx, s.q.conversation, im.GroupConversationID(id)).Scan(&maxSeq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	return maxSeq + 1, nil
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
	var g im.Group
	err := s.read(ctx, func() error {
		var err error
		g, err = scanGroup(s.db.QueryRowContext(ctx, s.q.group, id))
		return err
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return im.Group{}, fmt.Errorf("sqlstore: %s %q: %w", op, id, im.ErrNotFound)
	case err != nil:
		return im.Group{}, wrapErr(ctx, op, err)
	}
	return g, nil
}

// scanGroup reads groupCols, and then dest, from row.
func scanGroup(row interface{ Scan(...any) error }, dest ...any) (im.Group, error) {
	var (
		g                    im.Group
		policy, count        int64
		createdAt, updatedAt int64
		history              int64
	)
	cols := append([]any{&g.ID, &g.Name, &g.FaceURL, &g.Introduction, &g.Notification, &g.Extra, &g.OwnerID,
		&policy, &count, &createdAt, &updatedAt, &g.Version, &history, &g.MuteAll}, dest...)
	if err := row.Scan(cols...); err != nil {
		return im.Group{}, err
	}
	if policy < math.MinInt32 || policy > math.MaxInt32 {
		return im.Group{}, fmt.Errorf("group %q: join policy %d out of range", g.ID, policy)
	}
	if history < math.MinInt32 || history > math.MaxInt32 {
		return im.Group{}, fmt.Errorf("group %q: history %d out of range", g.ID, history)
	}
	g.JoinPolicy = im.JoinPolicy(policy)
	g.History = im.HistoryVisibility(history)
	g.MemberCount = int(count)
	g.CreatedAt = time.UnixMicro(createdAt).UTC()
	g.UpdatedAt = time.UnixMicro(updatedAt).UTC()
	return g, nil
}

// ChangeGroup implements im.GroupStore: one transaction that locks the
// group's row, checks its version, appends the notice (whose seq new
// members join at), applies the change, checks the member count against
// ch.MaxMembers, and stores the count, owner and next version.
func (s *Store) ChangeGroup(ctx context.Context, id string, ch im.GroupChange) (im.AppendResult, error) {
	const op = "change group"
	if err := ctx.Err(); err != nil {
		return im.AppendResult{}, wrapErr(ctx, op, err)
	}
	if err := im.ValidateGroupChange(id, ch); err != nil {
		return im.AppendResult{}, err
	}
	var r im.AppendResult
	err := s.write(ctx, true, func(q querier) error {
		var (
			version, count int64
			owner          string
		)
		err := q.QueryRowContext(ctx, s.q.lockGroup, id).Scan(&version, &owner, &count)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("group %q: %w", id, im.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if ch.Version != 0 && version != ch.Version {
			return fmt.Errorf("group %q is at version %d, not %d: %w", id, version, ch.Version, im.ErrConflict)
		}
		if ch.Delete {
			if _, err := q.ExecContext(ctx, s.q.deleteGroup, id); err != nil {
				return err
			}
			if _, err := q.ExecContext(ctx, s.q.deleteAllMembers, id); err != nil {
				return err
			}
			if _, err := q.ExecContext(ctx, s.q.joins.dropAll, id); err != nil {
				return err
			}
			r, err = s.appendNotice(ctx, q, ch.Notice, 0)
			return err
		}
		// The notice first, so that new members join at its seq; an
		// error later rolls it back with the rest.
		if r, err = s.appendNotice(ctx, q, ch.Notice, version+1); err != nil {
			return err
		}
		joinSeq, err := s.joinSeq(ctx, q, id, r)
		if err != nil {
			return err
		}
		if count, owner, err = s.changeMembers(ctx, q, id, ch, count, owner, joinSeq); err != nil {
			return err
		}
		if err := s.dropJoinRequests(ctx, q, id, ch.Put); err != nil {
			return err
		}
		if ch.MaxMembers > 0 && count > int64(ch.MaxMembers) {
			return fmt.Errorf("group %q would have %d members, the limit is %d: %w", id, count, ch.MaxMembers, im.ErrLimitExceeded)
		}
		if u := ch.Update; u != nil {
			if _, err := q.ExecContext(ctx, s.q.updateGroup, blob(u.Name), blob(u.FaceURL), blob(u.Introduction),
				blob(u.Notification), blob(u.Extra), int64(u.JoinPolicy), int64(u.History), u.MuteAll, u.UpdatedAt.UnixMicro(), id); err != nil {
				return err
			}
		}
		_, err = q.ExecContext(ctx, s.q.storeGroupCount, count, owner, id)
		return err
	})
	if err != nil {
		return im.AppendResult{}, wrapErr(ctx, op, err)
	}
	return r, nil
}

// changeMembers applies ch's Remove and Put to group id, whose row q has
// locked, with count members and owner owner, and returns the count and
// owner after them. It reads which of the users are members already,
// inserts the others (at joinSeq) and sets the role and muted_until of
// those whose role or mute changes, keeping their joined_at and join_seq;
// it deletes only the rows
// that exist, which keeps MySQL from locking the gaps where the others
// would be.
func (s *Store) changeMembers(ctx context.Context, q querier, id string, ch im.GroupChange, count int64, owner string, joinSeq int64) (int64, string, error) {
	newOwner := owner
	for _, m := range ch.Put {
		if m.Role == im.RoleOwner { // at most one, by validation
			newOwner = m.UserID
		}
	}
	if slices.Contains(ch.Remove, newOwner) {
		return 0, "", fmt.Errorf("group %q: the owner %q cannot be removed: %w", id, newOwner, im.ErrInvalidArgument)
	}
	users := uniq(ch.Remove)
	for _, m := range ch.Put {
		users = append(users, m.UserID)
	}
	if newOwner != owner {
		users = append(users, owner)
	}
	stored, err := s.groupMembersIn(ctx, q, id, users)
	if err != nil {
		return 0, "", err
	}
	gone := make([]string, 0, len(ch.Remove))
	for _, u := range uniq(ch.Remove) {
		if _, ok := stored[u]; ok {
			gone = append(gone, u)
		}
	}
	if err := s.deleteGroupMembers(ctx, q, id, gone); err != nil {
		return 0, "", err
	}
	var (
		fresh   []im.GroupMember
		changed = make(map[memberState][]string)
		order   []memberState // of changed's keys, for a deterministic run
	)
	change := func(st memberState, user string) {
		if _, ok := changed[st]; !ok {
			order = append(order, st)
		}
		changed[st] = append(changed[st], user)
	}
	for _, m := range ch.Put {
		old, ok := stored[m.UserID]
		st := memberState{m.Role, microsOrZero(m.MutedUntil)}
		switch {
		case !ok:
			fresh = append(fresh, m)
		case old != st:
			change(st, m.UserID)
		}
	}
	if newOwner != owner && !slices.ContainsFunc(ch.Put, func(m im.GroupMember) bool { return m.UserID == owner }) {
		// Exactly one owner: the previous one is an admin now.
		if old := stored[owner]; old.role == im.RoleOwner {
			change(memberState{im.RoleAdmin, old.mutedUntil}, owner)
		}
	}
	if err := s.insertGroupMembers(ctx, q, id, fresh, joinSeq); err != nil {
		return 0, "", err
	}
	for _, st := range order {
		if err := s.setGroupRole(ctx, q, id, st, changed[st]); err != nil {
			return 0, "", err
		}
	}
	return count - int64(len(gone)) + int64(len(fresh)), newOwner, nil
}

// GroupMembers implements im.GroupStore. The group and its members are
// read by one statement, so from one snapshot. An id that no group can
// have is not found.
func (s *Store) GroupMembers(ctx context.Context, id string) (im.Group, []im.GroupMember, error) {
	const op = "group members"
	if err := ctx.Err(); err != nil {
		return im.Group{}, nil, wrapErr(ctx, op, err)
	}
	if im.ValidateID("group id", id) != nil {
		return im.Group{}, nil, fmt.Errorf("sqlstore: %s %q: %w", op, id, im.ErrNotFound)
	}
	var (
		out   []im.GroupMember
		g     im.Group
		found bool
	)
	err := s.read(ctx, func() error {
		out, found = []im.GroupMember{}, false
		rows, err := s.db.QueryContext(ctx, s.q.groupAndMembers, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				user                                sql.NullString
				role, joinedAt, joinSeq, mutedUntil sql.NullInt64
			)
			if g, err = scanGroup(rows, &user, &role, &joinedAt, &joinSeq, &mutedUntil); err != nil {
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
				UserID:     user.String,
				Role:       im.GroupRole(role.Int64),
				JoinedAt:   time.UnixMicro(joinedAt.Int64).UTC(),
				JoinSeq:    joinSeq.Int64,
				MutedUntil: timeOrZero(mutedUntil.Int64),
			})
		}
		return rows.Err()
	})
	switch {
	case err != nil:
		return im.Group{}, nil, wrapErr(ctx, op, err)
	case !found:
		return im.Group{}, nil, fmt.Errorf("sqlstore: %s %q: %w", op, id, im.ErrNotFound)
	}
	g.MemberCount = len(out)
	return g, out, nil
}

// GroupMember implements im.GroupStore.
func (s *Store) GroupMember(ctx context.Context, id, userID string) (im.GroupMember, error) {
	const op = "group member"
	if err := ctx.Err(); err != nil {
		return im.GroupMember{}, wrapErr(ctx, op, err)
	}
	notFound := fmt.Errorf("sqlstore: %s %q of %q: %w", op, userID, id, im.ErrNotFound)
	if im.ValidateID("group id", id) != nil || im.ValidateID("user id", userID) != nil {
		return im.GroupMember{}, notFound
	}
	m := im.GroupMember{UserID: userID}
	err := s.read(ctx, func() error {
		var role, joinedAt, mutedUntil int64
		if err := s.db.QueryRowContext(ctx, s.q.groupMember, id, userID).Scan(&role, &joinedAt, &m.JoinSeq, &mutedUntil); err != nil {
			return err
		}
		m.MutedUntil = timeOrZero(mutedUntil)
		if role < math.MinInt32 || role > math.MaxInt32 {
			return fmt.Errorf("member %q: role %d out of range", userID, role)
		}
		m.Role, m.JoinedAt = im.GroupRole(role), time.UnixMicro(joinedAt).UTC()
		return nil
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return im.GroupMember{}, notFound
	case err != nil:
		return im.GroupMember{}, wrapErr(ctx, op, err)
	}
	return m, nil
}

// checkMemberOf refuses, by setting their results' Err, the requests
// among idx whose sender is not a member of their MemberOf group, or is
// muted there (im.ErrMuted), and sets the GroupVersion of every one. It
// share-locks the groups' rows first (in id order), so that no change to
// them commits before this transaction does, reading their mute_all, then
// reads the memberships with each member's role and muted_until: two
// statements for the whole batch.
func (s *Store) checkMemberOf(ctx context.Context, q querier, batch []im.AppendRequest, idx []int, results []im.AppendResult) error {
	var (
		groups []string
		pairs  [][2]string
	)
	seenGroup := make(map[string]bool)
	seenPair := make(map[[2]string]bool)
	for _, i := range idx {
		r := &batch[i]
		if r.MemberOf == "" {
			continue
		}
		if !seenGroup[r.MemberOf] {
			seenGroup[r.MemberOf] = true
			groups = append(groups, r.MemberOf)
		}
		p := [2]string{r.MemberOf, r.Message.SenderID}
		if !seenPair[p] {
			seenPair[p] = true
			pairs = append(pairs, p)
		}
	}
	if len(groups) == 0 {
		return nil
	}
	slices.Sort(groups)
	type groupState struct {
		version int64
		muteAll bool
	}
	versions := make(map[string]groupState, len(groups))
	member := make(map[[2]string]memberState, len(pairs))
	collectVersions := func(rows *sql.Rows, err error) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id string
				g  groupState
			)
			if err := rows.Scan(&id, &g.version, &g.muteAll); err != nil {
				return err
			}
			versions[id] = g
		}
		return rows.Err()
	}
	collectMembers := func(rows *sql.Rows, err error) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				p    [2]string
				m    memberState
				role int64
			)
			if err := rows.Scan(&p[0], &p[1], &role, &m.mutedUntil); err != nil {
				return err
			}
			m.role = im.GroupRole(role)
			member[p] = m
		}
		return rows.Err()
	}
	if s.dialect == Postgres {
		if err := collectVersions(q.QueryContext(ctx, s.q.pgShareGroups, groups)); err != nil {
			return err
		}
		gs, us := make([]string, len(pairs)), make([]string, len(pairs))
		for i, p := range pairs {
			gs[i], us[i] = p[0], p[1]
		}
		if err := collectMembers(q.QueryContext(ctx, s.q.pgMembersOf, gs, us)); err != nil {
			return err
		}
	} else {
		for chunk := range slices.Chunk(groups, maxKeysPerLookup) {
			args := make([]any, len(chunk))
			for i, g := range chunk {
				args[i] = g
			}
			if err := collectVersions(q.QueryContext(ctx, s.q.shareGroups(len(chunk)), args...)); err != nil {
				return err
			}
		}
		for chunk := range slices.Chunk(pairs, maxKeysPerLookup/2) {
			args := make([]any, 0, 2*len(chunk))
			for _, p := range chunk {
				args = append(args, p[0], p[1])
			}
			if err := collectMembers(q.QueryContext(ctx, s.q.membersOf(len(chunk)), args...)); err != nil {
				return err
			}
		}
	}
	for _, i := range idx {
		r := &batch[i]
		if r.MemberOf == "" {
			continue
		}
		g, ok := versions[r.MemberOf]
		results[i].GroupVersion = g.version
		m, isMember := member[[2]string{r.MemberOf, r.Message.SenderID}]
		switch {
		case !ok:
			results[i].Err = fmt.Errorf("sqlstore: group %q does not exist: %w", r.MemberOf, im.ErrPermissionDenied)
		case !isMember:
			results[i].Err = fmt.Errorf("sqlstore: %q is not a member of group %q: %w", r.Message.SenderID, r.MemberOf, im.ErrPermissionDenied)
		case m.mutedUntil != 0 && m.mutedUntil > r.Message.CreatedAt.UnixMicro():
			results[i].Err = fmt.Errorf("sqlstore: %q is muted in group %q until %v: %w", r.Message.SenderID, r.MemberOf, timeOrZero(m.mutedUntil), im.ErrMuted)
		case g.muteAll && m.role < im.RoleAdmin:
			results[i].Err = fmt.Errorf("sqlstore: group %q is muted for all but its admins: %w", r.MemberOf, im.ErrMuted)
		}
	}
	return nil
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

// memberState is what a change or an append needs of a membership.
type memberState struct {
	role       im.GroupRole
	mutedUntil int64 // unix microseconds, 0 for not muted
}

// groupMembersIn returns the role and mute of each of users who is a
// member of group id. The caller holds the group's lock: on MySQL this plain read
// comes after the locking one, so its snapshot has every change committed
// before the lock was granted.
func (s *Store) groupMembersIn(ctx context.Context, q querier, id string, users []string) (map[string]memberState, error) {
	out := make(map[string]memberState, len(users))
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
				st   memberState
			)
			if err := rows.Scan(&user, &role, &st.mutedUntil); err != nil {
				return err
			}
			st.role = im.GroupRole(role)
			out[user] = st
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
// id, joining at joinSeq.
func (s *Store) insertGroupMembers(ctx context.Context, q querier, id string, members []im.GroupMember, joinSeq int64) error {
	if len(members) == 0 {
		return nil
	}
	if s.dialect == Postgres {
		n := len(members)
		users, roles, joined, muted := make([]string, n), make([]int32, n), make([]int64, n), make([]int64, n)
		for i, m := range members {
			users[i], roles[i], joined[i], muted[i] = m.UserID, int32(m.Role), m.JoinedAt.UnixMicro(), microsOrZero(m.MutedUntil)
		}
		_, err := q.ExecContext(ctx, s.q.pgInsertMembersOf, id, users, roles, joined, muted, joinSeq)
		return err
	}
	for chunk := range slices.Chunk(members, maxRowsPerInsert) {
		args := make([]any, 0, 6*len(chunk))
		for _, m := range chunk {
			args = append(args, id, m.UserID, int64(m.Role), m.JoinedAt.UnixMicro(), microsOrZero(m.MutedUntil), joinSeq)
		}
		if _, err := q.ExecContext(ctx, s.q.insertMembersOf(len(chunk)), args...); err != nil {
			return err
		}
	}
	return nil
}

// setGroupRole gives users, members of group id, st's role and mute.
func (s *Store) setGroupRole(ctx context.Context, q querier, id string, st memberState, users []string) error {
	if len(users) == 0 {
		return nil
	}
	if s.dialect == Postgres {
		_, err := q.ExecContext(ctx, s.q.pgSetRole, int64(st.role), st.mutedUntil, id, users)
		return err
	}
	for chunk := range slices.Chunk(users, maxKeysPerLookup) {
		args := append([]any{int64(st.role), st.mutedUntil}, idArgs(id, chunk)...)
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

// idArgs returns id followed by users, as statement arguments.
func idArgs(id string, users []string) []any {
	args := make([]any, 0, 1+len(users))
	args = append(args, id)
	for _, u := range users {
		args = append(args, u)
	}
	return args
}
