package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imv1"
)

// written is a data dir with messages from alice to bob, written by the
// server and shut down.
type written struct {
	dir            string
	aliceID, bobID string
	aliceToken     string
	bobToken       string
	conv           string
	sent           []*imv1.SendMessageResponse // in seq order
	clientIDs      []string
	msgs           []*imv1.MessageInfo // as bob synced them from the intact store
}

func writeDataDir(t *testing.T, n int) written {
	t.Helper()
	w := written{dir: t.TempDir()}
	logs := new(syncBuffer)
	l, stop := start(t, w.dir, logs)
	base := "http://" + l.HTTP.String()
	login := func(u string) (id, token string) {
		e := post(t, base+"/api/auth/register", map[string]string{"username": u, "password": "secret-" + u, "nickname": u})
		require.Zero(t, e.Code, e.Message)
		e = post(t, base+"/api/auth/login", map[string]string{"username": u, "password": "secret-" + u})
		require.Zero(t, e.Code, e.Message)
		var r struct{ Token, UserID string }
		require.NoError(t, json.Unmarshal(e.Data, &r))
		return r.UserID, r.Token
	}
	w.aliceID, w.aliceToken = login("alice")
	w.bobID, w.bobToken = login("bobby")
	w.conv = im.SingleConversationID(w.aliceID, w.bobID)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := client.Dial(ctx, client.Options{Addr: l.TCP.String(), UserID: w.aliceID, Token: w.aliceToken})
	require.NoError(t, err)
	for i := range n {
		id := fmt.Sprintf("cmid-%04d", i)
		r, err := a.Send(ctx, client.Outgoing{ReceiverID: w.bobID, Type: im.TextMessage, ClientMsgID: id,
			Content: []byte(strings.Repeat(fmt.Sprintf("message %d ", i), 1+i%20))})
		require.NoError(t, err)
		require.Equal(t, int64(i+1), r.Seq)
		w.sent, w.clientIDs = append(w.sent, r), append(w.clientIDs, id)
	}
	require.NoError(t, a.Close())
	b, err := client.Dial(ctx, client.Options{Addr: l.TCP.String(), UserID: w.bobID, Token: w.bobToken})
	require.NoError(t, err)
	rsp, err := b.SyncRange(ctx, w.conv, 1, int64(n), int32(n))
	require.NoError(t, err)
	require.Len(t, rsp.Messages, n)
	w.msgs = rsp.Messages
	require.NoError(t, b.Close())
	stop()
	return w
}

// copyDir copies the files of dir into a new dir; subdirectories (the
// uploaded files) are left out.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	to := t.TempDir()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(to, e.Name()), b, 0o600))
	}
	return to
}

// tryStart runs the server on dir as start does, but returns run's error
// if it refuses to start.
func tryStart(t *testing.T, dir string, logs *syncBuffer) (listeners, func() error, error) {
	t.Helper()
	args := []string{"-data", dir, "-http", "127.0.0.1:0", "-ws", "", "-tcp", "127.0.0.1:0"}
	cfg, err := parseConfig(args, func(string) string { return "" }, logs)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan listeners, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, logs, func(l listeners) { ready <- l }) }()
	select {
	case l := <-ready:
		return l, func() error { cancel(); return <-done }, nil
	case err := <-done:
		cancel()
		return listeners{}, nil, err
	}
}

