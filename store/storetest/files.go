package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/files"
)

// FilesHarness opens file stores for RunFiles.
type FilesHarness struct {
	// Open returns a fresh, empty store. It arranges the store's release
	// itself (typically with t.Cleanup). Required.
	Open func(t *testing.T) files.Store
	// Reopen, if set, closes s and opens the same files again, to check
	// that everything survives (persistent stores). Without it the
	// Durability subtest is skipped.
	Reopen func(t *testing.T, s files.Store) files.Store
}

// RunFiles checks the files.Store that h opens against every rule of the
// interface's documentation, each in its own subtest (Create/ReadBack,
// Create/LimitExact, Create/TooLarge, Create/FailingReader,
// Create/Conflict, InvalidID, Update/Concurrent, Delete, List,
// Durability, Large, …); the DeleteIf subtests check a store that is a
// files.ConditionalDeleter and are skipped for one that is not. It assumes that times keep at least microsecond
// precision and compares them with time.Time.Equal, so the location may
// change; and that a Store needs nothing but Create to be handed a file.
func RunFiles(t *testing.T, h FilesHarness) {
	t.Helper()
	if h.Open == nil {
		t.Fatal("storetest: FilesHarness.Open is nil")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s files.Store)
	}{
		{"Create/ReadBack", testFilesReadBack},
		{"Create/Empty", testFilesEmpty},
		{"Create/LimitExact", testFilesLimitExact},
		{"Create/TooLarge", testFilesTooLarge},
		{"Create/FailingReader", testFilesFailingReader},
		{"Create/Conflict", testFilesConflict},
		{"Create/ConcurrentConflict", testFilesConcurrentConflict},
		{"Create/InvalidMeta", testFilesInvalidMeta},
		{"Cancelled", testFilesCancelled},
		{"Create/CancelledMidway", testFilesCancelledMidCopy},
		{"InvalidID", testFilesInvalidID},
		{"NotFound", testFilesNotFound},
		{"Update/Fields", testFilesUpdateFields},
		{"Update/OtherFields", testFilesUpdateOtherFields},
		{"Update/FnError", testFilesUpdateFnError},
		{"Update/Concurrent", testFilesUpdateConcurrent},
		{"Delete", testFilesDelete},
		{"DeleteIf/Keeps", testFilesDeleteIfKeeps},
		{"DeleteIf/Deletes", testFilesDeleteIfDeletes},
		{"DeleteIf/Invalid", testFilesDeleteIfInvalid},
		{"DeleteIf/ConcurrentUpdates", testFilesDeleteIfConcurrent},
		{"DeleteIf/RacesFirstReference", testFilesDeleteIfRace},
		{"List", testFilesList},
		{"List/StopsOnError", testFilesListStops},
		{"Large", testFilesLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := h.Open(t)
			if s == nil {
				t.Fatal("storetest: FilesHarness.Open returned nil")
			}
			tt.fn(t, s)
		})
	}
	t.Run("Durability", func(t *testing.T) { testFilesDurability(t, h) })
}

// newFileMeta returns the record of a new file as the Service would make
// it, with microsecond times.
func newFileMeta(owner string) files.Meta {
	return files.Meta{
		ID:           files.NewID(),
		Ext:          ".png",
		ContentType:  "image/png",
		Owner:        owner,
		CreatedAt:    baseTime(),
		Unreferenced: baseTime(),
	}
}

// metaDiff describes how got differs from want, or returns "".
func metaDiff(got, want files.Meta) string {
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.Unreferenced.Equal(want.Unreferenced) {
		return fmt.Sprintf("%+v, want %+v (times differ)", got, want)
	}
	got.CreatedAt, want.CreatedAt, got.Unreferenced, want.Unreferenced = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if got != want {
		return fmt.Sprintf("%+v, want %+v", got, want)
	}
	return ""
}

// createFile creates a file of m with content, failing t on error, and
// returns the record Create returned, which must be m with Size set.
func createFile(t *testing.T, s files.Store, m files.Meta, content []byte) files.Meta {
	t.Helper()
	got, err := s.Create(t.Context(), m, bytes.NewReader(content), int64(len(content))+10)
	if err != nil {
		t.Fatalf("Create(%s, %d bytes): %v", m.ID, len(content), err)
	}
	m.Size = int64(len(content))
	if d := metaDiff(got, m); d != "" {
		t.Fatalf("Create(%s) = %s", m.ID, d)
	}
	return got
}

