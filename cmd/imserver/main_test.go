package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/store/sqlstore/sqltest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the server on loopback ports until stop is called or the test
// ends.
func start(t *testing.T, dir string, logs *syncBuffer, extra ...string) (l listeners, stop func()) {
	t.Helper()
	args := append([]string{"-data", dir, "-http", "127.0.0.1:0", "-ws", "127.0.0.1:0", "-tcp", "127.0.0.1:0", "-log-level", "debug"}, extra...)
	cfg, err := parseConfig(args, func(string) string { return "" }, logs)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan listeners, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, logs, func(l listeners) { ready <- l }) }()
	select {
	case l = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return l, stop
}

type envelope struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

func post(t *testing.T, url string, body any) envelope {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	rsp, err := http.Post(url, "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	defer rsp.Body.Close()
	require.Equal(t, http.StatusOK, rsp.StatusCode)
	var e envelope
	require.NoError(t, json.NewDecoder(rsp.Body).Decode(&e))
	return e
}

func TestZeroConfigServer(t *testing.T) {
	dir := t.TempDir()
	logs := new(syncBuffer)
	var token, userID, bobID string
	func() {
		l, stop := start(t, dir, logs, "-debug-addr", "127.0.0.1:0")
		defer stop()
		base := "http://" + l.HTTP.String()

		// The generated secret is kept, private, and announced.
		fi, err := os.Stat(filepath.Join(dir, "jwt.secret"))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
		require.Contains(t, logs.String(), "no JWT secret configured")

		for _, u := range []string{"alice", "bobby"} {
			e := post(t, base+"/api/auth/register", map[string]string{"username": u, "password": "secret-" + u, "nickname": u})
			require.Zero(t, e.Code, e.Message)
		}
		e := post(t, base+"/api/auth/login", map[string]string{"username": "alice", "password": "secret-alice", "platform": "iOS"})
		require.Zero(t, e.Code, e.Message)
		var login struct{ Token, UserID string }
		require.NoError(t, json.Unmarshal(e.Data, &login))
		token, userID = login.Token, login.UserID
		e = post(t, base+"/api/auth/login", map[string]string{"username": "bobby", "password": "secret-bobby"})
		require.NoError(t, json.Unmarshal(e.Data, &login))
		bobID = login.UserID

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a, err := client.Dial(ctx, client.Options{Addr: l.TCP.String(), UserID: userID, Token: token})
		require.NoError(t, err)
		defer a.Close()
		b, err := client.Dial(ctx, client.Options{Transport: client.TransportWebSocket, Addr: "ws://" + l.WS.String() + "/ws", UserID: bobID, Token: login.Token})
		require.NoError(t, err)
		defer b.Close()
		_, err = a.Send(ctx, client.Outgoing{ReceiverID: bobID, Type: im.TextMessage, Content: []byte("top secret words")})
		require.NoError(t, err)
		p := <-b.Pushes()
		require.Equal(t, "top secret words", string(p.Message.(*imv1.PushMessage).Message.Content))
		// Recipients must exist.
		_, err = a.Send(ctx, client.Outgoing{ReceiverID: "nobody", Type: im.TextMessage, Content: []byte("x")})
		require.ErrorIs(t, err, im.ErrNotFound)

		rsp, err := http.Get(base + "/health")
		require.NoError(t, err)
		rsp.Body.Close()
		require.Equal(t, http.StatusOK, rsp.StatusCode)

		// The metrics are on the private listener, not the API's.
		rsp, err = http.Get(base + "/metrics")
		require.NoError(t, err)
		rsp.Body.Close()
		require.Equal(t, http.StatusNotFound, rsp.StatusCode)
		rsp, err = http.Get("http://" + l.Debug.String() + "/metrics")
		require.NoError(t, err)
		metrics, err := io.ReadAll(rsp.Body)
		rsp.Body.Close()
		require.NoError(t, err)
		require.Contains(t, string(metrics), "imserver_messages_stored_total 1\n")
		require.Contains(t, string(metrics), "imserver_sessions 2\n")

		// The group routes are served, with the login token as bearer
		// token, and members must be registered users.
		group := func(body string) envelope {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/group/create", strings.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+login.Token)
			rsp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer rsp.Body.Close()
			require.Equal(t, http.StatusOK, rsp.StatusCode)
			var e envelope
			require.NoError(t, json.NewDecoder(rsp.Body).Decode(&e))
			return e
		}
		e = group(`{"groupName":"solo"}`)
		require.Zero(t, e.Code, e.Message)
		var g struct{ GroupID, OwnerUserID string }
		require.NoError(t, json.Unmarshal(e.Data, &g))
		require.NotEmpty(t, g.GroupID)
		require.Equal(t, bobID, g.OwnerUserID)
		e = group(`{"groupName":"ghosts","memberUserIDs":["nobody"]}`)
		require.Equal(t, 103, e.Code, e.Message)
	}()

	// Second start on the same dir: same secret, so the old token works,
	// and history is there.
	l, _ := start(t, dir, logs)
	require.Contains(t, logs.String(), "using the JWT secret kept in the data dir")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := client.Dial(ctx, client.Options{Transport: client.TransportWebSocket, Addr: "ws://" + l.WS.String() + "/ws", UserID: userID, Token: token})
	require.NoError(t, err)
	defer a.Close()
	got, err := a.SyncAll(ctx)
	require.NoError(t, err)
	require.Len(t, got, 1)

	out := logs.String()
	for _, secret := range []string{token, "secret-alice", "top secret words"} {
		require.NotContains(t, out, secret, "logs must not contain tokens, passwords or message bodies")
	}
}

func TestConfig(t *testing.T) {
	env := map[string]string{"IM_TCP_ADDR": ":9999", "IM_HTTP_ADDR": ":7777", "IM_DEVICE_POLICY": "one"}
	getenv := func(k string) string { return env[k] }
	c, err := parseConfig([]string{"-http", ":1234"}, getenv, new(bytes.Buffer))
	require.NoError(t, err)
	require.Equal(t, ":9999", c.TCPAddr, "environment applies")
	require.Equal(t, ":1234", c.HTTPAddr, "a flag beats the environment")
	require.Equal(t, ":8081", c.WSAddr, "default")
	p, err := c.policy()
	require.NoError(t, err)
	require.Equal(t, im.OneSession, p)

	var help bytes.Buffer
	_, err = parseConfig([]string{"-h"}, getenv, &help)
	require.ErrorIs(t, err, errHelp)
	for _, s := range settings(&config{}) {
		require.Contains(t, help.String(), "-"+s.name)
		require.Contains(t, help.String(), s.env)
	}

	for _, bad := range [][]string{
		{"-device-policy", "some"},
		{"-log-level", "loud"},
		{"-log-format", "xml"},
		{"-jwt-secret", "short"},
		{"-bcrypt-cost", "4"},
		{"-login-client-rate", "0"},
		{"-login-subnet-rate", "-1"},
		{"-recall-window", "0s"},
		{"-recall-window", "soon"},
		{"-friend-request-rate", "0"},
		{"-friend-request-rate", "NaN"},
		{"-friends-only", "maybe"},
		{"-store", "oracle"},
		{"-store", "postgres"},
		{"-dsn", "file.db"},
		{"-tls-cert", "x.pem"},
		{"-http", "", "-ws", "", "-tcp", ""},
		{"stray"},
	} {
		_, err := parseConfig(bad, func(string) string { return "" }, new(bytes.Buffer))
		require.Error(t, err, strings.Join(bad, " "))
	}
	_, err = parseConfig(nil, func(k string) string {
		if k == "IM_MAX_CONTENT" {
			return "lots"
		}
		return ""
	}, new(bytes.Buffer))
	require.ErrorContains(t, err, "IM_MAX_CONTENT")

	// The recall window: 2 minutes unless told, negative for no limit.
	require.Equal(t, im.DefaultRecallWindow, c.RecallWindow)
	c, err = parseConfig([]string{"-recall-window", "-1s"}, func(string) string { return "" }, new(bytes.Buffer))
	require.NoError(t, err)
	require.Negative(t, c.RecallWindow)
	c, err = parseConfig(nil, func(k string) string {
		if k == "IM_RECALL_WINDOW" {
			return "30s"
		}
		return ""
	}, new(bytes.Buffer))
	require.NoError(t, err)
	require.Equal(t, 30*time.Second, c.RecallWindow)
	_, err = parseConfig([]string{"-recall-window", "0"}, func(string) string { return "" }, new(bytes.Buffer))
	require.ErrorContains(t, err, "-recall-window")
}

func TestDebugEndpoint(t *testing.T) {
	logs := new(syncBuffer)
	l, _ := start(t, t.TempDir(), logs, "-debug-addr", "127.0.0.1:0")
	require.Contains(t, logs.String(), "profiling and metrics endpoint enabled")
	rsp, err := http.Get("http://" + l.Debug.String() + "/debug/pprof/goroutine?debug=1")
	require.NoError(t, err)
	defer rsp.Body.Close()
	require.Equal(t, http.StatusOK, rsp.StatusCode)
}

// getStatus answers the status of a GET of url with the Authorization
// header authz, if not empty, and the Origin header origin, if not empty.
func getStatus(t *testing.T, url, authz, origin string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	require.NoError(t, err)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	rsp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer rsp.Body.Close()
	b, err := io.ReadAll(rsp.Body)
	require.NoError(t, err)
	return rsp.StatusCode, rsp.Header, string(b)
}

func TestMetricsTokenAndCORS(t *testing.T) {
	const token = "scrape-7f3a9c2e1b4d"
	l, _ := start(t, t.TempDir(), new(syncBuffer), "-metrics-token", token, "-cors-origins", "https://app.example.com, http://localhost:3000")
	base := "http://" + l.HTTP.String()
	status, _, body := getStatus(t, base+"/metrics", "Bearer "+token, "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "imserver_sessions 0\n")
	status, _, body = getStatus(t, base+"/metrics", "", "")
	require.Equal(t, http.StatusUnauthorized, status)
	require.NotContains(t, body, "imserver_")

	_, h, _ := getStatus(t, base+"/health", "", "http://localhost:3000")
	require.Equal(t, "http://localhost:3000", h.Get("Access-Control-Allow-Origin"))
	_, h, _ = getStatus(t, base+"/health", "", "https://evil.example")
	require.Empty(t, h.Get("Access-Control-Allow-Origin"))
}

// -admin-token serves the admin API to that token only, and never logs it,
// and the dashboard at /admin; without it neither is there.
func TestAdminToken(t *testing.T) {
	const token = "admin-5c1e9a7f3b2d4e6f8a0b1c2d3e4f5a6b"
	logs := new(syncBuffer)
	l, _ := start(t, t.TempDir(), logs, "-admin-token", token)
	base := "http://" + l.HTTP.String()
	status, _, body := getStatus(t, base+"/admin/api/stats", "Bearer "+token, "")
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"Sessions":0`)
	status, _, _ = getStatus(t, base+"/admin/api/stats", "Bearer "+token[1:], "")
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, logs.String(), "admin: read stats")
	require.NotContains(t, logs.String(), token[1:])
	status, h, body := getStatus(t, base+"/admin", "", "")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "text/html; charset=utf-8", h.Get("Content-Type"))
	require.Contains(t, h.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	require.Contains(t, body, "/admin/app.js")
	status, _, body = getStatus(t, base+"/admin/api/history", "Bearer "+token, "")
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"interval":2000`)

	l, _ = start(t, t.TempDir(), new(syncBuffer))
	status, _, _ = getStatus(t, "http://"+l.HTTP.String()+"/admin/api/stats", "Bearer "+token, "")
	require.Equal(t, http.StatusNotFound, status)
	status, _, _ = getStatus(t, "http://"+l.HTTP.String()+"/admin", "", "")
	require.Equal(t, http.StatusNotFound, status)
}

func TestCORSOffByDefault(t *testing.T) {
	l, _ := start(t, t.TempDir(), new(syncBuffer))
	_, h, _ := getStatus(t, "http://"+l.HTTP.String()+"/health", "", "https://app.example.com")
	require.Empty(t, h.Get("Access-Control-Allow-Origin"))
}

func TestBadHTTPSecuritySettings(t *testing.T) {
	for _, args := range [][]string{
		{"-cors-origins", "app.example.com"},
		{"-cors-origins", "https://app.example.com/path"},
		{"-cors-origins", "ftp://app.example.com"},
		{"-cors-origins", "*"},
		{"-metrics-token", "short"},
	} {
		_, err := parseConfig(args, func(string) string { return "" }, new(bytes.Buffer))
		require.ErrorContains(t, err, args[0], "%v", args)
	}
	c, err := parseConfig(nil, func(k string) string {
		return map[string]string{"IM_CORS_ORIGINS": "https://a.example, https://b.example:8443"}[k]
	}, new(bytes.Buffer))
	require.NoError(t, err)
	require.Equal(t, []string{"https://a.example", "https://b.example:8443"}, c.corsOrigins())
}

func TestRecipientCheckCanBeTurnedOff(t *testing.T) {
	logs := new(syncBuffer)
	l, _ := start(t, t.TempDir(), logs, "-check-recipients=false", "-bcrypt-cost", "10")
	base := "http://" + l.HTTP.String()
	require.Zero(t, post(t, base+"/api/auth/register", map[string]string{"username": "carol", "password": "carol-password"}).Code)
	e := post(t, base+"/api/auth/login", map[string]string{"username": "carol", "password": "carol-password"})
	var login struct{ Token, UserID string }
	require.NoError(t, json.Unmarshal(e.Data, &login))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{Addr: l.TCP.String(), UserID: login.UserID, Token: login.Token})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Send(ctx, client.Outgoing{ReceiverID: "someone-elsewhere", Type: im.TextMessage, Content: []byte("x")})
	require.NoError(t, err)
}

