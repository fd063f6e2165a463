package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEveryFlagValidated gives every flag a value it cannot take, on the
// command line and for some through the environment, and checks that the
// server refuses to start with a message naming the flag (or variable),
// the value and what the value may be.
func TestEveryFlagValidated(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o600))
	envFlag := map[string]string{}
	for _, s := range settings(&config{}) {
		envFlag[s.env] = s.name
	}
	tested := map[string]bool{}
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want []string // all in the message
	}{
		{args: []string{"-store", "oracle"}, want: []string{"-store", `"oracle"`, "bolt, sqlite, postgres or mysql"}},
		{args: []string{"-store", "postgres"}, want: []string{"-store postgres needs -dsn"}},
		{args: []string{"-dsn", "file.db"}, want: []string{"-dsn is for the SQL stores"}},
		{args: []string{"-store", "mysql", "-dsn", "postgres://u:pw@127.0.0.1:5432/db"}, want: []string{"-dsn is a PostgreSQL URL", "-store mysql takes a DSN such as user:password@tcp(127.0.0.1:3306)", "-store postgres"}},
		{args: []string{"-store", "postgres", "-dsn", "root:pw@tcp(127.0.0.1:3306)/db"}, want: []string{"-dsn is a MySQL DSN", "-store postgres takes a URL such as postgres://", "-store mysql"}},
		{args: []string{"-store", "mysql", "-dsn", "no slash"}, want: []string{"-dsn is not a MySQL DSN", "user:password@tcp("}},
		{env: map[string]string{"IM_STORE": "mysql", "IM_DSN": "postgresql://db.example.com/im"}, want: []string{"-dsn is a PostgreSQL URL"}},
		{args: []string{"-data", ""}, want: []string{"-data is empty", "directory"}},
		{args: []string{"-data", file}, want: []string{"-data is " + `"` + file, "must be a directory"}},
		{args: []string{"-files-dir", file}, want: []string{"-files-dir is " + `"` + file, "must be a directory"}},
		{args: []string{"-http", "8080"}, want: []string{"-http", `"8080"`, "such as :8080 or 127.0.0.1:8080"}},
		{args: []string{"-ws", "127.0.0.1:99999"}, want: []string{"-ws", `"127.0.0.1:99999"`, "listen address"}},
		{args: []string{"-tcp", "localhost"}, want: []string{"-tcp", `"localhost"`, "listen address"}},
		{args: []string{"-debug-addr", "x:y:z"}, want: []string{"-debug-addr", `"x:y:z"`, "listen address"}},
		{args: []string{"-http", "", "-ws", "", "-tcp", ""}, want: []string{"every listener is disabled", "-http", "-ws", "-tcp"}},
		{args: []string{"-jwt-secret", "short"}, want: []string{"-jwt-secret", "32"}},
		{args: []string{"-jwt-issuer", ""}, want: []string{"-jwt-issuer is empty"}},
		{args: []string{"-jwt-audience", ""}, want: []string{"-jwt-audience is empty"}},
		{args: []string{"-token-lifetime", "-1h"}, want: []string{"-token-lifetime is -1h0m0s", "must be positive"}},
		{args: []string{"-token-lifetime", "30d"}, want: []string{`-token-lifetime "30d"`, "a duration such as 15s, 2m or 24h"}},
		{args: []string{"-log-level", "loud"}, want: []string{"-log-level", `"loud"`, "debug, info, warn or error"}},
		{args: []string{"-log-format", "xml"}, want: []string{"-log-format", `"xml"`, "text or json"}},
		{args: []string{"-max-content", "-1"}, want: []string{"-max-content is -1; it must be 1 to 524288 bytes"}},
		{args: []string{"-max-content", "600000"}, want: []string{"-max-content is 600000; it must be 1 to 524288 bytes"}},
		{args: []string{"-max-content", "64k"}, want: []string{`-max-content "64k": a whole number`}},
		{env: map[string]string{"IM_MAX_CONTENT": "lots"}, want: []string{`IM_MAX_CONTENT="lots" (-max-content): a whole number`}},
		{env: map[string]string{"IM_MAX_CONTENT": "0"}, want: []string{"-max-content is 0; it must be 1 to 524288 bytes"}},
		{args: []string{"-max-group-members", "0"}, want: []string{"-max-group-members is 0; it must be at least 1"}},
		{args: []string{"-device-policy", "some"}, want: []string{"-device-policy", `"some"`, "all, platform or one"}},
		{args: []string{"-max-sessions", "-3"}, want: []string{"-max-sessions is -3; it must be at least 1"}},
		{args: []string{"-send-rate", "0"}, want: []string{"-send-rate is 0", "positive, or negative for no limit"}},
		{args: []string{"-send-rate", "fast"}, want: []string{`-send-rate "fast": a number`}},
		{args: []string{"-group-adds-per-minute", "0"}, want: []string{"-group-adds-per-minute is 0", "positive, or negative for no limit"}},
		{args: []string{"-group-add-anyone=maybe"}, want: []string{`-group-add-anyone "maybe": true or false`}},
		{args: []string{"-recall-window", "0s"}, want: []string{"-recall-window is 0s", "positive, or negative for no limit"}},
		{args: []string{"-recall-window", "soon"}, want: []string{`-recall-window "soon": a duration`}},
		{args: []string{"-friends-only=maybe"}, want: []string{`-friends-only "maybe": true or false`}},
		{env: map[string]string{"IM_FRIENDS_ONLY": "maybe"}, want: []string{`IM_FRIENDS_ONLY="maybe" (-friends-only): true or false`}},
		{args: []string{"-friend-request-rate", "NaN"}, want: []string{"-friend-request-rate is NaN", "positive, or negative for no limit"}},
		{args: []string{"-upload-max", "0"}, want: []string{"-upload-max is 0; it must be at least 1 byte"}},
		{args: []string{"-upload-max", "1G"}, want: []string{`-upload-max "1G": a whole number`}},
		{args: []string{"-upload-ttl", "0s"}, want: []string{"-upload-ttl is 0s; it must be positive"}},
		{args: []string{"-files-url", "files.example.com"}, want: []string{"-files-url", `"files.example.com"`, "https://files.example.com"}},
		{args: []string{"-files-url-ttl", "-1m"}, want: []string{"-files-url-ttl is -1m0s", "positive, or 0"}},
		{args: []string{"-ws-origins", "[bad"}, want: []string{"-ws-origins", `"[bad"`, "*.example.com"}},
		{args: []string{"-cors-origins", "app.example.com"}, want: []string{"-cors-origins", `"app.example.com"`, "https://app.example.com"}},
		{args: []string{"-tls-cert", "x.pem"}, want: []string{"-tls-cert and -tls-key go together"}},
		{args: []string{"-tls-key", "x.key"}, want: []string{"-tls-cert and -tls-key go together"}},
		{args: []string{"-tls-cert", file, "-tls-key", file}, want: []string{"-tls-cert " + file, "-tls-key " + file, "PEM certificate"}},
		{args: []string{"-shutdown-grace", "5"}, want: []string{`-shutdown-grace "5": a duration such as 15s, 2m or 24h`}},
		{env: map[string]string{"IM_SHUTDOWN_GRACE": "5"}, want: []string{`IM_SHUTDOWN_GRACE="5" (-shutdown-grace): a duration such as 15s`}},
		{args: []string{"-shutdown-grace", "0s"}, want: []string{"-shutdown-grace is 0s; it must be positive"}},
		{args: []string{"-check-recipients=maybe"}, want: []string{`-check-recipients "maybe": true or false`}},
		{args: []string{"-bcrypt-cost", "4"}, want: []string{"-bcrypt-cost is 4; it must be 10 to 31"}},
		{args: []string{"-login-client-rate", "0"}, want: []string{"-login-client-rate is 0; it must be at least 1"}},
		{args: []string{"-login-subnet-rate", "-1"}, want: []string{"-login-subnet-rate is -1; it must be at least 1"}},
		{args: []string{"-metrics-token", "short"}, want: []string{"-metrics-token is 5 characters; it must be at least 16"}},
		{args: []string{"-admin-token", "short"}, want: []string{"-admin-token is 5 characters; it must be at least 32"}},
		{env: map[string]string{"IM_ADMIN_TOKEN": "0123456789abcdef0123456789abcde"}, want: []string{"-admin-token is 31 characters; it must be at least 32"}},
		{args: []string{"-admin-token", "0123456789abcdef0123456789abcdef", "-http", ""}, want: []string{"-admin-token is set but -http is empty"}},
		{args: []string{"-max-conns-per-ip", "0"}, want: []string{"-max-conns-per-ip is 0", "positive, or negative for no limit"}},
		{args: []string{"-http-read-timeout", "0s"}, want: []string{"-http-read-timeout is 0s; it must be positive"}},
		{args: []string{"-http-write-timeout", "-1s"}, want: []string{"-http-write-timeout is -1s; it must be positive"}},
		{args: []string{"-http-idle-timeout", "1 minute"}, want: []string{`-http-idle-timeout "1 minute": a duration`}},
		{env: map[string]string{"IM_HTTP_IDLE_TIMEOUT": "0s"}, want: []string{"-http-idle-timeout is 0s; it must be positive"}},
		{args: []string{"-log-notifications=maybe"}, want: []string{`-log-notifications "maybe": true or false`}},
		{args: []string{"-no-such-flag"}, want: []string{"-no-such-flag", "imserver -h lists the flags"}},
		{args: []string{"stray"}, want: []string{`unexpected argument "stray"`}},
	} {
		name := strings.Join(tt.args, " ")
		for k, v := range tt.env {
			name = k + "=" + v
			tested[envFlag[k]] = true
		}
		for _, a := range tt.args {
			if f, ok := strings.CutPrefix(a, "-"); ok {
				f, _, _ = strings.Cut(f, "=")
				tested[f] = true
			}
		}
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, &out)
			require.Error(t, err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
			require.NotContains(t, err.Error(), "Config.", "no Go field names")
			require.NotContains(t, err.Error(), "parse error", "the form expected, not strconv's words")
			require.Empty(t, out.String(), "an error prints no usage text")
		})
	}
	// Every flag has a bad value above; a new flag needs one too.
	for _, s := range settings(&config{}) {
		require.True(t, tested[s.name], "no bad value tested for -%s", s.name)
	}
}

// TestSettingsAtTheirLimitsStart starts the server with every bounded
// setting at the edge of its range: what validate accepts, the packages
// the settings go to accept too, so no error naming a Go field reaches
// the user.
func TestSettingsAtTheirLimitsStart(t *testing.T) {
	start(t, t.TempDir(), new(syncBuffer),
		"-max-content", "524288", "-max-group-members", "1", "-max-sessions", "1",
		"-send-rate", "-1", "-group-adds-per-minute", "-1", "-friend-request-rate", "-1",
		"-recall-window", "-1s", "-max-conns-per-ip", "-1", "-bcrypt-cost", "10",
		"-login-client-rate", "1", "-login-subnet-rate", "1", "-upload-max", "1",
		"-upload-ttl", "1ns", "-files-url-ttl", "0", "-token-lifetime", "1s",
		"-shutdown-grace", "1ns", "-friends-only", "-http-read-timeout", "1ns")
	start(t, t.TempDir(), new(syncBuffer), "-max-content", "1", "-send-rate", "0.001", "-friend-request-rate", "1e-9", "-bcrypt-cost", "31")
}
