package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imv1"
)

// loadParams shape a direct run; the raw comparison uses the same.
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

// directConn is one member of a pair, sending to the other.
type directConn struct {
	*benchConn
	run    *directRun
	side   int
	ledger *ledger
	self   []byte
	peer   []byte
	conv   []byte
	sem    chan struct{} // a slot per unanswered send: the window
	wake   chan struct{} // capacity 1: MSG_ACKs are waiting
	limit  int           // most messages to send; 0 for no limit
	nsent  atomic.Int64

	amu  sync.Mutex
	acks [][]byte // server_msg_ids to acknowledge; guarded by amu

	// The writer's scratch, used by the writer goroutine only.
	batch   frameBatch
	content []byte
	idBuf   []byte
	ackBufs [][]byte
}

type directRun struct {
	p       loadParams
	stats   *runStats
	prefix  []byte // client_msg_id prefix of this run: "<runID>-"
	stop    chan struct{}
	conns   []*directConn
	ledgers []*ledger
}

// runDirect runs the direct scenario against t: conns/2 pairs of users
// message each other; every message is verified delivered exactly once, in
// order.
func runDirect(ctx context.Context, t target, users []benchUser, runID string, p loadParams) (*Report, error) {
	if p.conns < 2 || p.conns%2 != 0 {
		return nil, fmt.Errorf("direct needs an even number of connections, at least 2; got %d", p.conns)
	}
	if len(users) < p.conns {
		return nil, fmt.Errorf("direct needs %d users, got %d", p.conns, len(users))
	}
	r := &directRun{p: p, stats: newRunStats(), prefix: []byte(runID + "-"), stop: make(chan struct{})}
	names, tokens := make([]string, p.conns), make([]string, p.conns)
	for i := range names {
		names[i], tokens[i] = users[i].UserID, users[i].Token
	}
	p.logf("%s: connecting %d clients over %s", t.name, p.conns, t.dialer.transport)
	dialStart := time.Now()
	conns, err := dialAll(ctx, t.dialer, names, tokens, p.dialParallel, nil)
	if err != nil {
		return nil, err
	}
	p.logf("%s: %d clients connected in %s", t.name, p.conns, time.Since(dialStart).Round(time.Millisecond))

	for pair := 0; pair < p.conns/2; pair++ {
		l := new(ledger)
		r.ledgers = append(r.ledgers, l)
		a, b := conns[2*pair], conns[2*pair+1]
		conv := []byte(im.SingleConversationID(a.user, b.user))
		r.conns = append(r.conns,
			r.newConn(a, 0, l, b.user, conv),
			r.newConn(b, 1, l, a.user, conv))
	}

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
	// senders are the connections' send loops; workers the keep-alive and
	// progress goroutines.
	var senders sync.WaitGroup
	for i, d := range r.conns {
		senders.Add(1)
		go func() {
			defer senders.Done()
			if p.rate > 0 {
				d.openLoop(i)
			} else {
				d.closedLoop()
			}
		}()
	}

	var before, after usage
	if p.warmup > 0 {
		if !sleepCtx(ctx, p.warmup) {
			return r.abort(ctx, conns, &readers, &senders, &workers, progressDone)
		}
		r.stats.phase.Store(phaseMeasure)
	}
	before = sampleUsage(t.serverPID)
	if !sleepCtx(ctx, p.duration) {
		return r.abort(ctx, conns, &readers, &senders, &workers, progressDone)
	}
	after = sampleUsage(t.serverPID)
	measured := after.at.Sub(before.at)
	r.stats.phase.Store(phaseDrain)
	close(r.stop)
	// The senders first: one may be between its last check of stop and
	// its write, and a send recorded after the drain below had found
	// nothing outstanding would be closed on before its answer came.
	senders.Wait()

	// Wait for the answers and deliveries still on their way, within the
	// drain limit; whatever is missing then is reported.
	deadline := time.Now().Add(p.drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if unacked, undelivered := r.outstanding(); unacked+undelivered == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(progressDone)
	workers.Wait()
	closeAll(conns, &readers)

	rep := r.report(t, measured, before, after)
	return rep, ctx.Err()
}

// abort ends a run cut short by ctx.
func (r *directRun) abort(ctx context.Context, conns []*benchConn, readers, senders, workers *sync.WaitGroup, progressDone chan struct{}) (*Report, error) {
	close(r.stop)
	close(progressDone)
	senders.Wait()
	workers.Wait()
	closeAll(conns, readers)
	return nil, ctx.Err()
}

func (r *directRun) newConn(c *benchConn, side int, l *ledger, peer string, conv []byte) *directConn {
	content := make([]byte, max(r.p.size, 8))
	for i := 8; i < len(content); i++ {
		content[i] = 'a' + byte(i%26)
	}
	return &directConn{
		benchConn: c,
		run:       r,
		side:      side,
		ledger:    l,
		self:      []byte(c.user),
		peer:      []byte(peer),
		conv:      conv,
		sem:       make(chan struct{}, r.p.window),
		wake:      make(chan struct{}, 1),
		content:   content,
	}
}

// inFlight is the number of sends waiting for their answer.
func (r *directRun) inFlight() int64 {
	var n int64
	for _, d := range r.conns {
		n += int64(len(d.sem))
	}
	return n
}

func (r *directRun) outstanding() (unacked, undelivered int) {
	for _, l := range r.ledgers {
		a, d := l.outstanding()
		unacked += a
		undelivered += d
	}
	return unacked, undelivered
}

// sentCount is how many messages the connection has sent.
func (d *directConn) sentCount() int { return int(d.nsent.Load()) }

// closedLoop keeps the window full: a new send for every answer.
func (d *directConn) closedLoop() {
	for {
		if d.limit > 0 && d.sentCount() >= d.limit {
			// Done sending; only MSG_ACKs remain.
			select {
			case <-d.run.stop:
				return
			case <-d.done:
				return
			case <-d.wake:
				if !d.flush(0, 0, 0) {
					return
				}
			}
			continue
		}
		n := 0
		select {
		case <-d.run.stop:
			return
		case <-d.done:
			return
		case d.sem <- struct{}{}:
			n = 1
		case <-d.wake:
		}
		for n < cap(d.sem) && d.tryAcquire() {
			n++
		}
		if d.limit > 0 && n > d.limit-d.sentCount() {
			give := n - (d.limit - d.sentCount())
			for range give {
				<-d.sem
			}
			n -= give
		}
		now := d.run.stats.now()
		if !d.flush(n, now, 0) {
			return
		}
	}
}

// openLoop sends at this connection's share of the total rate, on a fixed
// schedule whatever the answers do. Latency counts from the scheduled time,
// so a server that falls behind shows it in latency instead of hiding it
// (no coordinated omission). The window still caps unanswered sends.
func (d *directConn) openLoop(i int) {
	interval := int64(float64(d.run.p.conns) / d.run.p.rate * float64(time.Second))
	interval = max(interval, 1)
	// Spread the connections' schedules over one interval.
	next := d.run.stats.now() + interval*int64(i)/int64(d.run.p.conns)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := d.run.stats.now()
		if next > now {
			timer.Reset(time.Duration(next - now))
			select {
			case <-d.run.stop:
				return
			case <-d.done:
				return
			case <-d.wake:
				if !d.flush(0, 0, 0) {
					return
				}
			case <-timer.C:
			}
			continue
		}
		select {
		case <-d.run.stop:
			return
		case <-d.done:
			return
		case <-d.wake:
			if !d.flush(0, 0, 0) {
				return
			}
			continue
		case d.sem <- struct{}{}:
		}
		n := 1
		// Everything else already due goes in the same write.
		for n < cap(d.sem) && next+int64(n)*interval <= now && d.tryAcquire() {
			n++
		}
		if !d.flush(n, next, interval) {
			return
		}
		next += int64(n) * interval
	}
}

