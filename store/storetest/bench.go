package storetest

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/imserver/imserver/im"
)

// RunBenchmarks measures the store operations on the server's hot paths,
// each in a sub-benchmark with a fresh store from open (which arranges the
// store's release, typically with b.Cleanup):
//
//   - Append/writers=W/batch=B: W goroutines each appending to their own
//     conversation, B messages per AppendMessages call. One op is one
//     message, so batch=1 against batch=64 shows what group commit buys.
//   - AppendMemberOf/writers=W/batch=B: the same into groups, every
//     message checked against its group's members at commit (MemberOf),
//     as the server sends group messages: the difference from Append is
//     what the check costs.
//   - RangePull100: one Messages call returning 100 messages.
//   - SyncBatch: what a reconnecting client costs: UserConversations for a
//     user in 100 conversations, then Messages for each of them.
//   - CatchUp500/ranges and CatchUp500/scan, with im.SyncStore: a client
//     catching up on one conversation, 500 messages (a full page) per
//     MessageRanges call, and per ScanMessageRanges call when the store is
//     an im.MessageRangeScanner. One op is one page.
func RunBenchmarks(b *testing.B, open func(b *testing.B) im.Store) {
	for _, c := range []struct{ writers, batch int }{{1, 1}, {64, 1}, {64, 64}} {
		name := "Append/writers=" + strconv.Itoa(c.writers) + "/batch=" + strconv.Itoa(c.batch)
		b.Run(name, func(b *testing.B) { benchAppend(b, open(b), c.writers, c.batch, false) })
	}
	for _, c := range []struct{ writers, batch int }{{1, 1}, {64, 64}} {
		name := "AppendMemberOf/writers=" + strconv.Itoa(c.writers) + "/batch=" + strconv.Itoa(c.batch)
		b.Run(name, func(b *testing.B) { benchAppend(b, open(b), c.writers, c.batch, true) })
	}
	b.Run("RangePull100", func(b *testing.B) { benchRangePull(b, open(b)) })
	b.Run("SyncBatch", func(b *testing.B) { benchSync(b, open(b)) })
	b.Run("CatchUp500", func(b *testing.B) { benchCatchUp(b, open(b)) })
}

// benchText is a typical short text message.
const benchText = `{"text":"See you at the station at nine, the train leaves at 9:20 from platform 4."}`

func benchMessage(conv, sender string, n int, content []byte) im.Message {
	id := strconv.Itoa(n)
	return im.Message{
		ConversationID: conv,
		ServerID:       conv + ":" + id,
		SenderID:       sender,
		ClientMsgID:    id,
		Type:           im.TextMessage,
		Content:        content,
		SendTime:       baseTime().UnixMilli(),
		CreatedAt:      baseTime(),
	}
}

