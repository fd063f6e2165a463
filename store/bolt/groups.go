package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// A change to a group and the notice that reports it are one bbolt write
// transaction: the notice is logged by the same appender as
// AppendMessages, under appendMu, and the group's buckets are written in
// that transaction, so the two are committed by one fsync and a crash keeps
// both or neither. Group reads need no pending message, so they are plain
// bbolt read transactions, without memMu. A group message's MemberOf is
// checked inside the append's own transaction (checkMemberOf), which no
// group change can interleave with.

// CreateGroup implements im.GroupStore.
func (s *Store) CreateGroup(ctx context.Context, g im.Group, members []im.GroupMember, notice im.AppendRequest) (_ im.AppendResult, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return im.AppendResult{}, fmt.Errorf("bolt: create group: %w", err)
	}
	if err := im.ValidateCreateGroup(g, members, notice); err != nil {
		return im.AppendResult{}, err
	}
	r, err := s.commitGroup(ctx, g.ID, notice, func(b *groupBuckets) (int64, error) {
		if b.groups.Get([]byte(g.ID)) != nil {
			return 0, fmt.Errorf("group id taken: %w", im.ErrConflict)
		}
		g.MemberCount = len(members)
		g.Version = 1
		if err := b.putGroup(&g); err != nil {
			return 0, err
		}
		for i := range members {
			members[i].JoinSeq = b.joinSeq
			if err := b.putMember(g.ID, &members[i]); err != nil {
				return 0, err
			}
		}
		return 1, nil
	})
	if err != nil {
		return im.AppendResult{}, fmt.Errorf("bolt: create group %q: %w", g.ID, err)
	}
	return r, nil
}

// Group implements im.GroupStore.
func (s *Store) Group(ctx context.Context, id string) (_ im.Group, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return im.Group{}, fmt.Errorf("bolt: group: %w", err)
	}
	if err := im.ValidateID("group id", id); err != nil {
		return im.Group{}, err
	}
	var g im.Group
	err = s.db.View(func(tx *bbolt.Tx) error {
		groups, err := bucket(tx, bucketGroups)
		if err != nil {
			return err
		}
		g, err = readGroup(groups, id, s.strict)
		return err
	})
	if err != nil {
		return im.Group{}, fmt.Errorf("bolt: group %q: %w", id, err)
	}
	return g, nil
}

// ChangeGroup implements im.GroupStore.
func (s *Store) ChangeGroup(ctx context.Context, id string, ch im.GroupChange) (_ im.AppendResult, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return im.AppendResult{}, fmt.Errorf("bolt: change group: %w", err)
	}
	if err := im.ValidateGroupChange(id, ch); err != nil {
		return im.AppendResult{}, err
	}
	r, err := s.commitGroup(ctx, id, ch.Notice, func(b *groupBuckets) (int64, error) {
		g, err := b.readGroup(id)
		if err != nil {
			return 0, err
		}
		if ch.Version != 0 && g.Version != ch.Version {
			return 0, fmt.Errorf("at version %d, not %d: %w", g.Version, ch.Version, im.ErrConflict)
		}
		if ch.Delete {
			return 0, b.deleteGroup(id)
		}
		if err := b.change(&g, ch); err != nil {
			return 0, err
		}
		return g.Version, nil
	})
	if err != nil {
		return im.AppendResult{}, fmt.Errorf("bolt: change group %q: %w", id, err)
	}
	return r, nil
}

