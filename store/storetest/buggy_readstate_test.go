package storetest_test

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/imserver/imserver/im"
)

var _ im.ReadStateStore = (*buggyStore)(nil)

// buggyPositions is the buggy stores' own read state, kept beside
// memstore's (which then holds only what senders' messages imply) for the
// bugs that memstore's correct UpdateReadStates cannot show.
type buggyPositions struct {
	mu  sync.Mutex
	pos map[[2]string][2]int64 // (user, conv) → read, delivered
}

// readStateBug reports whether bug is served by buggyPositions.
func readStateBug(bug string) bool {
	switch bug {
	case "read-backward", "read-unclamped", "read-batch-partial", "read-ignores-sender", "read-no-validation", "read-not-listed":
		return true
	}
	return false
}

func (b *buggyStore) UpdateReadStates(ctx context.Context, states []im.ReadState) ([]im.ReadState, error) {
	if b.bug == "updatedat-dropped" {
		states = slices.Clone(states)
		for i := range states {
			states[i].UpdatedAt = time.Time{}
		}
	}
	if b.bug == "mention-dropped" {
		states = slices.Clone(states)
		for i := range states {
			states[i].Mentioned = 0
		}
	}
	if !readStateBug(b.bug) {
		out, err := b.Store.UpdateReadStates(b.ctx(ctx), states)
		return out, b.accept(err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if b.bug != "read-no-validation" {
		for _, st := range states {
			if err := im.ValidateReadState(st); err != nil {
				return nil, err
			}
		}
	}
	p := &b.positions
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pos == nil {
		p.pos = make(map[[2]string][2]int64)
	}
	out := make([]im.ReadState, len(states))
	for i, st := range states {
		var maxSeq int64
		if c, err := b.Store.Conversation(ctx, st.ConversationID); err == nil {
			maxSeq = c.MaxSeq
		}
		k := [2]string{st.UserID, st.ConversationID}
		v := p.pos[k]
		for j, given := range []int64{st.Read, st.Delivered} {
			if b.bug != "read-unclamped" {
				given = min(given, maxSeq)
			}
			if b.bug == "read-backward" && given != 0 {
				v[j] = given // the last receipt wins, however old
			} else {
				v[j] = max(v[j], given)
			}
		}
		p.pos[k] = v
		out[i] = im.ReadState{UserID: st.UserID, ConversationID: st.ConversationID, Read: v[0], Delivered: v[1]}
	}
	if b.bug != "read-batch-partial" {
		for i, st := range out {
			v := p.pos[[2]string{st.UserID, st.ConversationID}]
			out[i].Read, out[i].Delivered = v[0], v[1]
		}
	}
	return b.withSent(ctx, out)
}

// withSent raises each state's Read to what its user's messages imply,
// which memstore's own read state holds, unless the bug forgets them.
func (b *buggyStore) withSent(ctx context.Context, states []im.ReadState) ([]im.ReadState, error) {
	if b.bug == "read-ignores-sender" {
		return states, nil
	}
	for i, st := range states {
		sent, err := b.Store.ReadStates(ctx, st.UserID, []string{st.ConversationID})
		if err != nil {
			return nil, err
		}
		states[i].Read = max(st.Read, sent[0].Read)
	}
	return states, nil
}

func (b *buggyStore) ReadStates(ctx context.Context, userID string, convs []string) ([]im.ReadState, error) {
	if !readStateBug(b.bug) {
		return b.Store.ReadStates(b.ctx(ctx), userID, convs)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]im.ReadState, len(convs))
	b.positions.mu.Lock()
	for i, c := range convs {
		v := b.positions.pos[[2]string{userID, c}]
		out[i] = im.ReadState{UserID: userID, ConversationID: c, Read: v[0], Delivered: v[1]}
	}
	b.positions.mu.Unlock()
	return b.withSent(ctx, out)
}

func (b *buggyStore) ConversationReadStates(ctx context.Context, conv string) ([]im.ReadState, error) {
	if !readStateBug(b.bug) {
		return b.Store.ConversationReadStates(b.ctx(ctx), conv)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	users := make(map[string]bool)
	if b.bug != "read-not-listed" {
		b.positions.mu.Lock()
		for k, v := range b.positions.pos {
			if k[1] == conv && v != [2]int64{} {
				users[k[0]] = true
			}
		}
		b.positions.mu.Unlock()
	}
	sent, err := b.Store.ConversationReadStates(ctx, conv)
	if err != nil {
		return nil, err
	}
	for _, st := range sent {
		users[st.UserID] = true
	}
	var out []im.ReadState
	for u := range users {
		st, err := b.ReadStates(ctx, u, []string{conv})
		if err != nil {
			return nil, err
		}
		out = append(out, st[0])
	}
	return out, nil
}
