package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
)

func testEmptyBatch(t *testing.T, h Harness) {
	s := open(t, h)
	res, err := s.AppendMessages(t.Context(), nil)
	if err != nil || len(res) != 0 {
		t.Errorf("AppendMessages(nil) = %d results, %v; want none, nil", len(res), err)
	}
}

// testAppendAssignsSeq: seqs start at 1 per conversation, follow batch order,
// and continue across calls; results carry the stored message.
func testAppendAssignsSeq(t *testing.T, h Harness) {
	s := open(t, h)
	a1 := newMessage("group_a", "u1", "c1")
	a1.Seq = 42 // the store assigns seq, whatever the caller put there
	b1 := newMessage("group_b", "u1", "c2")
	a2 := newMessage("group_a", "u2", "c1")
	a3 := newMessage("group_a", "u1", "c3")
	b2 := newMessage("group_b", "u2", "c4")
	batch := req(a1, b1, a2, a3, b2)
	want := []im.Message{withSeq(a1, 1), withSeq(b1, 1), withSeq(a2, 2), withSeq(a3, 3), withSeq(b2, 2)}

	res := appendNew(t, s, batch)
	for i := range res {
		checkMessage(t, fmt.Sprintf("result %d", i), res[i].Message, want[i])
	}
	checkMessages(t, "group_a", allMessages(t, s, "group_a"), []im.Message{want[0], want[2], want[3]})
	checkMessages(t, "group_b", allMessages(t, s, "group_b"), []im.Message{want[1], want[4]})
	checkMaxSeq(t, s, "group_a", 3)
	checkMaxSeq(t, s, "group_b", 2)

	// The next call continues each sequence.
	a4 := newMessage("group_a", "u3", "c1")
	res = appendNew(t, s, req(a4))
	checkMessage(t, "next call", res[0].Message, withSeq(a4, 4))
	checkMaxSeq(t, s, "group_a", 4)
	checkMaxSeq(t, s, "group_b", 2)
}

// testRoundTrip: every field comes back exactly as given.
func testRoundTrip(t *testing.T, h Harness) {
	s := open(t, h)
	full := im.Message{
		ConversationID: "single_alice_bob",
		ServerID:       "01JPB7Q3W8Z5K2M4N6P8R0T2V4",
		SenderID:       "alice",
		ReceiverID:     "bob",
		ClientMsgID:    "6F9619FF-8B86-D011-B42D-00C04FC964FF",
		Type:           im.CustomMessage + 7,
		Content:        []byte{0x00, 0x01, 0xfe, 0xff, '\n', 0x00},
		Extra:          `{"mentions":["bob"],"emoji":"😀"}`,
		AttachedInfo:   "ñandú ✓",
		SendTime:       -1,
		CreatedAt:      time.Date(2031, 12, 31, 23, 59, 59, 999_999_000, time.FixedZone("UTC+5:30", 5*3600+1800)),
	}
	minimal := im.Message{
		ConversationID: "system_alice",
		ServerID:       "s",
		SenderID:       "system",
		ClientMsgID:    "x",
		CreatedAt:      time.Date(2000, 1, 1, 0, 0, 0, 1000, time.UTC),
	}
	large := newMessage("group_big", "u", "big")
	large.Content = []byte(strings.Repeat("0123456789abcdef", 4096)) // 64 KiB
	large.Type = im.ImageMessage

	in := []im.Message{full, minimal, large}
	res := appendNew(t, s, req(in...))
	for i, m := range in {
		want := withSeq(m, 1)
		checkMessage(t, fmt.Sprintf("result %d", i), res[i].Message, want)
		got := allMessages(t, s, m.ConversationID)
		checkMessages(t, "Messages("+m.ConversationID+")", got, []im.Message{want})
		before, err := s.MessagesBefore(t.Context(), m.ConversationID, 0, 10)
		if err != nil {
			t.Fatalf("MessagesBefore: %v", err)
		}
		checkMessages(t, "MessagesBefore("+m.ConversationID+")", before, []im.Message{want})
	}

	// Changing the caller's buffer afterwards must not change what was stored.
	full.Content[0] = 'X'
	got := allMessages(t, s, full.ConversationID)
	if len(got) == 1 && got[0].Content[0] != 0x00 {
		t.Errorf("stored Content aliases the caller's slice")
	}
}