// tryAcquire takes a window slot if one is free.
func (d *directConn) tryAcquire() bool {
	select {
	case d.sem <- struct{}{}:
		return true
	default:
		return false
	}
}

// flush writes the waiting MSG_ACKs and n new messages, the k-th meant for
// time at+k*step, in one write. It reports false when the connection is
// broken.
func (d *directConn) flush(n int, at, step int64) bool {
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
		num := d.ledger.sent(d.side, sentAt)
		d.idBuf = strconv.AppendInt(append(d.idBuf[:0], d.run.prefix...), int64(num), 10)
		binary.BigEndian.PutUint64(d.content, uint64(sentAt))
		from := b.mark()
		b.buf = appendWrapped(b.buf, &outMsg{
			clientMsgID: d.idBuf,
			convID:      d.conv,
			senderID:    d.self,
			receiverID:  d.peer,
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
func (d *directConn) handle(f im.Frame) {
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
			d.ledger.foreign()
			return
		}
		if rsp.code != imv1.ErrorCode_ERR_SUCCESS {
			st.errs.add(rsp.code.String())
			if d.ledger.refuse(d.side, n) {
				<-d.sem
			}
			return
		}
		if sentAt, ok := d.ledger.ack(d.side, n, rsp.seq); ok {
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
				d.ledger.foreign()
				return nil
			}
			d.ledger.delivered(d.side, n, m.seq)
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

// report assembles the run's results.
func (r *directRun) report(t target, measured time.Duration, before, after usage) *Report {
	var v verdict
	for _, l := range r.ledgers {
		v.add(l.verify())
	}
	st := r.stats
	errs, byKind := st.errs.snapshot()
	secs := measured.Seconds()
	rep := &Report{
		Scenario:        "direct",
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
		verdict:         v,
	}
	rep.setLatency(&st.ackLat, &st.pushLat)
	rep.setUsage(before, after)
	if v.Unacked > 0 {
		if rep.ErrorKinds == nil {
			rep.ErrorKinds = map[string]int64{}
		}
		rep.ErrorKinds["no answer"] += v.Unacked
	}
	rep.setVerdict(v)
	return rep
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