// change applies ch, checked against g (the stored group, at its version),
// and stores g at the next version.
func (b *groupBuckets) change(g *im.Group, ch im.GroupChange) error {
	id := g.ID
	owner := g.OwnerID
	for _, m := range ch.Put {
		if m.Role == im.RoleOwner {
			owner = m.UserID
		}
	}
	for _, u := range ch.Remove {
		if u == owner {
			return fmt.Errorf("the owner %q cannot be removed: %w", u, im.ErrInvalidArgument)
		}
	}
	if ch.Update != nil {
		u := *ch.Update
		u.OwnerID, u.CreatedAt, u.MemberCount, u.Version = g.OwnerID, g.CreatedAt, g.MemberCount, g.Version
		*g = u
	}
	for _, u := range ch.Remove {
		// A user listed twice is not a member the second time.
		if _, ok, err := b.member(id, u); err != nil {
			return err
		} else if !ok {
			continue
		}
		if err := b.deleteMember(id, u); err != nil {
			return err
		}
		g.MemberCount--
	}
	for i := range ch.Put {
		m := ch.Put[i]
		if err := b.deleteJoinRequest(id, m.UserID); err != nil {
			return err
		}
		if old, ok, err := b.member(id, m.UserID); err != nil {
			return err
		} else if ok {
			if old.Role == m.Role && old.MutedUntil.Equal(m.MutedUntil) {
				continue
			}
			m.JoinedAt, m.JoinSeq = old.JoinedAt, old.JoinSeq
		} else {
			m.JoinSeq = b.joinSeq
			g.MemberCount++
		}
		if err := b.putMember(id, &m); err != nil {
			return err
		}
	}
	if owner != g.OwnerID {
		// Exactly one owner: the previous one, unless the change gave it
		// a role, is an admin now.
		old, ok, err := b.member(id, g.OwnerID)
		if err != nil {
			return err
		}
		if ok && !slices.ContainsFunc(ch.Put, func(m im.GroupMember) bool { return m.UserID == g.OwnerID }) {
			if old.Role == im.RoleOwner {
				old.Role = im.RoleAdmin
				if err := b.putMember(id, &old); err != nil {
					return err
				}
			}
		}
		g.OwnerID = owner
	}
	if g.MemberCount < 0 {
		return corrupt("group %q: member count below zero", id)
	}
	if ch.MaxMembers > 0 && g.MemberCount > ch.MaxMembers {
		return fmt.Errorf("%d members, the limit is %d: %w", g.MemberCount, ch.MaxMembers, im.ErrLimitExceeded)
	}
	g.Version++
	return b.putGroup(g)
}

// deleteGroup removes group id, its memberships and its join requests.
func (b *groupBuckets) deleteGroup(id string) error {
	// Collected first: deleting while a cursor walks the bucket makes it
	// skip keys.
	var users, joining []string
	prefix := idKey(id, "")
	c := b.members.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		users = append(users, string(k[len(prefix):]))
	}
	for _, u := range users {
		if err := b.deleteMember(id, u); err != nil {
			return err
		}
	}
	c = b.joins.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		joining = append(joining, string(k[len(prefix):]))
	}
	for _, u := range joining {
		if err := b.deleteJoinRequest(id, u); err != nil {
			return err
		}
	}
	return b.groups.Delete([]byte(id))
}

// commitGroup runs change, which writes to the buckets of group id and
// returns the group's version after it, and logs notice (unless it is
// empty), in one write transaction under appendMu, as AppendMessages does.
// A notice stored before is ErrConflict, and nothing is written. change
// finds in b.joinSeq the seq the notice takes (the next one of the group's
// conversation), which new members join at.
func (s *Store) commitGroup(ctx context.Context, id string, notice im.AppendRequest, change func(b *groupBuckets) (int64, error)) (im.AppendResult, error) {
	hasNotice := notice.Message.ConversationID != ""
	batch := []im.AppendRequest{notice}
	results := make([]im.AppendResult, 1)
	var a appender
	if hasNotice {
		if err := s.dedup.roomFor(ctx.Done()); err != nil {
			if errors.Is(err, errDoneWaiting) {
				err = ctx.Err()
			}
			return im.AppendResult{}, err
		}
	}
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	if hasNotice {
		m := &notice.Message
		a = appender{
			d: s.dedup, pend: s.pend, maxLag: s.maxLag, startLog: s.nextLog, startTrimmed: s.trimmed, strict: s.strict,
			arena:   make([]byte, 0, len(m.SenderID)+1+len(m.ClientMsgID)+logHeaderSize(m.ConversationID, math.MaxInt64)+messageSize(m)+8+sealOverhead),
			content: make([]byte, 0, len(m.Content)),
		}
		if err := a.lookup(batch, results); err != nil {
			return im.AppendResult{}, err
		}
		if a.found[0].seq != 0 {
			return im.AppendResult{}, fmt.Errorf("notice %q: %w", m.ClientMsgID, im.ErrConflict)
		}
	}
	var version int64
	err := s.write(ctx, func(tx *bbolt.Tx) error {
		b, err := openGroupBuckets(tx, s.strict)
		if err != nil {
			return err
		}
		if b.joinSeq, err = nextSeq(tx, im.GroupConversationID(id), s.strict); err != nil {
			return err
		}
		if version, err = change(&b); err != nil || !hasNotice {
			return err
		}
		if err := a.open(tx); err != nil {
			return err
		}
		if err := a.append(0, &batch[0], &results[0]); err != nil {
			return err
		}
		return a.finish()
	}, func() {
		if hasNotice {
			a.apply()
		}
	})
	if err != nil {
		return im.AppendResult{}, err
	}
	if hasNotice {
		s.nextLog, s.trimmed = a.nextLog, a.trimmed
		s.dedup.committed(a.logged)
	}
	results[0].GroupVersion = version
	return results[0], nil
}

