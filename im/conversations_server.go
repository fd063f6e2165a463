package im

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"google.golang.org/protobuf/proto"
)

// The conversation list and each user's own settings of her conversations
// (pin, mute, hide, clear history). The list is derived on every request
// from what the Store keeps anyway: the user's conversations as sync reads
// them (SyncStore.SyncConversations), their newest messages
// (SyncStore.MessageRanges), her read states (ReadStateStore) and her
// settings (ConversationSettingsStore), each read in as few calls as the
// Store allows. Nothing is kept per user besides, so there is nothing to
// keep in step when a message arrives.

// Chunks of the list's reads: the ids per ReadStates and
// ConversationSettings call (the Store contracts ask for at most a few
// thousand), the last messages per MessageRanges call (a few hundred).
const (
	listStateChunk   = 1000
	listMessageChunk = maxRangesPerRead
	// maxCursorLen bounds a cursor a client sends back: ours hold a
	// conversation id and three numbers.
	maxCursorLen = 512
)

// errNoSettings answers settings changes on a Store without
// ConversationSettingsStore.
var errNoSettings = errorf(CodeUnknown, ErrUnsupported, "conversation settings are not supported by this server's store")

// Conversations returns a page of userID's conversation list: her
// one-to-one conversations, her system conversation and those of her
// groups, as BATCH_SYNC finds them, each with its newest message she may
// read, her read position, unread count and mention, and her settings.
// Messages she cleared are neither shown nor counted; conversations she
// hid are left out (see ConversationQuery.Since for incremental listings,
// which include them). A group she left is no longer listed.
//
// On a Store without ReadStateStore the page says so
// (ConversationPage.HasReadState) and Read, Unread and Mentioned are
// zero; without ConversationSettingsStore every conversation reads as
// unpinned, unmuted, shown and uncleared.
//
// A page also stops before the wire form of its entries would pass about
// a frame's worth of bytes (MaxFrameSize), with at least one entry: the
// last messages may be large.
func (s *Server) Conversations(ctx context.Context, userID string, q ConversationQuery) (ConversationPage, error) {
	p, _, err := s.conversations(ctx, userID, q)
	return p, err
}

// listCursor is where a listing stands: the sort key of the last entry
// given, and the Since and Version the listing began with.
type listCursor struct {
	pinned           bool
	updated          int64 // UpdatedAt, Unix microseconds
	id               string
	since, version   int64 // Unix microseconds; since 0 for none
	sinceT, versionT time.Time
}

const cursorPrefix = "c1"

