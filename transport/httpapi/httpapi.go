package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth/account"
	"github.com/imserver/imserver/im/files"
)

// DefaultMaxBodyBytes is the default of Options.MaxBodyBytes.
const DefaultMaxBodyBytes = 64 << 10

// Options configures NewHandler.
type Options struct {
	// Accounts serves register and login; *auth.Accounts is the built-in
	// one. nil leaves those routes out (they answer 404), for hosts with
	// their own accounts. If it is also an AccountLifecycle and Server is
	// set, logout, password change and account deletion are served too.
	Accounts Accounts
	// Server, if set, serves the group routes (/api/group/...) through
	// its group API. Their callers authenticate with the header
	// "Authorization: Bearer <token>", checked by Server.Authenticate: the
	// same token the socket takes, such as the one login returns. nil
	// leaves those routes out (they answer 404).
	Server *im.Server
	// Health reports whether the server can serve, typically by pinging
	// the store (im.Server.Health, which also fails once Shutdown has
	// begun); GET /readyz and its alias /health answer 503 when it
	// returns an error, with a short reason for the im errors it knows
	// (im.ErrStorageFull, …) and never the error's text, which is
	// logged. nil means always healthy.
	Health func(ctx context.Context) error
	// Ready, if set, reports whether the host has finished starting:
	// until it returns true, /readyz and /health answer 503 "starting",
	// so that a load balancer sends no traffic to a process whose other
	// listeners are not open yet. nil means started. /livez ignores it.
	Ready func() bool
	// Stats, with MetricsToken, is served at GET /metrics in the
	// Prometheus text format; pass the im.Server's Stats method. The
	// counters tell an outsider how busy the server is and how it fails,
	// so without a token the route is left out of this handler (it
	// answers 404): serve NewMetricsHandler on a private listener instead.
	Stats func() im.Stats
	// MetricsToken, if set with Stats or MetricsHandler, serves /metrics on this handler to
	// requests carrying "Authorization: Bearer <MetricsToken>"; others get
	// 401.
	MetricsToken string
	// MetricsHandler, if set, is what MetricsToken's /metrics serves in
	// place of Stats in the hand-written format, such as
	// metrics.NewHandler of package transport/metrics; Stats is then
	// not needed.
	MetricsHandler http.Handler
	// ObserveRequest, if set, is called after each request a route
	// served, with the route's pattern ("POST /api/auth/login",
	// "GET /api/group/{id}": a bounded set, never the raw path), the
	// answer's HTTP status and how long the handler took; such as
	// the Observe method of package transport/metrics' RequestDurations. Requests
	// answered 404 or 405 by no route are not observed.
	ObserveRequest func(route string, status int, d time.Duration)
	// AllowedOrigins are the web origins ("https://app.example.com":
	// scheme, host and port if not the default) whose pages may call the
	// API from a browser. Their requests get Access-Control-Allow-Origin
	// and their preflights an answer allowing the API's methods and the
	// Authorization and Content-Type headers. Empty, the default, allows
	// none: a browser then lets no other site's page read an answer or
	// send a JSON request, which apps outside a browser do not need.
	AllowedOrigins []string
	// Logger receives unexpected errors; nil discards them.
	Logger *slog.Logger
	// MaxBodyBytes bounds a request body. Default DefaultMaxBodyBytes.
	// Uploads are bounded by Files' MaxSize instead.
	MaxBodyBytes int64

	// Files, if set, serves upload (POST /upload) and download (GET and
	// HEAD /files/<id><ext>) through it; nil leaves those routes out.
	// Uploads need no token; one with a valid token (checked by Server)
	// records its user as the file's owner. The host also runs the
	// Service's sweeper (files.Service.Run) and plugs its BeforeSend and
	// AfterRecall into the im.Config; account deletion here releases the
	// user's files (files.Service.ReleaseOwner).
	Files *files.Service
	// FilesBaseURL is the scheme, host and optional path prefix the URLs
	// of uploaded files start with ("https://im.example.com"), for a
	// server behind a proxy or reached under another name. Empty means
	// the scheme and Host of each upload request.
	FilesBaseURL string
	// FileLimits bound each client's uploads; see FileLimits.
	FileLimits FileLimits
	// SignedURLs, if set, makes file URLs expire (see SignedURLs).
	// NewHandler panics if it is set with a Key under 32 bytes or a TTL
	// that is not positive.
	SignedURLs *SignedURLs

	// AdminToken, if set, serves the admin API (/admin/api/..., see the
	// package documentation) to requests carrying "Authorization: Bearer
	// <AdminToken>"; others get 401, users' tokens included. It also
	// serves the dashboard at /admin, whose page asks for the token. Empty,
	// the default, leaves those routes out (they answer 404). It needs
	// Server; NewHandler panics if it is set without one or is shorter
	// than MinAdminTokenLen bytes. With it, NewHandler starts sampling
	// Server's Stats for /admin/api/history in a goroutine, which
	// Server's Shutdown and Close stop.
	AdminToken string
}

