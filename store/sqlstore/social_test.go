package sqlstore_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/store/sqlstore"
)

// Tests of the optional areas of migration 0010: profiles and search,
// revoked tokens, friends and blocks, group mutes and join requests. Each
// runs on SQLite always, and on PostgreSQL and MySQL when their DSNs are
// set.

var backends = []backend{sqliteBackend, postgresBackend, mysqlBackend}

// eachBackend runs test against every backend, as subtests named by the
// dialect, skipping those that are not configured.
func eachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.dialect.String(), func(t *testing.T) {
			if b.env != "" {
				if _, ok := lookupEnv(b.env); !ok {
					t.Skipf("%s is not set", b.env)
				}
			}
			test(t, b)
		})
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func account(id, nickname string) auth.Account {
	return auth.Account{UserID: id, Username: "name-" + id, Nickname: nickname, PasswordHash: []byte("hash"), CreatedAt: t0}
}

func ids(as []auth.Account) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.UserID
	}
	return out
}

func TestAccountProfiles(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, _ := b.open(t)
		a := account("u1", "Alice")
		a.Avatar, a.Signature, a.Gender, a.Birth, a.UpdatedAt = "https://a.example/1.png", "hi there", im.GenderFemale, 19900102, t0.Add(time.Hour)
		require.NoError(t, s.CreateAccount(ctx, a))
		got, err := s.Account(ctx, "u1")
		require.NoError(t, err)
		require.Equal(t, a, got)

		// Every new field is applied; those left nil stay.
		u := auth.AccountUpdate{Avatar: ptr(""), Signature: ptr("new line"), Gender: ptr(im.GenderMale), Birth: ptr(int64(-5)),
			UpdatedAt: t0.Add(2 * time.Hour), Deleted: ptr(true)}
		got, err = s.UpdateAccount(ctx, "u1", u)
		require.NoError(t, err)
		want := a
		want.Avatar, want.Signature, want.Gender, want.Birth, want.UpdatedAt, want.Deleted = "", "new line", im.GenderMale, -5, t0.Add(2*time.Hour), true
		require.Equal(t, want, got)
		got, err = s.AccountByUsername(ctx, "name-u1")
		require.NoError(t, err)
		require.Equal(t, want, got)

		// A never-updated account reads as UpdatedAt zero.
		require.NoError(t, s.CreateAccount(ctx, account("u2", "Bob")))
		got, err = s.Account(ctx, "u2")
		require.NoError(t, err)
		require.True(t, got.UpdatedAt.IsZero())

		// Bad updates are refused and change nothing.
		for name, bad := range map[string]auth.AccountUpdate{
			"gender":    {Gender: ptr(im.Gender(7))},
			"birth":     {Birth: ptr(im.MaxBirth + 1)},
			"signature": {Signature: ptr("a\nb"), Nickname: ptr("Changed")},
			"avatar":    {Avatar: ptr(strings.Repeat("x", im.MaxAvatarLen+1))},
		} {
			_, err := s.UpdateAccount(ctx, "u2", bad)
			require.ErrorIs(t, err, im.ErrInvalidArgument, name)
		}
		after, err := s.Account(ctx, "u2")
		require.NoError(t, err)
		require.Equal(t, got, after)
		_, err = s.UpdateAccount(ctx, "nobody", auth.AccountUpdate{Gender: ptr(im.GenderMale)})
		require.ErrorIs(t, err, im.ErrNotFound)
	})
}

