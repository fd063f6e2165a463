package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imserver/imserver/im/wire"
)

// benchGroup is one group of a group run: its id and its members, the
// first of which owns it. The first senders members send.
type benchGroup struct {
	id      string
	members []benchUser
}

// groupShape is the layout of a group run.
type groupShape struct {
	groups, members, senders int
}

// conns is how many connections the shape takes: one per member.
func (s groupShape) conns() int { return s.groups * s.members }

// splitGroups deals users out into s.groups groups of s.members, without
// ids yet.
func splitGroups(users []benchUser, s groupShape) ([]benchGroup, error) {
	if len(users) < s.conns() {
		return nil, fmt.Errorf("group needs %d users, got %d", s.conns(), len(users))
	}
	groups := make([]benchGroup, s.groups)
	for i := range groups {
		groups[i].members = users[i*s.members : (i+1)*s.members]
	}
	return groups, nil
}

// runGroup runs the group scenario against t, whose groups exist already:
// every member connects, the first s.senders of each group send to it, and
// every message is verified delivered to every other member exactly once,
// in seq order.
func runGroup(ctx context.Context, t target, groups []benchGroup, s groupShape, runID string, p loadParams) (*Report, error) {
	if s.members < 2 || s.senders < 1 || s.senders > s.members || len(groups) != s.groups {
		return nil, fmt.Errorf("group: bad layout %+v for %d groups", s, len(groups))
	}
	p.conns = s.conns()
	r := newLoadRun(p, runID)
	names, tokens := make([]string, 0, p.conns), make([]string, 0, p.conns)
	for _, g := range groups {
		if len(g.members) != s.members {
			return nil, fmt.Errorf("group %s has %d members, not %d", g.id, len(g.members), s.members)
		}
		for _, u := range g.members {
			names, tokens = append(names, u.UserID), append(tokens, u.Token)
		}
	}
	p.logf("%s: connecting %d members of %d groups over %s", t.name, p.conns, s.groups, t.dialer.transport)
	dialStart := time.Now()
	conns, err := dialAll(ctx, t.dialer, names, tokens, p.dialParallel, nil)
	if err != nil {
		return nil, err
	}
	p.logf("%s: %d members connected in %s", t.name, p.conns, time.Since(dialStart).Round(time.Millisecond))

	for gi, g := range groups {
		gb := newGroupBook(s.members)
		r.books = append(r.books, gb)
		conv, id := []byte(wire.GroupConversationID(g.id)), []byte(g.id)
		for j := range s.members {
			slot := -1
			if j < s.senders {
				slot = gi*s.senders + j
			}
			c := conns[gi*s.members+j]
			r.conns = append(r.conns, r.newConn(c, gb.member(j), slot, conv, nil, id))
		}
	}
	r.nsend = s.groups * s.senders
	m, err := r.drive(ctx, t, conns)
	if err != nil {
		return nil, err
	}
	rep := r.report("group", t, m, r.verdict())
	rep.Groups, rep.Members, rep.Senders = s.groups, s.members, s.senders
	return rep, ctx.Err()
}

// createGroups creates groups through the server's HTTP API, parallel at
// a time, each owned by its first member, and sets their ids. The server
// appends a group_created notice to each new group's conversation and
// pushes it to the members online; imbench creates the groups before
// connecting them, so that its connections see only the run's messages.
func (s *userSource) createGroups(ctx context.Context, groups []benchGroup, parallel int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next, done atomic.Int64
		wg         sync.WaitGroup
	)
	start := time.Now()
	for range max(1, min(parallel, len(groups))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(groups) || ctx.Err() != nil {
					return
				}
				id, err := s.createGroup(ctx, fmt.Sprintf("bench-%s-%d", s.runID, i), groups[i].members)
				if err != nil {
					cancel(fmt.Errorf("create group %d: %w", i, err))
					return
				}
				groups[i].id = id
				if d := done.Add(1); d%100 == 0 {
					s.log("created %d/%d groups (%.0f/s)", d, len(groups), float64(d)/time.Since(start).Seconds())
				}
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}

// createGroup creates one group named name, owned by members[0], with the
// others as members, and returns its id.
func (s *userSource) createGroup(ctx context.Context, name string, members []benchUser) (string, error) {
	ids := make([]string, 0, len(members)-1)
	for _, u := range members[1:] {
		ids = append(ids, u.UserID)
	}
	var created struct {
		GroupID string `json:"groupID"`
	}
	err := s.call(ctx, "/api/group/create", members[0].Token, map[string]any{"groupName": name, "memberUserIDs": ids}, &created)
	if err != nil {
		// By default imserver lets a user add to groups only those it has
		// exchanged a message with, and 60 a minute; bench users are
		// strangers who make many groups.
		return "", fmt.Errorf("%w (start imserver with -group-add-anyone -group-adds-per-minute -1 to let bench users make groups)", err)
	}
	if created.GroupID == "" {
		return "", fmt.Errorf("the answer has no groupID")
	}
	return created.GroupID, nil
}