// Response codes; see the package documentation.
const (
	codeOK            = 0
	codeInternal      = 1
	codeInvalidParam  = 2
	codeAuthFailed    = 100
	codeTokenExpired  = 101
	codePermission    = 102
	codeUserNotExist  = 103
	codeTooMany       = 201
	codeNotFound      = 202
	codeNoRoute       = 404
	codeBadMethod     = 405
	codeMediaType     = 415
	codeUsernameTaken = 1001
	// codeJoinPending answers a join of a group that approves who joins:
	// the request is stored, the user is not a member yet.
	codeJoinPending = 1201
)

// Accounts is what the register and login routes need: *auth.Accounts, or a
// host's own account system answering with the same errors (see the
// package documentation).
type Accounts interface {
	Register(ctx context.Context, username, password, nickname string) (account.Account, error)
	Login(ctx context.Context, username, password string) (account.LoginResult, error)
}

type api struct {
	accounts     Accounts
	lifecycle    AccountLifecycle // accounts' AccountLifecycle side, or nil
	server       *im.Server
	health       func(ctx context.Context) error
	ready        func() bool
	stats        func() im.Stats
	metricsToken string
	metrics      http.Handler // Options.MetricsHandler, or nil
	log          *slog.Logger
	maxBody      int64
	files        *fileAPI // nil without Options.Files
}

// NewHandler returns the API's http.Handler.
func NewHandler(opts Options) http.Handler {
	return newHandler(opts, AdminHistoryInterval)
}

