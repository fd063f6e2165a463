package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/im/files"
	"github.com/imserver/imserver/store/bolt"
	"github.com/imserver/imserver/store/localfiles"
	"github.com/imserver/imserver/store/sqlstore"
	"github.com/imserver/imserver/transport/httpapi"
	"github.com/imserver/imserver/transport/metrics"
	"github.com/imserver/imserver/transport/tcp"
	"github.com/imserver/imserver/transport/websocket"
	berrors "go.etcd.io/bbolt/errors"

	// The SQL drivers -store can name; SQLite's is in sqlite.go, behind a
	// build tag.
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// listeners are the addresses run actually listens on, for tests and logs.
type listeners struct {
	HTTP, WS, TCP, Debug net.Addr
	// Revoker revokes tokens and disables accounts, kicking the sessions
	// this process holds. No route calls it yet; tests drive it.
	Revoker *auth.Revoker
}

// run serves until ctx is cancelled, then shuts down gracefully. ready, if
// not nil, is called once every listener is open.
func run(ctx context.Context, c config, logOut io.Writer, ready func(listeners)) error {
	level, _ := parseLevel(c.LogLevel)
	var h slog.Handler = slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level})
	if c.LogFormat == "json" {
		h = slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: level})
	}
	log := slog.New(h)
	logStart(log, c)

	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("-data %s: %w", c.DataDir, err)
	}
	// The store first: a data dir whose store is refused is left as it
	// was found.
	store, closeStore, err := openStore(ctx, c, log)
	if err != nil {
		return err
	}
	defer closeStore()
	secret, source, err := jwtSecret(c, log)
	if err != nil {
		return err
	}

	tokens, err := auth.NewJWT(auth.JWTConfig{Secret: secret, Issuer: c.JWTIssuer, Audience: c.JWTAudience, Lifetime: c.TokenLifetime})
	if err != nil {
		return fmt.Errorf("the JWT secret in %s: %w", source, err)
	}
	accounts, err := auth.NewAccounts(auth.AccountsConfig{Store: store, Tokens: tokens, BcryptCost: c.BcryptCost, ClientAttempts: c.ClientAttempts, SubnetAttempts: c.SubnetAttempts})
	if err != nil {
		return err
	}
	fileSvc, err := openFiles(c, log)
	if err != nil {
		return err
	}
	policy, _ := c.policy()
	var users im.UserDirectory
	// With built-in accounts a token is valid only for an account that
	// exists and is not disabled; with -check-recipients=false users live
	// elsewhere and only the token version is checked.
	guardCfg := auth.GuardConfig{Tokens: tokens, Versions: store}
	if c.CheckRecip {
		users = accounts
		guardCfg.Accounts = store
	}
	guard, err := auth.NewGuard(guardCfg)
	if err != nil {
		return err
	}
	srv, err := im.NewServer(im.Config{
		Store:              store,
		Authenticator:      guard,
		Users:              users,
		Logger:             log,
		MaxContentSize:     c.MaxContent,
		MaxGroupMembers:    c.MaxGroup,
		DevicePolicy:       policy,
		MaxSessionsPerUser: c.MaxSessions,
		SendRate:           c.SendRate,
		GroupAddsPerMinute: c.GroupAdds,
		GroupAddPolicy:     groupAddPolicy(c.GroupAddAny),
		RecallWindow:       c.RecallWindow,
		FriendsOnly:        c.FriendsOnly,
		FriendRequestRate:  c.FriendRate,
		Notifier:           notificationLogger(c.LogNotifications, log),
		// Files count the messages that reference them before the
		// message is stored, so that none is swept while referenced.
		BeforeSend:  fileSvc.BeforeSend,
		AfterRecall: fileSvc.AfterRecall,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	revoker, err := auth.NewRevoker(auth.RevokerConfig{Versions: store, Accounts: store, Kick: srv.Kick})
	if err != nil {
		return err
	}

	tlsConfig, err := c.tlsConfig()
	if err != nil {
		return err
	}

	var (
		wg      sync.WaitGroup
		errs    = make(chan error, 4)
		addrs   = listeners{Revoker: revoker}
		httpSrv []*http.Server
		// started holds /readyz at 503 until every listener is open; from
		// Shutdown on, srv.Health fails it instead.
		started atomic.Bool
	)
	serve := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, im.ErrServerClosed) {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	// WebSocket's TLS wraps the listener; TCP's is done by the tcp package.
	listenWS := func(addr string) (net.Listener, error) {
		l, err := listenFlag("ws", addr)
		if err != nil {
			return nil, err
		}
		if tlsConfig != nil {
			l = tls.NewListener(l, tlsConfig)
		}
		return l, nil
	}
	// The WebSocket handler and the TCP server register with srv: its
	// Shutdown and Close stop them too.
	closeAll := func() {
		for _, hs := range httpSrv {
			_ = hs.Close()
		}
		_ = srv.Close()
	}
	// One registry for both /metrics, so the API's and the debug
	// listener's scrapes agree.
	requests := metrics.NewRequestDurations()
	metricsHandler := metrics.NewHandler(metrics.NewRegistry(srv.Stats, requests))
	if c.HTTPAddr != "" {
		l, err := listenFlag("http", c.HTTPAddr)
		if err != nil {
			return err
		}
		addrs.HTTP = l.Addr()
		api := httpapi.NewHandler(httpapi.Options{
			Accounts: accounts, Server: srv, Health: srv.Health, Ready: started.Load, Logger: log,
			MetricsHandler: metricsHandler, MetricsToken: c.MetricsToken,
			ObserveRequest: requests.Observe,
			AllowedOrigins: c.corsOrigins(),
			Files:          fileSvc, FilesBaseURL: c.FilesURL,
			SignedURLs: signedURLs(c, secret),
			AdminToken: c.AdminToken,
		})
		hs := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(h, slog.LevelWarn)}
		c.setTimeouts(hs)
		httpSrv = append(httpSrv, hs)
		serve("http", func() error { return hs.Serve(l) })
	}
	if c.WSAddr != "" {
		l, err := listenWS(c.WSAddr)
		if err != nil {
			closeAll()
			return err
		}
		addrs.WS = l.Addr()
		mux := http.NewServeMux()
		mux.Handle("/ws", websocket.NewHandler(srv, websocket.Options{OriginPatterns: c.origins(), Logger: log, MaxConnsPerIP: c.MaxConnsPerIP}))
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(h, slog.LevelWarn)}
		// net/http clears the deadlines of a hijacked connection, so these
		// bound the upgrade request only, never a WebSocket's life.
		c.setTimeouts(hs)
		httpSrv = append(httpSrv, hs)
		serve("websocket", func() error { return hs.Serve(l) })
	}
	if c.TCPAddr != "" {
		l, err := listenFlag("tcp", c.TCPAddr)
		if err != nil {
			closeAll()
			return err
		}
		addrs.TCP = l.Addr()
		tcpSrv := tcp.NewServer(srv, tcp.Options{TLSConfig: tlsConfig, Logger: log, MaxConnsPerIP: c.MaxConnsPerIP})
		serve("tcp", func() error { return tcpSrv.Serve(l) })
	}
	if c.DebugAddr != "" {
		l, err := listenFlag("debug-addr", c.DebugAddr)
		if err != nil {
			closeAll()
			return err
		}
		// pprof's handlers and the metrics, on their own mux and
		// listener so they are never reachable through the public ports.
		mux := http.NewServeMux()
		mux.Handle("/metrics", metricsHandler)
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		httpSrv = append(httpSrv, hs)
		addrs.Debug = l.Addr()
		serve("debug", func() error { return hs.Serve(l) })
		log.Info("profiling and metrics endpoint enabled", "addr", l.Addr().String())
	}
	// The sweeper of unreferenced files, stopped with the server.
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	defer stopSweep()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = fileSvc.Run(sweepCtx)
	}()
	log.Info("imserver listening", "store", c.Store, "http", addrString(addrs.HTTP), "websocket", addrString(addrs.WS), "tcp", addrString(addrs.TCP), "data", c.DataDir)
	started.Store(true)
	if ready != nil {
		ready(addrs)
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "grace", c.ShutdownGrace)
	case runErr = <-errs:
		log.Error("listener failed, shutting down", "err", runErr)
	}
	began := time.Now()
	// The core first: it stops the WebSocket and TCP transports from
	// accepting, drains the sessions and waits for their connections,
	// which net/http would not do (it does not track hijacked WebSocket
	// connections); then the HTTP servers.
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("graceful shutdown cut short", "err", err)
	}
	for _, hs := range httpSrv {
		_ = hs.Shutdown(sctx)
	}
	closeAll()
	stopSweep()
	wg.Wait()
	log.Info("shut down", "took", time.Since(began).Round(time.Millisecond))
	return runErr
}

