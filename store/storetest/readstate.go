package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
)

// testReadState checks im.ReadStateStore, for stores that have it.
func testReadState(t *testing.T, h Harness) {
	if _, ok := open(t, h).(im.ReadStateStore); !ok {
		t.Skip("storetest: the store does not implement im.ReadStateStore")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s im.Store, rs im.ReadStateStore)
	}{
		{"Unknown", testReadStateUnknown},
		{"SendingReads", testSendingReads},
		{"ManySenders", testReadStateManySenders},
		{"ForwardOnly", testReadStateForwardOnly},
		{"Clamped", testReadStateClamped},
		{"Batch", testReadStateBatch},
		{"Invalid", testReadStateInvalid},
		{"ConversationReadStates", testConversationReadStates},
		{"Concurrent", testReadStateConcurrent},
		{"ManyConversations", testReadStateManyConversations},
		{"Cancelled", testReadStateCancelled},
		{"Mentioned", testReadStateMentioned},
		{"UpdatedAt", testReadStateUpdatedAt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, h)
			rs, ok := s.(im.ReadStateStore)
			if !ok {
				t.Fatal("storetest: Harness.Open returned stores of different types")
			}
			tt.fn(t, s, rs)
		})
	}
	t.Run("Durability", func(t *testing.T) { testReadStateDurability(t, h) })
}

// wantStates requires ReadStates(user, convs) to report read and delivered
// positions as given, in order: want[i] is {read, delivered} of convs[i].
func wantStates(t *testing.T, rs im.ReadStateStore, user string, convs []string, want ...[2]int64) {
	t.Helper()
	got, err := rs.ReadStates(t.Context(), user, convs)
	if err != nil {
		t.Fatalf("ReadStates(%q, %q): %v", user, convs, err)
	}
	if len(got) != len(convs) {
		t.Fatalf("ReadStates(%q, %q) returned %d states, want %d", user, convs, len(got), len(convs))
	}
	for i, g := range got {
		w := im.ReadState{UserID: user, ConversationID: convs[i], Read: want[i][0], Delivered: want[i][1]}
		if g != w {
			t.Errorf("ReadStates(%q)[%d] = %+v, want %+v", user, i, g, w)
		}
	}
}

// update calls UpdateReadStates, failing t on error.
func update(t *testing.T, rs im.ReadStateStore, states ...im.ReadState) []im.ReadState {
	t.Helper()
	out, err := rs.UpdateReadStates(t.Context(), states)
	if err != nil {
		t.Fatalf("UpdateReadStates(%+v): %v", states, err)
	}
	if len(out) != len(states) {
		t.Fatalf("UpdateReadStates returned %d states for %d", len(out), len(states))
	}
	return out
}

// sendN appends n messages by sender to conv, one commit each, and returns
// the seq of the last.
func sendN(t *testing.T, s im.Store, conv, sender string, n int, members ...string) int64 {
	t.Helper()
	var seq int64
	for range n {
		m := newMessage(conv, sender, fmt.Sprintf("rs-%s-%d", sender, seqCounter.next()))
		seq = appendNew(t, s, []im.AppendRequest{{Message: m, Members: members}})[0].Message.Seq
	}
	return seq
}

// seqCounter makes client_msg_ids unique within a test binary.
var seqCounter counter

type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) next() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}

func testReadStateUnknown(t *testing.T, s im.Store, rs im.ReadStateStore) {
	const conv = "single_alice_bob"
	wantStates(t, rs, "alice", []string{conv, "group_none"}, [2]int64{}, [2]int64{})
	wantStates(t, rs, "nobody", nil)
	got, err := rs.ConversationReadStates(t.Context(), conv)
	if err != nil || len(got) != 0 {
		t.Errorf("ConversationReadStates of an unknown conversation = %+v, %v; want none", got, err)
	}
	// A conversation with messages, where the user has done nothing.
	sendN(t, s, conv, "bob", 2, "alice", "bob")
	wantStates(t, rs, "alice", []string{conv}, [2]int64{})
}

