package bolt

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"runtime/debug"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// bucketJoinRequests: group id 0x00 UserID → a note record (codec.go)
// with the request's CreatedAt and message, so that a group's requests
// are one prefix scan, which also counts them (at most about
// im.MaxGroupJoinRequests). ChangeGroup removes a request of a user it
// puts, and all of a group it deletes, in its own transaction. The first
// request raises the file's schema version (schemaProfiles), since the
// group changes of older versions of this package would leave requests
// behind. The bucket is younger than sealing: every record in it is
// sealed.
const bucketJoinRequests = "groupJoinRequests"

var _ im.GroupJoinRequestStore = (*Store)(nil)

// PutJoinRequest implements im.GroupJoinRequestStore: the group and the
// membership are read, and the request written and counted, in one write
// transaction.
func (s *Store) PutJoinRequest(ctx context.Context, r im.GroupJoinRequest) (_ int, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("bolt: put join request: %w", err)
	}
	if err := validJoinIDs(r.GroupID, r.UserID); err != nil {
		return 0, err
	}
	if err := im.ValidateFriendText("message", r.Message, im.MaxFriendMessageLen); err != nil {
		return 0, err
	}
	var n int
	err = s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := openGroupBuckets(tx, s.strict)
		if err != nil {
			return err
		}
		if b.groups.Get([]byte(r.GroupID)) == nil {
			return fmt.Errorf("no such group: %w", im.ErrNotFound)
		}
		if _, ok, err := b.member(r.GroupID, r.UserID); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("a member already: %w", im.ErrConflict)
		}
		if err := raiseSchema(tx, schemaProfiles); err != nil {
			return err
		}
		k := idKey(r.GroupID, r.UserID)
		if err := b.joins.Put(k, seal(nil, bucketJoinRequests, k, func(b []byte) []byte { return appendNote(b, r.CreatedAt, r.Message) })); err != nil {
			return err
		}
		return scanPrefix(b.joins, r.GroupID, func(string, []byte, []byte) error {
			n++
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: put join request of %q to %q: %w", r.UserID, r.GroupID, err)
	}
	return n, nil
}

// JoinRequests implements im.GroupJoinRequestStore with a prefix scan.
func (s *Store) JoinRequests(ctx context.Context, groupID string) (_ []im.GroupJoinRequest, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: join requests: %w", err)
	}
	if err := im.ValidateID("group id", groupID); err != nil {
		return nil, err
	}
	out := []im.GroupJoinRequest{}
	err = s.db.View(func(tx *bbolt.Tx) error {
		joins, err := bucket(tx, bucketJoinRequests)
		if err != nil {
			return err
		}
		return scanPrefix(joins, groupID, func(user string, k, v []byte) error {
			r, err := openJoinRequest(k, v, groupID, user)
			if err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: join requests to %q: %w", groupID, err)
	}
	slices.SortFunc(out, func(a, b im.GroupJoinRequest) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.UserID, b.UserID))
	})
	return out, nil
}

// JoinRequest implements im.GroupJoinRequestStore.
func (s *Store) JoinRequest(ctx context.Context, groupID, userID string) (_ im.GroupJoinRequest, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return im.GroupJoinRequest{}, fmt.Errorf("bolt: join request: %w", err)
	}
	if err := validJoinIDs(groupID, userID); err != nil {
		return im.GroupJoinRequest{}, err
	}
	var r im.GroupJoinRequest
	err = s.db.View(func(tx *bbolt.Tx) error {
		joins, err := bucket(tx, bucketJoinRequests)
		if err != nil {
			return err
		}
		k := idKey(groupID, userID)
		v := joins.Get(k)
		if v == nil {
			return im.ErrNotFound
		}
		r, err = openJoinRequest(k, v, groupID, userID)
		return err
	})
	if err != nil {
		return im.GroupJoinRequest{}, fmt.Errorf("bolt: join request of %q to %q: %w", userID, groupID, err)
	}
	return r, nil
}

// DeleteJoinRequest implements im.GroupJoinRequestStore.
func (s *Store) DeleteJoinRequest(ctx context.Context, groupID, userID string) (err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: delete join request: %w", err)
	}
	if err := validJoinIDs(groupID, userID); err != nil {
		return err
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		joins, err := bucket(tx, bucketJoinRequests)
		if err != nil {
			return err
		}
		k := idKey(groupID, userID)
		if joins.Get(k) == nil {
			return im.ErrNotFound
		}
		return joins.Delete(k)
	})
	if err != nil {
		return fmt.Errorf("bolt: delete join request of %q to %q: %w", userID, groupID, err)
	}
	return nil
}

func validJoinIDs(groupID, userID string) error {
	if err := im.ValidateID("group id", groupID); err != nil {
		return err
	}
	return im.ValidateID("user id", userID)
}

// deleteJoinRequest removes userID's request to join group id, if any.
func (b *groupBuckets) deleteJoinRequest(id, userID string) error {
	return b.joins.Delete(idKey(id, userID))
}

func openJoinRequest(k, v []byte, groupID, userID string) (im.GroupJoinRequest, error) {
	rec, err := unsealIn(bucketJoinRequests, k, v, true)
	if err == nil {
		r := im.GroupJoinRequest{GroupID: groupID, UserID: userID}
		if r.CreatedAt, r.Message, err = decodeNote(rec); err == nil {
			return r, nil
		}
	}
	return im.GroupJoinRequest{}, fmt.Errorf("join request %q: %w", k, err)
}

// checkJoinRequests checks each join request: sound, in a file of schema
// version schemaProfiles, of a group that exists and a user who is not
// its member.
func (c *checker) checkJoinRequests(ctx context.Context) error {
	groups, members := c.tx.Bucket([]byte(bucketGroups)), c.tx.Bucket([]byte(bucketGroupMembers))
	return c.tx.Bucket([]byte(bucketJoinRequests)).ForEach(func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		group, user, ok := bytes.Cut(k, []byte{0})
		if !ok || validJoinIDs(string(group), string(user)) != nil {
			c.problem("join request key %q names no group and user", k)
			return nil
		}
		if _, err := openJoinRequest(k, v, string(group), string(user)); err != nil {
			c.problem("%v", err)
		}
		switch {
		case c.version < schemaProfiles:
			c.problem("join request %q in a file of schema version %d", k, c.version)
		case groups.Get(group) == nil:
			c.problem("join request of %q to %q, a group that does not exist", user, group)
		case members.Get(k) != nil:
			c.problem("join request of %q to %q, who is a member", user, group)
		}
		return nil
	})
}
