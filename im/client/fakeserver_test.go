package client_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// fakeServer speaks the protocol well enough to exercise the client: auth,
// heartbeat, send with dedup by client_msg_id, pushes to the other members'
// sessions, BatchSync and SyncRange over an in-memory message list, MSG_ACK,
// typing, and ERROR_RSP for anything else. Tests inject faults through its
// fields (under mu) and drive pushes, kicks and drops directly.
type fakeServer struct {
	t         testing.TB
	transport string
	addr      string // Options.Addr for the client
	ln        net.Listener
	hs        *httptest.Server
	wg        sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	sessions  map[*session]struct{}
	msgs      map[string][]*imv1.MessageInfo // per conversation, index seq-1
	groups    map[string][]string            // group conversation id → members
	acks      map[string]*imv1.SendMessageResponse
	refused   map[string]bool // users whose token is refused from now on
	sendIDs   []string        // client_msg_id of every SEND_MSG_REQ, in order of arrival
	auths     map[string]int  // successful authentications per user
	authIDs   []string        // AuthRequest.user_id of every AUTH_REQ, in order
	noAuthID  bool            // answer AUTH_REQ without user_id, as servers before it did
	urlTokens []string        // ?token= of WebSocket handshakes
	heartbeat int             // HEARTBEAT_REQs answered
	pings     int             // WebSocket pings received
	msgAcks   []*imv1.MessageAck

	// Faults, each consumed by the next send (or heartbeat).
	dropOnSend      int           // store the message, then drop the connection without acking
	ignoreSend      int           // store the message and never answer
	holdAck         chan struct{} // answer the next sends only once this is closed
	ignoreHeartbeat bool
}

type session struct {
	srv  *fakeServer
	fc   frameConn
	wmu  sync.Mutex
	user string // set once authenticated, under srv.mu
}

// frameConn is the server side of one connection, framing included.
type frameConn interface {
	read() (im.Frame, error)
	write(im.Frame) error
	close()
}

func newFakeServer(t testing.TB, transport string) *fakeServer {
	s := &fakeServer{
		t:         t,
		transport: transport,
		sessions:  make(map[*session]struct{}),
		msgs:      make(map[string][]*imv1.MessageInfo),
		groups:    make(map[string][]string),
		acks:      make(map[string]*imv1.SendMessageResponse),
		refused:   make(map[string]bool),
		auths:     make(map[string]int),
	}
	switch transport {
	case "tcp":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.ln = ln
		s.addr = ln.Addr().String()
		s.wg.Add(1)
		go s.acceptTCP()
	case "websocket":
		s.hs = httptest.NewServer(http.HandlerFunc(s.serveWS))
		s.addr = "ws" + strings.TrimPrefix(s.hs.URL, "http") + "/ws"
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	t.Cleanup(s.close)
	return s
}

func (s *fakeServer) acceptTCP() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(&tcpFrameConn{nc: nc, br: bufio.NewReader(nc)})
		}()
	}
}

func (s *fakeServer) serveWS(w http.ResponseWriter, r *http.Request) {
	s.wg.Add(1)
	defer s.wg.Done()
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OnPingReceived: func(context.Context, []byte) bool {
			s.mu.Lock()
			s.pings++
			s.mu.Unlock()
			return true
		},
	})
	if err != nil {
		return
	}
	s.mu.Lock()
	s.urlTokens = append(s.urlTokens, r.URL.Query().Get("token"))
	s.mu.Unlock()
	s.serve(&wsFrameConn{c: c})
}

// close stops the server, drops every session and waits for its goroutines.
func (s *fakeServer) close() {
	s.mu.Lock()
	s.closed = true
	for ss := range s.sessions {
		ss.fc.close()
	}
	if s.holdAck != nil {
		close(s.holdAck)
		s.holdAck = nil
	}
	s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
	}
	if s.hs != nil {
		s.hs.Close()
	}
	s.wg.Wait()
}

func (s *fakeServer) serve(fc frameConn) {
	ss := &session{srv: s, fc: fc}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		fc.close()
		return
	}
	s.sessions[ss] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, ss)
		s.mu.Unlock()
		fc.close()
	}()
	for {
		f, err := fc.read()
		if err != nil {
			return
		}
		if !ss.handle(f) {
			return
		}
	}
}