func (c listCursor) encode() string {
	p := "0"
	if c.pinned {
		p = "1"
	}
	raw := strings.Join([]string{cursorPrefix, p, strconv.FormatInt(c.updated, 10), strconv.FormatInt(c.since, 10), strconv.FormatInt(c.version, 10), c.id}, "|")
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func errBadCursor() *Error {
	return errorf(CodeInvalidArgument, ErrInvalidArgument, "invalid cursor: send next_cursor of the previous page as it was given")
}

func decodeCursor(s string) (listCursor, error) {
	if len(s) > maxCursorLen {
		return listCursor{}, errBadCursor()
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return listCursor{}, errBadCursor()
	}
	// The id comes last: it may hold "|" itself.
	parts := strings.SplitN(string(raw), "|", 6)
	if len(parts) != 6 || parts[0] != cursorPrefix || (parts[1] != "0" && parts[1] != "1") {
		return listCursor{}, errBadCursor()
	}
	var c listCursor
	c.pinned = parts[1] == "1"
	for i, dst := range []*int64{&c.updated, &c.since, &c.version} {
		n, err := strconv.ParseInt(parts[2+i], 10, 64)
		if err != nil {
			return listCursor{}, errBadCursor()
		}
		*dst = n
	}
	c.id = parts[5]
	if c.since < 0 || c.version <= 0 || ValidateConversationID(c.id) != nil {
		return listCursor{}, errBadCursor()
	}
	if c.since > 0 {
		c.sinceT = time.UnixMicro(c.since)
	}
	c.versionT = time.UnixMicro(c.version)
	return c, nil
}

// compareEntries is the list's order: pinned first, then the most
// recently updated, then by id. UpdatedAt is compared in microseconds, as
// cursors keep it.
func compareEntries(a, b *ConversationEntry) int {
	if a.Pinned != b.Pinned {
		if a.Pinned {
			return -1
		}
		return 1
	}
	return cmp.Or(cmp.Compare(b.UpdatedAt.UnixMicro(), a.UpdatedAt.UnixMicro()), strings.Compare(a.ID, b.ID))
}

// before reports whether the place c names comes before e in the list.
func (c listCursor) before(e *ConversationEntry) bool {
	at := ConversationEntry{Pinned: c.pinned, UpdatedAt: time.UnixMicro(c.updated), ID: c.id}
	return compareEntries(&at, e) < 0
}

// conversations is Conversations, returning the page's wire form as well.
func (s *Server) conversations(ctx context.Context, user string, q ConversationQuery) (ConversationPage, []*imv1.ConversationInfo, error) {
	if !validID(user) {
		return ConversationPage{}, nil, errorf(CodeInvalidArgument, ErrInvalidArgument, "invalid user id")
	}
	limit := q.Limit
	switch {
	case limit < 0:
		return ConversationPage{}, nil, errorf(CodeInvalidArgument, ErrInvalidArgument, "limit must not be negative")
	case limit == 0:
		limit = DefaultConversationPage
	case limit > MaxConversationPage:
		limit = MaxConversationPage
	}
	since := q.Since
	version := time.Now().Add(-conversationVersionMargin).Truncate(time.Millisecond)
	var cur *listCursor
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return ConversationPage{}, nil, err
		}
		if !since.IsZero() && since.UnixMicro() != c.since {
			return ConversationPage{}, nil, errorf(CodeInvalidArgument, ErrInvalidArgument, "since differs from the listing the cursor belongs to")
		}
		since, version, cur = c.sinceT, c.versionT, &c
	}
	convs, err := s.userConversations(ctx, user)
	if err != nil {
		return ConversationPage{}, nil, err
	}
	// Each once, even from a Store that lists a group's conversation
	// among the user's own too.
	slices.SortFunc(convs, func(a, b Conversation) int { return strings.Compare(a.ID, b.ID) })
	convs = slices.CompactFunc(convs, func(a, b Conversation) bool { return a.ID == b.ID })
	entries, err := s.conversationEntries(ctx, user, convs)
	if err != nil {
		return ConversationPage{}, nil, err
	}
	entries = slices.DeleteFunc(entries, func(e ConversationEntry) bool {
		if since.IsZero() {
			return e.Hidden
		}
		return !e.UpdatedAt.After(since)
	})
	slices.SortFunc(entries, func(a, b ConversationEntry) int { return compareEntries(&a, &b) })
	if cur != nil {
		i, _ := slices.BinarySearchFunc(entries, cur, func(e ConversationEntry, c *listCursor) int {
			if c.before(&e) {
				return 1
			}
			return -1
		})
		entries = entries[i:]
	}
	page := ConversationPage{Version: version, HasReadState: s.reads != nil}
	var wire []*imv1.ConversationInfo
	budget := syncByteBudget
	for i := range entries {
		if len(wire) == limit {
			break
		}
		w := entryToWire(&entries[i])
		size := proto.Size(w) + 8 // field tag and length prefix
		if size > budget && len(wire) > 0 {
			break
		}
		budget -= size
		wire = append(wire, w)
	}
	page.Conversations = entries[:len(wire):len(wire)]
	if len(wire) < len(entries) {
		last := page.Conversations[len(wire)-1]
		c := listCursor{pinned: last.Pinned, updated: last.UpdatedAt.UnixMicro(), id: last.ID, version: version.UnixMicro()}
		if !since.IsZero() {
			c.since = since.UnixMicro()
		}
		page.Next = c.encode()
	}
	return page, wire, nil
}

