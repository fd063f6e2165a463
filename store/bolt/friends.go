package bolt

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/imserver/imserver/im"
)

// Friendships, friend requests and blocks (im.FriendStore) are five
// buckets, made by Open, which older versions of this package ignore. Each
// pair's records are keyed first id 0x00 second id (ids never contain
// 0x00), so that one user's are a prefix scan:
//
//   - bucketFriends: UserID 0x00 FriendID → a note record (codec.go) with
//     CreatedAt and UserID's remark; a friendship is both keys, each with
//     its own remark;
//   - bucketFriendRequests: From 0x00 To → a note record with CreatedAt
//     and the message; bucketFriendRequestsTo: To 0x00 From → an empty
//     sealed record, so that a user's incoming requests are a prefix scan
//     too;
//   - bucketBlocks: BlockerID 0x00 BlockedID → a note record with
//     CreatedAt; bucketBlockedBy: BlockedID 0x00 BlockerID → an empty
//     sealed record, so that RemoveUserRelations finds the blocks of her
//     too.
//
// Each change is one write transaction, which reads what it judges by and
// writes, and bbolt runs one writer at a time: two users who ask each
// other at once are two transactions, and the second finds the first's
// request and accepts it. A block removes the friendship and the requests
// in its own transaction, and a request or an acceptance is refused, or
// finds no request, after a block: so a block never coexists with either,
// which Check verifies. Reads are one read transaction each. All five
// buckets are younger than sealing: every record in them is sealed.
const (
	bucketFriends          = "friends"
	bucketFriendRequests   = "friendRequests"
	bucketFriendRequestsTo = "friendRequestsTo"
	bucketBlocks           = "blocks"
	bucketBlockedBy        = "blockedBy"
)

var _ im.FriendStore = (*Store)(nil)

// RequestFriend implements im.FriendStore.
func (s *Store) RequestFriend(ctx context.Context, r im.FriendRequest) (_ im.FriendOutcome, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("bolt: request friend: %w", err)
	}
	if err := im.ValidateFriendPair(r.From, r.To); err != nil {
		return 0, err
	}
	if err := im.ValidateFriendText("message", r.Message, im.MaxFriendMessageLen); err != nil {
		return 0, err
	}
	var out im.FriendOutcome
	err = s.friendWrite(ctx, func(b *friendBuckets) error {
		if blocked, err := b.blockedEither(r.From, r.To); err != nil {
			return err
		} else if blocked {
			return fmt.Errorf("a block stands between %q and %q: %w", r.From, r.To, im.ErrPermissionDenied)
		}
		if _, ok, err := b.friend(r.From, r.To); err != nil {
			return err
		} else if ok {
			out = im.FriendAlready
			return errNoWrite
		}
		if _, ok, err := b.request(r.To, r.From); err != nil {
			return err
		} else if ok {
			out = im.FriendAccepted
			return b.befriend(r.From, r.To, r.CreatedAt)
		}
		out = im.FriendRequested
		return b.putRequest(&r)
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: request friend %q of %q: %w", r.To, r.From, err)
	}
	return out, nil
}

// AcceptFriend implements im.FriendStore.
func (s *Store) AcceptFriend(ctx context.Context, userID, fromID string, at time.Time) (_ im.Friend, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return im.Friend{}, fmt.Errorf("bolt: accept friend: %w", err)
	}
	if err := im.ValidateFriendPair(userID, fromID); err != nil {
		return im.Friend{}, err
	}
	err = s.friendWrite(ctx, func(b *friendBuckets) error {
		if _, ok, err := b.request(fromID, userID); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("no request: %w", im.ErrNotFound)
		}
		return b.befriend(userID, fromID, at)
	})
	if err != nil {
		return im.Friend{}, fmt.Errorf("bolt: accept friend %q of %q: %w", fromID, userID, err)
	}
	return im.Friend{UserID: userID, FriendID: fromID, CreatedAt: storedTime(at)}, nil
}