// listenFlag listens on addr, the value of flag name, with an error that
// names both and, for a port in use, the likely cause.
func listenFlag(name, addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("-%s %s: %w (another server running?)", name, addr, syscall.EADDRINUSE)
	}
	if err != nil {
		return nil, fmt.Errorf("-%s %s: %w", name, addr, err)
	}
	return l, nil
}

// openFiles opens the store of uploaded files (-files-dir, by default in
// the data dir) and the Service over it.
func openFiles(c config, log *slog.Logger) (*files.Service, error) {
	dir := c.FilesDir
	if dir == "" {
		dir = filepath.Join(c.DataDir, "files")
	}
	store, err := localfiles.Open(dir, localfiles.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("-files-dir: %w", err)
	}
	return files.NewService(files.ServiceConfig{Store: store, MaxSize: c.UploadMax, UnreferencedTTL: c.UploadTTL, Logger: log})
}

// signedURLs is the signing of file URLs that -files-url-ttl asks for, with
// a key derived from the JWT secret, so that it needs no setting of its
// own and changes with it; nil for unsigned URLs.
func signedURLs(c config, secret []byte) *httpapi.SignedURLs {
	if c.FilesURLTTL <= 0 {
		return nil
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("imserver file URLs"))
	return &httpapi.SignedURLs{Key: mac.Sum(nil), TTL: c.FilesURLTTL}
}

