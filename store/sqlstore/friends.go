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

var _ im.FriendStore = (*Store)(nil)

// Every write of FriendStore that decides on what it reads of a pair of
// users first locks the pair's row in friend_pairs (created by the first
// operation on the pair; on SQLite the writer's lock holds the whole
// database), so that the operations on one pair take turns across
// processes: two users who ask each other at once are one transaction
// after the other, and the second finds the first's request. The reads
// after the lock see every commit before it: PostgreSQL reads committed
// data per statement, and MySQL takes its snapshot at the first plain read,
// which comes after the locking statement.

// friendQueries holds the statements of friends, requests and blocks.
type friendQueries struct {
	friends, requests, blocks, pairs string

	pairInsert    string // a, b; on MySQL it also locks the row until the commit
	pairLock      string // a, b → 1, the row locked until the commit (Postgres)
	blockedEither string // a, b, b, a → count
	isFriend      string // user, friend → 1
	hasRequest    string // from, to → 1
	putRequest    string // from, to, message, created_at; replaces a stored one
	addFriends    string // (user, friend, remark, created_at) twice
	dropRequest   string // from, to
	dropRequests  string // a, b, b, a: both ways
	dropFriends   string // a, b, b, a: both sides
	setRemark     string // remark, user, friend
	friend        string // user, friend → remark, created_at
	friendsOf     string // user → friend_id, remark, created_at…
	requestsOf    string // user, user → from_id, to_id, message, created_at… (incoming, then outgoing)
	relation      string // see Relation
	addBlock      string // blocker, blocked, created_at; nothing if stored
	dropBlock     string // blocker, blocked
	blocksOf      string // blocker → blocked_id, created_at…

	dropAllFriendsOf string // user: deletes her side of every friendship → friend_id… (on MySQL it only reads them, locked)

	mysqlDropFriendsOf string // user: deletes her side of every friendship
	dropRequestsFrom   string // user
	dropRequestsTo     string // user
	dropBlocksBy       string // user
	dropBlocksOf       string // user
	pgDropSidesOf      string // user, friends[]: the friends' sides
}

