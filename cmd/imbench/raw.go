package main

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imv1"
)

// rawServer is the machine's limit probe: the least any server of this
// protocol must do for the direct and connect scenarios, over the same
// framing and sockets. It answers AUTH_REQ without checking anything,
// acknowledges each send with the next seq of its conversation and pushes
// it to the receiver's connection; no storage, no validation, no queues.
// Replies are written by the connection's reader, batched while more
// requests are already buffered. imserver's figures divided by its figures,
// measured in the same run on the same machine, say how much of the
// machine's messaging capacity imserver gets.
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
	wg     sync.WaitGroup

	// fault, if set, decides for each push (by seq) whether to leave it
	// out or send it twice: the tests' way of proving that imbench
	// catches a server that loses or repeats messages. Set before use.
	fault func(seq int64) (drop, dup bool)
}

type rawConn struct {
	link link
	wmu  sync.Mutex // serializes writes: the peer's reader pushes here too
	user []byte
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

func (s *rawServer) lookup(user []byte) *rawConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[string(user)]
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

func (c *rawConn) send(frames []im.Frame) {
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
		peer            *rawConn // the receiver of the last send, cached
		peerName        []byte
		conv            []byte // the conversation of the last send, cached
		seqs            *atomic.Int64
		m               inMsg
		idBuf           []byte
	)
	flush := func() {
		c.send(replies.list())
		replies.reset()
		if peer != nil {
			peer.send(pushes.list())
		}
		pushes.reset()
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
				seqs = s.counter(conv)
			}
			if peer == nil || !bytes.Equal(m.receiverID, peerName) {
				if pushes.len() > 0 {
					flush()
				}
				peerName = bytes.Clone(m.receiverID)
				peer = s.lookup(peerName)
			}
			seq := seqs.Add(1)
			now := time.Now().UnixMilli()
			idBuf = strconv.AppendInt(append(idBuf[:0], 'r'), seq, 10)
			from := replies.mark()
			replies.buf = appendSendRsp(replies.buf, idBuf, m.clientMsgID, seq, now)
			replies.done(imv1.CommandType_CMD_SEND_MSG_RSP, f.Sequence, from)
			copies := 1
			if s.fault != nil {
				switch drop, dup := s.fault(seq); {
				case drop:
					copies = 0
				case dup:
					copies = 2
				}
			}
			for range copies {
				if peer == nil {
					break
				}
				from := pushes.mark()
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
			}
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