func TestSearchAccounts(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, _ := b.open(t)
		for _, a := range []auth.Account{
			account("u3", "alpha"), account("u1", "ALPHA"), account("u2", "Alphabet"), account("u4", "Älva"),
			account("u5", "älskling"), account("u6", "beta"), account("u7", "al"), account("u8", "Al Deleted"),
		} {
			require.NoError(t, s.CreateAccount(ctx, a))
		}
		_, err := s.UpdateAccount(ctx, "u8", auth.AccountUpdate{Deleted: ptr(true)})
		require.NoError(t, err)

		search := func(prefix string, limit int) []string {
			t.Helper()
			got, err := s.SearchAccounts(ctx, prefix, limit)
			require.NoError(t, err)
			return ids(got)
		}
		// Ordered by key, then user id; deleted accounts left out.
		require.Equal(t, []string{"u7", "u1", "u3", "u2"}, search("al", 10))
		require.Equal(t, []string{"u7", "u1"}, search("al", 2))
		require.Equal(t, []string{"u1", "u3", "u2"}, search("alp", 10))
		require.Equal(t, []string{"u2"}, search("alphab", 10))
		require.Equal(t, []string{"u5", "u4"}, search("äl", 10), "non-ASCII folded by Go")
		require.Equal(t, []string{"u5"}, search("äls", 10))
		require.Empty(t, search("alphabets", 10))
		require.Equal(t, []string{}, search("zz", 10))

		// A nickname change moves the account in the index.
		_, err = s.UpdateAccount(ctx, "u6", auth.AccountUpdate{Nickname: ptr("ALPINE")})
		require.NoError(t, err)
		require.Equal(t, []string{"u1", "u3", "u2", "u6"}, search("alp", 10))
		require.Empty(t, search("beta", 10))

		for name, c := range map[string]struct {
			prefix string
			limit  int
		}{"empty prefix": {"", 5}, "zero limit": {"al", 0}, "negative limit": {"al", -1}} {
			_, err := s.SearchAccounts(ctx, c.prefix, c.limit)
			require.ErrorIs(t, err, im.ErrInvalidArgument, name)
		}

		// AccountsByID: the order of ids, each once, missing ones left
		// out, deleted ones in.
		got, err := s.AccountsByID(ctx, []string{"u2", "nobody", "u8", "u2", "u1"})
		require.NoError(t, err)
		require.Equal(t, []string{"u2", "u8", "u1"}, ids(got))
		require.True(t, got[1].Deleted)
		got, err = s.AccountsByID(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, got)
		_, err = s.AccountsByID(ctx, []string{"u1", ""})
		require.ErrorIs(t, err, im.ErrInvalidArgument)
	})
}

func TestPrefixEnd(t *testing.T) {
	for prefix, want := range map[string]string{
		"al":         "am",
		"a\xff":      "b",
		"ä":          "\xc3\xa5", // the next character, å
		"\xff\xff":   "",
		"z\xff\xffq": "z\xff\xffr",
	} {
		end, ok := sqlstore.PrefixEnd([]byte(prefix))
		require.Equal(t, want != "", ok, "%q", prefix)
		require.Equal(t, want, string(end), "%q", prefix)
	}
}

// TestSearchUsesIndex: the search statement reads the nickname_key index
// in its order, with no sort, on every dialect.
func TestSearchUsesIndex(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, dsn := b.open(t)
		for i := range 200 {
			require.NoError(t, s.CreateAccount(ctx, account(fmt.Sprintf("u%03d", i), fmt.Sprintf("Name%03d", i))))
		}
		db := openDB(t, b.driver, dsn)
		conn, err := db.Conn(ctx)
		require.NoError(t, err)
		defer conn.Close()
		explain := "EXPLAIN "
		switch b.dialect {
		case sqlstore.SQLite:
			explain = "EXPLAIN QUERY PLAN "
		case sqlstore.Postgres:
			// A tiny table may be read whole; what matters is that the
			// index can serve the statement.
			_, err := conn.ExecContext(ctx, "SET enable_seqscan = off")
			require.NoError(t, err)
		case sqlstore.MySQL:
			_, err := conn.ExecContext(ctx, "ANALYZE TABLE accounts")
			require.NoError(t, err)
		}
		rows, err := conn.QueryContext(ctx, explain+s.SearchQuery(), []byte("name01"), []byte("name02"), 5)
		require.NoError(t, err)
		defer rows.Close()
		cols, err := rows.Columns()
		require.NoError(t, err)
		var plan strings.Builder
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			for i, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&plan, "%s=%v ", cols[i], v)
			}
			plan.WriteString("\n")
		}
		require.NoError(t, rows.Err())
		t.Log(plan.String())
		require.Contains(t, plan.String(), "nickname_key")
		require.NotContains(t, plan.String(), "TEMP B-TREE", "SQLite sorts instead of reading the index in order")
		require.NotContains(t, plan.String(), "filesort", "MySQL sorts instead of reading the index in order")
		require.NotContains(t, plan.String(), "Sort", "PostgreSQL sorts instead of reading the index in order")
	})
}

