package storetest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/files"
	"github.com/imserver/imserver/store/memstore"
	"github.com/imserver/imserver/store/storetest"
)

// filesBugEnv names the rule buggyFiles breaks in a child process of
// TestFilesSuiteDetectsBugs.
const filesBugEnv = "STORETEST_FILES_BUG"

// buggyFiles wraps a correct memstore.Files and, when bug is set, breaks
// one rule of files.Store on purpose. With bug "" every call passes
// straight through.
type buggyFiles struct {
	*memstore.Files
	bug string
}

var _ files.Store = (*buggyFiles)(nil)

func (b *buggyFiles) ctx(ctx context.Context) context.Context {
	if b.bug == "files-ignore-ctx" {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// pathID turns the refusal of an invalid id into not found, as a store
// that looks the id up as a path without checking it would answer.
func (b *buggyFiles) pathID(id string) error {
	if b.bug == "files-path-ids" && !files.ValidID(id) {
		return fmt.Errorf("buggy: no file %q: %w", id, im.ErrNotFound)
	}
	return nil
}

func (b *buggyFiles) Create(ctx context.Context, m files.Meta, r io.Reader, max int64) (files.Meta, error) {
	switch b.bug {
	case "files-limit-off-by-one":
		return b.Files.Create(ctx, m, r, max+1)
	case "files-keep-failed":
		// Keeps what it read before the reader failed.
		var buf bytes.Buffer
		_, err := io.Copy(&buf, io.LimitReader(r, max+1))
		if err != nil {
			b.Files.Create(ctx, m, &buf, max)
			return files.Meta{}, err
		}
		r = &buf
	}
	return b.Files.Create(b.ctx(ctx), m, r, max)
}

func (b *buggyFiles) Open(ctx context.Context, id string) (io.ReadSeekCloser, files.Meta, error) {
	if err := b.pathID(id); err != nil {
		return nil, files.Meta{}, err
	}
	return b.Files.Open(b.ctx(ctx), id)
}

func (b *buggyFiles) Stat(ctx context.Context, id string) (files.Meta, error) {
	if err := b.pathID(id); err != nil {
		return files.Meta{}, err
	}
	return b.Files.Stat(b.ctx(ctx), id)
}

func (b *buggyFiles) Update(ctx context.Context, id string, fn func(*files.Meta) error) (files.Meta, error) {
	if err := b.pathID(id); err != nil {
		return files.Meta{}, err
	}
	switch b.bug {
	case "files-update-racy", "files-update-any-field":
		// Reads, applies fn and writes back the fields Update may
		// change, without holding anything in between (the pause lets
		// another Update come in and be lost); or, for any-field,
		// drops the other changes silently instead of refusing them.
		m, err := b.Files.Stat(ctx, id)
		if err != nil {
			return files.Meta{}, err
		}
		if err := fn(&m); err != nil {
			return files.Meta{}, err
		}
		if b.bug == "files-update-racy" {
			for range 20 {
				runtime.Gosched()
			}
		}
		return b.Files.Update(ctx, id, func(u *files.Meta) error {
			u.Owner, u.Refs, u.Unreferenced = m.Owner, m.Refs, m.Unreferenced
			return nil
		})
	}
	return b.Files.Update(b.ctx(ctx), id, fn)
}

func (b *buggyFiles) Delete(ctx context.Context, id string) error {
	if err := b.pathID(id); err != nil {
		return err
	}
	return b.Files.Delete(b.ctx(ctx), id)
}

func (b *buggyFiles) List(ctx context.Context, fn func(files.Meta) error) error {
	first := true
	return b.Files.List(b.ctx(ctx), func(m files.Meta) error {
		if first && b.bug == "files-list-twice" {
			first = false
			if err := fn(m); err != nil {
				return err
			}
		}
		return fn(m)
	})
}

// TestMemFiles runs RunFiles against memstore.Files, through buggyFiles
// with the bug the environment names (none by default): a correct store
// must pass.
func TestMemFiles(t *testing.T) {
	bug := os.Getenv(filesBugEnv)
	storetest.RunFiles(t, storetest.FilesHarness{
		Open: func(t *testing.T) files.Store { return &buggyFiles{Files: memstore.NewFiles(), bug: bug} },
		Reopen: func(t *testing.T, s files.Store) files.Store {
			if bug == "files-lose-on-reopen" {
				return &buggyFiles{Files: memstore.NewFiles(), bug: bug}
			}
			return s
		},
	})
}

// TestFilesSuiteDetectsBugs runs TestMemFiles in a child process with one
// rule broken at a time and requires the subtest for that rule to fail.
func TestFilesSuiteDetectsBugs(t *testing.T) {
	if os.Getenv(filesBugEnv) != "" || os.Getenv(bugEnv) != "" {
		t.Skip("in a child process")
	}
	tests := []struct{ bug, failing string }{
		{"files-limit-off-by-one", "Create/TooLarge"},
		{"files-keep-failed", "Create/FailingReader"},
		{"files-keep-failed", "Durability"},
		{"files-ignore-ctx", "Cancelled"},
		{"files-ignore-ctx", "Create/CancelledMidway"},
		{"files-path-ids", "InvalidID"},
		{"files-update-racy", "Update/Concurrent"},
		{"files-update-any-field", "Update/OtherFields"},
		{"files-list-twice", "List"},
		{"files-lose-on-reopen", "Durability"},
	}
	for _, tt := range tests {
		t.Run(tt.bug+"/"+tt.failing, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestMemFiles$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), filesBugEnv+"="+tt.bug)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store with bug %q", tt.bug)
			}
			if want := "--- FAIL: TestMemFiles/" + tt.failing + " "; !strings.Contains(string(out), want) {
				t.Errorf("subtest %s did not fail for bug %q; output:\n%s", tt.failing, tt.bug, out)
			}
		})
	}
}
