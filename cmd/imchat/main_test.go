package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/wire"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func noEnv(string) string { return "" }

// imchat runs the command with args to its end and returns its stdout.
func imchat(t *testing.T, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, noEnv, stdin, &stdout, &stderr)
	t.Logf("imchat %q: err %v, stderr:\n%s", args, err, stderr.String())
	return stdout.String(), err
}

func TestBadCommandLines(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2ln" // {"sub":"bob"}, signature unchecked here
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "-token is required"},
		{[]string{"-token", jwt, "extra"}, `unexpected argument "extra"`},
		{[]string{"-token", jwt, "-to", "a", "-group", "g"}, "-to and -group exclude each other"},
		{[]string{"-token", jwt, "-send", "hi"}, "-send needs -to or -group"},
		{[]string{"-token", jwt, "-id", "m1"}, "-id goes with -send"},
		{[]string{"-token", jwt, "-to", "a", "-send", "hi", "-sync"}, "-sync and -send exclude each other"},
		{[]string{"-token", jwt, "-n", "-1"}, "-n must not be negative"},
		{[]string{"-token", jwt, "-timeout", "0s"}, "-timeout must be positive"},
		{[]string{"-token", "not-a-jwt"}, "give -user"},
		{[]string{"-token", "a.!!!.c"}, "give -user"},
		{[]string{"-token", "a.e30.c"}, "give -user"}, // {} has no subject
	} {
		_, err := imchat(t, strings.NewReader(""), tc.args...)
		require.ErrorIs(t, err, errUsage, "%q", tc.args)
		require.ErrorContains(t, err, tc.want, "%q", tc.args)
	}
	_, err := imchat(t, strings.NewReader(""), "-nosuchflag")
	require.ErrorContains(t, err, "flag provided but not defined")
}

func TestSubjectAndAddr(t *testing.T) {
	o, err := parse([]string{"-token", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2ln"}, noEnv, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "bob", o.user)
	require.Equal(t, "localhost:8082", o.addr)
	o, err = parse([]string{"-token", "opaque", "-user", "carol"}, func(k string) string {
		if k == "IMCHAT_ADDR" {
			return "ws://example.test/ws"
		}
		return ""
	}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "carol", o.user)
	require.Equal(t, "ws://example.test/ws", o.addr)
}

func TestChat(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Memory: true})
	alice, bob := srv.Token(t, "alice"), srv.Token(t, "bob")
	conv := wire.SingleConversationID("alice", "bob")

	// One-shot sends over both transports; the same -id is a retry.
	out, err := imchat(t, nil, "-addr", srv.TCPAddr, "-token", alice, "-to", "bob", "-send", "hello bob")
	require.NoError(t, err)
	require.Equal(t, "sent seq 1 in "+conv+"\n", out)
	for range 2 {
		out, err = imchat(t, nil, "-addr", srv.WSURL, "-token", alice, "-to", "bob", "-id", "m2", "-send", "once")
		require.NoError(t, err)
		require.Equal(t, "sent seq 2 in "+conv+"\n", out)
	}

	// A group message, a notice, and the sync that shows them all.
	ctx := context.Background()
	g, err := srv.CreateGroup(ctx, "alice", im.GroupSpec{Name: "g"}, []string{"bob"})
	require.NoError(t, err)
	out, err = imchat(t, nil, "-addr", srv.TCPAddr, "-token", alice, "-group", g.ID, "-send", "two\nlines")
	require.NoError(t, err)
	require.Equal(t, "sent seq 2 in group_"+g.ID+"\n", out)
	out, err = imchat(t, nil, "-addr", srv.TCPAddr, "-token", bob, "-sync")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 4, out)
	require.Contains(t, out, conv+" seq 1 from alice: hello bob\n")
	require.Contains(t, out, conv+" seq 2 from alice: once\n")
	require.Contains(t, out, "group_"+g.ID+" seq 1 from alice: (notice) {")
	require.Contains(t, out, "group_"+g.ID+` seq 2 from alice: two\nlines`+"\n")

	// -n stops after that many messages, the synced ones included.
	out, err = imchat(t, nil, "-addr", srv.TCPAddr, "-token", bob, "-n", "1")
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(out, "\n"), out)

	// Chatting: each line on stdin is sent, and pushes are printed. Bob's
	// client prints his 4 messages, sends his line, and ends at the 5th
	// message, Alice's answer.
	r, w := io.Pipe()
	defer w.Close()
	done := make(chan struct{})
	var chat string
	var chatErr error
	go func() {
		defer close(done)
		chat, chatErr = imchat(t, r, "-addr", srv.WSURL, "-token", bob, "-to", "alice", "-n", "5")
	}()
	_, err = io.WriteString(w, "\nhi alice\n")
	require.NoError(t, err)
	c := srv.Dial(t, "tcp", "alice")
	require.Eventually(t, func() bool {
		rsp, err := c.SyncRange(ctx, conv, 3, 3, 1)
		return err == nil && len(rsp.Messages) == 1 && string(rsp.Messages[0].Content) == "hi alice"
	}, 10*time.Second, 10*time.Millisecond)
	out, err = imchat(t, nil, "-addr", srv.TCPAddr, "-token", alice, "-to", "bob", "-send", "hi bob")
	require.NoError(t, err)
	require.Equal(t, "sent seq 4 in "+conv+"\n", out)
	<-done
	require.NoError(t, chatErr)
	require.Contains(t, chat, "sent seq 3 in "+conv+"\n")
	require.True(t, strings.HasSuffix(chat, conv+" seq 4 from alice: hi bob\n"), chat)
	require.Equal(t, 6, strings.Count(chat, "\n"), chat)
}

func TestRefusals(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Memory: true})
	bob := srv.Token(t, "bob")

	_, err := imchat(t, nil, "-addr", srv.TCPAddr, "-token", bob+"x", "-sync")
	require.ErrorIs(t, err, wire.ErrUnauthenticated)
	require.ErrorContains(t, err, "connect to "+srv.TCPAddr)

	_, err = imchat(t, nil, "-addr", srv.TCPAddr, "-token", bob, "-user", "alice", "-sync")
	require.ErrorIs(t, err, wire.ErrUnauthenticated)

	// A message to a group one is not in is refused, and nothing is stored.
	out, err := imchat(t, nil, "-addr", srv.TCPAddr, "-token", bob, "-group", "nosuchgroup", "-send", "hi")
	require.Error(t, err)
	require.ErrorContains(t, err, "send:")
	require.Empty(t, out)
	out, err = imchat(t, nil, "-addr", srv.TCPAddr, "-token", bob, "-sync")
	require.NoError(t, err)
	require.Empty(t, out)

	// While chatting, a refused line is reported and the chat goes on.
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = run(ctx, []string{"-addr", srv.TCPAddr, "-token", bob, "-group", "nosuchgroup"}, noEnv, strings.NewReader("one\ntwo\n"), &stdout, &stderr)
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(stderr.String(), "imchat: send:"), stderr.String())
}
