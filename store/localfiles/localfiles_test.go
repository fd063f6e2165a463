package localfiles_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"go.uber.org/goleak"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/files"
	"github.com/imserver/imserver/store/localfiles"
	"github.com/imserver/imserver/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness opens stores in temporary directories, remembering each one's
// for Reopen.
func harness() storetest.FilesHarness {
	dirs := make(map[files.Store]string)
	return storetest.FilesHarness{
		Open: func(t *testing.T) files.Store {
			dir := t.TempDir()
			s, err := localfiles.Open(dir, localfiles.Options{})
			if err != nil {
				t.Fatal(err)
			}
			dirs[s] = dir
			return s
		},
		Reopen: func(t *testing.T, s files.Store) files.Store {
			dir := dirs[s]
			s2, err := localfiles.Open(dir, localfiles.Options{})
			if err != nil {
				t.Fatal(err)
			}
			dirs[s2] = dir
			return s2
		},
	}
}

func TestStore(t *testing.T) {
	storetest.RunFiles(t, harness())
}

// newMeta returns the record of a new file.
func newMeta() files.Meta {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return files.Meta{ID: files.NewID(), Ext: ".bin", ContentType: "application/octet-stream", CreatedAt: now, Unreferenced: now}
}

// regularFiles returns the paths, relative to dir, of the regular files
// under it but the shards' lock files.
func regularFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() != ".lock" {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// filePaths returns the content and record paths of id, relative to the
// store's directory, sorted.
func filePaths(id string) []string {
	return []string{filepath.Join(id[:2], id), filepath.Join(id[:2], id+".json")}
}

func TestLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "files")
	s, err := localfiles.Open(dir, localfiles.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("Open created %s with mode %v, want 0700", dir, fi.Mode().Perm())
	}
	m, err := s.Create(t.Context(), newMeta(), strings.NewReader("content"), 100)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := regularFiles(t, dir), filePaths(m.ID); !slices.Equal(got, want) {
		t.Errorf("the directory holds %q, want %q", got, want)
	}
	if fi, err := os.Lstat(filepath.Join(dir, m.ID[:2], ".lock")); localfiles.CrossProcess && (err != nil || !fi.Mode().IsRegular()) {
		t.Errorf("the shard's lock file: %v, %v", fi, err)
	}
	r, _, err := s.Open(t.Context(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, ok := r.(*os.File); !ok {
		t.Errorf("Open returned a %T, want an *os.File", r)
	}
	// Deleted while open, the file stays readable.
	if err := s.Delete(t.Context(), m.ID); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(r); err != nil || string(b) != "content" {
		t.Errorf("reading a file deleted while open: %q, %v", b, err)
	}
	if got := regularFiles(t, dir); len(got) != 0 {
		t.Errorf("after Delete, the directory holds %q", got)
	}
}

func TestOpenRefusesAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := localfiles.Open(path, localfiles.Options{}); err == nil {
		t.Error("Open of a regular file succeeded")
	}
	if _, err := localfiles.Open("", localfiles.Options{}); !errors.Is(err, im.ErrInvalidArgument) {
		t.Errorf("Open(\"\") = %v; want ErrInvalidArgument", err)
	}
}

