package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/imserver/imserver/im"
)

// testSync checks im.SyncStore, when the store has it, against the required
// methods: each batched answer must equal the unbatched one.
func testSync(t *testing.T, h Harness) {
	if _, ok := open(t, h).(im.SyncStore); !ok {
		t.Skip("storetest: the store does not implement im.SyncStore")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s im.Store, ss im.SyncStore)
	}{
		{"Conversations", testSyncConversations},
		{"MessageRanges", testMessageRanges},
		{"ManyRanges", testManyRanges},
		{"Invalid", testSyncInvalid},
		{"Scan", testScanRanges},
		{"ScanStops", testScanStops},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, h)
			ss, ok := s.(im.SyncStore)
			if !ok {
				t.Fatal("storetest: Harness.Open returned stores of different types")
			}
			tt.fn(t, s, ss)
		})
	}
}

// syncFixture fills s with what a sync sees: alice's one-to-one and system
// conversations; a group with messages (g1), one without (g2), one
// dismissed after its messages (g3), one she never joined (g4), one she
// was removed from (g5); dave in g1 only; carol in nothing. g6, which
// shows new members only what follows their joining, has 3 messages before
// erin joins at seq 4.
func syncFixture(t *testing.T, s im.Store) {
	t.Helper()
	ab := im.SingleConversationID("alice", "bob")
	var batch []im.AppendRequest
	for i := range 3 {
		batch = append(batch, im.AppendRequest{Message: newMessage(ab, "bob", fmt.Sprintf("ab%d", i)), Members: []string{"alice", "bob"}})
	}
	batch = append(batch, im.AppendRequest{Message: newMessage(im.SystemConversationID("alice"), "system", "sys0"), Members: []string{"alice"}})
	groupMsgs := map[string]int{"g1": 5, "g3": 2, "g4": 1, "g5": 4}
	for _, g := range slices.Sorted(maps.Keys(groupMsgs)) {
		for i := range groupMsgs[g] {
			batch = append(batch, im.AppendRequest{Message: newMessage(im.GroupConversationID(g), "bob", fmt.Sprintf("%s-%d", g, i))})
		}
	}
	appendNew(t, s, batch)
	owner := member("bob", im.RoleOwner, at(1))
	createGroup(t, s, newGroup("g1", "bob"), owner, member("alice", im.RoleMember, at(2)), member("dave", im.RoleMember, at(2)))
	createGroup(t, s, newGroup("g2", "bob"), owner, member("alice", im.RoleMember, at(2)))
	createGroup(t, s, newGroup("g3", "bob"), owner, member("alice", im.RoleMember, at(2)))
	createGroup(t, s, newGroup("g4", "bob"), owner)
	createGroup(t, s, newGroup("g5", "bob"), owner, member("alice", im.RoleMember, at(2)))
	if err := deleteGroup(t.Context(), s, "g3"); err != nil {
		t.Fatalf("DeleteGroup(g3): %v", err)
	}
	removeMembers(t, s, "g5", "alice")
	g6 := newGroup("g6", "bob")
	g6.History = im.HistoryFromJoin
	createGroup(t, s, g6, owner)
	for i := range 3 {
		appendNew(t, s, []im.AppendRequest{{Message: newMessage(im.GroupConversationID("g6"), "bob", fmt.Sprintf("g6-%d", i))}})
	}
	change(t, s, "g6", im.GroupChange{Put: []im.GroupMember{member("erin", im.RoleMember, at(3))}, Notice: notice("g6", "erin", "g6-erin")})
}

// readFroms is the first readable seq of each group conversation a Server
// without SyncStore computes: FirstReadableSeq of the group and the
// membership, 0 for other conversations.
func readFroms(t *testing.T, s im.Store, userID string, convs map[string]int64) map[string]int64 {
	t.Helper()
	out := make(map[string]int64, len(convs))
	for conv := range convs {
		gid, ok := strings.CutPrefix(conv, im.GroupConversationID(""))
		if !ok {
			out[conv] = 0
			continue
		}
		g, err := s.Group(t.Context(), gid)
		if err != nil {
			t.Fatalf("Group(%q): %v", gid, err)
		}
		m, err := s.GroupMember(t.Context(), gid, userID)
		if err != nil {
			t.Fatalf("GroupMember(%q, %q): %v", gid, userID, err)
		}
		out[conv] = im.FirstReadableSeq(g, m)
	}
	return out
}

