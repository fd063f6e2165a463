package main

import (
	"context"
	"fmt"
	"time"

	"github.com/imserver/imserver/im/wire"
)

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
	r := newLoadRun(p, runID)
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
		r.books = append(r.books, l)
		a, b := conns[2*pair], conns[2*pair+1]
		conv := []byte(wire.SingleConversationID(a.user, b.user))
		r.conns = append(r.conns,
			r.newConn(a, pairEnd{l, 0}, 2*pair, conv, []byte(b.user), nil),
			r.newConn(b, pairEnd{l, 1}, 2*pair+1, conv, []byte(a.user), nil))
	}
	r.nsend = len(r.conns)
	m, err := r.drive(ctx, t, conns)
	if err != nil {
		return nil, err
	}
	return r.report("direct", t, m, r.verdict()), ctx.Err()
}

// pairEnd is one side of a direct pair's ledger, as a connection's tally.
type pairEnd struct {
	l    *ledger
	side int
}

func (e pairEnd) sent(at int64) int                    { return e.l.sent(e.side, at) }
func (e pairEnd) acked(n int, seq int64) (int64, bool) { return e.l.ack(e.side, n, seq) }
func (e pairEnd) refused(n int) bool                   { return e.l.refuse(e.side, n) }
func (e pairEnd) delivered(n int, seq int64)           { e.l.delivered(e.side, n, seq) }
func (e pairEnd) foreign()                             { e.l.foreign() }
