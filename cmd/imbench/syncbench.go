package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// syncPageSize is the most messages per conversation one BatchSync asks for
// (the protocol's maximum).
const syncPageSize = 500

// runSync measures one client catching up on K offline messages: a sender
// stores them while the receiver is away, then the receiver connects and
// pulls them with BatchSync, page by page. It verifies that each of the K
// arrives exactly once and in seq order.
func runSync(ctx context.Context, t target, users []benchUser, runID string, k int, p loadParams) (*Report, error) {
	if len(users) < 2 || k < 1 {
		return nil, fmt.Errorf("sync needs 2 users and at least 1 message")
	}
	sender, receiver := users[0], users[1]
	r := newLoadRun(p, runID)
	r.p.conns = 1
	l := new(ledger)

	// Fill: the sender stores K messages, closed-loop, while the receiver
	// is offline.
	conns, err := dialAll(ctx, t.dialer, []string{sender.UserID}, []string{sender.Token}, 1, nil)
	if err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	conv := wire.SingleConversationID(sender.UserID, receiver.UserID)
	d := r.newConn(conns[0], pairEnd{l, 0}, 0, []byte(conv), []byte(receiver.UserID), nil)
	d.limit = k
	r.conns, r.nsend = []*loadConn{d}, 1
	var readers, workers sync.WaitGroup
	d.serve(&readers, d.handle, func(error) { r.stats.errs.add("connection lost") })
	p.logf("%s: storing %d messages for an offline receiver", t.name, k)
	r.stats.phase.Store(phaseMeasure)
	fillStart := time.Now()
	workers.Add(1)
	go func() {
		defer workers.Done()
		d.closedLoop()
	}()
	deadline := time.Now().Add(max(p.duration, time.Minute))
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if unacked, _ := l.outstanding(); unacked == 0 && d.sentCount() == k {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	fill := time.Since(fillStart)
	close(r.stop)
	workers.Wait()
	closeAll(conns, &readers)
	r.stats.phase.Store(phaseDrain)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	base, ok := l.firstSeq(0)
	if !ok {
		return r.report("sync", t, measurement{elapsed: fill}, l.verify()), fmt.Errorf("no message was acknowledged")
	}

	// Catch up: the receiver connects and pulls everything after base-1,
	// the cursor it would hold had it seen all earlier history.
	before := sampleUsage(t.serverPID)
	syncStart := time.Now()
	rc, err := connect(ctx, t.dialer, 1, receiver.UserID, receiver.Token)
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	defer rc.close()
	cursor := base - 1
	var requests, got int64
	sctx, cancel := context.WithTimeout(ctx, max(p.duration, time.Minute))
	defer cancel()
	stop := context.AfterFunc(sctx, rc.close)
	defer stop()
	for more := true; more; requests++ {
		if requests > int64(k)+10 {
			return nil, fmt.Errorf("sync did not finish after %d requests", requests)
		}
		var rsp imv1.BatchSyncResponse
		err := rc.roundTrip(imv1.CommandType_CMD_BATCH_SYNC_REQ, &imv1.BatchSyncRequest{
			ConversationStates:      []*imv1.ConversationSyncState{{ConversationId: conv, LastSeq: cursor}},
			MaxCountPerConversation: syncPageSize,
		}, &rsp)
		if err != nil {
			return nil, fmt.Errorf("sync: %w", err)
		}
		if rsp.ErrorCode != imv1.ErrorCode_ERR_SUCCESS {
			r.stats.errs.add("sync " + rsp.ErrorCode.String())
			break
		}
		more = false
		for _, cm := range rsp.ConversationMessages {
			if cm.ConversationId != conv {
				continue // history of earlier runs with other users
			}
			for _, m := range cm.Messages {
				n, ok := parseMsgNum([]byte(m.ClientMsgId), r.prefix)
				if !ok {
					l.foreign()
					continue
				}
				l.delivered(1, n, m.Seq)
				got++
			}
			if cm.SyncedSeq <= cursor && cm.HasMore {
				return nil, fmt.Errorf("sync made no progress at seq %d", cursor)
			}
			cursor = cm.SyncedSeq
			more = cm.HasMore
		}
	}
	elapsed := time.Since(syncStart)
	after := sampleUsage(t.serverPID)

	rep := r.report("sync", t, measurement{elapsed: fill, before: before, after: after}, l.verify())
	rep.Conns = 1
	rep.DurationSec = elapsed.Seconds()
	rep.SyncMessages = got
	rep.SyncRequests = requests
	rep.SyncPerSec = float64(got) / elapsed.Seconds()
	rep.Delivered = got
	rep.DeliveredPerSec = rep.SyncPerSec
	// Delivery latency means nothing here: the messages waited offline.
	rep.DeliverP50Ms, rep.DeliverP90Ms, rep.DeliverP99Ms, rep.DeliverMaxMs = 0, 0, 0, 0
	return rep, nil
}

// roundTrip sends req and decodes the answer with the same sequence into
// rsp. It is for connections without a reader goroutine (serve not
// called); other frames that arrive meanwhile are dropped.
func (c *benchConn) roundTrip(cmd imv1.CommandType, req, rsp proto.Message) error {
	body, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	frames := []wire.Frame{{Command: cmd, Body: body}}
	if err := c.write(frames...); err != nil {
		return err
	}
	want := frames[0].Sequence
	for {
		f, err := c.link.recv()
		if err != nil {
			return err
		}
		if f.Sequence != want {
			continue
		}
		if f.Command == imv1.CommandType_CMD_ERROR_RSP {
			return fmt.Errorf("server answered %v", errorCodeOf(f.Body))
		}
		return proto.Unmarshal(f.Body, rsp)
	}
}
