package im

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"google.golang.org/protobuf/proto"
)

// Sync limits.
const (
	defaultSyncCount = 100
	maxSyncCount     = 500
	// syncByteBudget keeps a sync response well inside MaxFrameSize, which
	// the SDK enforces on every frame it reads.
	syncByteBudget = MaxFrameSize - 64<<10
)

func clampCount(n int32) int {
	switch {
	case n <= 0:
		return defaultSyncCount
	case n > maxSyncCount:
		return maxSyncCount
	}
	return int(n)
}

// handleBatchSync returns, for every conversation of the user that moved
// past the client's cursor, the messages after that cursor.
func (s *Server) handleBatchSync(sess *session, f Frame) {
	var req imv1.BatchSyncRequest
	if err := proto.Unmarshal(f.Body, &req); err != nil {
		s.respondError(sess, f, errMalformed(err))
		return
	}
	limit := clampCount(req.MaxCountPerConversation)
	known := make(map[string]int64, len(req.ConversationStates))
	for _, st := range req.ConversationStates {
		known[st.ConversationId] = st.LastSeq
	}
	convs, err := s.userConversations(sess.ctx, sess.user)
	if err != nil {
		s.respondError(sess, f, err)
		return
	}
	// A stable order, so that a client cut short by the byte budget gets
	// the same conversations first next time rather than random ones.
	slices.SortFunc(convs, func(a, b Conversation) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	// Each conversation once, even from a Store that lists a group's
	// conversation among the user's own too.
	convs = slices.CompactFunc(convs, func(a, b Conversation) bool { return a.ID == b.ID })
	var changed []MessageRange
	// recheck holds the group conversations whose first readable seq the
	// Server read itself, apart from the list: their membership is read
	// again after their messages.
	var recheck map[string]bool
	for _, c := range convs {
		last := max(known[c.ID], 0)
		if c.MaxSeq <= last {
			continue
		}
		r := MessageRange{ConversationID: c.ID, From: last + 1, To: c.MaxSeq}
		if ConversationTypeOf(c.ID) == GroupConversation {
			// Nothing before the user's first readable seq, whatever
			// cursor the client sends.
			from := c.ReadFrom
			if from < 1 {
				var ok bool
				from, ok, err = s.readableFrom(sess.ctx, c.ID, sess.user, r.From)
				if err != nil {
					s.respondError(sess, f, err)
					return
				}
				if !ok {
					continue
				}
				if recheck == nil {
					recheck = make(map[string]bool)
				}
				recheck[c.ID] = true
			}
			r.From = max(r.From, from)
			if r.From > r.To {
				continue
			}
		}
		changed = append(changed, r)
	}
	rsp := &imv1.BatchSyncResponse{}
	// What the user cleared of her history is not hers to read: one
	// settings read for the conversations that moved.
	if changed, err = s.skipCleared(sess.ctx, sess.user, changed, rsp); err != nil {
		s.respondError(sess, f, err)
		return
	}
	// The conversations cleared whole are encoded as they are; the others
	// follow, by hand (syncwire.go), in the same field: the body is what
	// proto.Marshal would make of the whole response.
	body, err := proto.Marshal(rsp)
	if err != nil {
		s.respondError(sess, f, fmt.Errorf("im: encode sync response: %w", err))
		return
	}
	enc := s.newSyncEncoder(body)
	defer s.releaseSyncEncoder(&enc)
	total := int32(0)
	budget := syncByteBudget
	for len(changed) > 0 && budget > 0 {
		n := rangesPerRead(changed, limit)
		part := changed[:n]
		changed = changed[n:]
		err := s.scanMessageRanges(sess.ctx, part, limit, func(i int, page []Message) error {
			r := part[i]
			if recheck[r.ConversationID] && len(page) > 0 {
				// Without a SyncStore (or ReadFrom from it) the user's
				// groups, their max seqs and what she may read come from
				// separate reads, so a user removed in between could be
				// given what followed her removal. Checked after the
				// read: a user removed before it reads nothing, one
				// removed after it read what was hers. (SyncConversations
				// lists in one snapshot.)
				from, ok, err := s.readableFrom(sess.ctx, r.ConversationID, sess.user, r.From)
				if err != nil {
					return err
				}
				if !ok {
					return nil
				}
				// The page is in seq order: what she may not read is a
				// prefix of it.
				for len(page) > 0 && page[0].Seq < from {
					page = page[1:]
				}
			}
			var taken int
			taken, budget = enc.conversation(r.ConversationID, r.From, r.To, page, budget, total == 0)
			total += int32(taken)
			return nil
		})
		if err != nil {
			s.respondError(sess, f, err)
			return
		}
	}
	// The ranges left once the budget ran out get no messages; each still
	// tells the client its max seq, so that it asks again (has_more).
	for _, r := range changed {
		_, budget = enc.conversation(r.ConversationID, r.From, r.To, nil, budget, total == 0)
	}
	sess.respondBody(imv1.CommandType_CMD_BATCH_SYNC_RSP, f.Sequence, enc.finish(time.Now().UnixMilli(), total))
}

// skipCleared moves the start of each range past what the user cleared of
// her history of its conversation (ConversationSettings.ClearedUpTo), in
// one Store read per listStateChunk ranges, none without
// ConversationSettingsStore. A conversation she cleared all of is added to
// rsp at once, with no messages and synced_seq its max seq, so that a
// client's cursor moves past what it will never be given; the others are
// returned.
func (s *Server) skipCleared(ctx context.Context, user string, ranges []MessageRange, rsp *imv1.BatchSyncResponse) ([]MessageRange, error) {
	if s.settings == nil || len(ranges) == 0 {
		return ranges, nil
	}
	ids := make([]string, len(ranges))
	for i, r := range ranges {
		ids[i] = r.ConversationID
	}
	set, err := s.settingsOf(ctx, user, ids)
	if err != nil {
		return nil, err
	}
	kept := ranges[:0]
	for i, r := range ranges {
		r.From = max(r.From, set[i].ClearedUpTo+1)
		if r.From > r.To {
			rsp.ConversationMessages = append(rsp.ConversationMessages, &imv1.ConversationMessages{ConversationId: r.ConversationID, MaxSeq: r.To, SyncedSeq: r.To})
			continue
		}
		kept = append(kept, r)
	}
	return kept, nil
}

// Bounds of one MessageRanges call in a BATCH_SYNC. The response stops at
// syncByteBudget (about a MiB) anyway, so a read of many more messages than
// fit would be thrown away.
const (
	maxMessagesPerRead = 4096
	maxRangesPerRead   = 256
)

// rangesPerRead returns how many of ranges (at least one) the next read
// covers: as many as hold maxMessagesPerRead messages at most. Seqs are
// gap-free, so a range [From, To] holds To-From+1 messages, limit at most.
func rangesPerRead(ranges []MessageRange, limit int) int {
	n, msgs := 0, 0
	for n < len(ranges) && n < maxRangesPerRead {
		msgs += int(min(ranges[n].To-ranges[n].From+1, int64(limit)))
		if n > 0 && msgs > maxMessagesPerRead {
			break
		}
		n++
	}
	return n
}

// messageRanges reads the messages of each range, at most limit each: in
// one call when the Store is a SyncStore, else one Messages call per range.
func (s *Server) messageRanges(ctx context.Context, ranges []MessageRange, limit int) (_ [][]Message, err error) {
	if s.sync != nil {
		defer s.recoverStore("MessageRanges", &err)
		pages, err := s.sync.MessageRanges(ctx, ranges, limit)
		if err == nil && len(pages) != len(ranges) {
			err = fmt.Errorf("im: SyncStore.MessageRanges returned %d pages for %d ranges", len(pages), len(ranges))
		}
		return pages, err
	}
	defer s.recoverStore("Messages", &err)
	pages := make([][]Message, len(ranges))
	for i, r := range ranges {
		msgs, err := s.store.Messages(ctx, r.ConversationID, r.From, r.To, limit)
		if err != nil {
			return nil, err
		}
		pages[i] = msgs
	}
	return pages, nil
}

// scanMessageRanges calls fn with the messages of each range, at most
// limit each, in the order of ranges. It reads them with the Store's
// MessageRangeScanner when it has one, so that the pages are not kept:
// fn must not keep page, or the Content of its messages.
func (s *Server) scanMessageRanges(ctx context.Context, ranges []MessageRange, limit int, fn func(i int, page []Message) error) (err error) {
	if s.scan == nil {
		pages, err := s.messageRanges(ctx, ranges, limit)
		if err != nil {
			return err
		}
		for i, page := range pages {
			if err := fn(i, page); err != nil {
				return err
			}
		}
		return nil
	}
	// fn's own errors are passed through, and a panic in fn is not the
	// Store's: it goes on up, as it would without a scanner.
	var (
		fnErr error
		inFn  bool
		calls int
	)
	err = func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				if inFn {
					panic(v)
				}
				err = s.storePanicked("ScanMessageRanges", v)
			}
		}()
		return s.scan.ScanMessageRanges(ctx, ranges, limit, func(i int, page []Message) error {
			if i != calls || i >= len(ranges) {
				return fmt.Errorf("im: MessageRangeScanner called back for range %d of %d, want %d", i, len(ranges), calls)
			}
			calls++
			inFn = true
			fnErr = fn(i, page)
			inFn = false
			return fnErr
		})
	}()
	switch {
	case fnErr != nil:
		return fnErr
	case err != nil:
		return err
	case calls != len(ranges):
		return fmt.Errorf("im: MessageRangeScanner called back for %d of %d ranges", calls, len(ranges))
	}
	return nil
}

