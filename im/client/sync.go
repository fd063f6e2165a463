package client

import (
	"context"
	"math"
	"slices"
	"strings"

	"github.com/imserver/imserver/im/imv1"
)

// Page sizes: the SDK's BatchSync size, and the protocol's SyncRange maximum.
const (
	syncBatchCount = 100
	syncRangeCount = 500
)

// convState is what the client holds of one conversation: every seq up to
// cursor, plus the seqs in above, which arrived beyond a gap.
type convState struct {
	cursor int64
	top    int64 // highest seq held
	above  map[int64]struct{}
}

// hold records seq as held and reports whether it was new.
func (s *convState) hold(seq int64) bool {
	if seq <= s.cursor {
		return false
	}
	if _, dup := s.above[seq]; dup {
		return false
	}
	s.top = max(s.top, seq)
	if seq != s.cursor+1 {
		if s.above == nil {
			s.above = make(map[int64]struct{})
		}
		s.above[seq] = struct{}{}
		return true
	}
	s.cursor = seq
	s.advance()
	return true
}

// advance moves the cursor over seqs that were held beyond it.
func (s *convState) advance() {
	for len(s.above) > 0 {
		if _, ok := s.above[s.cursor+1]; !ok {
			return
		}
		delete(s.above, s.cursor+1)
		s.cursor++
	}
}

// skipTo gives up on seqs up to seq that the server did not return although
// it said the range was complete, so that they are not asked for forever.
// It returns how many were skipped.
func (s *convState) skipTo(seq int64) int64 {
	if seq <= s.cursor {
		return 0
	}
	skipped := seq - s.cursor
	for q := range s.above {
		if q <= seq {
			delete(s.above, q)
			skipped--
		}
	}
	s.cursor = seq
	s.top = max(s.top, seq)
	s.advance()
	return skipped
}

// state returns the state of conv, creating it. Called with c.mu held.
func (c *Client) state(conv string) *convState {
	s := c.convs[conv]
	if s == nil {
		s = new(convState)
		c.convs[conv] = s
	}
	return s
}

// accept records a message the client received, by push or by sync, and
// reports whether to hand it to the application: not if it was held
// already, and not if it is this client's own Send in flight (its
// acknowledgement may come after a sync that returns it). A held seq beyond
// a gap wakes the worker to repair the gap.
func (c *Client) accept(m *imv1.MessageInfo) bool {
	if m == nil {
		return false
	}
	if m.Seq <= 0 || m.ConversationId == "" {
		return true // cannot be tracked; the server should never send one
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.state(m.ConversationId)
	if !s.hold(m.Seq) {
		return false
	}
	c.noteGap(m.ConversationId, s)
	return !(m.SenderId == c.opts.UserID && c.inflight[m.ClientMsgId] > 0)
}

// noteGap queues conv for repair if it has a gap. Called with c.mu held.
func (c *Client) noteGap(conv string, s *convState) {
	if len(s.above) == 0 {
		return
	}
	c.gaps[conv] = struct{}{}
	select {
	case c.gapc <- struct{}{}:
	default:
	}
}

// Cursor returns the highest seq of conv up to which the client holds every
// message: it moves with pushes, syncs and the client's own Sends.
func (c *Client) Cursor(conv string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.convs[conv]; s != nil {
		return s.cursor
	}
	return 0
}

// Cursors returns a copy of every conversation's cursor, to keep for
// Options.Cursors of a later client.
func (c *Client) Cursors() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int64, len(c.convs))
	for conv, s := range c.convs {
		if s.cursor > 0 {
			m[conv] = s.cursor
		}
	}
	return m
}

// BatchSync asks which conversations moved beyond the given seqs (an empty
// map means all of them) and returns up to maxPerConv of their messages each
// (0 means the server's default). It is the raw request: it neither reads
// nor moves the client's cursors. SyncAll is the managed form.
func (c *Client) BatchSync(ctx context.Context, states map[string]int64, maxPerConv int32) (*imv1.BatchSyncResponse, error) {
	req := &imv1.BatchSyncRequest{MaxCountPerConversation: maxPerConv}
	for conv, seq := range states {
		req.ConversationStates = append(req.ConversationStates, &imv1.ConversationSyncState{ConversationId: conv, LastSeq: seq})
	}
	sortStates(req.ConversationStates)
	rsp := new(imv1.BatchSyncResponse)
	if err := c.Request(ctx, imv1.CommandType_CMD_BATCH_SYNC_REQ, req, rsp); err != nil {
		return nil, err
	}
	return rsp, nil
}

// SyncRange returns up to count messages of conv with start <= seq <= end
// (count 0 means the server's default). Like BatchSync it leaves the cursors
// alone.
func (c *Client) SyncRange(ctx context.Context, conv string, start, end int64, count int32) (*imv1.SyncRangeResponse, error) {
	req := &imv1.SyncRangeRequest{ConversationId: conv, StartSeq: start, EndSeq: end, Count: count}
	rsp := new(imv1.SyncRangeResponse)
	if err := c.Request(ctx, imv1.CommandType_CMD_SYNC_RANGE_REQ, req, rsp); err != nil {
		return nil, err
	}
	return rsp, nil
}

// SyncAll fetches every message newer than the client's cursors: a
// BatchSync, then SyncRange pages for each conversation that has more. It
// moves the cursors and returns the messages the client did not hold yet,
// in seq order within each conversation; a message is returned once, by
// this call or by another SyncAll or as a push, never twice. Call it after
// Dial to catch up; after a reconnect the client runs it by itself. On an
// error it returns what it fetched so far with the error.
func (c *Client) SyncAll(ctx context.Context) ([]*imv1.MessageInfo, error) {
	var out []*imv1.MessageInfo
	cn, err := c.conn(ctx)
	if err != nil {
		return nil, err
	}
	err = c.syncAll(ctx, cn, func(m *imv1.MessageInfo) bool {
		out = append(out, m)
		return true
	})
	return out, err
}