// newHandler is NewHandler sampling the admin history every historyEvery,
// which tests shorten.
func newHandler(opts Options, historyEvery time.Duration) http.Handler {
	if nilPointer(opts.Accounts) {
		// A nil *auth.Accounts in the interface means none, as the
		// field's type used to say; calling it would panic. Checked
		// without naming the type, so that this package does not link
		// im/auth's bcrypt and JWT.
		opts.Accounts = nil
	}
	a := &api{
		accounts:     opts.Accounts,
		server:       opts.Server,
		health:       opts.Health,
		ready:        opts.Ready,
		stats:        opts.Stats,
		metricsToken: opts.MetricsToken,
		metrics:      opts.MetricsHandler,
		log:          opts.Logger,
		maxBody:      opts.MaxBodyBytes,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.maxBody <= 0 {
		a.maxBody = DefaultMaxBodyBytes
	}
	a.lifecycle, _ = opts.Accounts.(AccountLifecycle)
	if err := checkAdminOptions(opts); err != nil {
		panic(err)
	}
	if opts.Files != nil {
		f, err := newFileAPI(opts)
		if err != nil {
			panic(err)
		}
		a.files = f
	}

	r := newRouter()
	r.observe = opts.ObserveRequest
	r.handle(http.MethodGet, "/livez", a.serveLive)
	r.handle(http.MethodGet, "/readyz", a.serveReady)
	// The first name of the readiness check, kept for the load balancers
	// configured with it.
	r.handle(http.MethodGet, "/health", a.serveReady)
	if (a.stats != nil || a.metrics != nil) && a.metricsToken != "" {
		r.handle(http.MethodGet, "/metrics", a.serveMetricsWithToken)
	}
	if a.accounts != nil {
		r.handle(http.MethodPost, "/api/auth/register", a.serveRegister)
		r.handle(http.MethodPost, "/api/auth/login", a.serveLogin)
	}
	if a.server != nil {
		a.handleGroups(r)
		a.handleConversations(r)
		a.handleFriends(r)
		a.handleUsers(r)
		if a.lifecycle != nil {
			a.handleAccountLifecycle(r)
		}
	}
	if a.files != nil {
		a.handleFiles(r)
	}
	if opts.AdminToken != "" {
		a.handleAdmin(r, opts.AdminToken, historyEvery)
	}
	return withCORS(cleanFilePaths(r.finish()), opts.AllowedOrigins)
}

// router wraps http.ServeMux so that an unknown path and a known path with
// the wrong method answer in the envelope instead of ServeMux's plain text.
//
// Requests that match no "METHOD path" pattern fall through to a second mux
// holding the bare paths, which tells a wrong method (405) from an unknown
// path (404). Keeping the bare paths out of the first mux lets a literal
// route (POST /api/group/create) sit beside a wildcard route of another
// method (GET /api/group/{id}), which ServeMux refuses as conflicting.
type router struct {
	mux     *http.ServeMux
	methods map[string][]string                             // path → methods served
	observe func(route string, status int, d time.Duration) // or nil
}

func newRouter() *router {
	return &router{mux: http.NewServeMux(), methods: map[string][]string{}}
}

func (r *router) handle(method, path string, h http.HandlerFunc) {
	if observe := r.observe; observe != nil {
		route, served := method+" "+path, h
		h = func(w http.ResponseWriter, req *http.Request) {
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			start := time.Now()
			served(sw, req)
			observe(route, sw.status, time.Since(start))
		}
	}
	r.mux.HandleFunc(method+" "+path, h)
	r.methods[path] = append(r.methods[path], method)
	if method == http.MethodGet {
		// ServeMux serves HEAD with the GET handler.
		r.methods[path] = append(r.methods[path], http.MethodHead)
	}
}

func (r *router) finish() http.Handler {
	unserved := http.NewServeMux()
	for path, methods := range r.methods {
		allow := strings.Join(slices.Sorted(slices.Values(methods)), ", ")
		unserved.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Allow", allow)
			writeEnvelope(w, http.StatusMethodNotAllowed, codeBadMethod, "method not allowed", nil)
		})
	}
	unserved.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeEnvelope(w, http.StatusNotFound, codeNoRoute, "not found", nil)
	})
	r.mux.Handle("/", unserved)
	return r.mux
}

// statusWriter remembers the status a handler answered with, for
// Options.ObserveRequest.
type statusWriter struct {
	http.ResponseWriter
	status  int
	written bool
}

