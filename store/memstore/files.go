package memstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/files"
)

// Files is an in-memory files.Store, for tests and for trying the server
// out; content lives in memory, so it suits small files only. The zero
// value is not usable; call NewFiles.
type Files struct {
	mu    sync.Mutex
	files map[string]memFile
}

type memFile struct {
	meta    files.Meta
	content []byte // never changed once stored: readers share it
}

var (
	_ files.Store              = (*Files)(nil)
	_ files.ConditionalDeleter = (*Files)(nil)
)

// NewFiles returns an empty Files.
func NewFiles() *Files {
	return &Files{files: make(map[string]memFile)}
}

// Create implements files.Store.
func (f *Files) Create(ctx context.Context, m files.Meta, r io.Reader, max int64) (files.Meta, error) {
	if err := ctx.Err(); err != nil {
		return files.Meta{}, fmt.Errorf("memstore: create file: %w", err)
	}
	if err := files.ValidateMeta(m); err != nil {
		return files.Meta{}, err
	}
	if max < 0 {
		return files.Meta{}, fmt.Errorf("memstore: create file: negative limit: %w", im.ErrInvalidArgument)
	}
	f.mu.Lock()
	_, taken := f.files[m.ID]
	f.mu.Unlock()
	if taken {
		return files.Meta{}, fmt.Errorf("memstore: file %s exists: %w", m.ID, im.ErrConflict)
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(&ctxReader{ctx, r}, max+1))
	if err != nil {
		return files.Meta{}, fmt.Errorf("memstore: create file: %w", err)
	}
	if n > max {
		return files.Meta{}, files.ErrTooLarge
	}
	m.Size = n
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, taken := f.files[m.ID]; taken {
		return files.Meta{}, fmt.Errorf("memstore: file %s exists: %w", m.ID, im.ErrConflict)
	}
	f.files[m.ID] = memFile{meta: m, content: buf.Bytes()}
	return m, nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// get returns file id; the caller holds no lock.
func (f *Files) get(ctx context.Context, op, id string) (memFile, error) {
	if err := ctx.Err(); err != nil {
		return memFile{}, fmt.Errorf("memstore: %s: %w", op, err)
	}
	if !files.ValidID(id) {
		return memFile{}, fmt.Errorf("memstore: %s: file id %q: %w", op, id, im.ErrInvalidArgument)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	file, ok := f.files[id]
	if !ok {
		return memFile{}, fmt.Errorf("memstore: %s: file %s: %w", op, id, im.ErrNotFound)
	}
	return file, nil
}

// Open implements files.Store.
func (f *Files) Open(ctx context.Context, id string) (io.ReadSeekCloser, files.Meta, error) {
	file, err := f.get(ctx, "open file", id)
	if err != nil {
		return nil, files.Meta{}, err
	}
	return nopCloser{bytes.NewReader(file.content)}, file.meta, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// Stat implements files.Store.
func (f *Files) Stat(ctx context.Context, id string) (files.Meta, error) {
	file, err := f.get(ctx, "stat file", id)
	return file.meta, err
}

// Update implements files.Store.
func (f *Files) Update(ctx context.Context, id string, fn func(*files.Meta) error) (files.Meta, error) {
	if _, err := f.get(ctx, "update file", id); err != nil {
		return files.Meta{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	file, ok := f.files[id]
	if !ok {
		return files.Meta{}, fmt.Errorf("memstore: update file %s: %w", id, im.ErrNotFound)
	}
	m := file.meta
	if err := fn(&m); err != nil {
		return files.Meta{}, err
	}
	if err := checkFileUpdate(file.meta, m); err != nil {
		return files.Meta{}, err
	}
	file.meta = m
	f.files[id] = file
	return m, nil
}

// checkFileUpdate refuses a change to a field Update may not change.
func checkFileUpdate(before, after files.Meta) error {
	after.Owner, after.Refs, after.Unreferenced = before.Owner, before.Refs, before.Unreferenced
	if after != before {
		return fmt.Errorf("memstore: update file: only Owner, Refs and Unreferenced may change: %w", im.ErrInvalidArgument)
	}
	return nil
}

// Delete implements files.Store.
func (f *Files) Delete(ctx context.Context, id string) error {
	if _, err := f.get(ctx, "delete file", id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.files[id]; !ok {
		return fmt.Errorf("memstore: delete file %s: %w", id, im.ErrNotFound)
	}
	delete(f.files, id)
	return nil
}

// DeleteIf implements files.ConditionalDeleter: cond is called under the
// lock that Update takes.
func (f *Files) DeleteIf(ctx context.Context, id string, cond func(files.Meta) bool) (bool, error) {
	if _, err := f.get(ctx, "delete file", id); err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	file, ok := f.files[id]
	if !ok {
		return false, fmt.Errorf("memstore: delete file %s: %w", id, im.ErrNotFound)
	}
	if !cond(file.meta) {
		return false, nil
	}
	delete(f.files, id)
	return true, nil
}

// List implements files.Store. It calls fn on a snapshot of the records,
// without holding the lock, so fn may call the Store.
func (f *Files) List(ctx context.Context, fn func(files.Meta) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: list files: %w", err)
	}
	f.mu.Lock()
	metas := make([]files.Meta, 0, len(f.files))
	for _, file := range f.files {
		metas = append(metas, file.meta)
	}
	f.mu.Unlock()
	for _, m := range metas {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memstore: list files: %w", err)
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}
