package main

import (
	"crypto/tls"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/crypto/bcrypt"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/im/files"
	"github.com/imserver/imserver/transport/httpapi"
)

var errHelp = flag.ErrHelp

// sqliteLinked says how to get a binary with SQLite when drivers (the
// registered database/sql drivers) lack it: sqlite.go links the driver only
// in a build with -tags sqlite, as it adds 40% to a cold build.
func sqliteLinked(drivers []string) error {
	if slices.Contains(drivers, "sqlite") {
		return nil
	}
	return errors.New("-store sqlite: this imserver was built without SQLite; " +
		"build one with it: go build -tags sqlite ./cmd/imserver (or go run -tags sqlite ./cmd/imserver)")
}

// iplimitDefault is the transports' own default for MaxConnsPerIP.
const iplimitDefault = 64

// config is everything imserver can be told, from flags or the environment.
type config struct {
	Store         string
	DSN           string
	DataDir       string
	HTTPAddr      string
	WSAddr        string
	TCPAddr       string
	JWTSecret     string
	JWTIssuer     string
	JWTAudience   string
	TokenLifetime time.Duration
	LogLevel      string
	LogFormat     string
	MaxContent    int
	MaxGroup      int
	DevicePolicy  string
	MaxSessions   int
	SendRate      float64
	GroupAdds     int  // users one user may add to groups a minute
	GroupAddAny   bool // anyone may add anyone to groups
	RecallWindow  time.Duration
	FriendsOnly   bool
	FriendRate    float64 // friend requests one user may send a second
	FilesDir      string  // where uploads are kept; empty: <DataDir>/files
	UploadMax     int64   // largest upload in bytes
	UploadTTL     time.Duration
	FilesURL      string        // public base URL of file URLs; empty: from each request
	FilesURLTTL   time.Duration // how long a signed file URL stays valid; 0: unsigned
	WSOrigins     string
	CORSOrigins   string
	MetricsToken  string
	AdminToken    string // serves /admin/api/ and the dashboard /admin on the HTTP API port; empty: off
	TLSCert       string
	TLSKey        string
	ShutdownGrace time.Duration
	DebugAddr     string
	CheckRecip    bool
	BcryptCost    int
	// Login and registration attempts per client address and subnet a
	// minute (auth.AccountsConfig.ClientAttempts, SubnetAttempts).
	ClientAttempts int
	SubnetAttempts int
	MaxConnsPerIP  int
	HTTPRead       time.Duration
	HTTPWrite      time.Duration
	HTTPIdle       time.Duration
	// LogNotifications logs the offline-push notifications the server
	// would send.
	LogNotifications bool
}

// setting is one flag with its environment variable.
type setting struct {
	name, env, usage string
	bind             func(fs *flag.FlagSet, name, usage string)
}

