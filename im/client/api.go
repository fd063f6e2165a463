package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// Defaults of APIOptions fields.
const (
	// DefaultMaxRequestBytes is the server's default bound on a request
	// body (httpapi.DefaultMaxBodyBytes).
	DefaultMaxRequestBytes = 64 << 10
	// DefaultMaxResponseBytes leaves room for the largest answers: a
	// conversation list page of 200 entries, each with its last message.
	DefaultMaxResponseBytes = 16 << 20
)

// APIOptions configures an API. Every zero field means its documented
// default.
type APIOptions struct {
	// HTTPClient makes the requests; default http.DefaultClient.
	HTTPClient *http.Client
	// Token is the bearer token to start with, for a caller that has one
	// already (from an earlier Login, or issued by the host). Login and
	// ChangePassword replace it; Logout and DeleteAccount clear it.
	Token string
	// RequestTimeout bounds each call unless the caller's ctx ends sooner.
	// Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxRequestBytes bounds a request body: a call whose body would be
	// larger fails with wire.ErrInvalidArgument and sends nothing. Default
	// DefaultMaxRequestBytes, the server's default limit.
	MaxRequestBytes int64
	// MaxResponseBytes bounds an answer; a larger one fails the call.
	// Default DefaultMaxResponseBytes.
	MaxResponseBytes int64
}

// API is a client of imserver's HTTP API (transport/httpapi): accounts,
// users, friends, groups and conversation settings. It holds the bearer
// token the calls send, which Login sets. Its methods are safe for
// concurrent use.
type API struct {
	base *url.URL
	opts APIOptions

	mu    sync.Mutex
	token string
}

// NewAPI returns a client of the HTTP API at baseURL ("http://host:8080",
// with a path prefix if the API is mounted under one). It makes no
// request. A baseURL that is not an http or https URL is refused with
// wire.ErrInvalidArgument.
func NewAPI(baseURL string, opts APIOptions) (*API, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: API base URL must be an http:// or https:// URL, not %q: %w", baseURL, wire.ErrInvalidArgument)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: API base URL must have no query or fragment: %w", wire.ErrInvalidArgument)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	return &API{base: u, opts: opts, token: opts.Token}, nil
}

// Token returns the bearer token the calls send: the last one Login or
// ChangePassword got, or APIOptions.Token; "" after Logout.
func (a *API) Token() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.token
}

func (a *API) setToken(token string) {
	a.mu.Lock()
	a.token = token
	a.mu.Unlock()
}

// APIError is a non-zero code that the HTTP API answered a call with.
// errors.Is matches it against the sentinel of its code, which are those
// of the socket protocol (see Error) and the server's own:
//
//	code  sentinel
//	2     wire.ErrInvalidArgument (bad input; nothing changed)
//	100   wire.ErrUnauthenticated (no, wrong or revoked token; failed login)
//	101   wire.ErrTokenExpired (which matches ErrUnauthenticated too)
//	102   wire.ErrPermissionDenied (also a wrong password)
//	103   wire.ErrNotFound (no such user)
//	201   wire.ErrRateLimited (too many; RetryAfter says how long to wait)
//	202   wire.ErrNotFound (no such group, request or friendship)
//	1001  wire.ErrConflict (the username is taken)
//	1     wire.ErrUnsupported when Message is "not supported by this
//	      server" (the server's store lacks the feature); else none
//
// Other codes (404 no such route, 405, 415) match no sentinel.
type APIError struct {
	HTTPStatus int    // the answer's HTTP status: 200 for most API errors, 401 for a refused token
	Code       int    // the envelope's code
	Message    string // the envelope's message, safe to show
	// RetryAfter is the wait the server asked for with code 201, or 0.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	return fmt.Sprintf("client: API error %d (HTTP %d): %s", e.Code, e.HTTPStatus, e.Message)
}

// msgUnsupported is the message with which the server answers code 1 for a
// feature its store lacks; httpapi documents it as stable.
const msgUnsupported = "not supported by this server"