// wantFile requires file m.ID to be stored with record m and content.
func wantFile(t *testing.T, s files.Store, m files.Meta, content []byte) {
	t.Helper()
	st, err := s.Stat(t.Context(), m.ID)
	if err != nil {
		t.Fatalf("Stat(%s): %v", m.ID, err)
	}
	if d := metaDiff(st, m); d != "" {
		t.Errorf("Stat(%s) = %s", m.ID, d)
	}
	r, om, err := s.Open(t.Context(), m.ID)
	if err != nil {
		t.Fatalf("Open(%s): %v", m.ID, err)
	}
	defer r.Close()
	if d := metaDiff(om, m); d != "" {
		t.Errorf("Open(%s) record = %s", m.ID, d)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading file %s: %v", m.ID, err)
	}
	if !bytes.Equal(got, content) {
		t.Errorf("file %s holds %d bytes %.40q, want %d bytes %.40q", m.ID, len(got), got, len(content), content)
	}
}

// wantNoFile requires file id to be absent: NotFound from Stat, Open,
// Update and Delete, and not in List.
func wantNoFile(t *testing.T, s files.Store, id string) {
	t.Helper()
	ctx := t.Context()
	if m, err := s.Stat(ctx, id); !errors.Is(err, im.ErrNotFound) {
		t.Errorf("Stat(%s) = %+v, %v; want ErrNotFound", id, m, err)
	}
	if r, _, err := s.Open(ctx, id); !errors.Is(err, im.ErrNotFound) {
		if err == nil {
			r.Close()
		}
		t.Errorf("Open(%s) = %v; want ErrNotFound", id, err)
	}
	if _, err := s.Update(ctx, id, func(m *files.Meta) error { m.Refs++; return nil }); !errors.Is(err, im.ErrNotFound) {
		t.Errorf("Update(%s) = %v; want ErrNotFound", id, err)
	}
	if err := s.Delete(ctx, id); !errors.Is(err, im.ErrNotFound) {
		t.Errorf("Delete(%s) = %v; want ErrNotFound", id, err)
	}
	if _, ok := listFiles(t, s)[id]; ok {
		t.Errorf("List shows file %s, which should not exist", id)
	}
}