// appendWithin converts msgs to wire form and appends them to dst while they
// fit in budget bytes. When first is set the first message is taken whatever
// its size, so that a sync always makes progress (one message always fits in
// a frame: Config.MaxContentSize is at most half of it).
func appendWithin(dst []*imv1.MessageInfo, msgs []Message, budget int, first bool) ([]*imv1.MessageInfo, int) {
	for i, m := range msgs {
		w := toWire(m)
		size := proto.Size(w) + 8 // field tag and length prefix
		if size > budget && !(first && i == 0) {
			return dst, 0
		}
		dst = append(dst, w)
		budget -= size
	}
	return dst, budget
}

// handleSyncRange returns the messages of one conversation in a seq range:
// how a client fills a gap it saw in pushes, or pages through has_more.
func (s *Server) handleSyncRange(sess *session, f Frame) {
	var req imv1.SyncRangeRequest
	if err := proto.Unmarshal(f.Body, &req); err != nil {
		s.respondError(sess, f, errMalformed(err))
		return
	}
	// A group's membership is a store read: made once, after the messages
	// are read, so that a removal before or during the read leaves nothing
	// past it readable. The other kinds are checked from the id alone.
	group := ConversationTypeOf(req.ConversationId) == GroupConversation
	if !group && !s.allowRead(sess, f, req.ConversationId) {
		return
	}
	start := max(req.StartSeq, 1)
	if req.EndSeq > 0 && req.EndSeq < start {
		if group && !s.allowRead(sess, f, req.ConversationId) {
			return
		}
		s.respondError(sess, f, errorf(CodeInvalidArgument, ErrInvalidArgument, "end_seq is before start_seq"))
		return
	}
	rsp := &imv1.SyncRangeResponse{RequestId: req.RequestId, ConversationId: req.ConversationId}
	// Nothing up to what the user cleared of her history.
	cleared, err := s.clearedUpTo(sess.ctx, sess.user, req.ConversationId)
	if err != nil {
		s.respondError(sess, f, err)
		return
	}
	start = max(start, cleared+1)
	var (
		msgs []Message
		end  int64
	)
	for pass := 1; ; pass++ {
		msgs, end, err = s.readRange(sess.ctx, req.ConversationId, start, req.EndSeq, clampCount(req.Count))
		if !group {
			break
		}
		from, ok, cerr := s.readableFrom(sess.ctx, req.ConversationId, sess.user, start)
		if cerr == nil && !ok {
			cerr = errorf(CodePermissionDenied, ErrPermissionDenied, "not a member of this conversation")
		}
		if cerr != nil {
			s.respondError(sess, f, cerr)
			return
		}
		if from <= start || err != nil {
			break
		}
		// What was read began before the user's first readable seq: it
		// is thrown away and read again from there, so that the page is
		// not spent on messages she may not have. Should that seq move
		// again meanwhile, what lies below it is dropped.
		start = from
		if pass > 1 {
			msgs = slices.DeleteFunc(msgs, func(m Message) bool { return m.Seq < from })
			break
		}
	}
	if err != nil {
		s.respondError(sess, f, err)
		return
	}
	if start <= end {
		rsp.Messages, _ = appendWithin(nil, msgs, syncByteBudget, true)
	}
	if n := len(rsp.Messages); n > 0 {
		rsp.StartSeq, rsp.EndSeq = rsp.Messages[0].Seq, rsp.Messages[n-1].Seq
		rsp.HasMore = rsp.EndSeq < end
	}
	sess.respond(imv1.CommandType_CMD_SYNC_RANGE_RSP, f.Sequence, rsp)
}

