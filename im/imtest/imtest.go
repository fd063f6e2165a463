// Package imtest runs a complete imserver in-process for tests, the way
// net/http/httptest serves net/http users: a real bbolt store in a temporary
// directory (or, with Options.Memory, a store/memstore), the JWT
// authenticator with built-in accounts, and the TCP, WebSocket and HTTP
// transports listening on ephemeral loopback ports.
//
// Tests of code that embeds imserver (bots, hooks, custom Authenticators)
// use it to talk to a real server over real sockets:
//
//	srv := imtest.NewServer(t, imtest.Options{})
//	alice := srv.Dial(t, "tcp", "alice")
//	bob := srv.Dial(t, "websocket", "bob")
//
// # Lifecycle
//
// NewServer registers cleanups with t: the server shuts down and its store
// closes when the test ends. Restart stops a server and starts a new one on
// the same data (the directory, or the same in-memory Store) and secret, to
// test what survives a restart.
package imtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/store/memstore"
	"github.com/imserver/imserver/transport/httpapi"
	"github.com/imserver/imserver/transport/tcp"
	"github.com/imserver/imserver/transport/websocket"
)

// Options configures a test server.
type Options struct {
	// Config is the im.Config to run with. Store and Authenticator are
	// filled in when nil; Logger defaults to t.Log at debug level.
	Config im.Config
	// Dir is the data directory; a new t.TempDir() when empty.
	Dir string
	// Memory keeps the data in a store/memstore.Store instead of a bbolt
	// file in Dir: no disk and no fsync, for tests that make many
	// servers or many writes. Restart hands the same Store to the new
	// server, so data survive a restart, though not the test.
	Memory bool
	// Secret is the JWT secret; random when empty.
	Secret []byte
	// WebSocket options for the WebSocket handler.
	WebSocket websocket.Options
	// CheckRecipients sets Config.Users to the built-in accounts, so that
	// messages to users that never registered fail with USER_NOT_EXIST.
	CheckRecipients bool
	// Token mints a token for userID that a custom Config.Authenticator
	// accepts; Server.Token, Dial and DialWith use it. Without it they use
	// the server's JWTs, and fail the test saying so when the custom
	// Authenticator refuses them: then set Token, or call DialWith with
	// the host's own token. Ignored without a custom Authenticator.
	Token func(userID string) (string, error)
}

// Store is what a test server keeps its data in: the Server's part and the
// built-in accounts. It is a *bolt.Store, or a *memstore.Store with
// Options.Memory.
type Store interface {
	im.Store
	auth.AccountStore
}

// Server is a running test server.
type Server struct {
	*im.Server
	Store    Store
	Tokens   *auth.JWT
	Accounts *auth.Accounts
	// TCPAddr is the host:port of the TCP transport.
	TCPAddr string
	// WSURL is the WebSocket endpoint, ws://127.0.0.1:port/ws.
	WSURL string
	// HTTPURL is the base URL of the HTTP API, accounts and groups
	// included (group routes take "Authorization: Bearer " + Token).
	HTTPURL string
	// Dir and Secret, to start a server on the same data (Restart).
	Dir    string
	Secret []byte

	opts       Options
	customAuth bool // Config.Authenticator was the caller's
	tcp        *tcp.Server
	ws         *httptest.Server
	wsHandler  *websocket.Handler
	api        *httptest.Server
	tcpDone    chan struct{}
	stop       sync.Once
}

// NewServer starts a server and registers its shutdown with t.Cleanup.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	return newServer(t, opts, nil)
}

// newServer is NewServer; mem, if not nil, is the in-memory store to keep
// (Restart).
func newServer(t testing.TB, opts Options, mem *memstore.Store) *Server {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if len(opts.Secret) == 0 {
		opts.Secret = make([]byte, 32)
		_, _ = rand.Read(opts.Secret)
	}
	s := &Server{Dir: opts.Dir, Secret: opts.Secret, opts: opts}
	var err error
	switch {
	case mem != nil:
		s.Store = mem
	case opts.Memory:
		s.Store = memstore.New()
	default:
		s.Store, err = bolt.Open(filepath.Join(opts.Dir, "imserver.db"), bolt.Options{})
		if err != nil {
			t.Fatalf("imtest: open store: %v", err)
		}
	}
	s.Tokens, err = auth.NewJWT(auth.JWTConfig{Secret: opts.Secret})
	if err != nil {
		t.Fatalf("imtest: %v", err)
	}
	// Cost 10, bcrypt's minimum here, keeps tests quick.
	s.Accounts, err = auth.NewAccounts(auth.AccountsConfig{Store: s.Store, Tokens: s.Tokens, BcryptCost: 10})
	if err != nil {
		t.Fatalf("imtest: %v", err)
	}
	cfg := opts.Config
	if cfg.Store == nil {
		cfg.Store = s.Store
	}
	if cfg.Authenticator == nil {
		cfg.Authenticator = s.Tokens
	} else {
		s.customAuth = true
	}
	if opts.CheckRecipients && cfg.Users == nil {
		cfg.Users = s.Accounts
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s.Server, err = im.NewServer(cfg)
	if err != nil {
		s.closeStore()
		t.Fatalf("imtest: %v", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("imtest: %v", err)
	}
	s.TCPAddr = l.Addr().String()
	s.tcp = tcp.NewServer(s.Server, tcp.Options{Logger: cfg.Logger})
	s.tcpDone = make(chan struct{})
	go func() {
		defer close(s.tcpDone)
		_ = s.tcp.Serve(l)
	}()

	mux := http.NewServeMux()
	wsOpts := opts.WebSocket
	if wsOpts.Logger == nil {
		wsOpts.Logger = cfg.Logger
	}
	s.wsHandler = websocket.NewHandler(s.Server, wsOpts)
	mux.Handle("/ws", s.wsHandler)
	s.ws = httptest.NewServer(mux)
	s.WSURL = "ws" + s.ws.URL[len("http"):] + "/ws"

	s.api = httptest.NewServer(httpapi.NewHandler(httpapi.Options{Accounts: s.Accounts, Server: s.Server, Health: s.Server.Health, Stats: s.Server.Stats, Logger: cfg.Logger}))
	s.HTTPURL = s.api.URL

	t.Cleanup(s.Stop)
	return s
}

// Stop shuts the server down gracefully and closes its store. It is safe to
// call more than once; NewServer's cleanup calls it too.
func (s *Server) Stop() {
	s.stop.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// The transports too: they registered with the im.Server.
		_ = s.Server.Shutdown(ctx)
		<-s.tcpDone
		s.ws.Close()
		s.api.Close()
		s.closeStore()
	})
}