func TestSQLStores(t *testing.T) {
	for _, tc := range []struct {
		store string
		dsn   func(testing.TB) string
	}{
		{"sqlite", func(testing.TB) string { return "" }}, // the default file in -data
		{"postgres", sqltest.Postgres},
		{"mysql", sqltest.MySQL},
	} {
		t.Run(tc.store, func(t *testing.T) {
			args := []string{"-store", tc.store, "-bcrypt-cost", "10"}
			if dsn := tc.dsn(t); dsn != "" {
				args = append(args, "-dsn", dsn)
			}
			dir, logs := t.TempDir(), new(syncBuffer)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var tokens, ids [2]string
			func() {
				l, stop := start(t, dir, logs, args...)
				defer stop()
				base := "http://" + l.HTTP.String()
				for i, u := range []string{"alice", "bobby"} {
					require.Zero(t, post(t, base+"/api/auth/register", map[string]string{"username": u, "password": "secret-" + u}).Code)
					var login struct{ Token, UserID string }
					require.NoError(t, json.Unmarshal(post(t, base+"/api/auth/login", map[string]string{"username": u, "password": "secret-" + u}).Data, &login))
					tokens[i], ids[i] = login.Token, login.UserID
				}
				a, err := client.Dial(ctx, client.Options{Addr: l.TCP.String(), UserID: ids[0], Token: tokens[0]})
				require.NoError(t, err)
				defer a.Close()
				for i := 1; i <= 3; i++ {
					rsp, err := a.Send(ctx, client.Outgoing{ReceiverID: ids[1], Type: im.TextMessage, Content: []byte("hi")})
					require.NoError(t, err)
					require.Equal(t, int64(i), rsp.Seq)
				}
			}()
			require.Contains(t, logs.String(), "store="+tc.store)

			l, _ := start(t, dir, logs, args...)
			b, err := client.Dial(ctx, client.Options{Transport: client.TransportWebSocket, Addr: "ws://" + l.WS.String() + "/ws", UserID: ids[1], Token: tokens[1]})
			require.NoError(t, err)
			defer b.Close()
			got, err := b.SyncAll(ctx)
			require.NoError(t, err)
			require.Len(t, got, 3, "history survives a restart")
		})
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "imserver test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return certFile, keyFile, pool
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	logs := new(syncBuffer)
	secret := "tls-test-secret-k7Qm2vX9pL4sT8wZ1nB6"
	l, _ := start(t, filepath.Join(dir, "data"), logs, "-tls-cert", certFile, "-tls-key", keyFile, "-jwt-secret", secret, "-check-recipients=false")
	tokens, err := auth.NewJWT(auth.JWTConfig{Secret: []byte(secret)})
	require.NoError(t, err)
	tok, _, err := tokens.Issue("alice")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// TCP (the SDK's tcps://).
	c, err := client.Dial(ctx, client.Options{Addr: l.TCP.String(), UserID: "alice", Token: tok, TLSConfig: &tls.Config{RootCAs: pool}})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Send(ctx, client.Outgoing{ReceiverID: "bob", Type: im.TextMessage, Content: []byte("over TLS")})
	require.NoError(t, err)

	// WebSocket (wss://): a TLS handshake, then the upgrade.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	rsp, err := hc.Get("https://" + l.WS.String() + "/ws?token=" + tok)
	require.NoError(t, err)
	rsp.Body.Close()
	require.Equal(t, http.StatusUpgradeRequired, rsp.StatusCode, "TLS works; a plain GET is asked to upgrade")

	// A plaintext client gets nowhere.
	_, err = client.Dial(ctx, client.Options{Addr: l.TCP.String(), UserID: "alice", Token: tok, RequestTimeout: time.Second})
	require.Error(t, err)
}

// TestLoginClientRate checks that -login-client-rate sets how many
// registrations one address may make a minute, and that the default
// refuses the 31st, as a host registering many users (imbench) would meet.
func TestLoginClientRate(t *testing.T) {
	// All at once, so that the count does not depend on how fast the
	// machine hashes passwords: sent one after the other, registrations
	// slower than the rate's refill (2 s each at 30 a minute, as on a
	// loaded machine under -race) would all be let through.
	register := func(base string, n int) (refused int) {
		codes := make(chan int, n)
		for i := range n {
			go func() {
				u := fmt.Sprintf("rate%d", i)
				b, _ := json.Marshal(map[string]string{"username": u, "password": "secret-" + u})
				rsp, err := http.Post(base+"/api/auth/register", "application/json", bytes.NewReader(b))
				if err != nil {
					t.Error(err)
					codes <- -1
					return
				}
				defer rsp.Body.Close()
				var e envelope
				if err := json.NewDecoder(rsp.Body).Decode(&e); err != nil {
					t.Errorf("HTTP %d: %v", rsp.StatusCode, err)
					codes <- -1
					return
				}
				codes <- e.Code
			}()
		}
		for range n {
			if <-codes != 0 {
				refused++
			}
		}
		return refused
	}
	// Generous write timeouts: each registration hashes a password, and
	// many at once under -race on 2 cores take their time.
	l, stop := start(t, t.TempDir(), new(syncBuffer), "-bcrypt-cost", "10", "-login-client-rate", "3", "-http-write-timeout", "10m")
	require.Equal(t, 2, register("http://"+l.HTTP.String(), 5), "a rate of 3 refuses 2 of 5")
	stop()
	l, stop = start(t, t.TempDir(), new(syncBuffer), "-bcrypt-cost", "10", "-http-write-timeout", "10m")
	defer stop()
	require.Equal(t, 5, register("http://"+l.HTTP.String(), 35), "the default allows 30 a minute")
}
