// Package localfiles is a files.Store that keeps files in a directory on
// local disk, the default store of uploaded files (the server's data
// directory + "/files").
//
//	fs, err := localfiles.Open("data/files", localfiles.Options{})
//	if err != nil { … }
//	m, err := fs.Create(ctx, files.Meta{ID: files.NewID(), …}, body, 100<<20)
//
// # Layout
//
// File id's content is <dir>/<id[:2]>/<id> and its record (files.Meta, as
// JSON) <dir>/<id[:2]>/<id>.json, so that no directory holds more than a
// 256th of the files. Ids are checked with files.ValidID before any path
// is built from them, so no id can name a path outside dir. Each shard
// directory also holds an empty lock file, <dir>/<id[:2]>/.lock.
//
// # Durability and crashes
//
// Create streams the content to a temporary file in the file's directory,
// never holding it in memory, syncs it, writes the record to another
// temporary file and syncs it, then renames the content to its final name,
// syncs the directory, renames the record and syncs the directory again.
// So a record is present only beside its complete content, and a file is
// durable when Create returns. A crash can leave temporary files (named
// ".tmp-*") or a content without its record (a Create that did not
// finish, or a Delete, which removes the record first); Open removes both
// once they are older than an hour, since a younger one may be a write in
// flight in another process sharing the directory.
// Any error in Create (the content over its limit, a cancelled ctx, a
// failing reader, a full disk) removes every temporary file it made.
//
// # Concurrency
//
// A Store is safe for concurrent use. Create streams without a lock and
// takes one (that of the id's shard) only around its renames; Update,
// Delete and DeleteIf take it for their whole read-modify-write, so
// Updates of one file are atomic with respect to each other and DeleteIf
// (files.ConditionalDeleter) with respect to them. Stat, Open and List
// read records without a lock: a rename replaces a record atomically, so
// they see the old record or the new one. A file deleted while open stays
// readable through the *os.File that Open returned (on Unix).
//
// # Sharing a directory
//
// Several processes may share one directory, on one machine or on a
// network file system whose flock works, each with its own Store (and its
// own sweeper: see files.Service.Sweep). A shard's lock is a mutex of the
// Store, then an exclusive flock of the shard's lock file, opened anew for
// each lock; flock locks belong to an open file description, so they keep
// out other processes and other Stores of the same process alike. Waiting
// for a lock does not heed ctx; it is held for a few small writes and
// syncs only. On platforms without flock (Windows, Solaris, …) the lock is
// the mutex only, and a directory is for one Store of one process.
//
// # Errors
//
// A missing file gives an error wrapping im.ErrNotFound, an invalid id
// im.ErrInvalidArgument, a taken id im.ErrConflict, content over the limit
// files.ErrTooLarge and a cancelled ctx ctx.Err(). Errors of the file
// system are wrapped with %w, so errors.Is(err, syscall.ENOSPC) tells a
// full disk.
package localfiles

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/files"
)

// Options tunes a Store; the zero value is the default.
type Options struct {
	// Logger receives what Open removes after a crash; nil means discard.
	Logger *slog.Logger

	// writer, if set, wraps the temporary file Create copies content to
	// (tests use it to make a disk look full).
	writer func(io.Writer) io.Writer
}

// Store is a files.Store keeping files in a directory. Create one with
// Open.
type Store struct {
	dir    string
	log    *slog.Logger
	writer func(io.Writer) io.Writer
	locks  [256]sync.Mutex // by the id's first byte
}

var (
	_ files.Store              = (*Store)(nil)
	_ files.ConditionalDeleter = (*Store)(nil)
)

const (
	tmpPrefix = ".tmp-"
	lockName  = ".lock" // in each shard directory
	// leftoverAge is how old a temporary file or a content without a
	// record must be for Open to remove it: younger, it may be another
	// process's write in flight (an upload through the HTTP API ends
	// within an hour).
	leftoverAge = time.Hour
	recordExt   = ".json"
	copyBuffer  = 256 << 10 // large enough that a copy costs few system calls
)

