package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/centrifugal/protocol"
	"github.com/coder/websocket"
)

// The centrifuge clients: the direct and group loads of imbench, spoken in
// centrifuge's protobuf protocol (varint-delimited Command and Reply
// messages, several to a WebSocket message) to a cfServer. A message is a
// publication whose data is the size of imbench's messages and starts
// with the time it was meant to be sent and its number (8 bytes each,
// big-endian); the number is the client's own count, since centrifuge
// gives a publication no seq (only an offset, with history on). A
// publish's reply carries nothing, so acknowledgements are matched by
// command id, and a subscriber acknowledges nothing.

// cfSubprotocol selects the protobuf protocol on centrifuge's WebSocket
// endpoint.
const cfSubprotocol = "centrifuge-protobuf"

// Command ids: the connect and subscribe commands, then one per
// publication, cfIDBase plus the message's number.
const (
	cfConnectID   = 1
	cfSubscribeID = 2
	cfBarrierID   = 3
	cfIDBase      = 16
)

// cfPayloadMin is the least data a publication of the run carries: the
// send time and the message number.
const cfPayloadMin = 16

// cfClient is one centrifuge connection: a reader goroutine and a write
// path under a mutex, as benchConn.
type cfClient struct {
	user string
	ws   *websocket.Conn
	pong bool // the server wants an answer to its pings

	wmu sync.Mutex // serializes writes: the reader answers pings

	closing atomic.Bool
	done    chan struct{} // closed when the reader has returned
	rbuf    []byte        // the reader's
}

// dialCentrifuge connects user to the server at url, with the user id as
// its connect token, and subscribes it to channel.
func dialCentrifuge(ctx context.Context, hc *http.Client, url, user, channel string) (*cfClient, error) {
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc, Subprotocols: []string{cfSubprotocol}})
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	if ws.Subprotocol() != cfSubprotocol {
		ws.CloseNow()
		return nil, fmt.Errorf("the server chose subprotocol %q, not %q", ws.Subprotocol(), cfSubprotocol)
	}
	ws.SetReadLimit(1 << 24)
	stop := context.AfterFunc(ctx, func() { ws.CloseNow() })
	defer stop()
	c := &cfClient{user: user, ws: ws, done: make(chan struct{})}
	rep, err := c.call(ctx, &protocol.Command{Id: cfConnectID, Connect: &protocol.ConnectRequest{Token: user, Name: "imbench"}})
	if err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("connect: %w", err)
	}
	c.pong = rep.Connect.GetPong()
	if _, err := c.call(ctx, &protocol.Command{Id: cfSubscribeID, Subscribe: &protocol.SubscribeRequest{Channel: channel}}); err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("subscribe %s: %w", channel, err)
	}
	// centrifuge writes the subscribe reply before it marks the
	// subscription live, and drops publications without offset that
	// reach it in between: a publication sent the moment the reply is
	// read can be lost. It handles a connection's commands one after
	// another, so the answer to a next command (an RPC that does
	// nothing) comes once the subscription is live.
	if _, err := c.call(ctx, &protocol.Command{Id: cfBarrierID, Rpc: &protocol.RPCRequest{Method: cfBarrierMethod}}); err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("after subscribe: %w", err)
	}
	return c, nil
}