func newFriendQueries(q *queries, prefix string) friendQueries {
	fq := friendQueries{
		friends:  prefix + "friends",
		requests: prefix + "friend_requests",
		blocks:   prefix + "user_blocks",
		pairs:    prefix + "friend_pairs",
	}
	p := q.placeholders
	ph := p(10)
	both := func(a, b string) string {
		return "(" + a + " = " + ph[0] + " AND " + b + " = " + ph[1] + ") OR (" + a + " = " + ph[2] + " AND " + b + " = " + ph[3] + ")"
	}
	switch q.dialect {
	case Postgres:
		fq.pairInsert = "INSERT INTO " + fq.pairs + " (user_a, user_b) VALUES ($1, $2) ON CONFLICT DO NOTHING"
		fq.pairLock = "SELECT 1 FROM " + fq.pairs + " WHERE user_a = $1 AND user_b = $2 FOR UPDATE"
	case MySQL:
		// A duplicate key takes the row's exclusive lock here, where
		// INSERT IGNORE would take a shared one: two transactions holding
		// it shared, both wanting it exclusive, would deadlock.
		fq.pairInsert = "INSERT INTO " + fq.pairs + " (user_a, user_b) VALUES (?, ?) ON DUPLICATE KEY UPDATE user_a = user_a"
	}
	fq.blockedEither = "SELECT COUNT(*) FROM " + fq.blocks + " WHERE " + both("blocker_id", "blocked_id")
	fq.isFriend = "SELECT 1 FROM " + fq.friends + " WHERE user_id = " + ph[0] + " AND friend_id = " + ph[1]
	fq.hasRequest = "SELECT 1 FROM " + fq.requests + " WHERE from_id = " + ph[0] + " AND to_id = " + ph[1]
	fq.putRequest = "INSERT INTO " + fq.requests + " (from_id, to_id, message, created_at) VALUES (" + strings.Join(ph[:4], ", ") + ")"
	if q.dialect == MySQL {
		fq.putRequest += " ON DUPLICATE KEY UPDATE message = VALUES(message), created_at = VALUES(created_at)"
	} else {
		fq.putRequest += " ON CONFLICT (from_id, to_id) DO UPDATE SET message = excluded.message, created_at = excluded.created_at"
	}
	fq.addFriends = "INSERT INTO " + fq.friends + " (user_id, friend_id, remark, created_at) VALUES (" +
		strings.Join(ph[:4], ", ") + "), (" + strings.Join(ph[4:8], ", ") + ")"
	fq.dropRequest = "DELETE FROM " + fq.requests + " WHERE from_id = " + ph[0] + " AND to_id = " + ph[1]
	fq.dropRequests = "DELETE FROM " + fq.requests + " WHERE " + both("from_id", "to_id")
	fq.dropFriends = "DELETE FROM " + fq.friends + " WHERE " + both("user_id", "friend_id")
	fq.setRemark = "UPDATE " + fq.friends + " SET remark = " + ph[0] + " WHERE user_id = " + ph[1] + " AND friend_id = " + ph[2]
	fq.friend = "SELECT remark, created_at FROM " + fq.friends + " WHERE user_id = " + ph[0] + " AND friend_id = " + ph[1]
	fq.friendsOf = "SELECT friend_id, remark, created_at FROM " + fq.friends + " WHERE user_id = " + ph[0] + " ORDER BY friend_id"
	fq.requestsOf = "SELECT from_id, to_id, message, created_at FROM " + fq.requests + " WHERE to_id = " + ph[0] +
		" UNION ALL SELECT from_id, to_id, message, created_at FROM " + fq.requests + " WHERE from_id = " + ph[1]
	// One statement, so one snapshot: what each of the five rows that
	// make a relation is, tagged by kind. Every branch is a primary key
	// lookup.
	fq.relation = "SELECT 1, remark, created_at FROM " + fq.friends + " WHERE user_id = " + ph[0] + " AND friend_id = " + ph[1] +
		" UNION ALL SELECT 2, message, created_at FROM " + fq.requests + " WHERE from_id = " + ph[2] + " AND to_id = " + ph[3] +
		" UNION ALL SELECT 3, message, created_at FROM " + fq.requests + " WHERE from_id = " + ph[4] + " AND to_id = " + ph[5] +
		" UNION ALL SELECT 4, NULL, created_at FROM " + fq.blocks + " WHERE blocker_id = " + ph[6] + " AND blocked_id = " + ph[7] +
		" UNION ALL SELECT 5, NULL, created_at FROM " + fq.blocks + " WHERE blocker_id = " + ph[8] + " AND blocked_id = " + ph[9]
	fq.addBlock = "INSERT INTO " + fq.blocks + " (blocker_id, blocked_id, created_at) VALUES (" + strings.Join(ph[:3], ", ") + ")"
	if q.dialect == MySQL {
		fq.addBlock += " ON DUPLICATE KEY UPDATE blocker_id = blocker_id"
	} else {
		fq.addBlock += " ON CONFLICT (blocker_id, blocked_id) DO NOTHING"
	}
	fq.dropBlock = "DELETE FROM " + fq.blocks + " WHERE blocker_id = " + ph[0] + " AND blocked_id = " + ph[1]
	fq.blocksOf = "SELECT blocked_id, created_at FROM " + fq.blocks + " WHERE blocker_id = " + ph[0] + " ORDER BY blocked_id"
	// Removing a user: one statement per key or index, each a range of
	// it. The other sides of her friendships are found by her own (a
	// friendship is both rows), not by a scan of friend_id.
	if q.dialect == MySQL {
		fq.dropAllFriendsOf = "SELECT friend_id FROM " + fq.friends + " WHERE user_id = ? FOR UPDATE"
		fq.mysqlDropFriendsOf = "DELETE FROM " + fq.friends + " WHERE user_id = ?"
	} else {
		fq.dropAllFriendsOf = "DELETE FROM " + fq.friends + " WHERE user_id = " + ph[0] + " RETURNING friend_id"
	}
	fq.dropRequestsFrom = "DELETE FROM " + fq.requests + " WHERE from_id = " + ph[0]
	fq.dropRequestsTo = "DELETE FROM " + fq.requests + " WHERE to_id = " + ph[0]
	fq.dropBlocksBy = "DELETE FROM " + fq.blocks + " WHERE blocker_id = " + ph[0]
	fq.dropBlocksOf = "DELETE FROM " + fq.blocks + " WHERE blocked_id = " + ph[0]
	if q.dialect == Postgres {
		fq.pgDropSidesOf = "DELETE FROM " + fq.friends + " WHERE friend_id = $1 AND user_id = ANY($2::text[])"
	}
	return fq
}

