package im

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// maxCommitBatch bounds how many sends share one store commit.
const maxCommitBatch = 8192

// commitOp is one send waiting for its commit.
type commitOp struct {
	req    AppendRequest
	origin *session // the sending connection: it gets the ack, not a push
	// members of the message's group when it was checked: its recipients
	// if the group is no longer cached when it is delivered.
	members *memberSet
	// also are users pushed to beside the conversation's members (those a
	// group notice reports removed).
	also []string
	// group, if set, makes this a change to a group (its notice is req),
	// stored alone by CreateGroup or ChangeGroup rather than in a batch,
	// and members are the members it leaves.
	group *groupOp
	// done completes the op on its delivery goroutine. held collects the
	// writers its answer would start: they are started once the whole
	// batch is queued.
	done func(r AppendResult, err error, held *heldWriters)
	// read is when the frame of a client's send was read (unix
	// nanoseconds), zero for a send of the Go API.
	read int64
}

// groupOp is a change to a group waiting for its commit.
type groupOp struct {
	id      string
	create  *Group // CreateGroup with members, else ChangeGroup with change
	members []GroupMember
	change  GroupChange
}

// committer is the group commit: one goroutine takes every send waiting at
// that moment, stores them with one AppendMessages call (one transaction,
// one fsync), hands them to the delivery stage, and starts over at once
// with whatever arrived meanwhile. No fixed delay: under light load a batch
// is one message; under heavy load batches grow by themselves.
//
// The delivery stage, which pushes each new message and completes its send
// (the ack), runs on several goroutines, each owning the conversations that
// hash to it: fanning a message out to a large group is the costly step,
// and one goroutine would keep it to one core. Every send of a conversation
// goes through the same delivery goroutine in commit order, so pushes of a
// conversation are queued to every connection in seq order, and its acks
// in the order of its commits.
type committer struct {
	srv *Server
	in  chan *commitOp
	// shards is how many delivery goroutines there are.
	shards int

	mu      sync.RWMutex // read-held while submitting; write-held to stop
	stopped bool
	done    chan struct{}
	once    sync.Once
}

func newCommitter(s *Server) *committer {
	return &committer{
		srv:    s,
		in:     make(chan *commitOp, maxCommitBatch*4),
		shards: max(1, min(runtime.GOMAXPROCS(0), maxDeliveryShards)),
		done:   make(chan struct{}),
	}
}

// maxDeliveryShards bounds the delivery goroutines: past a few, fan-out is
// no longer what a core waits for (the connections' writers are).
const maxDeliveryShards = 16

// submit queues op. It fails with ErrServerClosed once the committer stops;
// otherwise op.done is called exactly once, later, from the commit loop.
func (c *committer) submit(op *commitOp) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.stopped {
		return ErrServerClosed
	}
	c.in <- op
	return nil
}

// stop lets the loop commit what was submitted, then ends it. Idempotent;
// returns when the loop has ended.
func (c *committer) stop() {
	c.once.Do(func() {
		c.mu.Lock()
		c.stopped = true
		close(c.in)
		c.mu.Unlock()
	})
	<-c.done
}

func (c *committer) run() {
	// Pushes and acks of a committed batch go out on the delivery
	// goroutines while the next batch is already being stored: the store's
	// commit (an fsync) is the slow step, and nothing else should wait
	// behind it. Each delivery goroutine holds up to two batches' parts
	// waiting; past that the commit loop waits for it, which is the
	// back-pressure on senders.
	shards := make([]chan committed, c.shards)
	var delivering sync.WaitGroup
	for i := range shards {
		shards[i] = make(chan committed, 2)
		delivering.Add(1)
		go func() {
			defer delivering.Done()
			var held heldWriters
			for b := range shards[i] {
				c.finish(b, &held)
			}
		}()
	}
	defer func() {
		for _, ch := range shards {
			close(ch)
		}
		delivering.Wait()
		if c.srv.after != nil {
			close(c.srv.after) // nothing delivers any more
		}
		close(c.done)
	}()

	for op := range c.in {
		batch := make([]*commitOp, 1, min(len(c.in)+1, maxCommitBatch))
		batch[0] = op
	fill:
		for len(batch) < maxCommitBatch {
			select {
			case op, ok := <-c.in:
				if !ok {
					break fill
				}
				batch = append(batch, op)
			default:
				break fill
			}
		}
		// A group change is a commit of its own, in its place among the
		// sends, so that its notice is pushed in seq order with them.
		for len(batch) > 0 {
			n := 1
			if batch[0].group == nil {
				for n < len(batch) && batch[n].group == nil {
					n++
				}
			}
			c.dispatch(shards, c.commit(batch[:n]))
			batch = batch[n:]
		}
	}
}

