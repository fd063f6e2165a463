package main

import (
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/im/files"
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
		{"store", "IM_STORE", "where messages are kept: bolt (a file in the data dir), sqlite, postgres or mysql", str(&c.Store, "bolt")},
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
func parseConfig(args []string, getenv func(string) string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("imserver", flag.ContinueOnError)
	fs.SetOutput(out)
	list := settings(&c)
	for _, s := range list {
		s.bind(fs, s.name, s.usage+" (env "+s.env+")")
	}
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: imserver [flags]\n       imserver check [-data dir]\n\nRuns an IM server with zero configuration. Each flag can also be set by the environment variable named after it. imserver check verifies a data dir offline (imserver check -h).\n\n")
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
	for _, s := range list {
		if v := getenv(s.env); v != "" && !given[s.name] {
			if err := fs.Set(s.name, v); err != nil {
				return c, fmt.Errorf("%s: %w", s.env, err)
			}
		}
	}
	return c, c.validate()
}

func (c config) validate() error {
	var errs []error
	switch c.Store {
	case "bolt":
	case "sqlite":
		if err := sqliteLinked(sql.Drivers()); err != nil {
			errs = append(errs, err)
		}
	case "postgres", "mysql":
		if c.DSN == "" {
			errs = append(errs, fmt.Errorf("-store %s needs -dsn", c.Store))
		}
	default:
		errs = append(errs, fmt.Errorf("-store must be bolt, sqlite, postgres or mysql, not %q", c.Store))
	}
	if c.Store == "bolt" && c.DSN != "" {
		errs = append(errs, errors.New("-dsn is for the SQL stores; bolt keeps its file in -data"))
	}
	if _, err := c.policy(); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("-log-format must be text or json, not %q", c.LogFormat))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("-tls-cert and -tls-key go together"))
	}
	if c.JWTSecret != "" {
		if err := auth.ValidateSecret([]byte(c.JWTSecret)); err != nil {
			errs = append(errs, fmt.Errorf("-jwt-secret: %w", err))
		}
	}
	if c.ClientAttempts < 1 {
		errs = append(errs, fmt.Errorf("-login-client-rate is %d; it must be at least 1", c.ClientAttempts))
	}
	if c.SubnetAttempts < 1 {
		errs = append(errs, fmt.Errorf("-login-subnet-rate is %d; it must be at least 1", c.SubnetAttempts))
	}
	if c.BcryptCost < auth.MinBcryptCost || c.BcryptCost > 31 {
		errs = append(errs, fmt.Errorf("-bcrypt-cost must be %d to 31", auth.MinBcryptCost))
	}
	for _, o := range c.corsOrigins() {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.TrimRight(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
			errs = append(errs, fmt.Errorf("-cors-origins: %q is not an origin such as https://app.example.com", o))
		}
	}
	if c.MetricsToken != "" && len(c.MetricsToken) < 16 {
		errs = append(errs, errors.New("-metrics-token must be at least 16 characters (openssl rand -hex 16)"))
	}
	if c.RecallWindow == 0 {
		errs = append(errs, errors.New("-recall-window must be positive, or negative for no limit"))
	}
	if c.FriendRate == 0 || math.IsNaN(c.FriendRate) || math.IsInf(c.FriendRate, 0) {
		errs = append(errs, errors.New("-friend-request-rate must be positive, or negative for no limit"))
	}
	if c.UploadMax < 1 {
		errs = append(errs, fmt.Errorf("-upload-max is %d; it must be at least 1 byte", c.UploadMax))
	}
	if c.UploadTTL <= 0 {
		errs = append(errs, fmt.Errorf("-upload-ttl must be positive, not %v", c.UploadTTL))
	}
	if c.FilesURLTTL < 0 {
		errs = append(errs, fmt.Errorf("-files-url-ttl must not be negative, not %v", c.FilesURLTTL))
	}
	if c.FilesURL != "" {
		if u, err := url.Parse(c.FilesURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
			errs = append(errs, fmt.Errorf("-files-url: %q is not a base URL such as https://files.example.com", c.FilesURL))
		}
	}
	if c.MaxConnsPerIP == 0 {
		errs = append(errs, errors.New("-max-conns-per-ip must be positive, or negative for no limit"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"-http-read-timeout", c.HTTPRead}, {"-http-write-timeout", c.HTTPWrite}, {"-http-idle-timeout", c.HTTPIdle}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, not %v", d.name, d.v))
		}
	}
	if c.HTTPAddr == "" && c.WSAddr == "" && c.TCPAddr == "" {
		errs = append(errs, errors.New("every listener is disabled"))
	}
	return errors.Join(errs...)
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
	return 0, fmt.Errorf("-device-policy must be all, platform or one, not %q", c.DevicePolicy)
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
