package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// Transport names for Options.Transport.
const (
	TransportTCP       = "tcp"
	TransportWebSocket = "websocket"
)

// Defaults of Options fields.
const (
	DefaultRequestTimeout = 10 * time.Second
	DefaultHeartbeat      = 30 * time.Second
	DefaultPushBuffer     = 256
	DefaultPlatform       = "go"
)

// Reconnect backoff: the delay doubles from minBackoff up to maxBackoff, and
// each wait is a random time between half the delay and the delay, so that
// many clients dropped at once do not come back at once.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// maxSendTries is how many times Send writes the same message before giving
// up, as IM-iOS-SDK does.
const maxSendTries = 3

// Options configures a Client. Every zero field means its documented default;
// Addr and Token are required. Dial copies Options; the Cursors map
// is copied too.
type Options struct {
	// Transport is TransportTCP (the default) or TransportWebSocket.
	Transport string
	// Addr is "host:port" for TCP, or the WebSocket URL
	// ("ws://127.0.0.1:8081/ws", "wss://…") for WebSocket.
	Addr string

	// UserID is the user Token belongs to. When it is empty the client
	// learns it from the server's answer to its AuthRequest (UserID); the
	// server checks it against the token when it is set.
	UserID   string
	Token    string
	Platform string // reported in AuthRequest; default DefaultPlatform

	// TLSConfig, if set, makes the TCP connection use TLS. For WebSocket
	// use a wss:// Addr instead.
	TLSConfig *tls.Config

	// RequestTimeout bounds each request (each try of a Send) unless the
	// caller's ctx ends sooner. Default 10 s.
	RequestTimeout time.Duration
	// Heartbeat is the keep-alive interval: HEARTBEAT_REQ on TCP, a ping on
	// WebSocket. A keep-alive that gets no answer within RequestTimeout
	// drops the connection. Default 30 s.
	Heartbeat time.Duration

	// Reconnect makes the client reconnect, with exponential backoff, when
	// the connection breaks. After it authenticates again it runs SyncAll
	// and hands the messages it finds to OnPush or Pushes, and Sends in
	// flight are retried. KICK_OUT or a refused token ends the client
	// regardless.
	Reconnect bool

	// Cursors are the per-conversation seqs the client already holds (from
	// an earlier run). Without them a Client holds nothing, so the first
	// SyncAll, or the repair of the first push of a conversation, fetches
	// the conversation's whole history.
	Cursors map[string]int64

	// OnPush, if set, receives every push, and Pushes returns nil. It is
	// called on the client's own goroutines, never concurrently with itself.
	// It must return quickly and must not call Close or wait for a
	// response (Send, Request, Sync…) itself: responses are read by the
	// goroutine that calls it. Start a goroutine for such work.
	OnPush func(Push)
	// PushBuffer is the capacity of the Pushes channel. Default 256.
	PushBuffer int

	// Logger receives the client's logs; nil discards them. Tokens and
	// message contents are never logged.
	Logger *slog.Logger
}

// Push is a frame the server sent on its own: a new message, a recall, a read
// receipt, typing, a KICK_OUT….
type Push struct {
	Command imv1.CommandType
	// Message is the decoded body: *imv1.PushMessage for CMD_PUSH_MSG (a
	// BATCH_MSG is delivered as one Push per message),
	// *imv1.KickOutNotification, *imv1.RevokeMessagePush,
	// *imv1.ReadReceiptPush, *imv1.TypingStatusPush,
	// *imv1.StatusChangePush (see Client.Presence),
	// *imv1.ConversationChangedPush (see Client.Conversations), …; nil
	// for a command whose body type imv1.NewBody does not know.
	Message proto.Message
}

// Client is a connection to an imserver (or any server speaking the
// IM-iOS-SDK protocol). Its methods are safe for concurrent use.
type Client struct {
	opts    Options
	log     *slog.Logger
	pushes  chan Push // nil when opts.OnPush is set
	cancel  context.CancelFunc
	closing chan struct{} // closed by Close
	once    sync.Once
	done    chan struct{} // closed when the client has ended and its goroutines are done delivering
	wg      sync.WaitGroup
	gapc    chan struct{} // wakes the worker to repair gaps; capacity 1

	dmu sync.Mutex // serializes deliveries, so OnPush never runs concurrently

	mu sync.Mutex
	// cur is the connection requests use; nil while reconnecting and after
	// the end. ready is open exactly while cur is nil and err is nil, and
	// closed when that changes, so requests can wait for a connection.
	cur      *conn
	ready    chan struct{}
	err      error // why the client ended; nil while it runs
	convs    map[string]*convState
	gaps     map[string]struct{} // conversations with a gap to repair
	inflight map[string]int      // client_msg_ids of Sends in progress
}

