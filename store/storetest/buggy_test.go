package storetest_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/store/memstore"
)

// buggyStore wraps a correct memstore.Store and, when bug is set, breaks one
// rule on purpose, so that the suite can be shown to notice. With bug ""
// every call passes straight through.
type buggyStore struct {
	*memstore.Store
	bug string

	mu      sync.Mutex
	dups    int
	byCMID  map[string]im.Message      // dedup-ignores-sender: client_msg_id → first message
	extra   map[string]map[string]bool // members-every-append: user → conversations
	counts  map[string]int             // group-count-as-given: group → MemberCount given
	created map[string]time.Time       // group-update-createdat: group → CreatedAt given
	stale   map[string]map[string]bool // group-remove-keeps-index, group-delete-keeps-members: user → groups
	owner   map[string]string          // group-owner-not-set: group → the owner reads report
	// group-two-owners: group → the previous owner, who reads as an owner still
	twoOwners map[string]string
	// group-joinseq-racy: group → user → the JoinSeq reads report
	joinSeq map[string]map[string]int64
	// joinreq-kept-on-put, joinreq-kept-on-delete: group → the requests
	// reads report although the store removed them
	staleRequests map[string][]im.GroupJoinRequest
	versions      map[string]int64 // bump-racy, bump-no-validation: user → token version
	// the read state of the bugs readStateBug names
	positions buggyPositions
	recalls   recallBugs // the recall- and byid- bugs
	// the conversation settings of the bugs settingsBug names
	settings buggySettings
}

var (
	_ im.Store               = (*buggyStore)(nil)
	_ im.MessageRangeScanner = (*buggyStore)(nil)
	_ auth.AccountStore      = (*buggyStore)(nil)
)

func newBuggyStore(bug string) *buggyStore {
	return &buggyStore{
		Store:   memstore.New(),
		bug:     bug,
		byCMID:  make(map[string]im.Message),
		extra:   make(map[string]map[string]bool),
		counts:  make(map[string]int),
		created: make(map[string]time.Time),
		stale:   make(map[string]map[string]bool),
		owner:   make(map[string]string),

		twoOwners: make(map[string]string),
		joinSeq:   make(map[string]map[string]int64),
		versions:  make(map[string]int64),
	}
}

