package bolt

import (
	"bytes"
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// Groups share nothing with the pending messages, so, like accounts, they
// are read and written in plain bbolt transactions, without memMu. Each
// write is one Update: bbolt's writer lock makes it atomic against every
// other write, appends included.

// CreateGroup implements im.GroupStore.
func (s *Store) CreateGroup(ctx context.Context, g im.Group, members []im.GroupMember) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: create group: %w", err)
	}
	if err := im.ValidateGroup(g); err != nil {
		return err
	}
	if err := im.ValidateGroupMembers(members); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := openGroupBuckets(tx)
		if err != nil {
			return err
		}
		if b.groups.Get([]byte(g.ID)) != nil {
			return fmt.Errorf("group id taken: %w", im.ErrConflict)
		}
		g.MemberCount = len(members)
		if err := b.groups.Put([]byte(g.ID), appendGroup(nil, &g)); err != nil {
			return err
		}
		for i := range members {
			if err := b.putMember(g.ID, &members[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: create group %q: %w", g.ID, err)
	}
	return nil
}

// Group implements im.GroupStore.
func (s *Store) Group(ctx context.Context, id string) (im.Group, error) {
	if err := ctx.Err(); err != nil {
		return im.Group{}, fmt.Errorf("bolt: group: %w", err)
	}
	if err := im.ValidateID("group id", id); err != nil {
		return im.Group{}, err
	}
	var g im.Group
	err := s.db.View(func(tx *bbolt.Tx) error {
		groups, err := bucket(tx, bucketGroups)
		if err != nil {
			return err
		}
		g, err = readGroup(groups, id)
		return err
	})
	if err != nil {
		return im.Group{}, fmt.Errorf("bolt: group %q: %w", id, err)
	}
	return g, nil
}

// UpdateGroup implements im.GroupStore.
func (s *Store) UpdateGroup(ctx context.Context, g im.Group) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: update group: %w", err)
	}
	if err := im.ValidateGroup(g); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		groups, err := bucket(tx, bucketGroups)
		if err != nil {
			return err
		}
		old, err := readGroup(groups, g.ID)
		if err != nil {
			return err
		}
		g.CreatedAt, g.MemberCount = old.CreatedAt, old.MemberCount
		return groups.Put([]byte(g.ID), appendGroup(nil, &g))
	})
	if err != nil {
		return fmt.Errorf("bolt: update group %q: %w", g.ID, err)
	}
	return nil
}

// DeleteGroup implements im.GroupStore.
func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: delete group: %w", err)
	}
	if err := im.ValidateID("group id", id); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := openGroupBuckets(tx)
		if err != nil {
			return err
		}
		if b.groups.Get([]byte(id)) == nil {
			return im.ErrNotFound
		}
		// Collected first: deleting while a cursor walks the bucket makes
		// it skip keys.
		var users []string
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
		return b.groups.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("bolt: delete group %q: %w", id, err)
	}
	return nil
}

// PutGroupMembers implements im.GroupStore.
func (s *Store) PutGroupMembers(ctx context.Context, id string, members []im.GroupMember) error {
	if err := im.ValidateGroupMembers(members); err != nil {
		return err
	}
	return s.changeMembers(ctx, "put group members", id, len(members), func(b *groupBuckets, g *im.Group) (int, error) {
		added := 0
		for i := range members {
			m := members[i]
			if m.Role == im.RoleOwner {
				g.OwnerID = m.UserID
			}
			if v := b.members.Get(idKey(id, m.UserID)); v != nil {
				old, err := decodeGroupMember(m.UserID, v)
				if err != nil {
					return 0, fmt.Errorf("member %q: %w", m.UserID, err)
				}
				if old.Role == m.Role {
					continue
				}
				m.JoinedAt = old.JoinedAt
			} else {
				added++
			}
			if err := b.putMember(id, &m); err != nil {
				return 0, err
			}
		}
		return added, nil
	})
}

// RemoveGroupMembers implements im.GroupStore.
func (s *Store) RemoveGroupMembers(ctx context.Context, id string, userIDs []string) error {
	for _, u := range userIDs {
		if err := im.ValidateID("member id", u); err != nil {
			return err
		}
	}
	return s.changeMembers(ctx, "remove group members", id, len(userIDs), func(b *groupBuckets, _ *im.Group) (int, error) {
		removed := 0
		for _, u := range userIDs {
			// A user listed twice is not a member the second time.
			if b.members.Get(idKey(id, u)) == nil {
				continue
			}
			if err := b.deleteMember(id, u); err != nil {
				return 0, err
			}
			removed--
		}
		return removed, nil
	})
}

