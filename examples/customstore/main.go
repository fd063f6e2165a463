// Command customstore runs an IM server on a Store of its own (store.go):
// the template for keeping chat data in a database imserver does not ship a
// Store for. The Store starts as an embedded store/memstore and takes over
// area by area; store_test.go proves it correct with store/storetest, the
// suite the built-in stores pass.
//
//	go run ./examples/customstore -addr 127.0.0.1:8092
//
// Tokens are "token-<user>", for the demo; see examples/embed for real
// authentication.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/transport/tcp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8092", "TCP listen address")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, nil); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, addr string, ready func(net.Addr)) error {
	srv, err := im.NewServer(im.Config{
		Store: NewStore(),
		Authenticator: im.AuthenticatorFunc(func(_ context.Context, token string) (im.Identity, error) {
			user, ok := strings.CutPrefix(token, "token-")
			if !ok {
				return im.Identity{}, fmt.Errorf("%w: tokens look like token-<user>", im.ErrUnauthenticated)
			}
			return im.Identity{UserID: user}, nil
		}),
	})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		_ = srv.Close()
		return err
	}
	ts := tcp.NewServer(srv, tcp.Options{})
	served := make(chan error, 1)
	go func() { served <- ts.Serve(l) }()
	if ready != nil {
		ready(l.Addr())
	}
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdown) // the TCP server too: it registered with srv
	if serr := <-served; !errors.Is(serr, im.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