// commit stores ops: a batch of sends, or one group change.
func (c *committer) commit(ops []*commitOp) committed {
	start := time.Now()
	var (
		results []AppendResult
		err     error
	)
	if g := ops[0].group; g != nil {
		var r AppendResult
		r, err = c.changeGroup(g, ops[0].req)
		results = []AppendResult{r}
	} else {
		reqs := make([]AppendRequest, len(ops))
		for i, op := range ops {
			reqs[i] = op.req
		}
		results, err = c.append(reqs)
		if err == nil && len(results) != len(reqs) {
			err = fmt.Errorf("im: store returned %d results for %d messages", len(results), len(reqs))
		}
		if err != nil {
			c.srv.log.Error("store append failed", "n", len(reqs), "err", err)
		}
	}
	err = c.srv.noteCommit(err)
	took := uint64(time.Since(start))
	st := &c.srv.stats
	st.commits.Add(1)
	st.commitNanos.Add(took)
	// Per commit, not per message: a few atomic adds for a whole batch.
	st.commitTimes.observe(commitBounds, took)
	st.commitSizes.observe(batchBounds, uint64(len(ops)))
	return committed{ops, results, err}
}

// append stores a batch of sends. A panic in the Store fails the batch
// with an error, as a failed commit does: its senders are told, and the
// loop goes on with the next batch.
func (c *committer) append(reqs []AppendRequest) (results []AppendResult, err error) {
	defer c.srv.recoverStore("AppendMessages", &err)
	return c.srv.store.AppendMessages(c.srv.base, reqs)
}

// changeGroup stores a group change, failing it if the Store panics.
func (c *committer) changeGroup(g *groupOp, notice AppendRequest) (r AppendResult, err error) {
	if g.create != nil {
		defer c.srv.recoverStore("CreateGroup", &err)
		return c.srv.store.CreateGroup(c.srv.base, *g.create, g.members, notice)
	}
	defer c.srv.recoverStore("ChangeGroup", &err)
	return c.srv.store.ChangeGroup(c.srv.base, g.id, g.change)
}

// dispatch splits a committed batch by conversation over the delivery
// goroutines, keeping the batch's order within each part. A batch whose
// sends all go to one goroutine (every batch under light load) is passed
// on as it is.
func (c *committer) dispatch(shards []chan committed, b committed) {
	n := uint32(len(shards))
	shard := func(op *commitOp) uint32 { return fnv32(op.req.Message.ConversationID) % n }
	first := shard(b.ops[0])
	same := true
	for _, op := range b.ops[1:] {
		if shard(op) != first {
			same = false
			break
		}
	}
	if same {
		shards[first] <- b
		return
	}
	keys := make([]uint8, len(b.ops)) // maxDeliveryShards fits
	var count [maxDeliveryShards]int
	for i, op := range b.ops {
		keys[i] = uint8(shard(op))
		count[keys[i]]++
	}
	// One array for every part's ops, one for their results.
	ops := make([]*commitOp, len(b.ops))
	var results []AppendResult
	if b.err == nil {
		results = make([]AppendResult, len(b.ops))
	}
	var parts [maxDeliveryShards]committed
	at := 0
	for k, cnt := range count[:n] {
		parts[k] = committed{ops: ops[at : at : at+cnt], err: b.err}
		if results != nil {
			parts[k].results = results[at : at : at+cnt]
		}
		at += cnt
	}
	for i, k := range keys {
		p := &parts[k]
		p.ops = append(p.ops, b.ops[i])
		if results != nil {
			p.results = append(p.results, b.results[i])
		}
	}
	for k, p := range parts[:n] {
		if len(p.ops) > 0 {
			shards[k] <- p
		}
	}
}

// committed is a batch whose store call has returned.
type committed struct {
	ops     []*commitOp
	results []AppendResult
	err     error
}