// testConcurrentAppend: many goroutines append small batches to several
// conversations at once; every conversation ends with exactly 1..N, each
// message once, and each goroutine's messages in the order it sent them.
func testConcurrentAppend(t *testing.T, h Harness) {
	s := open(t, h)
	const (
		writers = 16
		convs   = 4
		perConv = 10 // messages per writer per conversation
	)
	conv := func(c int) string { return fmt.Sprintf("group_conc%d", c) }

	type key struct{ sender, cmid string }
	var (
		mu       sync.Mutex
		reported = make(map[key]int64) // seq that AppendMessages reported
		wg       sync.WaitGroup
		start    = make(chan struct{})
	)
	for w := range writers {
		wg.Go(func() {
			sender := fmt.Sprintf("w%02d", w)
			var all []im.Message
			for k := range perConv {
				for c := range convs {
					all = append(all, newMessage(conv(c), sender, fmt.Sprintf("%d-%03d", c, k)))
				}
			}
			<-start
			for i, n := 0, 0; i < len(all); i += n {
				n = min(1+(i+w)%3, len(all)-i) // batches of 1 to 3, mixing conversations
				res, err := s.AppendMessages(t.Context(), req(all[i:i+n]...))
				if err != nil {
					t.Errorf("writer %d: AppendMessages: %v", w, err)
					return
				}
				if len(res) != n {
					t.Errorf("writer %d: %d results for %d requests", w, len(res), n)
					return
				}
				mu.Lock()
				for j, r := range res {
					if r.Err != nil || r.Duplicate {
						t.Errorf("writer %d: result: Err=%v Duplicate=%v", w, r.Err, r.Duplicate)
					}
					m := all[i+j]
					reported[key{m.SenderID, m.ClientMsgID}] = r.Message.Seq
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}

	const n = writers * perConv
	for c := range convs {
		id := conv(c)
		ms := allMessages(t, s, id)
		checkSeqs(t, id, ms, seqRange(1, n)...)
		checkMaxSeq(t, s, id, n)
		seen := make(map[key]bool, len(ms))
		last := make(map[string]string) // sender → last cmid seen, in seq order
		for _, m := range ms {
			k := key{m.SenderID, m.ClientMsgID}
			if seen[k] {
				t.Errorf("%s: message %v stored twice", id, k)
			}
			seen[k] = true
			if r, ok := reported[k]; !ok || r != m.Seq {
				t.Errorf("%s: message %v stored with seq %d, AppendMessages reported %d", id, k, m.Seq, r)
			}
			// Each writer's calls are sequential, so its messages must
			// appear in the order it sent them.
			if prev := last[m.SenderID]; prev >= m.ClientMsgID {
				t.Errorf("%s: writer %s's %s has a higher seq than its later %s", id, m.SenderID, prev, m.ClientMsgID)
			}
			last[m.SenderID] = m.ClientMsgID
		}
	}
}

func testDedup(t *testing.T, h Harness) {
	t.Run("AcrossCalls", func(t *testing.T) {
		s := open(t, h)
		orig := newMessage("group_d", "alice", "c1")
		appendNew(t, s, req(orig))

		retry := orig
		retry.ServerID = "srv:other"
		retry.Content = []byte("different content")
		retry.CreatedAt = orig.CreatedAt.Add(time.Hour)
		res := appendOK(t, s, req(retry))
		if !res[0].Duplicate || res[0].Err != nil {
			t.Fatalf("retry: Duplicate=%v Err=%v, want a duplicate", res[0].Duplicate, res[0].Err)
		}
		checkMessage(t, "duplicate result", res[0].Message, withSeq(orig, 1))
		checkMessages(t, "stored", allMessages(t, s, "group_d"), []im.Message{withSeq(orig, 1)})
		checkMaxSeq(t, s, "group_d", 1)

		// A duplicate takes no seq.
		next := newMessage("group_d", "alice", "c2")
		res = appendNew(t, s, req(next))
		checkMessage(t, "next", res[0].Message, withSeq(next, 2))
	})

	t.Run("WithinBatch", func(t *testing.T) {
		s := open(t, h)
		m1 := newMessage("group_d", "alice", "c1")
		m1again := m1
		m1again.ServerID = "srv:again"
		m1again.Content = []byte("again")
		m2 := newMessage("group_d", "alice", "c2")
		res := appendOK(t, s, req(m1, m1again, m2))
		if res[0].Duplicate || res[0].Err != nil || res[2].Duplicate || res[2].Err != nil {
			t.Fatalf("results: %+v, want new, duplicate, new", res)
		}
		if !res[1].Duplicate || res[1].Err != nil {
			t.Fatalf("second request with the same ClientMsgID: Duplicate=%v Err=%v, want a duplicate", res[1].Duplicate, res[1].Err)
		}
		checkMessage(t, "duplicate result", res[1].Message, withSeq(m1, 1))
		checkMessage(t, "third result", res[2].Message, withSeq(m2, 2))
		checkMessages(t, "stored", allMessages(t, s, "group_d"), []im.Message{withSeq(m1, 1), withSeq(m2, 2)})
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := open(t, h)
		const (
			rounds  = 5
			callers = 8
		)
		for round := range rounds {
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				in    = make([]im.Message, callers)
				res   = make([]im.AppendResult, callers)
			)
			for i := range callers {
				m := newMessage("group_race", "alice", fmt.Sprintf("r%d", round))
				m.ServerID = fmt.Sprintf("srv:%d:%d", round, i)
				m.Content = fmt.Appendf(nil, "attempt %d", i)
				m.CreatedAt = m.CreatedAt.Add(time.Duration(i) * time.Millisecond)
				in[i] = m
				wg.Go(func() {
					<-start
					r, err := s.AppendMessages(t.Context(), req(m))
					if err != nil || len(r) != 1 {
						t.Errorf("AppendMessages: %d results, %v", len(r), err)
						return
					}
					res[i] = r[0]
				})
			}
			close(start)
			wg.Wait()
			if t.Failed() {
				return
			}
			winner := -1
			for i, r := range res {
				if r.Err != nil {
					t.Fatalf("round %d caller %d: %v", round, i, r.Err)
				}
				if !r.Duplicate {
					if winner >= 0 {
						t.Fatalf("round %d: callers %d and %d both stored the message", round, winner, i)
					}
					winner = i
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: every caller got Duplicate, none stored the message", round)
			}
			want := withSeq(in[winner], int64(round+1))
			for i, r := range res {
				checkMessage(t, fmt.Sprintf("round %d caller %d", round, i), r.Message, want)
			}
			stored := messages(t, s, "group_race", int64(round+1), 0, 10)
			checkMessages(t, fmt.Sprintf("round %d stored", round), stored, []im.Message{want})
		}
	})

	t.Run("DifferentSenders", func(t *testing.T) {
		s := open(t, h)
		a := newMessage("group_d", "alice", "same")
		b := newMessage("group_d", "bob", "same")
		res := appendNew(t, s, req(a))
		checkMessage(t, "alice", res[0].Message, withSeq(a, 1))
		res = appendNew(t, s, req(b))
		checkMessage(t, "bob", res[0].Message, withSeq(b, 2))
		checkSeqs(t, "stored", allMessages(t, s, "group_d"), 1, 2)
	})

	t.Run("AcrossConversations", func(t *testing.T) {
		// The key is (SenderID, ClientMsgID) alone: a retry that names
		// another conversation still gets the original back.
		s := open(t, h)
		orig := newMessage("group_one", "alice", "c1")
		appendNew(t, s, req(orig))
		other := newMessage("group_two", "alice", "c1")
		res := appendOK(t, s, req(other))
		if !res[0].Duplicate || res[0].Err != nil {
			t.Fatalf("Duplicate=%v Err=%v, want a duplicate", res[0].Duplicate, res[0].Err)
		}
		checkMessage(t, "duplicate result", res[0].Message, withSeq(orig, 1))
		checkNoConversation(t, s, "group_two")
	})
}

// testMembers: members are recorded by the append that creates a
// conversation and by no later one.
func testMembers(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := t.Context()
	if cs, err := s.UserConversations(ctx, "nobody"); err != nil || len(cs) != 0 {
		t.Errorf("UserConversations of a user with none = %v, %v; want empty, nil", cs, err)
	}

	appendNew(t, s, []im.AppendRequest{{
		Message: newMessage("group_g", "alice", "c1"),
		Members: []string{"alice", "bob", "carol"},
	}})
	checkUserConversations(t, s, "alice", map[string]int64{"group_g": 1})
	checkUserConversations(t, s, "bob", map[string]int64{"group_g": 1})

	// A later append's members are ignored, and members see the new MaxSeq.
	appendNew(t, s, []im.AppendRequest{{
		Message: newMessage("group_g", "bob", "c2"),
		Members: []string{"dave"},
	}})
	checkUserConversations(t, s, "dave", map[string]int64{})
	checkUserConversations(t, s, "carol", map[string]int64{"group_g": 2})

	// Within one batch, only the first message of a new conversation counts.
	appendNew(t, s, []im.AppendRequest{
		{Message: newMessage("single_alice_bob", "alice", "c3"), Members: []string{"alice", "bob"}},
		{Message: newMessage("single_alice_bob", "bob", "c4"), Members: []string{"erin"}},
		{Message: newMessage("single_alice_bob", "alice", "c5")},
		{Message: newMessage("group_h", "carol", "c6"), Members: []string{"alice", "carol"}},
	})
	checkUserConversations(t, s, "erin", map[string]int64{})
	checkUserConversations(t, s, "alice", map[string]int64{"group_g": 2, "single_alice_bob": 3, "group_h": 1})
	checkUserConversations(t, s, "bob", map[string]int64{"group_g": 2, "single_alice_bob": 3})
	checkUserConversations(t, s, "carol", map[string]int64{"group_g": 2, "group_h": 1})

	// A conversation created without members lists nobody.
	appendNew(t, s, req(newMessage("group_nomembers", "frank", "c7")))
	checkUserConversations(t, s, "frank", map[string]int64{})

	// A user id that is a prefix of another must not pick up its
	// conversations.
	appendNew(t, s, []im.AppendRequest{{
		Message: newMessage("group_prefix", "al", "c8"),
		Members: []string{"al"},
	}})
	checkUserConversations(t, s, "al", map[string]int64{"group_prefix": 1})
	checkUserConversations(t, s, "alice", map[string]int64{"group_g": 2, "single_alice_bob": 3, "group_h": 1})
}

func testConversation(t *testing.T, h Harness) {
	s := open(t, h)
	checkNoConversation(t, s, "group_unknown")
	appendNew(t, s, req(newMessage("group_c", "u", "1"), newMessage("group_c", "u", "2")))
	checkMaxSeq(t, s, "group_c", 2)
	checkNoConversation(t, s, "group_c2") // an id that extends a known one
	checkNoConversation(t, s, "group_")   // and one that is its prefix
	checkNoConversation(t, s, "group_unknown")
}

// fillConversation appends n messages to conv and returns them with seqs.
func fillConversation(t *testing.T, s im.Store, conv string, n int) []im.Message {
	t.Helper()
	in := make([]im.Message, n)
	for i := range in {
		in[i] = newMessage(conv, "author-"+conv, fmt.Sprintf("m%03d", i+1))
	}
	res := appendNew(t, s, req(in...))
	out := make([]im.Message, n)
	for i := range in {
		out[i] = withSeq(in[i], int64(i+1))
		checkMessage(t, "fill", res[i].Message, out[i])
	}
	return out
}

func testMessages(t *testing.T, h Harness) {
	s := open(t, h)
	all := fillConversation(t, s, "group_m", 10)
	fillConversation(t, s, "group_m2", 3) // a neighbour that must not leak in
	tests := []struct {
		name     string
		conv     string
		from, to int64
		limit    int
		want     []int64
	}{
		{"EmptyConversation", "group_none", 1, 0, 10, nil},
		{"All", "group_m", 1, 0, 100, seqRange(1, 10)},
		{"FromZero", "group_m", 0, 0, 100, seqRange(1, 10)},
		{"FromNegative", "group_m", -5, 0, 100, seqRange(1, 10)},
		{"ToNegativeIsUnbounded", "group_m", 4, -1, 100, seqRange(4, 10)},
		{"ExactRange", "group_m", 3, 5, 100, seqRange(3, 5)},
		{"ExactAll", "group_m", 1, 10, 10, seqRange(1, 10)},
		{"Single", "group_m", 5, 5, 100, []int64{5}},
		{"LimitHonoured", "group_m", 3, 0, 2, []int64{3, 4}},
		{"LimitOne", "group_m", 1, 10, 1, []int64{1}},
		{"LimitWithinRange", "group_m", 2, 9, 3, []int64{2, 3, 4}},
		{"ToBeyondMax", "group_m", 8, 20, 100, []int64{8, 9, 10}},
		{"FromMax", "group_m", 10, 0, 100, []int64{10}},
		{"FromBeyondMax", "group_m", 11, 0, 100, nil},
		{"FarBeyondMax", "group_m", 1000, 2000, 100, nil},
		{"FromAfterTo", "group_m", 6, 5, 100, nil},
		{"Neighbour", "group_m2", 1, 0, 100, seqRange(1, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := messages(t, s, tt.conv, tt.from, tt.to, tt.limit)
			checkSeqs(t, "Messages", got, tt.want...)
			if tt.conv == "group_m" && len(got) > 0 && len(got) == len(tt.want) {
				checkMessages(t, "Messages", got, all[tt.want[0]-1:tt.want[len(tt.want)-1]])
			}
		})
	}
}

func testMessagesBefore(t *testing.T, h Harness) {
	s := open(t, h)
	all := fillConversation(t, s, "group_m", 10)
	fillConversation(t, s, "group_m2", 3)
	tests := []struct {
		name   string
		conv   string
		before int64
		limit  int
		want   []int64
	}{
		{"EmptyConversation", "group_none", 0, 10, nil},
		{"NewestPage", "group_m", 0, 3, []int64{8, 9, 10}},
		{"NegativeIsNewest", "group_m", -1, 3, []int64{8, 9, 10}},
		{"NewestAll", "group_m", 0, 100, seqRange(1, 10)},
		{"BeforeFirst", "group_m", 1, 10, nil},
		{"BeforeSecond", "group_m", 2, 10, []int64{1}},
		{"Middle", "group_m", 6, 3, []int64{3, 4, 5}},
		{"MiddleShort", "group_m", 4, 10, []int64{1, 2, 3}},
		{"BeforeMaxPlusOne", "group_m", 11, 3, []int64{8, 9, 10}},
		{"FarBeyondMax", "group_m", 1000, 3, []int64{8, 9, 10}},
		{"BeforeMax", "group_m", 10, 1, []int64{9}},
		{"Neighbour", "group_m2", 0, 100, seqRange(1, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.MessagesBefore(t.Context(), tt.conv, tt.before, tt.limit)
			if err != nil {
				t.Fatalf("MessagesBefore(%q, %d, %d): %v", tt.conv, tt.before, tt.limit, err)
			}
			checkSeqs(t, "MessagesBefore", got, tt.want...)
			if tt.conv == "group_m" && len(got) > 0 && len(got) == len(tt.want) {
				checkMessages(t, "MessagesBefore", got, all[tt.want[0]-1:tt.want[len(tt.want)-1]])
			}
		})
	}
}

// testInvalidMessages: each malformed request is refused on its own, and the
// valid requests around it are stored with gap-free seqs.
func testInvalidMessages(t *testing.T, h Harness) {
	long := strings.Repeat("x", im.MaxIDLength+1)
	longConv := strings.Repeat("c", im.MaxConversationIDLen+1)
	tests := []struct {
		name   string
		modify func(r *im.AppendRequest)
	}{
		{"EmptySenderID", func(r *im.AppendRequest) { r.Message.SenderID = "" }},
		{"LongSenderID", func(r *im.AppendRequest) { r.Message.SenderID = long }},
		{"BadUTF8SenderID", func(r *im.AppendRequest) { r.Message.SenderID = "a\xffb" }},
		{"ControlSenderID", func(r *im.AppendRequest) { r.Message.SenderID = "a\x00b" }},
		{"EmptyClientMsgID", func(r *im.AppendRequest) { r.Message.ClientMsgID = "" }},
		{"LongClientMsgID", func(r *im.AppendRequest) { r.Message.ClientMsgID = long }},
		{"BadUTF8ClientMsgID", func(r *im.AppendRequest) { r.Message.ClientMsgID = "\xc3\x28" }},
		{"ControlClientMsgID", func(r *im.AppendRequest) { r.Message.ClientMsgID = "a\nb" }},
		{"EmptyConversationID", func(r *im.AppendRequest) { r.Message.ConversationID = "" }},
		{"LongConversationID", func(r *im.AppendRequest) { r.Message.ConversationID = longConv }},
		{"BadUTF8ConversationID", func(r *im.AppendRequest) { r.Message.ConversationID = "group_\xff" }},
		{"ControlConversationID", func(r *im.AppendRequest) { r.Message.ConversationID = "group_\x00" }},
		{"EmptyServerID", func(r *im.AppendRequest) { r.Message.ServerID = "" }},
		{"EmptyMember", func(r *im.AppendRequest) { r.Members = []string{"ok", ""} }},
		{"BadUTF8Member", func(r *im.AppendRequest) { r.Members = []string{"ok", "\xff"} }},
		{"LongMember", func(r *im.AppendRequest) { r.Members = []string{long} }},
		{"Tombstone", func(r *im.AppendRequest) { r.Message.RevokedBy, r.Message.RevokedAt = "mallory", baseTime() }},
		{"RevokedAtOnly", func(r *im.AppendRequest) { r.Message.RevokedAt = baseTime() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, h)
			bad := im.AppendRequest{Message: newMessage("group_bad", "mallory", "bad")}
			tt.modify(&bad)
			before := newMessage("group_ok", "alice", "c1")
			after := newMessage("group_ok", "alice", "c2")
			res := appendOK(t, s, []im.AppendRequest{{Message: before}, bad, {Message: after}})
			if !isInvalid(res[1].Err) {
				t.Errorf("bad request: Err = %v, want ErrInvalidArgument", res[1].Err)
			}
			if res[1].Duplicate {
				t.Errorf("bad request: Duplicate is set")
			}
			for i, want := range map[int]im.Message{0: withSeq(before, 1), 2: withSeq(after, 2)} {
				if res[i].Err != nil || res[i].Duplicate {
					t.Errorf("valid request %d: Err=%v Duplicate=%v", i, res[i].Err, res[i].Duplicate)
				}
				checkMessage(t, fmt.Sprintf("valid request %d", i), res[i].Message, want)
			}
			checkMessages(t, "stored", allMessages(t, s, "group_ok"), []im.Message{withSeq(before, 1), withSeq(after, 2)})
			checkNoConversation(t, s, "group_bad")
			checkUserConversations(t, s, "ok", map[string]int64{})

			// The refused message left no dedup entry behind: sent again
			// with the fault fixed, it is stored.
			fixed := newMessage("group_bad", "mallory", "bad")
			res = appendNew(t, s, req(fixed))
			checkMessage(t, "fixed", res[0].Message, withSeq(fixed, 1))
		})
	}

	t.Run("OnlyInvalid", func(t *testing.T) {
		s := open(t, h)
		m := newMessage("group_bad", "", "c1")
		res := appendOK(t, s, req(m, m))
		for i, r := range res {
			if !isInvalid(r.Err) {
				t.Errorf("result %d: Err = %v, want ErrInvalidArgument", i, r.Err)
			}
		}
		checkNoConversation(t, s, "group_bad")
	})

	t.Run("LongestValidIDs", func(t *testing.T) {
		// The limits are inclusive, and the one-to-one conversation of two
		// users with the longest ids is a valid conversation id.
		s := open(t, h)
		a, b := strings.Repeat("a", im.MaxIDLength), strings.Repeat("b", im.MaxIDLength)
		m := newMessage(im.SingleConversationID(a, b), a, strings.Repeat("é", im.MaxIDLength/2))
		m.ServerID = "srv:long"
		res := appendNew(t, s, []im.AppendRequest{{Message: m, Members: []string{a, b}}})
		checkMessage(t, "result", res[0].Message, withSeq(m, 1))
		checkMessages(t, "stored", allMessages(t, s, m.ConversationID), []im.Message{withSeq(m, 1)})
		checkUserConversations(t, s, b, map[string]int64{m.ConversationID: 1})
	})
}
