package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// loadParams shape a run that sends messages (direct, group, sync); the raw
// comparison uses the same.
type loadParams struct {
	conns, window, size int
	rate                float64 // total msg/s; 0 is closed-loop
	warmup, duration    time.Duration
	drain               time.Duration // longest wait for answers after sending stops
	msgAck              bool          // answer each delivery with MSG_ACK, as the SDK does
	dialParallel        int
	progress            io.Writer // nil: no progress lines
	every               time.Duration
	logf                func(format string, args ...any)
}

// target is the server a run loads.
type target struct {
	name      string // "imserver" or "raw"
	dialer    *dialer
	serverPID int // 0: unknown (the raw server is this process)
}

// tally records what happens to one connection's messages and what is
// delivered to it: one side of a direct pair's ledger, or one member of a
// group's book. sent is called by the connection's writer, the others by
// its reader.
type tally interface {
	// sent records a message about to be sent, meant for time at, and
	// returns its number, which goes into its client_msg_id.
	sent(at int64) int
	// acked records the acknowledgement of message n with seq. It returns
	// when the message was meant to be sent, and false if n is not a
	// message of this connection waiting for its answer.
	acked(n int, seq int64) (sentAt int64, ok bool)
	// refused records that message n was answered with an error; false as
	// for acked.
	refused(n int) bool
	// delivered records a push of message n of this run's conversation,
	// with seq.
	delivered(n int, seq int64)
	// foreign records an answer or delivery that belongs to no message of
	// this run.
	foreign()
}

// loadRun is one run of connections sending to a conversation each and
// verifying what they get back.
type loadRun struct {
	p      loadParams
	stats  *runStats
	prefix []byte // client_msg_id prefix of this run: "<runID>-"
	stop   chan struct{}
	conns  []*loadConn
	// nsend is how many of conns send; the open-loop rate is shared
	// among them.
	nsend int
	// books verify the run's conversations: a ledger per direct pair, a
	// groupBook per group.
	books []book
}

// book verifies the delivery of one conversation's messages.
type book interface {
	// outstanding returns how many messages still wait for their answer,
	// and how many deliveries are still owed for acknowledged ones.
	outstanding() (unacked, undelivered int)
	verify() verdict
}

// pending sums outstanding over the run's books.
func (r *loadRun) pending() (unacked, undelivered int) {
	for _, b := range r.books {
		a, d := b.outstanding()
		unacked += a
		undelivered += d
	}
	return unacked, undelivered
}

// verdict sums the books' verdicts.
func (r *loadRun) verdict() verdict {
	var v verdict
	for _, b := range r.books {
		v.add(b.verify())
	}
	return v
}

func newLoadRun(p loadParams, runID string) *loadRun {
	return &loadRun{p: p, stats: newRunStats(), prefix: []byte(runID + "-"), stop: make(chan struct{})}
}

// loadConn is one client connection of a load run: it sends messages to
// its conversation (unless it only receives), answers deliveries with
// MSG_ACK, and records everything in its tally.
type loadConn struct {
	*benchConn
	run   *loadRun
	tally tally
	self  []byte
	peer  []byte // the receiver; nil in a group
	conv  []byte
	group []byte // the group id, in a group conversation
	// slot numbers the run's sending connections from 0, to spread their
	// open-loop schedules; -1 for a connection that only receives.
	slot  int
	sem   chan struct{} // a slot per unanswered send: the window
	wake  chan struct{} // capacity 1: MSG_ACKs are waiting
	limit int           // most messages to send; 0 for no limit
	nsent atomic.Int64
	pace  pacer

	amu  sync.Mutex
	acks [][]byte // server_msg_ids to acknowledge; guarded by amu

	// The writer's scratch, used by the writer goroutine only.
	batch   frameBatch
	content []byte
	idBuf   []byte
	ackBufs [][]byte
}

// newConn makes c a connection of the run that sends to conv (as peer's
// partner, or in group) when slot >= 0.
func (r *loadRun) newConn(c *benchConn, t tally, slot int, conv, peer, group []byte) *loadConn {
	content := make([]byte, max(r.p.size, 8))
	for i := 8; i < len(content); i++ {
		content[i] = 'a' + byte(i%26)
	}
	d := &loadConn{
		benchConn: c,
		run:       r,
		tally:     t,
		self:      []byte(c.user),
		peer:      peer,
		conv:      conv,
		group:     group,
		slot:      slot,
		sem:       make(chan struct{}, r.p.window),
		wake:      make(chan struct{}, 1),
		content:   content,
	}
	d.pace = pacer{
		stop: r.stop, done: c.done, now: r.stats.now, sem: d.sem, wake: d.wake, flush: d.flush,
		left: func() int {
			if d.limit == 0 {
				return cap(d.sem) // no limit: never fewer than a window
			}
			return d.limit - d.sentCount()
		},
	}
	return d
}

