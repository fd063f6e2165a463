package imtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imtest"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/store/memstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// both runs f on a server of each kind of store.
func both(t *testing.T, f func(t *testing.T, opts imtest.Options)) {
	t.Run("Bolt", func(t *testing.T) { f(t, imtest.Options{}) })
	t.Run("Memory", func(t *testing.T) { f(t, imtest.Options{Memory: true}) })
}

func TestStoreKind(t *testing.T) {
	if _, ok := imtest.NewServer(t, imtest.Options{}).Store.(*bolt.Store); !ok {
		t.Error("the default Store is not a *bolt.Store")
	}
	if _, ok := imtest.NewServer(t, imtest.Options{Memory: true}).Store.(*memstore.Store); !ok {
		t.Error("Options.Memory did not give a *memstore.Store")
	}
}

// A message sent over one transport reaches the receiver on the other, by
// push and by sync.
func TestDialAcrossTransports(t *testing.T) {
	both(t, func(t *testing.T, opts imtest.Options) {
		srv := imtest.NewServer(t, opts)
		alice := srv.Dial(t, client.TransportTCP, "alice")
		bob := srv.Dial(t, client.TransportWebSocket, "bob")
		rsp, err := alice.Send(ctx(t), client.Outgoing{ReceiverID: "bob", Type: im.TextMessage, Content: []byte("hi")})
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		if rsp.Seq != 1 {
			t.Errorf("first message has seq %d, want 1", rsp.Seq)
		}
		select {
		case p := <-bob.Pushes():
			m, ok := p.Message.(*imv1.PushMessage)
			if !ok || string(m.GetMessage().GetContent()) != "hi" {
				t.Errorf("bob's push: %v %v", p.Command, p.Message)
			}
		case <-ctx(t).Done():
			t.Fatal("bob got no push")
		}
		// The push moved the client's cursor, so ask from the start.
		sync, err := bob.BatchSync(ctx(t), nil, 0)
		if err != nil {
			t.Fatalf("BatchSync: %v", err)
		}
		if cms := sync.ConversationMessages; len(cms) != 1 || len(cms[0].Messages) != 1 || cms[0].Messages[0].SenderId != "alice" {
			t.Errorf("bob synced %v, want alice's message", cms)
		}
	})
}

// Token gives tokens the server accepts, for the user they name only.
func TestToken(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Memory: true})
	id, err := srv.Authenticate(ctx(t), srv.Token(t, "carol"))
	if err != nil || id.UserID != "carol" {
		t.Errorf("Authenticate(Token(carol)) = %+v, %v", id, err)
	}
	_, err = client.Dial(ctx(t), client.Options{Addr: srv.TCPAddr, UserID: "dave", Token: srv.Token(t, "carol")})
	if !errors.Is(err, im.ErrUnauthenticated) {
		t.Errorf("dialing as dave with carol's token: %v, want ErrUnauthenticated", err)
	}
	_, err = client.Dial(ctx(t), client.Options{Addr: srv.TCPAddr, UserID: "carol", Token: "not a token"})
	if !errors.Is(err, im.ErrUnauthenticated) {
		t.Errorf("dialing with a bad token: %v, want ErrUnauthenticated", err)
	}
}

// Restart keeps messages, seqs and tokens.
func TestRestart(t *testing.T) {
	both(t, func(t *testing.T, opts imtest.Options) {
		srv := imtest.NewServer(t, opts)
		token := srv.Token(t, "alice")
		alice := srv.DialWith(t, client.Options{Transport: client.TransportTCP, UserID: "alice", Token: token})
		for i := 1; i <= 2; i++ {
			if _, err := alice.Send(ctx(t), client.Outgoing{ReceiverID: "bob", Type: im.TextMessage, Content: []byte("x")}); err != nil {
				t.Fatalf("Send %d: %v", i, err)
			}
		}
		_ = alice.Close()

		srv = srv.Restart(t)
		alice = srv.DialWith(t, client.Options{Transport: client.TransportWebSocket, UserID: "alice", Token: token})
		rsp, err := alice.Send(ctx(t), client.Outgoing{ReceiverID: "bob", Type: im.TextMessage, Content: []byte("y")})
		if err != nil {
			t.Fatalf("Send after restart: %v", err)
		}
		if rsp.Seq != 3 {
			t.Errorf("seq after restart = %d, want 3", rsp.Seq)
		}
		got, err := srv.Dial(t, client.TransportTCP, "bob").SyncAll(ctx(t))
		if err != nil {
			t.Fatalf("SyncAll: %v", err)
		}
		if len(got) != 3 {
			t.Errorf("bob synced %d messages after the restart, want 3", len(got))
		}
	})
}