func TestRevokedTokens(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, dsn := b.open(t)
		db := openDB(t, b.driver, dsn)
		count := func() int {
			var n int
			require.NoError(t, db.QueryRowContext(ctx, "SELECT COUNT(*) FROM revoked_tokens").Scan(&n))
			return n
		}
		revoked := func(id string) bool {
			ok, err := s.TokenRevoked(ctx, id)
			require.NoError(t, err)
			return ok
		}
		future := time.Now().Add(time.Hour)
		require.False(t, revoked("t1"))
		require.NoError(t, s.RevokeToken(ctx, "t1", future))
		require.True(t, revoked("t1"))
		require.NoError(t, s.RevokeToken(ctx, "t1", future), "again")
		require.True(t, revoked("t1"))
		require.False(t, revoked("T1"), "ids are exact")
		require.NoError(t, s.RevokeToken(ctx, "t\x00\xff", future), "any bytes")
		require.True(t, revoked("t\x00\xff"))
		require.False(t, revoked("t"))

		for _, id := range []string{"", strings.Repeat("x", 129)} {
			require.ErrorIs(t, s.RevokeToken(ctx, id, future), im.ErrInvalidArgument)
			_, err := s.TokenRevoked(ctx, id)
			require.ErrorIs(t, err, im.ErrInvalidArgument)
		}
		require.Equal(t, 2, count(), "refused ids are not stored")

		// Expired records go, a bounded batch per revocation, oldest first.
		past := time.Now().Add(-time.Hour)
		for i := range 150 {
			require.NoError(t, s.RevokeToken(ctx, fmt.Sprintf("old%03d", i), past.Add(time.Duration(i)*time.Second)))
		}
		require.Less(t, count(), 2+150, "some expired records were dropped")
		require.NoError(t, s.RevokeToken(ctx, "t2", future))
		require.NoError(t, s.RevokeToken(ctx, "t3", future))
		require.Equal(t, 4, count(), "only the live records stay")
		require.True(t, revoked("t1"))
		require.True(t, revoked("t3"))
	})
}

