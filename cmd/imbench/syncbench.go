package main

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// syncPageSize is the most messages per conversation one BatchSync asks for
// (the protocol's maximum).
const syncPageSize = 500

// fillWindow is the filling session's window at least: imserver's default
// MaxInflight, the most sends of one connection it commits together. With
// the default -window of 8 the fill would take a store commit per 8
// messages.
const fillWindow = 256

// runSync measures one client catching up on K offline messages: a sender
// stores them while the receiver is away, then the receiver connects and
// pulls them with BatchSync, page by page. It verifies that each of the K
// arrives exactly once and in seq order.
func runSync(ctx context.Context, t target, users []benchUser, runID string, k int, p loadParams) (*Report, error) {
	if len(users) < 2 || k < 1 {
		return nil, fmt.Errorf("sync needs 2 users and at least 1 message")
	}
	sender, receiver := users[0], users[1]
	p.window = max(p.window, fillWindow)
	r := newLoadRun(p, runID)
	r.p.conns = 1
	l := new(ledger)
	l.reserve(0, k)

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
		d.pace.closed()
	}()
	deadline := time.Now().Add(max(p.duration, 10*time.Minute))
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
	p.logf("%s: stored in %.2fs; the receiver catches up", t.name, fill.Seconds())

	// Catch up: the receiver connects and pulls everything after base-1,
	// the cursor it would hold had it seen all earlier history.
	runtime.GC()
	serverPID := strconv.Itoa(t.serverPID)
	resetOK := resetPeakRSS("self") == nil
	serverResetOK := t.serverPID > 0 && resetPeakRSS(serverPID) == nil
	stopSampling := anonPeak(t.serverPID, 10*time.Millisecond)
	before := sampleUsage(t.serverPID)
	syncStart := time.Now()
	rc, err := connect(ctx, t.dialer, 1, receiver.UserID, receiver.Token)
	if err != nil {
		stopSampling()
		return nil, fmt.Errorf("receiver: %w", err)
	}
	defer rc.close()
	cursor := base - 1
	var requests, got int64
	sctx, cancel := context.WithTimeout(ctx, max(p.duration, time.Minute))
	defer cancel()
	stop := context.AfterFunc(sctx, rc.close)
	defer stop()
	var (
		reqBody []byte
		page    syncPage
		msg     inMsg
	)
	// The next page is asked for as soon as this one's cursor is read,
	// before its messages are decoded: the server encodes a page while the
	// client decodes the last, as a client catching up in the background
	// would do, instead of each side idling while the other works.
	reqBody = appendBatchSyncReq(reqBody[:0], conv, cursor, syncPageSize)
	want, err := rc.ask(imv1.CommandType_CMD_BATCH_SYNC_REQ, reqBody)
	for more := err == nil; more; requests++ {
		if requests > int64(k)+10 {
			stopSampling()
			return nil, fmt.Errorf("sync did not finish after %d requests", requests)
		}
		body, err := rc.answer(want)
		if err == nil {
			err = page.parse(body, []byte(conv))
		}
		if err != nil {
			stopSampling()
			return nil, fmt.Errorf("sync: %w", err)
		}
		if page.code != imv1.ErrorCode_ERR_SUCCESS {
			r.stats.errs.add("sync " + page.code.String())
			break
		}
		more = false
		if !page.found {
			continue // history of earlier runs with other users only
		}
		if page.syncedSeq <= cursor && page.hasMore {
			stopSampling()
			return nil, fmt.Errorf("sync made no progress at seq %d", cursor)
		}
		cursor = page.syncedSeq
		more = page.hasMore
		if more {
			// body stays valid: only the next read reuses its buffer.
			reqBody = appendBatchSyncReq(reqBody[:0], conv, cursor, syncPageSize)
			if want, err = rc.ask(imv1.CommandType_CMD_BATCH_SYNC_REQ, reqBody); err != nil {
				stopSampling()
				return nil, fmt.Errorf("sync: %w", err)
			}
		}
		err = eachSubmessage(page.messages, fConvMessages, func(info []byte) error {
			if err := parseMessageInfo(info, &msg); err != nil {
				return err
			}
			n, ok := parseMsgNum(msg.clientMsgID, r.prefix)
			if !ok {
				l.foreign()
				return nil
			}
			l.delivered(1, n, msg.seq)
			got++
			return nil
		})
		if err != nil {
			stopSampling()
			return nil, fmt.Errorf("sync: %w", err)
		}
	}
	if err != nil {
		stopSampling()
		return nil, fmt.Errorf("sync: %w", err)
	}
	elapsed := time.Since(syncStart)
	after := sampleUsage(t.serverPID)
	selfAnon, serverAnon := stopSampling()

	rep := r.report("sync", t, measurement{elapsed: fill, before: before, after: after}, l.verify())
	rep.Conns = 1
	rep.DurationSec = elapsed.Seconds()
	rep.SyncFillSec = fill.Seconds()
	rep.SyncMessages = got
	rep.SyncRequests = requests
	rep.SyncPerSec = float64(got) / elapsed.Seconds()
	rep.Delivered = got
	rep.DeliveredPerSec = rep.SyncPerSec
	if v := peakRSS("self"); resetOK && v >= 0 {
		rep.ClientPeakRSSBytes = ptr(v)
	}
	if v := peakRSS(serverPID); serverResetOK && v >= 0 {
		rep.ServerPeakRSSBytes = ptr(v)
	}
	if selfAnon >= 0 {
		rep.ClientPeakAnonBytes = ptr(selfAnon)
	}
	if serverAnon >= 0 {
		rep.ServerPeakAnonBytes = ptr(serverAnon)
	}
	// Delivery latency means nothing here: the messages waited offline.
	rep.DeliverP50Ms, rep.DeliverP90Ms, rep.DeliverP99Ms, rep.DeliverMaxMs = 0, 0, 0, 0
	return rep, nil
}