// checkMemberOf sets res.Err, wrapping im.ErrPermissionDenied, unless r's
// sender is a member of group r.MemberOf as tx sees it, and wrapping
// im.ErrMuted if she is muted there at the message's CreatedAt (her
// MutedUntil is after it, or the group has MuteAll and she is below an
// admin); and res's GroupVersion to the group's version.
func checkMemberOf(tx *bbolt.Tx, r *im.AppendRequest, res *im.AppendResult, strict bool) error {
	b, err := openGroupBuckets(tx, strict)
	if err != nil {
		return err
	}
	g, err := b.readGroup(r.MemberOf)
	switch {
	case errors.Is(err, im.ErrNotFound):
		res.Err = fmt.Errorf("bolt: group %q does not exist: %w", r.MemberOf, im.ErrPermissionDenied)
		return nil
	case err != nil:
		return fmt.Errorf("group %q: %w", r.MemberOf, err)
	}
	res.GroupVersion = g.Version
	m, ok, err := b.member(r.MemberOf, r.Message.SenderID)
	switch {
	case err != nil:
		return err
	case !ok:
		res.Err = fmt.Errorf("bolt: %q is not a member of group %q: %w", r.Message.SenderID, r.MemberOf, im.ErrPermissionDenied)
	case m.MutedUntil.After(r.Message.CreatedAt):
		res.Err = fmt.Errorf("bolt: %q is muted in group %q until %s: %w", r.Message.SenderID, r.MemberOf, m.MutedUntil.Format(time.RFC3339), im.ErrMuted)
	case g.MuteAll && m.Role < im.RoleAdmin:
		res.Err = fmt.Errorf("bolt: group %q is muted for all but its admins: %w", r.MemberOf, im.ErrMuted)
	}
	return nil
}

// GroupMembers implements im.GroupStore. The members come in the order of
// their ids.
func (s *Store) GroupMembers(ctx context.Context, id string) (_ im.Group, _ []im.GroupMember, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return im.Group{}, nil, fmt.Errorf("bolt: group members: %w", err)
	}
	if err := im.ValidateID("group id", id); err != nil {
		return im.Group{}, nil, err
	}
	out := []im.GroupMember{}
	var g im.Group
	err = s.db.View(func(tx *bbolt.Tx) error {
		b, err := openGroupBuckets(tx, s.strict)
		if err != nil {
			return err
		}
		if g, err = b.readGroup(id); err != nil {
			return err
		}
		prefix := idKey(id, "")
		c := b.members.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			u := string(k[len(prefix):])
			m, err := decodeMember(k, u, v, s.strict)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return im.Group{}, nil, fmt.Errorf("bolt: group members %q: %w", id, err)
	}
	return g, out, nil
}

// GroupMember implements im.GroupStore.
func (s *Store) GroupMember(ctx context.Context, id, userID string) (_ im.GroupMember, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return im.GroupMember{}, fmt.Errorf("bolt: group member: %w", err)
	}
	if im.ValidateID("group id", id) != nil || im.ValidateID("user id", userID) != nil {
		return im.GroupMember{}, fmt.Errorf("bolt: group member %q of %q: %w", userID, id, im.ErrNotFound)
	}
	var m im.GroupMember
	err = s.db.View(func(tx *bbolt.Tx) error {
		members, err := bucket(tx, bucketGroupMembers)
		if err != nil {
			return err
		}
		k := idKey(id, userID)
		v := members.Get(k)
		if v == nil {
			return im.ErrNotFound
		}
		m, err = decodeMember(k, userID, v, s.strict)
		return err
	})
	if err != nil {
		return im.GroupMember{}, fmt.Errorf("bolt: group member %q of %q: %w", userID, id, err)
	}
	return m, nil
}