func addrString(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}

// jwtSecret returns the configured secret or, with none configured, the one
// kept in the data dir, generating it on first start; and where it came
// from, for error messages.
func jwtSecret(c config, log *slog.Logger) (secret []byte, source string, err error) {
	if c.JWTSecret != "" {
		return []byte(c.JWTSecret), "-jwt-secret (IM_JWT_SECRET)", nil
	}
	path := filepath.Join(c.DataDir, "jwt.secret")
	b, err := readSecretFile(path)
	if err == nil {
		secret := strings.TrimSpace(string(b))
		if len(secret) < 32 {
			return nil, "", fmt.Errorf("%s holds a secret shorter than 32 bytes", path)
		}
		log.Info("using the JWT secret kept in the data dir", "path", path)
		return []byte(secret), path, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, "", err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, "", err
	}
	secret = []byte(hex.EncodeToString(raw))
	// 0600 whatever the umask; O_EXCL so that a file made meanwhile by
	// someone else is never written to or trusted.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, "", err
	}
	if _, err := f.Write(append(secret, '\n')); err != nil {
		f.Close()
		return nil, "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, "", err
	}
	if err := f.Close(); err != nil {
		return nil, "", err
	}
	log.Warn("no JWT secret configured: generated one and kept it in the data dir; set -jwt-secret (IM_JWT_SECRET) to share one between servers", "path", path)
	return secret, path, nil
}

// readSecretFile reads the secret file at path, refusing it if its
// permissions let users other than its owner read or change it: anyone who
// can read the secret can mint a token for any user. The server does not
// tighten a file it did not create, since the owner may have had a reason
// for its mode; the error says how to fix it. The check is skipped on
// Windows, whose permissions the mode bits do not describe.
func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if runtime.GOOS != "windows" {
		// Stat of the open file, not of the path, so the file checked is the
		// file read.
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return nil, fmt.Errorf("%s is accessible to users other than its owner (mode %04o): anyone who reads it can sign in as any user; run chmod 600 %s (and make sure it was not copied elsewhere, or replace it)", path, perm, path)
		}
	}
	return io.ReadAll(io.LimitReader(f, 64<<10))
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	if err != nil {
		return 0, fmt.Errorf("-log-level is %q; it must be debug, info, warn or error", s)
	}
	return l, nil
}

// backend is what the binary needs of a store: the Server's part, the
// built-in accounts and the token versions.
type backend interface {
	im.Store
	auth.AccountStore
	auth.AccountUpdater
	auth.TokenVersions
}