// TestOpenRemovesLeftovers plants what a crash can leave and requires Open
// to remove it when older than an hour, and nothing else: a younger one
// may be another process's write in flight.
func TestOpenRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	s, err := localfiles.Open(dir, localfiles.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := s.Create(t.Context(), newMeta(), strings.NewReader("kept"), 100)
	if err != nil {
		t.Fatal(err)
	}
	shard := filepath.Join(dir, kept.ID[:2])
	orphan := kept.ID[:2] + files.NewID()[2:] // content whose record was never renamed
	noContent := kept.ID[:2] + files.NewID()[2:]
	other := "zz" // not a shard: left alone
	notID := filepath.Join("ab", files.NewID()[:31]+"x")
	plant := map[string]string{
		filepath.Join(shard, ".tmp-1234"):            "half a content",
		filepath.Join(shard, ".tmp-5678.json"):       `{"v":1`,
		filepath.Join(shard, orphan):                 "content without record",
		filepath.Join(shard, noContent+".json"):      `{"v":1,"id":"` + noContent + `"}`,
		filepath.Join(dir, "0f", ".tmp-9"):           "in a shard of its own",
		filepath.Join(dir, other, "notes.txt"):       "someone else's",
		filepath.Join(dir, kept.ID[:2], "notes.txt"): "someone else's",
		filepath.Join(dir, notID):                    "not an id",
	}
	old := time.Now().Add(-time.Hour - time.Minute)
	for path, content := range plant {
		os.MkdirAll(filepath.Dir(path), 0o700)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, old, old); err != nil {
			t.Fatal(err)
		}
	}
	// The same leftovers, fresh: a write in flight in another process.
	freshOrphan := kept.ID[:2] + files.NewID()[2:]
	fresh := []string{
		filepath.Join(kept.ID[:2], ".tmp-4321"),
		filepath.Join(kept.ID[:2], ".tmp-8765.json"),
		filepath.Join(kept.ID[:2], freshOrphan),
		filepath.Join("0f", ".tmp-10"),
	}
	for _, p := range fresh {
		if err := os.WriteFile(filepath.Join(dir, p), []byte("in flight"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var logs strings.Builder
	s, err = localfiles.Open(dir, localfiles.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	want := append(filePaths(kept.ID), filepath.Join(other, "notes.txt"), filepath.Join(kept.ID[:2], "notes.txt"), notID)
	want = append(want, fresh...)
	for path := range plant {
		if strings.HasPrefix(filepath.Base(path), "notes") || strings.HasSuffix(path, notID) {
			continue
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after Open, leftover %s is still there (%v)", path, err)
		}
	}
	for _, p := range want {
		if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
			t.Errorf("Open removed %s, which is no leftover: %v", p, err)
		}
	}
	if n := strings.Count(logs.String(), "leftover"); n != 5 {
		t.Errorf("Open logged %d removals, want 5:\n%s", n, logs.String())
	}
	var ids []string
	if err := s.List(t.Context(), func(m files.Meta) error { ids = append(ids, m.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{kept.ID}) {
		t.Errorf("List = %q, want only %s", ids, kept.ID)
	}
	if _, err := s.Stat(t.Context(), noContent); !errors.Is(err, im.ErrNotFound) {
		t.Errorf("Stat of a record without content = %v; want ErrNotFound", err)
	}
}

// fullDisk writes n bytes, then fails as a full disk does.
type fullDisk struct {
	w io.Writer
	n int
}

func (d *fullDisk) Write(p []byte) (int, error) {
	if len(p) > d.n {
		k, _ := d.w.Write(p[:d.n])
		d.n = 0
		return k, &fs.PathError{Op: "write", Path: "file", Err: syscall.ENOSPC}
	}
	d.n -= len(p)
	return d.w.Write(p)
}

func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	s, err := localfiles.Open(dir, localfiles.WithWriter(localfiles.Options{}, func(w io.Writer) io.Writer {
		return &fullDisk{w: w, n: 1 << 20}
	}))
	if err != nil {
		t.Fatal(err)
	}
	m := newMeta()
	_, err = s.Create(t.Context(), m, io.LimitReader(zeros{}, 4<<20), 8<<20)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Create on a full disk = %v; want ENOSPC", err)
	}
	if got := regularFiles(t, dir); len(got) != 0 {
		t.Errorf("a Create that filled the disk left %q", got)
	}
	if _, err := s.Stat(t.Context(), m.ID); !errors.Is(err, im.ErrNotFound) {
		t.Errorf("Stat = %v; want ErrNotFound", err)
	}
	// What fits is stored.
	small, err := s.Create(t.Context(), newMeta(), strings.NewReader("fits"), 100)
	if err != nil {
		t.Fatalf("Create of a small file: %v", err)
	}
	if got, want := regularFiles(t, dir), filePaths(small.ID); !slices.Equal(got, want) {
		t.Errorf("the directory holds %q, want %q", got, want)
	}
}

// TestDiskFullTmpfs fills a real file system: a 1 MiB tmpfs, which only
// root can mount.
func TestDiskFullTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	s, err := localfiles.Open(dir, localfiles.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := newMeta()
	_, err = s.Create(t.Context(), m, io.LimitReader(zeros{}, 2<<20), 4<<20)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Create of 2 MiB on a 1 MiB tmpfs = %v; want ENOSPC", err)
	}
	if got := regularFiles(t, dir); len(got) != 0 {
		t.Errorf("a Create that filled the disk left %q", got)
	}
	small, err := s.Create(t.Context(), newMeta(), strings.NewReader("fits"), 100)
	if err != nil {
		t.Fatalf("Create of a small file after the failure: %v", err)
	}
	if got, want := regularFiles(t, dir), filePaths(small.ID); !slices.Equal(got, want) {
		t.Errorf("the directory holds %q, want %q", got, want)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestNothingLeftBehind checks the directory itself after each way a
// Create can fail.
func TestNothingLeftBehind(t *testing.T) {
	dir := t.TempDir()
	s, err := localfiles.Open(dir, localfiles.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	taken, err := s.Create(t.Context(), newMeta(), strings.NewReader("taken"), 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		ctx  context.Context
		m    files.Meta
		r    io.Reader
		want error
	}{
		{"TooLarge", t.Context(), newMeta(), io.LimitReader(zeros{}, 1<<20+1), files.ErrTooLarge},
		{"Cancelled", ctx, newMeta(), strings.NewReader("x"), context.Canceled},
		{"ReaderFails", t.Context(), newMeta(), io.MultiReader(io.LimitReader(zeros{}, 1000), iotest.ErrReader(io.ErrUnexpectedEOF)), io.ErrUnexpectedEOF},
		{"Conflict", t.Context(), taken, strings.NewReader("again"), im.ErrConflict},
	} {
		if _, err := s.Create(c.ctx, c.m, c.r, 1<<20); !errors.Is(err, c.want) {
			t.Errorf("%s: Create = %v; want %v", c.name, err, c.want)
		}
		if got, want := regularFiles(t, dir), filePaths(taken.ID); !slices.Equal(got, want) {
			t.Errorf("%s: the directory holds %q, want %q", c.name, got, want)
		}
	}
}

// TestSharedDirectory opens two Stores on one directory, as two processes
// would (their in-memory locks are apart, only the lock files join them):
// increments through both add up, and a DeleteIf through one never
// deletes a file with an increment counted through the other.
func TestSharedDirectory(t *testing.T) {
	if !localfiles.CrossProcess {
		t.Skip("no flock on this platform: a directory is for one process")
	}
	dir := t.TempDir()
	a, err := localfiles.Open(dir, localfiles.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := localfiles.Open(dir, localfiles.Options{})
	if err != nil {
		t.Fatal(err)
	}

	m, err := a.Create(t.Context(), newMeta(), strings.NewReader("shared"), 100)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	for i := range 2 * n {
		s := []*localfiles.Store{a, b}[i%2]
		wg.Go(func() {
			if _, err := s.Update(t.Context(), m.ID, func(u *files.Meta) error { u.Refs++; return nil }); err != nil {
				t.Errorf("Update: %v", err)
			}
		})
	}
	wg.Wait()
	if got, err := b.Stat(t.Context(), m.ID); err != nil || got.Refs != 2*n {
		t.Errorf("after %d increments through two Stores, Stat = Refs %d, %v", 2*n, got.Refs, err)
	}

	// Half the increments in, b deletes: exactly those went through a.
	m, err = b.Create(t.Context(), newMeta(), strings.NewReader("raced"), 100)
	if err != nil {
		t.Fatal(err)
	}
	storetest.RaceDeleteIf(t, a, b, m.ID, 4, 10, func(m files.Meta) bool { return m.Refs >= 20 })
	// The sweeper's condition against first references, a few rounds.
	for range 8 {
		m, err := a.Create(t.Context(), newMeta(), strings.NewReader("raced"), 100)
		if err != nil {
			t.Fatal(err)
		}
		storetest.RaceDeleteIf(t, a, b, m.ID, 3, 2, func(m files.Meta) bool { return m.Refs == 0 })
	}
}
