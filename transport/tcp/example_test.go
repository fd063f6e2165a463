package tcp_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/transport/tcp"
	"google.golang.org/protobuf/proto"
)

// A client encodes a request with AppendFrame and decodes the answer with
// ReadFrame, usually straight from its net.Conn.
func ExampleAppendFrame() {
	body, _ := proto.Marshal(&imv1.HeartbeatRequest{ClientTime: 1700000000000})
	wire, err := tcp.AppendFrame(nil, im.Frame{
		Command:  imv1.CommandType_CMD_HEARTBEAT_REQ,
		Sequence: 1,
		Body:     body,
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("header % x\n", wire[:tcp.HeaderSize])

	f, err := tcp.ReadFrame(bytes.NewReader(wire), 0)
	if err != nil {
		panic(err)
	}
	var req imv1.HeartbeatRequest
	if err := proto.Unmarshal(f.Body, &req); err != nil {
		panic(err)
	}
	fmt.Println(f.Command, f.Sequence, req.GetClientTime())
	// Output:
	// header ef 89 01 00 00 05 00 00 00 01 00 00 00 07 86 9f
	// CMD_HEARTBEAT_REQ 1 1700000000000
}

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
	wire, _ := tcp.AppendFrame(nil, im.Frame{Command: imv1.CommandType_CMD_HEARTBEAT_REQ, Sequence: 1})
	if _, err := c.Write(wire); err != nil {
		panic(err)
	}
	rsp, err := tcp.ReadFrame(c, 0)
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