// Unwrap returns the sentinel of e.Code (see APIError), or nil.
func (e *APIError) Unwrap() error {
	switch e.Code {
	case 1:
		if e.Message == msgUnsupported {
			return wire.ErrUnsupported
		}
		return nil
	case 1001:
		return wire.ErrConflict
	case 2, 100, 101, 102, 103, 201, 202:
		// The API's low codes are the socket protocol's ErrorCode values.
		return wire.SentinelOf(imv1.ErrorCode(e.Code))
	}
	return nil
}

// Codes of the API that are answers, not errors: success, and a join
// request stored for an admin to approve.
const (
	codeOK          = 0
	codeJoinPending = 1201
)

// envelope is the shape of every answer.
type envelope struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// apiCall is one request: method and path (below the base URL), the query,
// the body to send as JSON (nil sends none), whether it sends the token,
// and where to decode data (nil ignores it).
type apiCall struct {
	method string
	path   string
	query  url.Values
	body   any
	anon   bool // sends no token (register, login)
	out    any
	// accept lists non-zero codes that are answers, not errors; do
	// returns the code it got.
	accept []int
}

// do makes the call and returns the envelope's code: 0, or one of
// c.accept. Any other code is an *APIError.
func (a *API) do(ctx context.Context, c apiCall) (int, error) {
	var body io.Reader
	if c.body != nil {
		b, err := json.Marshal(c.body)
		if err != nil {
			return 0, fmt.Errorf("client: encoding the request of %s: %w", c.path, err)
		}
		if int64(len(b)) > a.opts.MaxRequestBytes {
			return 0, fmt.Errorf("client: request body of %s is %d bytes, over the limit of %d: %w", c.path, len(b), a.opts.MaxRequestBytes, wire.ErrInvalidArgument)
		}
		body = bytes.NewReader(b)
	}
	u := *a.base
	u.Path += c.path
	if len(c.query) > 0 {
		u.RawQuery = c.query.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, a.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, c.method, u.String(), body)
	if err != nil {
		return 0, fmt.Errorf("client: %s %s: %w", c.method, c.path, err)
	}
	req.Header.Set("Accept", "application/json")
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if !c.anon {
		if tok := a.Token(); tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	rsp, err := a.opts.HTTPClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("client: %s %s: %w", c.method, c.path, err)
	}
	defer rsp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(rsp.Body, a.opts.MaxResponseBytes+1))
	if err != nil {
		return 0, fmt.Errorf("client: %s %s: reading the answer: %w", c.method, c.path, err)
	}
	if int64(len(raw)) > a.opts.MaxResponseBytes {
		return 0, fmt.Errorf("client: %s %s: the answer is over %d bytes (APIOptions.MaxResponseBytes)", c.method, c.path, a.opts.MaxResponseBytes)
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		// Not the API: a proxy's error page, a wrong base URL.
		return 0, fmt.Errorf("client: %s %s: HTTP %d, and the answer is not the API's JSON envelope: %w", c.method, c.path, rsp.StatusCode, err)
	}
	if env.Code != codeOK && !slices.Contains(c.accept, env.Code) {
		e := &APIError{HTTPStatus: rsp.StatusCode, Code: env.Code, Message: env.Message}
		if secs, err := strconv.Atoi(rsp.Header.Get("Retry-After")); err == nil && secs > 0 {
			e.RetryAfter = time.Duration(secs) * time.Second
		}
		return env.Code, e
	}
	if c.out != nil {
		if len(env.Data) == 0 || string(env.Data) == "null" {
			return env.Code, fmt.Errorf("client: %s %s: the answer has no data", c.method, c.path)
		}
		if err := json.Unmarshal(env.Data, c.out); err != nil {
			return env.Code, fmt.Errorf("client: %s %s: decoding the answer: %w", c.method, c.path, err)
		}
	}
	return env.Code, nil
}

// pathID escapes id for a path segment; an empty id is refused, since the
// path would then name another route.
func pathID(name, id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("client: %s is required: %w", name, wire.ErrInvalidArgument)
	}
	return url.PathEscape(id), nil
}

// each returns f of every element of js, in order: an answer's JSON
// records as the API's types.
func each[J, T any](js []J, f func(J) T) []T {
	out := make([]T, len(js))
	for i, j := range js {
		out[i] = f(j)
	}
	return out
}

// fromMillis is a time from Unix milliseconds; 0 is the zero time.
func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// millis is t in Unix milliseconds; the zero time is 0.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