// conversationEntries builds the list entries of user's conversations
// convs, in the same order, leaving out groups she turns out to have left
// meanwhile. Reads: her settings and her read states, a call per
// listStateChunk conversations each, the last messages, a call per
// listMessageChunk, and on a Store whose SyncConversations does not give a
// group's first readable seq, the membership of each group with unread
// messages.
func (s *Server) conversationEntries(ctx context.Context, user string, convs []Conversation) ([]ConversationEntry, error) {
	ids := make([]string, len(convs))
	for i, c := range convs {
		ids[i] = c.ID
	}
	settings, err := s.settingsOf(ctx, user, ids)
	if err != nil {
		return nil, err
	}
	var states []ReadState
	if s.reads != nil {
		if states, err = s.readStatesOf(ctx, user, ids); err != nil {
			return nil, err
		}
	}
	out := make([]ConversationEntry, 0, len(convs))
	last := make([]MessageRange, 0, len(convs))
	for i, c := range convs {
		e := ConversationEntry{ID: c.ID, Type: ConversationTypeOf(c.ID), MaxSeq: c.MaxSeq}
		var st ReadState
		if states != nil {
			st = s.withPending(states[i])
		}
		var set ConversationSettings
		if settings != nil {
			set = settings[i]
		}
		e.Pinned, e.Muted, e.ClearedUpTo = set.Pinned, set.Muted, set.ClearedUpTo
		e.Hidden = set.HiddenUpTo > 0 && c.MaxSeq <= set.HiddenUpTo
		// Her first readable seq: the group's, and past what she
		// cleared. A group's is read here only when it matters for
		// unread, as ReadStates does.
		from := c.ReadFrom
		if from == 0 && states != nil && e.Type == GroupConversation && c.MaxSeq > max(st.Read, set.ClearedUpTo) {
			f, ok, err := s.readableFrom(ctx, c.ID, user, max(st.Read, set.ClearedUpTo)+1)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue // left meanwhile
			}
			from = f
		}
		from = max(from, set.ClearedUpTo+1, 1)
		if states != nil {
			e.Read = st.Read
			e.Unread = Unread(c.MaxSeq, st.Read, from)
			e.Mentioned = st.Mentioned > max(st.Read, from-1)
		}
		e.UpdatedAt = latest(set.UpdatedAt, st.UpdatedAt)
		if c.MaxSeq >= from {
			last = append(last, MessageRange{ConversationID: c.ID, From: c.MaxSeq, To: c.MaxSeq})
		}
		out = append(out, e)
	}
	// The last messages, matched back by id: out is in id order as convs
	// are, and so is last.
	j := 0
	for len(last) > 0 {
		n := min(len(last), listMessageChunk)
		pages, err := s.messageRanges(ctx, last[:n], 1)
		if err != nil {
			return nil, err
		}
		for k, r := range last[:n] {
			for out[j].ID != r.ConversationID {
				j++
			}
			if len(pages[k]) == 1 && pages[k][0].Seq == r.To {
				m := &pages[k][0]
				out[j].LastMessage = m
				out[j].UpdatedAt = latest(out[j].UpdatedAt, m.CreatedAt)
			}
		}
		last = last[n:]
	}
	return out, nil
}

// latest returns the later of a and b, in microseconds, the precision
// cursors and Stores keep.
func latest(a, b time.Time) time.Time {
	t := a
	if b.After(a) {
		t = b
	}
	if t.IsZero() {
		return t
	}
	return time.UnixMicro(t.UnixMicro())
}

// settingsOf asks the Store for user's settings of convs, listStateChunk
// at a time; nil without ConversationSettingsStore.
func (s *Server) settingsOf(ctx context.Context, user string, convs []string) (_ []ConversationSettings, err error) {
	if s.settings == nil {
		return nil, nil
	}
	defer s.recoverStore("ConversationSettings", &err)
	var out []ConversationSettings
	for len(convs) > 0 {
		n := min(len(convs), listStateChunk)
		part, err := s.settings.ConversationSettings(ctx, user, convs[:n])
		if err != nil {
			return nil, err
		}
		if len(part) != n {
			return nil, errorf(CodeUnknown, ErrCorrupt, "store returned %d conversation settings for %d conversations", len(part), n)
		}
		if out == nil && n == len(convs) {
			return part, nil // one call: no copy
		}
		out = append(out, part...)
		convs = convs[n:]
	}
	if out == nil {
		out = []ConversationSettings{}
	}
	return out, nil
}

// clearedUpTo returns how far user cleared her history of conv: 0 on a
// Store without ConversationSettingsStore, which costs no read.
func (s *Server) clearedUpTo(ctx context.Context, user, conv string) (int64, error) {
	set, err := s.settingsOf(ctx, user, []string{conv})
	if err != nil || set == nil {
		return 0, err
	}
	return set[0].ClearedUpTo, nil
}

// UpdateConversationSettings applies ch to userID's own settings of
// conversation conv and returns them after; her other devices that asked
// for changes (CONVERSATION_CHANGED_PUSH) are told. ch.At is set by the
// Server. ch.HiddenUpTo and ch.ClearedUpTo above the conversation's newest
// seq (UpToNewest, say) mean its newest message as read now: a message
// that arrives meanwhile stays shown. ClearedUpTo only moves forward;
// HiddenUpTo 0 shows the conversation again.
//
// She must be a member of conv: ErrPermissionDenied otherwise, and for a
// group that is invite-only (or does not exist), the ErrNotFound of a
// group that does not exist (see Server.Group). ErrInvalidArgument for a
// negative seq or a malformed id, and ErrUnsupported on a Store without
// ConversationSettingsStore; nothing is changed then.
func (s *Server) UpdateConversationSettings(ctx context.Context, userID, conv string, ch SettingsChange) (ConversationSettings, error) {
	return s.updateSettings(ctx, userID, conv, ch, nil)
}