// Open returns a Store keeping its files in dir, which it creates (mode
// 0700) if it does not exist. It removes what a crash may have left: the
// temporary files of unfinished writes and contents without a record. A
// Store holds no open file, so it needs no closing.
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("localfiles: open: empty directory name: %w", im.ErrInvalidArgument)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("localfiles: open: %w", err)
	}
	s := &Store{dir: dir, log: opts.Logger, writer: opts.writer}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.recover(); err != nil {
		return nil, fmt.Errorf("localfiles: open %s: %w", dir, err)
	}
	return s, nil
}

// recover removes the leftovers of writes a crash interrupted that are
// older than leftoverAge, each shard under its lock.
func (s *Store) recover() error {
	shards, err := s.shards()
	if err != nil {
		return err
	}
	for _, shard := range shards {
		if err := s.recoverShard(shard); err != nil {
			return err
		}
	}
	return nil
}

// recoverShard removes the old leftovers in shard. It holds the shard's
// lock, so a content without a record is never one whose Create is
// between its renames; the age spares the temporary files of writes in
// flight, which take no lock until they commit.
func (s *Store) recoverShard(shard string) error {
	path := filepath.Join(s.dir, shard)
	unlock, err := s.lockShard(shard)
	if err != nil {
		return err
	}
	defer unlock()
	entries, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	names := make(map[string]bool, len(entries))
	for _, e := range entries {
		names[e.Name()] = true
	}
	cutoff := time.Now().Add(-leftoverAge)
	removed := false
	remove := func(e fs.DirEntry, why string) error {
		name := e.Name()
		if fi, err := e.Info(); err != nil || fi.ModTime().After(cutoff) {
			return nil // gone meanwhile, or young: maybe a write in flight
		}
		s.log.Warn("localfiles: removing a crash's leftover", "file", filepath.Join(path, name), "why", why)
		removed = true
		if err := os.Remove(filepath.Join(path, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	for _, e := range entries {
		name := e.Name()
		var err error
		switch {
		case strings.HasPrefix(name, tmpPrefix):
			err = remove(e, "an unfinished write")
		case files.ValidID(name) && !names[name+recordExt]:
			err = remove(e, "a content without a record")
		case strings.HasSuffix(name, recordExt) && files.ValidID(strings.TrimSuffix(name, recordExt)) &&
			!names[strings.TrimSuffix(name, recordExt)]:
			// Cannot come from a crash (the record is renamed after
			// the content and removed before it), but a record
			// must never stand without its content.
			err = remove(e, "a record without its content")
		}
		if err != nil {
			return err
		}
	}
	if removed {
		return syncDir(path)
	}
	return nil
}

// shards returns the names of dir's shard directories, sorted.
func (s *Store) shards() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && isShard(e.Name()) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}

func isShard(name string) bool {
	return len(name) == 2 && files.ValidID(name+"000000000000000000000000000000")
}

// paths returns the shard directory, content path and record path of id,
// which must be valid.
func (s *Store) paths(id string) (shard, content, record string) {
	shard = filepath.Join(s.dir, id[:2])
	content = filepath.Join(shard, id)
	return shard, content, content + recordExt
}

// lock takes the lock of id's shard (see lockShard); id must be valid. A
// shard that does not exist gives an error wrapping im.ErrNotFound, since
// then neither does the file.
func (s *Store) lock(id string) (unlock func(), err error) {
	unlock, err = s.lockShard(id[:2])
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("file %s: %w", id, im.ErrNotFound)
	}
	return unlock, err
}

// lockShard takes the lock of shard (its two hex digits): the Store's
// mutex, then the flock of the shard's lock file, which keeps out other
// Stores and processes. It returns the unlock.
func (s *Store) lockShard(shard string) (unlock func(), err error) {
	b, _ := hex.DecodeString(shard)
	mu := &s.locks[b[0]]
	mu.Lock()
	funlock, err := lockFile(filepath.Join(s.dir, shard, lockName))
	if err != nil {
		mu.Unlock()
		return nil, fmt.Errorf("lock: %w", err)
	}
	return func() {
		funlock()
		mu.Unlock()
	}, nil
}

// check refuses a cancelled ctx and an invalid id.
func check(ctx context.Context, op, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("localfiles: %s: %w", op, err)
	}
	if !files.ValidID(id) {
		return fmt.Errorf("localfiles: %s: file id %q: %w", op, id, im.ErrInvalidArgument)
	}
	return nil
}