// RejectFriend implements im.FriendStore.
func (s *Store) RejectFriend(ctx context.Context, userID, fromID string) error {
	return s.dropRequest(ctx, "reject friend", fromID, userID)
}

// CancelFriendRequest implements im.FriendStore.
func (s *Store) CancelFriendRequest(ctx context.Context, userID, toID string) error {
	return s.dropRequest(ctx, "cancel friend request", userID, toID)
}

// dropRequest removes from's request to to; ErrNotFound if there is none.
func (s *Store) dropRequest(ctx context.Context, op, from, to string) (err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: %s: %w", op, err)
	}
	if err := im.ValidateFriendPair(from, to); err != nil {
		return err
	}
	err = s.friendWrite(ctx, func(b *friendBuckets) error {
		if ok, err := b.deleteRequest(from, to); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("no request: %w", im.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: %s from %q to %q: %w", op, from, to, err)
	}
	return nil
}

// DeleteFriend implements im.FriendStore.
func (s *Store) DeleteFriend(ctx context.Context, userID, friendID string) (err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: delete friend: %w", err)
	}
	if err := im.ValidateFriendPair(userID, friendID); err != nil {
		return err
	}
	err = s.friendWrite(ctx, func(b *friendBuckets) error {
		if _, ok, err := b.friend(userID, friendID); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("not friends: %w", im.ErrNotFound)
		}
		return b.unfriend(userID, friendID)
	})
	if err != nil {
		return fmt.Errorf("bolt: delete friend %q of %q: %w", friendID, userID, err)
	}
	return nil
}

// SetFriendRemark implements im.FriendStore.
func (s *Store) SetFriendRemark(ctx context.Context, userID, friendID, remark string) (_ im.Friend, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return im.Friend{}, fmt.Errorf("bolt: set friend remark: %w", err)
	}
	if err := im.ValidateFriendPair(userID, friendID); err != nil {
		return im.Friend{}, err
	}
	if err := im.ValidateFriendText("remark", remark, im.MaxFriendRemarkLen); err != nil {
		return im.Friend{}, err
	}
	var f im.Friend
	err = s.friendWrite(ctx, func(b *friendBuckets) error {
		var ok bool
		var err error
		if f, ok, err = b.friend(userID, friendID); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("not friends: %w", im.ErrNotFound)
		}
		if f.Remark == remark {
			return errNoWrite
		}
		f.Remark = remark
		return b.putFriend(&f)
	})
	if err != nil {
		return im.Friend{}, fmt.Errorf("bolt: set remark of %q for %q: %w", userID, friendID, err)
	}
	return f, nil
}

// Friends implements im.FriendStore with a prefix scan of userID's side.
func (s *Store) Friends(ctx context.Context, userID string) (_ []im.Friend, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: friends: %w", err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return nil, err
	}
	out := []im.Friend{}
	err = s.friendRead(func(b *friendBuckets) error {
		return scanPrefix(b.friends, userID, func(other string, k, v []byte) error {
			f, err := openFriend(k, v, userID, other)
			if err != nil {
				return err
			}
			out = append(out, f)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: friends of %q: %w", userID, err)
	}
	return out, nil
}

// FriendRequests implements im.FriendStore: a prefix scan of each of the
// requests' two keys, in one read transaction.
func (s *Store) FriendRequests(ctx context.Context, userID string) (incoming, outgoing []im.FriendRequest, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("bolt: friend requests: %w", err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return nil, nil, err
	}
	incoming, outgoing = []im.FriendRequest{}, []im.FriendRequest{}
	err = s.friendRead(func(b *friendBuckets) error {
		err := scanPrefix(b.requests, userID, func(to string, k, v []byte) error {
			r, err := openRequest(k, v, userID, to)
			if err != nil {
				return err
			}
			outgoing = append(outgoing, r)
			return nil
		})
		if err != nil {
			return err
		}
		return scanPrefix(b.requestsTo, userID, func(from string, k, v []byte) error {
			if _, err := unsealIn(bucketFriendRequestsTo, k, v, true); err != nil {
				return fmt.Errorf("friend request index %q: %w", k, err)
			}
			r, ok, err := b.request(from, userID)
			if err != nil {
				return err
			}
			if !ok {
				return corrupt("friend request index names missing request from %q to %q", from, userID)
			}
			incoming = append(incoming, r)
			return nil
		})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("bolt: friend requests of %q: %w", userID, err)
	}
	slices.SortFunc(incoming, func(a, b im.FriendRequest) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.From, b.From))
	})
	slices.SortFunc(outgoing, func(a, b im.FriendRequest) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.To, b.To))
	})
	return incoming, outgoing, nil
}