func benchAppend(b *testing.B, s im.Store, writers, batch int, memberOf bool) {
	var (
		next atomic.Int64 // messages claimed so far
		wg   sync.WaitGroup
		n    = int64(b.N)
	)
	content := []byte(benchText)
	group := ""
	if memberOf {
		// One group per writer, of 100 members, the writer among them.
		for w := range writers {
			members := make([]im.GroupMember, 100)
			for i := range members {
				members[i] = im.GroupMember{UserID: "m" + strconv.Itoa(i), Role: im.RoleMember, JoinedAt: baseTime()}
			}
			members[0] = im.GroupMember{UserID: "w" + strconv.Itoa(w), Role: im.RoleOwner, JoinedAt: baseTime()}
			g := im.Group{ID: "bench" + strconv.Itoa(w), Name: "bench", OwnerID: members[0].UserID, CreatedAt: baseTime(), UpdatedAt: baseTime()}
			if _, err := s.CreateGroup(b.Context(), g, members, im.AppendRequest{}); err != nil {
				b.Fatal(err)
			}
		}
		group = "bench"
	}
	b.ReportAllocs()
	b.ResetTimer()
	for w := range writers {
		wg.Go(func() {
			conv := "group_bench" + strconv.Itoa(w)
			sender := "w" + strconv.Itoa(w)
			reqs := make([]im.AppendRequest, batch)
			for {
				end := next.Add(int64(batch))
				start := end - int64(batch)
				if start >= n {
					return
				}
				k := int(min(end, n) - start)
				for i := range k {
					reqs[i] = im.AppendRequest{Message: benchMessage(conv, sender, int(start)+i, content)}
					if group != "" {
						reqs[i].MemberOf = group + strconv.Itoa(w)
					}
				}
				res, err := s.AppendMessages(b.Context(), reqs[:k])
				if err != nil {
					b.Error(err)
					return
				}
				for _, r := range res {
					if r.Err != nil || r.Duplicate {
						b.Errorf("append: Err=%v Duplicate=%v", r.Err, r.Duplicate)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// fill appends n messages to each of convs, in commits of up to 500.
func fill(b *testing.B, s im.Store, convs []string, n int, members []string) {
	b.Helper()
	var reqs []im.AppendRequest
	content := []byte(benchText)
	flush := func() {
		res, err := s.AppendMessages(b.Context(), reqs)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
		reqs = reqs[:0]
	}
	for i := range n {
		for _, c := range convs {
			reqs = append(reqs, im.AppendRequest{Message: benchMessage(c, "sender-"+c, i, content), Members: members})
			if len(reqs) == 500 {
				flush()
			}
		}
	}
	if len(reqs) > 0 {
		flush()
	}
}

func benchRangePull(b *testing.B, s im.Store) {
	const total = 1000
	fill(b, s, []string{"group_pull"}, total, nil)
	b.ReportAllocs()
	var from int64 = 1
	for b.Loop() {
		ms, err := s.Messages(b.Context(), "group_pull", from, from+99, 100)
		if err != nil {
			b.Fatal(err)
		}
		if len(ms) != 100 || ms[0].Seq != from {
			b.Fatalf("Messages(%d, %d): %d messages", from, from+99, len(ms))
		}
		from = (from+99)%total + 1
	}
}

func benchSync(b *testing.B, s im.Store) {
	const (
		convs   = 100
		perConv = 20
	)
	ids := make([]string, convs)
	for i := range ids {
		ids[i] = "group_sync" + strconv.Itoa(i)
	}
	fill(b, s, ids, perConv, []string{"reader"})
	b.ReportAllocs()
	for b.Loop() {
		cs, err := s.UserConversations(b.Context(), "reader")
		if err != nil {
			b.Fatal(err)
		}
		if len(cs) != convs {
			b.Fatalf("UserConversations: %d conversations, want %d", len(cs), convs)
		}
		for _, c := range cs {
			ms, err := s.Messages(b.Context(), c.ID, 1, 0, 100)
			if err != nil {
				b.Fatal(err)
			}
			if len(ms) != perConv {
				b.Fatalf("Messages(%q): %d messages, want %d", c.ID, len(ms), perConv)
			}
		}
	}
}

func benchCatchUp(b *testing.B, s im.Store) {
	ss, ok := s.(im.SyncStore)
	if !ok {
		b.Skip("storetest: the store does not implement im.SyncStore")
	}
	const (
		total = 5000
		page  = 500
	)
	fill(b, s, []string{"group_catchup"}, total, nil)
	var from int64 = 1
	ranges := []im.MessageRange{{ConversationID: "group_catchup"}}
	next := func() []im.MessageRange {
		ranges[0].From = from
		from = (from+page-1)%total + 1
		return ranges
	}
	check := func(b *testing.B, msgs []im.Message) {
		if len(msgs) != page || msgs[0].Seq != ranges[0].From {
			b.Fatalf("a page from %d: %d messages", ranges[0].From, len(msgs))
		}
	}
	b.Run("ranges", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			pages, err := ss.MessageRanges(b.Context(), next(), page)
			if err != nil {
				b.Fatal(err)
			}
			check(b, pages[0])
		}
		b.ReportMetric(float64(b.N*page)/b.Elapsed().Seconds(), "msgs/s")
	})
	sc, ok := s.(im.MessageRangeScanner)
	if !ok {
		return
	}
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			err := sc.ScanMessageRanges(b.Context(), next(), page, func(_ int, msgs []im.Message) error {
				check(b, msgs)
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*page)/b.Elapsed().Seconds(), "msgs/s")
	})
}