// record is a Meta as stored, with a version for later formats.
type record struct {
	Version      int       `json:"v"`
	ID           string    `json:"id"`
	Ext          string    `json:"ext,omitempty"`
	ContentType  string    `json:"type,omitempty"`
	Size         int64     `json:"size"`
	Owner        string    `json:"owner,omitempty"`
	CreatedAt    time.Time `json:"created"`
	Refs         int64     `json:"refs"`
	Unreferenced time.Time `json:"unreferenced"`
}

func encodeRecord(m files.Meta) ([]byte, error) {
	return json.Marshal(record{
		Version: 1, ID: m.ID, Ext: m.Ext, ContentType: m.ContentType, Size: m.Size,
		Owner: m.Owner, CreatedAt: m.CreatedAt, Refs: m.Refs, Unreferenced: m.Unreferenced,
	})
}

// readRecord reads the record of id (valid) at path.
func readRecord(id, path string) (files.Meta, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return files.Meta{}, fmt.Errorf("file %s: %w", id, im.ErrNotFound)
	}
	if err != nil {
		return files.Meta{}, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return files.Meta{}, fmt.Errorf("record %s: %w", path, err)
	}
	if r.Version != 1 || r.ID != id {
		return files.Meta{}, fmt.Errorf("record %s: version %d of file %q, want version 1 of %s", path, r.Version, r.ID, id)
	}
	return files.Meta{
		ID: r.ID, Ext: r.Ext, ContentType: r.ContentType, Size: r.Size, Owner: r.Owner,
		CreatedAt: r.CreatedAt, Refs: r.Refs, Unreferenced: r.Unreferenced,
	}, nil
}

// Create implements files.Store.
func (s *Store) Create(ctx context.Context, m files.Meta, r io.Reader, max int64) (files.Meta, error) {
	if err := ctx.Err(); err != nil {
		return files.Meta{}, fmt.Errorf("localfiles: create file: %w", err)
	}
	if err := files.ValidateMeta(m); err != nil {
		return files.Meta{}, err
	}
	if max < 0 {
		return files.Meta{}, fmt.Errorf("localfiles: create file: negative limit: %w", im.ErrInvalidArgument)
	}
	shard, contentPath, recordPath := s.paths(m.ID)
	// A taken id is refused before the upload is read, and again under
	// the lock before the renames, which is what decides.
	if _, err := os.Lstat(recordPath); err == nil {
		return files.Meta{}, fmt.Errorf("localfiles: create file %s: %w", m.ID, im.ErrConflict)
	}
	if err := s.makeShard(shard); err != nil {
		return files.Meta{}, fmt.Errorf("localfiles: create file %s: %w", m.ID, err)
	}
	var tmps []string
	defer func() {
		for _, p := range tmps {
			os.Remove(p) // gone already once renamed
		}
	}()
	content, err := os.CreateTemp(shard, tmpPrefix+"*")
	if err != nil {
		return files.Meta{}, fmt.Errorf("localfiles: create file %s: %w", m.ID, err)
	}
	tmps = append(tmps, content.Name())
	n, err := s.copyContent(ctx, content, r, max)
	if err == nil {
		err = content.Sync()
	}
	if cerr := content.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if errors.Is(err, files.ErrTooLarge) {
			return files.Meta{}, err
		}
		return files.Meta{}, fmt.Errorf("localfiles: create file %s: %w", m.ID, err)
	}
	m.Size = n
	rec, err := s.writeTemp(shard, m)
	if rec != "" {
		tmps = append(tmps, rec)
	}
	if err != nil {
		return files.Meta{}, fmt.Errorf("localfiles: create file %s: %w", m.ID, err)
	}
	if err := ctx.Err(); err != nil {
		return files.Meta{}, fmt.Errorf("localfiles: create file %s: %w", m.ID, err)
	}

	unlock, err := s.lock(m.ID)
	if err != nil {
		return files.Meta{}, fmt.Errorf("localfiles: create file %s: %w", m.ID, err)
	}
	defer unlock()
	if _, err := os.Lstat(recordPath); err == nil {
		return files.Meta{}, fmt.Errorf("localfiles: create file %s: %w", m.ID, im.ErrConflict)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return files.Meta{}, fmt.Errorf("localfiles: create file %s: %w", m.ID, err)
	}
	// Content first, made durable, then the record: a record on disk
	// always has its whole content beside it.
	if err := os.Rename(tmps[0], contentPath); err != nil {
		return files.Meta{}, fmt.Errorf("localfiles: create file %s: %w", m.ID, err)
	}
	if err := syncDir(shard); err != nil {
		os.Remove(contentPath)
		return files.Meta{}, fmt.Errorf("localfiles: create file %s: %w", m.ID, err)
	}
	if err := os.Rename(rec, recordPath); err != nil {
		os.Remove(contentPath)
		return files.Meta{}, fmt.Errorf("localfiles: create file %s: %w", m.ID, err)
	}
	if err := syncDir(shard); err != nil {
		// The record may or may not reach the disk; either way the
		// caller is told the file was not stored, so take it back.
		os.Remove(recordPath)
		os.Remove(contentPath)
		return files.Meta{}, fmt.Errorf("localfiles: create file %s: %w", m.ID, err)
	}
	return m, nil
}

