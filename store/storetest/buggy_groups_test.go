package storetest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/imserver/imserver/im"
)

// The group methods of buggyStore, each breaking one rule of im.GroupStore
// when its bug is set.

func (b *buggyStore) CreateGroup(ctx context.Context, g im.Group, members []im.GroupMember, notice im.AppendRequest) (im.AppendResult, error) {
	ctx = b.ctx(ctx)
	b.mu.Lock()
	b.counts[g.ID] = g.MemberCount
	b.mu.Unlock()
	switch b.bug {
	case "group-create-overwrites":
		r, err := b.Store.CreateGroup(ctx, g, members, notice)
		if errors.Is(err, im.ErrConflict) {
			_, _ = b.Store.ChangeGroup(ctx, g.ID, im.GroupChange{Delete: true})
			r, err = b.Store.CreateGroup(ctx, g, members, notice)
		}
		return r, err
	case "group-create-racy":
		// Check and write in two steps, as a store without a transaction
		// might.
		if _, err := b.Store.Group(ctx, g.ID); err == nil {
			return im.AppendResult{}, im.ErrConflict
		}
		time.Sleep(time.Millisecond)
		_, _ = b.Store.ChangeGroup(ctx, g.ID, im.GroupChange{Delete: true})
		return b.Store.CreateGroup(ctx, g, members, notice)
	case "group-notice-separate":
		// The notice in a second step, which a crash or a refusal can
		// separate from the group.
		r, err := b.Store.CreateGroup(ctx, g, members, im.AppendRequest{})
		if err != nil || notice.Message.ConversationID == "" {
			return r, err
		}
		if res, err := b.Store.AppendMessages(ctx, []im.AppendRequest{notice}); err == nil && res[0].Err == nil {
			res[0].GroupVersion = r.GroupVersion
			return res[0], nil
		}
		return r, nil
	}
	r, err := b.Store.CreateGroup(ctx, g, members, notice)
	return r, b.accept(err)
}

func (b *buggyStore) ChangeGroup(ctx context.Context, id string, ch im.GroupChange) (im.AppendResult, error) {
	ctx = b.ctx(ctx)
	if ch.Update != nil {
		b.mu.Lock()
		b.counts[id] = ch.Update.MemberCount
		b.created[id] = ch.Update.CreatedAt
		b.mu.Unlock()
	}
	b.keepRequests(ctx, id, ch)
	switch b.bug {
	case "group-no-cas":
		ch.Version = 0
	case "group-joinseq-racy":
		// The join seq read before the change's transaction, as a store
		// that looks up the conversation first might: a concurrent
		// change takes that seq.
		c, _ := b.Store.Conversation(ctx, im.GroupConversationID(id))
		time.Sleep(100 * time.Microsecond)
		r, err := b.Store.ChangeGroup(ctx, id, ch)
		if err == nil {
			b.mu.Lock()
			for _, m := range ch.Put {
				if b.joinSeq[id] == nil {
					b.joinSeq[id] = make(map[string]int64)
				}
				if _, ok := b.joinSeq[id][m.UserID]; !ok {
					b.joinSeq[id][m.UserID] = c.MaxSeq + 1
				}
			}
			b.mu.Unlock()
		}
		return r, err
	case "group-no-limit":
		ch.MaxMembers = 0
	case "group-limit-racy":
		if ch.MaxMembers > 0 {
			// Count outside the write, as a store checking the limit
			// outside its transaction might.
			if err := b.checkLimit(ctx, id, ch); err != nil {
				return im.AppendResult{}, err
			}
			time.Sleep(100 * time.Microsecond)
			ch.MaxMembers, ch.Version = 0, 0
		}
	case "group-notice-separate":
		notice := ch.Notice
		ch.Notice = im.AppendRequest{}
		r, err := b.Store.ChangeGroup(ctx, id, ch)
		if err != nil || notice.Message.ConversationID == "" {
			return r, err
		}
		if res, err := b.Store.AppendMessages(ctx, []im.AppendRequest{notice}); err == nil && res[0].Err == nil {
			res[0].GroupVersion = r.GroupVersion
			return res[0], nil
		}
		return r, nil
	case "group-partial-put":
		if len(ch.Put) > 1 && len(ch.Remove) == 0 && ch.Update == nil && !ch.Delete {
			// Validate while writing, so that the members before a bad
			// one stay.
			var r im.AppendResult
			for _, m := range ch.Put {
				var err error
				if r, err = b.Store.ChangeGroup(ctx, id, im.GroupChange{Put: []im.GroupMember{m}}); err != nil {
					return r, err
				}
			}
			return r, nil
		}
	case "group-put-resets-joinedat":
		var ids []string
		for _, m := range ch.Put {
			if m.Role != im.RoleOwner {
				ids = append(ids, m.UserID)
			}
		}
		if len(ids) > 0 {
			_, _ = b.Store.ChangeGroup(ctx, id, im.GroupChange{Remove: ids})
			ch.Version = 0
		}
	case "group-remove-keeps-index", "group-delete-keeps-members":
		if _, ms, err := b.Store.GroupMembers(ctx, id); err == nil {
			var gone []im.GroupMember
			for _, m := range ms {
				if ch.Delete && b.bug == "group-delete-keeps-members" || slices.Contains(ch.Remove, m.UserID) && b.bug == "group-remove-keeps-index" {
					gone = append(gone, m)
				}
			}
			b.keepIndex(id, gone)
		}
	}
	var before im.Group
	if b.bug == "group-owner-not-set" || b.bug == "group-two-owners" {
		before, _ = b.Store.Group(ctx, id)
	}
	r, err := b.Store.ChangeGroup(ctx, id, ch)
	if err == nil && before.OwnerID != "" {
		if after, err := b.Store.Group(ctx, id); err == nil && after.OwnerID != before.OwnerID {
			b.mu.Lock()
			if b.bug == "group-owner-not-set" {
				b.owner[id] = before.OwnerID // reads keep the old owner
			} else {
				b.twoOwners[id] = before.OwnerID // the old owner keeps its role
			}
			b.mu.Unlock()
		}
	}
	return r, b.accept(err)
}