// Relation implements im.FriendStore: five lookups in one read
// transaction.
func (s *Store) Relation(ctx context.Context, userID, otherID string) (_ im.Relation, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return im.Relation{}, fmt.Errorf("bolt: relation: %w", err)
	}
	if err := im.ValidateFriendPair(userID, otherID); err != nil {
		return im.Relation{}, err
	}
	r := im.Relation{UserID: userID, OtherID: otherID}
	err = s.friendRead(func(b *friendBuckets) error {
		var err error
		if r.Friend, r.Friends, err = b.friend(userID, otherID); err != nil {
			return err
		}
		if _, r.RequestSent, err = b.request(userID, otherID); err != nil {
			return err
		}
		if _, r.RequestReceived, err = b.request(otherID, userID); err != nil {
			return err
		}
		if r.Blocking, err = b.blocks(userID, otherID); err != nil {
			return err
		}
		r.BlockedBy, err = b.blocks(otherID, userID)
		return err
	})
	if err != nil {
		return im.Relation{}, fmt.Errorf("bolt: relation of %q and %q: %w", userID, otherID, err)
	}
	return r, nil
}

// Block implements im.FriendStore.
func (s *Store) Block(ctx context.Context, userID, blockedID string, at time.Time) (err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: block: %w", err)
	}
	if err := im.ValidateFriendPair(userID, blockedID); err != nil {
		return err
	}
	err = s.friendWrite(ctx, func(b *friendBuckets) error {
		if ok, err := b.blocks(userID, blockedID); err != nil {
			return err
		} else if ok {
			return errNoWrite
		}
		if err := b.unfriend(userID, blockedID); err != nil {
			return err
		}
		for _, p := range [2][2]string{{userID, blockedID}, {blockedID, userID}} {
			if _, err := b.deleteRequest(p[0], p[1]); err != nil {
				return err
			}
		}
		k := idKey(userID, blockedID)
		if err := b.blocksB.Put(k, seal(nil, bucketBlocks, k, func(b []byte) []byte { return appendNote(b, at, "") })); err != nil {
			return err
		}
		k = idKey(blockedID, userID)
		return b.blockedBy.Put(k, seal(nil, bucketBlockedBy, k, nil))
	})
	if err != nil {
		return fmt.Errorf("bolt: block %q by %q: %w", blockedID, userID, err)
	}
	return nil
}

// Unblock implements im.FriendStore.
func (s *Store) Unblock(ctx context.Context, userID, blockedID string) (err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: unblock: %w", err)
	}
	if err := im.ValidateFriendPair(userID, blockedID); err != nil {
		return err
	}
	err = s.friendWrite(ctx, func(b *friendBuckets) error {
		if ok, err := b.blocks(userID, blockedID); err != nil {
			return err
		} else if !ok {
			return errNoWrite
		}
		return b.unblock(userID, blockedID)
	})
	if err != nil {
		return fmt.Errorf("bolt: unblock %q by %q: %w", blockedID, userID, err)
	}
	return nil
}