// measurement is the window a run measured and the resource use around
// it.
type measurement struct {
	elapsed       time.Duration
	before, after usage
}

// drive runs the load on conns, which r.conns wrap: warmup, measurement
// and drain. It returns an error only when ctx ended the run early; the
// connections are closed when it returns.
func (r *loadRun) drive(ctx context.Context, t target, conns []*benchConn) (measurement, error) {
	p := r.p
	var readers, workers sync.WaitGroup
	for _, d := range r.conns {
		d.serve(&readers, d.handle, func(err error) { r.stats.errs.add("connection lost") })
	}
	keepAlive(&workers, r.stop, conns, keepAliveEvery)
	progressDone := make(chan struct{})
	rl := &rateLine{s: r.stats}
	progress(&workers, progressDone, p.progress, p.every, func(e time.Duration) string {
		return t.name + " " + rl.line(e, r.inFlight)
	})

	r.stats.phase.Store(phaseWarmup)
	if p.warmup <= 0 {
		r.stats.phase.Store(phaseMeasure)
	}
	// loops are the connections' send (or answer-only) loops; workers the
	// keep-alive and progress goroutines.
	var loops sync.WaitGroup
	for _, d := range r.conns {
		loops.Add(1)
		go func() {
			defer loops.Done()
			switch {
			case d.slot < 0:
				d.pace.idle()
			case p.rate > 0:
				d.pace.open(p.rate, d.run.nsend, d.slot)
			default:
				d.pace.closed()
			}
		}()
	}
	abort := func() (measurement, error) {
		close(r.stop)
		close(progressDone)
		loops.Wait()
		workers.Wait()
		closeAll(conns, &readers)
		return measurement{}, ctx.Err()
	}

	if p.warmup > 0 {
		if !sleepCtx(ctx, p.warmup) {
			return abort()
		}
		r.stats.phase.Store(phaseMeasure)
	}
	var m measurement
	m.before = sampleUsage(t.serverPID)
	if !sleepCtx(ctx, p.duration) {
		return abort()
	}
	m.after = sampleUsage(t.serverPID)
	m.elapsed = m.after.at.Sub(m.before.at)
	r.stats.phase.Store(phaseDrain)
	close(r.stop)
	// The senders first: one may be between its last check of stop and
	// its write, and a send recorded after the drain below had found
	// nothing outstanding would be closed on before its answer came.
	loops.Wait()

	// Wait for the answers and deliveries still on their way, within the
	// drain limit; whatever is missing then is reported.
	deadline := time.Now().Add(p.drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if unacked, undelivered := r.pending(); unacked+undelivered == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(progressDone)
	workers.Wait()
	closeAll(conns, &readers)
	return m, nil
}

// inFlight is the number of sends waiting for their answer.
func (r *loadRun) inFlight() int64 {
	var n int64
	for _, d := range r.conns {
		n += int64(len(d.sem))
	}
	return n
}

// report assembles the results every scenario that sends shares, from
// the verdict on its messages.
func (r *loadRun) report(scenario string, t target, m measurement, v verdict) *Report {
	st := r.stats
	errs, byKind := st.errs.snapshot()
	secs := m.elapsed.Seconds()
	rep := &Report{
		Scenario:        scenario,
		Target:          t.name,
		Transport:       t.dialer.transport,
		Conns:           r.p.conns,
		Window:          r.p.window,
		Rate:            r.p.rate,
		Size:            max(r.p.size, 8),
		DurationSec:     secs,
		Sent:            st.wSent.Load(),
		Acked:           st.wAcked.Load(),
		Delivered:       st.wDelivered.Load(),
		AckedPerSec:     float64(st.wAcked.Load()) / secs,
		DeliveredPerSec: float64(st.wDelivered.Load()) / secs,
		TotalSent:       v.Sent,
		TotalAcked:      v.Acked,
		Errors:          errs + v.Unacked,
		ErrorKinds:      byKind,
	}
	rep.setLatency(&st.ackLat, &st.pushLat)
	rep.setUsage(m.before, m.after)
	if v.Unacked > 0 {
		if rep.ErrorKinds == nil {
			rep.ErrorKinds = map[string]int64{}
		}
		rep.ErrorKinds["no answer"] += v.Unacked
	}
	rep.setVerdict(v)
	return rep
}

// sentCount is how many messages the connection has sent.
func (d *loadConn) sentCount() int { return int(d.nsent.Load()) }

// flush writes the waiting MSG_ACKs and n new messages, the k-th meant for
// time at+k*step, in one write. It reports false when the connection is
// broken.
func (d *loadConn) flush(n int, at, step int64) bool {
	d.amu.Lock()
	d.ackBufs, d.acks = d.acks, d.ackBufs[:0]
	d.amu.Unlock()
	if n == 0 && len(d.ackBufs) == 0 {
		return true
	}
	b := &d.batch
	b.reset()
	for _, id := range d.ackBufs {
		from := b.mark()
		b.buf = appendMsgAck(b.buf, id)
		b.done(imv1.CommandType_CMD_MSG_ACK, 0, from)
	}
	wall := time.Now().UnixMilli()
	for k := range n {
		sentAt := at + int64(k)*step
		num := d.tally.sent(sentAt)
		d.idBuf = strconv.AppendInt(append(d.idBuf[:0], d.run.prefix...), int64(num), 10)
		binary.BigEndian.PutUint64(d.content, uint64(sentAt))
		from := b.mark()
		b.buf = appendWrapped(b.buf, &outMsg{
			clientMsgID: d.idBuf,
			convID:      d.conv,
			senderID:    d.self,
			receiverID:  d.peer,
			groupID:     d.group,
			content:     d.content,
			sendTime:    wall,
		})
		b.done(imv1.CommandType_CMD_SEND_MSG_REQ, 0, from)
		d.run.stats.countSent()
		d.nsent.Add(1)
	}
	if err := d.write(b.list()...); err != nil {
		if !d.closing.Load() {
			d.run.stats.errs.add("write failed")
			d.close()
		}
		return false
	}
	return true
}

// handle is the reader's handler for every frame of the connection.
func (d *loadConn) handle(f wire.Frame) {
	st := d.run.stats
	switch f.Command {
	case imv1.CommandType_CMD_SEND_MSG_RSP:
		var rsp sendRsp
		if err := parseSendRsp(f.Body, &rsp); err != nil {
			st.errs.add("malformed SEND_MSG_RSP")
			return
		}
		n, ok := parseMsgNum(rsp.clientMsgID, d.run.prefix)
		if !ok {
			d.tally.foreign()
			return
		}
		if rsp.code != imv1.ErrorCode_ERR_SUCCESS {
			st.errs.add(rsp.code.String())
			if d.tally.refused(n) {
				<-d.sem
			}
			return
		}
		if sentAt, ok := d.tally.acked(n, rsp.seq); ok {
			st.countAck(sentAt)
			<-d.sem
		}
	case imv1.CommandType_CMD_PUSH_MSG, imv1.CommandType_CMD_BATCH_MSG:
		err := eachMessage(f.Command, f.Body, func(info []byte) error {
			var m inMsg
			if err := parseMessageInfo(info, &m); err != nil {
				return err
			}
			n, ok := parseMsgNum(m.clientMsgID, d.run.prefix)
			if !ok || !bytes.Equal(m.convID, d.conv) || len(m.content) < 8 {
				d.tally.foreign()
				return nil
			}
			if !d.labelled(&m) {
				st.errs.add("push with wrong conversation_type or group_id")
			}
			d.tally.delivered(n, m.seq)
			st.countDelivery(int64(binary.BigEndian.Uint64(m.content)))
			if d.run.p.msgAck && len(m.serverMsgID) > 0 {
				d.amu.Lock()
				d.acks = append(d.acks, bytes.Clone(m.serverMsgID))
				d.amu.Unlock()
				select {
				case d.wake <- struct{}{}:
				default:
				}
			}
			return nil
		})
		if err != nil {
			st.errs.add("malformed " + f.Command.String())
		}
	case imv1.CommandType_CMD_HEARTBEAT_RSP, imv1.CommandType_CMD_SYNC_FINISHED:
	case imv1.CommandType_CMD_KICK_OUT:
		st.errs.add("kicked out")
	case imv1.CommandType_CMD_ERROR_RSP:
		st.errs.add("ERROR_RSP " + errorCodeOf(f.Body).String())
	default:
		if f.Sequence != 0 {
			st.errs.add("unexpected " + f.Command.String())
		}
	}
}

// labelled reports whether a push of the connection's conversation says
// what kind of conversation it is, as the SDK files messages by it:
// conversation_type 1 for one-to-one, 2 with the group_id for a group.
func (d *loadConn) labelled(m *inMsg) bool {
	if d.group != nil {
		return m.convType == convTypeGroup && bytes.Equal(m.groupID, d.group)
	}
	return m.convType == convTypeSingle && len(m.groupID) == 0
}

// parseMsgNum returns the message number in a client_msg_id of this run
// ("<prefix><n>").
func parseMsgNum(id, prefix []byte) (int, bool) {
	if !bytes.HasPrefix(id, prefix) || len(id) == len(prefix) || len(id)-len(prefix) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range id[len(prefix):] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// sleepCtx sleeps for d and reports whether ctx is still alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