func TestFriends(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, _ := b.open(t)
		relation := func(u, o string) im.Relation {
			t.Helper()
			r, err := s.Relation(ctx, u, o)
			require.NoError(t, err)
			return r
		}
		request := func(from, to, msg string, at time.Time) im.FriendOutcome {
			t.Helper()
			o, err := s.RequestFriend(ctx, im.FriendRequest{From: from, To: to, Message: msg, CreatedAt: at})
			require.NoError(t, err)
			return o
		}

		require.Equal(t, im.FriendRequested, request("alice", "bob", "hi", t0))
		require.Equal(t, im.FriendRequested, request("alice", "bob", "hi again", t0.Add(time.Second)), "replaced")
		require.Equal(t, im.FriendRequested, request("carol", "bob", "", t0))
		require.Equal(t, im.FriendRequested, request("bob", "dave", "yo", t0))
		in, out, err := s.FriendRequests(ctx, "bob")
		require.NoError(t, err)
		require.Equal(t, []im.FriendRequest{
			{From: "carol", To: "bob", Message: "", CreatedAt: t0},
			{From: "alice", To: "bob", Message: "hi again", CreatedAt: t0.Add(time.Second)},
		}, in)
		require.Equal(t, []im.FriendRequest{{From: "bob", To: "dave", Message: "yo", CreatedAt: t0}}, out)
		require.Equal(t, im.Relation{UserID: "alice", OtherID: "bob", RequestSent: true}, relation("alice", "bob"))
		require.Equal(t, im.Relation{UserID: "bob", OtherID: "alice", RequestReceived: true}, relation("bob", "alice"))

		// bob asks alice back: friends, both requests gone.
		require.Equal(t, im.FriendAccepted, request("bob", "alice", "sure", t0.Add(time.Minute)))
		r := relation("alice", "bob")
		require.Equal(t, im.Relation{UserID: "alice", OtherID: "bob", Friends: true,
			Friend: im.Friend{UserID: "alice", FriendID: "bob", CreatedAt: t0.Add(time.Minute)}}, r)
		require.Equal(t, im.FriendAlready, request("alice", "bob", "", t0))

		// bob accepts carol; rejects nothing that is not there.
		f, err := s.AcceptFriend(ctx, "bob", "carol", t0.Add(2*time.Minute))
		require.NoError(t, err)
		require.Equal(t, im.Friend{UserID: "bob", FriendID: "carol", CreatedAt: t0.Add(2 * time.Minute)}, f)
		_, err = s.AcceptFriend(ctx, "bob", "carol", t0)
		require.ErrorIs(t, err, im.ErrNotFound)
		require.ErrorIs(t, s.RejectFriend(ctx, "bob", "erin"), im.ErrNotFound)
		require.NoError(t, s.CancelFriendRequest(ctx, "bob", "dave"))
		require.ErrorIs(t, s.CancelFriendRequest(ctx, "bob", "dave"), im.ErrNotFound)
		request("erin", "bob", "", t0)
		require.NoError(t, s.RejectFriend(ctx, "bob", "erin"))

		f, err = s.SetFriendRemark(ctx, "bob", "alice", "Ally")
		require.NoError(t, err)
		require.Equal(t, "Ally", f.Remark)
		_, err = s.SetFriendRemark(ctx, "bob", "erin", "x")
		require.ErrorIs(t, err, im.ErrNotFound)
		fs, err := s.Friends(ctx, "bob")
		require.NoError(t, err)
		require.Equal(t, []im.Friend{
			{UserID: "bob", FriendID: "alice", Remark: "Ally", CreatedAt: t0.Add(time.Minute)},
			{UserID: "bob", FriendID: "carol", CreatedAt: t0.Add(2 * time.Minute)},
		}, fs)
		fs, err = s.Friends(ctx, "alice")
		require.NoError(t, err)
		require.Equal(t, []im.Friend{{UserID: "alice", FriendID: "bob", CreatedAt: t0.Add(time.Minute)}}, fs, "each side its own remark")

		// A block ends the friendship and the requests, either way.
		request("carol", "dave", "", t0)
		request("dave", "erin", "", t0)
		require.NoError(t, s.Block(ctx, "bob", "carol", t0.Add(time.Hour)))
		require.NoError(t, s.Block(ctx, "bob", "carol", t0.Add(2*time.Hour)), "again")
		require.Equal(t, im.Relation{UserID: "carol", OtherID: "bob", BlockedBy: true}, relation("carol", "bob"))
		blocks, err := s.Blocks(ctx, "bob")
		require.NoError(t, err)
		require.Equal(t, []im.Block{{BlockerID: "bob", BlockedID: "carol", CreatedAt: t0.Add(time.Hour)}}, blocks)
		_, err = s.RequestFriend(ctx, im.FriendRequest{From: "carol", To: "bob", CreatedAt: t0})
		require.ErrorIs(t, err, im.ErrPermissionDenied)
		_, err = s.RequestFriend(ctx, im.FriendRequest{From: "bob", To: "carol", CreatedAt: t0})
		require.ErrorIs(t, err, im.ErrPermissionDenied)
		require.NoError(t, s.Unblock(ctx, "carol", "bob"), "carol blocks nobody: nothing to do")
		require.True(t, relation("bob", "carol").Blocking)
		require.NoError(t, s.Unblock(ctx, "bob", "carol"))
		require.Equal(t, im.Relation{UserID: "bob", OtherID: "carol"}, relation("bob", "carol"))

		// Bad input is refused and writes nothing.
		for name, err := range map[string]error{
			"self":     func() error { _, err := s.RequestFriend(ctx, im.FriendRequest{From: "bob", To: "bob"}); return err }(),
			"empty id": func() error { _, err := s.RequestFriend(ctx, im.FriendRequest{From: "bob", To: ""}); return err }(),
			"long message": func() error {
				_, err := s.RequestFriend(ctx, im.FriendRequest{From: "bob", To: "zed", Message: strings.Repeat("m", 257)})
				return err
			}(),
			"bad message": func() error {
				_, err := s.RequestFriend(ctx, im.FriendRequest{From: "bob", To: "zed", Message: "a\u202eb"})
				return err
			}(),
			"bad remark":   func() error { _, err := s.SetFriendRemark(ctx, "bob", "alice", strings.Repeat("r", 65)); return err }(),
			"self block":   s.Block(ctx, "bob", "bob", t0),
			"bad accept":   func() error { _, err := s.AcceptFriend(ctx, "bob", "", t0); return err }(),
			"bad friends":  func() error { _, err := s.Friends(ctx, ""); return err }(),
			"bad relation": func() error { _, err := s.Relation(ctx, "a", "a"); return err }(),
			"bad removal":  s.RemoveUserRelations(ctx, ""),
		} {
			require.ErrorIs(t, err, im.ErrInvalidArgument, name)
		}
		_, out, err = s.FriendRequests(ctx, "bob")
		require.NoError(t, err)
		require.Empty(t, out)
		blocks, err = s.Blocks(ctx, "bob")
		require.NoError(t, err)
		require.Empty(t, blocks)
		fs, err = s.Friends(ctx, "bob")
		require.NoError(t, err)
		require.Len(t, fs, 1)
		require.Equal(t, "Ally", fs[0].Remark)

		// Removing a user's relations: every friendship, request and
		// block she is part of, either side; others stay.
		request("bob", "erin", "", t0)
		request("frank", "bob", "", t0)
		require.NoError(t, s.Block(ctx, "gina", "bob", t0))
		require.NoError(t, s.Block(ctx, "bob", "hank", t0))
		require.NoError(t, s.RemoveUserRelations(ctx, "bob"))
		for _, o := range []string{"alice", "carol", "erin", "frank", "gina", "hank"} {
			require.Equal(t, im.Relation{UserID: "bob", OtherID: o}, relation("bob", o), o)
		}
		fs, err = s.Friends(ctx, "alice")
		require.NoError(t, err)
		require.Empty(t, fs)
		in, _, err = s.FriendRequests(ctx, "erin")
		require.NoError(t, err)
		require.Equal(t, []im.FriendRequest{{From: "dave", To: "erin", CreatedAt: t0}}, in, "others' requests stay")
	})
}

