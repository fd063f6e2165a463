package client

import (
	"context"
	"fmt"
	"sync"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// conn is one network connection of a Client: its transport, the requests
// waiting for their response, and the sequence counter. A conn is never
// reused: a reconnect makes a new one.
type conn struct {
	t    transport
	done chan struct{} // closed when the reader goroutine has returned

	wmu sync.Mutex // the one writer path: serializes writeFrame

	mu      sync.Mutex
	seq     uint32
	pending map[uint32]*call // nil once closed
	err     error            // why the conn ended; nil while it is up
}

// call is a request waiting for its response.
type call struct {
	done chan struct{} // closed when f or err is set
	f    wire.Frame
	err  error
}

func newConn(t transport) *conn {
	return &conn{t: t, done: make(chan struct{}), pending: make(map[uint32]*call)}
}

// nextSeq returns the next request sequence; 0 is skipped because it marks
// pushes. Called with cn.mu held.
func (cn *conn) nextSeq() uint32 {
	cn.seq++
	if cn.seq == 0 {
		cn.seq = 1
	}
	return cn.seq
}

// close ends the conn with err (the first error wins), fails every request
// still waiting, and closes the transport, which makes the reader return.
func (cn *conn) close(err error) {
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return
	}
	cn.err = err
	pending := cn.pending
	cn.pending = nil
	cn.mu.Unlock()
	cn.t.close()
	for _, c := range pending {
		c.err = err
		close(c.done)
	}
}

// cause returns why the conn ended, or nil while it is up.
func (cn *conn) cause() error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.err
}

// write writes f. A failed write may have left part of a frame on the wire,
// so it ends the conn.
func (cn *conn) write(ctx context.Context, f wire.Frame) error {
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	if err := cn.cause(); err != nil {
		return err
	}
	if err := cn.t.writeFrame(ctx, f); err != nil {
		err = fmt.Errorf("%w: write: %w", ErrConnLost, err)
		cn.close(err)
		return err
	}
	return nil
}

// send writes a frame that expects no response, under a sequence of its own.
func (cn *conn) send(ctx context.Context, cmd imv1.CommandType, body []byte) error {
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return cn.err
	}
	seq := cn.nextSeq()
	cn.mu.Unlock()
	return cn.write(ctx, wire.Frame{Command: cmd, Sequence: seq, Body: body})
}

// roundTrip writes a request and waits for the frame that echoes its
// sequence, whatever its command.
func (cn *conn) roundTrip(ctx context.Context, cmd imv1.CommandType, body []byte) (wire.Frame, error) {
	c := &call{done: make(chan struct{})}
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return wire.Frame{}, cn.err
	}
	seq := cn.nextSeq()
	cn.pending[seq] = c
	cn.mu.Unlock()

	if err := cn.write(ctx, wire.Frame{Command: cmd, Sequence: seq, Body: body}); err != nil {
		cn.forget(seq)
		return wire.Frame{}, err
	}
	select {
	case <-c.done:
		return c.f, c.err
	case <-ctx.Done():
		cn.forget(seq)
		return wire.Frame{}, ctx.Err()
	}
}

func (cn *conn) forget(seq uint32) {
	cn.mu.Lock()
	delete(cn.pending, seq)
	cn.mu.Unlock()
}

// complete hands a response to the request waiting for it. It reports false
// when none waits (it timed out, or the server echoed a bad sequence).
func (cn *conn) complete(f wire.Frame) bool {
	cn.mu.Lock()
	c, ok := cn.pending[f.Sequence]
	if ok {
		delete(cn.pending, f.Sequence)
	}
	cn.mu.Unlock()
	if ok {
		c.f = f
		close(c.done)
	}
	return ok
}
