// Command imbench is imserver's load generator and benchmark reporter. It
// speaks the real protocol, over TCP or WebSocket, to a running server on
// this machine, verifies what it measures, and reports throughput, latency
// and resource use as a table or as JSON.
//
// imbench is a Go module of its own, inside imserver's repository and
// built against it (a replace directive), so that the servers it compares
// imserver with are no dependency of the library. From the repository's
// root, start a server, then load it:
//
//	go run ./cmd/imserver -data /tmp/imdata -http 127.0.0.1:8080 -ws 127.0.0.1:8081 -tcp 127.0.0.1:8082 -send-rate -1 -group-add-anyone -group-adds-per-minute -1 -max-conns-per-ip -1 &
//	go -C cmd/imbench run . -scenario direct -conns 100 -window 8 -duration 10s -compare-raw -server-pid $!
//	go -C cmd/imbench run . -scenario direct -transport websocket -conns 1000 -rate 20000 -users-file /tmp/imbench-users
//	go -C cmd/imbench run . -scenario group -groups 1 -members 1000 -senders 10 -duration 10s -compare-raw -users-file /tmp/imbench-users
//	go -C cmd/imbench run . -scenario group -groups 10 -members 100 -rate 2000 -users-file /tmp/imbench-users
//	go -C cmd/imbench run . -scenario connect -conns 10000 -data /tmp/imdata -server-pid $!
//	go -C cmd/imbench run . -scenario sync -messages 20000
//	go -C cmd/imbench run . -scenario raw -conns 100   # the machine's limit alone, no server needed
//
// # Scenarios
//
//	direct   -conns clients in pairs, each sending one-to-one messages to
//	         its partner: closed-loop with -window unanswered sends per
//	         connection, or open-loop at -rate messages per second in total
//	         (latency then counts from the scheduled send time, and -window
//	         still caps what is unanswered). Measures send→ack latency at
//	         the sender, send→push latency at the receiver, acked/s and
//	         delivered/s, and verifies that every acknowledged message was
//	         delivered exactly once, in seq order, with the acknowledged
//	         seq, and that the conversation's seqs have no gap.
//	group    -groups groups of -members members, one connection per
//	         member (-conns, if given, must be -groups × -members);
//	         the first -senders members of each group send to it,
//	         closed-loop with -window unanswered sends per sender, or
//	         open-loop at -rate messages per second over all senders.
//	         The groups are created through the HTTP API
//	         (/api/group/create, by each group's first member) before
//	         anyone connects. Measures send→ack latency at the sender,
//	         send→push latency at every recipient, acked/s (messages) and
//	         delivered/s (deliveries: pushes of the run's messages, about
//	         members-1 per message), and verifies that every acknowledged
//	         message reached every member's connection but its sender's
//	         exactly once, with the acknowledged seq, that each member got
//	         the group's messages in increasing seq order, and that the
//	         group's seqs have no gap. Lost and duplicated count
//	         deliveries.
//	connect  opens -conns authenticated connections (-dial-parallel at a
//	         time, or -connect-rate per second), reports the connect+auth
//	         rate and latency, and the server's memory per connection (growth
//	         of -server-pid's anonymous resident memory, read -warmup after
//	         the ramp); then holds them for -duration and counts any that
//	         drop. Past about 20,000 connections the source addresses
//	         127.0.0.1..127.0.0.N take turns (-sources).
//	sync     a sender stores -messages messages while the receiver is
//	         offline (with at least 256 unanswered sends, imserver's
//	         per-connection limit, whatever -window says); the receiver
//	         connects and catches up with BatchSync, 500 messages a page.
//	         Reports messages/s, the CPU and the peak memory of both sides
//	         during the catch-up, and verifies each arrives once, in order.
//	raw      the direct load against an in-process minimal server (same
//	         framing; no storage, no checks): the machine's limit. With
//	         -compare-raw, direct, group and connect run it after the
//	         imserver run, with the same parameters, and print imserver's
//	         figures as ratios to it. For group it is the fan-out probe:
//	         membership is handed to it before the run, and it pushes each
//	         message, encoded once, to every other member in seq order.
//
// # Comparing with centrifuge
//
// With -compare-centrifuge, direct and group also run the same load
// against centrifuge (github.com/centrifugal/centrifuge), a widely used Go
// real-time messaging server, and print its figures beside imserver's (and
// raw's, with -compare-raw). The peer runs inside imbench on a loopback
// port of its own, or, as imserver does, in a process of its own: an
// imbench started with -serve-centrifuge ADDR serves it until
// interrupted, and -centrifuge-url and -centrifuge-pid point the
// comparing imbench at it. In one process the peer and its clients share
// one Go scheduler, and a wake-up between them is a goroutine switch
// rather than the kernel running another process, which a separate
// server does not enjoy on a small machine:
//
//	imbench -serve-centrifuge 127.0.0.1:8000 & cf=$!
//	imbench -scenario group ... -compare-centrifuge \
//	    -centrifuge-url ws://127.0.0.1:8000/connection/websocket -centrifuge-pid $cf
//
// The clients speak centrifuge's protobuf protocol over WebSocket,
// whatever -transport says. The server accepts any connect
// token as the user id, lets a user subscribe to its personal channel
// (user:<id>) and to group channels, and publishes what clients publish;
// it stores nothing and keeps no history unless -centrifuge-history asks
// for an in-memory history of that many publications per channel.
//
//	direct   each client subscribes to its personal channel and publishes
//	         into its partner's; send→ack is publish→reply.
//	group    a channel per group, every member subscribed, the first
//	         -senders publishing; a publisher's own echo is not counted.
//
// A publication carries its send time and a number the sender gives it;
// imbench verifies that each answered publication reached every
// subscriber but its sender exactly once, each sender's publications in
// the order sent, and with history that the offsets centrifuge gives run
// without gap and in order at every subscriber. Subscribers acknowledge
// nothing (centrifuge has no per-delivery acknowledgement). The server's
// CPU time is in imbench's client CPU when it runs inside imbench, and is
// read from /proc for -centrifuge-pid when it does not.
//
// # Users
//
// direct, group and sync need real accounts, since imserver only delivers
// to users that exist: imbench registers bench-<run>-<i> users through the
// HTTP API (-http), -register-parallel at a time. The server hashes each
// password with bcrypt, so a thousand users take minutes on a small machine:
// imserver takes 30 logins and registrations a minute from one address by
// default, so start it with -login-client-rate and -login-subnet-rate
// raised for that; -users-file keeps them for the next run, and with the
// server's JWT secret
// (-jwt-secret, IM_JWT_SECRET, or -data to read it from the server's data
// dir) imbench mints tokens instead of logging in. connect never messages
// anyone, so with the secret it mints tokens for made-up users and
// registers nobody; without it, it registers one user per
// -sessions-per-user connections. -synthetic-users does the same for
// direct, group and sync, for a server that does not check that recipients
// (and group members) exist.
//
// Every connection takes a file descriptor, two when the raw server runs
// in the same process; imbench refuses a run that would exceed its limit
// (ulimit -n), and the server needs one per connection too.
//
// # Output and exit status
//
// While running, a progress line goes to stderr every -progress (-quiet
// silences it). At the end a table goes to stdout, or with -json one JSON object
// (fields in report.go; at least scenario, transport, conns,
// acked_per_sec, delivered_per_sec, ack_p50_ms, ack_p99_ms,
// deliver_p99_ms, errors, lost, duplicated; groups, members and senders
// for group; with -compare-raw raw_per_sec and ratio, of acked/s for
// direct and of delivered/s for group; with -compare-centrifuge
// centrifuge_per_sec, centrifuge_ratio and the centrifuge run's report). Rates and latencies cover the
// -duration after -warmup; verification covers every message. After
// sending stops, imbench waits up to -drain for answers still on their way;
// what is missing then is reported. The exit status is 0 only if nothing was lost, duplicated,
// misordered or refused and no error occurred; 1 if the run failed its
// verification; 2 for bad flags or a run that could not start.
//
// CPU seconds of the server (-server-pid) and of imbench itself come from
// /proc. Only loopback addresses are accepted as targets: imbench is for
// measuring a server on this machine.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/imserver/imserver/im/auth"
)

