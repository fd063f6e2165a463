package storetest_test

import (
	"context"
	"errors"
	"time"

	"github.com/imserver/imserver/im"
)

// The group methods of buggyStore, each breaking one rule of im.GroupStore
// when its bug is set.

func (b *buggyStore) CreateGroup(ctx context.Context, g im.Group, members []im.GroupMember) error {
	ctx = b.ctx(ctx)
	b.mu.Lock()
	b.counts[g.ID] = g.MemberCount
	b.mu.Unlock()
	switch b.bug {
	case "group-create-overwrites":
		err := b.Store.CreateGroup(ctx, g, members)
		if errors.Is(err, im.ErrConflict) {
			_ = b.Store.DeleteGroup(ctx, g.ID)
			err = b.Store.CreateGroup(ctx, g, members)
		}
		return err
	case "group-create-racy":
		// Check and write in two steps, as a store without a transaction
		// might.
		if _, err := b.Store.Group(ctx, g.ID); err == nil {
			return im.ErrConflict
		}
		time.Sleep(time.Millisecond)
		_ = b.Store.DeleteGroup(ctx, g.ID)
		return b.Store.CreateGroup(ctx, g, members)
	}
	return b.accept(b.Store.CreateGroup(ctx, g, members))
}

func (b *buggyStore) Group(ctx context.Context, id string) (im.Group, error) {
	g, err := b.Store.Group(b.ctx(ctx), id)
	if err != nil {
		return g, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bug == "group-count-as-given" {
		g.MemberCount = b.counts[id]
	}
	if t, ok := b.created[id]; ok && b.bug == "group-update-createdat" {
		g.CreatedAt = t
	}
	return g, nil
}

func (b *buggyStore) UpdateGroup(ctx context.Context, g im.Group) error {
	err := b.Store.UpdateGroup(b.ctx(ctx), g)
	if err == nil {
		b.mu.Lock()
		b.counts[g.ID] = g.MemberCount
		b.created[g.ID] = g.CreatedAt
		b.mu.Unlock()
	}
	return b.accept(err)
}

func (b *buggyStore) DeleteGroup(ctx context.Context, id string) error {
	ctx = b.ctx(ctx)
	if b.bug == "group-delete-keeps-members" {
		if ms, err := b.Store.GroupMembers(ctx, id); err == nil {
			b.keepIndex(id, ms)
		}
	}
	return b.Store.DeleteGroup(ctx, id)
}

// keepIndex makes UserGroups go on listing group id for members.
func (b *buggyStore) keepIndex(id string, members []im.GroupMember) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range members {
		if b.stale[m.UserID] == nil {
			b.stale[m.UserID] = make(map[string]bool)
		}
		b.stale[m.UserID][id] = true
	}
}

func (b *buggyStore) PutGroupMembers(ctx context.Context, id string, members []im.GroupMember) error {
	ctx = b.ctx(ctx)
	switch b.bug {
	case "group-partial-put":
		// Validate while writing, so that the members before a bad one
		// stay.
		for _, m := range members {
			if err := b.Store.PutGroupMembers(ctx, id, []im.GroupMember{m}); err != nil {
				return err
			}
		}
		return nil
	case "group-put-resets-joinedat":
		ids := make([]string, 0, len(members))
		for _, m := range members {
			ids = append(ids, m.UserID)
		}
		_ = b.Store.RemoveGroupMembers(ctx, id, ids)
	case "group-owner-not-set":
		before, err := b.Store.Group(ctx, id)
		if err != nil {
			return err
		}
		if err := b.Store.PutGroupMembers(ctx, id, members); err != nil {
			return err
		}
		after, err := b.Store.Group(ctx, id)
		if err != nil {
			return err
		}
		after.OwnerID = before.OwnerID
		return b.Store.UpdateGroup(ctx, after)
	}
	return b.accept(b.Store.PutGroupMembers(ctx, id, members))
}

func (b *buggyStore) RemoveGroupMembers(ctx context.Context, id string, userIDs []string) error {
	ctx = b.ctx(ctx)
	if b.bug == "group-remove-keeps-index" {
		if ms, err := b.Store.GroupMembers(ctx, id); err == nil {
			var removed []im.GroupMember
			for _, m := range ms {
				for _, u := range userIDs {
					if m.UserID == u {
						removed = append(removed, m)
					}
				}
			}
			b.keepIndex(id, removed)
		}
	}
	return b.accept(b.Store.RemoveGroupMembers(ctx, id, userIDs))
}

func (b *buggyStore) GroupMembers(ctx context.Context, id string) ([]im.GroupMember, error) {
	return b.Store.GroupMembers(b.ctx(ctx), id)
}

func (b *buggyStore) UserGroups(ctx context.Context, userID string) ([]string, error) {
	ids, err := b.Store.UserGroups(b.ctx(ctx), userID)
	if err != nil {
		return ids, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for id := range b.stale[userID] {
		if !contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