// dropSidesOf returns the statement that deletes the sides of n users'
// friendships with one user, given as that user and the n users (not
// Postgres).
func (fq *friendQueries) dropSidesOf(n int) string {
	var b strings.Builder
	b.WriteString("DELETE FROM ")
	b.WriteString(fq.friends)
	b.WriteString(" WHERE friend_id = ? AND user_id")
	inList(&b, n)
	return b.String()
}

// lockPair locks the friend_pairs row of a and b, creating it if it is
// missing, until q's transaction ends (see above). SQLite's writer holds
// the database already.
func (s *Store) lockPair(ctx context.Context, q querier, a, b string) error {
	if s.dialect == SQLite {
		return nil
	}
	if a > b {
		a, b = b, a
	}
	if _, err := q.ExecContext(ctx, s.q.friends.pairInsert, a, b); err != nil {
		return err
	}
	if s.dialect == Postgres {
		var one int64
		return q.QueryRowContext(ctx, s.q.friends.pairLock, a, b).Scan(&one)
	}
	return nil
}

// pairWrite runs fn in one write transaction that first locks the pair of
// a and b (lockPair), after checking ctx and the pair, and wraps its error
// with op: the frame of every change to two users' relation.
func (s *Store) pairWrite(ctx context.Context, op, a, b string, fn func(q querier) error) error {
	if err := ctx.Err(); err != nil {
		return wrapErr(ctx, op, err)
	}
	if err := im.ValidateFriendPair(a, b); err != nil {
		return err
	}
	err := s.write(ctx, true, func(q querier) error {
		if err := s.lockPair(ctx, q, a, b); err != nil {
			return err
		}
		return fn(q)
	})
	if err != nil {
		return wrapErr(ctx, op, err)
	}
	return nil
}