// Dial connects to the server and authenticates. It fails if the first
// connection or its AuthRequest fails, Reconnect or not; an error the server
// answered with is a *Error (errors.Is(err, wire.ErrUnauthenticated) for a bad
// token). ctx bounds the dial and the handshake only.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{
		opts:     o,
		log:      o.Logger.With("user", o.UserID),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
		gapc:     make(chan struct{}, 1),
		ready:    make(chan struct{}),
		convs:    make(map[string]*convState, len(o.Cursors)),
		gaps:     make(map[string]struct{}),
		inflight: make(map[string]int),
	}
	for conv, seq := range o.Cursors {
		c.convs[conv] = &convState{cursor: seq, top: seq}
	}
	if o.OnPush == nil {
		c.pushes = make(chan Push, o.PushBuffer)
	}
	cn, err := c.connect(ctx)
	if err != nil {
		close(c.closing)
		c.wg.Wait()
		return nil, err
	}
	c.attach(cn)
	var life context.Context
	life, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(1)
	go c.run(life, cn)
	return c, nil
}

func (o Options) withDefaults() (Options, error) {
	switch o.Transport {
	case "":
		o.Transport = TransportTCP
	case TransportTCP, TransportWebSocket:
	default:
		return o, fmt.Errorf("client: unknown transport %q: %w", o.Transport, wire.ErrInvalidArgument)
	}
	if o.Addr == "" {
		return o, fmt.Errorf("client: Options.Addr is required: %w", wire.ErrInvalidArgument)
	}
	if o.Transport == TransportWebSocket {
		u, err := url.Parse(o.Addr)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return o, fmt.Errorf("client: WebSocket Addr must be a ws:// or wss:// URL: %w", wire.ErrInvalidArgument)
		}
	}
	if o.Token == "" {
		return o, fmt.Errorf("client: Options.Token is required: %w", wire.ErrInvalidArgument)
	}
	if o.Platform == "" {
		o.Platform = DefaultPlatform
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.PushBuffer <= 0 {
		o.PushBuffer = DefaultPushBuffer
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Close ends the client: it closes the connection, stops reconnecting, fails
// requests in flight with ErrClosed, and waits for the client's goroutines.
// It is idempotent and returns nil. Do not call it from OnPush.
func (c *Client) Close() error {
	c.once.Do(func() {
		close(c.closing)
		c.cancel()
	})
	<-c.done
	c.wg.Wait()
	return nil
}

// Done is closed when the client has ended for good: Close was called, the
// server kicked it out, the token was refused on reconnect, or the connection
// broke and Reconnect is off. By then the Pushes channel is closed, and,
// unless Close ended the client, every push received has been delivered.
func (c *Client) Done() <-chan struct{} { return c.done }

// UserID returns the user the client is authenticated as: Options.UserID,
// or, when that was empty, the one the server named in its answer to the
// first AuthRequest.
func (c *Client) UserID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opts.UserID
}

// Err returns why the client ended (ErrClosed, an error wrapping ErrKicked or
// ErrConnLost, a *Error), or nil while it runs.
func (c *Client) Err() error {
	select {
	case <-c.done:
	default:
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Pushes returns the channel of pushes, or nil when Options.OnPush is set.
// The channel is closed when the client ends.
//
// The consumer must keep draining it. When it is full the client stops
// reading from the connection: responses wait too (so a Send blocks, and an
// unanswered keep-alive drops the connection), and a server that protects
// itself from slow clients disconnects this one; with
// Reconnect on, the client catches up by sync once the consumer drains
// again, so nothing is lost.
func (c *Client) Pushes() <-chan Push { return c.pushes }

// Request sends req as a cmd frame and decodes the answer into rsp, matching
// it by sequence. If rsp has an error_code field (every response type of
// the protocol does) and it is not SUCCESS, Request returns a *Error; so it
// does for an ERROR_RSP (900) answer. req or rsp may be nil for an empty
// body or an ignored answer. While the client reconnects, Request waits for
// the new connection (bounded by ctx); it does not retry a request whose
// connection broke (that error wraps ErrConnLost).
func (c *Client) Request(ctx context.Context, cmd imv1.CommandType, req, rsp proto.Message) error {
	body, err := marshal(req)
	if err != nil {
		return err
	}
	cn, err := c.conn(ctx)
	if err != nil {
		return err
	}
	return c.request(ctx, cn, cmd, body, rsp)
}

// SendFrame sends msg as a cmd frame that gets no response (MSG_ACK,
// TYPING_STATUS_REQ). It returns once the frame is written.
func (c *Client) SendFrame(ctx context.Context, cmd imv1.CommandType, msg proto.Message) error {
	body, err := marshal(msg)
	if err != nil {
		return err
	}
	cn, err := c.conn(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	return cn.send(ctx, cmd, body)
}

func marshal(m proto.Message) ([]byte, error) {
	if m == nil {
		return nil, nil
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("client: encoding %T: %w", m, err)
	}
	return b, nil
}

// conn returns the connection to send on, waiting while the client
// reconnects.
func (c *Client) conn(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		cn, ready, err := c.cur, c.ready, c.err
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if cn != nil {
			return cn, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("client: waiting for a connection: %w", ctx.Err())
		}
	}
}

// request does one request on cn within RequestTimeout and decodes the
// answer into rsp.
func (c *Client) request(ctx context.Context, cn *conn, cmd imv1.CommandType, body []byte, rsp proto.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("client: %v: %w", cmd, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	f, err := cn.roundTrip(ctx, cmd, body)
	if err != nil {
		return fmt.Errorf("client: %v: %w", cmd, err)
	}
	if f.Command == imv1.CommandType_CMD_ERROR_RSP {
		var e imv1.ErrorResponse
		if err := proto.Unmarshal(f.Body, &e); err != nil {
			return fmt.Errorf("client: %v: bad ERROR_RSP: %w", cmd, err)
		}
		if e.ErrorCode == imv1.ErrorCode_ERR_SUCCESS {
			e.ErrorCode = imv1.ErrorCode_ERR_UNKNOWN
		}
		return &Error{Code: e.ErrorCode, Msg: e.ErrorMsg}
	}
	if rsp == nil {
		return nil
	}
	if want := imv1.NewBody(f.Command); want != nil && want.ProtoReflect().Descriptor().FullName() != rsp.ProtoReflect().Descriptor().FullName() {
		return fmt.Errorf("client: %v answered with %v, not %s", cmd, f.Command, rsp.ProtoReflect().Descriptor().FullName())
	}
	if err := proto.Unmarshal(f.Body, rsp); err != nil {
		return fmt.Errorf("client: %v: bad response: %w", cmd, err)
	}
	if e := errorOf(rsp); e != nil {
		return e
	}
	return nil
}

// errorOf returns the *Error of a response whose error_code field is set.
// Found by field name, so responses added to the protocol later need no code
// here.
func errorOf(m proto.Message) *Error {
	r := m.ProtoReflect()
	fields := r.Descriptor().Fields()
	fd := fields.ByName("error_code")
	if fd == nil || fd.Kind() != protoreflect.EnumKind {
		return nil
	}
	code := imv1.ErrorCode(r.Get(fd).Enum())
	if code == imv1.ErrorCode_ERR_SUCCESS {
		return nil
	}
	e := &Error{Code: code}
	if md := fields.ByName("error_msg"); md != nil && md.Kind() == protoreflect.StringKind {
		e.Msg = r.Get(md).String()
	}
	return e
}

// connect dials, starts the reader and authenticates.
func (c *Client) connect(ctx context.Context) (*conn, error) {
	t, err := dialTransport(ctx, &c.opts)
	if err != nil {
		if e := (*Error)(nil); errors.As(err, &e) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: dial %s: %w", ErrConnLost, c.opts.Addr, err)
	}
	cn := newConn(t)
	c.wg.Add(1)
	go c.readLoop(cn)
	c.mu.Lock()
	user := c.opts.UserID
	c.mu.Unlock()
	body, err := marshal(&imv1.AuthRequest{UserId: user, Token: c.opts.Token, Platform: c.opts.Platform})
	rsp := new(imv1.AuthResponse)
	if err == nil {
		err = c.request(ctx, cn, imv1.CommandType_CMD_AUTH_REQ, body, rsp)
	}
	if err == nil && user == "" {
		// The first connection of a client that knows only its token;
		// reconnections send the user id learnt here, which the server
		// checks against the token.
		if rsp.UserId == "" {
			err = fmt.Errorf("client: the server did not say which user the token is for (a server older than AuthResponse.user_id); set Options.UserID: %w", wire.ErrInvalidArgument)
		} else {
			c.mu.Lock()
			c.opts.UserID = rsp.UserId
			c.mu.Unlock()
		}
	}
	if err != nil {
		cn.close(fmt.Errorf("%w: authentication failed", ErrConnLost))
		<-cn.done
		return nil, err
	}
	return cn, nil
}

// attach makes cn the connection requests use.
func (c *Client) attach(cn *conn) {
	c.mu.Lock()
	c.cur = cn
	close(c.ready)
	c.mu.Unlock()
}

// detach stops requests from using cn, if it is the current connection.
func (c *Client) detach(cn *conn) {
	c.mu.Lock()
	if c.cur == cn {
		c.cur = nil
		c.ready = make(chan struct{})
	}
	c.mu.Unlock()
}

// finish ends the client with err. Only the worker calls it, after the
// reader of its last connection has returned, so nothing sends on c.pushes
// any more.
func (c *Client) finish(err error) {
	c.mu.Lock()
	c.err = err
	if c.cur == nil {
		close(c.ready) // wake requests waiting for a connection
	}
	c.cur = nil
	c.mu.Unlock()
	if c.pushes != nil {
		close(c.pushes)
	}
	if errors.Is(err, ErrClosed) {
		c.log.Debug("client closed")
	} else {
		c.log.Info("client ended", "err", err)
	}
	close(c.done)
}

// run is the client's worker goroutine: it keeps the connection alive,
// repairs gaps, reconnects, and ends the client. Everything that may block
// on the network besides the reader happens here, one thing at a time.
func (c *Client) run(ctx context.Context, cn *conn) {
	defer c.wg.Done()
	resumed := false
	for {
		err := c.serve(ctx, cn, resumed)
		cn.close(err)
		<-cn.done
		c.detach(cn)
		switch {
		case ctx.Err() != nil:
			c.finish(ErrClosed)
			return
		case !c.opts.Reconnect || errors.Is(err, ErrKicked):
			c.finish(err)
			return
		}
		c.log.Info("connection lost; reconnecting", "err", err)
		cn, err = c.reconnect(ctx)
		if err != nil {
			c.finish(err)
			return
		}
		c.attach(cn)
		resumed = true
	}
}

// serve keeps cn alive until it ends or the client closes, and returns why.
// On a resumed connection it first catches up on what was missed.
func (c *Client) serve(ctx context.Context, cn *conn, resumed bool) error {
	if resumed {
		c.log.Info("reconnected")
		err := c.syncAll(ctx, cn, func(m *imv1.MessageInfo) bool {
			return c.deliver(Push{Command: imv1.CommandType_CMD_PUSH_MSG, Message: &imv1.PushMessage{Message: m}})
		})
		if err != nil && cn.cause() == nil && ctx.Err() == nil {
			// Gaps found later are repaired by push; log and carry on.
			c.log.Warn("sync after reconnect failed", "err", err)
		}
	}
	tick := time.NewTicker(c.opts.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ErrClosed
		case <-cn.done:
			return cn.cause()
		case <-tick.C:
			if err := c.keepAlive(ctx, cn); err != nil && cn.cause() == nil && ctx.Err() == nil {
				cn.close(fmt.Errorf("%w: keep-alive: %w", ErrConnLost, err))
			}
		case <-c.gapc:
			c.repairGaps(ctx, cn)
		}
	}
}

func (c *Client) keepAlive(ctx context.Context, cn *conn) error {
	if p, ok := cn.t.(pinger); ok {
		ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
		defer cancel()
		return p.ping(ctx)
	}
	body, err := marshal(&imv1.HeartbeatRequest{ClientTime: time.Now().UnixMilli()})
	if err != nil {
		return err
	}
	return c.request(ctx, cn, imv1.CommandType_CMD_HEARTBEAT_REQ, body, new(imv1.HeartbeatResponse))
}

// reconnect dials until a connection authenticates, backing off between
// tries. It gives up when ctx ends or the server refuses the credentials,
// which no retry can fix.
func (c *Client) reconnect(ctx context.Context) (*conn, error) {
	delay := minBackoff
	for {
		wait := delay/2 + rand.N(delay/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ErrClosed
		case <-t.C:
		}
		cn, err := c.connect(ctx)
		if err == nil {
			return cn, nil
		}
		if ctx.Err() != nil {
			return nil, ErrClosed
		}
		if errors.Is(err, wire.ErrUnauthenticated) {
			return nil, err
		}
		c.log.Debug("reconnect failed", "err", err)
		delay = min(2*delay, maxBackoff)
	}
}

// readLoop is the reader goroutine of cn: it hands responses to the requests
// waiting for them and pushes to the application.
func (c *Client) readLoop(cn *conn) {
	defer c.wg.Done()
	defer close(cn.done)
	for {
		f, err := cn.t.readFrame()
		if err != nil {
			cn.close(fmt.Errorf("%w: %w", ErrConnLost, err))
			c.detach(cn)
			return
		}
		if f.Sequence != 0 {
			if !cn.complete(f) {
				c.log.Debug("response nobody waits for", "cmd", f.Command, "seq", f.Sequence)
			}
			continue
		}
		if !c.handlePush(cn, f) {
			cn.close(ErrClosed)
			return
		}
	}
}

// handlePush processes one push. It returns false when the client is
// closing and the reader should stop.
func (c *Client) handlePush(cn *conn, f wire.Frame) bool {
	switch f.Command {
	case imv1.CommandType_CMD_PUSH_MSG:
		var pm imv1.PushMessage
		if err := proto.Unmarshal(f.Body, &pm); err != nil {
			c.log.Warn("bad push", "cmd", f.Command, "err", err)
			return true
		}
		if !c.accept(pm.Message) {
			return true
		}
		return c.deliver(Push{Command: f.Command, Message: &pm})
	case imv1.CommandType_CMD_BATCH_MSG:
		var bm imv1.BatchMessages
		if err := proto.Unmarshal(f.Body, &bm); err != nil {
			c.log.Warn("bad push", "cmd", f.Command, "err", err)
			return true
		}
		for _, pm := range bm.Messages {
			if pm == nil || !c.accept(pm.Message) {
				continue
			}
			if !c.deliver(Push{Command: imv1.CommandType_CMD_PUSH_MSG, Message: pm}) {
				return false
			}
		}
		return true
	case imv1.CommandType_CMD_CONVERSATION_CHANGED_PUSH:
		var p imv1.ConversationChangedPush
		if err := proto.Unmarshal(f.Body, &p); err != nil {
			c.log.Warn("bad push", "cmd", f.Command, "err", err)
			return true
		}
		c.skipCleared(p.Settings)
		return c.deliver(Push{Command: f.Command, Message: &p})
	case imv1.CommandType_CMD_SYNC_FINISHED, imv1.CommandType_CMD_HEARTBEAT_RSP:
		return true // bookkeeping of the sync protocol, nothing for the app
	case imv1.CommandType_CMD_KICK_OUT:
		var k imv1.KickOutNotification
		if err := proto.Unmarshal(f.Body, &k); err != nil {
			c.log.Warn("bad push", "cmd", f.Command, "err", err)
		}
		ok := c.deliver(Push{Command: f.Command, Message: &k})
		// Closing after delivering: the app sees the KICK_OUT before Done.
		cn.close(fmt.Errorf("%w (reason %d): %s", ErrKicked, k.Reason, k.Message))
		return ok
	}
	m := imv1.NewBody(f.Command)
	if m != nil {
		if err := proto.Unmarshal(f.Body, m); err != nil {
			c.log.Warn("bad push", "cmd", f.Command, "err", err)
			return true
		}
	}
	return c.deliver(Push{Command: f.Command, Message: m})
}

// deliver hands p to OnPush or the Pushes channel, waiting for room. It
// returns false if the client closed first.
func (c *Client) deliver(p Push) bool {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.opts.OnPush != nil {
		select {
		case <-c.closing:
			return false
		default:
		}
		c.opts.OnPush(p)
		return true
	}
	select {
	case c.pushes <- p:
		return true
	case <-c.closing:
		return false
	}
}