func (s *Server) updateSettings(ctx context.Context, user, conv string, ch SettingsChange, origin *session) (_ ConversationSettings, err error) {
	if s.settings == nil {
		return ConversationSettings{}, errNoSettings
	}
	if !validID(user) {
		return ConversationSettings{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "invalid user id")
	}
	if err := ValidateConversationID(conv); err != nil {
		return ConversationSettings{}, err
	}
	if (ch.HiddenUpTo != nil && *ch.HiddenUpTo < 0) || (ch.ClearedUpTo != nil && *ch.ClearedUpTo < 0) {
		return ConversationSettings{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "a seq to hide or clear up to must not be negative")
	}
	if err := s.checkConversationMember(ctx, conv, user); err != nil {
		return ConversationSettings{}, err
	}
	if ch.HiddenUpTo != nil || ch.ClearedUpTo != nil {
		// Up to what exists now, as this Server reads it, rather than
		// as the Store finds it when it commits: a message that
		// arrives in between was never seen by the user.
		c, err := s.conversation(ctx, conv)
		if err != nil {
			return ConversationSettings{}, err
		}
		if ch.HiddenUpTo != nil {
			ch.HiddenUpTo = ptr(min(*ch.HiddenUpTo, c.MaxSeq))
		}
		if ch.ClearedUpTo != nil {
			ch.ClearedUpTo = ptr(min(*ch.ClearedUpTo, c.MaxSeq))
		}
	}
	ch.At = time.Now().Truncate(time.Microsecond)
	st, err := s.storeSettings(ctx, user, conv, ch)
	if err != nil {
		return ConversationSettings{}, err
	}
	if st.UpdatedAt.Equal(ch.At) {
		s.pushSettings(st, origin)
	}
	return st, nil
}

func ptr[T any](v T) *T { return &v }

func (s *Server) storeSettings(ctx context.Context, user, conv string, ch SettingsChange) (_ ConversationSettings, err error) {
	defer s.recoverStore("UpdateConversationSettings", &err)
	return s.settings.UpdateConversationSettings(ctx, user, conv, ch)
}

// checkConversationMember returns nil if user belongs to conv, and
// otherwise the refusal she is shown: for a group, that of a send
// (ErrPermissionDenied for an open group, the answer for a missing group
// for an invite-only one), so that the settings call tells an outsider no
// more than any other.
func (s *Server) checkConversationMember(ctx context.Context, conv, user string) error {
	switch ConversationTypeOf(conv) {
	case GroupConversation:
		gid, _ := groupOf(conv)
		if !validID(gid) {
			return errNoGroup()
		}
		err := s.checkGroupMember(ctx, gid, user)
		if errors.Is(err, ErrNotFound) {
			return s.outsider(ctx, gid)
		}
		return err
	case ChatroomConversation:
		return errorf(CodeNotFound, ErrNotFound, "conversation does not exist")
	case SingleConversation, SystemConversation:
		ok, err := s.isMember(ctx, conv, user)
		if err == nil && !ok {
			err = errorf(CodePermissionDenied, ErrPermissionDenied, "not a member of this conversation")
		}
		return err
	}
	return errorf(CodeInvalidArgument, ErrInvalidArgument, "conversation_id has an unknown form")
}

// pushSettings tells the connections of st's user that subscribed to
// conversation changes, but origin, which gets the response.
func (s *Server) pushSettings(st ConversationSettings, origin *session) {
	body, err := proto.Marshal(&imv1.ConversationChangedPush{Settings: settingsToWire(st)})
	if err != nil {
		s.log.Error("marshal conversation change", "conv", st.ConversationID, "err", err)
		return
	}
	f := Frame{Command: imv1.CommandType_CMD_CONVERSATION_CHANGED_PUSH, Body: body}
	s.hub.each(st.UserID, func(sess *session) {
		if sess != origin && sess.convChanges.Load() {
			sess.enqueue(f)
		}
	})
}

func settingsToWire(st ConversationSettings) *imv1.ConversationSettings {
	return &imv1.ConversationSettings{
		ConversationId: validUTF8(st.ConversationID),
		Pinned:         st.Pinned,
		Muted:          st.Muted,
		HiddenUpTo:     st.HiddenUpTo,
		ClearedUpTo:    st.ClearedUpTo,
		UpdatedAt:      unixMilli(st.UpdatedAt),
	}
}