// copyContent copies at most max bytes of r to f, stopping when ctx ends.
func (s *Store) copyContent(ctx context.Context, f *os.File, r io.Reader, max int64) (int64, error) {
	// The buffer goes through a writer without ReadFrom: *os.File's
	// ReadFrom would copy a plain reader 32 KiB at a time.
	var w io.Writer = struct{ io.Writer }{f}
	if s.writer != nil {
		w = s.writer(w)
	}
	buf := make([]byte, min(copyBuffer, max+1))
	if len(buf) == 0 {
		buf = make([]byte, 1)
	}
	n, err := io.CopyBuffer(w, io.LimitReader(ctxReader{ctx, r}, max+1), buf)
	if err != nil {
		return 0, err
	}
	if n > max {
		return 0, files.ErrTooLarge
	}
	return n, nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// makeShard creates the shard directory if needed, durably.
func (s *Store) makeShard(shard string) error {
	err := os.Mkdir(shard, 0o700)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(s.dir)
}

// writeTemp writes m's record to a new temporary file in shard and syncs
// it. It returns the file's name, which the caller removes, even with an
// error.
func (s *Store) writeTemp(shard string, m files.Meta) (string, error) {
	b, err := encodeRecord(m)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(shard, tmpPrefix+"*"+recordExt)
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return f.Name(), err
}

// syncDir makes the renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open implements files.Store. The content is an *os.File.
func (s *Store) Open(ctx context.Context, id string) (io.ReadSeekCloser, files.Meta, error) {
	if err := check(ctx, "open file", id); err != nil {
		return nil, files.Meta{}, err
	}
	_, contentPath, recordPath := s.paths(id)
	m, err := readRecord(id, recordPath)
	if err != nil {
		return nil, files.Meta{}, fmt.Errorf("localfiles: open: %w", err)
	}
	f, err := os.Open(contentPath)
	if errors.Is(err, fs.ErrNotExist) {
		// Deleted since the record was read.
		return nil, files.Meta{}, fmt.Errorf("localfiles: open: file %s: %w", id, im.ErrNotFound)
	}
	if err != nil {
		return nil, files.Meta{}, fmt.Errorf("localfiles: open: %w", err)
	}
	return f, m, nil
}

// Stat implements files.Store.
func (s *Store) Stat(ctx context.Context, id string) (files.Meta, error) {
	if err := check(ctx, "stat file", id); err != nil {
		return files.Meta{}, err
	}
	_, _, recordPath := s.paths(id)
	m, err := readRecord(id, recordPath)
	if err != nil {
		return files.Meta{}, fmt.Errorf("localfiles: stat: %w", err)
	}
	return m, nil
}

// Update implements files.Store.
func (s *Store) Update(ctx context.Context, id string, fn func(*files.Meta) error) (files.Meta, error) {
	if err := check(ctx, "update file", id); err != nil {
		return files.Meta{}, err
	}
	shard, _, recordPath := s.paths(id)
	unlock, err := s.lock(id)
	if err != nil {
		return files.Meta{}, fmt.Errorf("localfiles: update: %w", err)
	}
	defer unlock()
	old, err := readRecord(id, recordPath)
	if err != nil {
		return files.Meta{}, fmt.Errorf("localfiles: update: %w", err)
	}
	m := old
	if err := fn(&m); err != nil {
		return files.Meta{}, err
	}
	if err := checkUpdate(old, m); err != nil {
		return files.Meta{}, err
	}
	if err := ctx.Err(); err != nil {
		return files.Meta{}, fmt.Errorf("localfiles: update file %s: %w", id, err)
	}
	tmp, err := s.writeTemp(shard, m)
	if err == nil {
		err = os.Rename(tmp, recordPath)
	}
	if err != nil {
		if tmp != "" {
			os.Remove(tmp)
		}
		return files.Meta{}, fmt.Errorf("localfiles: update file %s: %w", id, err)
	}
	if err := syncDir(shard); err != nil {
		return files.Meta{}, fmt.Errorf("localfiles: update file %s: %w", id, err)
	}
	return m, nil
}

// checkUpdate refuses a change to a field Update may not change.
func checkUpdate(before, after files.Meta) error {
	if after.ID != before.ID || after.Ext != before.Ext || after.ContentType != before.ContentType ||
		after.Size != before.Size || !after.CreatedAt.Equal(before.CreatedAt) {
		return fmt.Errorf("localfiles: update file %s: only Owner, Refs and Unreferenced may change: %w", before.ID, im.ErrInvalidArgument)
	}
	if after.Owner != "" {
		if err := im.ValidateID("owner", after.Owner); err != nil {
			return err
		}
	}
	if after.Refs < 0 {
		return fmt.Errorf("localfiles: update file %s: negative reference count: %w", before.ID, im.ErrInvalidArgument)
	}
	return nil
}

// Delete implements files.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := check(ctx, "delete file", id); err != nil {
		return err
	}
	_, err := s.deleteIf(id, nil)
	return err
}