// config is everything imbench can be told.
type config struct {
	Scenario         string
	Transport        string
	Addr             string
	HTTP             string
	Conns            int
	Rate             float64
	Window           int
	Size             int
	Duration         time.Duration
	Warmup           time.Duration
	Drain            time.Duration
	Messages         int
	CompareRaw       bool
	CompareCF        bool
	CFHistory        int
	CFURL            string
	CFPID            int
	ServeCF          string
	JSON             bool
	Quiet            bool
	Progress         time.Duration
	ServerPID        int
	JWTSecret        string
	DataDir          string
	JWTIssuer        string
	JWTAudience      string
	UsersFile        string
	RegisterParallel int
	DialParallel     int
	ConnectRate      float64
	Sources          int
	MsgAck           bool
	SessionsPerUser  int
	SyntheticUsers   bool
	Groups           int
	Members          int
	Senders          int
	CPUProfile       string
}

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// parseConfig reads the flags; IM_JWT_SECRET stands in for -jwt-secret, as
// it does for imserver.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("imbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Scenario, "scenario", "direct", "direct, group, connect, sync or raw")
	fs.StringVar(&c.Transport, "transport", transportTCP, "tcp or websocket")
	fs.StringVar(&c.Addr, "addr", "", "server address: host:port for tcp (default 127.0.0.1:8082), ws:// URL for websocket (default ws://127.0.0.1:8081/ws)")
	fs.StringVar(&c.HTTP, "http", "http://127.0.0.1:8080", "base URL of the server's HTTP API, for registering users")
	fs.IntVar(&c.Conns, "conns", 1000, "connections (direct: an even number, in pairs; group: -groups × -members, the default there)")
	fs.Float64Var(&c.Rate, "rate", 0, "direct, group: total messages per second over all senders, open-loop; 0 is closed-loop at full speed")
	fs.IntVar(&c.Window, "window", 8, "unanswered sends per sending connection at most")
	fs.IntVar(&c.Groups, "groups", 1, "group: number of groups")
	fs.IntVar(&c.Members, "members", 1000, "group: members per group, each on a connection of its own")
	fs.IntVar(&c.Senders, "senders", 10, "group: members of each group that send (the first ones)")
	fs.IntVar(&c.Size, "size", 128, "message content size in bytes (at least 8: a timestamp leads it)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measurement time (connect: how long connections are held)")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "load before measuring (connect: settling time before memory is read)")
	fs.DurationVar(&c.Drain, "drain", 10*time.Second, "longest wait for answers and deliveries after sending stops")
	fs.IntVar(&c.Messages, "messages", 10000, "sync: messages the receiver catches up on")
	fs.BoolVar(&c.CompareRaw, "compare-raw", false, "direct, group, connect: also run the in-process raw server and print ratios to it")
	fs.BoolVar(&c.CompareCF, "compare-centrifuge", false, "direct, group: also run the same load against a centrifuge server (WebSocket, protobuf protocol), in this process or at -centrifuge-url, and print it beside imserver")
	fs.IntVar(&c.CFHistory, "centrifuge-history", 0, "with -compare-centrifuge or -serve-centrifuge: publications of in-memory history kept per channel; 0 keeps none (centrifuge's default)")
	fs.StringVar(&c.CFURL, "centrifuge-url", "", "with -compare-centrifuge: the peer another imbench serves (-serve-centrifuge), instead of one in this process: a process of its own, as imserver is (needs -centrifuge-pid)")
	fs.IntVar(&c.CFPID, "centrifuge-pid", 0, "with -centrifuge-url: the peer's process id, to report its CPU time and memory from /proc")
	fs.StringVar(&c.ServeCF, "serve-centrifuge", "", "serve only the centrifuge peer on this loopback address (127.0.0.1:8000) until interrupted; another imbench compares with it through -centrifuge-url")
	fs.BoolVar(&c.JSON, "json", false, "print the report as one JSON object")
	fs.BoolVar(&c.Quiet, "quiet", false, "no progress lines or notes on stderr")
	fs.DurationVar(&c.Progress, "progress", time.Second, "interval between progress lines")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "the server's process id, to report its CPU time and memory from /proc")
	fs.StringVar(&c.JWTSecret, "jwt-secret", "", "the server's JWT secret, to mint tokens instead of logging in (env IM_JWT_SECRET)")
	fs.StringVar(&c.DataDir, "data", "", "the server's data dir, to read the JWT secret it generated (jwt.secret)")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", auth.DefaultIssuer, "JWT issuer the server expects")
	fs.StringVar(&c.JWTAudience, "jwt-audience", auth.DefaultAudience, "JWT audience the server expects")
	fs.StringVar(&c.UsersFile, "users-file", "", "file caching registered users between runs (created if missing)")
	fs.IntVar(&c.RegisterParallel, "register-parallel", 4, "registrations in flight at once")
	fs.IntVar(&c.DialParallel, "dial-parallel", 64, "connections being opened at once")
	fs.Float64Var(&c.ConnectRate, "connect-rate", 0, "connect: connections opened per second; 0 as fast as -dial-parallel allows")
	fs.IntVar(&c.Sources, "sources", 0, "source addresses 127.0.0.1..127.0.0.N to spread connections over; 0 picks enough for -conns")
	fs.BoolVar(&c.MsgAck, "msg-ack", true, "answer every delivery with MSG_ACK, as IM-iOS-SDK does")
	fs.BoolVar(&c.SyntheticUsers, "synthetic-users", false, "direct, group, sync: mint tokens for made-up users instead of registering (needs the JWT secret, and a server that does not check that recipients exist)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write imbench's own CPU profile to this file (the client's side of a run; the server's is on its -debug-addr)")
	fs.IntVar(&c.SessionsPerUser, "sessions-per-user", 10, "connect without a JWT secret: connections per registered user (imserver allows 10)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: imbench [flags]\n\nLoads an imserver on this machine and reports verified throughput and latency.\nSee 'go doc ./cmd/imbench' for the scenarios.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if err := c.groupLayout(given); err != nil {
		return c, err
	}
	if c.JWTSecret == "" {
		c.JWTSecret = getenv("IM_JWT_SECRET")
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8082"
		if c.Transport == transportWS {
			c.Addr = "ws://127.0.0.1:8081/ws"
		}
	}
	if c.Sources == 0 {
		// About 28,000 ephemeral ports per source address by default.
		c.Sources = (c.Conns + 19999) / 20000
	}
	return c, c.validate()
}