// Sending a message reads everything before it, as soon as the append
// returns; a peer's message does not move the sender's position.
func testSendingReads(t *testing.T, s im.Store, rs im.ReadStateStore) {
	const conv = "single_alice_bob"
	members := []string{"alice", "bob"}
	sendN(t, s, conv, "bob", 3, members...)
	wantStates(t, rs, "alice", []string{conv}, [2]int64{0, 0})
	wantStates(t, rs, "bob", []string{conv}, [2]int64{3, 0})
	a := sendN(t, s, conv, "alice", 1, members...)
	sendN(t, s, conv, "bob", 2, members...)
	wantStates(t, rs, "alice", []string{conv}, [2]int64{a, 0})
	wantStates(t, rs, "bob", []string{conv}, [2]int64{6, 0})

	// A batch with several messages of one sender moves her to the last.
	batch := []im.AppendRequest{
		{Message: newMessage(conv, "alice", "sr-1")},
		{Message: newMessage(conv, "bob", "sr-2")},
		{Message: newMessage(conv, "alice", "sr-3")},
		{Message: newMessage(conv, "bob", "sr-4")},
	}
	res := appendNew(t, s, batch)
	wantStates(t, rs, "alice", []string{conv}, [2]int64{res[2].Message.Seq, 0})
	wantStates(t, rs, "bob", []string{conv}, [2]int64{res[3].Message.Seq, 0})

	// A duplicate stores nothing and moves nothing.
	update(t, rs, im.ReadState{UserID: "alice", ConversationID: conv, Delivered: 1})
	appendOK(t, s, []im.AppendRequest{{Message: newMessage(conv, "alice", "sr-1")}})
	wantStates(t, rs, "alice", []string{conv}, [2]int64{res[2].Message.Seq, 1})

	// A receipt below the position she reached by sending changes nothing.
	out := update(t, rs, im.ReadState{UserID: "alice", ConversationID: conv, Read: 2})
	if out[0].Read != res[2].Message.Seq {
		t.Errorf("UpdateReadStates below her own message returned Read %d, want %d", out[0].Read, res[2].Message.Seq)
	}
}

// Many senders and many messages per conversation, in one batch and over
// many: enough for a store that moves messages between places (a log and
// their conversation's table) to have done so.
func testReadStateManySenders(t *testing.T, s im.Store, rs im.ReadStateStore) {
	const conv = "group_rs"
	users := []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6"}
	last := make(map[string]int64)
	n := 0
	for round := range 40 {
		var batch []im.AppendRequest
		for i := range 1 + round%5 {
			u := users[(round*3+i*5)%len(users)]
			batch = append(batch, im.AppendRequest{Message: newMessage(conv, u, fmt.Sprintf("ms-%d", n)), Members: users})
			n++
		}
		// Other conversations in the same commits.
		batch = append(batch, im.AppendRequest{Message: newMessage(fmt.Sprintf("group_rs%d", round%7), "u0", fmt.Sprintf("other-%d", round))})
		for _, r := range appendNew(t, s, batch) {
			if r.Message.ConversationID == conv {
				last[r.Message.SenderID] = r.Message.Seq
			}
		}
	}
	for _, u := range users {
		wantStates(t, rs, u, []string{conv}, [2]int64{last[u], 0})
	}
	got, err := rs.ConversationReadStates(t.Context(), conv)
	if err != nil {
		t.Fatalf("ConversationReadStates: %v", err)
	}
	want := make(map[string]int64)
	maps.Copy(want, last)
	checkConversationStates(t, got, conv, want, nil)
}

