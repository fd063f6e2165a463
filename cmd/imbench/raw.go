package main

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// rawServer is the machine's limit probe: the least any server of this
// protocol must do for the direct, group and connect scenarios, over the
// same framing and sockets. It answers AUTH_REQ without checking anything,
// acknowledges each send with the next seq of its conversation and pushes
// it to the receiver's connection; no storage, no validation, no queues.
// Replies are written by the connection's reader, batched while more
// requests are already buffered. imserver's figures divided by its
// figures, measured in the same run on the same machine, say how much of
// the machine's messaging capacity imserver gets.
//
// For groups it is the fan-out probe. Membership is told to it beforehand
// (setGroup), as a Go call; a send to a group's conversation is given the
// group's next seq and pushed to every member's connection but the
// sender's, then acknowledged. Each push is encoded once and the same bytes
// go to every member. What any group server must do beyond that is keep
// each member's pushes in seq order while several members send at once,
// and not acknowledge faster than it delivers (or a closed loop would
// queue without bound): a reader gives a send its seq and queues it in one
// step, and one goroutine per group writes out everything queued, one
// write per member, then the acknowledgements, one write per sender.
type rawServer struct {
	transport string
	ln        net.Listener
	hs        *http.Server // WebSocket only
	url       string       // what clients dial

	mu     sync.Mutex
	closed bool
	conns  map[*rawConn]struct{}
	users  map[string]*rawConn
	convs  map[string]*atomic.Int64
	groups map[string]*rawGroup // by conversation id
	wg     sync.WaitGroup
	quit   chan struct{} // closed by close: the fan-out goroutines return

	// fault, if set, decides for each push (by seq and recipient) whether
	// to leave it out or send it twice: the tests' way of proving that
	// imbench catches a server that loses or repeats messages. Set before
	// use.
	fault func(seq int64, to []byte) (drop, dup bool)
}

type rawConn struct {
	link link
	wmu  sync.Mutex // serializes writes: the peer's reader pushes here too
	user []byte
}

// rawGroup is a group the raw server was told of, with the sends queued
// for its fan-out goroutine.
type rawGroup struct {
	members []string
	id      []byte
	wake    chan struct{} // capacity 1: sends are queued

	mu     sync.Mutex
	seq    int64     // last seq given; guarded by mu
	queued sendBatch // in seq order; guarded by mu
	idBuf  []byte    // guarded by mu

	// The fan-out goroutine's.
	out      sendBatch
	conns    []*rawConn // the members' connections
	complete bool       // conns has every member
	only     []wire.Frame
}

// sendBatch is sends to a group: the push of each, and its
// acknowledgement for the connection it came from.
type sendBatch struct {
	pushes, acks frameBatch
	seqs         []int64
	from         []*rawConn
}

func (b *sendBatch) reset() {
	b.pushes.reset()
	b.acks.reset()
	b.seqs, b.from = b.seqs[:0], b.from[:0]
}

// startRaw starts a raw server for transport on 127.0.0.1, on a port of
// its own.
func startRaw(transport string) (*rawServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &rawServer{
		transport: transport,
		ln:        ln,
		conns:     make(map[*rawConn]struct{}),
		users:     make(map[string]*rawConn),
		convs:     make(map[string]*atomic.Int64),
		groups:    make(map[string]*rawGroup),
		quit:      make(chan struct{}),
	}
	s.wg.Add(1)
	if transport == transportWS {
		s.url = "ws://" + ln.Addr().String() + "/ws"
		s.hs = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			defer s.wg.Done()
			_ = s.hs.Serve(ln)
		}()
	} else {
		s.url = ln.Addr().String()
		go func() {
			defer s.wg.Done()
			s.acceptTCP()
		}()
	}
	return s, nil
}

// addr is what a client dials: host:port for TCP, a ws:// URL for
// WebSocket.
func (s *rawServer) addr() string { return s.url }

// close stops the server, closes every connection and waits for their
// goroutines.
func (s *rawServer) close() {
	s.mu.Lock()
	if !s.closed {
		close(s.quit)
	}
	s.closed = true
	conns := make([]*rawConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if s.hs != nil {
		_ = s.hs.Close()
	} else {
		_ = s.ln.Close()
	}
	for _, c := range conns {
		c.link.close()
	}
	s.wg.Wait()
}

func (s *rawServer) acceptTCP() {
	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors, say: wait for some to be freed
			// rather than stop accepting, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := &rawConn{link: newTCPLink(nc)}
		if !s.track(c) {
			nc.Close()
			return
		}
		go func() {
			defer s.wg.Done()
			s.serve(c)
		}()
	}
}

