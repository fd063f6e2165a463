package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// benchConn is one lean client connection: a reader goroutine that hands
// every frame to a handler, and a write path under a mutex. No goroutine
// per message, no request bookkeeping: the scenarios match answers by
// client_msg_id themselves.
type benchConn struct {
	user string
	link link

	wmu       sync.Mutex
	seq       uint32 // last request sequence; guarded by wmu
	lastWrite atomic.Int64

	closing atomic.Bool
	done    chan struct{} // closed when the reader has returned
}

// errAuth marks a connection the server refused to authenticate.
var errAuth = errors.New("authentication refused")

// connect dials connection i as user and authenticates it with token. The
// reader is not started: call serve.
func connect(ctx context.Context, d *dialer, i int, user, token string) (*benchConn, error) {
	l, err := d.dial(ctx, i, token)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	// Whatever blocks below is unblocked by closing the link when ctx ends.
	stop := context.AfterFunc(ctx, l.close)
	defer stop()
	c := &benchConn{user: user, link: l, done: make(chan struct{})}
	body, err := proto.Marshal(&imv1.AuthRequest{UserId: user, Token: token, Platform: "imbench"})
	if err != nil {
		l.close()
		return nil, err
	}
	if err := c.write(wire.Frame{Command: imv1.CommandType_CMD_AUTH_REQ, Body: body}); err != nil {
		l.close()
		return nil, fmt.Errorf("auth: %w", err)
	}
	for {
		f, err := l.recv()
		if err != nil {
			l.close()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("auth: %w", ctx.Err())
			}
			return nil, fmt.Errorf("auth: %w", err)
		}
		if f.Sequence != 1 {
			continue // a push before the answer; nothing is expected yet
		}
		if code := errorCodeOf(f.Body); f.Command != imv1.CommandType_CMD_AUTH_RSP || code != imv1.ErrorCode_ERR_SUCCESS {
			l.close()
			return nil, fmt.Errorf("%w: %v %v", errAuth, f.Command, code)
		}
		return c, nil
	}
}

// write sends frames, numbering them with the connection's request
// sequence.
func (c *benchConn) write(frames ...wire.Frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for i := range frames {
		c.seq++
		if c.seq == 0 {
			c.seq = 1
		}
		frames[i].Sequence = c.seq
	}
	c.lastWrite.Store(time.Now().UnixNano())
	return c.link.send(frames)
}

// serve runs the reader on a goroutine of wg: every frame goes to handle,
// on that goroutine, until the connection ends. A frame's Body is only
// valid during the call. onLost is called if the connection ends before
// close was called.
func (c *benchConn) serve(wg *sync.WaitGroup, handle func(wire.Frame), onLost func(error)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(c.done)
		for {
			f, err := c.link.recv()
			if err != nil {
				c.link.close()
				if !c.closing.Load() && onLost != nil {
					onLost(err)
				}
				return
			}
			handle(f)
		}
	}()
}

// close closes the connection; the reader returns soon after.
func (c *benchConn) close() {
	c.closing.Store(true)
	c.link.close()
}

// closeAll closes conns and waits for their readers (started with serve on
// wg).
func closeAll(conns []*benchConn, wg *sync.WaitGroup) {
	for _, c := range conns {
		if c != nil {
			c.close()
		}
	}
	wg.Wait()
}

// keepAliveEvery is how often idle connections send HEARTBEAT_REQ, as
// IM-iOS-SDK does; the server drops a connection silent for 90 s.
const keepAliveEvery = 30 * time.Second

// keepAlive sends HEARTBEAT_REQ on every connection that wrote nothing for
// a keep-alive interval, until stop is closed. It runs on a goroutine of
// wg. Heartbeat answers reach the connections' handlers, which ignore them.
func keepAlive(wg *sync.WaitGroup, stop <-chan struct{}, conns []*benchConn, every time.Duration) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every / 3)
		defer t.Stop()
		body, _ := proto.Marshal(&imv1.HeartbeatRequest{})
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			cutoff := time.Now().Add(-every).UnixNano()
			for _, c := range conns {
				select {
				case <-stop:
					return
				default:
				}
				if c != nil && c.lastWrite.Load() < cutoff {
					_ = c.write(wire.Frame{Command: imv1.CommandType_CMD_HEARTBEAT_REQ, Body: body})
				}
			}
		}
	}()
}

// dialAll connects len(users) connections with at most parallel dials at
// once, calling progress after each. On the first error it closes what it
// opened and returns the error. users[i] and tokens[i] are the credentials
// of connection i.
func dialAll(ctx context.Context, d *dialer, users, tokens []string, parallel int, progress func(done int)) ([]*benchConn, error) {
	return dialEach(ctx, len(users), parallel, progress, func(ctx context.Context, i int) (*benchConn, error) {
		c, err := connect(ctx, d, i, users[i], tokens[i])
		if err != nil {
			return nil, fmt.Errorf("connection %d (%s): %w", i, users[i], err)
		}
		return c, nil
	})
}

// dialEach makes n connections with dial, at most parallel at once, each
// within 15 s, calling progress (if not nil) after each. On the first
// error it closes what it opened and returns the error.
func dialEach[C interface{ close() }](ctx context.Context, n, parallel int, progress func(done int), dial func(ctx context.Context, i int) (C, error)) ([]C, error) {
	conns := make([]C, n)
	opened := make([]bool, n)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next atomic.Int64
		done atomic.Int64
		wg   sync.WaitGroup
	)
	for range max(1, min(parallel, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				dctx, dcancel := context.WithTimeout(ctx, 15*time.Second)
				c, err := dial(dctx, i)
				dcancel()
				if err != nil {
					cancel(err)
					return
				}
				conns[i], opened[i] = c, true
				if progress != nil {
					progress(int(done.Add(1)))
				}
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		for i, c := range conns {
			if opened[i] {
				c.close()
			}
		}
		return nil, err
	}
	return conns, nil
}