func TestBitFlipsServeNoAlteredData(t *testing.T) {
	// Random bits flipped in the pages of a store the server wrote: the
	// server refuses to start with an error, or starts and serves every
	// message exactly as written or an error, and answers a resend of an
	// acknowledged message with its original seq or an error; never
	// altered data, never a panic.
	const n, trials = 60, 32
	w := writeDataDir(t, n)
	db, err := os.ReadFile(filepath.Join(w.dir, boltFile))
	require.NoError(t, err)
	const pageSize = 4096
	var used []int // pages holding anything
	for p := 0; p*pageSize < len(db); p++ {
		if bytes.ContainsFunc(db[p*pageSize:min(len(db), (p+1)*pageSize)], func(r rune) bool { return r != 0 }) {
			used = append(used, p)
		}
	}
	rng := rand.New(rand.NewPCG(20261201, 7))
	var refused, failedReads, intact int
	deadline := time.Now().Add(90 * time.Second)
	for trial := range trials {
		if time.Now().After(deadline) {
			t.Logf("stopped after %d trials: time is up", trial)
			break
		}
		dir := copyDir(t, w.dir)
		flipped := bytes.Clone(db)
		bits := 1 + rng.IntN(64)
		for range bits {
			p := used[rng.IntN(len(used))]
			off := p*pageSize + rng.IntN(pageSize)
			flipped[off] ^= 1 << rng.IntN(8)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, boltFile), flipped, 0o600))

		logs := new(syncBuffer)
		l, stop, err := tryStart(t, dir, logs)
		if err != nil {
			refused++
			t.Logf("trial %d (%d bits): refused to start: %v", trial, bits, err)
			continue
		}
		func() {
			defer func() { require.NoError(t, stop()) }()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			b, err := client.Dial(ctx, client.Options{Addr: l.TCP.String(), UserID: w.bobID, Token: w.bobToken})
			if err != nil {
				failedReads++
				t.Logf("trial %d (%d bits): bob cannot connect: %v", trial, bits, err)
				return
			}
			defer b.Close()
			rsp, err := b.SyncRange(ctx, w.conv, 1, n, n)
			if err != nil {
				failedReads++
				t.Logf("trial %d (%d bits): sync failed: %v", trial, bits, err)
			} else {
				require.Len(t, rsp.Messages, n, "trial %d: messages missing without an error", trial)
				for i, m := range rsp.Messages {
					require.True(t, proto.Equal(w.msgs[i], m), "trial %d: message %d altered:\nwant %v\ngot  %v", trial, i+1, w.msgs[i], m)
				}
				intact++
			}
			a, err := client.Dial(ctx, client.Options{Addr: l.TCP.String(), UserID: w.aliceID, Token: w.aliceToken})
			if err != nil {
				return
			}
			defer a.Close()
			i := rng.IntN(n)
			r, err := a.Send(ctx, client.Outgoing{ReceiverID: w.bobID, Type: im.TextMessage, ClientMsgID: w.clientIDs[i],
				Content: []byte(strings.Repeat(fmt.Sprintf("message %d ", i), 1+i%20))})
			if err == nil {
				require.Equal(t, w.sent[i].Seq, r.Seq, "trial %d: a resend of message %d stored again", trial, i+1)
				require.Equal(t, w.sent[i].ServerMsgId, r.ServerMsgId, "trial %d: a resend of message %d answered as another", trial, i+1)
			}
		}()
	}
	t.Logf("%d trials: %d refused to start, %d served an error, %d served every message intact", trials, refused, failedReads, intact)
}

func TestDataDirRefusals(t *testing.T) {
	w := writeDataDir(t, 3)
	_, err := os.Stat(filepath.Join(w.dir, manifestName))
	require.NoError(t, err, "the manifest is written at the first start")

	for _, tt := range []struct {
		name   string
		damage func(dir string)
		want   string
	}{
		{"Missing", func(dir string) { require.NoError(t, os.Remove(filepath.Join(dir, boltFile))) }, "imserver.db is missing, but"},
		{"Empty", func(dir string) { require.NoError(t, os.Truncate(filepath.Join(dir, boltFile), 0)) }, "imserver.db is empty (0 bytes), but"},
		{"EmptyWithoutManifest", func(dir string) {
			require.NoError(t, os.Truncate(filepath.Join(dir, boltFile), 0))
			require.NoError(t, os.Remove(filepath.Join(dir, manifestName)))
		}, "imserver.db is empty (0 bytes): it is no store"},
		{"AnotherStore", func(dir string) {
			other := writeDataDir(t, 1)
			b, err := os.ReadFile(filepath.Join(other.dir, boltFile))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, boltFile), b, 0o600))
		}, "is not the one this data dir was initialised with"},
		{"ManifestDamaged", func(dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, manifestName), []byte("{"), 0o600))
		}, "imserver.json is damaged"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDir(t, w.dir)
			tt.damage(dir)
			before := snapshotDir(t, dir)
			_, _, err := tryStart(t, dir, new(syncBuffer))
			require.ErrorContains(t, err, tt.want)
			after := snapshotDir(t, dir)
			if tt.name == "AnotherStore" {
				// Refused once opened: the store's index file was
				// rebuilt for it, and bbolt commits on every open;
				// the manifest stands.
				before, after = map[string]string{"m": before[manifestName]}, map[string]string{"m": after[manifestName]}
			}
			require.True(t, maps.Equal(before, after), "a refused start changes nothing")
		})
	}

	t.Run("Adopted", func(t *testing.T) {
		// A data dir from before manifests is adopted.
		dir := copyDir(t, w.dir)
		require.NoError(t, os.Remove(filepath.Join(dir, manifestName)))
		_, stop, err := tryStart(t, dir, new(syncBuffer))
		require.NoError(t, err)
		require.NoError(t, stop())
		m, err := readManifest(dir)
		require.NoError(t, err)
		require.Equal(t, "bolt", m.Store)
		orig, err := readManifest(w.dir)
		require.NoError(t, err)
		require.Equal(t, orig.StoreID, m.StoreID)
	})
}