// checkLimit is the member limit judged on a read of its own.
func (b *buggyStore) checkLimit(ctx context.Context, id string, ch im.GroupChange) error {
	_, ms, err := b.Store.GroupMembers(ctx, id)
	if err != nil {
		return err
	}
	count := len(ms)
	for _, m := range ch.Put {
		if !slices.ContainsFunc(ms, func(x im.GroupMember) bool { return x.UserID == m.UserID }) {
			count++
		}
	}
	for _, u := range ch.Remove {
		if slices.ContainsFunc(ms, func(x im.GroupMember) bool { return x.UserID == u }) {
			count--
		}
	}
	if count > ch.MaxMembers {
		return fmt.Errorf("group %q would have %d members: %w", id, count, im.ErrLimitExceeded)
	}
	return nil
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

// group applies the bugs that change what a group reads as.
func (b *buggyStore) group(g im.Group) im.Group {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bug == "group-count-as-given" {
		g.MemberCount = b.counts[g.ID]
	}
	if t, ok := b.created[g.ID]; ok && b.bug == "group-update-createdat" {
		g.CreatedAt = t
	}
	if o, ok := b.owner[g.ID]; ok {
		g.OwnerID = o
	}
	if b.bug == "group-forgets-history" {
		g.History = im.HistoryFromJoin
	}
	if b.bug == "group-forgets-mute" {
		g.MuteAll = false
	}
	return g
}

// member applies the bugs that change what a membership reads as.
func (b *buggyStore) member(id string, m im.GroupMember) im.GroupMember {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.twoOwners[id] == m.UserID {
		m.Role = im.RoleOwner
	}
	switch b.bug {
	case "group-forgets-mute":
		m.MutedUntil = time.Time{}
	case "group-forgets-joinseq":
		m.JoinSeq = 0
	case "group-joinseq-racy":
		if seq, ok := b.joinSeq[id][m.UserID]; ok {
			m.JoinSeq = seq
		}
	}
	return m
}

func (b *buggyStore) Group(ctx context.Context, id string) (im.Group, error) {
	g, err := b.Store.Group(b.ctx(ctx), id)
	if err != nil {
		return g, err
	}
	return b.group(g), nil
}

func (b *buggyStore) GroupMembers(ctx context.Context, id string) (im.Group, []im.GroupMember, error) {
	g, ms, err := b.Store.GroupMembers(b.ctx(ctx), id)
	if err != nil {
		return g, ms, err
	}
	for i := range ms {
		ms[i] = b.member(id, ms[i])
	}
	return b.group(g), ms, nil
}

func (b *buggyStore) GroupMember(ctx context.Context, id, userID string) (im.GroupMember, error) {
	m, err := b.Store.GroupMember(b.ctx(ctx), id, userID)
	if err != nil {
		return m, err
	}
	return b.member(id, m), nil
}

func (b *buggyStore) UserGroups(ctx context.Context, userID string) ([]string, error) {
	ids, err := b.Store.UserGroups(b.ctx(ctx), userID)
	if err != nil {
		return ids, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for id := range b.stale[userID] {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// ignoreMute stores, for group-mute-ignored, the messages refused because
// their sender is muted, as a store that checks only membership would.
func (b *buggyStore) ignoreMute(ctx context.Context, batch []im.AppendRequest, res []im.AppendResult) {
	if b.bug != "group-mute-ignored" {
		return
	}
	for i := range res {
		if errors.Is(res[i].Err, im.ErrMuted) {
			r := batch[i]
			r.MemberOf = ""
			if again, err := b.Store.AppendMessages(ctx, []im.AppendRequest{r}); err == nil {
				again[0].GroupVersion = res[i].GroupVersion
				res[i] = again[0]
			}
		}
	}
}

// keepRequests notes, for joinreq-kept-on-put and joinreq-kept-on-delete,
// the join requests ch is about to remove, so that reads go on reporting
// them.
func (b *buggyStore) keepRequests(ctx context.Context, id string, ch im.GroupChange) {
	if b.bug != "joinreq-kept-on-put" && b.bug != "joinreq-kept-on-delete" {
		return
	}
	reqs, err := b.Store.JoinRequests(ctx, id)
	if err != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.staleRequests == nil {
		b.staleRequests = make(map[string][]im.GroupJoinRequest)
	}
	for _, r := range reqs {
		put := slices.ContainsFunc(ch.Put, func(m im.GroupMember) bool { return m.UserID == r.UserID })
		if put && b.bug == "joinreq-kept-on-put" || ch.Delete && b.bug == "joinreq-kept-on-delete" {
			b.staleRequests[id] = append(b.staleRequests[id], r)
		}
	}
}

func (b *buggyStore) JoinRequests(ctx context.Context, groupID string) ([]im.GroupJoinRequest, error) {
	reqs, err := b.Store.JoinRequests(b.ctx(ctx), groupID)
	if err != nil {
		return reqs, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return append(reqs, b.staleRequests[groupID]...), nil
}

func (b *buggyStore) JoinRequest(ctx context.Context, groupID, userID string) (im.GroupJoinRequest, error) {
	r, err := b.Store.JoinRequest(b.ctx(ctx), groupID, userID)
	if errors.Is(err, im.ErrNotFound) {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, s := range b.staleRequests[groupID] {
			if s.UserID == userID {
				return s, nil
			}
		}
	}
	return r, err
}