// allowRead reports whether sess's user may read conversation conv, and
// answers request f with the refusal when not.
func (s *Server) allowRead(sess *session, f Frame, conv string) bool {
	ok, err := s.isMember(sess.ctx, conv, sess.user)
	if err == nil && !ok {
		err = errorf(CodePermissionDenied, ErrPermissionDenied, "not a member of this conversation")
	}
	if err != nil {
		s.respondError(sess, f, err)
		return false
	}
	return true
}

// readRange reads the messages of conv from seq start to end (the
// conversation's last one when end is 0), at most count, and returns them
// with the last seq asked for that exists.
func (s *Server) readRange(ctx context.Context, conv string, start, end int64, count int) (msgs []Message, last int64, err error) {
	c, err := s.conversation(ctx, conv)
	if err != nil {
		return nil, 0, err
	}
	defer s.recoverStore("Messages", &err)
	last = c.MaxSeq
	if end > 0 {
		last = min(last, end)
	}
	if start > last {
		return nil, last, nil
	}
	msgs, err = s.store.Messages(ctx, conv, start, last, count)
	return msgs, last, err
}

// readableFrom reports whether user may read conversation conv now, as the
// store says, and the first seq she may read (FirstReadableSeq for a
// group's conversation, 1 for the others). When the user's membership
// began at start or before, everything from start is hers whatever the
// group's setting, and the group itself is not read: the seq returned is
// then at most start.
func (s *Server) readableFrom(ctx context.Context, conv, user string, start int64) (from int64, ok bool, err error) {
	if ConversationTypeOf(conv) != GroupConversation {
		ok, err := s.isMember(ctx, conv, user)
		return 1, ok, err
	}
	gid, _ := groupOf(conv)
	if !validID(gid) || !validID(user) {
		return 0, false, nil
	}
	defer s.recoverStore("GroupMember", &err)
	m, err := s.store.GroupMember(ctx, gid, user)
	if errors.Is(err, ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if m.JoinSeq <= max(start, 1) {
		return max(m.JoinSeq, 1), true, nil
	}
	g, err := s.store.Group(ctx, gid)
	if errors.Is(err, ErrNotFound) {
		return 0, false, nil // dismissed meanwhile
	}
	if err != nil {
		return 0, false, err
	}
	return FirstReadableSeq(g, m), true, nil
}

// isMember reports whether user belongs to conversation conv. For a group
// that means being a member now, as the store says (not the cache, which
// another server's change may have outdated): a user who left reads none of
// its history.
func (s *Server) isMember(ctx context.Context, conv, user string) (ok bool, err error) {
	switch ConversationTypeOf(conv) {
	case SingleConversation:
		_, ok := peerOf(conv, user)
		return ok, nil
	case SystemConversation:
		return conv == SystemConversationID(user), nil
	case GroupConversation:
		gid, _ := groupOf(conv)
		if !validID(gid) {
			return false, nil
		}
		defer s.recoverStore("GroupMember", &err)
		_, err = s.store.GroupMember(ctx, gid, user)
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	return false, nil
}

// userConversations returns the conversations user belongs to: those the
// store records (one-to-one and system) and those of the user's groups that
// have messages. A SyncStore answers in one read; otherwise it takes one
// read per group.
func (s *Server) userConversations(ctx context.Context, user string) (_ []Conversation, err error) {
	if s.sync != nil {
		defer s.recoverStore("SyncConversations", &err)
		return s.sync.SyncConversations(ctx, user)
	}
	defer s.recoverStore("UserConversations", &err)
	convs, err := s.store.UserConversations(ctx, user)
	if err != nil {
		return nil, err
	}
	groups, err := s.store.UserGroups(ctx, user)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		c, err := s.store.Conversation(ctx, GroupConversationID(g))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		convs = append(convs, c)
	}
	return convs, nil
}