func (s *rawServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c := &rawConn{link: newWSLink(ws)}
	if !s.track(c) {
		ws.CloseNow()
		return
	}
	defer s.wg.Done()
	s.serve(c)
}

// track registers a new connection and counts its goroutine in wg,
// unless the server is closed.
func (s *rawServer) track(c *rawConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *rawServer) forget(c *rawConn) {
	s.mu.Lock()
	delete(s.conns, c)
	if c.user != nil && s.users[string(c.user)] == c {
		delete(s.users, string(c.user))
	}
	s.mu.Unlock()
}

// setGroup makes members the members of group id, once: sends to its
// conversation are pushed to them. Call it before they send.
func (s *rawServer) setGroup(id string, members []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conv := wire.GroupConversationID(id)
	if s.closed || s.groups[conv] != nil {
		return
	}
	g := &rawGroup{members: members, id: []byte(id), wake: make(chan struct{}, 1)}
	s.groups[conv] = g
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.fanOutLoop(g)
	}()
}

// group returns the group whose conversation is conv, or nil.
func (s *rawServer) group(conv []byte) *rawGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groups[string(conv)]
}

// lookup returns the connection of user, or nil.
func (s *rawServer) lookup(user []byte) *rawConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[string(user)]
}

// queue gives message m, sent by from in the request numbered reqSeq, the
// group's next seq, and queues its push and acknowledgement for the
// fan-out goroutine.
func (g *rawGroup) queue(from *rawConn, reqSeq uint32, m *outMsg) {
	g.mu.Lock()
	g.seq++
	m.seq = g.seq
	m.serverMsgID = strconv.AppendInt(append(g.idBuf[:0], 'r'), g.seq, 10)
	g.idBuf = m.serverMsgID
	b := &g.queued
	at := b.pushes.mark()
	b.pushes.buf = appendWrapped(b.pushes.buf, m)
	b.pushes.done(imv1.CommandType_CMD_PUSH_MSG, 0, at)
	at = b.acks.mark()
	b.acks.buf = appendSendRsp(b.acks.buf, m.serverMsgID, m.clientMsgID, g.seq, m.serverTime)
	b.acks.done(imv1.CommandType_CMD_SEND_MSG_RSP, reqSeq, at)
	b.seqs = append(b.seqs, g.seq)
	b.from = append(b.from, from)
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// fanOutLoop writes out what g has queued, round after round, until the
// server closes.
func (s *rawServer) fanOutLoop(g *rawGroup) {
	for {
		select {
		case <-s.quit:
			return
		case <-g.wake:
		}
		g.mu.Lock()
		g.out, g.queued = g.queued, g.out
		g.queued.reset()
		g.mu.Unlock()
		if len(g.out.seqs) > 0 {
			s.fanOut(g, &g.out)
		}
	}
}

// fanOut writes the pushes of b to every member of g, less each member's
// own messages, in one write per member; then the acknowledgements, in
// one write per sender.
func (s *rawServer) fanOut(g *rawGroup, b *sendBatch) {
	if !g.complete {
		g.conns, g.complete = s.memberConns(g)
	}
	pushes := b.pushes.list()
	var senders []*rawConn // few: the batch's distinct senders
	for _, c := range b.from {
		if !slices.Contains(senders, c) {
			senders = append(senders, c)
		}
	}
	for _, to := range g.conns {
		if s.fault == nil && !slices.Contains(senders, to) {
			to.send(pushes)
			continue
		}
		g.only = g.only[:0]
		for i, f := range pushes {
			if b.from[i] == to {
				continue
			}
			copies := 1
			if s.fault != nil {
				switch drop, dup := s.fault(b.seqs[i], to.user); {
				case drop:
					copies = 0
				case dup:
					copies = 2
				}
			}
			for range copies {
				g.only = append(g.only, f)
			}
		}
		to.send(g.only)
	}
	acks := b.acks.list()
	for _, c := range senders {
		g.only = g.only[:0]
		for i, f := range acks {
			if b.from[i] == c {
				g.only = append(g.only, f)
			}
		}
		c.send(g.only)
	}
}

// memberConns returns the connections of g's members; complete is false
// if one of them is not connected.
func (s *rawServer) memberConns(g *rawGroup) (conns []*rawConn, complete bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	complete = true
	for _, u := range g.members {
		if c := s.users[u]; c != nil {
			conns = append(conns, c)
		} else {
			complete = false
		}
	}
	return conns, complete
}

// push sends frames, the pushes of the messages with seqs, to c: all of
// them, or what the fault leaves of them.
func (s *rawServer) push(c *rawConn, frames []wire.Frame, seqs []int64) {
	if s.fault == nil {
		c.send(frames)
		return
	}
	out := make([]wire.Frame, 0, len(frames)+1)
	for i, f := range frames {
		switch drop, dup := s.fault(seqs[i], c.user); {
		case drop:
		case dup:
			out = append(out, f, f)
		default:
			out = append(out, f)
		}
	}
	c.send(out)
}

// counter returns the seq counter of a conversation.
func (s *rawServer) counter(conv []byte) *atomic.Int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.convs[string(conv)]
	if n == nil {
		n = new(atomic.Int64)
		s.convs[string(conv)] = n
	}
	return n
}