// handle answers one frame; false ends the session.
func (ss *session) handle(f im.Frame) bool {
	s := ss.srv
	body := imv1.NewBody(f.Command)
	if body != nil {
		if err := proto.Unmarshal(f.Body, body); err != nil {
			ss.reply(f, imv1.CommandType_CMD_ERROR_RSP, &imv1.ErrorResponse{ErrorCode: imv1.ErrorCode_ERR_INVALID_PARAM, Command: f.Command})
			return true
		}
	}
	s.mu.Lock()
	user := ss.user
	s.mu.Unlock()
	if user == "" && f.Command != imv1.CommandType_CMD_AUTH_REQ && f.Command != imv1.CommandType_CMD_HEARTBEAT_REQ {
		return false
	}
	switch req := body.(type) {
	case *imv1.AuthRequest:
		rsp := s.auth(req)
		if rsp.ErrorCode == imv1.ErrorCode_ERR_SUCCESS {
			s.mu.Lock()
			ss.user = strings.TrimPrefix(req.Token, "token-")
			s.auths[ss.user]++
			if s.noAuthID {
				rsp.UserId = ""
			}
			s.mu.Unlock()
		}
		ss.reply(f, imv1.CommandType_CMD_AUTH_RSP, rsp)
	case *imv1.HeartbeatRequest:
		s.mu.Lock()
		ignore := s.ignoreHeartbeat
		if !ignore {
			s.heartbeat++
		}
		s.mu.Unlock()
		if !ignore {
			ss.reply(f, imv1.CommandType_CMD_HEARTBEAT_RSP, &imv1.HeartbeatResponse{ServerTime: time.Now().UnixMilli()})
		}
	case *imv1.SendMessageRequest:
		return ss.send(f, user, req.GetMessage())
	case *imv1.BatchSyncRequest:
		ss.reply(f, imv1.CommandType_CMD_BATCH_SYNC_RSP, s.batchSync(user, req))
	case *imv1.SyncRangeRequest:
		ss.reply(f, imv1.CommandType_CMD_SYNC_RANGE_RSP, s.syncRange(user, req))
	case *imv1.MessageAck:
		s.mu.Lock()
		s.msgAcks = append(s.msgAcks, req)
		s.mu.Unlock()
	case *imv1.TypingStatusRequest:
		for _, m := range s.members(req.ConversationId) {
			if m != user {
				s.pushTo(m, nil, imv1.CommandType_CMD_TYPING_STATUS_PUSH, &imv1.TypingStatusPush{ConversationId: req.ConversationId, UserId: user, Status: req.Status})
			}
		}
	default:
		ss.reply(f, imv1.CommandType_CMD_ERROR_RSP, &imv1.ErrorResponse{ErrorCode: imv1.ErrorCode_ERR_UNKNOWN, ErrorMsg: "unsupported command", Command: f.Command})
	}
	return true
}

func (s *fakeServer) auth(req *imv1.AuthRequest) *imv1.AuthResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authIDs = append(s.authIDs, req.UserId)
	user, _ := strings.CutPrefix(req.Token, "token-")
	switch {
	case req.Token == "expired":
		return &imv1.AuthResponse{ErrorCode: imv1.ErrorCode_ERR_TOKEN_EXPIRED, ErrorMsg: "token expired"}
	case user == "" || req.Token != tokenFor(user) || s.refused[user]:
		return &imv1.AuthResponse{ErrorCode: imv1.ErrorCode_ERR_AUTH_FAILED, ErrorMsg: "bad token"}
	case req.UserId != "" && req.UserId != user:
		return &imv1.AuthResponse{ErrorCode: imv1.ErrorCode_ERR_AUTH_FAILED, ErrorMsg: "user_id does not match the token"}
	}
	return &imv1.AuthResponse{UserId: user}
}

func tokenFor(user string) string { return "token-" + user }

