package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/store/sqlstore/sqltest"
)

// Two imserver processes on one PostgreSQL or MySQL database, as a
// deployment runs them: the group rules hold whichever process a change,
// a send or a sync goes through.

func TestGroupsAcrossProcessesPostgres(t *testing.T) {
	testGroupsAcrossProcesses(t, "postgres", sqltest.Postgres)
}
func TestGroupsAcrossProcessesMySQL(t *testing.T) {
	testGroupsAcrossProcesses(t, "mysql", sqltest.MySQL)
}

const (
	processSecret  = "process-test-secret-0123456789abcdef"
	processMaxSize = 6
)

// buildImserver builds this command into a directory removed when t ends.
func buildImserver(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "imserver")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build:\n%s", out)
	return bin
}

// process is a running imserver.
type process struct {
	http, tcp string
}

// freeAddr returns a loopback address with a port free at the moment.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// startProcess runs imserver on store/dsn until the test ends.
func startProcess(t *testing.T, bin, store, dsn string) process {
	p := process{http: freeAddr(t), tcp: freeAddr(t)}
	logs := new(syncBuffer)
	cmd := exec.Command(bin, "-store", store, "-dsn", dsn, "-data", t.TempDir(),
		"-http", p.http, "-ws", "", "-tcp", p.tcp, "-jwt-secret", processSecret,
		"-check-recipients=false", "-max-group-members", fmt.Sprint(processMaxSize), "-send-rate", "-1",
		"-group-add-anyone", "-group-adds-per-minute", "-1")
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("imserver %s log:\n%s", p.tcp, logs)
		}
	})
	// Ready once the TCP listener answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.tcp, time.Second)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case <-exited:
			t.Fatalf("imserver exited:\n%s", logs)
		default:
		}
		require.True(t, time.Now().Before(deadline), "imserver not listening within 30 s:\n%s", logs)
		time.Sleep(20 * time.Millisecond)
	}
}

// token mints a token the processes accept (they share the secret).
func token(t *testing.T, user string) string {
	j, err := auth.NewJWT(auth.JWTConfig{Secret: []byte(processSecret)})
	require.NoError(t, err)
	tok, _, err := j.Issue(user)
	require.NoError(t, err)
	return tok
}

// call makes an HTTP API call as user and returns the envelope.
func call(ctx context.Context, t *testing.T, p process, user, path string, body any) envelope {
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.http+path, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token(t, user))
	req.Header.Set("Content-Type", "application/json")
	rsp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer rsp.Body.Close()
	var e envelope
	require.NoError(t, json.NewDecoder(rsp.Body).Decode(&e))
	return e
}

func createGroup(ctx context.Context, t *testing.T, p process, owner string, policy im.JoinPolicy, members ...string) string {
	e := call(ctx, t, p, owner, "/api/group/create", map[string]any{"groupName": "G", "memberUserIDs": members, "joinPolicy": policy})
	require.Zero(t, e.Code, e.Message)
	var g struct{ GroupID string }
	require.NoError(t, json.Unmarshal(e.Data, &g))
	return g.GroupID
}