func entryToWire(e *ConversationEntry) *imv1.ConversationInfo {
	w := &imv1.ConversationInfo{
		ConversationId:   validUTF8(e.ID),
		ConversationType: int32(e.Type),
		MaxSeq:           e.MaxSeq,
		ReadSeq:          e.Read,
		Unread:           e.Unread,
		Mentioned:        e.Mentioned,
		Pinned:           e.Pinned,
		Muted:            e.Muted,
		Hidden:           e.Hidden,
		ClearedUpTo:      e.ClearedUpTo,
		UpdatedAt:        unixMilli(e.UpdatedAt),
	}
	if e.LastMessage != nil {
		w.LastMessage = toWire(*e.LastMessage)
	}
	return w
}

// unixMilli is t in milliseconds, 0 for the zero time.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func (s *Server) handleConversationList(sess *session, f Frame) {
	var req imv1.ConversationListRequest
	if err := proto.Unmarshal(f.Body, &req); err != nil {
		s.respondError(sess, f, errMalformed(err))
		return
	}
	if req.Changes < imv1.ConversationChanges_CONVERSATION_CHANGES_UNCHANGED || req.Changes > imv1.ConversationChanges_CONVERSATION_CHANGES_UNSUBSCRIBE {
		s.respondError(sess, f, errorf(CodeInvalidArgument, ErrInvalidArgument, "unknown changes value %d", req.Changes))
		return
	}
	if req.Since < 0 {
		s.respondError(sess, f, errorf(CodeInvalidArgument, ErrInvalidArgument, "since must not be negative"))
		return
	}
	if !s.convRequests.allow(sess.user, time.Now()) {
		s.respondError(sess, f, errorf(CodeRateLimited, ErrRateLimited, "asking for conversations too fast"))
		return
	}
	q := ConversationQuery{Limit: int(req.Limit), Cursor: req.Cursor}
	if req.Since > 0 {
		q.Since = time.UnixMilli(req.Since)
	}
	page, wire, err := s.conversations(sess.ctx, sess.user, q)
	if err != nil {
		s.respondError(sess, f, err)
		return
	}
	switch req.Changes {
	case imv1.ConversationChanges_CONVERSATION_CHANGES_SUBSCRIBE:
		sess.convChanges.Store(true)
	case imv1.ConversationChanges_CONVERSATION_CHANGES_UNSUBSCRIBE:
		sess.convChanges.Store(false)
	}
	sess.respond(imv1.CommandType_CMD_CONVERSATION_LIST_RSP, f.Sequence, &imv1.ConversationListResponse{
		Conversations: wire,
		NextCursor:    page.Next,
		Version:       page.Version.UnixMilli(),
		ReadState:     page.HasReadState,
		Changes:       sess.convChanges.Load(),
	})
}

func (s *Server) handleConversationSettings(sess *session, f Frame) {
	var req imv1.ConversationSettingsRequest
	if err := proto.Unmarshal(f.Body, &req); err != nil {
		s.respondError(sess, f, errMalformed(err))
		return
	}
	ch, err := settingsChangeOf(&req)
	if err != nil {
		s.respondError(sess, f, err)
		return
	}
	if !s.convRequests.allow(sess.user, time.Now()) {
		s.respondError(sess, f, errorf(CodeRateLimited, ErrRateLimited, "changing conversation settings too fast"))
		return
	}
	st, err := s.updateSettings(sess.ctx, sess.user, req.ConversationId, ch, sess)
	if err != nil {
		s.respondError(sess, f, err)
		return
	}
	sess.respond(imv1.CommandType_CMD_CONVERSATION_SETTINGS_RSP, f.Sequence, &imv1.ConversationSettingsResponse{Settings: settingsToWire(st)})
}

// settingsChangeOf turns a request into a SettingsChange: hiding is up
// to the newest message, showing is 0.
func settingsChangeOf(req *imv1.ConversationSettingsRequest) (SettingsChange, error) {
	ch := SettingsChange{Pinned: req.Pinned, Muted: req.Muted}
	if req.Hidden != nil {
		if *req.Hidden {
			ch.HiddenUpTo = ptr(UpToNewest)
		} else {
			ch.HiddenUpTo = ptr(int64(0))
		}
	}
	switch {
	case req.ClearUpTo < 0:
		return SettingsChange{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "clear_up_to must not be negative")
	case req.ClearAll && req.ClearUpTo != 0:
		return SettingsChange{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "clear_all and clear_up_to exclude each other")
	case req.ClearAll:
		ch.ClearedUpTo = ptr(UpToNewest)
	case req.ClearUpTo > 0:
		ch.ClearedUpTo = ptr(req.ClearUpTo)
	}
	return ch, nil
}