// send stores m (once per sender and client_msg_id), pushes it to the other
// sessions of every member, and acknowledges it, unless a fault says
// otherwise.
func (ss *session) send(f im.Frame, user string, m *imv1.MessageInfo) bool {
	s := ss.srv
	s.mu.Lock()
	s.sendIDs = append(s.sendIDs, m.GetClientMsgId())
	key := user + "\x00" + m.GetClientMsgId()
	ack, dup := s.acks[key]
	var stored *imv1.MessageInfo
	switch {
	case dup:
	case len(m.GetContent()) > 100:
		ack = &imv1.SendMessageResponse{ErrorCode: imv1.ErrorCode_ERR_MESSAGE_TOO_LARGE, ErrorMsg: "too large"}
	case !s.isMember(m.GetConversationId(), user):
		ack = &imv1.SendMessageResponse{ErrorCode: imv1.ErrorCode_ERR_PERMISSION_DENIED, ErrorMsg: "not a member"}
	default:
		stored = s.storeLocked(m.GetConversationId(), user, m.GetClientMsgId(), m.GetContent())
		ack = &imv1.SendMessageResponse{ServerMsgId: stored.ServerMsgId, ClientMsgId: stored.ClientMsgId, Seq: stored.Seq, ServerTime: stored.ServerTime}
		s.acks[key] = ack
	}
	drop, ignore, hold := s.dropOnSend > 0, s.ignoreSend > 0, s.holdAck
	if drop {
		s.dropOnSend--
	} else if ignore {
		s.ignoreSend--
	}
	s.mu.Unlock()

	if stored != nil {
		for _, member := range s.members(stored.ConversationId) {
			s.pushTo(member, ss, imv1.CommandType_CMD_PUSH_MSG, &imv1.PushMessage{Message: stored})
		}
	}
	switch {
	case drop:
		return false
	case ignore:
	case hold != nil:
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			<-hold
			ss.reply(f, imv1.CommandType_CMD_SEND_MSG_RSP, ack)
		}()
	default:
		ss.reply(f, imv1.CommandType_CMD_SEND_MSG_RSP, ack)
	}
	return true
}

// store adds a message without pushing it, as if it had arrived while the
// recipient was away.
func (s *fakeServer) store(conv, sender, content string) *imv1.MessageInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.storeLocked(conv, sender, "", []byte(content))
}

func (s *fakeServer) storeLocked(conv, sender, clientMsgID string, content []byte) *imv1.MessageInfo {
	seq := int64(len(s.msgs[conv]) + 1)
	m := &imv1.MessageInfo{
		ServerMsgId:    fmt.Sprintf("%s-%d", conv, seq),
		ClientMsgId:    clientMsgID,
		ConversationId: conv,
		SenderId:       sender,
		Content:        content,
		Seq:            seq,
		ServerTime:     time.Now().UnixMilli(),
	}
	s.msgs[conv] = append(s.msgs[conv], m)
	return m
}

func (s *fakeServer) message(conv string, seq int64) *imv1.MessageInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.msgs[conv][seq-1]
}

func (s *fakeServer) members(conv string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.membersLocked(conv)
}

func (s *fakeServer) membersLocked(conv string) []string {
	if rest, ok := strings.CutPrefix(conv, "single_"); ok {
		// Test user ids have no "_".
		if a, b, ok := strings.Cut(rest, "_"); ok {
			return []string{a, b}
		}
		return nil
	}
	return s.groups[conv]
}

func (s *fakeServer) isMember(conv, user string) bool {
	for _, m := range s.membersLocked(conv) {
		if m == user {
			return true
		}
	}
	return false
}

func (s *fakeServer) batchSync(user string, req *imv1.BatchSyncRequest) *imv1.BatchSyncResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := make(map[string]int64)
	for _, st := range req.ConversationStates {
		last[st.ConversationId] = st.LastSeq
	}
	n := int64(req.MaxCountPerConversation)
	if n <= 0 {
		n = 100
	}
	rsp := &imv1.BatchSyncResponse{ServerTime: time.Now().UnixMilli()}
	for conv, msgs := range s.msgs {
		if !s.isMember(conv, user) || int64(len(msgs)) <= last[conv] {
			continue
		}
		page := msgs[last[conv]:min(int64(len(msgs)), last[conv]+n)]
		cm := &imv1.ConversationMessages{
			ConversationId: conv,
			Messages:       page,
			SyncedSeq:      page[len(page)-1].Seq,
			MaxSeq:         int64(len(msgs)),
			HasMore:        page[len(page)-1].Seq < int64(len(msgs)),
		}
		if cm.HasMore {
			cm.MaxSeq = cm.SyncedSeq
		}
		rsp.ConversationMessages = append(rsp.ConversationMessages, cm)
		rsp.TotalMessageCount += int32(len(page))
	}
	return rsp
}

