package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/centrifugal/centrifuge"
)

// Channels of the centrifuge peer: a group's channel, which its members
// subscribe to and its senders publish into, and each user's personal
// channel, which only that user subscribes to and its partner publishes
// into in the direct scenario.
const (
	cfGroupPrefix = "group:"
	cfUserPrefix  = "user:"
)

// cfBarrierMethod is the RPC that does nothing: its answer tells a client
// that the commands it sent before have been handled.
const cfBarrierMethod = "barrier"

// cfHistoryTTL is how long the peer keeps a channel's history after its
// last publication, when history is on: longer than any run.
const cfHistoryTTL = 10 * time.Minute

// cfServer is the peer the direct and group scenarios compare imserver
// with: a centrifuge node, as small as centrifuge allows, on a loopback
// port of its own, in this process or, with -serve-centrifuge, in an
// imbench of its own, serving WebSocket with centrifuge's
// protobuf protocol. It authenticates no one (the connect token is taken
// as the user id), lets users subscribe to their own personal channel and
// to group channels, and publishes whatever a client publishes: no
// storage beyond centrifuge's optional in-memory history (historySize
// publications per channel; 0, centrifuge's default, keeps none), no
// membership checks.
type cfServer struct {
	node *centrifuge.Node
	hs   *http.Server
	url  string
	wg   sync.WaitGroup
}

// startCentrifuge starts a centrifuge peer listening on addr.
func startCentrifuge(addr string, historySize int) (*cfServer, error) {
	node, err := centrifuge.New(centrifuge.Config{LogLevel: centrifuge.LogLevelNone})
	if err != nil {
		return nil, err
	}
	node.OnConnecting(func(ctx context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		if e.Token == "" {
			return centrifuge.ConnectReply{}, centrifuge.DisconnectInvalidToken
		}
		return centrifuge.ConnectReply{Credentials: &centrifuge.Credentials{UserID: e.Token}}, nil
	})
	node.OnConnect(func(c *centrifuge.Client) {
		c.OnSubscribe(func(e centrifuge.SubscribeEvent, cb centrifuge.SubscribeCallback) {
			switch {
			case e.Channel == cfUserPrefix+c.UserID(), strings.HasPrefix(e.Channel, cfGroupPrefix):
				cb(centrifuge.SubscribeReply{}, nil)
			default:
				cb(centrifuge.SubscribeReply{}, centrifuge.ErrorPermissionDenied)
			}
		})
		c.OnRPC(func(e centrifuge.RPCEvent, cb centrifuge.RPCCallback) {
			if e.Method != cfBarrierMethod {
				cb(centrifuge.RPCReply{}, centrifuge.ErrorMethodNotFound)
				return
			}
			cb(centrifuge.RPCReply{}, nil)
		})
		c.OnPublish(func(e centrifuge.PublishEvent, cb centrifuge.PublishCallback) {
			var opts centrifuge.PublishOptions
			if historySize > 0 {
				opts.HistorySize, opts.HistoryTTL = historySize, cfHistoryTTL
			}
			cb(centrifuge.PublishReply{Options: opts}, nil)
		})
	})
	if err := node.Run(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = node.Shutdown(context.Background())
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/connection/websocket", centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{
		// imbench's clients send no Origin; there is nothing to protect.
		CheckOrigin: func(*http.Request) bool { return true },
		// imserver's write timeout: centrifuge's default of 1 s drops
		// connections that a busy two-core machine is merely slow to
		// serve.
		WriteTimeout: 10 * time.Second,
		// No in-band pings: centrifuge drops a client that has not
		// answered its ping within 10 s, which an overloaded machine
		// with deliveries 10 s behind makes happen to subscribers that
		// are alive and reading, and a dropped subscriber fails the run
		// for no lack of throughput. imserver's liveness check (90 s of
		// silence) does not fire within a run either.
		PingPongConfig: centrifuge.PingPongConfig{PingInterval: -1, PongTimeout: -1},
	}))
	s := &cfServer{
		node: node,
		hs:   &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		url:  "ws://" + ln.Addr().String() + "/connection/websocket",
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = ln.Close()
		}
	}()
	return s, nil
}

// close disconnects every client and stops the node.
func (s *cfServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.node.Shutdown(ctx)
	// Close, not Shutdown: the WebSocket handlers are hijacked
	// connections, which the node has just disconnected.
	_ = s.hs.Close()
	s.wg.Wait()
}

// serveCentrifuge runs the peer on addr until ctx ends: a server process
// of its own, as imserver is, for -centrifuge-url and -centrifuge-pid of
// another imbench.
func serveCentrifuge(ctx context.Context, addr string, historySize int, stdout io.Writer) error {
	cs, err := startCentrifuge(addr, historySize)
	if err != nil {
		return fmt.Errorf("centrifuge: %w", err)
	}
	defer cs.close()
	fmt.Fprintf(stdout, "imbench: centrifuge peer at %s (pid %d, history %d); interrupt to stop\n", cs.url, os.Getpid(), historySize)
	<-ctx.Done()
	return nil
}
