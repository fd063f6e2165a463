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
// flag with its environment variable, default and help text, and nothing
// else, so the table cannot drift from the binary.
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
	type row struct{ env, def, usage string }
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
		documented[name] = row{
			env:   strings.Trim(strings.TrimSpace(cells[2]), "`"),
			def:   strings.Trim(strings.TrimSpace(cells[3]), "`"),
			usage: strings.TrimSpace(strings.Join(cells[4:len(cells)-1], "|")),
		}
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
		case got != row{s.env, def, s.usage}:
			t.Errorf("README.md lists -%s as %+v; the binary has %+v", s.name, got, row{s.env, def, s.usage})
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