// call sends cmd and waits for its reply, before the reader runs.
func (c *cfClient) call(ctx context.Context, cmd *protocol.Command) (*protocol.Reply, error) {
	if err := c.write(appendCommand(nil, cmd)); err != nil {
		return nil, err
	}
	for {
		_, b, err := c.ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		var found *protocol.Reply
		err = eachReply(b, func(r *protocol.Reply) error {
			if r.Id == cmd.Id {
				found = r
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if found == nil {
			continue
		}
		if found.Error != nil {
			return nil, fmt.Errorf("error %d: %s", found.Error.Code, found.Error.Message)
		}
		return found, nil
	}
}

// appendCommand appends cmd to b, prefixed with its length.
func appendCommand(b []byte, cmd *protocol.Command) []byte {
	size := cmd.SizeCF()
	b = binary.AppendUvarint(b, uint64(size))
	at := len(b)
	b = append(b, make([]byte, size)...)
	_, _ = cmd.MarshalToSizedBufferCF(b[at:])
	return b
}

// eachReply calls fn with each reply of a WebSocket message.
func eachReply(b []byte, fn func(*protocol.Reply) error) error {
	for len(b) > 0 {
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return errors.New("centrifuge: malformed reply length")
		}
		var r protocol.Reply
		if err := r.UnmarshalCF(b[n : n+int(size)]); err != nil {
			return fmt.Errorf("centrifuge: %w", err)
		}
		b = b[n+int(size):]
		if err := fn(&r); err != nil {
			return err
		}
	}
	return nil
}

// write sends one WebSocket message.
func (c *cfClient) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.Write(context.Background(), websocket.MessageBinary, b)
}

// recv returns the next WebSocket message, in a buffer the next recv
// reuses.
func (c *cfClient) recv() ([]byte, error) {
	_, r, err := c.ws.Reader(context.Background())
	if err != nil {
		return nil, err
	}
	b := c.rbuf[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if cap(b) <= 256<<10 {
		c.rbuf = b
	}
	return b, nil
}

func (c *cfClient) close() {
	c.closing.Store(true)
	c.ws.CloseNow()
}

// cfPeer is where a run finds the centrifuge peer: its URL, and the
// process it runs in when that is not this one (0: in this process, whose
// CPU time is then the client's and the peer's together).
type cfPeer struct {
	url string
	pid int
}

// cfRun is one load run against a cfServer. The books, counters and
// report are a loadRun's; the connections are centrifuge's.
type cfRun struct {
	*loadRun
	peer  cfPeer
	conns []*cfConn
	// direct: a delivery with no offset takes its number plus one as its
	// seq, each side of a pair counting its own messages.
	direct bool
}

// cfConn is one connection of a cfRun: it publishes into its channel
// (unless it only receives) and records everything in its tally.
type cfConn struct {
	*cfClient
	run     *cfRun
	tally   tally
	channel string // where it publishes
	slot    int    // as loadConn's; -1 receives only
	sem     chan struct{}
	pace    pacer
	// own, in a group, tells the connection's own messages: centrifuge
	// delivers a publication to its publisher too, if subscribed, which
	// imserver does not and the book does not expect.
	own func(n int) bool

	// The sender's scratch.
	cmd     protocol.Command
	pub     protocol.PublishRequest
	content []byte
	batch   []byte
}

func (r *cfRun) newConn(c *cfClient, t tally, slot int, channel string) *cfConn {
	d := &cfConn{cfClient: c, run: r, tally: t, channel: channel, slot: slot, sem: make(chan struct{}, r.p.window)}
	d.pace = pacer{stop: r.stop, done: c.done, now: r.stats.now, sem: d.sem, flush: d.flush}
	d.content = make([]byte, max(r.p.size, cfPayloadMin))
	for i := cfPayloadMin; i < len(d.content); i++ {
		d.content[i] = 'a' + byte(i%26)
	}
	d.pub.Channel = channel
	d.cmd.Publish = &d.pub
	return d
}

// dialCentrifugeAll connects users[i] subscribed to channels[i], parallel
// at a time. On an error it closes what it opened.
func dialCentrifugeAll(ctx context.Context, url string, users, channels []string, parallel int) ([]*cfClient, error) {
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	defer hc.CloseIdleConnections()
	return dialEach(ctx, len(users), parallel, nil, func(ctx context.Context, i int) (*cfClient, error) {
		c, err := dialCentrifuge(ctx, hc, url, users[i], channels[i])
		if err != nil {
			return nil, fmt.Errorf("centrifuge connection %d (%s): %w", i, users[i], err)
		}
		return c, nil
	})
}

// cfTarget names the peer in reports; it is always WebSocket.
func cfTarget(peer cfPeer) target {
	return target{name: "centrifuge", dialer: &dialer{transport: transportWS}, serverPID: peer.pid}
}

// runCentrifugeDirect is runDirect against a cfServer: conns/2 pairs,
// each member subscribed to its personal channel and publishing into its
// partner's.
func runCentrifugeDirect(ctx context.Context, peer cfPeer, runID string, p loadParams) (*Report, error) {
	if p.conns < 2 || p.conns%2 != 0 {
		return nil, fmt.Errorf("direct needs an even number of connections, at least 2; got %d", p.conns)
	}
	users, channels := make([]string, p.conns), make([]string, p.conns)
	for i := range users {
		users[i] = fmt.Sprintf("bench-%s-%d", runID, i)
		channels[i] = cfUserPrefix + users[i]
	}
	p.logf("centrifuge: connecting %d clients over websocket", p.conns)
	clients, err := dialCentrifugeAll(ctx, peer.url, users, channels, p.dialParallel)
	if err != nil {
		return nil, err
	}
	r := &cfRun{loadRun: newLoadRun(p, runID), peer: peer, direct: true}
	for pair := 0; pair < p.conns/2; pair++ {
		l := &ledger{perSide: true}
		r.books = append(r.books, l)
		a, b := 2*pair, 2*pair+1
		r.conns = append(r.conns,
			r.newConn(clients[a], pairEnd{l, 0}, a, channels[b]),
			r.newConn(clients[b], pairEnd{l, 1}, b, channels[a]))
	}
	r.nsend = len(r.conns)
	m, err := r.drive(ctx)
	if err != nil {
		return nil, err
	}
	return r.report("direct", cfTarget(peer), m, r.verdict()), ctx.Err()
}

// runCentrifugeGroup is runGroup against a cfServer: a channel per group,
// which every member subscribes to and the first s.senders publish into.
func runCentrifugeGroup(ctx context.Context, peer cfPeer, s groupShape, runID string, p loadParams) (*Report, error) {
	if s.members < 2 || s.senders < 1 || s.senders > s.members {
		return nil, fmt.Errorf("group: bad layout %+v", s)
	}
	p.conns = s.conns()
	users, channels := make([]string, p.conns), make([]string, p.conns)
	for i := range users {
		users[i] = fmt.Sprintf("bench-%s-%d", runID, i)
		channels[i] = cfGroupPrefix + runID + "-" + strconv.Itoa(i/s.members)
	}
	p.logf("centrifuge: connecting %d members of %d groups over websocket", p.conns, s.groups)
	clients, err := dialCentrifugeAll(ctx, peer.url, users, channels, p.dialParallel)
	if err != nil {
		return nil, err
	}
	r := &cfRun{loadRun: newLoadRun(p, runID), peer: peer}
	for gi := range s.groups {
		gb := newGroupBook(s.members)
		r.books = append(r.books, gb)
		for j := range s.members {
			slot := -1
			if j < s.senders {
				slot = gi*s.senders + j
			}
			i := gi*s.members + j
			d := r.newConn(clients[i], gb.member(j), slot, channels[i])
			if slot >= 0 {
				d.own = func(n int) bool {
					g := gb.msgs.get(n)
					return g != nil && int(g.sender) == j
				}
			}
			r.conns = append(r.conns, d)
		}
	}
	r.nsend = s.groups * s.senders
	m, err := r.drive(ctx)
	if err != nil {
		return nil, err
	}
	rep := r.report("group", cfTarget(peer), m, r.verdict())
	rep.Groups, rep.Members, rep.Senders = s.groups, s.members, s.senders
	return rep, ctx.Err()
}

// drive runs the load: warmup, measurement and drain, as loadRun.drive.
// It returns an error only when ctx ended the run early; the connections
// are closed when it returns.
func (r *cfRun) drive(ctx context.Context) (measurement, error) {
	p := r.p
	var readers, workers, loops sync.WaitGroup
	for _, d := range r.conns {
		readers.Add(1)
		go func() {
			defer readers.Done()
			d.read()
		}()
	}
	progressDone := make(chan struct{})
	rl := &rateLine{s: r.stats}
	progress(&workers, progressDone, p.progress, p.every, func(e time.Duration) string {
		return "centrifuge " + rl.line(e, r.inFlight)
	})
	closeAll := func() {
		for _, d := range r.conns {
			d.close()
		}
		readers.Wait()
	}
	r.stats.phase.Store(phaseWarmup)
	if p.warmup <= 0 {
		r.stats.phase.Store(phaseMeasure)
	}
	for _, d := range r.conns {
		if d.slot < 0 {
			continue
		}
		loops.Add(1)
		go func() {
			defer loops.Done()
			if p.rate > 0 {
				d.pace.open(p.rate, d.run.nsend, d.slot)
			} else {
				d.pace.closed()
			}
		}()
	}
	abort := func() (measurement, error) {
		close(r.stop)
		close(progressDone)
		loops.Wait()
		workers.Wait()
		closeAll()
		return measurement{}, ctx.Err()
	}
	if p.warmup > 0 {
		if !sleepCtx(ctx, p.warmup) {
			return abort()
		}
		r.stats.phase.Store(phaseMeasure)
	}
	var m measurement
	m.before = sampleUsage(r.peer.pid)
	if !sleepCtx(ctx, p.duration) {
		return abort()
	}
	m.after = sampleUsage(r.peer.pid)
	m.elapsed = m.after.at.Sub(m.before.at)
	r.stats.phase.Store(phaseDrain)
	close(r.stop)
	loops.Wait()
	deadline := time.Now().Add(p.drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if unacked, undelivered := r.pending(); unacked+undelivered == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(progressDone)
	workers.Wait()
	closeAll()
	return m, nil
}

// inFlight is the number of publications waiting for their reply.
func (r *cfRun) inFlight() int64 {
	var n int64
	for _, d := range r.conns {
		n += int64(len(d.sem))
	}
	return n
}

// flush publishes n messages, the k-th meant for time at+k*step, in one
// WebSocket message. It reports false when the connection is broken.
func (d *cfConn) flush(n int, at, step int64) bool {
	b := d.batch[:0]
	for k := range n {
		sentAt := at + int64(k)*step
		num := d.tally.sent(sentAt)
		binary.BigEndian.PutUint64(d.content[0:8], uint64(sentAt))
		binary.BigEndian.PutUint64(d.content[8:16], uint64(num))
		d.pub.Data = d.content
		d.cmd.Id = uint32(cfIDBase + num)
		b = appendCommand(b, &d.cmd)
		d.run.stats.countSent()
	}
	d.batch = b
	if err := d.write(b); err != nil {
		if !d.closing.Load() {
			d.run.stats.errs.add("write failed")
			d.close()
		}
		return false
	}
	return true
}

// read is the connection's reader: replies, publications and pings,
// until the connection ends.
func (d *cfConn) read() {
	defer close(d.done)
	st := d.run.stats
	for {
		b, err := d.recv()
		if err != nil {
			d.ws.CloseNow()
			if !d.closing.Load() {
				// centrifuge says why in the close frame.
				var ce websocket.CloseError
				if errors.As(err, &ce) {
					st.errs.add(fmt.Sprintf("connection lost: %d %s", ce.Code, ce.Reason))
				} else {
					st.errs.add("connection lost")
				}
			}
			return
		}
		if err := eachReply(b, d.handle); err != nil {
			st.errs.add("malformed reply")
		}
	}
}

// handle is the reader's handler for one reply.
func (d *cfConn) handle(r *protocol.Reply) error {
	st := d.run.stats
	switch {
	case r.Id == 0 && r.Push == nil:
		// A ping: the protocol's empty reply, answered by an empty
		// command when the server asked for pongs.
		if d.pong {
			if err := d.write([]byte{0}); err != nil && !d.closing.Load() {
				st.errs.add("write failed")
			}
		}
	case r.Id == 0:
		switch {
		case r.Push.Pub != nil:
			d.delivered(r.Push.Pub)
		case r.Push.Disconnect != nil:
			st.errs.add("disconnected: " + r.Push.Disconnect.Reason)
		}
	case r.Id >= cfIDBase:
		n := int(r.Id - cfIDBase)
		if r.Error != nil {
			st.errs.add(fmt.Sprintf("centrifuge error %d %s", r.Error.Code, r.Error.Message))
			if d.tally.refused(n) {
				<-d.sem
			}
			return nil
		}
		if sentAt, ok := d.tally.acked(n, 0); ok {
			st.countAck(sentAt)
			<-d.sem
		}
	default:
		st.errs.add("unexpected reply " + strconv.Itoa(int(r.Id)))
	}
	return nil
}

// delivered records a publication of the run's channel.
func (d *cfConn) delivered(pub *protocol.Publication) {
	if len(pub.Data) < cfPayloadMin {
		d.tally.foreign()
		return
	}
	sentAt := int64(binary.BigEndian.Uint64(pub.Data[0:8]))
	n := int(binary.BigEndian.Uint64(pub.Data[8:16]))
	if d.own != nil && d.own(n) {
		return
	}
	seq := int64(pub.Offset)
	if seq == 0 && d.run.direct {
		seq = int64(n) + 1
	}
	d.tally.delivered(n, seq)
	d.run.stats.countDelivery(sentAt)
}