func testReadStateForwardOnly(t *testing.T, s im.Store, rs im.ReadStateStore) {
	const conv = "single_alice_bob"
	sendN(t, s, conv, "bob", 10, "alice", "bob")
	out := update(t, rs, im.ReadState{UserID: "alice", ConversationID: conv, Read: 5, Delivered: 7})
	want := im.ReadState{UserID: "alice", ConversationID: conv, Read: 5, Delivered: 7}
	if out[0] != want {
		t.Errorf("UpdateReadStates returned %+v, want %+v", out[0], want)
	}
	// Backwards, and 0 (leave it), change nothing.
	out = update(t, rs, im.ReadState{UserID: "alice", ConversationID: conv, Read: 3, Delivered: 0})
	if out[0] != want {
		t.Errorf("UpdateReadStates backwards returned %+v, want %+v", out[0], want)
	}
	wantStates(t, rs, "alice", []string{conv}, [2]int64{5, 7})
	// Each position moves on its own.
	update(t, rs, im.ReadState{UserID: "alice", ConversationID: conv, Read: 8})
	wantStates(t, rs, "alice", []string{conv}, [2]int64{8, 7})
	update(t, rs, im.ReadState{UserID: "alice", ConversationID: conv, Delivered: 9})
	wantStates(t, rs, "alice", []string{conv}, [2]int64{8, 9})
	// The peer is untouched.
	wantStates(t, rs, "bob", []string{conv}, [2]int64{10, 0})
}

// No position is stored beyond the newest message, so messages that come
// later are unread.
func testReadStateClamped(t *testing.T, s im.Store, rs im.ReadStateStore) {
	const conv = "single_alice_bob"
	sendN(t, s, conv, "bob", 4, "alice", "bob")
	out := update(t, rs, im.ReadState{UserID: "alice", ConversationID: conv, Read: 1_000, Delivered: 1 << 62})
	want := im.ReadState{UserID: "alice", ConversationID: conv, Read: 4, Delivered: 4}
	if out[0] != want {
		t.Errorf("UpdateReadStates past the newest message returned %+v, want %+v", out[0], want)
	}
	sendN(t, s, conv, "bob", 3)
	wantStates(t, rs, "alice", []string{conv}, [2]int64{4, 4})
	// A conversation without messages keeps 0.
	out = update(t, rs, im.ReadState{UserID: "alice", ConversationID: "group_empty", Read: 5, Delivered: 5})
	if out[0].Read != 0 || out[0].Delivered != 0 {
		t.Errorf("UpdateReadStates in a conversation without messages returned %+v, want zero positions", out[0])
	}
	sendN(t, s, "group_empty", "bob", 2)
	wantStates(t, rs, "alice", []string{"group_empty"}, [2]int64{0, 0})
}

func testReadStateBatch(t *testing.T, s im.Store, rs im.ReadStateStore) {
	const c1, c2 = "single_alice_bob", "group_rsb"
	sendN(t, s, c1, "bob", 10, "alice", "bob")
	sendN(t, s, c2, "bob", 10, "alice", "bob", "carol")
	out := update(t, rs,
		im.ReadState{UserID: "alice", ConversationID: c1, Read: 3},
		im.ReadState{UserID: "alice", ConversationID: c2, Delivered: 6},
		im.ReadState{UserID: "alice", ConversationID: c1, Read: 7, Delivered: 2},
		im.ReadState{UserID: "carol", ConversationID: c2, Read: 4},
		im.ReadState{UserID: "alice", ConversationID: c1, Read: 5},
	)
	a1 := im.ReadState{UserID: "alice", ConversationID: c1, Read: 7, Delivered: 2}
	want := []im.ReadState{
		a1,
		{UserID: "alice", ConversationID: c2, Delivered: 6},
		a1,
		{UserID: "carol", ConversationID: c2, Read: 4},
		a1,
	}
	if !slices.Equal(out, want) {
		t.Errorf("UpdateReadStates returned\n%+v\nwant\n%+v", out, want)
	}
	wantStates(t, rs, "alice", []string{c2, c1, c2}, [2]int64{0, 6}, [2]int64{7, 2}, [2]int64{0, 6})
	if out := update(t, rs); len(out) != 0 {
		t.Errorf("UpdateReadStates of nothing returned %+v", out)
	}
}