// ctx is what the wrapped store is called with: ctx itself, or for
// ignore-ctx one that is never cancelled.
func (b *buggyStore) ctx(ctx context.Context) context.Context {
	if b.bug == "ignore-ctx" {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// accept turns a refusal of invalid input into success for no-validation.
func (b *buggyStore) accept(err error) error {
	if b.bug == "no-validation" && errors.Is(err, im.ErrInvalidArgument) {
		return nil
	}
	return err
}

// gap renumbers seq 2 as 3 for seq-gap.
func (b *buggyStore) gap(ms []im.Message) {
	if b.bug != "seq-gap" {
		return
	}
	for i := range ms {
		if ms[i].Seq >= 2 {
			ms[i].Seq++
		}
	}
}

func (b *buggyStore) AppendMessages(ctx context.Context, batch []im.AppendRequest) ([]im.AppendResult, error) {
	batch = slices.Clone(batch)
	if b.bug == "truncate-ms" {
		for i := range batch {
			batch[i].Message.CreatedAt = batch[i].Message.CreatedAt.Truncate(time.Millisecond)
		}
	}
	if b.bug == "group-no-member-check" {
		for i := range batch {
			batch[i].MemberOf = ""
		}
	}
	if b.bug == "dedup-ignores-sender" {
		return b.appendIgnoringSender(ctx, batch)
	}
	res, err := b.Store.AppendMessages(b.ctx(ctx), batch)
	if err != nil {
		return res, err
	}
	b.ignoreMute(ctx, batch, res)
	b.noteAppended(res)
	for i := range res {
		r := &res[i]
		if r.Duplicate {
			r.Message = b.patchRecalled(r.Message, "dedup")
		}
		switch {
		case b.bug == "no-validation" && r.Err != nil:
			r.Err, r.Message = nil, batch[i].Message
		case b.bug == "no-dedup" && r.Duplicate:
			// Store it again under another client_msg_id, as a store
			// without a dedup index would.
			b.mu.Lock()
			b.dups++
			again := batch[i]
			again.Message.ClientMsgID += "~" + strconv.Itoa(b.dups)
			b.mu.Unlock()
			more, err := b.Store.AppendMessages(ctx, []im.AppendRequest{again})
			if err != nil {
				return nil, err
			}
			*r = more[0]
			r.Message.ClientMsgID = batch[i].Message.ClientMsgID
		case b.bug == "members-every-append" && r.Err == nil && !r.Duplicate:
			b.mu.Lock()
			for _, u := range batch[i].Members {
				if b.extra[u] == nil {
					b.extra[u] = make(map[string]bool)
				}
				b.extra[u][r.Message.ConversationID] = true
			}
			b.mu.Unlock()
		}
		if b.bug == "seq-gap" && r.Message.Seq >= 2 {
			r.Message.Seq++
		}
	}
	return res, nil
}

// appendIgnoringSender dedups by client_msg_id alone.
func (b *buggyStore) appendIgnoringSender(ctx context.Context, batch []im.AppendRequest) ([]im.AppendResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	res := make([]im.AppendResult, len(batch))
	for i, r := range batch {
		if first, ok := b.byCMID[r.Message.ClientMsgID]; ok {
			res[i] = im.AppendResult{Message: first, Duplicate: true}
			continue
		}
		one, err := b.Store.AppendMessages(ctx, []im.AppendRequest{r})
		if err != nil {
			return nil, err
		}
		res[i] = one[0]
		if one[0].Err == nil {
			b.byCMID[r.Message.ClientMsgID] = one[0].Message
		}
	}
	return res, nil
}

func (b *buggyStore) Messages(ctx context.Context, conv string, from, to int64, limit int) ([]im.Message, error) {
	if b.bug == "limit-off-by-one" {
		limit++
	}
	ms, err := b.Store.Messages(b.ctx(ctx), conv, from, to, limit)
	b.patchAll(ms, "read")
	b.gap(ms)
	return ms, err
}

func (b *buggyStore) MessagesBefore(ctx context.Context, conv string, before int64, limit int) ([]im.Message, error) {
	ms, err := b.Store.MessagesBefore(b.ctx(ctx), conv, before, limit)
	b.patchAll(ms, "read")
	if b.bug == "before-descending" {
		slices.Reverse(ms)
	}
	b.gap(ms)
	return ms, err
}

func (b *buggyStore) Conversation(ctx context.Context, id string) (im.Conversation, error) {
	return b.Store.Conversation(b.ctx(ctx), id)
}

func (b *buggyStore) UserConversations(ctx context.Context, userID string) ([]im.Conversation, error) {
	cs, err := b.Store.UserConversations(b.ctx(ctx), userID)
	if err != nil {
		return cs, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for id := range b.extra[userID] {
		if !slices.ContainsFunc(cs, func(c im.Conversation) bool { return c.ID == id }) {
			c, err := b.Store.Conversation(ctx, id)
			if err != nil {
				return nil, err
			}
			cs = append(cs, c)
		}
	}
	return cs, nil
}

func (b *buggyStore) username(name string) string {
	if b.bug == "username-fold" {
		return strings.ToLower(name)
	}
	return name
}

func (b *buggyStore) CreateAccount(ctx context.Context, a auth.Account) error {
	a.Username = b.username(a.Username)
	return b.accept(b.Store.CreateAccount(b.ctx(ctx), a))
}

func (b *buggyStore) Account(ctx context.Context, userID string) (auth.Account, error) {
	return b.Store.Account(b.ctx(ctx), userID)
}

func (b *buggyStore) AccountByUsername(ctx context.Context, username string) (auth.Account, error) {
	return b.Store.AccountByUsername(b.ctx(ctx), b.username(username))
}

func (b *buggyStore) SyncConversations(ctx context.Context, userID string) ([]im.Conversation, error) {
	cs, err := b.Store.SyncConversations(b.ctx(ctx), userID)
	if err != nil {
		return cs, err
	}
	switch b.bug {
	case "sync-groups-only":
		// Forgets the user's own conversations.
		cs = slices.DeleteFunc(cs, func(c im.Conversation) bool { return !strings.HasPrefix(c.ID, "group_") })
	case "sync-no-readfrom":
		// Leaves the first readable seq to the Server.
		for i := range cs {
			cs[i].ReadFrom = 0
		}
	case "sync-readfrom-full":
		// Lets every member read the whole history.
		for i := range cs {
			if cs[i].ReadFrom > 0 {
				cs[i].ReadFrom = 1
			}
		}
	case "sync-twice":
		// Lists a conversation found both ways twice.
		if len(cs) > 0 {
			cs = append(cs, cs[0])
		}
	}
	return cs, nil
}

func (b *buggyStore) MessageRanges(ctx context.Context, ranges []im.MessageRange, limit int) ([][]im.Message, error) {
	switch b.bug {
	case "sync-limit-total":
		// Applies limit to the whole answer rather than to each range.
		pages, err := b.Store.MessageRanges(b.ctx(ctx), ranges, limit)
		n := 0
		for i := range pages {
			pages[i] = pages[i][:min(len(pages[i]), max(limit-n, 0))]
			n += len(pages[i])
		}
		return pages, err
	case "sync-ignores-to":
		ranges = slices.Clone(ranges)
		for i := range ranges {
			ranges[i].To = 0
		}
	case "sync-drops-chunk":
		// Loses the ranges past the first 256, as a store that splits
		// them into queries and keeps only the first might.
		pages, err := b.Store.MessageRanges(b.ctx(ctx), ranges, limit)
		for i := 256; i < len(pages); i++ {
			pages[i] = nil
		}
		return pages, err
	}
	pages, err := b.Store.MessageRanges(b.ctx(ctx), ranges, limit)
	for _, p := range pages {
		b.patchAll(p, "ranges")
	}
	return pages, err
}

// ScanMessageRanges implements im.MessageRangeScanner over MessageRanges,
// giving each page's contents back once the callback returns, as a store
// that reuses its memory does.
func (b *buggyStore) ScanMessageRanges(ctx context.Context, ranges []im.MessageRange, limit int, fn func(i int, page []im.Message) error) error {
	pages, err := b.MessageRanges(ctx, ranges, limit)
	if err != nil {
		return err
	}
	if b.bug == "scan-reuses-early" {
		// Reads every range into the same memory before the first
		// callback: each page's contents are the last range's.
		var last [][]byte
		for _, p := range slices.Backward(pages) {
			if len(p) > 0 {
				for _, m := range p {
					last = append(last, m.Content)
				}
				break
			}
		}
		for _, p := range pages {
			for j := range p {
				if len(last) > 0 {
					p[j].Content = last[j%len(last)]
				}
			}
		}
	}
	var stopped error
	for i, p := range pages {
		if b.bug == "scan-skips-empty" && len(p) == 0 {
			continue
		}
		if err := fn(i, p); err != nil && stopped == nil {
			stopped = err
			if b.bug != "scan-goes-on" {
				return err
			}
		}
		for j := range p {
			clear(p[j].Content)
		}
	}
	return stopped
}