func (s *fakeServer) syncRange(user string, req *imv1.SyncRangeRequest) *imv1.SyncRangeResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	rsp := &imv1.SyncRangeResponse{RequestId: req.RequestId, ConversationId: req.ConversationId}
	if !s.isMember(req.ConversationId, user) {
		rsp.ErrorCode = imv1.ErrorCode_ERR_PERMISSION_DENIED
		return rsp
	}
	if req.StartSeq < 1 || req.EndSeq < req.StartSeq {
		rsp.ErrorCode = imv1.ErrorCode_ERR_INVALID_PARAM
		return rsp
	}
	msgs := s.msgs[req.ConversationId]
	n := int64(req.Count)
	if n <= 0 {
		n = 100
	}
	end := min(req.EndSeq, int64(len(msgs)))
	for seq := req.StartSeq; seq <= end && int64(len(rsp.Messages)) < n; seq++ {
		m := proto.Clone(msgs[seq-1]).(*imv1.MessageInfo)
		m.ConversationId = "" // as a server may: the envelope names it
		rsp.Messages = append(rsp.Messages, m)
		rsp.EndSeq = seq
	}
	rsp.StartSeq = req.StartSeq
	rsp.HasMore = len(rsp.Messages) > 0 && rsp.EndSeq < end
	return rsp
}

// pushTo sends a push to every authenticated session of user but skip.
func (s *fakeServer) pushTo(user string, skip *session, cmd imv1.CommandType, m proto.Message) {
	for _, ss := range s.sessionsOf(user) {
		if ss != skip {
			ss.write(im.Frame{Command: cmd, Body: mustMarshal(m)})
		}
	}
}

// push sends a stored message to user's sessions again.
func (s *fakeServer) push(user, conv string, seqs ...int64) {
	for _, seq := range seqs {
		s.pushTo(user, nil, imv1.CommandType_CMD_PUSH_MSG, &imv1.PushMessage{Message: s.message(conv, seq)})
	}
}

func (s *fakeServer) kick(user string, reason int32) {
	s.pushTo(user, nil, imv1.CommandType_CMD_KICK_OUT, &imv1.KickOutNotification{Reason: reason, Message: "logged in elsewhere"})
}

// drop closes every session of user.
func (s *fakeServer) drop(user string) {
	for _, ss := range s.sessionsOf(user) {
		ss.fc.close()
	}
}

func (s *fakeServer) sessionsOf(user string) []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*session
	for ss := range s.sessions {
		if ss.user == user {
			out = append(out, ss)
		}
	}
	return out
}

// locked runs f under the server's lock, for tests reading its records.
func (s *fakeServer) locked(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

func (ss *session) reply(req im.Frame, cmd imv1.CommandType, m proto.Message) {
	ss.write(im.Frame{Command: cmd, Sequence: req.Sequence, Body: mustMarshal(m)})
}

func (ss *session) write(f im.Frame) {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	if err := ss.fc.write(f); err != nil {
		ss.fc.close()
	}
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

type tcpFrameConn struct {
	nc net.Conn
	br *bufio.Reader
}

func (c *tcpFrameConn) read() (im.Frame, error) { return wire.ReadFrame(c.br, im.MaxFrameSize) }

func (c *tcpFrameConn) write(f im.Frame) error {
	b, err := wire.AppendFrame(nil, f)
	if err != nil {
		return err
	}
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err = c.nc.Write(b)
	return err
}

func (c *tcpFrameConn) close() { c.nc.Close() }

type wsFrameConn struct {
	c *websocket.Conn
}

func (c *wsFrameConn) read() (im.Frame, error) {
	_, data, err := c.c.Read(context.Background())
	if err != nil {
		return im.Frame{}, err
	}
	var env imv1.WebSocketMessage
	if err := proto.Unmarshal(data, &env); err != nil {
		return im.Frame{}, err
	}
	return im.Frame{Command: env.Command, Sequence: env.Sequence, Body: env.Body}, nil
}

func (c *wsFrameConn) write(f im.Frame) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.c.Write(ctx, websocket.MessageBinary, mustMarshal(&imv1.WebSocketMessage{
		Command: f.Command, Sequence: f.Sequence, Body: f.Body, Timestamp: time.Now().UnixMilli(),
	}))
}

func (c *wsFrameConn) close() { c.c.CloseNow() }