// openStore opens the store c names; the returned func closes it.
func openStore(ctx context.Context, c config, log *slog.Logger) (backend, func() error, error) {
	if c.Store == "bolt" {
		return openBolt(c.DataDir, log)
	}
	driver, dialect, dsn := "", sqlstore.Dialect(0), c.DSN
	switch c.Store {
	case "sqlite":
		driver, dialect = "sqlite", sqlstore.SQLite
		if dsn == "" {
			dsn = filepath.Join(c.DataDir, "imserver.sqlite")
		}
	case "postgres":
		driver, dialect = "pgx", sqlstore.Postgres
	case "mysql":
		driver, dialect = "mysql", sqlstore.MySQL
	}
	m, err := readManifest(c.DataDir)
	if err != nil {
		return nil, nil, err
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, nil, err
	}
	// The commit loop is one connection; reads (sync, auth) take the rest.
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	s, err := sqlstore.New(ctx, db, sqlstore.Options{Dialect: dialect, Logger: log})
	if err != nil {
		db.Close()
		if c.Store == "sqlite" {
			return nil, nil, sqliteOpenError(dsn, err)
		}
		return nil, nil, fmt.Errorf("%s store: %w", c.Store, err)
	}
	// The data dir does not hold a SQL store's data, but its manifest
	// still tells the database this server was set up with from another
	// one: an empty database behind a changed DSN would otherwise be a
	// fresh start.
	if err := bindManifest(c.DataDir, c.Store, s.ID(), m, log); err != nil {
		db.Close()
		return nil, nil, err
	}
	return s, db.Close, nil
}

// sqliteOpenError says which file SQLite could not open, which its own
// "unable to open database file (14)" does not, and what to check. A
// SQLite DSN is a file name and holds no password.
func sqliteOpenError(dsn string, err error) error {
	const cantOpen = 14 // SQLITE_CANTOPEN
	var coded interface{ Code() int }
	if errors.As(err, &coded) && coded.Code()&0xff == cantOpen {
		return fmt.Errorf("sqlite store %s: %w: its directory must exist and this user must be able to write in it (-data, or -dsn)", dsn, err)
	}
	return fmt.Errorf("sqlite store %s: %w", dsn, err)
}

// openBolt opens the bolt store of data dir dir, checked against the
// dir's manifest (see manifest.go).
func openBolt(dir string, log *slog.Logger) (backend, func() error, error) {
	m, err := readManifest(dir)
	if err != nil {
		return nil, nil, err
	}
	if err := checkBoltFile(dir, m); err != nil {
		return nil, nil, err
	}
	s, err := bolt.Open(filepath.Join(dir, boltFile), bolt.Options{})
	if errors.Is(err, berrors.ErrTimeout) {
		// bbolt's flock says only that the file is locked; the pid file
		// says by whom.
		who := "another process (an imserver, or imserver check)"
		if pid, ok := readPID(dir); ok {
			who = fmt.Sprintf("another imserver (pid %d)", pid)
		}
		return nil, nil, fmt.Errorf("%s is using -data %s: stop it or choose another directory (%w)", who, dir, err)
	}
	if errors.Is(err, im.ErrCorrupt) {
		return nil, nil, fmt.Errorf("%w\nThe database is damaged: restore the data dir from a backup; imserver check -data %s lists what is wrong", err, dir)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := bindManifest(dir, "bolt", s.ID(), m, log); err != nil {
		s.Close()
		return nil, nil, err
	}
	// Written only while the lock is held, so the pid in it is the
	// holder's; a stale one, after a crash, is overwritten at the next
	// start. Without it the lock error is less precise, nothing worse.
	if err := writePID(dir); err != nil {
		log.Warn("could not write the pid file", "err", err)
	}
	return s, func() error {
		removePID(dir)
		return s.Close()
	}, nil
}

// pidFile is where a running imserver with a bolt store keeps its process
// id, in the data dir, for the error a second one meets on the lock.
const pidFile = "imserver.pid"

func writePID(dir string) error {
	return os.WriteFile(filepath.Join(dir, pidFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
}

// readPID returns the pid in dir's pid file, if it holds one.
func readPID(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil && pid > 0
}

// removePID removes dir's pid file if it is this process's.
func removePID(dir string) {
	if pid, ok := readPID(dir); ok && pid == os.Getpid() {
		_ = os.Remove(filepath.Join(dir, pidFile))
	}
}

// setTimeouts bounds how long a client may take to send a request (a body
// trickled a byte at a time would otherwise hold its connection and
// goroutine forever), how long an answer may take, and how long an idle
// keep-alive connection stays open.
func (c config) setTimeouts(hs *http.Server) {
	hs.ReadTimeout = c.HTTPRead
	hs.ReadHeaderTimeout = min(hs.ReadHeaderTimeout, c.HTTPRead)
	hs.WriteTimeout = c.HTTPWrite
	hs.IdleTimeout = c.HTTPIdle
}

// groupAddPolicy is im.Config.GroupAddPolicy for -group-add-anyone: nil
// keeps the Server's default.
func groupAddPolicy(anyone bool) func(context.Context, string, string) error {
	if !anyone {
		return nil
	}
	return func(context.Context, string, string) error { return nil }
}