// listFiles returns List's records by id, failing t on error or a
// duplicate.
func listFiles(t *testing.T, s files.Store) map[string]files.Meta {
	t.Helper()
	out := make(map[string]files.Meta)
	err := s.List(t.Context(), func(m files.Meta) error {
		if _, dup := out[m.ID]; dup {
			t.Errorf("List shows file %s twice", m.ID)
		}
		out[m.ID] = m
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return out
}

func testFilesReadBack(t *testing.T, s files.Store) {
	content := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	m := createFile(t, s, newFileMeta("alice"), content)
	wantFile(t, s, m, content)

	r, _, err := s.Open(t.Context(), m.ID)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	for _, c := range []struct {
		off    int64
		whence int
		n      int
		want   string
	}{
		{10, io.SeekStart, 6, "abcdef"},
		{-3, io.SeekEnd, 3, "xyz"},
		{-10, io.SeekCurrent, 4, "qrst"},
		{0, io.SeekStart, 2, "01"},
	} {
		if _, err := r.Seek(c.off, c.whence); err != nil {
			t.Fatalf("Seek(%d, %d): %v", c.off, c.whence, err)
		}
		buf := make([]byte, c.n)
		if _, err := io.ReadFull(r, buf); err != nil || string(buf) != c.want {
			t.Errorf("after Seek(%d, %d), read %q, %v; want %q", c.off, c.whence, buf, err, c.want)
		}
	}
	if end, err := r.Seek(0, io.SeekEnd); err != nil || end != int64(len(content)) {
		t.Errorf("Seek(0, SeekEnd) = %d, %v; want %d (the size)", end, err, len(content))
	}

	// A file without owner or extension.
	m2 := files.Meta{ID: files.NewID(), ContentType: "application/octet-stream", CreatedAt: baseTime(), Unreferenced: baseTime()}
	m2 = createFile(t, s, m2, []byte{0, 1, 2, 0xff})
	wantFile(t, s, m2, []byte{0, 1, 2, 0xff})
}

func testFilesEmpty(t *testing.T, s files.Store) {
	m := createFile(t, s, newFileMeta(""), nil)
	wantFile(t, s, m, nil)
	// A limit of 0 takes an empty content and nothing more.
	m2 := newFileMeta("")
	got, err := s.Create(t.Context(), m2, strings.NewReader(""), 0)
	if err != nil || got.Size != 0 {
		t.Errorf("Create(empty, max 0) = %+v, %v; want size 0", got, err)
	}
	m3 := newFileMeta("")
	if _, err := s.Create(t.Context(), m3, strings.NewReader("x"), 0); !errors.Is(err, files.ErrTooLarge) {
		t.Errorf("Create(1 byte, max 0) = %v; want ErrTooLarge", err)
	}
	wantNoFile(t, s, m3.ID)
}

func testFilesLimitExact(t *testing.T, s files.Store) {
	content := bytes.Repeat([]byte("z"), 1000)
	m := newFileMeta("bob")
	got, err := s.Create(t.Context(), m, bytes.NewReader(content), 1000)
	if err != nil {
		t.Fatalf("Create(1000 bytes, max 1000): %v", err)
	}
	if got.Size != 1000 {
		t.Errorf("Create(1000 bytes) Size = %d", got.Size)
	}
	m.Size = 1000
	wantFile(t, s, m, content)
}

func testFilesTooLarge(t *testing.T, s files.Store) {
	content := bytes.Repeat([]byte("z"), 1001)
	m := newFileMeta("bob")
	_, err := s.Create(t.Context(), m, bytes.NewReader(content), 1000)
	if !errors.Is(err, files.ErrTooLarge) || !errors.Is(err, im.ErrLimitExceeded) {
		t.Fatalf("Create(1001 bytes, max 1000) = %v; want ErrTooLarge", err)
	}
	wantNoFile(t, s, m.ID)
	// Far over the limit, from a reader that never ends: the store stops
	// reading.
	m2 := newFileMeta("bob")
	if _, err := s.Create(t.Context(), m2, newGenerator(1<<62), 1<<20); !errors.Is(err, files.ErrTooLarge) {
		t.Fatalf("Create(endless, max 1 MiB) = %v; want ErrTooLarge", err)
	}
	wantNoFile(t, s, m2.ID)
	// Nothing of the refused upload holds the id.
	createFile(t, s, m, content[:10])
}

// errReader gives n bytes, then err.
type errReader struct {
	n   int
	err error
}

func (r *errReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	for i := range p[:k] {
		p[i] = 'a'
	}
	r.n -= k
	return k, nil
}

var errBrokenUpload = errors.New("storetest: upload broken off")

func testFilesFailingReader(t *testing.T, s files.Store) {
	m := newFileMeta("alice")
	_, err := s.Create(t.Context(), m, &errReader{n: 100 << 10, err: errBrokenUpload}, 1<<20)
	if !errors.Is(err, errBrokenUpload) {
		t.Fatalf("Create(reader failing after 100 KiB) = %v; want the reader's error", err)
	}
	wantNoFile(t, s, m.ID)
	if n := len(listFiles(t, s)); n != 0 {
		t.Errorf("List shows %d files after a failed Create; want none", n)
	}
}

func testFilesConflict(t *testing.T, s files.Store) {
	m := createFile(t, s, newFileMeta("alice"), []byte("first"))
	other := m
	other.Owner, other.ContentType, other.Ext = "bob", "text/plain", ".txt"
	if _, err := s.Create(t.Context(), other, strings.NewReader("second, longer"), 100); !errors.Is(err, im.ErrConflict) {
		t.Errorf("Create of a taken id = %v; want ErrConflict", err)
	}
	wantFile(t, s, m, []byte("first"))
}

func testFilesConcurrentConflict(t *testing.T, s files.Store) {
	m := newFileMeta("alice")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			content := bytes.Repeat([]byte{byte('a' + i)}, 64<<10)
			_, errs[i] = s.Create(t.Context(), m, bytes.NewReader(content), 1<<20)
		})
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Errorf("Creates %d and %d of one id both succeeded", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, im.ErrConflict):
			t.Errorf("Create %d: %v; want ErrConflict", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no Create of the id succeeded")
	}
	m.Size = 64 << 10
	wantFile(t, s, m, bytes.Repeat([]byte{byte('a' + won)}, 64<<10))
}