// closeStore closes a bbolt store; memory has nothing to release.
func (s *Server) closeStore() {
	if b, ok := s.Store.(*bolt.Store); ok {
		_ = b.Close()
	}
}

// Restart stops s and starts a new server on the same data and secret, so
// tokens issued before stay valid. Config.Store is filled in anew, as
// NewServer does when it is nil; a custom Config.Authenticator is kept.
func (s *Server) Restart(t testing.TB) *Server {
	t.Helper()
	s.Stop()
	opts := s.opts
	opts.Config.Store = nil
	mem, _ := s.Store.(*memstore.Store)
	return newServer(t, opts, mem)
}

// Token returns a valid token for userID: one of the server's JWTs, or,
// with a custom Config.Authenticator, what Options.Token mints. With a
// custom Authenticator and no Options.Token it is the server's JWT if that
// Authenticator accepts it (a Guard around Tokens does), and otherwise it
// fails the test saying so: set Options.Token, or call DialWith with a
// token your Authenticator accepts.
func (s *Server) Token(t testing.TB, userID string) string {
	t.Helper()
	tok, err := s.token(userID)
	if err != nil {
		t.Fatalf("imtest: %v", err)
	}
	return tok
}

func (s *Server) token(userID string) (string, error) {
	if s.customAuth && s.opts.Token != nil {
		tok, err := s.opts.Token(userID)
		if err != nil {
			return "", fmt.Errorf("Options.Token for %q: %w", userID, err)
		}
		return tok, nil
	}
	tok, _, err := s.Tokens.Issue(userID)
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	if s.customAuth {
		// A custom Authenticator may take the server's JWTs (a Guard
		// around them does); if it does not, say what to do instead of
		// letting the dial fail with a bare "authentication failed".
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		id, err := s.opts.Config.Authenticator.Authenticate(ctx, tok)
		if err == nil && id.UserID != userID {
			err = fmt.Errorf("it names user %q", id.UserID)
		}
		if err != nil {
			return "", fmt.Errorf("token for %q: the custom Config.Authenticator refuses imtest's JWT (%w); "+
				"set Options.Token, or call DialWith with a token your Authenticator accepts in client.Options.Token", userID, err)
		}
	}
	return tok, nil
}

// Addr returns the address a client dials for transport: TCPAddr for "tcp",
// WSURL for "websocket".
func (s *Server) Addr(transport string) string {
	if transport == client.TransportWebSocket {
		return s.WSURL
	}
	return s.TCPAddr
}

// Dial connects and authenticates userID over transport ("tcp" or
// "websocket") with a fresh token from Token; with a custom
// Config.Authenticator that refuses the server's JWTs that needs
// Options.Token, or use DialWith with your own token. The client is closed when the test ends.
func (s *Server) Dial(t testing.TB, transport, userID string) *client.Client {
	t.Helper()
	return s.DialWith(t, client.Options{Transport: transport, UserID: userID})
}

// DialWith connects with o, filling in Addr and Token when they are empty
// (Token as the Token method makes it). With a custom Config.Authenticator
// that refuses the server's JWTs and no Options.Token, o.Token must be set.
func (s *Server) DialWith(t testing.TB, o client.Options) *client.Client {
	t.Helper()
	if o.Addr == "" {
		o.Addr = s.Addr(o.Transport)
	}
	if o.Token == "" {
		tok, err := s.token(o.UserID)
		if err != nil {
			t.Fatalf("imtest: dial %s as %s: %v", o.Transport, o.UserID, err)
		}
		o.Token = tok
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, o)
	if err != nil {
		t.Fatalf("imtest: dial %s as %s: %v", o.Transport, o.UserID, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testWriter sends log lines to t.Log, so they show only for failing tests.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}