// finish pushes the batch's new messages and completes its operations, in
// the batch's order.
//
// New messages of one group that follow each other in the batch are
// pushed together (groupRun, up to runLimit): each member's connection
// takes all of them at once, where one message at a time would wake its
// writer and cost a write per message. Their sends are completed once
// they are pushed, in order with the rest. And the writers of the
// connections it queues frames to start only once the whole batch is
// queued (held), so that each connection gets its share of the batch,
// its acks and pushes, in one write.
func (c *committer) finish(b committed, held *heldWriters) {
	defer held.start()
	var run groupRun
	limit := runLimit(c.srv.cfg.SendQueue)
	waiting := 0 // b.ops[waiting:i] are pushed or in run, and not yet done
	var clock time.Time
	for i, op := range b.ops {
		if b.err == nil {
			r := b.results[i]
			c.srv.groupCommitted(op, r)
			switch {
			case r.Err != nil:
			case r.Duplicate:
				c.srv.stats.duplicates.Add(1)
			default:
				c.srv.stats.stored.Add(1)
				c.srv.stats.byType[stripe(op)].n[typeIndex(r.Message.Type)].Add(1)
				if set, ok := c.srv.runnable(r.Message, op); ok {
					if !run.fits(r.Message, set, limit) {
						c.srv.deliverRun(&run, held)
						waiting = c.complete(b, waiting, i, &clock, held)
					}
					run.add(r.Message, op, set)
					continue
				}
				c.srv.deliverRun(&run, held)
				c.srv.deliver(r.Message, op, held)
			}
		}
		if run.empty() {
			waiting = c.complete(b, waiting, i+1, &clock, held)
		}
	}
	c.srv.deliverRun(&run, held)
	c.complete(b, waiting, len(b.ops), &clock, held)
}

// complete calls done for b.ops[from:to] and returns to. It observes each
// send's latency with one clock read for the batch, not one per ack, taken
// in *clock when the batch's first ack is due: the later acks of the batch
// are late by the pushes made between, which Stats.SendLatency leaves out.
func (c *committer) complete(b committed, from, to int, clock *time.Time, held *heldWriters) int {
	for i := from; i < to; i++ {
		op := b.ops[i]
		var r AppendResult
		if b.err == nil {
			r = b.results[i]
		}
		if op.read != 0 {
			if clock.IsZero() {
				*clock = time.Now()
			}
			c.srv.stats.sendLatency.observe(op.origin.stripe, latencyBounds, nanosSince(op.read, *clock))
		}
		op.done(r, b.err, held)
	}
	return to
}

// stripe is the stats stripe for op: its sender's connection's, or for a
// send of the Go API the first.
func stripe(op *commitOp) uint8 {
	if op.origin != nil {
		return op.origin.stripe
	}
	return 0
}

// groupCommitted brings the group cache up to date with a commit before its
// message is delivered: a change of this Server leaves the members it
// computed, and a group message whose commit saw a newer Version than the
// cached one (another server changed the group) reloads them, so that it
// goes to the members as they are now. On the fast path, with no other
// server changing the group, nothing is read.
func (s *Server) groupCommitted(op *commitOp, r AppendResult) {
	if g := op.group; g != nil {
		switch {
		case r.Err != nil:
		case g.change.Delete:
			s.groups.invalidate(g.id)
		case op.members != nil:
			s.groups.offer(g.id, op.members)
		}
		return
	}
	gid := op.req.MemberOf
	if gid == "" {
		return
	}
	set := s.groups.peek(gid)
	if set == nil {
		set = op.members
	}
	if set != nil && set.version >= r.GroupVersion && r.GroupVersion != 0 {
		return
	}
	if r.GroupVersion == 0 {
		// The commit found no group: it was dismissed elsewhere.
		s.groups.invalidate(gid)
		return
	}
	if _, err := s.groups.refresh(gid); err != nil {
		// Better to push to nobody than to members who may have left:
		// they sync what they missed.
		op.members = nil
		if !errors.Is(err, ErrNotFound) {
			s.log.Error("reload group members", "conv", op.req.Message.ConversationID, "err", err)
		}
	}
}

