// Command embed is an existing web backend that adds chat by embedding
// imserver: its own mux, its own login and sessions, its own shutdown. The
// IM server is two more handlers: /ws, and IM-iOS-SDK's group calls under
// /api/group/. Both verify the backend's own session tokens through a
// custom im.Authenticator.
//
//	go run ./examples/embed -addr 127.0.0.1:8090
//	curl -s 'localhost:8090/login?user=alice'   # → a session token
//	curl -s -H "Authorization: Bearer $TOKEN" --json '{"groupName":"team","memberUserIDs":["bob"]}' \
//	    localhost:8090/api/group/create
//
// then connect to ws://localhost:8090/ws?token=… with any client of the
// protocol (see docs/PROTOCOL.md).
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
	"sync"
	"syscall"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/transport/httpapi"
	"github.com/imserver/imserver/transport/websocket"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	dir := flag.String("data", "./embed-data", "data directory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *dir, nil); err != nil {
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

// run serves until ctx ends. ready, if set, gets the listening address.
func run(ctx context.Context, addr, dir string, ready func(net.Addr)) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	store, err := bolt.Open(filepath.Join(dir, "chat.db"), bolt.Options{})
	if err != nil {
		return err
	}
	defer store.Close()

	auth := &sessions{tokens: map[string]string{}}
	chat, err := im.NewServer(im.Config{
		Store:         store,
		Authenticator: auth,
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
	mux.Handle("/ws", websocket.NewHandler(chat, websocket.Options{}))
	// The group routes only: the backend has its own accounts, so no
	// Options.Accounts.
	mux.Handle("/api/group/", httpapi.NewHandler(httpapi.Options{Server: chat, Logger: slog.Default()}))

	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(l) }()
	if ready != nil {
		ready(l.Addr())
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		_ = chat.Close() // and the WebSocket handler with it
		return err
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// One call stops all of the chat: the WebSocket handler refuses new
	// upgrades (503), the sessions are drained and their connections
	// closed, and it returns once none is left, which net/http could not
	// do (it does not track hijacked connections). Then the backend's own
	// server, for its other routes.
	if err := chat.Shutdown(shutdown); err != nil {
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