func (w *statusWriter) WriteHeader(status int) {
	if !w.written {
		w.status, w.written = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.written = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's own writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// envelope is the shape of every answer. Data is omitted when nil, which
// the SDK reads as "nothing"; an empty object would not decode as most of
// its result types.
type envelope struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func writeEnvelope(w http.ResponseWriter, status, code int, message string, data any) {
	body, err := json.Marshal(envelope{Code: code, Message: message, Data: data})
	if err != nil {
		// Only our own response types get here, all of which marshal.
		status, body = http.StatusInternalServerError, []byte(`{"code":1,"message":"internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

func writeOK(w http.ResponseWriter, data any) {
	writeEnvelope(w, http.StatusOK, codeOK, "ok", data)
}

// writeError answers err in the envelope. Errors that mean the request was
// refused get their code and a message safe to show (an *im.Error's Msg);
// anything else is logged and answered as code 1 without detail.
func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	a.writeErrorStatus(w, r, http.StatusOK, err)
}

// writeErrorStatus is writeError with the HTTP status to answer with.
func (a *api) writeErrorStatus(w http.ResponseWriter, r *http.Request, status int, err error) {
	if errors.Is(err, errMediaType) {
		// Only clients other than the SDK, which sends JSON, get here;
		// the status tells them what to fix.
		writeEnvelope(w, http.StatusUnsupportedMediaType, codeMediaType, "Content-Type must be application/json", nil)
		return
	}
	code, msg := codeOf(err)
	if code == codeInternal && !errors.Is(err, im.ErrUnsupported) {
		a.log.ErrorContext(r.Context(), "httpapi: request failed", "path", r.URL.Path, "err", err)
	}
	if secs, ok := account.RetryAfter(err); ok {
		// The SDK reads the code from a 200 answer; Retry-After rides
		// along for clients and proxies that honour it.
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	writeEnvelope(w, status, code, msg, nil)
}

// codeOf maps an error to a response code and message; the one place that
// does.
func codeOf(err error) (int, string) {
	var code int
	var msg string
	switch {
	case errors.Is(err, im.ErrRateLimited):
		code, msg = codeTooMany, "too many attempts, try again later"
	case errors.Is(err, im.ErrTokenExpired):
		code, msg = codeTokenExpired, "token expired"
	case errors.Is(err, im.ErrUnauthenticated):
		code, msg = codeAuthFailed, "authentication failed"
	case errors.Is(err, im.ErrPermissionDenied):
		code, msg = codePermission, "permission denied"
	case errors.Is(err, im.ErrConflict):
		code, msg = codeUsernameTaken, "username is taken"
	case errors.Is(err, im.ErrInvalidArgument):
		code, msg = codeInvalidParam, "invalid parameter"
	case errors.Is(err, im.ErrLimitExceeded):
		code, msg = codeInvalidParam, "limit exceeded"
	case errors.Is(err, im.ErrUnsupported):
		// A feature the server's store lacks: not a failure to log, and
		// the message says which.
		code, msg = codeInternal, "not supported by this server"
	case errors.Is(err, im.ErrNotFound):
		// The im package tells a missing user from a missing group by
		// the code it gives the error.
		code, msg = codeNotFound, "not found"
		var e *im.Error
		if errors.As(err, &e) && e.Code == im.CodeUserNotFound {
			code = codeUserNotExist
		}
	default:
		return codeInternal, "internal error"
	}
	var e *im.Error
	if errors.As(err, &e) && e.Msg != "" {
		msg = e.Msg
	}
	return code, msg
}

// badRequest is an error for input refused by this package itself.
func badRequest(msg string) error {
	return &im.Error{Msg: msg, Err: im.ErrInvalidArgument}
}

// decodeBody reads one JSON value from r's body into dst. The body must be
// sent as application/json: a page on another site can make a browser
// send a form or text/plain body anywhere without asking, but not a JSON
// one unless CORS allows it (see withCORS). Unknown fields are ignored.
func (a *api) decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	return a.decode(w, r, dst, false)
}

// decodeOptionalBody is decodeBody for calls whose parameters may all be
// left out: an empty body leaves dst as it is. IM-iOS-SDK sends no body
// at all for calls without parameters.
func (a *api) decodeOptionalBody(w http.ResponseWriter, r *http.Request, dst any) error {
	return a.decode(w, r, dst, true)
}

func (a *api) decode(w http.ResponseWriter, r *http.Request, dst any, optional bool) error {
	body := bufio.NewReader(http.MaxBytesReader(w, r.Body, a.maxBody))
	if _, err := body.Peek(1); optional && err == io.EOF {
		// Nothing sent, nothing to judge the type of.
		return nil
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		return errMediaType
	}
	dec := json.NewDecoder(body)
	err := dec.Decode(dst)
	if err == nil {
		// Anything after the value is a client bug worth reporting rather
		// than silently ignoring.
		if err = dec.Decode(&json.RawMessage{}); err == io.EOF {
			return nil
		}
		if err == nil {
			return badRequest("request body must be a single JSON object")
		}
	}
	var tooLarge *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		return badRequest(fmt.Sprintf("request body is over %d bytes", a.maxBody))
	case errors.Is(err, io.EOF):
		return badRequest("request body is empty; send a JSON object")
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return badRequest(fmt.Sprintf("field %s must be a %s", typeErr.Field, jsonKind(typeErr.Type.Kind())))
	case errors.As(err, &typeErr):
		return badRequest("request body must be a JSON object")
	}
	return badRequest("request body is not valid JSON")
}

// errMediaType refuses a body not sent as application/json.
var errMediaType = errors.New("httpapi: Content-Type must be application/json")

// isJSON reports whether the Content-Type header value ct is
// application/json, with or without parameters such as a charset.
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// jsonKind names, in JSON's terms, what a Go field of kind k accepts.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return "number"
}

// serveLive answers whenever the process does: a liveness probe that fails
// only when the handler cannot answer, so that an orchestrator restarts a
// hung process but not one whose store is down (restarting would not help).
func (a *api) serveLive(w http.ResponseWriter, _ *http.Request) {
	writeEnvelope(w, http.StatusOK, codeOK, "ok", nil)
}

// serveReady answers 200 when the host has started and Health passes.
func (a *api) serveReady(w http.ResponseWriter, r *http.Request) {
	if a.ready != nil && !a.ready() {
		writeEnvelope(w, http.StatusServiceUnavailable, codeInternal, "starting", nil)
		return
	}
	if a.health != nil {
		if err := a.health(r.Context()); err != nil {
			a.log.ErrorContext(r.Context(), "httpapi: health check failed", "err", err)
			writeEnvelope(w, http.StatusServiceUnavailable, codeInternal, healthReason(err), nil)
			return
		}
	}
	writeEnvelope(w, http.StatusOK, codeOK, "ok", nil)
}

// healthReason is the short reason /readyz gives for err: the kind of
// failure, never the error's own text, which may name a path or address.
func healthReason(err error) string {
	switch {
	case errors.Is(err, im.ErrStorageFull):
		return "storage full"
	case errors.Is(err, im.ErrStorageReadOnly):
		return "storage read-only"
	case errors.Is(err, im.ErrStorageUnavailable):
		return "storage unavailable"
	case errors.Is(err, im.ErrServerClosed):
		return "shutting down"
	}
	return "unhealthy"
}

type registerRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Nickname string `json:"nickname"`
}

type registerResponse struct {
	UserID   string `json:"userID"`
	Username string `json:"username"`
	Nickname string `json:"nickname"`
}

func (a *api) serveRegister(w http.ResponseWriter, r *http.Request) {
	var req registerRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	acc, err := a.accounts.Register(clientContext(r), req.Username, req.Password, req.Nickname)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.log.InfoContext(r.Context(), "httpapi: account registered", "user", acc.UserID)
	writeOK(w, registerResponse{UserID: acc.UserID, Username: acc.Username, Nickname: acc.Nickname})
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// Platform is what the SDK sends ("iOS"); sessions record the platform
	// the socket reports, so it is accepted and not used here.
	Platform string `json:"platform"`
}

type loginResponse struct {
	Token     string `json:"token"`
	UserID    string `json:"userID"`
	ExpiresAt int64  `json:"expiresAt"` // Unix milliseconds
}

func (a *api) serveLogin(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	res, err := a.accounts.Login(clientContext(r), req.Username, req.Password)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeOK(w, loginResponse{Token: res.Token, UserID: res.UserID, ExpiresAt: res.Expires.UnixMilli()})
}

// clientContext is r's context carrying the client's address for the login
// limits (account.WithClientAddr). The address is the connection's peer:
// X-Forwarded-For and the like are not trusted, since any client can send
// them, so behind a reverse proxy every client counts as the proxy.
func clientContext(r *http.Request) context.Context {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.Context()
	}
	return account.WithClientAddr(r.Context(), ap.Addr())
}

// nilPointer reports whether v holds a nil pointer.
func nilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}
