package sqlstore_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/sqlstore"
)

func TestSQLiteSettingsTwoStores(t *testing.T) {
	t.Parallel()
	testSettingsTwoStores(t, sqliteBackend)
}
func TestPostgresSettingsTwoStores(t *testing.T) {
	t.Parallel()
	testSettingsTwoStores(t, postgresBackend)
}
func TestMySQLSettingsTwoStores(t *testing.T) {
	t.Parallel()
	testSettingsTwoStores(t, mysqlBackend)
}

// testSettingsTwoStores: two Stores, each with its own pool as two
// processes would have, change different fields of the same settings at
// once, from a row that does not exist yet: no change loses another's.
func testSettingsTwoStores(t *testing.T, b backend) {
	dsn := b.fresh(t)
	stores := [2]*sqlstore.Store{b.newStore(t, openDB(t, b.driver, dsn)), b.newStore(t, openDB(t, b.driver, dsn))}
	ctx := t.Context()
	convs := []string{"group_two0", "group_two1", "group_two2"}
	for _, c := range convs {
		var batch []im.AppendRequest
		for i := range 20 {
			batch = append(batch, im.AppendRequest{Message: im.Message{ConversationID: c, ServerID: "s", SenderID: "bob", ClientMsgID: fmt.Sprint(c, i)}})
		}
		res, err := stores[0].AppendMessages(ctx, batch)
		require.NoError(t, err)
		require.NoError(t, res[19].Err)
		require.Equal(t, int64(20), res[19].Message.Seq)
	}
	const rounds = 15
	// Each writer changes its own field to value(i) in round i.
	type writer struct {
		change func(i int) im.SettingsChange
		field  func(st im.ConversationSettings) int64
		value  func(i int) int64
	}
	flag := func(v bool) *bool { return &v }
	seq := func(v int64) *int64 { return &v }
	b2i := func(v bool) int64 {
		if v {
			return 1
		}
		return 0
	}
	writers := []writer{
		{func(i int) im.SettingsChange { return im.SettingsChange{Pinned: flag(i%2 == 0)} },
			func(st im.ConversationSettings) int64 { return b2i(st.Pinned) }, func(i int) int64 { return b2i(i%2 == 0) }},
		{func(i int) im.SettingsChange { return im.SettingsChange{Muted: flag(i%3 == 0)} },
			func(st im.ConversationSettings) int64 { return b2i(st.Muted) }, func(i int) int64 { return b2i(i%3 == 0) }},
		{func(i int) im.SettingsChange { return im.SettingsChange{HiddenUpTo: seq(int64(i % 5))} },
			func(st im.ConversationSettings) int64 { return st.HiddenUpTo }, func(i int) int64 { return int64(i % 5) }},
		{func(i int) im.SettingsChange { return im.SettingsChange{ClearedUpTo: seq(int64(i + 1))} },
			func(st im.ConversationSettings) int64 { return st.ClearedUpTo }, func(i int) int64 { return int64(i + 1) }},
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(writers)*len(convs))
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for ci, c := range convs {
		for w, wr := range writers {
			s := stores[(w+ci)%2]
			wg.Go(func() {
				for i := range rounds {
					if i > 0 {
						got, err := s.ConversationSettings(ctx, "alice", []string{c})
						if err != nil {
							errs <- err
							return
						}
						if g, v := wr.field(got[0]), wr.value(i-1); g != v {
							errs <- fmt.Errorf("%s, writer %d, round %d: its field is %d, last set to %d", c, w, i, g, v)
							return
						}
					}
					ch := wr.change(i)
					ch.At = start.Add(time.Duration(i*len(writers)+w) * time.Microsecond)
					got, err := s.UpdateConversationSettings(ctx, "alice", c, ch)
					if err != nil {
						errs <- err
						return
					}
					if g, v := wr.field(got), wr.value(i); g != v {
						errs <- fmt.Errorf("%s, writer %d, round %d: setting its field to %d returned %d", c, w, i, v, g)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, s := range stores {
		got, err := s.ConversationSettings(ctx, "alice", convs)
		require.NoError(t, err)
		for _, st := range got {
			for w, wr := range writers {
				require.Equal(t, wr.value(rounds-1), wr.field(st), "%s: writer %d's field is not its last write", st.ConversationID, w)
			}
		}
		changed, err := s.ChangedSettings(ctx, "alice", time.Time{})
		require.NoError(t, err)
		require.Len(t, changed, len(convs))
	}
}

func TestSQLiteUpgradeToSettings(t *testing.T)   { testUpgradeToSettings(t, sqliteBackend) }
func TestPostgresUpgradeToSettings(t *testing.T) { testUpgradeToSettings(t, postgresBackend) }
func TestMySQLUpgradeToSettings(t *testing.T)    { testUpgradeToSettings(t, mysqlBackend) }

// testUpgradeToSettings: a database of the release before settings
// (migrations up to 0007) gets their table, and its conversations clamp
// the settings at once. The migrator applies every migration it has not
// recorded, in order, so a gap in the numbers does no harm.
func testUpgradeToSettings(t *testing.T, b backend) {
	ctx := t.Context()
	db := openDB(t, b.driver, b.fresh(t))
	require.NoError(t, sqlstore.MigrateTo(ctx, db, b.dialect, 7))
	require.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7}, recordedVersions(t, db, ""))
	_, err := db.ExecContext(ctx, "INSERT INTO conversations (id, max_seq) VALUES ('group_old', 7)")
	require.NoError(t, err)

	s := b.newStore(t, db)
	require.Equal(t, migrationVersions(t, b), recordedVersions(t, db, ""))
	at := time.Date(2026, 5, 1, 2, 3, 4, 567_891_000, time.UTC)
	st, err := s.UpdateConversationSettings(ctx, "alice", "group_old", im.SettingsChange{ClearedUpTo: new(int64(50)), At: at})
	require.NoError(t, err)
	want := im.ConversationSettings{UserID: "alice", ConversationID: "group_old", ClearedUpTo: 7, UpdatedAt: at}
	require.Equal(t, want, st)
	got, err := s.ChangedSettings(ctx, "alice", time.Time{})
	require.NoError(t, err)
	require.Equal(t, []im.ConversationSettings{want}, got)
}