// deliver pushes a newly stored message to every live session of its
// recipients except the one that sent it, and hands it to AfterSend and
// the Notifier. The writers it needs are left to held, when not nil.
func (s *Server) deliver(m Message, op *commitOp, held *heldWriters) {
	origin := op.origin
	// One encoding, shared by every connection it goes to.
	body := s.encodePush(&m)
	f := Frame{Command: imv1.CommandType_CMD_PUSH_MSG, Body: body}
	// Where delivery acks are stored, each session remembers the push to
	// map the client's MSG_ACK back to it.
	var ref *pushRef
	if s.reads != nil {
		ref = &pushRef{serverID: m.ServerID, conv: m.ConversationID, seq: m.Seq}
	}
	// reached is set when a session took the push: a recipient it stays
	// false for has no open session here, which the Notifier is told of,
	// without a second look at the hub.
	var reached bool
	push := func(sess *session) {
		if sess != origin && sess.enqueueMessage(f, ref, held) {
			reached = true
		}
	}
	if gid, ok := groupOf(m.ConversationID); ok {
		// A group's push goes to many connections: each transport
		// encodes it once for all of them.
		f.Shared = new(wire.Encodings)
		// The members as they are now, which is who can sync it. The
		// cache is never loaded here: that would stall every delivery
		// behind one store read.
		set := s.groups.peek(gid)
		if set == nil || (op.members != nil && op.members.version > set.version) {
			set = op.members
		}
		var offline []uint64 // bit i: set.ids[i] was not reached
		if set != nil {
			for i, u := range set.ids {
				reached = false
				s.hub.each(u, push)
				if !reached && s.notify != nil && u != m.SenderID {
					if offline == nil {
						offline = make([]uint64, (len(set.ids)+63)/64)
					}
					offline[i/64] |= 1 << (i % 64)
				}
			}
		}
		s.noteMentions(m, set)
		for _, u := range op.also {
			if set == nil || set.roles[u] == 0 {
				s.hub.each(u, push)
			}
		}
		if s.notify != nil {
			s.notifyGroupMessage(m, set, offline)
		}
	} else {
		s.hub.each(m.SenderID, push)
		if m.ReceiverID != "" && m.ReceiverID != m.SenderID {
			reached = false
			s.hub.each(m.ReceiverID, push)
			if !reached && s.notify != nil {
				s.queueNotify(s.messageJob(m, m.ReceiverID))
			}
		}
	}
	if s.after != nil {
		s.queueAfterSend(m)
	}
}

// groupRun is new messages of one group, committed one after the other,
// to be pushed together to the same members (Server.deliverRun).
type groupRun struct {
	conv    string
	set     *memberSet
	msgs    []Message
	frames  []Frame
	refs    []*pushRef
	origins []*session
}

func (r *groupRun) empty() bool { return len(r.msgs) == 0 }

// fits reports whether m, to be pushed to set, may join the run of at
// most limit messages.
func (r *groupRun) fits(m Message, set *memberSet, limit int) bool {
	return r.empty() || (m.ConversationID == r.conv && set == r.set && len(r.msgs) < limit)
}

// runLimit bounds the messages pushed together: a run's frames are queued
// at once to each connection, so a run takes at most a quarter of a
// connection's queue (Config.SendQueue), where one message at a time gave
// its writer a chance to drain the queue in between; and at most 64, past
// which a larger write saves little.
func runLimit(sendQueue int) int {
	return max(1, min(64, sendQueue/4))
}

func (r *groupRun) add(m Message, op *commitOp, set *memberSet) {
	r.conv, r.set = m.ConversationID, set
	r.msgs = append(r.msgs, m)
	r.origins = append(r.origins, op.origin)
}

// runnable reports whether m, just stored for op, is a group message that
// may be pushed in a run, and to which members: the group's cached
// members, or those op saw if they are newer. A change to a group (whose
// notice may go to users no longer members) and a group nobody knows the
// members of are pushed alone, by deliver.
func (s *Server) runnable(m Message, op *commitOp) (*memberSet, bool) {
	gid, ok := groupOf(m.ConversationID)
	if !ok || op.group != nil || len(op.also) > 0 {
		return nil, false
	}
	set := s.groups.peek(gid)
	if set == nil || (op.members != nil && op.members.version > set.version) {
		set = op.members
	}
	return set, set != nil
}