// snapshotDir returns the names and contents of dir's files.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		out[e.Name()] = string(b)
	}
	return out
}

func TestCheckCommand(t *testing.T) {
	bin := buildImserver(t)
	w := writeDataDir(t, 20)
	check := func(dir string) (string, int) {
		out, err := exec.Command(bin, "check", "-data", dir).CombinedOutput()
		code := 0
		if e, ok := err.(*exec.ExitError); ok {
			code = e.ExitCode()
		} else {
			require.NoError(t, err)
		}
		return string(out), code
	}

	out, code := check(w.dir)
	require.Zero(t, code, out)
	require.Equal(t, 1, strings.Count(out, "\n"), out)
	require.Contains(t, out, "is clean")
	require.Contains(t, out, "20 messages")

	// Damaged: a byte of a message record, through the real file.
	dir := copyDir(t, w.dir)
	path := filepath.Join(dir, boltFile)
	db, err := os.ReadFile(path)
	require.NoError(t, err)
	// Every copy of the record's bytes: the file may hold stale copies in
	// free pages besides the live one (bbolt copies pages on write), and
	// damage to a stale copy alone is rightly no problem.
	target := []byte("message 7 message 7")
	require.Positive(t, bytes.Count(db, target))
	for i := 0; ; {
		j := bytes.Index(db[i:], target)
		if j < 0 {
			break
		}
		db[i+j] ^= 0x20
		i += j + len(target)
	}
	require.NoError(t, os.WriteFile(path, db, 0o600))
	before := snapshotDir(t, dir)
	out, code = check(dir)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "problem: ")
	require.Contains(t, out, "integrity check")
	require.True(t, maps.Equal(before, snapshotDir(t, dir)), "check changes nothing")

	// Refused: an empty database, and one in use.
	dir = copyDir(t, w.dir)
	require.NoError(t, os.Truncate(filepath.Join(dir, boltFile), 0))
	out, code = check(dir)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "empty (0 bytes)")
	_, stop := start(t, w.dir, new(syncBuffer))
	out, code = check(w.dir)
	require.Equal(t, 2, code, out)
	require.Contains(t, out, "stop it first")
	stop()
}

func TestSQLiteStoreIdentity(t *testing.T) {
	// The manifest ties a SQL store's data dir to its database: another
	// database behind -dsn is refused.
	dir := t.TempDir()
	dsn := filepath.Join(t.TempDir(), "a.sqlite")
	startSQLite := func(dsn string) error {
		args := []string{"-store", "sqlite", "-dsn", dsn, "-data", dir, "-http", "127.0.0.1:0", "-ws", "", "-tcp", "127.0.0.1:0"}
		cfg, err := parseConfig(args, func(string) string { return "" }, new(syncBuffer))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- run(ctx, cfg, new(syncBuffer), func(listeners) { close(ready) }) }()
		select {
		case <-ready:
			cancel()
			return <-done
		case err := <-done:
			cancel()
			return err
		}
	}
	require.NoError(t, startSQLite(dsn))
	m, err := readManifest(dir)
	require.NoError(t, err)
	require.Equal(t, "sqlite", m.Store)
	require.NoError(t, startSQLite(dsn), "the same database again")
	err = startSQLite(filepath.Join(t.TempDir(), "b.sqlite"))
	require.ErrorContains(t, err, "is not the one this data dir was initialised with")
	require.ErrorContains(t, err, "-dsn names another database")
}