// exists runs query, which returns at most one row, and reports whether
// it returned one.
func exists(ctx context.Context, q querier, query string, args ...any) (bool, error) {
	var one int64
	err := q.QueryRowContext(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// befriend makes a and b friends at at, both sides with empty remarks, and
// removes the requests between them, in q's transaction.
func (s *Store) befriend(ctx context.Context, q querier, a, b string, at int64) error {
	if _, err := q.ExecContext(ctx, s.q.friends.addFriends, a, b, []byte{}, at, b, a, []byte{}, at); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, s.q.friends.dropRequests, a, b, b, a)
	return err
}

// RequestFriend implements im.FriendStore in one transaction that locks
// the pair first.
func (s *Store) RequestFriend(ctx context.Context, r im.FriendRequest) (im.FriendOutcome, error) {
	if err := im.ValidateFriendText("message", r.Message, im.MaxFriendMessageLen); err != nil {
		return 0, err
	}
	var outcome im.FriendOutcome
	err := s.pairWrite(ctx, "request friend", r.From, r.To, func(q querier) error {
		var blocks int64
		if err := q.QueryRowContext(ctx, s.q.friends.blockedEither, r.From, r.To, r.To, r.From).Scan(&blocks); err != nil {
			return err
		}
		if blocks > 0 {
			return fmt.Errorf("%q and %q: a block stands between them: %w", r.From, r.To, im.ErrPermissionDenied)
		}
		friends, err := exists(ctx, q, s.q.friends.isFriend, r.From, r.To)
		if err != nil {
			return err
		}
		if friends {
			outcome = im.FriendAlready
			return nil
		}
		asked, err := exists(ctx, q, s.q.friends.hasRequest, r.To, r.From)
		if err != nil {
			return err
		}
		if asked {
			outcome = im.FriendAccepted
			return s.befriend(ctx, q, r.From, r.To, r.CreatedAt.UnixMicro())
		}
		outcome = im.FriendRequested
		_, err = q.ExecContext(ctx, s.q.friends.putRequest, r.From, r.To, blob(r.Message), r.CreatedAt.UnixMicro())
		return err
	})
	if err != nil {
		return 0, err
	}
	return outcome, nil
}

// AcceptFriend implements im.FriendStore in one transaction that locks the
// pair first.
func (s *Store) AcceptFriend(ctx context.Context, userID, fromID string, at time.Time) (im.Friend, error) {
	err := s.pairWrite(ctx, "accept friend", userID, fromID, func(q querier) error {
		asked, err := exists(ctx, q, s.q.friends.hasRequest, fromID, userID)
		if err != nil {
			return err
		}
		if !asked {
			return fmt.Errorf("no request from %q to %q: %w", fromID, userID, im.ErrNotFound)
		}
		return s.befriend(ctx, q, userID, fromID, at.UnixMicro())
	})
	if err != nil {
		return im.Friend{}, err
	}
	return im.Friend{UserID: userID, FriendID: fromID, CreatedAt: time.UnixMicro(at.UnixMicro()).UTC()}, nil
}

// RejectFriend implements im.FriendStore.
func (s *Store) RejectFriend(ctx context.Context, userID, fromID string) error {
	return s.dropRequest(ctx, "reject friend", fromID, userID)
}

// CancelFriendRequest implements im.FriendStore.
func (s *Store) CancelFriendRequest(ctx context.Context, userID, toID string) error {
	return s.dropRequest(ctx, "cancel friend request", userID, toID)
}

// dropRequest deletes the request from from to to, under the pair's lock;
// ErrNotFound if there is none.
func (s *Store) dropRequest(ctx context.Context, op, from, to string) error {
	return s.pairWrite(ctx, op, from, to, func(q querier) error {
		return affected(q.ExecContext(ctx, s.q.friends.dropRequest, from, to))(
			fmt.Errorf("no request from %q to %q: %w", from, to, im.ErrNotFound))
	})
}

// affected returns a function that gives the statement's error, or
// notFound if it deleted no row. Only for DELETE: MySQL counts the rows an
// UPDATE changed, not those it matched.
func affected(res sql.Result, err error) func(notFound error) error {
	return func(notFound error) error {
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return notFound
		}
		return nil
	}
}

// DeleteFriend implements im.FriendStore: both sides, under the pair's
// lock.
func (s *Store) DeleteFriend(ctx context.Context, userID, friendID string) error {
	return s.pairWrite(ctx, "delete friend", userID, friendID, func(q querier) error {
		return affected(q.ExecContext(ctx, s.q.friends.dropFriends, userID, friendID, friendID, userID))(
			fmt.Errorf("%q and %q are not friends: %w", userID, friendID, im.ErrNotFound))
	})
}