func testFilesInvalidMeta(t *testing.T, s files.Store) {
	for _, c := range []struct {
		name string
		edit func(*files.Meta)
	}{
		{"BadID", func(m *files.Meta) { m.ID = "../" + m.ID[3:] }},
		{"BadExt", func(m *files.Meta) { m.Ext = "png" }},
		{"LongExt", func(m *files.Meta) { m.Ext = ".abcdefghi" }},
		{"ControlInContentType", func(m *files.Meta) { m.ContentType = "text/plain\n" }},
		{"LongContentType", func(m *files.Meta) { m.ContentType = strings.Repeat("a", 256) }},
		{"BadOwner", func(m *files.Meta) { m.Owner = "al\x00ice" }},
		{"NegativeRefs", func(m *files.Meta) { m.Refs = -1 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newFileMeta("alice")
			c.edit(&m)
			if _, err := s.Create(t.Context(), m, strings.NewReader("x"), 10); !errors.Is(err, im.ErrInvalidArgument) {
				t.Errorf("Create(%+v) = %v; want ErrInvalidArgument", m, err)
			}
		})
	}
	if n := len(listFiles(t, s)); n != 0 {
		t.Errorf("List shows %d files after refused Creates; want none", n)
	}
}

// invalidIDs are ids no method may accept, many of them paths.
var invalidIDs = []string{
	"",
	"../x",
	"..",
	"/etc/passwd",
	"0123456789abcdef0123456789abcde",   // 31
	"0123456789abcdef0123456789abcdef0", // 33
	"0123456789ABCDEF0123456789ABCDEF",
	"0123456789abcdef0123456789abcde\x00",
	"0123456789abcdef0123456789abcde/",
	"../3456789abcdef0123456789abcdef",
	"0123456789abcdef0123456789abcdeg",
	"0123456789abcdef0123456789abcd.json"[:32],
}

func testFilesInvalidID(t *testing.T, s files.Store) {
	ctx := t.Context()
	// A file the bad ids might reach by accident.
	createFile(t, s, newFileMeta("alice"), []byte("x"))
	for _, id := range invalidIDs {
		if _, err := s.Stat(ctx, id); !errors.Is(err, im.ErrInvalidArgument) {
			t.Errorf("Stat(%q) = %v; want ErrInvalidArgument", id, err)
		}
		if r, _, err := s.Open(ctx, id); !errors.Is(err, im.ErrInvalidArgument) {
			if err == nil {
				r.Close()
			}
			t.Errorf("Open(%q) = %v; want ErrInvalidArgument", id, err)
		}
		if _, err := s.Update(ctx, id, func(*files.Meta) error { return nil }); !errors.Is(err, im.ErrInvalidArgument) {
			t.Errorf("Update(%q) = %v; want ErrInvalidArgument", id, err)
		}
		if err := s.Delete(ctx, id); !errors.Is(err, im.ErrInvalidArgument) {
			t.Errorf("Delete(%q) = %v; want ErrInvalidArgument", id, err)
		}
		m := newFileMeta("alice")
		m.ID = id
		if _, err := s.Create(ctx, m, strings.NewReader("y"), 10); !errors.Is(err, im.ErrInvalidArgument) {
			t.Errorf("Create(id %q) = %v; want ErrInvalidArgument", id, err)
		}
	}
	if n := len(listFiles(t, s)); n != 1 {
		t.Errorf("List shows %d files; want the 1 created", n)
	}
}

func testFilesNotFound(t *testing.T, s files.Store) {
	createFile(t, s, newFileMeta("alice"), []byte("x"))
	wantNoFile(t, s, files.NewID())
}

func testFilesCancelled(t *testing.T, s files.Store) {
	m := createFile(t, s, newFileMeta("alice"), []byte("kept"))
	ctx := cancelled(t)
	fresh := newFileMeta("alice")
	if _, err := s.Create(ctx, fresh, strings.NewReader("new"), 10); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with a cancelled ctx = %v; want context.Canceled", err)
	}
	if _, err := s.Stat(ctx, m.ID); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat with a cancelled ctx = %v; want context.Canceled", err)
	}
	if r, _, err := s.Open(ctx, m.ID); !errors.Is(err, context.Canceled) {
		if err == nil {
			r.Close()
		}
		t.Errorf("Open with a cancelled ctx = %v; want context.Canceled", err)
	}
	if _, err := s.Update(ctx, m.ID, func(m *files.Meta) error { m.Refs = 5; return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Update with a cancelled ctx = %v; want context.Canceled", err)
	}
	if err := s.Delete(ctx, m.ID); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete with a cancelled ctx = %v; want context.Canceled", err)
	}
	if err := s.List(ctx, func(files.Meta) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a cancelled ctx = %v; want context.Canceled", err)
	}
	wantNoFile(t, s, fresh.ID)
	wantFile(t, s, m, []byte("kept"))
}

