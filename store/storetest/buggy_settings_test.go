package storetest_test

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/imserver/imserver/im"
)

var _ im.ConversationSettingsStore = (*buggyStore)(nil)

// buggySettings is the buggy stores' own settings, for the bugs that
// memstore's correct implementation cannot show; the other bugs (ignore-ctx,
// no-validation, lose-on-reopen) go through memstore.
type buggySettings struct {
	mu sync.Mutex
	m  map[[2]string]im.ConversationSettings // (user, conv) →
}

// settingsBug reports whether bug is served by buggySettings.
func settingsBug(bug string) bool {
	switch bug {
	case "settings-no-ids", "settings-clears-unset", "settings-unclamped", "settings-cleared-backward",
		"settings-noop-touches", "settings-truncate-ms", "settings-racy", "settings-since-inclusive",
		"settings-all-users", "settings-dedups-list":
		return true
	}
	return false
}

func (b *buggyStore) UpdateConversationSettings(ctx context.Context, userID, conv string, ch im.SettingsChange) (im.ConversationSettings, error) {
	if !settingsBug(b.bug) {
		st, err := b.Store.UpdateConversationSettings(b.ctx(ctx), userID, conv, ch)
		return st, b.accept(err)
	}
	if err := ctx.Err(); err != nil {
		return im.ConversationSettings{}, err
	}
	if err := im.ValidateSettingsChange(userID, conv, ch); err != nil {
		return im.ConversationSettings{}, err
	}
	var maxSeq int64
	if c, err := b.Store.Conversation(ctx, conv); err == nil {
		maxSeq = c.MaxSeq
	}
	p := &b.settings
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = make(map[[2]string]im.ConversationSettings)
	}
	k := [2]string{userID, conv}
	old, ok := p.m[k]
	if !ok {
		old = im.ConversationSettings{UserID: userID, ConversationID: conv}
	}
	if b.bug == "settings-racy" {
		// Read, then write the whole record from what was read, without
		// holding anything in between; the pause gives another write the
		// time to come in and be lost.
		for range 100 {
			p.mu.Unlock()
			runtime.Gosched()
			p.mu.Lock()
			if now, found := p.m[k]; found && now != old {
				break
			}
		}
	}
	if b.bug == "settings-clears-unset" {
		// Replaces the record with the change, unset fields as zero.
		for _, f := range []**bool{&ch.Pinned, &ch.Muted} {
			if *f == nil {
				*f = new(bool)
			}
		}
		if ch.HiddenUpTo == nil {
			ch.HiddenUpTo = new(int64)
		}
	}
	clamp := func(v int64) int64 {
		if b.bug == "settings-unclamped" {
			return v
		}
		return min(v, maxSeq)
	}
	st := old
	if ch.Pinned != nil {
		st.Pinned = *ch.Pinned
	}
	if ch.Muted != nil {
		st.Muted = *ch.Muted
	}
	if ch.HiddenUpTo != nil {
		st.HiddenUpTo = clamp(*ch.HiddenUpTo)
	}
	if ch.ClearedUpTo != nil {
		if b.bug == "settings-cleared-backward" {
			st.ClearedUpTo = clamp(*ch.ClearedUpTo)
		} else {
			st.ClearedUpTo = max(st.ClearedUpTo, clamp(*ch.ClearedUpTo))
		}
	}
	if st == old && b.bug != "settings-noop-touches" {
		return st, nil
	}
	st.UpdatedAt = ch.At
	if b.bug == "settings-truncate-ms" {
		st.UpdatedAt = st.UpdatedAt.Truncate(time.Millisecond)
	}
	p.m[k] = st
	return st, nil
}

func (b *buggyStore) ConversationSettings(ctx context.Context, userID string, convs []string) ([]im.ConversationSettings, error) {
	if !settingsBug(b.bug) {
		return b.Store.ConversationSettings(b.ctx(ctx), userID, convs)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if b.bug == "settings-dedups-list" {
		// Answers each conversation once, as a store that reads them with
		// "IN (…)" and returns the rows as they come might.
		convs = slices.Clone(convs)
		slices.Sort(convs)
		convs = slices.Compact(convs)
	}
	b.settings.mu.Lock()
	defer b.settings.mu.Unlock()
	out := make([]im.ConversationSettings, len(convs))
	for i, c := range convs {
		st, ok := b.settings.m[[2]string{userID, c}]
		if !ok && b.bug != "settings-no-ids" {
			st = im.ConversationSettings{UserID: userID, ConversationID: c}
		}
		out[i] = st
	}
	return out, nil
}

func (b *buggyStore) ChangedSettings(ctx context.Context, userID string, since time.Time) ([]im.ConversationSettings, error) {
	if !settingsBug(b.bug) {
		return b.Store.ChangedSettings(b.ctx(ctx), userID, since)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.settings.mu.Lock()
	defer b.settings.mu.Unlock()
	var out []im.ConversationSettings
	for k, st := range b.settings.m {
		if k[0] != userID && b.bug != "settings-all-users" {
			continue
		}
		after := st.UpdatedAt.After(since)
		if b.bug == "settings-since-inclusive" {
			after = !st.UpdatedAt.Before(since)
		}
		if after {
			out = append(out, st)
		}
	}
	return out, nil
}
