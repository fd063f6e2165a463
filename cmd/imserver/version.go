package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
)

// errVersion is parseConfig's answer to -version: print versionLine and
// exit.
var errVersion = errors.New("-version asked")

// versionLine is what -version prints: "imserver " and buildVersion.
func versionLine(bi *debug.BuildInfo, ok bool) string {
	return "imserver " + buildVersion(bi, ok)
}

// buildVersion says which build this is, from the build info the go tool
// embeds: "v1.2.3 (commit 0123456789ab, built with go1.26.0)", with
// "modified" after the commit when the tree had uncommitted changes. ok
// false (a binary without build info) says so.
func buildVersion(bi *debug.BuildInfo, ok bool) string {
	if !ok || bi == nil {
		return "(no build information)"
	}
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	commit, modified := "unknown", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
			if len(commit) > 12 {
				commit = commit[:12]
			}
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified {
		commit += ", modified"
	}
	return fmt.Sprintf("%s (commit %s, built with %s)", version, commit, bi.GoVersion)
}

// secretSettings are the settings whose values are never logged: the
// start line says only that they are set. A DSN may hold a password.
var secretSettings = map[string]bool{"jwt-secret": true, "metrics-token": true, "admin-token": true, "dsn": true}

// startSettings are the settings the start line names on their own, left
// out of its list of changed settings.
var startSettings = map[string]bool{"store": true, "http": true, "ws": true, "tcp": true, "debug-addr": true}

// changedSettings returns the settings of c that differ from their
// defaults, as log attributes named after their flags, secrets as "set".
func changedSettings(c config) []any {
	// Binding the settings to x sets x to the defaults and keeps each
	// default's text; copying c into x then makes every flag's Value read
	// c's value.
	var x config
	fs := flag.NewFlagSet("imserver", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	list := settings(&x)
	for _, s := range list {
		s.bind(fs, s.name, s.usage)
	}
	x = c
	var attrs []any
	for _, s := range list {
		f := fs.Lookup(s.name)
		v := f.Value.String()
		if v == f.DefValue || startSettings[s.name] {
			continue
		}
		if secretSettings[s.name] {
			v = "set"
		}
		attrs = append(attrs, slog.String(s.name, v))
	}
	return attrs
}

// logStart logs the line that opens every run: the build, the store, the
// listen addresses asked for and the settings changed from their defaults.
func logStart(log *slog.Logger, c config) {
	bi, ok := debug.ReadBuildInfo()
	log.Info("imserver starting",
		"version", buildVersion(bi, ok),
		"store", c.Store,
		"http", orOff(c.HTTPAddr), "websocket", orOff(c.WSAddr), "tcp", orOff(c.TCPAddr), "debug", orOff(c.DebugAddr),
		slog.Group("settings", changedSettings(c)...))
}

func orOff(addr string) string {
	if addr == "" {
		return "off"
	}
	return addr
}
