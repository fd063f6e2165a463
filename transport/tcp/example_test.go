package tcp_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/transport/tcp"
)

// Serving TCP next to an im.Server, and stopping both in order.
func ExampleServer() {
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
			return im.Identity{}, im.ErrUnauthenticated // a real host checks its tokens here
		}),
	})
	if err != nil {
		panic(err)
	}

	srv := tcp.NewServer(core, tcp.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0") // ":8082" in production
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	// A client: heartbeats are answered even before authentication.
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		panic(err)
	}
	enc, _ := wire.AppendFrame(nil, im.Frame{Command: imv1.CommandType_CMD_HEARTBEAT_REQ, Sequence: 1})
	if _, err := c.Write(enc); err != nil {
		panic(err)
	}
	rsp, err := wire.ReadFrame(c, 0)
	if err != nil {
		panic(err)
	}
	fmt.Println(rsp.Command, rsp.Sequence)
	c.Close()

	// The core's Shutdown stops the transport too: its listener closes,
	// the sessions end, and it returns once the connection goroutines have.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = core.Shutdown(ctx)
	fmt.Println(<-served)
	// Output:
	// CMD_HEARTBEAT_RSP 1
	// im: server closed
}