// changeMembers runs change, which alters n memberships of group id (and
// may change the group g) and returns by how many the member count changes,
// in one write transaction that also stores the group. With n == 0 it only
// checks that the group exists, without a write transaction and its fsync.
func (s *Store) changeMembers(ctx context.Context, op, id string, n int, change func(b *groupBuckets, g *im.Group) (int, error)) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	if err := im.ValidateID("group id", id); err != nil {
		return err
	}
	if n == 0 {
		return s.groupExists(op, id)
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := openGroupBuckets(tx)
		if err != nil {
			return err
		}
		g, err := readGroup(b.groups, id)
		if err != nil {
			return err
		}
		owner := g.OwnerID
		delta, err := change(&b, &g)
		if err != nil || (delta == 0 && g.OwnerID == owner) {
			return err
		}
		if g.MemberCount+delta < 0 {
			return corrupt("group %q: member count %d, but %d members removed", id, g.MemberCount, -delta)
		}
		g.MemberCount += delta
		return b.groups.Put([]byte(id), appendGroup(nil, &g))
	})
	if err != nil {
		return fmt.Errorf("bolt: %s %q: %w", op, id, err)
	}
	return nil
}

// GroupMembers implements im.GroupStore. The members come in the order of
// their ids.
func (s *Store) GroupMembers(ctx context.Context, id string) ([]im.GroupMember, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: group members: %w", err)
	}
	if err := im.ValidateID("group id", id); err != nil {
		return nil, err
	}
	out := []im.GroupMember{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		b, err := openGroupBuckets(tx)
		if err != nil {
			return err
		}
		if b.groups.Get([]byte(id)) == nil {
			return im.ErrNotFound
		}
		prefix := idKey(id, "")
		c := b.members.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			u := string(k[len(prefix):])
			m, err := decodeGroupMember(u, v)
			if err != nil {
				return fmt.Errorf("member %q: %w", u, err)
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: group members %q: %w", id, err)
	}
	return out, nil
}

// UserGroups implements im.GroupStore. The groups come in the order of
// their ids.
func (s *Store) UserGroups(ctx context.Context, userID string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: user groups: %w", err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return nil, err
	}
	out := []string{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		users, err := bucket(tx, bucketUserGroups)
		if err != nil {
			return err
		}
		prefix := idKey(userID, "")
		c := users.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			out = append(out, string(k[len(prefix):]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: user groups: %w", err)
	}
	return out, nil
}

// groupExists is the whole of a call that has nothing to write: it fails
// as that call would, without a write transaction and its fsync.
func (s *Store) groupExists(op, id string) error {
	err := s.db.View(func(tx *bbolt.Tx) error {
		groups, err := bucket(tx, bucketGroups)
		if err != nil {
			return err
		}
		if groups.Get([]byte(id)) == nil {
			return im.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: %s %q: %w", op, id, err)
	}
	return nil
}

// groupBuckets are the buckets of the groups area in one transaction.
type groupBuckets struct {
	groups  *bbolt.Bucket // bucketGroups
	members *bbolt.Bucket // bucketGroupMembers
	users   *bbolt.Bucket // bucketUserGroups
}

func openGroupBuckets(tx *bbolt.Tx) (b groupBuckets, err error) {
	if b.groups, err = bucket(tx, bucketGroups); err != nil {
		return b, err
	}
	if b.members, err = bucket(tx, bucketGroupMembers); err != nil {
		return b, err
	}
	b.users, err = bucket(tx, bucketUserGroups)
	return b, err
}

// putMember writes m's membership of group id, under both keys.
func (b *groupBuckets) putMember(id string, m *im.GroupMember) error {
	if err := b.members.Put(idKey(id, m.UserID), appendGroupMember(nil, m)); err != nil {
		return err
	}
	return b.users.Put(idKey(m.UserID, id), []byte{})
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
func readGroup(groups *bbolt.Bucket, id string) (im.Group, error) {
	v := groups.Get([]byte(id))
	if v == nil {
		return im.Group{}, im.ErrNotFound
	}
	g, err := decodeGroup(id, v)
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
