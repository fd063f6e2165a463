package sqlstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/sqlstore"
	"github.com/imserver/imserver/store/sqlstore/sqltest"
)

func TestSQLiteReadStates(t *testing.T)   { testReadStates(t, sqliteBackend) }
func TestPostgresReadStates(t *testing.T) { testReadStates(t, postgresBackend) }
func TestMySQLReadStates(t *testing.T)    { testReadStates(t, mysqlBackend) }
func TestMySQLInterpolateParamsReadStates(t *testing.T) {
	testReadStates(t, mysqlInterpolatedBackend)
}

// need skips t when b's database is not configured, then lets t run in
// parallel.
func need(t *testing.T, b backend) {
	if b.env != "" {
		sqltest.Need(t, b.env)
	}
	t.Parallel()
}

// appendBatch appends msgs in one call and returns the stored messages,
// failing t on any error.
func appendBatch(t *testing.T, s *sqlstore.Store, msgs ...im.Message) []im.Message {
	t.Helper()
	batch := make([]im.AppendRequest, len(msgs))
	for i, m := range msgs {
		if m.ServerID == "" {
			m.ServerID = "srv-" + m.SenderID + "-" + m.ClientMsgID
		}
		if m.Type == 0 {
			m.Type = im.TextMessage
		}
		batch[i] = im.AppendRequest{Message: m, Members: []string{m.SenderID}}
	}
	res, err := s.AppendMessages(t.Context(), batch)
	require.NoError(t, err)
	out := make([]im.Message, len(res))
	for i, r := range res {
		require.NoError(t, r.Err)
		out[i] = r.Message
	}
	return out
}

func msg(conv, sender, cmid string) im.Message {
	return im.Message{ConversationID: conv, SenderID: sender, ClientMsgID: cmid, Content: []byte("text " + cmid)}
}

func state(user, conv string, read, delivered int64) im.ReadState {
	return im.ReadState{UserID: user, ConversationID: conv, Read: read, Delivered: delivered}
}