// TestFriendRequestRace: two Stores on one database, each with its own
// pool as two processes would have, send A→B and B→A at the same moment,
// again and again: every time, the two end as exactly one friendship and
// no request, one call answering FriendRequested and the other
// FriendAccepted.
func TestFriendRequestRace(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		dsn := b.fresh(t)
		stores := [2]*sqlstore.Store{b.newStore(t, openDB(t, b.driver, dsn)), b.newStore(t, openDB(t, b.driver, dsn))}
		const rounds = 30
		for r := range rounds {
			a, c := fmt.Sprintf("a%02d", r), fmt.Sprintf("b%02d", r)
			var (
				wg       sync.WaitGroup
				start    = make(chan struct{})
				outcomes [2]im.FriendOutcome
				errs     [2]error
			)
			pairs := [2][2]string{{a, c}, {c, a}}
			for i := range 2 {
				wg.Go(func() {
					<-start
					outcomes[i], errs[i] = stores[i].RequestFriend(ctx, im.FriendRequest{From: pairs[i][0], To: pairs[i][1], CreatedAt: t0})
				})
			}
			close(start)
			wg.Wait()
			require.NoError(t, errs[0], "round %d", r)
			require.NoError(t, errs[1], "round %d", r)
			require.ElementsMatch(t, []im.FriendOutcome{im.FriendRequested, im.FriendAccepted}, outcomes[:], "round %d", r)
			for _, s := range stores {
				rel, err := s.Relation(ctx, a, c)
				require.NoError(t, err)
				require.True(t, rel.Friends, "round %d", r)
				require.False(t, rel.RequestSent || rel.RequestReceived, "round %d: a request left", r)
				for _, u := range []string{a, c} {
					fs, err := s.Friends(ctx, u)
					require.NoError(t, err)
					require.Len(t, fs, 1, "round %d", r)
				}
			}
		}
	})
}