// The HTTP API registers and logs in accounts kept in the Store, and
// CheckRecipients refuses messages to users without one.
func TestAccountsAndCheckRecipients(t *testing.T) {
	both(t, func(t *testing.T, opts imtest.Options) {
		opts.CheckRecipients = true
		srv := imtest.NewServer(t, opts)
		post := func(path, body string) map[string]any {
			t.Helper()
			req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, srv.HTTPURL+path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out struct {
				Code int            `json:"code"`
				Data map[string]any `json:"data"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Code != 0 {
				t.Fatalf("POST %s: code %d, %v", path, out.Code, err)
			}
			return out.Data
		}
		reg := post("/api/auth/register", `{"username":"erin","password":"correct horse"}`)
		login := post("/api/auth/login", `{"username":"erin","password":"correct horse"}`)
		erinID, _ := reg["userID"].(string)
		if _, err := srv.Store.Account(ctx(t), erinID); err != nil {
			t.Errorf("the registered account is not in srv.Store: %v", err)
		}

		alice := srv.Dial(t, client.TransportTCP, "alice")
		if _, err := alice.Send(ctx(t), client.Outgoing{ReceiverID: erinID, Type: im.TextMessage, Content: []byte("hi")}); err != nil {
			t.Errorf("Send to a registered user: %v", err)
		}
		_, err := alice.Send(ctx(t), client.Outgoing{ReceiverID: "nobody", Type: im.TextMessage, Content: []byte("hi")})
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != imv1.ErrorCode_ERR_USER_NOT_EXIST {
			t.Errorf("Send to an unknown user: %v, want USER_NOT_EXIST", err)
		}

		token, _ := login["token"].(string)
		erin := srv.DialWith(t, client.Options{Transport: client.TransportTCP, UserID: erinID, Token: token})
		got, err := erin.SyncAll(ctx(t))
		if err != nil || len(got) != 1 {
			t.Errorf("erin synced %d messages, %v; want 1", len(got), err)
		}
	})
}

// fatalRecorder stands in for the test where imtest is expected to fail
// it: Fatalf records the message and ends the goroutine, as t.Fatalf does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatal runs f with a fatalRecorder and returns what it failed with, "" if
// it did not.
func fatal(t *testing.T, f func(tb testing.TB)) string {
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.msg
}

// A host's own tokens: "session-" + user id.
var hostAuth = im.AuthenticatorFunc(func(_ context.Context, token string) (im.Identity, error) {
	user, ok := strings.CutPrefix(token, "session-")
	if !ok {
		return im.Identity{}, fmt.Errorf("%w: not a session", im.ErrUnauthenticated)
	}
	return im.Identity{UserID: user}, nil
})

func TestCustomAuthenticatorWithoutTokenFunc(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Memory: true, Config: im.Config{Authenticator: hostAuth}})
	for name, f := range map[string]func(tb testing.TB){
		"Token":    func(tb testing.TB) { srv.Token(tb, "alice") },
		"Dial":     func(tb testing.TB) { srv.Dial(tb, client.TransportTCP, "alice") },
		"DialWith": func(tb testing.TB) { srv.DialWith(tb, client.Options{UserID: "alice"}) },
	} {
		msg := fatal(t, f)
		if !strings.Contains(msg, "custom Config.Authenticator") || !strings.Contains(msg, "DialWith") || !strings.Contains(msg, "Options.Token") {
			t.Errorf("%s with a custom Authenticator failed with %q, want it to point to Options.Token and DialWith", name, msg)
		}
	}
	if n := len(srv.Sessions("alice")); n != 0 {
		t.Errorf("%d sessions after the refused dials", n)
	}

	// The way out the message names: the host's own token.
	alice := srv.DialWith(t, client.Options{Transport: client.TransportWebSocket, UserID: "alice", Token: "session-alice"})
	bob := srv.DialWith(t, client.Options{Transport: client.TransportTCP, UserID: "bob", Token: "session-bob"})
	if _, err := alice.Send(ctx(t), client.Outgoing{ReceiverID: "bob", Type: im.TextMessage, Content: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	if p := <-bob.Pushes(); string(p.Message.(*imv1.PushMessage).Message.Content) != "hi" {
		t.Errorf("bob got %v", p)
	}

	// Restart keeps the host's Authenticator: its tokens still work and
	// the server's JWTs still do not.
	srv = srv.Restart(t)
	srv.DialWith(t, client.Options{UserID: "alice", Token: "session-alice"})
	jwt, _, err := srv.Tokens.Issue("alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Dial(ctx(t), client.Options{Addr: srv.TCPAddr, UserID: "alice", Token: jwt}); !errors.Is(err, im.ErrUnauthenticated) {
		t.Errorf("a JWT against the host's Authenticator after Restart: %v, want ErrUnauthenticated", err)
	}
}

func TestCustomAuthenticatorWithTokenFunc(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Memory: true, Config: im.Config{Authenticator: hostAuth},
		Token: func(user string) (string, error) {
			if user == "" {
				return "", errors.New("no user")
			}
			return "session-" + user, nil
		}})
	if got := srv.Token(t, "carol"); got != "session-carol" {
		t.Errorf("Token(carol) = %q, want Options.Token's session-carol", got)
	}
	alice := srv.Dial(t, client.TransportTCP, "alice")
	bob := srv.Dial(t, client.TransportWebSocket, "bob")
	if _, err := alice.Send(ctx(t), client.Outgoing{ReceiverID: "bob", Type: im.TextMessage, Content: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	if p := <-bob.Pushes(); string(p.Message.(*imv1.PushMessage).Message.Content) != "hi" {
		t.Errorf("bob got %v", p)
	}
	if msg := fatal(t, func(tb testing.TB) { srv.Token(tb, "") }); !strings.Contains(msg, "no user") {
		t.Errorf("Token with a failing Options.Token failed with %q, want its error", msg)
	}
}

// A client that has only its token learns who it is from the real server's
// AuthResponse, over either transport.
func TestClientLearnsUserID(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Memory: true})
	for _, tr := range []string{client.TransportTCP, client.TransportWebSocket} {
		c := srv.DialWith(t, client.Options{Transport: tr, Token: srv.Token(t, "alice")})
		if c.UserID() != "alice" {
			t.Errorf("%s: UserID() = %q, want alice", tr, c.UserID())
		}
		if _, err := c.Send(ctx(t), client.Outgoing{ReceiverID: "bob", Type: im.TextMessage, Content: []byte("hi")}); err != nil {
			t.Errorf("%s: send as the learnt user: %v", tr, err)
		}
	}
}