func testReadStateInvalid(t *testing.T, s im.Store, rs im.ReadStateStore) {
	const conv = "single_alice_bob"
	sendN(t, s, conv, "bob", 5, "alice", "bob")
	good := im.ReadState{UserID: "alice", ConversationID: conv, Read: 3, Delivered: 3}
	for _, bad := range []im.ReadState{
		{UserID: "", ConversationID: conv, Read: 1},
		{UserID: "al\x00ice", ConversationID: conv, Read: 1},
		{UserID: "alice", ConversationID: "", Read: 1},
		{UserID: "alice", ConversationID: "single_\nx", Read: 1},
		{UserID: "alice", ConversationID: conv, Read: -1},
		{UserID: "alice", ConversationID: conv, Delivered: -5},
	} {
		_, err := rs.UpdateReadStates(t.Context(), []im.ReadState{good, bad})
		if !errors.Is(err, im.ErrInvalidArgument) {
			t.Errorf("UpdateReadStates(%+v) = %v, want ErrInvalidArgument", bad, err)
		}
	}
	wantStates(t, rs, "alice", []string{conv}, [2]int64{0, 0})
	got, err := rs.ConversationReadStates(t.Context(), conv)
	if err != nil {
		t.Fatal(err)
	}
	checkConversationStates(t, got, conv, map[string]int64{"bob": 5}, nil)
}

func testConversationReadStates(t *testing.T, s im.Store, rs im.ReadStateStore) {
	const conv, other = "group_crs", "group_crs2"
	members := []string{"alice", "bob", "carol", "dave", "erin"}
	sendN(t, s, conv, "alice", 2, members...)
	sendN(t, s, conv, "bob", 3)
	sendN(t, s, other, "carol", 3, members...)
	update(t, rs,
		im.ReadState{UserID: "carol", ConversationID: conv, Read: 4},
		im.ReadState{UserID: "dave", ConversationID: conv, Delivered: 5},
		im.ReadState{UserID: "alice", ConversationID: conv, Read: 4},
		im.ReadState{UserID: "erin", ConversationID: other, Read: 3},
		// Nothing stored: a position of 0 everywhere.
		im.ReadState{UserID: "frank", ConversationID: conv},
	)
	got, err := rs.ConversationReadStates(t.Context(), conv)
	if err != nil {
		t.Fatalf("ConversationReadStates: %v", err)
	}
	checkConversationStates(t, got, conv,
		map[string]int64{"alice": 4, "bob": 5, "carol": 4, "dave": 0},
		map[string]int64{"dave": 5})
}

// checkConversationStates requires got to be one state per user of read
// (and of delivered, where given; 0 elsewhere), each for conv.
func checkConversationStates(t *testing.T, got []im.ReadState, conv string, read, delivered map[string]int64) {
	t.Helper()
	seen := make(map[string]bool)
	for _, g := range got {
		if seen[g.UserID] {
			t.Errorf("ConversationReadStates(%q) lists %q twice", conv, g.UserID)
		}
		seen[g.UserID] = true
		r, ok := read[g.UserID]
		w := im.ReadState{UserID: g.UserID, ConversationID: conv, Read: r, Delivered: delivered[g.UserID]}
		if !ok || g != w {
			t.Errorf("ConversationReadStates(%q) has %+v, want %+v (listed: %v)", conv, g, w, ok)
		}
	}
	for u := range read {
		if !seen[u] {
			t.Errorf("ConversationReadStates(%q) misses %q", conv, u)
		}
	}
}

