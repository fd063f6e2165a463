package websocket_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	cws "github.com/coder/websocket"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/transport/websocket"
)

// Mounting the handler on a host's own mux, and a client using the JSON
// subprotocol.
func ExampleNewHandler() {
	dir, _ := os.MkdirTemp("", "imserver-example")
	defer os.RemoveAll(dir)
	store, err := bolt.Open(filepath.Join(dir, "im.db"), bolt.Options{})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	core, err := im.NewServer(im.Config{
		Store: store,
		Authenticator: im.AuthenticatorFunc(func(ctx context.Context, token string) (im.Identity, error) {
			if token == "secret-token-of-alice" { // a real host checks its own tokens
				return im.Identity{UserID: "alice"}, nil
			}
			return im.Identity{}, im.ErrUnauthenticated
		}),
	})
	if err != nil {
		panic(err)
	}

	mux := http.NewServeMux()
	wsHandler := websocket.NewHandler(core, websocket.Options{
		OriginPatterns: []string{"app.example.com"}, // a web app on another host
	})
	mux.Handle("/ws", wsHandler)
	hs := httptest.NewServer(mux) // http.Server{Addr: ":8081", Handler: mux} in production

	// The client: wscat -s imserver.v1.json -c 'ws://host:8081/ws?token=…'
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws?token=secret-token-of-alice"
	c, _, err := cws.Dial(ctx, url, &cws.DialOptions{Subprotocols: []string{websocket.SubprotocolJSON}})
	if err != nil {
		panic(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, cws.MessageText, []byte(`{"command": "CMD_HEARTBEAT_REQ", "sequence": 1}`)); err != nil {
		panic(err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil {
		panic(err)
	}
	var env struct {
		Command  string `json:"command"`
		Sequence uint32 `json:"sequence"`
	}
	if err := json.Unmarshal(msg, &env); err != nil {
		panic(err)
	}
	fmt.Println(env.Command, env.Sequence)
	c.Close(cws.StatusNormalClosure, "")

	// The core's Shutdown stops the handler too, and waits for its
	// sessions, which net/http does not track; then the http.Server.
	_ = core.Shutdown(ctx)
	hs.Close()
	// Output:
	// CMD_HEARTBEAT_RSP 1
}