func settings(c *config) []setting {
	str := func(p *string, def string) func(*flag.FlagSet, string, string) {
		return func(fs *flag.FlagSet, n, u string) { fs.StringVar(p, n, def, u) }
	}
	dur := func(p *time.Duration, def time.Duration) func(*flag.FlagSet, string, string) {
		return func(fs *flag.FlagSet, n, u string) { fs.DurationVar(p, n, def, u) }
	}
	num := func(p *int, def int) func(*flag.FlagSet, string, string) {
		return func(fs *flag.FlagSet, n, u string) { fs.IntVar(p, n, def, u) }
	}
	return []setting{
		{"store", "IM_STORE", "where messages are kept: bolt (a file in the data dir), sqlite (in a binary built with -tags sqlite), postgres or mysql", str(&c.Store, "bolt")},
		{"dsn", "IM_DSN", "data source name for -store postgres or mysql (and sqlite; default a file in the data dir)", str(&c.DSN, "")},
		{"data", "IM_DATA_DIR", "directory for the database, the generated JWT secret and imserver.json, which says which store the dir was set up with (the server refuses a missing, empty or other database)", str(&c.DataDir, "./data")},
		{"http", "IM_HTTP_ADDR", "HTTP API listen address (empty disables)", str(&c.HTTPAddr, ":8080")},
		{"ws", "IM_WS_ADDR", "WebSocket listen address, path /ws (empty disables)", str(&c.WSAddr, ":8081")},
		{"tcp", "IM_TCP_ADDR", "TCP listen address (empty disables)", str(&c.TCPAddr, ":8082")},
		{"jwt-secret", "IM_JWT_SECRET", "HS256 secret: at least 32 random bytes (openssl rand -hex 32); guessable ones (few different bytes, one byte over half, a repeated pattern) are refused; when empty, generated and kept in <data>/jwt.secret, which must be readable by its owner only (chmod 600)", str(&c.JWTSecret, "")},
		{"jwt-issuer", "IM_JWT_ISSUER", "JWT issuer", str(&c.JWTIssuer, "imserver")},
		{"jwt-audience", "IM_JWT_AUDIENCE", "JWT audience", str(&c.JWTAudience, "imserver")},
		{"token-lifetime", "IM_TOKEN_LIFETIME", "lifetime of issued tokens", dur(&c.TokenLifetime, 30*24*time.Hour)},
		{"log-level", "IM_LOG_LEVEL", "debug, info, warn or error", str(&c.LogLevel, "info")},
		{"log-format", "IM_LOG_FORMAT", "text or json", str(&c.LogFormat, "text")},
		{"max-content", "IM_MAX_CONTENT", "largest message content in bytes", num(&c.MaxContent, im.DefaultMaxContentSize)},
		{"max-group-members", "IM_MAX_GROUP_MEMBERS", "most members of one group", num(&c.MaxGroup, im.DefaultMaxGroupMembers)},
		{"device-policy", "IM_DEVICE_POLICY", "what a new login does to older sessions: all, platform or one", str(&c.DevicePolicy, "all")},
		{"max-sessions", "IM_MAX_SESSIONS", "sessions per user under device-policy all", num(&c.MaxSessions, im.DefaultMaxSessionsPerUser)},
		{"send-rate", "IM_SEND_RATE", "messages per second one user may send, across all of the user's connections; bursts of twice that (negative: unlimited)", func(fs *flag.FlagSet, n, u string) {
			fs.Float64Var(&c.SendRate, n, im.DefaultSendRate, u)
		}},
		{"group-adds-per-minute", "IM_GROUP_ADDS_PER_MINUTE", "users one user may add to groups (create with members, invite) a minute (negative: unlimited)", num(&c.GroupAdds, im.DefaultGroupAddsPerMinute)},
		{"group-add-anyone", "IM_GROUP_ADD_ANYONE", "let any user add any user to groups (false: only users the two have exchanged a one-to-one message with)", func(fs *flag.FlagSet, n, u string) {
			fs.BoolVar(&c.GroupAddAny, n, false, u)
		}},
		{"recall-window", "IM_RECALL_WINDOW", "how long after sending users may recall their own messages; a group's owner and admins may recall any of its messages (negative: no limit)", dur(&c.RecallWindow, im.DefaultRecallWindow)},
		{"friends-only", "IM_FRIENDS_ONLY", "refuse one-to-one messages between users who are not friends (needs a store that keeps friends)", func(fs *flag.FlagSet, n, u string) {
			fs.BoolVar(&c.FriendsOnly, n, false, u)
		}},
		{"friend-request-rate", "IM_FRIEND_REQUEST_RATE", "friend requests per second one user may send; bursts of 5 (negative: unlimited)", func(fs *flag.FlagSet, n, u string) {
			fs.Float64Var(&c.FriendRate, n, im.DefaultFriendRequestRate, u)
		}},
		{"files-dir", "IM_FILES_DIR", "directory of uploaded files (empty: files in -data); several processes may share one on one machine, or on a network file system whose flock works; each sweeps", str(&c.FilesDir, "")},
		{"upload-max", "IM_UPLOAD_MAX", "largest file upload in bytes", func(fs *flag.FlagSet, n, u string) {
			fs.Int64Var(&c.UploadMax, n, files.DefaultMaxSize, u)
		}},
		{"upload-ttl", "IM_UPLOAD_TTL", "how long an uploaded file no message references is kept (an upload never sent, the file of a recalled message)", dur(&c.UploadTTL, files.DefaultUnreferencedTTL)},
		{"files-url", "IM_FILES_URL", "public base URL of file URLs (https://files.example.com), behind a proxy (empty: the scheme and host of each upload request)", str(&c.FilesURL, "")},
		{"files-url-ttl", "IM_FILES_URL_TTL", "sign file URLs, valid this long after the upload (0: URLs never expire)", dur(&c.FilesURLTTL, 0)},
		{"ws-origins", "IM_WS_ORIGINS", "comma-separated extra Origin host patterns allowed on WebSocket", str(&c.WSOrigins, "")},
		{"cors-origins", "IM_CORS_ORIGINS", "comma-separated web origins (https://app.example.com) whose pages may call the HTTP API from a browser; empty allows none", str(&c.CORSOrigins, "")},
		{"tls-cert", "IM_TLS_CERT", "certificate file: serve TCP (tcps://) and WebSocket (wss://) over TLS", str(&c.TLSCert, "")},
		{"tls-key", "IM_TLS_KEY", "key file for -tls-cert", str(&c.TLSKey, "")},
		{"shutdown-grace", "IM_SHUTDOWN_GRACE", "how long a graceful shutdown may take", dur(&c.ShutdownGrace, 15*time.Second)},
		{"check-recipients", "IM_CHECK_RECIPIENTS", "refuse messages to user ids that have no account, and tokens of users without an enabled account (false: any valid id, for users whose accounts and tokens live elsewhere)", func(fs *flag.FlagSet, n, u string) {
			fs.BoolVar(&c.CheckRecip, n, true, u)
		}},
		{"bcrypt-cost", "IM_BCRYPT_COST", "bcrypt cost of new passwords (at least 10)", num(&c.BcryptCost, auth.DefaultBcryptCost)},
		{"login-client-rate", "IM_LOGIN_CLIENT_RATE", "logins and registrations a minute from one client address, before any password hashing (raise it to register many users from one host, as imbench does)", num(&c.ClientAttempts, auth.DefaultClientAttempts)},
		{"login-subnet-rate", "IM_LOGIN_SUBNET_RATE", "logins and registrations a minute from one /24 (IPv4) or /64 (IPv6) subnet", num(&c.SubnetAttempts, auth.DefaultSubnetAttempts)},
		{"debug-addr", "IM_DEBUG_ADDR", "listen address for /debug/pprof and /metrics (empty disables; keep it private)", str(&c.DebugAddr, "")},
		{"metrics-token", "IM_METRICS_TOKEN", "also serve /metrics on the HTTP API port to requests with \"Authorization: Bearer <token>\" (empty: only on -debug-addr)", str(&c.MetricsToken, "")},
		{"admin-token", "IM_ADMIN_TOKEN", "serve the admin API (/admin/api/: sessions, kick, system messages, broadcast, lookups, stats, history) on the HTTP API port to requests with \"Authorization: Bearer <token>\", and the dashboard over it at /admin; at least 32 characters (openssl rand -hex 32); empty: off", str(&c.AdminToken, "")},
		{"max-conns-per-ip", "IM_MAX_CONNS_PER_IP", "open TCP connections, and open WebSockets, one client IP address may hold (negative: unlimited)", num(&c.MaxConnsPerIP, iplimitDefault)},
		{"http-read-timeout", "IM_HTTP_READ_TIMEOUT", "time an HTTP client has to send a whole request, body included (a file upload instead goes on while bytes move)", dur(&c.HTTPRead, 30*time.Second)},
		{"http-write-timeout", "IM_HTTP_WRITE_TIMEOUT", "time to answer an HTTP API request, from the end of its headers (a file download instead goes on while bytes move)", dur(&c.HTTPWrite, 60*time.Second)},
		{"http-idle-timeout", "IM_HTTP_IDLE_TIMEOUT", "how long an idle HTTP keep-alive connection stays open", dur(&c.HTTPIdle, 60*time.Second)},
		{"log-notifications", "IM_LOG_NOTIFICATIONS", "log each offline-push notification at info level (recipient, conversation, seq, badge, muted; never the content), to see what a push service would be sent", func(fs *flag.FlagSet, n, u string) {
			fs.BoolVar(&c.LogNotifications, n, false, u)
		}},
	}
}