// Blocks implements im.FriendStore with a prefix scan.
func (s *Store) Blocks(ctx context.Context, userID string) (_ []im.Block, err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: blocks: %w", err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return nil, err
	}
	out := []im.Block{}
	err = s.friendRead(func(b *friendBuckets) error {
		return scanPrefix(b.blocksB, userID, func(other string, k, v []byte) error {
			at, err := openBlock(k, v)
			if err != nil {
				return err
			}
			out = append(out, im.Block{BlockerID: userID, BlockedID: other, CreatedAt: at})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: blocks of %q: %w", userID, err)
	}
	return out, nil
}

// RemoveUserRelations implements im.FriendStore: a prefix scan of each of
// the five buckets for userID's keys, each found with its other key, in
// one write transaction.
func (s *Store) RemoveUserRelations(ctx context.Context, userID string) (err error) {
	defer guard(&err, debug.SetPanicOnFault(true))
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: remove user relations: %w", err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return err
	}
	err = s.friendWrite(ctx, func(b *friendBuckets) error {
		// Collected first: deleting while a cursor walks a bucket makes it
		// skip keys.
		var friends, to, from, blocked, blockers []string
		for _, scan := range []struct {
			b   *bbolt.Bucket
			ids *[]string
		}{{b.friends, &friends}, {b.requests, &to}, {b.requestsTo, &from}, {b.blocksB, &blocked}, {b.blockedBy, &blockers}} {
			err := scanPrefix(scan.b, userID, func(other string, _, _ []byte) error {
				*scan.ids = append(*scan.ids, other)
				return nil
			})
			if err != nil {
				return err
			}
		}
		if len(friends)+len(to)+len(from)+len(blocked)+len(blockers) == 0 {
			return errNoWrite
		}
		for _, f := range friends {
			if err := b.unfriend(userID, f); err != nil {
				return err
			}
		}
		for _, o := range to {
			if _, err := b.deleteRequest(userID, o); err != nil {
				return err
			}
		}
		for _, o := range from {
			if _, err := b.deleteRequest(o, userID); err != nil {
				return err
			}
		}
		for _, o := range blocked {
			if err := b.unblock(userID, o); err != nil {
				return err
			}
		}
		for _, o := range blockers {
			if err := b.unblock(o, userID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: remove relations of %q: %w", userID, err)
	}
	return nil
}

// friendBuckets are the buckets of friends, requests and blocks in one
// transaction.
type friendBuckets struct {
	friends, requests, requestsTo, blocksB, blockedBy *bbolt.Bucket
}

func openFriendBuckets(tx *bbolt.Tx) (b friendBuckets, err error) {
	for _, x := range []struct {
		p    **bbolt.Bucket
		name string
	}{
		{&b.friends, bucketFriends}, {&b.requests, bucketFriendRequests}, {&b.requestsTo, bucketFriendRequestsTo},
		{&b.blocksB, bucketBlocks}, {&b.blockedBy, bucketBlockedBy},
	} {
		if *x.p, err = bucket(tx, x.name); err != nil {
			return b, err
		}
	}
	return b, nil
}

// friendWrite runs fn in one write transaction; errNoWrite from fn rolls
// it back and is no error.
func (s *Store) friendWrite(ctx context.Context, fn func(b *friendBuckets) error) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := openFriendBuckets(tx)
		if err != nil {
			return err
		}
		return fn(&b)
	})
	if errors.Is(err, errNoWrite) {
		return nil
	}
	return err
}

func (s *Store) friendRead(fn func(b *friendBuckets) error) error {
	return s.db.View(func(tx *bbolt.Tx) error {
		b, err := openFriendBuckets(tx)
		if err != nil {
			return err
		}
		return fn(&b)
	})
}

// scanPrefix calls fn with the second id of each key of b that begins
// with first 0x00, in key order.
func scanPrefix(b *bbolt.Bucket, first string, fn func(second string, k, v []byte) error) error {
	prefix := idKey(first, "")
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if err := fn(string(k[len(prefix):]), k, v); err != nil {
			return err
		}
	}
	return nil
}