// maxGroupConns bounds -groups × -members, far beyond what file
// descriptors allow, so that the product cannot overflow.
const maxGroupConns = 10_000_000

// groupLayout checks -groups, -members and -senders, which only the group
// scenario takes, and sets -conns to the connections they make: one per
// member. -conns given as well must agree.
func (c *config) groupLayout(given map[string]bool) error {
	if c.Scenario != "group" {
		for _, name := range []string{"groups", "members", "senders"} {
			if given[name] {
				return fmt.Errorf("-%s applies to -scenario group only", name)
			}
		}
		return nil
	}
	var errs []error
	if c.Groups < 1 || c.Groups > maxGroupConns {
		errs = append(errs, fmt.Errorf("-groups must be 1 to %d", maxGroupConns))
	}
	if c.Members < 2 || c.Members > maxGroupConns {
		errs = append(errs, fmt.Errorf("-members must be 2 to %d: a message needs someone to reach", maxGroupConns))
	}
	if c.Senders < 1 || c.Senders > c.Members {
		errs = append(errs, errors.New("-senders must be at least 1 and at most -members"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if int64(c.Groups)*int64(c.Members) > maxGroupConns {
		return fmt.Errorf("-groups × -members must be at most %d connections", maxGroupConns)
	}
	n := c.Groups * c.Members
	if given["conns"] && c.Conns != n {
		return fmt.Errorf("-conns %d: the group scenario opens one connection per member, -groups × -members = %d; leave -conns out", c.Conns, n)
	}
	c.Conns = n
	return nil
}

func (c config) validate() error {
	var errs []error
	switch c.Scenario {
	case "direct", "group", "connect", "sync", "raw":
	default:
		errs = append(errs, fmt.Errorf("-scenario must be direct, group, connect, sync or raw, not %q", c.Scenario))
	}
	if c.Transport != transportTCP && c.Transport != transportWS {
		errs = append(errs, fmt.Errorf("-transport must be tcp or websocket, not %q", c.Transport))
	}
	if c.Conns < 1 {
		errs = append(errs, errors.New("-conns must be at least 1"))
	}
	if (c.Scenario == "direct" || c.Scenario == "raw") && (c.Conns < 2 || c.Conns%2 != 0) {
		errs = append(errs, errors.New("-conns must be even and at least 2: direct clients come in pairs"))
	}
	if c.Window < 1 || c.Window > 4096 {
		errs = append(errs, errors.New("-window must be 1 to 4096"))
	}
	if c.Size < 8 || c.Size > 1<<19 {
		errs = append(errs, errors.New("-size must be 8 to 524288 bytes"))
	}
	if c.Rate < 0 || c.ConnectRate < 0 {
		errs = append(errs, errors.New("-rate and -connect-rate must not be negative"))
	}
	if c.Progress <= 0 {
		errs = append(errs, errors.New("-progress must be positive"))
	}
	if c.Duration <= 0 || c.Warmup < 0 || c.Drain < 0 {
		errs = append(errs, errors.New("-duration must be positive; -warmup and -drain not negative"))
	}
	if c.Messages < 1 {
		errs = append(errs, errors.New("-messages must be at least 1"))
	}
	if c.CompareRaw && c.Scenario == "sync" {
		errs = append(errs, errors.New("-compare-raw applies to direct, group and connect: the raw server stores nothing to sync"))
	}
	if c.CompareCF && c.Scenario != "direct" && c.Scenario != "group" {
		errs = append(errs, errors.New("-compare-centrifuge applies to direct and group"))
	}
	if c.CompareCF && c.Size < cfPayloadMin {
		errs = append(errs, fmt.Errorf("-compare-centrifuge needs -size %d or more: a publication carries its send time and number", cfPayloadMin))
	}
	if c.CFHistory < 0 {
		errs = append(errs, errors.New("-centrifuge-history must not be negative"))
	}
	if c.CFURL != "" {
		if !c.CompareCF {
			errs = append(errs, errors.New("-centrifuge-url applies with -compare-centrifuge"))
		}
		if c.CFPID <= 0 {
			errs = append(errs, errors.New("-centrifuge-url needs -centrifuge-pid: a peer's CPU time is in no report otherwise"))
		}
		if err := checkLoopback("-centrifuge-url", c.CFURL, true); err != nil {
			errs = append(errs, err)
		}
		if c.CFHistory > 0 {
			errs = append(errs, errors.New("-centrifuge-history with -centrifuge-url: the serving imbench keeps the history; give it there"))
		}
	} else if c.CFPID != 0 {
		errs = append(errs, errors.New("-centrifuge-pid applies with -centrifuge-url"))
	}
	if c.ServeCF != "" {
		if err := checkLoopback("-serve-centrifuge", c.ServeCF, false); err != nil {
			errs = append(errs, err)
		}
	}
	if c.RegisterParallel < 1 || c.DialParallel < 1 || c.SessionsPerUser < 1 {
		errs = append(errs, errors.New("-register-parallel, -dial-parallel and -sessions-per-user must be at least 1"))
	}
	if c.SyntheticUsers && c.JWTSecret == "" && c.DataDir == "" {
		errs = append(errs, errors.New("-synthetic-users needs -jwt-secret (or IM_JWT_SECRET) or -data"))
	}
	if c.Sources < 1 || c.Sources > 254 {
		errs = append(errs, errors.New("-sources must be 1 to 254"))
	}
	if c.Scenario != "raw" {
		if err := checkLoopback("-addr", c.Addr, c.Transport == transportWS); err != nil {
			errs = append(errs, err)
		}
		if err := checkLoopback("-http", c.HTTP, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkLoopback refuses targets off this machine: a load generator must
// not be pointed at someone else's server by a typo.
func checkLoopback(flagName, addr string, isURL bool) error {
	hostport := addr
	if isURL {
		u, err := url.Parse(addr)
		if err != nil || u.Host == "" {
			return fmt.Errorf("%s: %q is not a URL", flagName, addr)
		}
		switch u.Scheme {
		case "http", "ws":
		default:
			return fmt.Errorf("%s: scheme %q not supported (http or ws)", flagName, u.Scheme)
		}
		hostport = u.Host
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s: %q is not a loopback address; imbench only loads servers on this machine", flagName, host)
	}
	return nil
}

// sourceIPs returns the n source addresses 127.0.0.1..127.0.0.n; one
// source is left to the kernel.
func sourceIPs(n int) []net.IP {
	if n <= 1 {
		return nil
	}
	ips := make([]net.IP, n)
	for i := range ips {
		ips[i] = net.IPv4(127, 0, 0, byte(i+1))
	}
	return ips
}

// checkFDs refuses a run that would run out of file descriptors half way:
// every connection is one here, and two when the raw server is in this
// process too.
func checkFDs(cfg config) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return nil // cannot tell; let the run try
	}
	need := uint64(cfg.Conns) + 64
	if cfg.Scenario == "raw" || cfg.CompareRaw {
		need += uint64(cfg.Conns)
	}
	if cfg.CompareCF {
		need += uint64(cfg.Conns)
	}
	if need > rl.Cur {
		return fmt.Errorf("%d connections need about %d file descriptors (twice as many with each in-process server: raw, centrifuge); the limit is %d: raise it (ulimit -n) or use fewer -conns", cfg.Conns, need, rl.Cur)
	}
	return nil
}

// minter returns a token minter from the configured secret, or nil when
// none is configured.
func (c config) minter() (*auth.JWT, error) {
	secret := c.JWTSecret
	if secret == "" && c.DataDir != "" {
		b, err := os.ReadFile(filepath.Join(c.DataDir, "jwt.secret"))
		if err != nil {
			return nil, fmt.Errorf("-data: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	if secret == "" {
		return nil, nil
	}
	return auth.NewJWT(auth.JWTConfig{Secret: []byte(secret), Issuer: c.JWTIssuer, Audience: c.JWTAudience})
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "imbench:", err)
		return exitUsage
	}
	if cfg.ServeCF != "" {
		if err := serveCentrifuge(ctx, cfg.ServeCF, cfg.CFHistory, stdout); err != nil {
			fmt.Fprintln(stderr, "imbench:", err)
			return exitFailed
		}
		return exitOK
	}
	if cfg.CPUProfile != "" {
		stop, err := startCPUProfile(cfg.CPUProfile)
		if err != nil {
			fmt.Fprintln(stderr, "imbench:", err)
			return exitUsage
		}
		defer func() {
			if err := stop(); err != nil {
				fmt.Fprintln(stderr, "imbench:", err)
			}
		}()
	}
	rep, err := execute(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "imbench:", err)
		if rep == nil {
			return exitUsage
		}
	}
	if cfg.JSON {
		err = writeJSON(stdout, rep)
	} else {
		err = writeTable(stdout, rep)
	}
	if err != nil {
		fmt.Fprintln(stderr, "imbench:", err)
		return exitFailed
	}
	if !rep.OK {
		return exitFailed
	}
	return exitOK
}

// execute runs the configured scenario and returns its report.
func execute(ctx context.Context, cfg config, stderr io.Writer) (*Report, error) {
	var raw [4]byte
	_, _ = rand.Read(raw[:])
	runID := hex.EncodeToString(raw[:])
	logf := func(format string, args ...any) {}
	var progressOut io.Writer
	if !cfg.Quiet {
		logf = func(format string, args ...any) { fmt.Fprintf(stderr, "imbench: "+format+"\n", args...) }
		progressOut = stderr
	}
	if err := checkFDs(cfg); err != nil {
		return nil, err
	}
	minter, err := cfg.minter()
	if err != nil {
		return nil, err
	}
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.RegisterParallel, Proxy: nil}}
	defer httpClient.CloseIdleConnections()
	users := &userSource{
		httpBase: cfg.HTTP,
		runID:    runID,
		parallel: cfg.RegisterParallel,
		file:     cfg.UsersFile,
		minter:   minter,
		client:   httpClient,
		log:      logf,
	}
	sources := sourceIPs(cfg.Sources)
	server := target{name: "imserver", dialer: newDialer(cfg.Transport, cfg.Addr, sources), serverPID: cfg.ServerPID}
	defer server.dialer.close()
	lp := loadParams{
		conns:        cfg.Conns,
		window:       cfg.Window,
		size:         cfg.Size,
		rate:         cfg.Rate,
		warmup:       cfg.Warmup,
		duration:     cfg.Duration,
		drain:        cfg.Drain,
		msgAck:       cfg.MsgAck,
		dialParallel: cfg.DialParallel,
		progress:     progressOut,
		every:        cfg.Progress,
		logf:         logf,
	}
	cp := connectParams{
		conns:        cfg.Conns,
		dialParallel: cfg.DialParallel,
		rate:         cfg.ConnectRate,
		settle:       cfg.Warmup,
		hold:         cfg.Duration,
		progress:     progressOut,
		every:        cfg.Progress,
		logf:         logf,
	}

	// withRaw runs fn against a fresh raw server.
	withRaw := func(fn func(t target, rs *rawServer) (*Report, error)) (*Report, error) {
		rs, err := startRaw(cfg.Transport)
		if err != nil {
			return nil, err
		}
		defer rs.close()
		t := target{name: "raw", dialer: newDialer(cfg.Transport, rs.addr(), sources)}
		defer t.dialer.close()
		return fn(t, rs)
	}
	// withCF runs fn against a fresh centrifuge peer, with -compare-centrifuge,
	// and puts its report beside rep.
	withCF := func(fn func(peer cfPeer) (*Report, error), rep *Report) error {
		if !cfg.CompareCF {
			return nil
		}
		peer := cfPeer{url: cfg.CFURL, pid: cfg.CFPID}
		if peer.url == "" {
			cs, err := startCentrifuge("127.0.0.1:0", cfg.CFHistory)
			if err != nil {
				return fmt.Errorf("centrifuge: %w", err)
			}
			defer cs.close()
			peer.url = cs.url
		}
		cfRep, err := fn(peer)
		if err != nil {
			return fmt.Errorf("centrifuge: %w", err)
		}
		cfRep.CFHistory, cfRep.CFOwnProcess = cfg.CFHistory, cfg.CFURL != ""
		rep.comparePeer(cfRep)
		return nil
	}
	// accounts returns the users of a scenario that messages them.
	accounts := func(n int) ([]benchUser, error) {
		if cfg.SyntheticUsers {
			return users.synthetic(n)
		}
		return users.registered(ctx, n)
	}
	fakeUsers := func(n int) []benchUser {
		us := make([]benchUser, n)
		for i := range us {
			id := fmt.Sprintf("bench-%s-%d", runID, i)
			us[i] = benchUser{UserID: id, Token: "raw"}
		}
		return us
	}

	switch cfg.Scenario {
	case "raw":
		return withRaw(func(t target, _ *rawServer) (*Report, error) {
			rep, err := runDirect(ctx, t, fakeUsers(cfg.Conns), runID, lp)
			if rep != nil {
				rep.Scenario = "raw"
			}
			return rep, err
		})
	case "direct":
		us, err := accounts(cfg.Conns)
		if err != nil {
			return nil, err
		}
		rep, err := runDirect(ctx, server, us, runID, lp)
		if err != nil {
			return rep, hintUsers(err, cfg)
		}
		if cfg.CompareRaw {
			rawRep, err := withRaw(func(t target, _ *rawServer) (*Report, error) { return runDirect(ctx, t, us, runID+"r", lp) })
			if err != nil {
				return rep, err
			}
			rep.compare(rawRep)
		}
		return rep, withCF(func(peer cfPeer) (*Report, error) { return runCentrifugeDirect(ctx, peer, runID+"c", lp) }, rep)
	case "group":
		shape := groupShape{groups: cfg.Groups, members: cfg.Members, senders: cfg.Senders}
		us, err := accounts(shape.conns())
		if err != nil {
			return nil, err
		}
		groups, err := splitGroups(us, shape)
		if err != nil {
			return nil, err
		}
		logf("creating %d group(s) of %d members through %s", shape.groups, shape.members, cfg.HTTP)
		if err := users.createGroups(ctx, groups, cfg.RegisterParallel); err != nil {
			return nil, err
		}
		rep, err := runGroup(ctx, server, groups, shape, runID, lp)
		if err != nil {
			return rep, hintUsers(err, cfg)
		}
		if cfg.CompareRaw {
			rawRep, err := withRaw(func(t target, rs *rawServer) (*Report, error) {
				for _, g := range groups {
					ids := make([]string, len(g.members))
					for i, u := range g.members {
						ids[i] = u.UserID
					}
					rs.setGroup(g.id, ids)
				}
				return runGroup(ctx, t, groups, shape, runID+"r", lp)
			})
			if err != nil {
				return rep, err
			}
			rep.compare(rawRep)
		}
		return rep, withCF(func(peer cfPeer) (*Report, error) { return runCentrifugeGroup(ctx, peer, shape, runID+"c", lp) }, rep)
	case "connect":
		var us []benchUser
		if minter != nil {
			us, err = users.synthetic(cfg.Conns)
		} else {
			us, err = users.registered(ctx, (cfg.Conns+cfg.SessionsPerUser-1)/cfg.SessionsPerUser)
		}
		if err != nil {
			return nil, err
		}
		rep, err := runConnect(ctx, server, us, cp)
		if err != nil || !cfg.CompareRaw {
			return rep, hintUsers(err, cfg)
		}
		rawRep, err := withRaw(func(t target, _ *rawServer) (*Report, error) { return runConnect(ctx, t, us, cp) })
		if err != nil {
			return rep, err
		}
		rep.compare(rawRep)
		return rep, nil
	case "sync":
		us, err := accounts(2)
		if err != nil {
			return nil, err
		}
		rep, err := runSync(ctx, server, us, runID, cfg.Messages, lp)
		return rep, hintUsers(err, cfg)
	}
	return nil, fmt.Errorf("unknown scenario %q", cfg.Scenario)
}

// hintUsers adds advice to an authentication failure with cached users:
// the likely cause is a server started on a fresh data dir.
func hintUsers(err error, cfg config) error {
	if err != nil && errors.Is(err, errAuth) && cfg.UsersFile != "" {
		return fmt.Errorf("%w (are the users in %s from another server? delete it to register new ones)", err, cfg.UsersFile)
	}
	return err
}

// startCPUProfile profiles this process into path until the returned
// function is called.
func startCPUProfile(path string) (func() error, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