// DeleteIf implements files.ConditionalDeleter: cond is called under the
// lock that Update takes, which keeps out the Stores of other processes
// too where there is flock.
func (s *Store) DeleteIf(ctx context.Context, id string, cond func(files.Meta) bool) (bool, error) {
	if err := check(ctx, "delete file", id); err != nil {
		return false, err
	}
	return s.deleteIf(id, cond)
}

// deleteIf deletes file id if cond, nil for always, holds for its record.
func (s *Store) deleteIf(id string, cond func(files.Meta) bool) (bool, error) {
	shard, contentPath, recordPath := s.paths(id)
	unlock, err := s.lock(id)
	if err != nil {
		return false, fmt.Errorf("localfiles: delete: %w", err)
	}
	defer unlock()
	if cond != nil {
		m, err := readRecord(id, recordPath)
		if err != nil {
			return false, fmt.Errorf("localfiles: delete: %w", err)
		}
		if !cond(m) {
			return false, nil
		}
	}
	// The record first: a content without a record is what Open cleans
	// up, a record without its content would be a file that cannot be
	// read.
	err = os.Remove(recordPath)
	if errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("localfiles: delete: file %s: %w", id, im.ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("localfiles: delete file %s: %w", id, err)
	}
	if err := os.Remove(contentPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return true, fmt.Errorf("localfiles: delete file %s: %w", id, err)
	}
	if err := syncDir(shard); err != nil {
		return true, fmt.Errorf("localfiles: delete file %s: %w", id, err)
	}
	return true, nil
}

// List implements files.Store. It reads one shard directory at a time and
// calls fn without holding a lock, so fn may call the Store.
func (s *Store) List(ctx context.Context, fn func(files.Meta) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("localfiles: list files: %w", err)
	}
	shards, err := s.shards()
	if err != nil {
		return fmt.Errorf("localfiles: list files: %w", err)
	}
	for _, shard := range shards {
		path := filepath.Join(s.dir, shard)
		entries, err := os.ReadDir(path)
		if err != nil {
			return fmt.Errorf("localfiles: list files: %w", err)
		}
		for _, e := range entries {
			id, ok := strings.CutSuffix(e.Name(), recordExt)
			if !ok || !files.ValidID(id) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("localfiles: list files: %w", err)
			}
			m, err := readRecord(id, filepath.Join(path, e.Name()))
			if errors.Is(err, im.ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return fmt.Errorf("localfiles: list files: %w", err)
			}
			if err := fn(m); err != nil {
				return err
			}
		}
	}
	return nil
}