// syncAll is SyncAll on cn that hands each new message to emit; it stops
// when emit returns false.
func (c *Client) syncAll(ctx context.Context, cn *conn, emit func(*imv1.MessageInfo) bool) error {
	req := &imv1.BatchSyncRequest{MaxCountPerConversation: syncBatchCount}
	c.mu.Lock()
	for conv, s := range c.convs {
		if s.cursor > 0 {
			req.ConversationStates = append(req.ConversationStates, &imv1.ConversationSyncState{ConversationId: conv, LastSeq: s.cursor})
		}
	}
	c.mu.Unlock()
	sortStates(req.ConversationStates)
	body, err := marshal(req)
	if err != nil {
		return err
	}
	rsp := new(imv1.BatchSyncResponse)
	if err := c.request(ctx, cn, imv1.CommandType_CMD_BATCH_SYNC_REQ, body, rsp); err != nil {
		return err
	}
	for _, cm := range rsp.ConversationMessages {
		conv := cm.ConversationId
		last, ok := c.take(conv, cm.Messages, emit)
		if !ok {
			return nil
		}
		if !cm.HasMore {
			// Complete up to synced_seq: what it left out below (a
			// history cleared for this user, a group's messages from
			// before she joined) is not hers to ask for again.
			if cm.SyncedSeq > last {
				c.mu.Lock()
				c.state(conv).skipTo(cm.SyncedSeq)
				c.mu.Unlock()
			}
			continue
		}
		// max_seq is cut to synced_seq on a truncated page (the SDK takes it
		// as its cursor), so the end of the conversation is unknown: page up
		// to the largest seq until the server says there is no more.
		from := max(last, cm.SyncedSeq) + 1
		for {
			r, err := c.syncRange(ctx, cn, conv, from, math.MaxInt64)
			if err != nil {
				return err
			}
			last, ok := c.take(conv, r.Messages, emit)
			if !ok {
				return nil
			}
			if !r.HasMore || last < from {
				break
			}
			from = last + 1
		}
	}
	return nil
}

func (c *Client) syncRange(ctx context.Context, cn *conn, conv string, start, end int64) (*imv1.SyncRangeResponse, error) {
	body, err := marshal(&imv1.SyncRangeRequest{ConversationId: conv, StartSeq: start, EndSeq: end, Count: syncRangeCount})
	if err != nil {
		return nil, err
	}
	rsp := new(imv1.SyncRangeResponse)
	if err := c.request(ctx, cn, imv1.CommandType_CMD_SYNC_RANGE_REQ, body, rsp); err != nil {
		return nil, err
	}
	return rsp, nil
}

// take accepts synced messages of conv in seq order and emits the new ones.
// It returns the highest seq among them (0 if none) and false if emit asked
// to stop.
func (c *Client) take(conv string, msgs []*imv1.MessageInfo, emit func(*imv1.MessageInfo) bool) (int64, bool) {
	msgs = slices.DeleteFunc(msgs, func(m *imv1.MessageInfo) bool { return m == nil })
	slices.SortStableFunc(msgs, func(a, b *imv1.MessageInfo) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	var last int64
	for _, m := range msgs {
		if m.ConversationId == "" {
			m.ConversationId = conv // sync pages may leave it to the envelope
		}
		last = max(last, m.Seq)
		if c.accept(m) && !emit(m) {
			return last, false
		}
	}
	return last, true
}

// repairGaps fetches the missing seqs of every conversation queued by
// noteGap, and delivers them as pushes. It runs on the worker goroutine. A
// failure is logged and left: the next push beyond the gap, or the next
// SyncAll, tries again.
func (c *Client) repairGaps(ctx context.Context, cn *conn) {
	c.mu.Lock()
	convs := make([]string, 0, len(c.gaps))
	for conv := range c.gaps {
		convs = append(convs, conv)
	}
	clear(c.gaps)
	c.mu.Unlock()
	slices.Sort(convs)

	for _, conv := range convs {
		c.mu.Lock()
		s := c.state(conv)
		from, to := s.cursor+1, s.top-1
		c.mu.Unlock()
		for from <= to {
			r, err := c.syncRange(ctx, cn, conv, from, to)
			if err != nil {
				if cn.cause() == nil && ctx.Err() == nil {
					c.log.Warn("gap repair failed", "conv", conv, "seq", from, "err", err)
				}
				break
			}
			last, ok := c.take(conv, r.Messages, func(m *imv1.MessageInfo) bool {
				return c.deliver(Push{Command: imv1.CommandType_CMD_PUSH_MSG, Message: &imv1.PushMessage{Message: m}})
			})
			if !ok {
				return
			}
			if !r.HasMore {
				c.mu.Lock()
				n := c.state(conv).skipTo(to)
				c.mu.Unlock()
				if n > 0 {
					c.log.Warn("server did not return missing messages; skipped", "conv", conv, "seq", to, "count", n)
				}
				break
			}
			if last < from {
				c.log.Warn("gap repair made no progress", "conv", conv, "seq", from)
				break
			}
			from = last + 1
		}
	}
}

func sortStates(s []*imv1.ConversationSyncState) {
	slices.SortFunc(s, func(a, b *imv1.ConversationSyncState) int {
		return strings.Compare(a.ConversationId, b.ConversationId)
	})
}