func (c *rawConn) send(frames []wire.Frame) {
	if len(frames) == 0 {
		return
	}
	c.wmu.Lock()
	err := c.link.send(frames)
	c.wmu.Unlock()
	if err != nil {
		c.link.close()
	}
}

// serve is a connection's reader: it answers each frame and relays sends.
func (s *rawServer) serve(c *rawConn) {
	defer s.forget(c)
	defer c.link.close()
	var (
		replies, pushes frameBatch
		seqs            []int64  // the seq of each push in pushes
		peer            *rawConn // the receiver of the last send, cached
		peerName        []byte
		conv            []byte // the conversation of the last send, cached
		counter         *atomic.Int64
		group           *rawGroup // conv's group, if it is one
		m               inMsg
		idBuf           []byte
	)
	flush := func() {
		c.send(replies.list())
		replies.reset()
		if peer != nil && pushes.len() > 0 {
			s.push(peer, pushes.list(), seqs)
		}
		pushes.reset()
		seqs = seqs[:0]
	}
	for {
		f, err := c.link.recv()
		if err != nil {
			return
		}
		switch f.Command {
		case imv1.CommandType_CMD_AUTH_REQ:
			var req imv1.AuthRequest
			if proto.Unmarshal(f.Body, &req) != nil || req.UserId == "" {
				return
			}
			c.user = []byte(req.UserId)
			s.mu.Lock()
			s.users[req.UserId] = c
			s.mu.Unlock()
			from := replies.mark()
			replies.done(imv1.CommandType_CMD_AUTH_RSP, f.Sequence, from)
		case imv1.CommandType_CMD_HEARTBEAT_REQ:
			from := replies.mark()
			replies.done(imv1.CommandType_CMD_HEARTBEAT_RSP, f.Sequence, from)
		case imv1.CommandType_CMD_SEND_MSG_REQ:
			err := eachMessage(f.Command, f.Body, func(info []byte) error { return parseMessageInfo(info, &m) })
			if err != nil || c.user == nil {
				return
			}
			if !bytes.Equal(m.convID, conv) {
				conv = bytes.Clone(m.convID)
				if group = s.group(conv); group == nil {
					counter = s.counter(conv)
				}
			}
			now := time.Now().UnixMilli()
			if group != nil {
				group.queue(c, f.Sequence, &outMsg{
					clientMsgID: m.clientMsgID,
					convID:      m.convID,
					senderID:    c.user,
					groupID:     group.id,
					content:     m.content,
					serverTime:  now,
				})
				break
			}
			if peer == nil || !bytes.Equal(m.receiverID, peerName) {
				if pushes.len() > 0 {
					flush()
				}
				peerName = bytes.Clone(m.receiverID)
				peer = s.lookup(peerName)
			}
			seq := counter.Add(1)
			idBuf = strconv.AppendInt(append(idBuf[:0], 'r'), seq, 10)
			from := replies.mark()
			replies.buf = appendSendRsp(replies.buf, idBuf, m.clientMsgID, seq, now)
			replies.done(imv1.CommandType_CMD_SEND_MSG_RSP, f.Sequence, from)
			from = pushes.mark()
			pushes.buf = appendWrapped(pushes.buf, &outMsg{
				serverMsgID: idBuf,
				clientMsgID: m.clientMsgID,
				convID:      m.convID,
				senderID:    c.user,
				receiverID:  m.receiverID,
				content:     m.content,
				serverTime:  now,
				seq:         seq,
			})
			pushes.done(imv1.CommandType_CMD_PUSH_MSG, 0, from)
			seqs = append(seqs, seq)
		case imv1.CommandType_CMD_MSG_ACK:
		default:
			if f.Sequence != 0 {
				from := replies.mark()
				replies.buf = appendVarint(replies.buf, fRspErrorCode, uint64(imv1.ErrorCode_ERR_UNKNOWN))
				replies.done(imv1.CommandType_CMD_ERROR_RSP, f.Sequence, from)
			}
		}
		if !c.link.pending() || replies.len()+pushes.len() >= 128 {
			flush()
		}
	}
}
