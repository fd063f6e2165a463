package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

// TestREADMESettings checks that the README's settings table lists every
// flag with its environment variable and default, and nothing else, so the
// table cannot drift from the binary. The descriptions are the README's own.
func TestREADMESettings(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- settings -->", "<!-- /settings -->"
	text := string(readme)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no settings table between %q and %q", begin, end)
	}
	type row struct{ env, def string }
	documented := map[string]row{}
	for _, line := range strings.Split(text[i+len(begin):j], "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`-") {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`-")
		if _, dup := documented[name]; dup {
			t.Errorf("README.md lists -%s twice", name)
		}
		documented[name] = row{strings.Trim(strings.TrimSpace(cells[2]), "`"), strings.Trim(strings.TrimSpace(cells[3]), "`")}
	}

	var c config
	fs := flag.NewFlagSet("imserver", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var want strings.Builder
	for _, s := range settings(&c) {
		s.bind(fs, s.name, s.usage)
		def := fs.Lookup(s.name).DefValue
		if def == "" {
			def = "(empty)"
		}
		fmt.Fprintf(&want, "| `-%s` | `%s` | `%s` | %s |\n", s.name, s.env, def, s.usage)
		got, ok := documented[s.name]
		switch {
		case !ok:
			t.Errorf("README.md does not list -%s", s.name)
		case got != row{s.env, def}:
			t.Errorf("README.md lists -%s with env %q and default %q; the binary has %q and %q", s.name, got.env, got.def, s.env, def)
		}
		delete(documented, s.name)
	}
	for name := range documented {
		t.Errorf("README.md lists -%s, which the binary does not have", name)
	}
	if t.Failed() {
		t.Logf("the binary's settings, as table rows:\n%s", want.String())
	}
}