// friend reads userID's side of her friendship with friendID, if there is
// one.
func (b *friendBuckets) friend(userID, friendID string) (im.Friend, bool, error) {
	k := idKey(userID, friendID)
	v := b.friends.Get(k)
	if v == nil {
		return im.Friend{}, false, nil
	}
	f, err := openFriend(k, v, userID, friendID)
	return f, err == nil, err
}

func (b *friendBuckets) putFriend(f *im.Friend) error {
	k := idKey(f.UserID, f.FriendID)
	return b.friends.Put(k, seal(nil, bucketFriends, k, func(b []byte) []byte { return appendNote(b, f.CreatedAt, f.Remark) }))
}

// befriend makes a and c friends, both sides with empty remarks, and
// removes the requests between them, either way.
func (b *friendBuckets) befriend(a, c string, at time.Time) error {
	for _, p := range [2][2]string{{a, c}, {c, a}} {
		if err := b.putFriend(&im.Friend{UserID: p[0], FriendID: p[1], CreatedAt: at}); err != nil {
			return err
		}
		if _, err := b.deleteRequest(p[0], p[1]); err != nil {
			return err
		}
	}
	return nil
}

// unfriend removes both sides of the friendship of a and c, if any.
func (b *friendBuckets) unfriend(a, c string) error {
	if err := b.friends.Delete(idKey(a, c)); err != nil {
		return err
	}
	return b.friends.Delete(idKey(c, a))
}

// request reads from's pending request to to, if there is one.
func (b *friendBuckets) request(from, to string) (im.FriendRequest, bool, error) {
	k := idKey(from, to)
	v := b.requests.Get(k)
	if v == nil {
		return im.FriendRequest{}, false, nil
	}
	r, err := openRequest(k, v, from, to)
	return r, err == nil, err
}

func (b *friendBuckets) putRequest(r *im.FriendRequest) error {
	k := idKey(r.From, r.To)
	if err := b.requests.Put(k, seal(nil, bucketFriendRequests, k, func(b []byte) []byte { return appendNote(b, r.CreatedAt, r.Message) })); err != nil {
		return err
	}
	k = idKey(r.To, r.From)
	return b.requestsTo.Put(k, seal(nil, bucketFriendRequestsTo, k, nil))
}

// deleteRequest removes from's request to to, both keys, and reports
// whether there was one.
func (b *friendBuckets) deleteRequest(from, to string) (bool, error) {
	k := idKey(from, to)
	found := b.requests.Get(k) != nil
	if err := b.requests.Delete(k); err != nil {
		return false, err
	}
	return found, b.requestsTo.Delete(idKey(to, from))
}

// blocks reports whether blocker blocks blocked.
func (b *friendBuckets) blocks(blocker, blocked string) (bool, error) {
	k := idKey(blocker, blocked)
	v := b.blocksB.Get(k)
	if v == nil {
		return false, nil
	}
	_, err := openBlock(k, v)
	return err == nil, err
}

// blockedEither reports whether a blocks c or c blocks a.
func (b *friendBuckets) blockedEither(a, c string) (bool, error) {
	if ok, err := b.blocks(a, c); ok || err != nil {
		return ok, err
	}
	return b.blocks(c, a)
}

// unblock removes blocker's block of blocked, both keys.
func (b *friendBuckets) unblock(blocker, blocked string) error {
	if err := b.blocksB.Delete(idKey(blocker, blocked)); err != nil {
		return err
	}
	return b.blockedBy.Delete(idKey(blocked, blocker))
}

func openFriend(k, v []byte, userID, friendID string) (im.Friend, error) {
	rec, err := unsealIn(bucketFriends, k, v, true)
	if err == nil {
		var f im.Friend
		if f.CreatedAt, f.Remark, err = decodeNote(rec); err == nil {
			f.UserID, f.FriendID = userID, friendID
			return f, nil
		}
	}
	return im.Friend{}, fmt.Errorf("friendship %q: %w", k, err)
}

