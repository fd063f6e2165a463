package sqlstore_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/sqlstore"
)

// Several server processes share one database: each has its own pool and
// its own Store. These tests stand two of them up on one database and make
// them append to the same conversations at once.

func TestPostgresTwoProcessesShareSeqs(t *testing.T) {
	t.Parallel()
	testTwoProcesses(t, postgresBackend)
}
func TestMySQLTwoProcessesShareSeqs(t *testing.T) {
	t.Parallel()
	testTwoProcesses(t, mysqlBackend)
}

func TestSQLiteTwoProcessesShareSeqs(t *testing.T) {
	t.Parallel()
	testTwoProcesses(t, sqliteBackend)
}

// sent is what one AppendMessages call was given and answered, per request.
type sent struct {
	in  im.Message
	res im.AppendResult
}

func testTwoProcesses(t *testing.T, b backend) {
	dsn := b.fresh(t)
	var stores [2]*sqlstore.Store
	var wg sync.WaitGroup
	for i := range stores {
		db := openDB(t, b.driver, dsn)
		wg.Go(func() { stores[i] = b.newStore(t, db) }) // migrations race too
	}
	wg.Wait()
	require.NotNil(t, stores[0])
	require.NotNil(t, stores[1])

	const (
		workersPerStore = 8
		batches         = 25
		perBatch        = 3
		racerRounds     = 20
	)
	convs := []string{"group_shared0", "group_shared1", "group_shared2"}

	var (
		mu   sync.Mutex
		log  []sent
		fail = func(format string, args ...any) { t.Errorf(format, args...) }
	)
	record := func(batch []im.AppendRequest, res []im.AppendResult) {
		mu.Lock()
		defer mu.Unlock()
		for i := range batch {
			log = append(log, sent{batch[i].Message, res[i]})
		}
	}
	appendBatch := func(s *sqlstore.Store, batch []im.AppendRequest) bool {
		res, err := s.AppendMessages(t.Context(), batch)
		if err != nil {
			fail("AppendMessages: %v", err)
			return false
		}
		if len(res) != len(batch) {
			fail("AppendMessages: %d results for %d requests", len(res), len(batch))
			return false
		}
		record(batch, res)
		return true
	}
	message := func(conv, sender, cmid, server string) im.Message {
		return im.Message{
			ConversationID: conv, ServerID: server, SenderID: sender, ClientMsgID: cmid,
			Type: im.TextMessage, Content: []byte(server), CreatedAt: time.Now(),
		}
	}

	start := make(chan struct{})
	// Workers: each sends its own messages, every batch spanning several
	// conversations, so that the two stores lock rows of the same
	// conversations in one transaction.
	for w := range 2 * workersPerStore {
		s := stores[w%2]
		wg.Go(func() {
			<-start
			sender := fmt.Sprintf("w%02d", w)
			for k := range batches {
				batch := make([]im.AppendRequest, perBatch)
				for j := range batch {
					conv := convs[(w+k+j)%len(convs)]
					cmid := fmt.Sprintf("%03d-%d", k, j)
					batch[j] = im.AppendRequest{
						Message: message(conv, sender, cmid, sender+"/"+cmid),
						Members: []string{"alice", sender},
					}
				}
				if !appendBatch(s, batch) {
					return
				}
			}
		})
	}
	// Racers: both stores send the same (sender, client_msg_id) at the
	// same moment, into the same conversation in even rounds and into
	// different ones in odd rounds. Exactly one may be stored.
	rounds := make([]sync.WaitGroup, racerRounds)
	for r := range rounds {
		rounds[r].Add(len(stores))
	}
	for i := range stores {
		wg.Go(func() {
			<-start
			failed := false
			for r := range racerRounds {
				// Meet the other racer; keep meeting it after a failure,
				// so that it does not wait forever.
				rounds[r].Done()
				rounds[r].Wait()
				if failed {
					continue
				}
				conv := convs[r%len(convs)]
				if r%2 == 1 && i == 1 {
					conv = convs[(r+1)%len(convs)]
				}
				cmid := fmt.Sprintf("race%03d", r)
				m := message(conv, "racer", cmid, fmt.Sprintf("racer/%s/store%d", cmid, i))
				failed = !appendBatch(stores[i], []im.AppendRequest{{Message: m, Members: []string{"alice"}}})
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}

	// Every request got a result without an error; the workers' messages
	// are all new; each racer round stored exactly one message and both
	// racers were answered with it.
	type key struct{ sender, cmid string }
	byKey := make(map[key][]sent)
	for _, e := range log {
		require.NoError(t, e.res.Err)
		k := key{e.in.SenderID, e.in.ClientMsgID}
		byKey[k] = append(byKey[k], e)
	}
	stored := make(map[key]im.Message) // what the stores reported as stored
	for k, es := range byKey {
		var winners []im.Message
		for _, e := range es {
			if !e.res.Duplicate {
				winners = append(winners, e.res.Message)
			}
		}
		require.Len(t, winners, 1, "%v: %d requests, want exactly one stored", k, len(es))
		w := winners[0]
		for _, e := range es {
			require.Equal(t, w.ServerID, e.res.Message.ServerID, "%v: answers disagree", k)
			require.Equal(t, w.Seq, e.res.Message.Seq, "%v: answers disagree", k)
			require.Equal(t, w.ConversationID, e.res.Message.ConversationID, "%v: answers disagree", k)
		}
		if k.sender != "racer" {
			require.Len(t, es, 1, "%v sent once", k)
		}
		stored[k] = w
	}
	require.Len(t, stored, 2*workersPerStore*batches*perBatch+racerRounds)

	// Each conversation holds exactly 1..N, N is its MaxSeq, every stored
	// message is the one reported, and each worker's messages are in the
	// order it sent them.
	seen := make(map[key]bool)
	total := 0
	for _, conv := range convs {
		ms, err := stores[0].Messages(t.Context(), conv, 1, 0, 100_000)
		require.NoError(t, err)
		c, err := stores[1].Conversation(t.Context(), conv)
		require.NoError(t, err)
		require.Equal(t, int64(len(ms)), c.MaxSeq, conv)
		last := make(map[string]string)
		for i, m := range ms {
			require.Equal(t, int64(i+1), m.Seq, "%s: seqs not exactly 1..N", conv)
			k := key{m.SenderID, m.ClientMsgID}
			require.False(t, seen[k], "%v stored twice", k)
			seen[k] = true
			want, ok := stored[k]
			require.True(t, ok, "%v stored but never reported as stored", k)
			require.Equal(t, want.ServerID, m.ServerID, "%v", k)
			require.Equal(t, want.Seq, m.Seq, "%v", k)
			require.Equal(t, want.ConversationID, m.ConversationID, "%v", k)
			if m.SenderID != "racer" {
				require.Less(t, last[m.SenderID], m.ClientMsgID, "%s: %s's messages out of order", conv, m.SenderID)
				last[m.SenderID] = m.ClientMsgID
			}
		}
		total += len(ms)
	}
	require.Equal(t, len(stored), total, "messages stored in all conversations")

	// The conversations' members came from whichever append created each.
	cs, err := stores[1].UserConversations(t.Context(), "alice")
	require.NoError(t, err)
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	slices.Sort(ids)
	require.Equal(t, convs, ids)
}
