package storetest_test

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/imserver/imserver/im"
)

var _ im.FriendStore = (*buggyStore)(nil)

// The friend calls pass through to memstore, with the ctx and validation
// bugs applied, and these bugs of their own:
//
//	friends-block-allows-request  a request across a block reads as stored
//	friends-unsorted              Friends lists in reverse order
//	friends-missing-ok            Reject, Cancel and Delete of nothing succeed

func (b *buggyStore) missing(err error) error {
	if b.bug == "friends-missing-ok" && errors.Is(err, im.ErrNotFound) {
		return nil
	}
	return b.accept(err)
}

func (b *buggyStore) RequestFriend(ctx context.Context, r im.FriendRequest) (im.FriendOutcome, error) {
	o, err := b.Store.RequestFriend(b.ctx(ctx), r)
	if b.bug == "friends-block-allows-request" && errors.Is(err, im.ErrPermissionDenied) {
		return im.FriendRequested, nil
	}
	return o, b.accept(err)
}

func (b *buggyStore) AcceptFriend(ctx context.Context, userID, fromID string, at time.Time) (im.Friend, error) {
	f, err := b.Store.AcceptFriend(b.ctx(ctx), userID, fromID, at)
	return f, b.accept(err)
}

func (b *buggyStore) RejectFriend(ctx context.Context, userID, fromID string) error {
	return b.missing(b.Store.RejectFriend(b.ctx(ctx), userID, fromID))
}

func (b *buggyStore) CancelFriendRequest(ctx context.Context, userID, toID string) error {
	return b.missing(b.Store.CancelFriendRequest(b.ctx(ctx), userID, toID))
}

func (b *buggyStore) DeleteFriend(ctx context.Context, userID, friendID string) error {
	return b.missing(b.Store.DeleteFriend(b.ctx(ctx), userID, friendID))
}

func (b *buggyStore) SetFriendRemark(ctx context.Context, userID, friendID, remark string) (im.Friend, error) {
	f, err := b.Store.SetFriendRemark(b.ctx(ctx), userID, friendID, remark)
	return f, b.accept(err)
}

func (b *buggyStore) Friends(ctx context.Context, userID string) ([]im.Friend, error) {
	fr, err := b.Store.Friends(b.ctx(ctx), userID)
	if b.bug == "friends-unsorted" {
		slices.Reverse(fr)
	}
	return fr, b.accept(err)
}

func (b *buggyStore) FriendRequests(ctx context.Context, userID string) (in, out []im.FriendRequest, err error) {
	in, out, err = b.Store.FriendRequests(b.ctx(ctx), userID)
	return in, out, b.accept(err)
}

func (b *buggyStore) Relation(ctx context.Context, userID, otherID string) (im.Relation, error) {
	r, err := b.Store.Relation(b.ctx(ctx), userID, otherID)
	return r, b.accept(err)
}

func (b *buggyStore) Block(ctx context.Context, userID, blockedID string, at time.Time) error {
	return b.accept(b.Store.Block(b.ctx(ctx), userID, blockedID, at))
}

func (b *buggyStore) Unblock(ctx context.Context, userID, blockedID string) error {
	return b.accept(b.Store.Unblock(b.ctx(ctx), userID, blockedID))
}

func (b *buggyStore) Blocks(ctx context.Context, userID string) ([]im.Block, error) {
	bl, err := b.Store.Blocks(b.ctx(ctx), userID)
	return bl, b.accept(err)
}

func (b *buggyStore) RemoveUserRelations(ctx context.Context, userID string) error {
	return b.accept(b.Store.RemoveUserRelations(b.ctx(ctx), userID))
}