// Field numbers of the BatchSync messages (im/imv1/imv1.proto).
const (
	fSyncReqStates     = 1 // BatchSyncRequest.conversation_states
	fSyncReqMaxCount   = 2 // BatchSyncRequest.max_count_per_conversation
	fSyncStateConvID   = 1 // ConversationSyncState.conversation_id
	fSyncStateLastSeq  = 2 // ConversationSyncState.last_seq
	fSyncRspConvs      = 3 // BatchSyncResponse.conversation_messages
	fConvMsgsConvID    = 1 // ConversationMessages.conversation_id
	fConvMessages      = 2 // ConversationMessages.messages
	fConvMsgsSyncedSeq = 4
	fConvMsgsHasMore   = 5
)

// appendBatchSyncReq appends a BatchSyncRequest for one conversation.
func appendBatchSyncReq(b []byte, conv string, lastSeq int64, count int32) []byte {
	var st []byte
	st = protowire.AppendTag(st, fSyncStateConvID, protowire.BytesType)
	st = protowire.AppendString(st, conv)
	st = appendVarint(st, fSyncStateLastSeq, uint64(lastSeq))
	b = appendBytes(b, fSyncReqStates, st)
	return appendVarint(b, fSyncReqMaxCount, uint64(count))
}

// syncPage is what imbench reads of a BatchSyncResponse: its error code
// and one conversation's entry, whose messages are left encoded (they
// alias the body) to be walked one at a time.
type syncPage struct {
	code      imv1.ErrorCode
	found     bool
	messages  []byte // the ConversationMessages, encoded
	syncedSeq int64
	hasMore   bool
}

// parse reads body's error code and the entry of conversation conv.
func (pg *syncPage) parse(body, conv []byte) error {
	*pg = syncPage{}
	var ferr error
	err := eachField(body, func(num protowire.Number, typ protowire.Type, v uint64, p []byte) {
		switch {
		case num == fRspErrorCode && typ == protowire.VarintType:
			pg.code = imv1.ErrorCode(int32(v))
		case num == fSyncRspConvs && typ == protowire.BytesType && ferr == nil:
			var id []byte
			var synced int64
			var more bool
			ferr = eachField(p, func(num protowire.Number, typ protowire.Type, v uint64, q []byte) {
				switch {
				case num == fConvMsgsConvID && typ == protowire.BytesType:
					id = q
				case num == fConvMsgsSyncedSeq && typ == protowire.VarintType:
					synced = int64(v)
				case num == fConvMsgsHasMore && typ == protowire.VarintType:
					more = v != 0
				}
			})
			if ferr == nil && bytes.Equal(id, conv) {
				pg.found, pg.messages, pg.syncedSeq, pg.hasMore = true, p, synced, more
			}
		}
	})
	if err != nil {
		return err
	}
	return ferr
}

// ask sends a request with body and returns its sequence, for answer. It
// is for connections without a reader goroutine (serve not called).
func (c *benchConn) ask(cmd imv1.CommandType, body []byte) (uint32, error) {
	frames := []wire.Frame{{Command: cmd, Body: body}}
	if err := c.write(frames...); err != nil {
		return 0, err
	}
	return frames[0].Sequence, nil
}

// answer reads until the answer with sequence want and returns its body,
// which aliases the connection's buffer until the next read; other frames
// that arrive meanwhile are dropped.
func (c *benchConn) answer(want uint32) ([]byte, error) {
	for {
		f, err := c.link.recv()
		if err != nil {
			return nil, err
		}
		if f.Sequence != want {
			continue
		}
		if f.Command == imv1.CommandType_CMD_ERROR_RSP {
			return nil, fmt.Errorf("server answered %v", errorCodeOf(f.Body))
		}
		return f.Body, nil
	}
}