// parseConfig reads flags, then the environment for every flag not given.
// A value of the wrong form is refused naming the flag (or the variable),
// the value and the form expected; the flag package's own message and the
// usage text it prints after it would name neither the form nor the
// variable.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("imserver", flag.ContinueOnError)
	// Errors are returned, and the usage is printed only when asked for.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	list := settings(&c)
	var bad error // the last value a flag refused, as the user should read it
	for _, s := range list {
		s.bind(fs, s.name, s.usage+" (env "+s.env+")")
		f := fs.Lookup(s.name)
		f.Value = &checkedValue{Value: f.Value, name: s.name, bad: &bad}
	}
	// -version is no setting: it has no variable and asks for an answer
	// instead of a server.
	var version bool
	fs.BoolVar(&version, "version", false, "print the version and the commit this binary was built from, and exit")
	fs.Lookup("version").Value = &checkedValue{Value: fs.Lookup("version").Value, name: "version", bad: &bad}
	if err := fs.Parse(args); err != nil {
		switch {
		case errors.Is(err, flag.ErrHelp):
			printUsage(fs, out)
			return c, err
		case bad != nil:
			return c, bad
		}
		return c, fmt.Errorf("%w (imserver -h lists the flags)", err)
	}
	if version {
		return c, errVersion
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (imserver -h lists the flags)", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, s := range list {
		if v := getenv(s.env); v != "" && !given[s.name] {
			if err := fs.Set(s.name, v); err != nil {
				return c, fmt.Errorf("%s=%q (-%s): %s", s.env, v, s.name, valueForm(fs.Lookup(s.name).Value))
			}
		}
	}
	return c, c.validate()
}