// unbatchedConversations is what a Server without SyncStore computes.
func unbatchedConversations(t *testing.T, s im.Store, userID string) map[string]int64 {
	t.Helper()
	out := userConversations(t, s, userID)
	groups, err := s.UserGroups(t.Context(), userID)
	if err != nil {
		t.Fatalf("UserGroups(%q): %v", userID, err)
	}
	for _, g := range groups {
		c, err := s.Conversation(t.Context(), im.GroupConversationID(g))
		if errors.Is(err, im.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("Conversation(%q): %v", im.GroupConversationID(g), err)
		}
		out[c.ID] = c.MaxSeq
	}
	return out
}

func testSyncConversations(t *testing.T, s im.Store, ss im.SyncStore) {
	syncFixture(t, s)
	want := map[string]map[string]int64{
		"alice": {
			im.SingleConversationID("alice", "bob"): 3,
			im.SystemConversationID("alice"):        1,
			im.GroupConversationID("g1"):            5,
		},
		"dave":  {im.GroupConversationID("g1"): 5},
		"carol": {},
		"erin":  {im.GroupConversationID("g6"): 4},
	}
	// Who may read what: g1 shows its whole history; erin reads g6 from
	// her joining on.
	wantFrom := map[string]map[string]int64{
		"dave": {im.GroupConversationID("g1"): 1},
		"erin": {im.GroupConversationID("g6"): 4},
		"bob":  {im.GroupConversationID("g6"): 1},
	}
	for _, user := range []string{"alice", "bob", "carol", "dave", "erin"} {
		cs, err := ss.SyncConversations(t.Context(), user)
		if err != nil {
			t.Fatalf("SyncConversations(%q): %v", user, err)
		}
		got := make(map[string]int64, len(cs))
		from := make(map[string]int64, len(cs))
		for _, c := range cs {
			if _, dup := got[c.ID]; dup {
				t.Errorf("SyncConversations(%q) lists %q twice", user, c.ID)
			}
			got[c.ID] = c.MaxSeq
			from[c.ID] = c.ReadFrom
		}
		if w := readFroms(t, s, user, got); !maps.Equal(from, w) {
			t.Errorf("SyncConversations(%q): ReadFrom %v, but the groups and memberships give %v", user, from, w)
		}
		for conv, w := range wantFrom[user] {
			if from[conv] != w {
				t.Errorf("SyncConversations(%q): %s ReadFrom %d, want %d", user, conv, from[conv], w)
			}
		}
		if unbatched := unbatchedConversations(t, s, user); !maps.Equal(got, unbatched) {
			t.Errorf("SyncConversations(%q) = %v, but UserConversations and UserGroups give %v", user, got, unbatched)
		}
		if w, ok := want[user]; ok && !maps.Equal(got, w) {
			t.Errorf("SyncConversations(%q) = %v, want %v", user, got, w)
		}
	}
}

// checkRanges requires MessageRanges(ranges, limit) to answer what one
// Messages call per range does.
func checkRanges(t *testing.T, s im.Store, ss im.SyncStore, ranges []im.MessageRange, limit int) {
	t.Helper()
	pages, err := ss.MessageRanges(t.Context(), ranges, limit)
	if err != nil {
		t.Fatalf("MessageRanges(%d ranges, limit %d): %v", len(ranges), limit, err)
	}
	if len(pages) != len(ranges) {
		t.Fatalf("MessageRanges(%d ranges, limit %d) returned %d pages", len(ranges), limit, len(pages))
	}
	for i, r := range ranges {
		want := messages(t, s, r.ConversationID, r.From, r.To, limit)
		checkMessages(t, fmt.Sprintf("MessageRanges limit %d, range %d %+v", limit, i, r), pages[i], want)
	}
}

