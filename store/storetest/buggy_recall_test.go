package storetest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/imserver/imserver/im"
)

// The im.RecallStore methods of buggyStore, each breaking one rule when its
// bug is set, and patchRecalled, which the read methods apply to what they
// return.

var _ im.RecallStore = (*buggyStore)(nil)

// recallBugs is what the recall bugs remember. Guarded by buggyStore.mu.
type recallBugs struct {
	// originals holds each recalled message as it was before, by
	// conversation and seq, for the bugs that let content through.
	originals map[string]im.Message
	// latest holds the last recall of each message, for recall-overwrites.
	latest map[string]im.Message
	// convOf maps each stored ServerID to its conversation, for
	// byid-any-conversation.
	convOf map[string]string
}

func recallKey(conv string, seq int64) string { return fmt.Sprintf("%s\x00%d", conv, seq) }

// noteAppended records where stored messages live.
func (b *buggyStore) noteAppended(res []im.AppendResult) {
	if b.bug != "byid-any-conversation" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.recalls.convOf == nil {
		b.recalls.convOf = make(map[string]string)
	}
	for _, r := range res {
		if r.Err == nil && !r.Duplicate {
			b.recalls.convOf[r.Message.ServerID] = r.Message.ConversationID
		}
	}
}

// patchRecalled breaks a recalled message on the way out as the bug says:
// path is the read it comes from ("read", "ranges", "dedup", "recall").
func (b *buggyStore) patchRecalled(m im.Message, path string) im.Message {
	if !m.Revoked() || !strings.HasPrefix(b.bug, "recall-") {
		return m
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	k := recallKey(m.ConversationID, m.Seq)
	if l, ok := b.recalls.latest[k]; ok && b.bug == "recall-overwrites" {
		m.RevokedBy, m.RevokedAt = l.RevokedBy, l.RevokedAt
	}
	orig, ok := b.recalls.originals[k]
	if ok && (b.bug == "recall-keeps-content" ||
		b.bug == "recall-dedup-original" && path == "dedup" ||
		b.bug == "recall-ranges-original" && path == "ranges") {
		m.Content, m.Extra, m.AttachedInfo = orig.Content, orig.Extra, orig.AttachedInfo
	}
	return m
}

func (b *buggyStore) patchAll(ms []im.Message, path string) {
	for i := range ms {
		ms[i] = b.patchRecalled(ms[i], path)
	}
}

func (b *buggyStore) MessageByServerID(ctx context.Context, conv, serverID string) (im.Message, error) {
	m, err := b.Store.MessageByServerID(b.ctx(ctx), conv, serverID)
	switch {
	case b.bug == "byid-newest-only" && err == nil:
		// Searches the newest few messages only, as a store that
		// looks in its recent messages and forgets the rest might.
		if c, cerr := b.Store.Conversation(ctx, conv); cerr == nil && m.Seq <= c.MaxSeq-10 {
			return im.Message{}, fmt.Errorf("buggy: %w", im.ErrNotFound)
		}
	case b.bug == "byid-any-conversation" && errors.Is(err, im.ErrNotFound):
		// Finds the id whatever its conversation.
		b.mu.Lock()
		other, ok := b.recalls.convOf[serverID]
		b.mu.Unlock()
		if ok {
			m, err = b.Store.MessageByServerID(ctx, other, serverID)
		}
	}
	if err != nil {
		return m, err
	}
	return b.patchRecalled(m, "read"), nil
}

func (b *buggyStore) RecallMessage(ctx context.Context, conv string, seq int64, by string, at time.Time) (im.Message, error) {
	if b.bug == "recall-truncate-ms" {
		at = at.Truncate(time.Millisecond)
	}
	var orig []im.Message
	if strings.HasPrefix(b.bug, "recall-") {
		orig, _ = b.Store.Messages(context.WithoutCancel(ctx), conv, seq, seq, 1)
	}
	m, err := b.Store.RecallMessage(b.ctx(ctx), conv, seq, by, at)
	if b.bug == "recall-missing-ok" && errors.Is(err, im.ErrNotFound) {
		return im.Message{}, nil
	}
	if err != nil {
		return m, b.accept(err)
	}
	b.mu.Lock()
	if len(orig) == 1 && !orig[0].Revoked() {
		if b.recalls.originals == nil {
			b.recalls.originals = make(map[string]im.Message)
		}
		b.recalls.originals[recallKey(conv, seq)] = orig[0]
	}
	if b.recalls.latest == nil {
		b.recalls.latest = make(map[string]im.Message)
	}
	l := m
	l.RevokedBy, l.RevokedAt = by, at
	b.recalls.latest[recallKey(conv, seq)] = l
	b.mu.Unlock()
	return b.patchRecalled(m, "recall"), nil
}