// SetFriendRemark implements im.FriendStore: one UPDATE of userID's side
// and the side read back, in one transaction.
func (s *Store) SetFriendRemark(ctx context.Context, userID, friendID, remark string) (im.Friend, error) {
	const op = "set friend remark"
	if err := ctx.Err(); err != nil {
		return im.Friend{}, wrapErr(ctx, op, err)
	}
	if err := im.ValidateFriendPair(userID, friendID); err != nil {
		return im.Friend{}, err
	}
	if err := im.ValidateFriendText("remark", remark, im.MaxFriendRemarkLen); err != nil {
		return im.Friend{}, err
	}
	f := im.Friend{UserID: userID, FriendID: friendID}
	err := s.write(ctx, true, func(q querier) error {
		if _, err := q.ExecContext(ctx, s.q.friends.setRemark, blob(remark), userID, friendID); err != nil {
			return err
		}
		var at int64
		err := q.QueryRowContext(ctx, s.q.friends.friend, userID, friendID).Scan(&f.Remark, &at)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%q and %q are not friends: %w", userID, friendID, im.ErrNotFound)
		}
		f.CreatedAt = time.UnixMicro(at).UTC()
		return err
	})
	if err != nil {
		return im.Friend{}, wrapErr(ctx, op, err)
	}
	return f, nil
}

// Friends implements im.FriendStore with one range of the primary key.
func (s *Store) Friends(ctx context.Context, userID string) ([]im.Friend, error) {
	const op = "friends"
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return nil, err
	}
	out, err := readRows(ctx, s, s.q.friends.friendsOf, []any{userID}, func(rows *sql.Rows) (im.Friend, error) {
		f := im.Friend{UserID: userID}
		var at int64
		err := rows.Scan(&f.FriendID, &f.Remark, &at)
		f.CreatedAt = time.UnixMicro(at).UTC()
		return f, err
	})
	if err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	return out, nil
}

// FriendRequests implements im.FriendStore with one statement: the
// incoming requests by the index on to_id, the outgoing by the primary
// key.
func (s *Store) FriendRequests(ctx context.Context, userID string) (incoming, outgoing []im.FriendRequest, err error) {
	const op = "friend requests"
	if err := ctx.Err(); err != nil {
		return nil, nil, wrapErr(ctx, op, err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return nil, nil, err
	}
	err = s.read(ctx, func() error {
		incoming, outgoing = []im.FriendRequest{}, []im.FriendRequest{}
		rows, err := s.db.QueryContext(ctx, s.q.friends.requestsOf, userID, userID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				r  im.FriendRequest
				at int64
			)
			if err := rows.Scan(&r.From, &r.To, &r.Message, &at); err != nil {
				return err
			}
			r.CreatedAt = time.UnixMicro(at).UTC()
			if r.To == userID {
				incoming = append(incoming, r)
			} else {
				outgoing = append(outgoing, r)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, nil, wrapErr(ctx, op, err)
	}
	byTime := func(other func(im.FriendRequest) string) func(a, b im.FriendRequest) int {
		return func(a, b im.FriendRequest) int {
			if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(other(a), other(b))
		}
	}
	slices.SortFunc(incoming, byTime(func(r im.FriendRequest) string { return r.From }))
	slices.SortFunc(outgoing, byTime(func(r im.FriendRequest) string { return r.To }))
	return incoming, outgoing, nil
}

// Relation implements im.FriendStore: one statement, so one snapshot,
// of five primary key lookups.
func (s *Store) Relation(ctx context.Context, userID, otherID string) (im.Relation, error) {
	const op = "relation"
	if err := ctx.Err(); err != nil {
		return im.Relation{}, wrapErr(ctx, op, err)
	}
	if err := im.ValidateFriendPair(userID, otherID); err != nil {
		return im.Relation{}, err
	}
	var r im.Relation
	err := s.read(ctx, func() error {
		r = im.Relation{UserID: userID, OtherID: otherID}
		rows, err := s.db.QueryContext(ctx, s.q.friends.relation,
			userID, otherID, userID, otherID, otherID, userID, userID, otherID, otherID, userID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				kind, at int64
				text     []byte
			)
			if err := rows.Scan(&kind, &text, &at); err != nil {
				return err
			}
			switch kind {
			case 1:
				r.Friends = true
				r.Friend = im.Friend{UserID: userID, FriendID: otherID, Remark: string(text), CreatedAt: time.UnixMicro(at).UTC()}
			case 2:
				r.RequestSent = true
			case 3:
				r.RequestReceived = true
			case 4:
				r.Blocking = true
			case 5:
				r.BlockedBy = true
			}
		}
		return rows.Err()
	})
	if err != nil {
		return im.Relation{}, wrapErr(ctx, op, err)
	}
	return r, nil
}

// Block implements im.FriendStore in one transaction that locks the pair
// first: the block, the friendship's end and the requests' removal commit
// together.
func (s *Store) Block(ctx context.Context, userID, blockedID string, at time.Time) error {
	return s.pairWrite(ctx, "block", userID, blockedID, func(q querier) error {
		if _, err := q.ExecContext(ctx, s.q.friends.addBlock, userID, blockedID, at.UnixMicro()); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, s.q.friends.dropFriends, userID, blockedID, blockedID, userID); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, s.q.friends.dropRequests, userID, blockedID, blockedID, userID)
		return err
	})
}