func groupMessage(group, sender, cmid string, at time.Time) im.AppendRequest {
	return im.AppendRequest{MemberOf: group, Message: im.Message{
		ConversationID: im.GroupConversationID(group), ServerID: "s-" + cmid, SenderID: sender, ClientMsgID: cmid,
		Type: im.TextMessage, Content: []byte(cmid), CreatedAt: at,
	}}
}

func TestGroupMutes(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, _ := b.open(t)
		g := im.Group{ID: "g", Name: "G", OwnerID: "owner", CreatedAt: t0, UpdatedAt: t0}
		_, err := s.CreateGroup(ctx, g, []im.GroupMember{
			{UserID: "owner", Role: im.RoleOwner, JoinedAt: t0},
			{UserID: "admin", Role: im.RoleAdmin, JoinedAt: t0},
			{UserID: "m1", Role: im.RoleMember, JoinedAt: t0, MutedUntil: t0.Add(time.Hour)},
			{UserID: "m2", Role: im.RoleMember, JoinedAt: t0},
		}, im.AppendRequest{})
		require.NoError(t, err)
		m1, err := s.GroupMember(ctx, "g", "m1")
		require.NoError(t, err)
		require.Equal(t, t0.Add(time.Hour), m1.MutedUntil)

		send := func(reqs ...im.AppendRequest) []im.AppendResult {
			t.Helper()
			res, err := s.AppendMessages(ctx, reqs)
			require.NoError(t, err)
			return res
		}
		// One batch: m1 muted until an hour on, refused before it and
		// allowed after; m2 and the rest unaffected.
		res := send(
			groupMessage("g", "m1", "c1", t0.Add(30*time.Minute)),
			groupMessage("g", "m2", "c2", t0.Add(30*time.Minute)),
			groupMessage("g", "m1", "c3", t0.Add(time.Hour)),
			groupMessage("g", "nobody", "c4", t0),
		)
		require.ErrorIs(t, res[0].Err, im.ErrMuted)
		require.ErrorIs(t, res[0].Err, im.ErrPermissionDenied)
		require.NoError(t, res[1].Err)
		require.NoError(t, res[2].Err, "muted until then, not at it")
		require.ErrorIs(t, res[3].Err, im.ErrPermissionDenied)
		require.NotErrorIs(t, res[3].Err, im.ErrMuted)

		// MuteAll: only admins and the owner send; Put mutes and unmutes,
		// keeping joined_at and join_seq.
		before, err := s.GroupMember(ctx, "g", "m2")
		require.NoError(t, err)
		upd := g
		upd.MuteAll = true
		upd.UpdatedAt = t0.Add(time.Minute)
		_, err = s.ChangeGroup(ctx, "g", im.GroupChange{Update: &upd, Put: []im.GroupMember{
			{UserID: "m1", Role: im.RoleMember, JoinedAt: t0.Add(time.Hour)},
			{UserID: "m2", Role: im.RoleMember, JoinedAt: t0.Add(time.Hour), MutedUntil: t0.Add(24 * time.Hour)},
		}})
		require.NoError(t, err)
		got, err := s.Group(ctx, "g")
		require.NoError(t, err)
		require.True(t, got.MuteAll)
		_, members, err := s.GroupMembers(ctx, "g")
		require.NoError(t, err)
		byID := map[string]im.GroupMember{}
		for _, m := range members {
			byID[m.UserID] = m
		}
		require.True(t, byID["m1"].MutedUntil.IsZero())
		require.Equal(t, t0.Add(24*time.Hour), byID["m2"].MutedUntil)
		require.Equal(t, before.JoinedAt, byID["m2"].JoinedAt)
		require.Equal(t, before.JoinSeq, byID["m2"].JoinSeq)
		res = send(
			groupMessage("g", "m1", "c5", t0.Add(2*time.Hour)),
			groupMessage("g", "admin", "c6", t0.Add(2*time.Hour)),
			groupMessage("g", "owner", "c7", t0.Add(2*time.Hour)),
		)
		require.ErrorIs(t, res[0].Err, im.ErrMuted)
		require.NoError(t, res[1].Err)
		require.NoError(t, res[2].Err)

		// Handing the group over keeps the old owner's mute as an admin.
		_, err = s.ChangeGroup(ctx, "g", im.GroupChange{Put: []im.GroupMember{
			{UserID: "owner", Role: im.RoleOwner, MutedUntil: t0.Add(48 * time.Hour)},
		}})
		require.NoError(t, err)
		_, err = s.ChangeGroup(ctx, "g", im.GroupChange{Put: []im.GroupMember{{UserID: "admin", Role: im.RoleOwner}}})
		require.NoError(t, err)
		old, err := s.GroupMember(ctx, "g", "owner")
		require.NoError(t, err)
		require.Equal(t, im.RoleAdmin, old.Role)
		require.Equal(t, t0.Add(48*time.Hour), old.MutedUntil)

		upd.MuteAll = false
		_, err = s.ChangeGroup(ctx, "g", im.GroupChange{Update: &upd})
		require.NoError(t, err)
		res = send(groupMessage("g", "m1", "c8", t0.Add(3*time.Hour)), groupMessage("g", "m2", "c9", t0.Add(3*time.Hour)))
		require.NoError(t, res[0].Err)
		require.ErrorIs(t, res[1].Err, im.ErrMuted)
	})
}