func openRequest(k, v []byte, from, to string) (im.FriendRequest, error) {
	rec, err := unsealIn(bucketFriendRequests, k, v, true)
	if err == nil {
		var r im.FriendRequest
		if r.CreatedAt, r.Message, err = decodeNote(rec); err == nil {
			r.From, r.To = from, to
			return r, nil
		}
	}
	return im.FriendRequest{}, fmt.Errorf("friend request %q: %w", k, err)
}

func openBlock(k, v []byte) (time.Time, error) {
	rec, err := unsealIn(bucketBlocks, k, v, true)
	var at time.Time
	var text string
	if err == nil {
		at, text, err = decodeNote(rec)
	}
	if err == nil && text != "" {
		err = errCorrupt
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("block %q: %w", k, err)
	}
	return at, nil
}

// checkFriends checks the friends' buckets: every record sound under a key
// of two different valid ids; every friendship has both sides, every
// request and block its second key and every second key its record; and
// no block or request stands beside a friendship, nor a block beside a
// request.
func (c *checker) checkFriends(ctx context.Context) error {
	b, err := openFriendBuckets(c.tx)
	if err != nil {
		c.problem("%v", err)
		return nil
	}
	pair := func(what string, k []byte) (string, string, bool) {
		first, second, ok := bytes.Cut(k, []byte{0})
		if !ok || im.ValidateFriendPair(string(first), string(second)) != nil {
			c.problem("%s key %q names no two users", what, k)
			return "", "", false
		}
		return string(first), string(second), true
	}
	has := func(bk *bbolt.Bucket, first, second string) bool { return bk.Get(idKey(first, second)) != nil }
	blocked := func(a, o string) bool { return has(b.blocksB, a, o) || has(b.blocksB, o, a) }
	for _, area := range []struct {
		what  string
		b     *bbolt.Bucket
		check func(k, v []byte, first, second string) error
	}{
		{"friendship", b.friends, func(k, v []byte, u, f string) error {
			if _, err := openFriend(k, v, u, f); err != nil {
				return err
			}
			switch {
			case !has(b.friends, f, u):
				return fmt.Errorf("the other side, of %q, is missing", f)
			case blocked(u, f):
				return errors.New("a block stands beside it")
			case has(b.requests, u, f):
				return errors.New("a request stands beside it")
			}
			return nil
		}},
		{"friend request", b.requests, func(k, v []byte, from, to string) error {
			if _, err := openRequest(k, v, from, to); err != nil {
				return err
			}
			switch {
			case !has(b.requestsTo, to, from):
				return errors.New("it is missing from the index of requests by receiver")
			case blocked(from, to):
				return errors.New("a block stands beside it")
			}
			return nil
		}},
		{"friend request index", b.requestsTo, func(k, v []byte, to, from string) error {
			if _, err := unsealIn(bucketFriendRequestsTo, k, v, true); err != nil {
				return err
			}
			if !has(b.requests, from, to) {
				return errors.New("it names no request")
			}
			return nil
		}},
		{"block", b.blocksB, func(k, v []byte, blocker, blocked string) error {
			if _, err := openBlock(k, v); err != nil {
				return err
			}
			if !has(b.blockedBy, blocked, blocker) {
				return errors.New("it is missing from the index of blocks by blocked user")
			}
			return nil
		}},
		{"block index", b.blockedBy, func(k, v []byte, blocked, blocker string) error {
			if _, err := unsealIn(bucketBlockedBy, k, v, true); err != nil {
				return err
			}
			if !has(b.blocksB, blocker, blocked) {
				return errors.New("it names no block")
			}
			return nil
		}},
	} {
		err := area.b.ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			first, second, ok := pair(area.what, k)
			if !ok {
				return nil
			}
			if err := area.check(k, v, first, second); err != nil {
				c.problem("%s %q: %v", area.what, k, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