// Unblock implements im.FriendStore under the pair's lock.
func (s *Store) Unblock(ctx context.Context, userID, blockedID string) error {
	return s.pairWrite(ctx, "unblock", userID, blockedID, func(q querier) error {
		_, err := q.ExecContext(ctx, s.q.friends.dropBlock, userID, blockedID)
		return err
	})
}

// Blocks implements im.FriendStore with one range of the primary key.
func (s *Store) Blocks(ctx context.Context, userID string) ([]im.Block, error) {
	const op = "blocks"
	if err := ctx.Err(); err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return nil, err
	}
	out, err := readRows(ctx, s, s.q.friends.blocksOf, []any{userID}, func(rows *sql.Rows) (im.Block, error) {
		b := im.Block{BlockerID: userID}
		var at int64
		err := rows.Scan(&b.BlockedID, &at)
		b.CreatedAt = time.UnixMicro(at).UTC()
		return b, err
	})
	if err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	return out, nil
}

// RemoveUserRelations implements im.FriendStore in one transaction: it
// reads userID's friends, deletes their sides and hers, then her requests
// and blocks either way, each statement a range of a key or an index.
func (s *Store) RemoveUserRelations(ctx context.Context, userID string) error {
	const op = "remove user relations"
	if err := ctx.Err(); err != nil {
		return wrapErr(ctx, op, err)
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return err
	}
	fq := &s.q.friends
	err := s.write(ctx, true, func(q querier) error {
		// Her side of each friendship goes first, and tells whose other
		// sides to delete: PostgreSQL and SQLite return them from the
		// DELETE; on MySQL a locking read finds them, and keeps new ones
		// out of her range of the key until the commit.
		var friends []string
		collect := func(rows *sql.Rows, err error) error {
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return err
				}
				friends = append(friends, id)
			}
			return rows.Err()
		}
		if err := collect(q.QueryContext(ctx, fq.dropAllFriendsOf, userID)); err != nil {
			return err
		}
		if s.dialect == MySQL {
			if _, err := q.ExecContext(ctx, fq.mysqlDropFriendsOf, userID); err != nil {
				return err
			}
		}
		if len(friends) > 0 {
			if s.dialect == Postgres {
				if _, err := q.ExecContext(ctx, fq.pgDropSidesOf, userID, friends); err != nil {
					return err
				}
			} else {
				for chunk := range slices.Chunk(friends, maxKeysPerLookup) {
					if _, err := q.ExecContext(ctx, fq.dropSidesOf(len(chunk)), idArgs(userID, chunk)...); err != nil {
						return err
					}
				}
			}
		}
		for _, stmt := range []string{fq.dropRequestsFrom, fq.dropRequestsTo, fq.dropBlocksBy, fq.dropBlocksOf} {
			if _, err := q.ExecContext(ctx, stmt, userID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return wrapErr(ctx, op, err)
	}
	return nil
}