func TestGroupJoinRequests(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, _ := b.open(t)
		g := im.Group{ID: "g", Name: "G", OwnerID: "owner", JoinPolicy: im.JoinApproval, CreatedAt: t0, UpdatedAt: t0}
		_, err := s.CreateGroup(ctx, g, []im.GroupMember{{UserID: "owner", Role: im.RoleOwner, JoinedAt: t0}}, im.AppendRequest{})
		require.NoError(t, err)
		put := func(user, msg string, at time.Time) (int, error) {
			return s.PutJoinRequest(ctx, im.GroupJoinRequest{GroupID: "g", UserID: user, Message: msg, CreatedAt: at})
		}
		n, err := put("u2", "let me in", t0.Add(time.Second))
		require.NoError(t, err)
		require.Equal(t, 1, n)
		n, err = put("u1", "", t0.Add(time.Second))
		require.NoError(t, err)
		require.Equal(t, 2, n)
		n, err = put("u3", "", t0)
		require.NoError(t, err)
		require.Equal(t, 3, n)
		n, err = put("u3", "again", t0.Add(time.Minute))
		require.NoError(t, err)
		require.Equal(t, 3, n, "replaced")

		_, err = put("owner", "", t0)
		require.ErrorIs(t, err, im.ErrConflict)
		_, err = s.PutJoinRequest(ctx, im.GroupJoinRequest{GroupID: "nope", UserID: "u1", CreatedAt: t0})
		require.ErrorIs(t, err, im.ErrNotFound)
		_, err = put("u4", strings.Repeat("x", im.MaxFriendMessageLen+1), t0)
		require.ErrorIs(t, err, im.ErrInvalidArgument)
		_, err = put("", "", t0)
		require.ErrorIs(t, err, im.ErrInvalidArgument)
		_, err = s.JoinRequests(ctx, "")
		require.ErrorIs(t, err, im.ErrInvalidArgument)

		list, err := s.JoinRequests(ctx, "g")
		require.NoError(t, err)
		require.Equal(t, []im.GroupJoinRequest{
			{GroupID: "g", UserID: "u1", CreatedAt: t0.Add(time.Second)},
			{GroupID: "g", UserID: "u2", Message: "let me in", CreatedAt: t0.Add(time.Second)},
			{GroupID: "g", UserID: "u3", Message: "again", CreatedAt: t0.Add(time.Minute)},
		}, list)
		r, err := s.JoinRequest(ctx, "g", "u2")
		require.NoError(t, err)
		require.Equal(t, list[1], r)
		_, err = s.JoinRequest(ctx, "g", "u9")
		require.ErrorIs(t, err, im.ErrNotFound)

		require.NoError(t, s.DeleteJoinRequest(ctx, "g", "u3"))
		require.ErrorIs(t, s.DeleteJoinRequest(ctx, "g", "u3"), im.ErrNotFound)

		// Putting a user into the group removes her request.
		_, err = s.ChangeGroup(ctx, "g", im.GroupChange{Put: []im.GroupMember{{UserID: "u1", Role: im.RoleMember, JoinedAt: t0}}})
		require.NoError(t, err)
		list, err = s.JoinRequests(ctx, "g")
		require.NoError(t, err)
		require.Equal(t, []string{"u2"}, []string{list[0].UserID})
		require.Len(t, list, 1)

		// Deleting the group removes all of them.
		_, err = s.ChangeGroup(ctx, "g", im.GroupChange{Delete: true})
		require.NoError(t, err)
		list, err = s.JoinRequests(ctx, "g")
		require.NoError(t, err)
		require.Equal(t, []im.GroupJoinRequest{}, list)
		_, err = put("u2", "", t0)
		require.ErrorIs(t, err, im.ErrNotFound)
	})
}