func dial(ctx context.Context, t *testing.T, p process, user string) *client.Client {
	c, err := client.Dial(ctx, client.Options{Addr: p.tcp, UserID: user, Token: token(t, user)})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func testGroupsAcrossProcesses(t *testing.T, store string, fresh func(testing.TB) string) {
	dsn := fresh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bin := buildImserver(t)
	a, b := startProcess(t, bin, store, dsn), startProcess(t, bin, store, dsn)

	t.Run("KickedThroughA", func(t *testing.T) {
		gid := createGroup(ctx, t, a, "owner", im.JoinInviteOnly, "alice", "bob")
		conv := im.GroupConversationID(gid)
		alice, bob := dial(ctx, t, b, "alice"), dial(ctx, t, b, "bob")
		send := func(c *client.Client, text string) (*imv1.SendMessageResponse, error) {
			return c.Send(ctx, client.Outgoing{ConversationID: conv, Type: im.TextMessage, Content: []byte(text)})
		}
		_, err := send(alice, "before") // B now caches the members
		require.NoError(t, err)

		e := call(ctx, t, a, "owner", "/api/group/"+gid+"/kick", map[string]any{"userIDs": []string{"alice"}})
		require.Zero(t, e.Code, e.Message)

		// Posted through A after the kick: B has not heard of the kick
		// yet, and must not let her read it.
		bobA := dial(ctx, t, a, "bob")
		_, err = send(bobA, "through A")
		require.NoError(t, err)
		var ce *client.Error
		_, err = alice.SyncRange(ctx, conv, 1, 0, 100)
		require.ErrorAs(t, err, &ce, "B lets a member kicked through A read the group")
		require.Equal(t, imv1.ErrorCode_ERR_PERMISSION_DENIED, ce.Code)
		rsp, err := alice.BatchSync(ctx, map[string]int64{}, 100)
		require.NoError(t, err)
		for _, cm := range rsp.ConversationMessages {
			require.NotEqual(t, conv, cm.ConversationId, "B's batch sync gives a member kicked through A the group")
		}

		_, err = send(alice, "after")
		require.ErrorAs(t, err, &ce, "a member kicked through A sends through B")
		require.Equal(t, imv1.ErrorCode_ERR_PERMISSION_DENIED, ce.Code)

		_, err = send(bob, "secret")
		require.NoError(t, err)
		_, err = bob.Send(ctx, client.Outgoing{ReceiverID: "alice", Type: im.TextMessage, Content: []byte("marker")})
		require.NoError(t, err)
		for marker := false; !marker; {
			select {
			case p := <-alice.Pushes():
				if pm, ok := p.Message.(*imv1.PushMessage); ok {
					require.NotEqual(t, "secret", string(pm.Message.Content), "B pushed a group message to a member kicked through A")
					require.NotEqual(t, "through A", string(pm.Message.Content))
					marker = string(pm.Message.Content) == "marker"
				}
			case <-ctx.Done():
				t.Fatal("no marker push")
			}
		}
	})

	t.Run("ConcurrentJoins", func(t *testing.T) {
		gid := createGroup(ctx, t, a, "owner", im.JoinOpen)
		const joiners = 16
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			joined int
		)
		for i := range joiners {
			p := a
			if i%2 == 1 {
				p = b
			}
			wg.Go(func() {
				e := call(ctx, t, p, fmt.Sprintf("j%02d", i), "/api/group/"+gid+"/join", nil)
				mu.Lock()
				defer mu.Unlock()
				if e.Code == 0 {
					joined++
				}
			})
		}
		wg.Wait()
		require.Equal(t, processMaxSize-1, joined, "joins through two processes stop at the limit")
		for _, p := range []process{a, b} {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.http+"/api/group/"+gid+"/members", nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+token(t, "owner"))
			rsp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			var e envelope
			require.NoError(t, json.NewDecoder(rsp.Body).Decode(&e))
			rsp.Body.Close()
			var members []json.RawMessage
			require.NoError(t, json.Unmarshal(e.Data, &members))
			require.Len(t, members, processMaxSize)
		}
	})

	t.Run("Dismissed", func(t *testing.T) {
		gid := createGroup(ctx, t, a, "owner", im.JoinInviteOnly, "carol")
		conv := im.GroupConversationID(gid)
		ownerB, carolB := dial(ctx, t, b, "owner"), dial(ctx, t, b, "carol")
		carolA := dial(ctx, t, a, "carol")
		_, err := carolB.Send(ctx, client.Outgoing{ConversationID: conv, Type: im.TextMessage, Content: []byte("hi")})
		require.NoError(t, err)
		e := call(ctx, t, a, "owner", "/api/group/"+gid+"/dismiss", nil)
		require.Zero(t, e.Code, e.Message)
		for name, c := range map[string]*client.Client{"owner on B": ownerB, "carol on B": carolB, "carol on A": carolA} {
			_, err := c.Send(ctx, client.Outgoing{ConversationID: conv, Type: im.TextMessage, Content: []byte("anyone?")})
			require.Error(t, err, "%s sent to a dismissed group", name)
		}
	})
}