// cancellingReader gives n bytes, then cancels its context and gives
// more bytes for ever.
type cancellingReader struct {
	n      int
	cancel context.CancelFunc
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		r.cancel()
	}
	k := min(len(p), max(r.n, 1))
	for i := range p[:k] {
		p[i] = 'c'
	}
	r.n -= k
	return k, nil
}

func testFilesCancelledMidCopy(t *testing.T, s files.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	m := newFileMeta("alice")
	_, err := s.Create(ctx, m, &cancellingReader{n: 200 << 10, cancel: cancel}, 8<<20)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Create whose ctx ends midway = %v; want context.Canceled", err)
	}
	wantNoFile(t, s, m.ID)
}

func testFilesUpdateFields(t *testing.T, s files.Store) {
	m := createFile(t, s, newFileMeta(""), []byte("content"))
	later := baseTime().Add(time.Hour + time.Microsecond)
	got, err := s.Update(t.Context(), m.ID, func(u *files.Meta) error {
		if d := metaDiff(*u, m); d != "" {
			t.Errorf("Update gave fn %s", d)
		}
		u.Owner, u.Refs, u.Unreferenced = "carol", 3, time.Time{}
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	m.Owner, m.Refs, m.Unreferenced = "carol", 3, time.Time{}
	if d := metaDiff(got, m); d != "" {
		t.Errorf("Update returned %s", d)
	}
	wantFile(t, s, m, []byte("content"))
	got, err = s.Update(t.Context(), m.ID, func(u *files.Meta) error {
		u.Refs, u.Unreferenced = 0, later
		return nil
	})
	m.Refs, m.Unreferenced = 0, later
	if err != nil || metaDiff(got, m) != "" {
		t.Errorf("Update = %+v, %v; want %+v", got, err, m)
	}
	wantFile(t, s, m, []byte("content"))
	if n := len(listFiles(t, s)); n != 1 {
		t.Errorf("List shows %d files after Updates of one; want 1", n)
	}
}

func testFilesUpdateOtherFields(t *testing.T, s files.Store) {
	m := createFile(t, s, newFileMeta("alice"), []byte("content"))
	for _, c := range []struct {
		name string
		edit func(*files.Meta)
	}{
		{"ID", func(u *files.Meta) { u.ID = files.NewID() }},
		{"Ext", func(u *files.Meta) { u.Ext = ".gif" }},
		{"ContentType", func(u *files.Meta) { u.ContentType = "image/gif" }},
		{"Size", func(u *files.Meta) { u.Size++ }},
		{"CreatedAt", func(u *files.Meta) { u.CreatedAt = u.CreatedAt.Add(time.Second) }},
	} {
		_, err := s.Update(t.Context(), m.ID, func(u *files.Meta) error {
			u.Refs++ // allowed, but must not be stored either
			c.edit(u)
			return nil
		})
		if !errors.Is(err, im.ErrInvalidArgument) {
			t.Errorf("Update changing %s = %v; want ErrInvalidArgument", c.name, err)
		}
	}
	wantFile(t, s, m, []byte("content"))
	if n := len(listFiles(t, s)); n != 1 {
		t.Errorf("List shows %d files; want 1", n)
	}
}

func testFilesUpdateFnError(t *testing.T, s files.Store) {
	m := createFile(t, s, newFileMeta("alice"), []byte("content"))
	errNo := errors.New("storetest: no update")
	_, err := s.Update(t.Context(), m.ID, func(u *files.Meta) error {
		u.Refs, u.Owner = 7, "mallory"
		return errNo
	})
	if !errors.Is(err, errNo) {
		t.Errorf("Update whose fn fails = %v; want fn's error", err)
	}
	wantFile(t, s, m, []byte("content"))
}

func testFilesUpdateConcurrent(t *testing.T, s files.Store) {
	a := createFile(t, s, newFileMeta("alice"), []byte("a"))
	b := createFile(t, s, newFileMeta("alice"), []byte("b"))
	const n = 50
	var wg sync.WaitGroup
	for range n {
		for _, id := range []string{a.ID, b.ID} {
			wg.Go(func() {
				if _, err := s.Update(t.Context(), id, func(u *files.Meta) error {
					u.Refs++
					u.Unreferenced = time.Time{}
					return nil
				}); err != nil {
					t.Errorf("Update(%s): %v", id, err)
				}
			})
		}
	}
	wg.Wait()
	for _, id := range []string{a.ID, b.ID} {
		m, err := s.Stat(t.Context(), id)
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if m.Refs != n {
			t.Errorf("after %d concurrent increments, file %s has Refs %d", n, id, m.Refs)
		}
	}
}

func testFilesDelete(t *testing.T, s files.Store) {
	keep := createFile(t, s, newFileMeta("alice"), []byte("keep"))
	gone := createFile(t, s, newFileMeta("alice"), []byte("gone"))
	if err := s.Delete(t.Context(), gone.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNoFile(t, s, gone.ID)
	wantFile(t, s, keep, []byte("keep"))
	// The id is free again.
	createFile(t, s, gone, []byte("again"))
	gone.Size = 5
	wantFile(t, s, gone, []byte("again"))
}

func testFilesList(t *testing.T, s files.Store) {
	if n := len(listFiles(t, s)); n != 0 {
		t.Fatalf("a new store lists %d files", n)
	}
	want := make(map[string]files.Meta)
	for i := range 40 {
		m := createFile(t, s, newFileMeta(fmt.Sprintf("u%d", i%3)), []byte(strings.Repeat("x", i)))
		want[m.ID] = m
	}
	got := listFiles(t, s)
	if len(got) != len(want) {
		t.Errorf("List shows %d files, want %d", len(got), len(want))
	}
	for id, w := range want {
		if d := metaDiff(got[id], w); d != "" {
			t.Errorf("List shows file %s as %s", id, d)
		}
	}
}

func testFilesListStops(t *testing.T, s files.Store) {
	for range 5 {
		createFile(t, s, newFileMeta("alice"), []byte("x"))
	}
	errStop := errors.New("storetest: stop")
	calls := 0
	err := s.List(t.Context(), func(files.Meta) error {
		calls++
		if calls == 2 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Errorf("List whose fn fails = %v; want fn's error", err)
	}
	if calls != 2 {
		t.Errorf("List called fn %d times, after it failed on the 2nd", calls)
	}
}

// generator gives n pseudo-random bytes, the same ones for every n, without
// holding them.
type generator struct {
	n, x uint64
}

func newGenerator(n int64) *generator { return &generator{n: uint64(n), x: 0x9e3779b97f4a7c15} }

func (g *generator) Read(p []byte) (int, error) {
	if g.n == 0 {
		return 0, io.EOF
	}
	k := int(min(uint64(len(p)), g.n))
	i := 0
	for ; i+8 <= k; i += 8 {
		g.x ^= g.x << 13
		g.x ^= g.x >> 7
		g.x ^= g.x << 17
		x := g.x
		p[i], p[i+1], p[i+2], p[i+3], p[i+4], p[i+5], p[i+6], p[i+7] =
			byte(x), byte(x>>8), byte(x>>16), byte(x>>24), byte(x>>32), byte(x>>40), byte(x>>48), byte(x>>56)
	}
	for ; i < k; i++ {
		p[i] = byte(g.x)
	}
	g.n -= uint64(k)
	return k, nil
}

func testFilesLarge(t *testing.T, s files.Store) {
	const size = 64<<20 + 3 // not a multiple of any buffer
	h := sha256.New()
	m := newFileMeta("alice")
	got, err := s.Create(t.Context(), m, io.TeeReader(newGenerator(size), h), size)
	if err != nil {
		t.Fatalf("Create(64 MiB): %v", err)
	}
	if got.Size != size {
		t.Errorf("Create(64 MiB) Size = %d, want %d", got.Size, size)
	}
	want := h.Sum(nil)
	r, om, err := s.Open(t.Context(), m.ID)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	if om.Size != size {
		t.Errorf("Open record Size = %d, want %d", om.Size, size)
	}
	h.Reset()
	n, err := io.Copy(h, r)
	if err != nil || n != size || !bytes.Equal(h.Sum(nil), want) {
		t.Errorf("read back %d bytes (%v), hash equal: %v; want %d bytes, the same hash", n, err, bytes.Equal(h.Sum(nil), want), size)
	}
	if err := s.Delete(t.Context(), m.ID); err != nil {
		t.Errorf("Delete: %v", err)
	}
}

func testFilesDurability(t *testing.T, h FilesHarness) {
	if h.Reopen == nil {
		t.Skip("storetest: FilesHarness.Reopen is nil")
	}
	s := h.Open(t)
	kept := createFile(t, s, newFileMeta("alice"), []byte("kept"))
	updated := createFile(t, s, newFileMeta(""), []byte("updated"))
	deleted := createFile(t, s, newFileMeta("alice"), []byte("deleted"))
	large := newFileMeta("bob")
	if _, err := s.Create(t.Context(), large, newGenerator(3<<20), 3<<20); err != nil {
		t.Fatalf("Create(3 MiB): %v", err)
	}
	large.Size = 3 << 20
	tooLarge := newFileMeta("bob")
	if _, err := s.Create(t.Context(), tooLarge, newGenerator(3<<20), 1<<20); !errors.Is(err, files.ErrTooLarge) {
		t.Fatalf("Create(3 MiB, max 1 MiB) = %v; want ErrTooLarge", err)
	}
	failed := newFileMeta("bob")
	if _, err := s.Create(t.Context(), failed, &errReader{n: 1 << 20, err: errBrokenUpload}, 2<<20); !errors.Is(err, errBrokenUpload) {
		t.Fatalf("Create(failing reader) = %v; want its error", err)
	}
	var err error
	updated, err = s.Update(t.Context(), updated.ID, func(m *files.Meta) error {
		m.Owner, m.Refs, m.Unreferenced = "bob", 2, time.Time{}
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if err := s.Delete(t.Context(), deleted.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}

	s = h.Reopen(t, s)
	wantFile(t, s, kept, []byte("kept"))
	wantFile(t, s, updated, []byte("updated"))
	wantNoFile(t, s, deleted.ID)
	wantNoFile(t, s, tooLarge.ID)
	wantNoFile(t, s, failed.ID)
	content, err := io.ReadAll(newGenerator(3 << 20))
	if err != nil {
		t.Fatal(err)
	}
	wantFile(t, s, large, content)
	if n := len(listFiles(t, s)); n != 3 {
		t.Errorf("after Reopen, List shows %d files; want 3", n)
	}
}

// deleter returns s as a files.ConditionalDeleter, or skips t.
func deleter(t *testing.T, s files.Store) files.ConditionalDeleter {
	t.Helper()
	d, ok := s.(files.ConditionalDeleter)
	if !ok {
		t.Skipf("%T is no files.ConditionalDeleter", s)
	}
	return d
}

// unreferenced is the sweeper's condition.
func unreferenced(m files.Meta) bool { return m.Refs == 0 }

func testFilesDeleteIfKeeps(t *testing.T, s files.Store) {
	d := deleter(t, s)
	m := createFile(t, s, newFileMeta("alice"), []byte("kept"))
	m, err := s.Update(t.Context(), m.ID, func(u *files.Meta) error { u.Refs = 2; return nil })
	if err != nil {
		t.Fatal(err)
	}
	var seen []files.Meta
	deleted, err := d.DeleteIf(t.Context(), m.ID, func(c files.Meta) bool {
		seen = append(seen, c)
		return unreferenced(c)
	})
	if err != nil || deleted {
		t.Fatalf("DeleteIf(Refs==0) of a referenced file = %v, %v; want false, nil", deleted, err)
	}
	if len(seen) != 1 {
		t.Fatalf("DeleteIf called cond %d times, want once", len(seen))
	}
	if d := metaDiff(seen[0], m); d != "" {
		t.Errorf("DeleteIf called cond with %s", d)
	}
	wantFile(t, s, m, []byte("kept"))
}

func testFilesDeleteIfDeletes(t *testing.T, s files.Store) {
	d := deleter(t, s)
	keep := createFile(t, s, newFileMeta("alice"), []byte("keep"))
	gone := createFile(t, s, newFileMeta("alice"), []byte("gone"))
	deleted, err := d.DeleteIf(t.Context(), gone.ID, unreferenced)
	if err != nil || !deleted {
		t.Fatalf("DeleteIf(Refs==0) of an unreferenced file = %v, %v; want true, nil", deleted, err)
	}
	wantNoFile(t, s, gone.ID)
	wantFile(t, s, keep, []byte("keep"))
	deleted, err = d.DeleteIf(t.Context(), gone.ID, func(files.Meta) bool {
		t.Error("DeleteIf called cond for a missing file")
		return true
	})
	if deleted || !errors.Is(err, im.ErrNotFound) {
		t.Errorf("DeleteIf of a deleted file = %v, %v; want false, ErrNotFound", deleted, err)
	}
	// The id is free again.
	createFile(t, s, gone, []byte("again"))
}

func testFilesDeleteIfInvalid(t *testing.T, s files.Store) {
	d := deleter(t, s)
	m := createFile(t, s, newFileMeta("alice"), []byte("kept"))
	always := func(files.Meta) bool { return true }
	for _, id := range []string{"", "../" + m.ID[3:], strings.ToUpper(m.ID), m.ID + "0"} {
		if deleted, err := d.DeleteIf(t.Context(), id, always); deleted || !errors.Is(err, im.ErrInvalidArgument) {
			t.Errorf("DeleteIf(%q) = %v, %v; want false, ErrInvalidArgument", id, deleted, err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if deleted, err := d.DeleteIf(ctx, m.ID, always); deleted || !errors.Is(err, context.Canceled) {
		t.Errorf("DeleteIf with a cancelled ctx = %v, %v; want false, context.Canceled", deleted, err)
	}
	wantFile(t, s, m, []byte("kept"))
}

// RaceDeleteIf increments file id's Refs from workers goroutines, each
// times times, while DeleteIf deletes it once cond holds, retrying until
// it does or the increments are over; inc and del may be two Stores over
// the same files. It fails t unless the outcome is one of the two
// allowed: the file kept with every increment, or the file gone with
// exactly the increments its record had when DeleteIf deleted it, every
// later one refused with im.ErrNotFound.
func RaceDeleteIf(t *testing.T, inc files.Store, del files.ConditionalDeleter, id string, workers, times int, cond func(files.Meta) bool) (deleted bool) {
	t.Helper()
	var (
		mu       sync.Mutex
		ok       int64
		notFound int
		seen     files.Meta
		done     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for range times {
				_, err := inc.Update(t.Context(), id, func(u *files.Meta) error {
					u.Refs++
					u.Unreferenced = time.Time{}
					return nil
				})
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, im.ErrNotFound):
					notFound++
				default:
					t.Errorf("Update(%s): %v", id, err)
				}
				mu.Unlock()
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	var err error
	for last := false; !deleted && !last; {
		select {
		case <-done:
			last = true
		default:
		}
		deleted, err = del.DeleteIf(t.Context(), id, func(m files.Meta) bool {
			seen = m
			return cond(m)
		})
		if err != nil {
			t.Errorf("DeleteIf(%s): %v", id, err)
			<-done
			return false
		}
	}
	<-done
	if deleted {
		if ok != seen.Refs || ok+int64(notFound) != int64(workers*times) {
			t.Errorf("DeleteIf deleted file %s with Refs %d, but %d increments succeeded and %d found no file, of %d",
				id, seen.Refs, ok, notFound, workers*times)
		}
		if _, err := inc.Stat(t.Context(), id); !errors.Is(err, im.ErrNotFound) {
			t.Errorf("Stat(%s) after DeleteIf deleted it = %v; want ErrNotFound", id, err)
		}
		return true
	}
	m, err := inc.Stat(t.Context(), id)
	if err != nil {
		t.Fatalf("Stat(%s) of a file DeleteIf kept: %v", id, err)
	}
	if m.Refs != int64(workers*times) || ok != m.Refs || notFound != 0 {
		t.Errorf("file %s kept with Refs %d after %d increments succeeded and %d found no file, of %d",
			id, m.Refs, ok, notFound, workers*times)
	}
	return false
}

// testFilesDeleteIfConcurrent deletes a file once half of many concurrent
// increments are in: exactly those, and none after, must have succeeded.
func testFilesDeleteIfConcurrent(t *testing.T, s files.Store) {
	d := deleter(t, s)
	const workers, times = 4, 10
	m := createFile(t, s, newFileMeta("alice"), []byte("raced"))
	RaceDeleteIf(t, s, d, m.ID, workers, times, func(m files.Meta) bool { return m.Refs >= workers*times/2 })
}

// testFilesDeleteIfRace runs the sweeper's DeleteIf(Refs==0) against the
// first references of a file, a few rounds: either no reference was
// counted and the file is gone, or every reference was and it is kept.
func testFilesDeleteIfRace(t *testing.T, s files.Store) {
	d := deleter(t, s)
	for range 8 {
		m := createFile(t, s, newFileMeta("alice"), []byte("raced"))
		RaceDeleteIf(t, s, d, m.ID, 3, 2, unreferenced)
	}
}