// checkedValue is a flag's value that records, in *bad, a value it refuses
// in words that name the flag, the value and the form it takes.
type checkedValue struct {
	flag.Value
	name string
	bad  *error
}

func (v *checkedValue) Set(s string) error {
	err := v.Value.Set(s)
	if err != nil {
		*v.bad = fmt.Errorf("-%s %q: %s", v.name, s, valueForm(v.Value))
	}
	return err
}

// IsBoolFlag lets a boolean flag be given without a value (-friends-only).
func (v *checkedValue) IsBoolFlag() bool {
	b, ok := v.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// valueForm says what form a flag's value takes, from the type the flag
// package gave it.
func valueForm(v flag.Value) string {
	if c, ok := v.(*checkedValue); ok {
		v = c.Value
	}
	switch name, _ := flag.UnquoteUsage(&flag.Flag{Value: v}); name {
	case "duration":
		return "a duration such as 15s, 2m or 24h"
	case "int":
		return "a whole number"
	case "float":
		return "a number such as 1 or 0.5"
	case "":
		return "true or false"
	}
	return "not a valid value"
}

// printUsage prints the help text as flag.PrintDefaults would, with each
// flag's type, which PrintDefaults cannot see through checkedValue.
func printUsage(fs *flag.FlagSet, out io.Writer) {
	fmt.Fprintf(out, "Usage: imserver [flags]\n       imserver check [-data dir]\n\nRuns an IM server with zero configuration. Each flag can also be set by the environment variable named after it. imserver check verifies a data dir offline (imserver check -h).\n\n")
	fs.VisitAll(func(f *flag.Flag) {
		v := f.Value.(*checkedValue).Value
		var b strings.Builder
		fmt.Fprintf(&b, "  -%s", f.Name)
		name, usage := flag.UnquoteUsage(&flag.Flag{Value: v, Usage: f.Usage})
		if name != "" {
			b.WriteString(" " + name)
		}
		if b.Len() <= 4 {
			b.WriteString("\t")
		} else {
			b.WriteString("\n    \t")
		}
		b.WriteString(strings.ReplaceAll(usage, "\n", "\n    \t"))
		switch {
		case f.DefValue == "" || f.DefValue == "false" || f.DefValue == "0" || f.DefValue == "0s":
		case name == "string":
			fmt.Fprintf(&b, " (default %q)", f.DefValue)
		default:
			fmt.Fprintf(&b, " (default %v)", f.DefValue)
		}
		fmt.Fprintln(out, b.String())
	})
}

// validate checks every setting against the range it can take, so that a
// value the server could not work with is refused at start, naming the
// flag, the value and what it may be, before anything in the data dir is
// touched. Secrets are never echoed.
func (c config) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch c.Store {
	case "bolt":
	case "sqlite":
		if err := sqliteLinked(sql.Drivers()); err != nil {
			errs = append(errs, err)
		}
	case "postgres", "mysql":
		if c.DSN == "" {
			bad("-store %s needs -dsn", c.Store)
		}
	default:
		bad("-store is %q; it must be bolt, sqlite, postgres or mysql", c.Store)
	}
	if c.Store == "bolt" && c.DSN != "" {
		bad("-dsn is for the SQL stores; bolt keeps its file in -data")
	}
	if c.DSN != "" {
		if err := checkDSN(c.Store, c.DSN); err != nil {
			errs = append(errs, err)
		}
	}
	if c.DataDir == "" {
		bad("-data is empty; it must name a directory, such as ./data")
	}
	for _, d := range []struct{ name, dir string }{{"data", c.DataDir}, {"files-dir", c.FilesDir}} {
		if fi, err := os.Stat(d.dir); err == nil && !fi.IsDir() {
			bad("-%s is %q, a file; it must be a directory (made if missing)", d.name, d.dir)
		}
	}
	for _, a := range []struct{ name, addr string }{{"http", c.HTTPAddr}, {"ws", c.WSAddr}, {"tcp", c.TCPAddr}, {"debug-addr", c.DebugAddr}} {
		if a.addr != "" && !validAddr(a.addr) {
			bad("-%s is %q; it must be a listen address such as :8080 or 127.0.0.1:8080 (empty disables)", a.name, a.addr)
		}
	}
	if c.HTTPAddr == "" && c.WSAddr == "" && c.TCPAddr == "" {
		bad("every listener is disabled: set at least one of -http, -ws and -tcp")
	}
	if c.JWTSecret != "" {
		if err := auth.ValidateSecret([]byte(c.JWTSecret)); err != nil {
			bad("-jwt-secret: %w", err)
		}
	}
	if c.JWTIssuer == "" {
		bad("-jwt-issuer is empty; it must be a name such as imserver")
	}
	if c.JWTAudience == "" {
		bad("-jwt-audience is empty; it must be a name such as imserver")
	}
	if c.TokenLifetime <= 0 {
		bad("-token-lifetime is %v; it must be positive, such as 720h", c.TokenLifetime)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("-log-format is %q; it must be text or json", c.LogFormat)
	}
	// Half a frame: a message's frame holds its content and its envelope.
	if c.MaxContent < 1 || c.MaxContent > im.MaxFrameSize/2 {
		bad("-max-content is %d; it must be 1 to %d bytes", c.MaxContent, im.MaxFrameSize/2)
	}
	if c.MaxGroup < 1 {
		bad("-max-group-members is %d; it must be at least 1", c.MaxGroup)
	}
	if _, err := c.policy(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxSessions < 1 {
		bad("-max-sessions is %d; it must be at least 1", c.MaxSessions)
	}
	// Zero would mean the Server's default, not "none": refused, so that
	// no one takes it for "no sends".
	for _, r := range []struct {
		name string
		v    float64
	}{{"send-rate", c.SendRate}, {"friend-request-rate", c.FriendRate}} {
		if r.v == 0 || math.IsNaN(r.v) || math.IsInf(r.v, 0) {
			bad("-%s is %v; it must be positive, or negative for no limit", r.name, r.v)
		}
	}
	if c.GroupAdds == 0 {
		bad("-group-adds-per-minute is 0; it must be positive, or negative for no limit")
	}
	if c.RecallWindow == 0 {
		bad("-recall-window is 0s; it must be positive, or negative for no limit")
	}
	if c.UploadMax < 1 {
		bad("-upload-max is %d; it must be at least 1 byte", c.UploadMax)
	}
	if c.UploadTTL <= 0 {
		bad("-upload-ttl is %v; it must be positive", c.UploadTTL)
	}
	if c.FilesURL != "" {
		if u, err := url.Parse(c.FilesURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
			bad("-files-url is %q; it must be a base URL such as https://files.example.com", c.FilesURL)
		}
	}
	if c.FilesURLTTL < 0 {
		bad("-files-url-ttl is %v; it must be positive, or 0 for URLs that never expire", c.FilesURLTTL)
	}
	for _, o := range c.origins() {
		if _, err := path.Match(o, ""); err != nil {
			bad("-ws-origins: %q is not a host pattern such as *.example.com", o)
		}
	}
	for _, o := range c.corsOrigins() {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.TrimRight(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
			bad("-cors-origins: %q is not an origin such as https://app.example.com", o)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("-tls-cert and -tls-key go together: set both or neither")
	} else if c.TLSCert != "" {
		if _, err := c.tlsConfig(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.ShutdownGrace <= 0 {
		bad("-shutdown-grace is %v; it must be positive, such as 15s", c.ShutdownGrace)
	}
	if c.BcryptCost < auth.MinBcryptCost || c.BcryptCost > bcrypt.MaxCost {
		bad("-bcrypt-cost is %d; it must be %d to %d", c.BcryptCost, auth.MinBcryptCost, bcrypt.MaxCost)
	}
	if c.ClientAttempts < 1 {
		bad("-login-client-rate is %d; it must be at least 1", c.ClientAttempts)
	}
	if c.SubnetAttempts < 1 {
		bad("-login-subnet-rate is %d; it must be at least 1", c.SubnetAttempts)
	}
	if c.MetricsToken != "" && len(c.MetricsToken) < 16 {
		bad("-metrics-token is %d characters; it must be at least 16 (openssl rand -hex 16)", len(c.MetricsToken))
	}
	if c.AdminToken != "" && len(c.AdminToken) < httpapi.MinAdminTokenLen {
		bad("-admin-token is %d characters; it must be at least %d (openssl rand -hex 32)", len(c.AdminToken), httpapi.MinAdminTokenLen)
	}
	if c.AdminToken != "" && c.HTTPAddr == "" {
		bad("-admin-token is set but -http is empty: the admin API is served on the HTTP API port")
	}
	if c.MaxConnsPerIP == 0 {
		bad("-max-conns-per-ip is 0; it must be positive, or negative for no limit")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"http-read-timeout", c.HTTPRead}, {"http-write-timeout", c.HTTPWrite}, {"http-idle-timeout", c.HTTPIdle}} {
		if d.v <= 0 {
			bad("-%s is %v; it must be positive, such as 30s", d.name, d.v)
		}
	}
	return errors.Join(errs...)
}

// validAddr reports whether addr is a host:port net.Listen can take.
func validAddr(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return false
	}
	if n, err := strconv.ParseUint(port, 10, 16); err == nil {
		return n <= math.MaxUint16
	}
	// A service name, such as http.
	_, err = net.LookupPort("tcp", port)
	return err == nil
}

// checkDSN checks that dsn has the form the driver of store reads. The
// drivers' own errors for a DSN of the other's form name neither the flag
// nor the form expected (the MySQL driver takes a PostgreSQL URL for an
// address it cannot dial). The DSN itself is not echoed: it may hold a
// password.
func checkDSN(store, dsn string) error {
	const (
		mysqlForm    = "a DSN such as user:password@tcp(127.0.0.1:3306)/imserver?parseTime=true"
		postgresForm = "a URL such as postgres://user:password@127.0.0.1:5432/imserver?sslmode=disable"
	)
	isURL := strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
	isMySQL := strings.Contains(dsn, "@tcp(") || strings.Contains(dsn, "@unix(")
	switch store {
	case "mysql":
		if isURL {
			return fmt.Errorf("-dsn is a PostgreSQL URL; -store mysql takes %s (or use -store postgres)", mysqlForm)
		}
		if _, err := mysql.ParseDSN(dsn); err != nil {
			return fmt.Errorf("-dsn is not a MySQL DSN (%w); -store mysql takes %s", err, mysqlForm)
		}
	case "postgres":
		if isMySQL {
			return fmt.Errorf("-dsn is a MySQL DSN; -store postgres takes %s (or use -store mysql)", postgresForm)
		}
		if _, err := pgconn.ParseConfig(dsn); err != nil {
			return fmt.Errorf("-dsn is not a PostgreSQL URL or connection string; -store postgres takes %s", postgresForm)
		}
	case "sqlite":
		if isURL || isMySQL {
			return errors.New("-dsn is a PostgreSQL or MySQL DSN; -store sqlite takes a file path (or use -store postgres or mysql)")
		}
	}
	return nil
}

func (c config) policy() (im.DevicePolicy, error) {
	switch c.DevicePolicy {
	case "all":
		return im.AllowAllDevices, nil
	case "platform":
		return im.OnePerPlatform, nil
	case "one":
		return im.OneSession, nil
	}
	return 0, fmt.Errorf("-device-policy is %q; it must be all, platform or one", c.DevicePolicy)
}

// tlsConfig is the TLS configuration of -tls-cert and -tls-key; nil
// without them.
func (c config) tlsConfig() (*tls.Config, error) {
	if c.TLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert %s, -tls-key %s: %w (they must be a PEM certificate and its private key)", c.TLSCert, c.TLSKey, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func (c config) origins() []string { return splitList(c.WSOrigins) }

// corsOrigins are the web origins allowed to call the HTTP API.
func (c config) corsOrigins() []string { return splitList(c.CORSOrigins) }

// splitList splits a comma-separated setting, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, o := range strings.Split(s, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}
