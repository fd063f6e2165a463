package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The packaging files cannot be built or run where there is no Docker
// daemon or systemd, so these tests check what would break them silently:
// a flag or IM_* variable the binary does not have (or no longer has), a
// value it refuses, or ports and paths that disagree between the files.

// readRoot reads a file of the repository's root.
func readRoot(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	require.NoError(t, err)
	return string(b)
}

// knownSettings maps each flag name to its environment variable.
func knownSettings() (flags, envs map[string]string) {
	flags, envs = map[string]string{}, map[string]string{}
	for _, s := range settings(&config{}) {
		flags[s.name] = s.env
		envs[s.env] = s.name
	}
	return flags, envs
}

// requireKnownFlags fails for each -flag in args that settings lacks.
func requireKnownFlags(t *testing.T, file string, args []string) {
	t.Helper()
	flags, _ := knownSettings()
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		_, ok := flags[name]
		require.Truef(t, ok, "%s passes %s, which imserver does not have (imserver -h lists the flags)", file, a)
	}
}

// defaultOf is the default value of a flag, as its help shows it.
func defaultOf(t *testing.T, name string) string {
	t.Helper()
	fs := flag.NewFlagSet("imserver", flag.ContinueOnError)
	for _, s := range settings(&config{}) {
		s.bind(fs, s.name, s.usage)
	}
	f := fs.Lookup(name)
	require.NotNil(t, f, name)
	return f.DefValue
}