// fixtureRanges are ranges of syncFixture's conversations, each kind a
// sync asks for.
func fixtureRanges() []im.MessageRange {
	ab := im.SingleConversationID("alice", "bob")
	g1 := im.GroupConversationID("g1")
	return []im.MessageRange{
		{ConversationID: ab, From: 2, To: 3},
		{ConversationID: g1, From: 1, To: 0},                        // no upper bound
		{ConversationID: im.GroupConversationID("g2"), From: 1},     // no messages
		{ConversationID: "single_x_y", From: 1, To: 5},              // no conversation
		{ConversationID: g1, From: 4, To: 4},                        // the same conversation again
		{ConversationID: g1, From: 0, To: 2},                        // from below 1
		{ConversationID: ab, From: 5, To: 0},                        // past the end
		{ConversationID: g1, From: 3, To: 2},                        // empty
		{ConversationID: im.GroupConversationID("g3"), From: 1},     // dismissed: the messages stay
		{ConversationID: im.SystemConversationID("alice"), From: 1}, // system
	}
}

func testMessageRanges(t *testing.T, s im.Store, ss im.SyncStore) {
	syncFixture(t, s)
	ranges := fixtureRanges()
	for _, limit := range []int{1, 2, 3, 100} {
		checkRanges(t, s, ss, ranges, limit)
	}
	// Spot checks, in case Messages is wrong the same way.
	pages, err := ss.MessageRanges(t.Context(), ranges[:2], 2)
	if err != nil {
		t.Fatalf("MessageRanges: %v", err)
	}
	checkSeqs(t, "range 0", pages[0], 2, 3)
	checkSeqs(t, "range 1 with limit 2", pages[1], 1, 2)

	pages, err = ss.MessageRanges(t.Context(), nil, 10)
	if err != nil || len(pages) != 0 {
		t.Errorf("MessageRanges of no ranges = %d pages, %v; want none", len(pages), err)
	}
}

// manyRanges fills 300 group conversations of s with 1 to 4 messages
// each and returns a range of each, in another order than they were
// filled.
func manyRanges(t *testing.T, s im.Store) []im.MessageRange {
	const convs = 300
	var batch []im.AppendRequest
	for c := range convs {
		for i := range c%4 + 1 {
			batch = append(batch, im.AppendRequest{Message: newMessage(fmt.Sprintf("group_m%03d", c), "bob", fmt.Sprintf("m%03d-%d", c, i))})
		}
	}
	appendNew(t, s, batch)
	var ranges []im.MessageRange
	for c := range convs {
		ranges = append(ranges, im.MessageRange{ConversationID: fmt.Sprintf("group_m%03d", convs-1-c), From: int64(c % 3)})
	}
	return ranges
}

// testManyRanges: hundreds of ranges in one call, as a user in hundreds of
// groups makes (a store that splits them, to bound a query's parameters,
// must not lose or mix any).
func testManyRanges(t *testing.T, s im.Store, ss im.SyncStore) {
	checkRanges(t, s, ss, manyRanges(t, s), 2)
}

