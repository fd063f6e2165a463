//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tourSection is the README section whose sh blocks TestREADMETour runs.
const tourSection = "## Five minutes with it"

// tourBuild is the line of the tour that builds imchat; the test builds it
// itself beforehand, once, and runs the rest of the tour beside it.
const tourBuild = "go build -o imchat ./cmd/imchat"

// tourBlock is one ```sh block of the tour: its commands, and the output
// lines it shows (its lines that start with "# ").
type tourBlock struct {
	line   int // of the opening fence, for messages
	script string
	want   []string
}

// tourBlocks returns the ```sh blocks of the README's tour in order. A
// block fenced "```sh optional" (a tool the reader may not have) is left
// out, and so is every other language.
func tourBlocks(readme string) ([]tourBlock, error) {
	i := strings.Index(readme, "\n"+tourSection+"\n")
	if i < 0 {
		return nil, fmt.Errorf("README.md has no section %q", tourSection)
	}
	start := strings.Count(readme[:i+1], "\n") + 1
	section := readme[i+1:]
	if j := strings.Index(section[len(tourSection):], "\n## "); j >= 0 {
		section = section[:len(tourSection)+j]
	}
	var blocks []tourBlock
	var cur *tourBlock
	for n, line := range strings.Split(section, "\n") {
		switch {
		case cur == nil && line == "```sh":
			cur = &tourBlock{line: start + n}
		case cur == nil:
		case line == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case strings.HasPrefix(line, "# "):
			cur.want = append(cur.want, strings.TrimPrefix(line, "# "))
		default:
			cur.script += line + "\n"
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("README.md line %d: the block does not end", cur.line)
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("README.md's %q has no ```sh blocks", tourSection)
	}
	return blocks, nil
}

// shown is the pattern of an output line the README shows: the text as it
// is, with "…" standing for as little as needs be on the same line (curl's
// answers end without a newline, so two may share a line).
func shown(line string) *regexp.Regexp {
	parts := strings.Split(line, "…")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(strings.Join(parts, ".*?"))
}

// TestREADMETour runs the README's tour ("Five minutes with it") against a
// real server, block by block in one bash process (so the variables one
// block sets are there for the next, and background jobs are waited for by
// the block that starts them), and checks that each block prints the lines
// the README shows after its commands, so the tour cannot drift from the
// server.
//
// The server runs in this process on loopback ports the kernel picks, not
// on the README's 8080-8082 (other tests may hold those): the test rewrites
// localhost:8080, :8081 and :8082 in the blocks and in the lines they show
// to the ports it got, and sets IMCHAT_ADDR, imchat's default address, to
// the TCP port. It builds imchat once into a temporary directory and runs
// the blocks there, in place of the README's build line. Every command must
// succeed (set -eu, pipefail).
func TestREADMETour(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("the README tour needs bash, which is not installed")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("the README tour needs curl, which is not installed")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the README tour builds imchat with the go command, which is not on PATH")
	}
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	blocks, err := tourBlocks(string(readme))
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	work := t.TempDir()
	build := exec.CommandContext(ctx, goTool, "build", "-o", filepath.Join(work, "imchat"), "../imchat")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build imchat: %s", out)

	l, _ := start(t, t.TempDir(), new(syncBuffer))
	ports := strings.NewReplacer(
		"localhost:8080", l.HTTP.String(),
		"localhost:8081", l.WS.String(),
		"localhost:8082", l.TCP.String(),
	)

	// One script: each block, then a marker line the output is split at.
	const marker = "@@ end of README tour block @@"
	var script strings.Builder
	// A background job a failed block leaves behind ends with bash.
	script.WriteString("set -eu -o pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || :' EXIT\n")
	built := false
	for _, b := range blocks {
		s := ports.Replace(b.script)
		if strings.Contains(s, tourBuild+"\n") {
			s, built = strings.Replace(s, tourBuild+"\n", ": built by the test\n", 1), true
		}
		fmt.Fprintf(&script, "%s\necho '%s'\n", s, marker)
	}
	require.True(t, built, "the tour does not build imchat with %q", tourBuild)

	cmd := exec.CommandContext(ctx, bash, "-c", script.String())
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "IMCHAT_ADDR="+l.TCP.String())
	// The blocks start background jobs: on a timeout the whole process
	// group goes, not bash alone.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	runErr := cmd.Run()

	outs := strings.Split(output.String(), marker+"\n")
	for i, b := range blocks {
		if i >= len(outs) {
			break // the block that failed is the last one that ran
		}
		// Each line shown is matched by output of its own, so that two
		// equal lines need two answers; not in order, since the output of
		// a background job comes when it comes.
		rest := outs[i]
		for _, w := range b.want {
			loc := shown(ports.Replace(w)).FindStringIndex(rest)
			if loc == nil {
				t.Errorf("README.md line %d: the block does not print\n\t%s\nIt printed:\n%s", b.line, w, outs[i])
				continue
			}
			rest = rest[:loc[0]] + "\n" + rest[loc[1]:]
		}
	}
	if runErr != nil {
		var exit *exec.ExitError
		if errors.As(runErr, &exit) && len(outs) <= len(blocks) && len(outs) > 0 {
			t.Errorf("README.md line %d: the block failed (%v); it printed:\n%s", blocks[len(outs)-1].line, runErr, outs[len(outs)-1])
		} else {
			t.Errorf("the tour: %v", runErr)
		}
	}
}