// TestUpgradeFrom9: a database at migration 0009 with accounts, a group
// and a membership is brought up to date; the accounts are found by their
// nicknames' keys, the profile reads empty, and the group is not muted.
func TestUpgradeFrom9(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		dsn := b.fresh(t)
		db := openDB(t, b.driver, dsn)
		require.NoError(t, sqlstore.MigrateTo(ctx, db, b.dialect, 9))
		ph, ph5 := "?, ?, ?, ?", "?"
		if b.dialect == sqlstore.Postgres {
			ph, ph5 = "$1, $2, $3, $4", "$5"
		}
		for _, a := range []struct{ id, nick string }{
			{"u1", "ALICE"}, {"u2", "Alina"}, {"u3", "bad \xff BYTES"}, {"u4", "nul\x00NAME"}, {"u5", "Zed"},
		} {
			_, err := db.ExecContext(ctx, "INSERT INTO accounts (user_id, username, nickname, password_hash, disabled, created_at) VALUES ("+ph+", false, 5)",
				a.id, "name-"+a.id, []byte(a.nick), []byte("hash"))
			require.NoError(t, err)
		}
		_, err := db.ExecContext(ctx, "INSERT INTO chat_groups (id, name, face_url, introduction, notification, extra, owner_id, join_policy, member_count, created_at, updated_at, version, history)"+
			" VALUES ('old', "+ph+", "+ph5+", 'alice', 0, 1, 0, 0, 1, 0)", []byte("Old"), []byte{}, []byte{}, []byte{}, []byte{})
		require.NoError(t, err)
		_, err = db.ExecContext(ctx, "INSERT INTO group_members (group_id, user_id, role, joined_at, join_seq) VALUES ('old', 'alice', 3, 0, 0)")
		require.NoError(t, err)

		s := b.newStore(t, db)
		require.Equal(t, migrationVersions(t, b), recordedVersions(t, db, ""))
		found, err := s.SearchAccounts(ctx, "ali", 10)
		require.NoError(t, err)
		require.Equal(t, []string{"u1", "u2"}, ids(found))
		found, err = s.SearchAccounts(ctx, "bad", 10)
		require.NoError(t, err)
		require.Equal(t, []string{"u3"}, ids(found), "a nickname that is not UTF-8 is kept as it was")
		found, err = s.SearchAccounts(ctx, "nul", 10)
		require.NoError(t, err)
		require.Equal(t, []string{"u4"}, ids(found))
		a, err := s.Account(ctx, "u5")
		require.NoError(t, err)
		require.Equal(t, auth.Account{UserID: "u5", Username: "name-u5", Nickname: "Zed", PasswordHash: []byte("hash"), CreatedAt: time.UnixMicro(5).UTC()}, a)

		grp, err := s.Group(ctx, "old")
		require.NoError(t, err)
		require.False(t, grp.MuteAll)
		m, err := s.GroupMember(ctx, "old", "alice")
		require.NoError(t, err)
		require.True(t, m.MutedUntil.IsZero())
		res, err := s.AppendMessages(ctx, []im.AppendRequest{groupMessage("old", "alice", "c1", t0)})
		require.NoError(t, err)
		require.NoError(t, res[0].Err)
	})
}
