// Command embed is an existing web backend that adds chat by embedding
// imserver: its own mux, its own login and sessions, its own shutdown. The
// IM server is a few more handlers on the backend's mux: the WebSocket
// endpoint /ws, the HTTP API (IM-iOS-SDK's group calls, health) under the
// prefix /chat/, metrics for the backend's operators on a path of its
// choosing, and a TCP listener beside. All verify the backend's own session
// tokens through a custom im.Authenticator. The README's embedding section
// shows run; a test keeps the two the same.
//
//	go run ./examples/embed -addr 127.0.0.1:8090 -tcp 127.0.0.1:8092
//	curl -s 'localhost:8090/login?user=alice'   # → a session token
//	curl -s -H "Authorization: Bearer $TOKEN" --json '{"groupName":"team","memberUserIDs":["bob"]}' \
//	    localhost:8090/chat/api/group/create
//	curl -s localhost:8090/chat/health
//
// then connect to ws://localhost:8090/ws?token=… or to the TCP port with
// any client of the protocol (see docs/PROTOCOL.md).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/transport/httpapi"
	"github.com/imserver/imserver/transport/tcp"
	"github.com/imserver/imserver/transport/websocket"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "HTTP listen address")
	tcpAddr := flag.String("tcp", "127.0.0.1:8092", "TCP listen address")
	dir := flag.String("data", "./embed-data", "data directory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		log.Fatal(err)
	}
	if err := run(ctx, *addr, *tcpAddr, *dir, nil); err != nil {
		log.Fatal(err)
	}
}

// sessions is the backend's own login state, standing in for whatever a real
// backend already has (cookies, OAuth, its own JWTs).
type sessions struct {
	mu     sync.Mutex
	tokens map[string]string // token → user id
}

func (s *sessions) login(user string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	s.mu.Lock()
	s.tokens[tok] = user
	s.mu.Unlock()
	return tok
}

// Authenticate makes sessions an im.Authenticator.
func (s *sessions) Authenticate(_ context.Context, token string) (im.Identity, error) {
	s.mu.Lock()
	user, ok := s.tokens[token]
	s.mu.Unlock()
	if !ok {
		return im.Identity{}, fmt.Errorf("%w: unknown session", im.ErrUnauthenticated)
	}
	return im.Identity{UserID: user}, nil
}

// only lets through the requests that carry, as a bearer token, a session
// of user: the backend's own access rule, here for its operators.
func (s *sessions) only(user string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if id, err := s.Authenticate(r.Context(), tok); err != nil || id.UserID != user {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// run serves until ctx ends. ready, if set, gets the listening addresses.
func run(ctx context.Context, addr, tcpAddr, dir string, ready func(httpAddr, tcpAddr net.Addr)) error {
	store, err := bolt.Open(filepath.Join(dir, "chat.db"), bolt.Options{})
	if err != nil {
		return err
	}
	defer store.Close() // the host opened it, the host closes it

	auth := &sessions{tokens: map[string]string{}} // the backend's own login
	chat, err := im.NewServer(im.Config{
		Store:         store,
		Authenticator: auth, // verifies the backend's session tokens
		Logger:        slog.Default(),
		// Moderation, as a backend would plug it in.
		BeforeSend: func(_ context.Context, m *im.Message) error {
			if len(m.Content) > 1000 {
				return errors.New("messages here are short")
			}
			return nil
		},
	})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		if im.ValidateID("user", user) != nil {
			http.Error(w, "bad user", http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, auth.login(user))
	})
	// The WebSocket endpoint.
	mux.Handle("/ws", websocket.NewHandler(chat, websocket.Options{}))
	// The HTTP API under a prefix of the backend's choosing: the SDK's
	// base URL is then http://host/chat, its group calls
	// /chat/api/group/..., the health check /chat/health. No
	// Options.Accounts: the backend has its own accounts, so register and
	// login are left out, and neither bcrypt nor a JWT library is linked.
	mux.Handle("/chat/", http.StripPrefix("/chat", httpapi.NewHandler(httpapi.Options{
		Server: chat,
		Health: chat.Health,
		Logger: slog.Default(),
	})))
	// Metrics (Prometheus text) on the backend's own path, behind its own
	// access rule: the counters are for its operators, not the public.
	mux.Handle("GET /admin/chat/metrics", auth.only("ops", httpapi.NewMetricsHandler(chat.Stats)))

	// The TCP transport, for native clients. chat.Shutdown stops it too.
	tl, err := net.Listen("tcp", tcpAddr)
	if err != nil {
		_ = chat.Close()
		return err
	}
	tcpDone := make(chan error, 1)
	go func() { tcpDone <- tcp.NewServer(chat, tcp.Options{Logger: slog.Default()}).Serve(tl) }()

	l, err := net.Listen("tcp", addr)
	if err != nil {
		_ = chat.Close() // and the TCP listener with it
		<-tcpDone
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(l) }()
	if ready != nil {
		ready(l.Addr(), tl.Addr())
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		_ = chat.Close() // and the transports with it
		<-tcpDone
		return err
	case err := <-tcpDone:
		_ = chat.Close()
		_ = hs.Close()
		<-served
		return err
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// One call stops all of the chat: the TCP listener closes, the
	// WebSocket handler refuses new upgrades (503), the sessions are
	// drained and their connections closed, and it returns once none is
	// left, which net/http could not do (it does not track hijacked
	// connections). Then the backend's own server, for its other routes.
	if err := chat.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-tcpDone; !errors.Is(err, im.ErrServerClosed) {
		return err
	}
	if err := hs.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
