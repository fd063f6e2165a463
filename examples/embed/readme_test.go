package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEShowsRun keeps the README's embedding snippet compiling: it must
// be this program's run function, character for character.
func TestREADMEShowsRun(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Embedding\n")
	if !ok {
		t.Fatal("README.md has no \"## Embedding\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, snippet, ok := strings.Cut(section, "```go\n")
	if !ok {
		t.Fatal("README.md's embedding section has no ```go block")
	}
	snippet, _, ok = strings.Cut(snippet, "```\n")
	if !ok {
		t.Fatal("README.md's embedding snippet is not closed")
	}
	const start = "// run serves until ctx ends."
	i := strings.Index(string(src), start)
	if i < 0 {
		t.Fatalf("main.go has no %q", start)
	}
	fn := string(src[i:])
	end := strings.Index(fn, "\n}\n")
	if end < 0 {
		t.Fatal("main.go: run does not end")
	}
	fn = fn[:end+3]
	if snippet != fn {
		t.Errorf("README.md's embedding snippet differs from run in examples/embed/main.go; copy run there.\nREADME:\n%s\nmain.go:\n%s", snippet, fn)
	}
}