func testReadStates(t *testing.T, b backend) {
	need(t, b)
	s, _ := b.open(t)
	ctx := t.Context()

	t.Run("SenderReads", func(t *testing.T) {
		// Two conversations in one batch, two senders, several messages
		// each: each sender's Read is her newest seq in each.
		appendBatch(t, s,
			msg("group_sr1", "ann", "1"), msg("group_sr1", "ben", "2"), msg("group_sr2", "ann", "3"),
			msg("group_sr1", "ann", "4"), msg("group_sr1", "ben", "5"), msg("group_sr1", "cat", "6"))
		got, err := s.ReadStates(ctx, "ann", []string{"group_sr1", "group_sr2", "group_none"})
		require.NoError(t, err)
		require.Equal(t, []im.ReadState{state("ann", "group_sr1", 3, 0), state("ann", "group_sr2", 1, 0), state("ann", "group_none", 0, 0)}, got)
		got, err = s.ReadStates(ctx, "ben", []string{"group_sr1", "group_sr2"})
		require.NoError(t, err)
		require.Equal(t, []im.ReadState{state("ben", "group_sr1", 4, 0), state("ben", "group_sr2", 0, 0)}, got)

		// A later batch moves it on; a resend (a duplicate) stores
		// nothing and changes nothing.
		appendBatch(t, s, msg("group_sr1", "ben", "7"))
		dup := appendBatch(t, s, msg("group_sr1", "ann", "1"))
		require.Equal(t, int64(1), dup[0].Seq)
		got, err = s.ReadStates(ctx, "ann", []string{"group_sr1"})
		require.NoError(t, err)
		require.Equal(t, int64(3), got[0].Read)
		got, err = s.ReadStates(ctx, "ben", []string{"group_sr1"})
		require.NoError(t, err)
		require.Equal(t, int64(6), got[0].Read)

		all, err := s.ConversationReadStates(ctx, "group_sr1")
		require.NoError(t, err)
		require.ElementsMatch(t, []im.ReadState{state("ann", "group_sr1", 3, 0), state("ben", "group_sr1", 6, 0), state("cat", "group_sr1", 5, 0)}, all)
	})

	t.Run("GroupNotice", func(t *testing.T) {
		// A group's notice is appended in the change's transaction, and
		// its sender has read it like any message of hers.
		g := im.Group{ID: "rsg", Name: "G", OwnerID: "owner"}
		r, err := s.CreateGroup(ctx, g, []im.GroupMember{{UserID: "owner", Role: im.RoleOwner}}, im.AppendRequest{Message: im.Message{
			ConversationID: im.GroupConversationID("rsg"), ServerID: "n1", SenderID: "owner", ClientMsgID: "n1", Type: im.TextMessage,
		}})
		require.NoError(t, err)
		got, err := s.ReadStates(ctx, "owner", []string{im.GroupConversationID("rsg")})
		require.NoError(t, err)
		require.Equal(t, r.Message.Seq, got[0].Read)
	})

	t.Run("Update", func(t *testing.T) {
		conv := "group_up"
		for i := range 5 {
			appendBatch(t, s, msg(conv, "writer", "up"+strconv.Itoa(i)))
		}
		// Read and Delivered move apart; 0 leaves a position.
		got, err := s.UpdateReadStates(ctx, []im.ReadState{state("u1", conv, 2, 0), state("u2", conv, 0, 3)})
		require.NoError(t, err)
		require.Equal(t, []im.ReadState{state("u1", conv, 2, 0), state("u2", conv, 0, 3)}, got)

		// Forward only: lower values keep the stored ones, higher ones
		// are clamped to max_seq (5).
		got, err = s.UpdateReadStates(ctx, []im.ReadState{state("u1", conv, 1, 4), state("u2", conv, 9, 1)})
		require.NoError(t, err)
		require.Equal(t, []im.ReadState{state("u1", conv, 2, 4), state("u2", conv, 5, 3)}, got)

		// Several states for one pair combine, and each input gets the
		// combined result, in input order; a state of zeros reads.
		got, err = s.UpdateReadStates(ctx, []im.ReadState{
			state("u3", conv, 3, 0), state("u1", conv, 0, 0), state("u3", conv, 1, 2), state("u3", conv, 0, 0),
		})
		require.NoError(t, err)
		require.Equal(t, []im.ReadState{state("u3", conv, 3, 2), state("u1", conv, 2, 4), state("u3", conv, 3, 2), state("u3", conv, 3, 2)}, got)

		// A conversation without messages keeps 0, and gets no row.
		got, err = s.UpdateReadStates(ctx, []im.ReadState{state("u1", "group_empty", 3, 3), state("u1", conv, 0, 5)})
		require.NoError(t, err)
		require.Equal(t, []im.ReadState{state("u1", "group_empty", 0, 0), state("u1", conv, 2, 5)}, got)
		empty, err := s.ConversationReadStates(ctx, "group_empty")
		require.NoError(t, err)
		require.Empty(t, empty)

		// The writer's Read came from her messages; a receipt below it
		// changes nothing, Delivered is her own.
		got, err = s.UpdateReadStates(ctx, []im.ReadState{state("writer", conv, 1, 1)})
		require.NoError(t, err)
		require.Equal(t, []im.ReadState{state("writer", conv, 5, 1)}, got)

		// What was returned is what is stored.
		rs, err := s.ReadStates(ctx, "u1", []string{conv, "group_empty", conv})
		require.NoError(t, err)
		require.Equal(t, []im.ReadState{state("u1", conv, 2, 5), state("u1", "group_empty", 0, 0), state("u1", conv, 2, 5)}, rs)
		all, err := s.ConversationReadStates(ctx, conv)
		require.NoError(t, err)
		require.ElementsMatch(t, []im.ReadState{
			state("writer", conv, 5, 1), state("u1", conv, 2, 5), state("u2", conv, 5, 3), state("u3", conv, 3, 2),
		}, all)

		empty2, err := s.UpdateReadStates(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, empty2)
	})

	t.Run("MentionedAndUpdatedAt", func(t *testing.T) {
		conv := "group_mu"
		appendBatch(t, s, msg(conv, "w", "mu1"), msg(conv, "w", "mu2"), msg(conv, "w", "mu3"))
		t1 := time.Date(2026, 5, 1, 10, 0, 0, 123456789, time.FixedZone("X", 7200))
		t2, t3 := t1.Add(time.Second), t1.Add(time.Minute)
		// Several states of one pair: the greatest of each position, the
		// latest time among those that give a position; one that gives
		// none (a read of the state) does not count.
		got, err := s.UpdateReadStates(ctx, []im.ReadState{
			{UserID: "m", ConversationID: conv, Mentioned: 9, UpdatedAt: t2},
			{UserID: "m", ConversationID: conv, Read: 1, UpdatedAt: t1},
			{UserID: "m", ConversationID: conv, UpdatedAt: t3},
		})
		require.NoError(t, err)
		want := im.ReadState{UserID: "m", ConversationID: conv, Read: 1, Mentioned: 3, UpdatedAt: t2.Truncate(time.Microsecond).UTC()}
		require.Equal(t, []im.ReadState{want, want, want}, got)
		// Nothing grows: the time stays; one position grows: it moves.
		got, err = s.UpdateReadStates(ctx, []im.ReadState{{UserID: "m", ConversationID: conv, Read: 1, Mentioned: 2, UpdatedAt: t3}})
		require.NoError(t, err)
		require.Equal(t, []im.ReadState{want}, got)
		got, err = s.UpdateReadStates(ctx, []im.ReadState{{UserID: "m", ConversationID: conv, Read: 1, Delivered: 1, UpdatedAt: t3}})
		require.NoError(t, err)
		want.Delivered, want.UpdatedAt = 1, t3.Truncate(time.Microsecond).UTC()
		require.Equal(t, []im.ReadState{want}, got)
		// Her own message moves Read, not the time.
		appendBatch(t, s, msg(conv, "m", "mu4"))
		rs, err := s.ReadStates(ctx, "m", []string{conv})
		require.NoError(t, err)
		want.Read = 4
		require.Equal(t, []im.ReadState{want}, rs)
		// A mention alone lists the user.
		_, err = s.UpdateReadStates(ctx, []im.ReadState{{UserID: "n", ConversationID: conv, Mentioned: 2}})
		require.NoError(t, err)
		all, err := s.ConversationReadStates(ctx, conv)
		require.NoError(t, err)
		require.ElementsMatch(t, []im.ReadState{state("w", conv, 3, 0), want, {UserID: "n", ConversationID: conv, Mentioned: 2}}, all)
	})

	t.Run("Invalid", func(t *testing.T) {
		conv := "group_inv"
		appendBatch(t, s, msg(conv, "w", "inv1"), msg(conv, "w", "inv2"))
		long := string(make([]byte, im.MaxIDLength+1))
		for name, bad := range map[string]im.ReadState{
			"empty user":         state("", conv, 1, 1),
			"long user":          state(long, conv, 1, 1),
			"unprintable user":   state("a\x00b", conv, 1, 1),
			"empty conversation": state("v", "", 1, 1),
			"unprintable conv":   state("v", "group_\n", 1, 1),
			"negative read":      state("v", conv, -1, 1),
			"negative delivered": state("v", conv, 1, -1),
			"negative mentioned": {UserID: "v", ConversationID: conv, Mentioned: -1},
		} {
			got, err := s.UpdateReadStates(ctx, []im.ReadState{state("v", conv, 2, 2), bad})
			require.ErrorIs(t, err, im.ErrInvalidArgument, name)
			require.Nil(t, got, name)
		}
		rs, err := s.ReadStates(ctx, "v", []string{conv})
		require.NoError(t, err)
		require.Equal(t, []im.ReadState{state("v", conv, 0, 0)}, rs, "nothing of a refused batch is stored")
	})

	t.Run("Reads", func(t *testing.T) {
		// Ids that no call could have stored read as zeros, with the ids
		// as given; no conversations, no states.
		rs, err := s.ReadStates(ctx, "", []string{"group_sr1"})
		require.NoError(t, err)
		require.Equal(t, []im.ReadState{state("", "group_sr1", 0, 0)}, rs)
		rs, err = s.ReadStates(ctx, "ann", []string{"", "group_sr1"})
		require.NoError(t, err)
		require.Equal(t, []im.ReadState{state("ann", "", 0, 0), state("ann", "group_sr1", 3, 0)}, rs)
		rs, err = s.ReadStates(ctx, "ann", nil)
		require.NoError(t, err)
		require.Empty(t, rs)
		cs, err := s.ConversationReadStates(ctx, "")
		require.NoError(t, err)
		require.Empty(t, cs)
		cs, err = s.ConversationReadStates(ctx, "group_unknown")
		require.NoError(t, err)
		require.Empty(t, cs)
	})

	t.Run("ManyConversations", func(t *testing.T) {
		// More conversations than one statement takes on MySQL and
		// SQLite, in one batch of receipts and one read.
		const n = 1200
		var msgs []im.Message
		var states []im.ReadState
		var convs []string
		for i := range n {
			conv := fmt.Sprintf("group_many%04d", i)
			convs = append(convs, conv)
			msgs = append(msgs, msg(conv, "poster", "many"+strconv.Itoa(i)))
			states = append(states, state("reader", conv, int64(i%2+1), int64(i%3)))
		}
		appendBatch(t, s, msgs...)
		got, err := s.UpdateReadStates(ctx, states)
		require.NoError(t, err)
		rs, err := s.ReadStates(ctx, "reader", convs)
		require.NoError(t, err)
		require.Len(t, got, n)
		for i := range n {
			want := state("reader", convs[i], 1, min(int64(i%3), 1)) // clamped to max_seq 1
			require.Equal(t, want, got[i], "update %d", i)
			require.Equal(t, want, rs[i], "read %d", i)
		}
		rs, err = s.ReadStates(ctx, "poster", convs)
		require.NoError(t, err)
		for i := range n {
			require.Equal(t, state("poster", convs[i], 1, 0), rs[i])
		}
	})

	t.Run("Cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.UpdateReadStates(cctx, []im.ReadState{state("x", "group_sr1", 1, 1)})
		require.ErrorIs(t, err, context.Canceled)
		_, err = s.ReadStates(cctx, "x", []string{"group_sr1"})
		require.ErrorIs(t, err, context.Canceled)
		_, err = s.ConversationReadStates(cctx, "group_sr1")
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestSQLiteReadStatesAcrossStores(t *testing.T)   { testReadStatesAcrossStores(t, sqliteBackend) }
func TestPostgresReadStatesAcrossStores(t *testing.T) { testReadStatesAcrossStores(t, postgresBackend) }
func TestMySQLReadStatesAcrossStores(t *testing.T)    { testReadStatesAcrossStores(t, mysqlBackend) }

// testReadStatesAcrossStores: two Stores, each with its own pool, on one
// database, as two processes. Senders append to shared conversations
// through both, and after each append the other store must already report
// the sender's Read at the seq; readers send receipts, some past the
// newest message, through both, and each sees its positions never go
// back. At the end every position is exactly the greatest of what the
// senders sent and the receipts reported, and none is past max_seq.
// (UpdatedAt is zero in every receipt here: the states compare whole.)
func testReadStatesAcrossStores(t *testing.T, b backend) {
	need(t, b)
	dsn := b.fresh(t)
	stores := [2]*sqlstore.Store{b.newStore(t, openDB(t, b.driver, dsn)), b.newStore(t, openDB(t, b.driver, dsn))}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	convs := []string{"group_x0", "group_x1", "group_x2"}
	users := []string{"u0", "u1", "u2", "u3"}
	const (
		senders  = 4 // per store
		batches  = 15
		readers  = 3 // per store
		receipts = 25
	)
	type pair struct{ conv, user string }
	var (
		mu       sync.Mutex
		sentMax  = make(map[pair]int64) // highest seq each user sent in each conversation
		reported = make(map[pair]im.ReadState)
		wg       sync.WaitGroup
	)
	for w := range 2 * senders {
		s, other := stores[w%2], stores[1-w%2]
		user := users[w%len(users)]
		wg.Go(func() {
			for k := range batches {
				var batch []im.AppendRequest
				for j := range 1 + k%3 {
					conv := convs[(w+k+j)%len(convs)]
					cmid := fmt.Sprintf("s%d-%d-%d", w, k, j)
					batch = append(batch, im.AppendRequest{Message: im.Message{
						ConversationID: conv, ServerID: cmid, SenderID: user, ClientMsgID: cmid, Type: im.TextMessage,
					}})
				}
				res, err := s.AppendMessages(ctx, batch)
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				top := make(map[string]int64)
				for _, r := range res {
					if r.Err != nil {
						t.Errorf("append: %v", r.Err)
						return
					}
					top[r.Message.ConversationID] = max(top[r.Message.ConversationID], r.Message.Seq)
				}
				// The sender rule, through the other process, at once.
				for conv, seq := range top {
					rs, err := other.ReadStates(ctx, user, []string{conv})
					if err != nil {
						t.Errorf("read states: %v", err)
						return
					}
					if rs[0].Read < seq {
						t.Errorf("%s in %s: Read %d right after her message %d was stored", user, conv, rs[0].Read, seq)
					}
				}
				mu.Lock()
				for conv, seq := range top {
					k := pair{conv, user}
					sentMax[k] = max(sentMax[k], seq)
				}
				mu.Unlock()
			}
		})
	}
	for r := range 2 * readers {
		s := stores[r%2]
		rng := rand.New(rand.NewPCG(uint64(r), 7))
		wg.Go(func() {
			last := make(map[pair]im.ReadState)
			for range receipts {
				var batch []im.ReadState
				for range 1 + rng.IntN(4) {
					st := state(users[rng.IntN(len(users))], convs[rng.IntN(len(convs))], rng.Int64N(80), rng.Int64N(80))
					st.Mentioned = rng.Int64N(80)
					batch = append(batch, st)
				}
				got, err := s.UpdateReadStates(ctx, batch)
				if err != nil {
					t.Errorf("update read states: %v", err)
					return
				}
				mu.Lock()
				for _, st := range got {
					k := pair{st.ConversationID, st.UserID}
					if p := last[k]; st.Read < p.Read || st.Delivered < p.Delivered || st.Mentioned < p.Mentioned {
						t.Errorf("%v went back: %+v after %+v", k, st, p)
					}
					last[k] = st
					p := reported[k]
					reported[k] = im.ReadState{Read: max(p.Read, st.Read), Delivered: max(p.Delivered, st.Delivered), Mentioned: max(p.Mentioned, st.Mentioned)}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, conv := range convs {
		c, err := stores[0].Conversation(ctx, conv)
		require.NoError(t, err)
		all, err := stores[1].ConversationReadStates(ctx, conv)
		require.NoError(t, err)
		stored := make(map[string]im.ReadState)
		for _, st := range all {
			require.NotContains(t, stored, st.UserID, "listed twice")
			stored[st.UserID] = st
		}
		for _, u := range users {
			k := pair{conv, u}
			want := im.ReadState{UserID: u, ConversationID: conv,
				Read: max(sentMax[k], reported[k].Read), Delivered: reported[k].Delivered, Mentioned: reported[k].Mentioned}
			got := stored[u]
			if want.Read == 0 && want.Delivered == 0 && want.Mentioned == 0 {
				require.Zero(t, got, "%v", k)
				continue
			}
			require.Equal(t, want, got, "%v", k)
			require.LessOrEqual(t, max(got.Read, got.Delivered, got.Mentioned), c.MaxSeq, "%v", k)
		}
	}
}