// Receipts and sends of one user from several goroutines (several servers,
// several devices) leave the greatest of each.
func testReadStateConcurrent(t *testing.T, s im.Store, rs im.ReadStateStore) {
	const conv = "group_rsc"
	sendN(t, s, conv, "bob", 200, "alice", "bob")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				v := int64((i*37 + g*11) % 200)
				if _, err := rs.UpdateReadStates(t.Context(), []im.ReadState{{UserID: "alice", ConversationID: conv, Read: v, Delivered: 200 - v}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var last int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20 {
			r, err := s.AppendMessages(t.Context(), []im.AppendRequest{{Message: newMessage(conv, "alice", fmt.Sprintf("rsc-%d", i))}})
			if err != nil || r[0].Err != nil {
				errs <- fmt.Errorf("append: %v %v", err, r)
				return
			}
			last = r[0].Message.Seq
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	maxRead := int64(0)
	for g := range 8 {
		for i := range 25 {
			maxRead = max(maxRead, int64((i*37+g*11)%200))
		}
	}
	wantStates(t, rs, "alice", []string{conv}, [2]int64{max(maxRead, last), 200})
}

func testReadStateManyConversations(t *testing.T, s im.Store, rs im.ReadStateStore) {
	const n = 1500
	convs := make([]string, n)
	var batch []im.AppendRequest
	for i := range convs {
		convs[i] = fmt.Sprintf("group_many%04d", i)
		sender := "bob"
		if i%3 == 0 {
			sender = "alice"
		}
		batch = append(batch, im.AppendRequest{Message: newMessage(convs[i], sender, fmt.Sprintf("many-%d", i)), Members: []string{"alice", "bob"}})
	}
	appendNew(t, s, batch)
	var marks []im.ReadState
	for i := 1; i < n; i += 7 {
		marks = append(marks, im.ReadState{UserID: "alice", ConversationID: convs[i], Delivered: 1})
	}
	update(t, rs, marks...)
	// Asked in reverse, with one asked twice.
	ask := slices.Clone(convs)
	slices.Reverse(ask)
	ask = append(ask, convs[0])
	got, err := rs.ReadStates(t.Context(), "alice", ask)
	if err != nil {
		t.Fatalf("ReadStates: %v", err)
	}
	if len(got) != len(ask) {
		t.Fatalf("ReadStates returned %d states for %d", len(got), len(ask))
	}
	for i, g := range got {
		j := slices.Index(convs, ask[i])
		w := im.ReadState{UserID: "alice", ConversationID: ask[i]}
		if j%3 == 0 {
			w.Read = 1
		}
		if j%7 == 1 {
			w.Delivered = 1
		}
		if g != w {
			t.Fatalf("ReadStates[%d] = %+v, want %+v", i, g, w)
		}
	}
}

func testReadStateCancelled(t *testing.T, s im.Store, rs im.ReadStateStore) {
	const conv = "single_alice_bob"
	sendN(t, s, conv, "bob", 3, "alice", "bob")
	ctx := cancelled(t)
	if _, err := rs.UpdateReadStates(ctx, []im.ReadState{{UserID: "alice", ConversationID: conv, Read: 2}}); !errors.Is(err, context.Canceled) {
		t.Errorf("UpdateReadStates with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := rs.ReadStates(ctx, "alice", []string{conv}); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadStates with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := rs.ConversationReadStates(ctx, conv); !errors.Is(err, context.Canceled) {
		t.Errorf("ConversationReadStates with a cancelled context = %v, want context.Canceled", err)
	}
	wantStates(t, rs, "alice", []string{conv}, [2]int64{0, 0})
}

func testReadStateDurability(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("storetest: Harness.Reopen is not set")
	}
	s := open(t, h)
	rs := s.(im.ReadStateStore)
	const conv = "single_alice_bob"
	sendN(t, s, conv, "bob", 5, "alice", "bob")
	a := sendN(t, s, conv, "alice", 2)
	sendN(t, s, conv, "bob", 3)
	update(t, rs,
		im.ReadState{UserID: "bob", ConversationID: conv, Delivered: 9},
		im.ReadState{UserID: "carol", ConversationID: "group_d", Read: 1})
	sendN(t, s, "group_d", "dave", 1, "carol", "dave")
	update(t, rs, im.ReadState{UserID: "carol", ConversationID: "group_d", Read: 1, Delivered: 1, Mentioned: 1})

	s = h.Reopen(t, s)
	if s == nil {
		t.Fatal("storetest: Harness.Reopen returned nil")
	}
	rs, ok := s.(im.ReadStateStore)
	if !ok {
		t.Fatal("storetest: Harness.Reopen returned a store without im.ReadStateStore")
	}
	wantStates(t, rs, "alice", []string{conv}, [2]int64{a, 0})
	wantStates(t, rs, "bob", []string{conv}, [2]int64{10, 9})
	got0, err := rs.ReadStates(t.Context(), "carol", []string{"group_d"})
	if err != nil {
		t.Fatal(err)
	}
	if w := (im.ReadState{UserID: "carol", ConversationID: "group_d", Read: 1, Delivered: 1, Mentioned: 1}); got0[0] != w {
		t.Errorf("after reopen ReadStates(carol) = %+v, want %+v", got0[0], w)
	}
	got, err := rs.ConversationReadStates(t.Context(), conv)
	if err != nil {
		t.Fatal(err)
	}
	checkConversationStates(t, got, conv, map[string]int64{"alice": a, "bob": 10}, map[string]int64{"bob": 9})
}

// Mentioned moves like Delivered: forward, clamped, on its own.
func testReadStateMentioned(t *testing.T, s im.Store, rs im.ReadStateStore) {
	const conv = "group_mention"
	sendN(t, s, conv, "bob", 6, "alice", "bob")
	out := update(t, rs, im.ReadState{UserID: "alice", ConversationID: conv, Mentioned: 4})
	want := im.ReadState{UserID: "alice", ConversationID: conv, Mentioned: 4}
	if out[0] != want {
		t.Errorf("UpdateReadStates(Mentioned 4) returned %+v, want %+v", out[0], want)
	}
	update(t, rs, im.ReadState{UserID: "alice", ConversationID: conv, Mentioned: 2, Read: 3})
	update(t, rs, im.ReadState{UserID: "alice", ConversationID: conv, Mentioned: 99})
	got, err := rs.ReadStates(t.Context(), "alice", []string{conv})
	if err != nil {
		t.Fatal(err)
	}
	want = im.ReadState{UserID: "alice", ConversationID: conv, Read: 3, Mentioned: 6}
	if got[0] != want {
		t.Errorf("ReadStates = %+v, want %+v", got[0], want)
	}
	if _, err := rs.UpdateReadStates(t.Context(), []im.ReadState{{UserID: "carol", ConversationID: conv, Mentioned: -1}}); !errors.Is(err, im.ErrInvalidArgument) {
		t.Errorf("UpdateReadStates with a negative Mentioned = %v, want ErrInvalidArgument", err)
	}
	// A mention alone lists the user.
	update(t, rs, im.ReadState{UserID: "dave", ConversationID: conv, Mentioned: 5})
	all, err := rs.ConversationReadStates(t.Context(), conv)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, st := range all {
		if st.UserID == "dave" {
			found = st == im.ReadState{UserID: "dave", ConversationID: conv, Mentioned: 5}
		}
		if st.UserID == "carol" {
			t.Errorf("ConversationReadStates lists carol, whose update was refused: %+v", st)
		}
	}
	if !found {
		t.Errorf("ConversationReadStates(%q) = %+v, want dave with Mentioned 5", conv, all)
	}
}

// UpdatedAt is kept, to the microsecond, from the update that last moved
// a position.
func testReadStateUpdatedAt(t *testing.T, s im.Store, rs im.ReadStateStore) {
	const conv = "single_alice_bob"
	sendN(t, s, conv, "bob", 5, "alice", "bob")
	t1 := baseTime()
	t2 := t1.Add(time.Second + 7*time.Microsecond)
	t3 := t2.Add(time.Minute)
	check := func(want time.Time) {
		t.Helper()
		got, err := rs.ReadStates(t.Context(), "alice", []string{conv})
		if err != nil {
			t.Fatal(err)
		}
		if !got[0].UpdatedAt.Equal(want) {
			t.Errorf("UpdatedAt = %v, want %v", got[0].UpdatedAt, want)
		}
	}
	check(time.Time{})
	out := update(t, rs, im.ReadState{UserID: "alice", ConversationID: conv, Read: 2, UpdatedAt: t1})
	if !out[0].UpdatedAt.Equal(t1) {
		t.Errorf("UpdateReadStates returned UpdatedAt %v, want %v", out[0].UpdatedAt, t1)
	}
	// Nothing moves: the time stays.
	update(t, rs, im.ReadState{UserID: "alice", ConversationID: conv, Read: 1, UpdatedAt: t3})
	check(t1)
	update(t, rs, im.ReadState{UserID: "alice", ConversationID: conv, Delivered: 4, UpdatedAt: t2})
	check(t2)
	// A message of her own moves Read without a time.
	sendN(t, s, conv, "alice", 1)
	check(t2)
}