// UserGroups implements im.GroupStore. The groups come in the order of
// their ids.
func (s *Store) UserGroups(ctx context.Context, userID string) (_ []string, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: user groups: %w", err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return nil, err
	}
	out := []string{}
	err = s.db.View(func(tx *bbolt.Tx) error {
		users, err := bucket(tx, bucketUserGroups)
		if err != nil {
			return err
		}
		prefix := idKey(userID, "")
		c := users.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if _, err := unsealIn(bucketUserGroups, k, v, s.strict); err != nil {
				return fmt.Errorf("membership of group %q: %w", k[len(prefix):], err)
			}
			out = append(out, string(k[len(prefix):]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: user groups: %w", err)
	}
	return out, nil
}

// groupBuckets are the buckets of the groups area in one transaction.
type groupBuckets struct {
	tx      *bbolt.Tx
	groups  *bbolt.Bucket // bucketGroups
	members *bbolt.Bucket // bucketGroupMembers
	users   *bbolt.Bucket // bucketUserGroups
	joins   *bbolt.Bucket // bucketJoinRequests
	strict  bool          // Store.strict
	// joinSeq is the JoinSeq of the members a change adds: the seq its
	// notice takes. Set by commitGroup only.
	joinSeq int64
}

// nextSeq returns the seq the next message of conversation conv takes in
// tx: one past the max seq the conversations bucket records, which every
// append commits with its messages.
func nextSeq(tx *bbolt.Tx, conv string, strict bool) (int64, error) {
	convs, err := bucket(tx, bucketConvs)
	if err != nil {
		return 0, err
	}
	v := convs.Get([]byte(conv))
	if v == nil {
		return 1, nil
	}
	seq, err := decodeMaxSeq(v, []byte(conv), strict)
	if err != nil {
		return 0, &im.CorruptError{Conversation: conv, Err: fmt.Errorf("max seq: %w", err)}
	}
	return seq + 1, nil
}

func openGroupBuckets(tx *bbolt.Tx, strict bool) (b groupBuckets, err error) {
	b.tx, b.strict = tx, strict
	if b.groups, err = bucket(tx, bucketGroups); err != nil {
		return b, err
	}
	if b.members, err = bucket(tx, bucketGroupMembers); err != nil {
		return b, err
	}
	if b.joins, err = bucket(tx, bucketJoinRequests); err != nil {
		return b, err
	}
	b.users, err = bucket(tx, bucketUserGroups)
	return b, err
}

// putMember writes m's membership of group id, under both keys. A
// MutedUntil raises the file's schema version (see schemaProfiles).
func (b *groupBuckets) putMember(id string, m *im.GroupMember) error {
	if !m.MutedUntil.IsZero() {
		if err := raiseSchema(b.tx, schemaProfiles); err != nil {
			return err
		}
	}
	k := idKey(id, m.UserID)
	if err := b.members.Put(k, seal(nil, bucketGroupMembers, k, func(b []byte) []byte { return appendGroupMember(b, m) })); err != nil {
		return err
	}
	k = idKey(m.UserID, id)
	return b.users.Put(k, seal(nil, bucketUserGroups, k, nil))
}

// putGroup writes g's record. MuteAll raises the file's schema version
// (see schemaProfiles).
func (b *groupBuckets) putGroup(g *im.Group) error {
	if g.MuteAll {
		if err := raiseSchema(b.tx, schemaProfiles); err != nil {
			return err
		}
	}
	k := []byte(g.ID)
	return b.groups.Put(k, seal(nil, bucketGroups, k, func(b []byte) []byte { return appendGroup(b, g) }))
}

func (b *groupBuckets) readGroup(id string) (im.Group, error) {
	return readGroup(b.groups, id, b.strict)
}

// member reads userID's membership of group id, if there is one.
func (b *groupBuckets) member(id, userID string) (im.GroupMember, bool, error) {
	k := idKey(id, userID)
	v := b.members.Get(k)
	if v == nil {
		return im.GroupMember{}, false, nil
	}
	m, err := decodeMember(k, userID, v, b.strict)
	return m, err == nil, err
}

// decodeMember opens and decodes the member record v under key k.
func decodeMember(k []byte, userID string, v []byte, strict bool) (im.GroupMember, error) {
	rec, err := unsealIn(bucketGroupMembers, k, v, strict)
	m := im.GroupMember{}
	if err == nil {
		m, err = decodeGroupMember(userID, rec)
	}
	if err != nil {
		return im.GroupMember{}, fmt.Errorf("member %q: %w", userID, err)
	}
	return m, nil
}

// deleteMember removes userID's membership of group id, under both keys.
func (b *groupBuckets) deleteMember(id, userID string) error {
	if err := b.members.Delete(idKey(id, userID)); err != nil {
		return err
	}
	return b.users.Delete(idKey(userID, id))
}

// readGroup returns im.ErrNotFound itself, unwrapped, when there is no
// such group. Its callers' errors name the group.
func readGroup(groups *bbolt.Bucket, id string, strict bool) (im.Group, error) {
	v := groups.Get([]byte(id))
	if v == nil {
		return im.Group{}, im.ErrNotFound
	}
	rec, err := unsealIn(bucketGroups, []byte(id), v, strict)
	g := im.Group{}
	if err == nil {
		g, err = decodeGroup(id, rec)
	}
	if err != nil {
		return im.Group{}, fmt.Errorf("group record: %w", err)
	}
	return g, nil
}

// idKey is the key first 0x00 second, or, with second empty, the prefix of
// first's keys. IDs never contain 0x00.
func idKey(first, second string) []byte {
	b := make([]byte, 0, len(first)+1+len(second))
	return append(append(append(b, first...), 0), second...)
}