// dockerEntrypoint returns the arguments the Dockerfile's ENTRYPOINT and
// CMD give the binary, and the image's ENV variables.
func dockerEntrypoint(t *testing.T, dockerfile string) (args []string, env map[string]string) {
	t.Helper()
	env = map[string]string{}
	var entry, cmd []string
	for _, line := range strings.Split(dockerfile, "\n") {
		line = strings.TrimSpace(line)
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			// A later stage starts afresh.
			entry, cmd, env = nil, nil, map[string]string{}
		case "ENTRYPOINT", "CMD":
			var v []string
			require.NoErrorf(t, json.Unmarshal([]byte(rest), &v), "Dockerfile: %s must be in the exec (JSON) form: %s", instr, line)
			if strings.EqualFold(instr, "ENTRYPOINT") {
				entry = v
			} else {
				cmd = v
			}
		case "ENV":
			k, v, ok := strings.Cut(rest, "=")
			require.Truef(t, ok, "Dockerfile: ENV must be in the KEY=value form: %s", line)
			env[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	require.NotEmpty(t, entry, "Dockerfile has no ENTRYPOINT in its final stage")
	require.Equal(t, "/imserver", entry[0], "Dockerfile: ENTRYPOINT must run /imserver")
	return append(entry[1:], cmd...), env
}

// TestDockerfile checks the image's flags and variables against the
// binary, and the builder's Go against go.mod.
func TestDockerfile(t *testing.T) {
	df := readRoot(t, "Dockerfile")
	args, env := dockerEntrypoint(t, df)
	requireKnownFlags(t, "Dockerfile", args)
	_, envs := knownSettings()
	for k := range env {
		if strings.HasPrefix(k, "IM_") {
			_, ok := envs[k]
			require.Truef(t, ok, "Dockerfile sets %s, which imserver does not read", k)
		}
	}
	c, err := parseConfig(args, func(k string) string { return env[k] }, io.Discard)
	require.NoError(t, err, "the Dockerfile's ENTRYPOINT and ENV")
	require.Equal(t, "/data", c.DataDir, "the Dockerfile's -data must be its VOLUME")
	require.Regexp(t, `(?m)^VOLUME /data$`, df)

	// Listening on every interface, on the ports EXPOSE names.
	for _, addr := range []string{c.HTTPAddr, c.WSAddr, c.TCPAddr} {
		require.Truef(t, strings.HasPrefix(addr, ":") || strings.HasPrefix(addr, "0.0.0.0:"),
			"in a container the server must listen on every interface, not %q", addr)
		require.Regexpf(t, `(?m)^EXPOSE .*\b`+strings.TrimPrefix(addr, "0.0.0.0")[1:]+`\b`, df, "Dockerfile does not EXPOSE %s", addr)
	}

	// The builder's Go is the release go.mod names.
	gomod := readRoot(t, "go.mod")
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(gomod)
	require.NotNil(t, goLine, "go.mod has no go line")
	require.Regexp(t, `(?m)^FROM golang:`+regexp.QuoteMeta(goLine[1])+`\b.* AS build`, df, "the builder must be Go "+goLine[1]+", go.mod's go line")
	require.Regexp(t, `CGO_ENABLED=0 go build .*\./cmd/imserver`, df, "the binary must be static")
	require.Regexp(t, `(?m)^USER [1-9]`, df, "the image must run as a non-root user")
}

// composeEnv scans compose.yaml for the imserver service's IM_*
// variables, in the map form (IM_X: value) or the list form
// (- IM_X=value); no YAML library needed for a file this plain.
func composeEnv(t *testing.T, compose string) map[string]string {
	t.Helper()
	env := map[string]string{}
	re := regexp.MustCompile(`^\s*(?:-\s*)?(IM_[A-Z0-9_]+)\s*[:=]\s*(.*)$`)
	for _, line := range strings.Split(compose, "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v := strings.TrimSpace(m[2])
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env[m[1]] = v
	}
	return env
}

// TestCompose checks compose.yaml's IM_* variables against the binary,
// with the Dockerfile's ENTRYPOINT the service runs, and its volume and
// ports against the image.
func TestCompose(t *testing.T) {
	compose := readRoot(t, "compose.yaml")
	env := composeEnv(t, compose)
	require.Contains(t, env, "IM_STORE")
	require.Contains(t, env, "IM_DSN")
	require.Contains(t, env, "IM_JWT_SECRET", "compose.yaml must pass the JWT secret, for tokens to outlive the data volume")
	_, envs := knownSettings()
	for k := range env {
		_, ok := envs[k]
		require.Truef(t, ok, "compose.yaml sets %s, which imserver does not read (imserver -h lists the variables)", k)
	}

	// ${VAR…} is filled in by compose from the environment or .env: here
	// with a secret the server accepts.
	secret := make([]byte, 32)
	_, err := rand.Read(secret)
	require.NoError(t, err)
	subst := regexp.MustCompile(`\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}`)
	for k, v := range env {
		env[k] = subst.ReplaceAllString(v, hex.EncodeToString(secret))
	}
	args, _ := dockerEntrypoint(t, readRoot(t, "Dockerfile"))
	c, err := parseConfig(args, func(k string) string { return env[k] }, io.Discard)
	require.NoError(t, err, "compose.yaml's IM_* values with the Dockerfile's ENTRYPOINT")
	require.Equal(t, "postgres", c.Store)
	require.Contains(t, c.DSN, "@postgres:5432/", "the DSN must name the postgres service")

	require.Regexp(t, `(?m)^\s*-\s*[\w-]+:/data\s*$`, compose, "compose.yaml must mount a volume on /data, the image's -data")
	require.Regexp(t, `(?m)^\s*condition:\s*service_healthy\s*$`, compose)
	require.Regexp(t, `(?m)^\s*image:\s*postgres:16\s*$`, compose)
	for _, name := range []string{"http", "ws", "tcp"} {
		port := strings.TrimPrefix(defaultOf(t, name), ":")
		require.Regexpf(t, `(?m)^\s*-\s*"?(?:[\d.]+:)?\d+:`+port+`"?\s*$`, compose, "compose.yaml does not publish the -%s port %s", name, port)
	}
}

// TestSystemdUnit checks the example unit's ExecStart flags against the
// binary, and that -data is the unit's writable state directory.
func TestSystemdUnit(t *testing.T) {
	unit := readRoot(t, filepath.Join("docs", "deploy", "imserver.service"))
	keys := map[string]string{}
	for _, line := range strings.Split(unit, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = v
		}
	}
	exec := strings.Fields(keys["ExecStart"])
	require.NotEmpty(t, exec, "imserver.service has no ExecStart")
	require.Equal(t, "/usr/local/bin/imserver", exec[0])
	requireKnownFlags(t, "imserver.service", exec[1:])
	c, err := parseConfig(exec[1:], func(string) string { return "" }, io.Discard)
	require.NoError(t, err, "imserver.service's ExecStart")
	require.Equal(t, "/var/lib/"+keys["StateDirectory"], c.DataDir, "-data must be the StateDirectory")
	require.Contains(t, strings.Fields(keys["ReadWritePaths"]), c.DataDir, "ProtectSystem=strict leaves -data writable only through ReadWritePaths")
	for k, v := range map[string]string{"User": "imserver", "NoNewPrivileges": "true", "ProtectSystem": "strict", "Restart": "on-failure", "LimitNOFILE": "65536"} {
		require.Equalf(t, v, keys[k], "imserver.service: %s", k)
	}
}

// TestMakefile checks that the Makefile has its targets, that each go
// command in it is one the README gives, and that the flags of go run
// ./cmd/imserver exist and parse.
func TestMakefile(t *testing.T) {
	mk := readRoot(t, "Makefile")
	readme := readRoot(t, "README.md")
	targets := map[string][]string{}
	var target string
	for _, line := range strings.Split(mk, "\n") {
		switch {
		case strings.HasPrefix(line, "\t"):
			require.NotEmptyf(t, target, "Makefile: a recipe line outside a target: %s", line)
			targets[target] = append(targets[target], strings.TrimSpace(line))
		case regexp.MustCompile(`^[a-z-]+:`).MatchString(line):
			target, _, _ = strings.Cut(line, ":")
		}
	}
	for _, want := range []string{"build", "run", "test", "proto", "docker-build", "docker-run"} {
		require.Containsf(t, targets, want, "Makefile has no %s target", want)
	}
	require.Equal(t, []string{"go test ./..."}, targets["test"], "make test must be the README's test command")
	require.Equal(t, []string{"go generate ./im/imv1"}, targets["proto"])
	for _, name := range []string{"docker-build", "docker-run"} {
		for _, cmd := range targets[name] {
			require.Truef(t, strings.HasPrefix(cmd, "docker "), "make %s runs %q, not docker", name, cmd)
		}
	}
	var gocmds int
	for name, cmds := range targets {
		for _, cmd := range cmds {
			if !strings.HasPrefix(cmd, "go ") {
				continue
			}
			gocmds++
			// Make variables are the caller's arguments.
			plain := strings.TrimSpace(regexp.MustCompile(`\$\([A-Z_]+\)`).ReplaceAllString(cmd, ""))
			// A line of a code block (its comment aside) or inline code.
			inREADME := strings.Contains(readme, "`"+plain+"`") ||
				slices.ContainsFunc(strings.Split(readme, "\n"), func(l string) bool {
					return strings.TrimSpace(strings.SplitN(l, "#", 2)[0]) == plain
				})
			require.Truef(t, inREADME, "make %s runs %q, a command the README does not give", name, plain)
			if rest, ok := strings.CutPrefix(plain, "go run ./cmd/imserver"); ok {
				args := strings.Fields(rest)
				requireKnownFlags(t, "Makefile", args)
				_, err := parseConfig(args, func(string) string { return "" }, io.Discard)
				require.NoErrorf(t, err, "make %s", name)
			}
		}
	}
	require.Positive(t, gocmds)
}