func testSyncInvalid(t *testing.T, s im.Store, ss im.SyncStore) {
	syncFixture(t, s)
	r := []im.MessageRange{{ConversationID: im.GroupConversationID("g1"), From: 1}}
	for _, limit := range []int{0, -1} {
		if _, err := ss.MessageRanges(t.Context(), r, limit); !errors.Is(err, im.ErrInvalidArgument) {
			t.Errorf("MessageRanges with limit %d: %v, want ErrInvalidArgument", limit, err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := ss.SyncConversations(ctx, "alice"); !errors.Is(err, context.Canceled) {
		t.Errorf("SyncConversations with a cancelled ctx: %v, want context.Canceled", err)
	}
	if _, err := ss.MessageRanges(ctx, r, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("MessageRanges with a cancelled ctx: %v, want context.Canceled", err)
	}
}

// scanner returns s's im.MessageRangeScanner, or skips t.
func scanner(t *testing.T, s im.Store) im.MessageRangeScanner {
	sc, ok := s.(im.MessageRangeScanner)
	if !ok {
		t.Skip("storetest: the store does not implement im.MessageRangeScanner")
	}
	return sc
}

// checkScan requires ScanMessageRanges(ranges, limit) to call back once
// per range, in order, with what MessageRanges returns, compared while
// the page is the caller's; and the strings it handed out to still read
// the same once the scan is over, since the caller may keep them. fn
// calls the Store, which it may.
func checkScan(t *testing.T, s im.Store, ss im.SyncStore, sc im.MessageRangeScanner, ranges []im.MessageRange, limit int) {
	t.Helper()
	want, err := ss.MessageRanges(t.Context(), ranges, limit)
	if err != nil {
		t.Fatalf("MessageRanges(%d ranges, limit %d): %v", len(ranges), limit, err)
	}
	next := 0
	var kept []string // each page's strings, as a caller keeps them
	err = sc.ScanMessageRanges(t.Context(), ranges, limit, func(i int, page []im.Message) error {
		if i != next {
			t.Errorf("ScanMessageRanges(limit %d) called back for range %d, want %d", limit, i, next)
		}
		next = i + 1
		if i >= 0 && i < len(want) {
			checkMessages(t, fmt.Sprintf("ScanMessageRanges limit %d, range %d %+v", limit, i, ranges[i]), page, want[i])
		}
		for _, m := range page {
			kept = append(kept, m.ServerID, m.SenderID, m.ClientMsgID, m.Extra)
		}
		if i >= 0 && i < len(ranges) {
			if _, err := s.Conversation(t.Context(), ranges[i].ConversationID); err != nil && !errors.Is(err, im.ErrNotFound) {
				t.Errorf("Conversation(%q) from ScanMessageRanges' callback: %v", ranges[i].ConversationID, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ScanMessageRanges(%d ranges, limit %d): %v", len(ranges), limit, err)
	}
	if next != len(ranges) {
		t.Errorf("ScanMessageRanges(%d ranges, limit %d) called back for %d", len(ranges), limit, next)
	}
	var wantKept []string
	for _, page := range want {
		for _, m := range page {
			wantKept = append(wantKept, m.ServerID, m.SenderID, m.ClientMsgID, m.Extra)
		}
	}
	if !slices.Equal(kept, wantKept) {
		t.Errorf("ScanMessageRanges(limit %d): the strings of its pages changed once the scan was over", limit)
	}
}

// testScanRanges checks im.MessageRangeScanner, when the store has it,
// against MessageRanges: each kind of range, hundreds at once, and every
// scan twice, so that a store reusing the last call's memory reads into
// it.
func testScanRanges(t *testing.T, s im.Store, ss im.SyncStore) {
	sc := scanner(t, s)
	syncFixture(t, s)
	ranges := fixtureRanges()
	for _, limit := range []int{1, 2, 3, 100} {
		for range 2 {
			checkScan(t, s, ss, sc, ranges, limit)
		}
	}
	checkScan(t, s, ss, sc, nil, 10)
	checkScan(t, s, ss, sc, manyRanges(t, s), 2)
	checkScan(t, s, ss, sc, ranges, 100)
}

// testScanStops: an error from the callback ends the scan and comes back
// as it was; a limit below 1 and a cancelled ctx fail before any callback.
func testScanStops(t *testing.T, s im.Store, ss im.SyncStore) {
	sc := scanner(t, s)
	syncFixture(t, s)
	ranges := fixtureRanges()
	errStop := errors.New("storetest: stop")
	calls := 0
	err := sc.ScanMessageRanges(t.Context(), ranges, 10, func(i int, page []im.Message) error {
		calls++
		if i == 1 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Errorf("ScanMessageRanges whose callback failed: %v, want the callback's error", err)
	}
	if calls != 2 {
		t.Errorf("ScanMessageRanges called back %d times, want 2: none after the callback failed", calls)
	}
	never := func(i int, page []im.Message) error {
		t.Errorf("ScanMessageRanges called back for range %d of a scan that must fail", i)
		return nil
	}
	for _, limit := range []int{0, -1} {
		if err := sc.ScanMessageRanges(t.Context(), ranges, limit, never); !errors.Is(err, im.ErrInvalidArgument) {
			t.Errorf("ScanMessageRanges with limit %d: %v, want ErrInvalidArgument", limit, err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := sc.ScanMessageRanges(ctx, ranges, 10, never); !errors.Is(err, context.Canceled) {
		t.Errorf("ScanMessageRanges with a cancelled ctx: %v, want context.Canceled", err)
	}
}