// deliverRun pushes the messages of r to every live session of its members
// except the one each came from, as deliver does for one, and empties r.
func (s *Server) deliverRun(r *groupRun, held *heldWriters) {
	if r.empty() {
		return
	}
	defer func() {
		clear(r.msgs)
		clear(r.frames)
		clear(r.refs)
		clear(r.origins)
		r.msgs, r.frames, r.refs, r.origins = r.msgs[:0], r.frames[:0], r.refs[:0], r.origins[:0]
		r.set = nil
	}()
	kept := 0
	for i, m := range r.msgs {
		body := s.encodePush(&m)
		r.msgs[kept], r.origins[kept] = m, r.origins[i]
		kept++
		r.frames = append(r.frames, Frame{Command: imv1.CommandType_CMD_PUSH_MSG, Body: body, Shared: new(wire.Encodings)})
		var ref *pushRef
		if s.reads != nil {
			ref = &pushRef{serverID: m.ServerID, conv: m.ConversationID, seq: m.Seq}
		}
		r.refs = append(r.refs, ref)
	}
	msgs := r.msgs[:kept]
	if len(msgs) == 0 {
		return
	}
	var reached bool
	push := func(sess *session) {
		if sess.enqueueMessages(r.frames, r.refs, r.origins, held) {
			reached = true
		}
	}
	var offline []uint64 // bit i: r.set.ids[i] was not reached
	for i, u := range r.set.ids {
		reached = false
		s.hub.each(u, push)
		if !reached && s.notify != nil {
			if offline == nil {
				offline = make([]uint64, (len(r.set.ids)+63)/64)
			}
			offline[i/64] |= 1 << (i % 64)
		}
	}
	for _, m := range msgs {
		s.noteMentions(m, r.set)
		if s.notify != nil {
			s.notifyGroupMessage(m, r.set, notFromSender(offline, r.set, m.SenderID))
		}
		if s.after != nil {
			s.queueAfterSend(m)
		}
	}
}

// notFromSender returns offline without the bit of sender, whom a message
// is not announced to; offline itself if that bit is not set, nil if no
// bit is left.
func notFromSender(offline []uint64, set *memberSet, sender string) []uint64 {
	if offline == nil {
		return nil
	}
	if i := slices.Index(set.ids, sender); i >= 0 && offline[i/64]&(1<<(i%64)) != 0 {
		offline = slices.Clone(offline)
		offline[i/64] &^= 1 << (i % 64)
		for _, w := range offline {
			if w != 0 {
				return offline
			}
		}
		return nil
	}
	return offline
}

// toWire converts a stored message to its protocol form. Strings that are
// not valid UTF-8 (a Store gave back bytes the Server never wrote) have
// each bad byte sequence replaced by U+FFFD: protobuf refuses to encode
// them, and one such message would otherwise lose the whole response.
func toWire(m Message) *imv1.MessageInfo {
	ms := m.CreatedAt.UnixMilli()
	w := &imv1.MessageInfo{
		ServerMsgId:      validUTF8(m.ServerID),
		ClientMsgId:      validUTF8(m.ClientMsgID),
		ConversationId:   validUTF8(m.ConversationID),
		SenderId:         validUTF8(m.SenderID),
		ReceiverId:       validUTF8(m.ReceiverID),
		MessageType:      int32(m.Type),
		Content:          m.Content,
		SendTime:         m.SendTime,
		ServerTime:       ms,
		Seq:              m.Seq,
		CreateTime:       m.SendTime,
		Extra:            validUTF8(m.Extra),
		AttachedInfo:     validUTF8(m.AttachedInfo),
		ConversationType: int32(ConversationTypeOf(m.ConversationID)),
	}
	if gid, ok := groupOf(w.ConversationId); ok {
		w.GroupId = gid // the SDK files a message as group chat by it
	}
	if m.Revoked() {
		w.IsRevoked = true
		w.RevokedBy = validUTF8(m.RevokedBy)
		w.RevokedTime = m.RevokedAt.UnixMilli()
	}
	return w
}

// validUTF8 returns s, with each invalid UTF-8 sequence replaced by U+FFFD.
// Valid strings (all but a corrupt store's) are returned as they are,
// without a copy.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
