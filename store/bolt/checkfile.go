package bolt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/imserver/imserver/im"
)

// FileReport is what CheckFile found.
type FileReport struct {
	// ID is the store's identity (see Store.ID), if it could be read and
	// the file has one: a file written before identities (Unsealed) gets
	// one when a Store first opens it.
	ID string
	// Unsealed: the file was written, at least in part, before records
	// carried checksums, and its older records cannot be verified.
	Unsealed bool
	// What the checks went through, when the store could be opened.
	Conversations, Messages, Accounts, Groups int
	// Problems lists each problem found; none means the store is sound.
	Problems []error
}

// CheckFile checks the store in the file at path, and its index file,
// without changing either, for a store that is not open: no process may
// have it open, and CheckFile fails if one has. It copies both files into
// a new directory in tmpDir (the system's temporary directory if empty),
// which it removes after, and on the copies runs bbolt's check of the
// pages, then, if they are sound, opens the copy as Open does (which
// upgrades an old file, reads the log back, rebuilds a missing index) and
// runs Check, which verifies every record's checksum. Open's and Check's
// errors are problems of the report; CheckFile's own error means it could
// not check at all: the file is missing or in use, or the copy failed.
func CheckFile(ctx context.Context, path, tmpDir string) (*FileReport, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("bolt: check %s: %w", path, err)
	}
	r := &FileReport{}
	if fi.Size() == 0 {
		r.Problems = append(r.Problems, fmt.Errorf("%s is empty (0 bytes): %w", path, im.ErrCorrupt))
		return r, nil
	}
	dir, err := os.MkdirTemp(tmpDir, "imserver-check-")
	if err != nil {
		return nil, fmt.Errorf("bolt: check %s: %w", path, err)
	}
	defer os.RemoveAll(dir)
	copyPath := filepath.Join(dir, filepath.Base(path))
	if err := copyStore(path, copyPath); err != nil {
		return nil, fmt.Errorf("bolt: check %s: %w", path, err)
	}

	version, problems := checkPages(copyPath)
	if len(problems) > 0 {
		r.Problems = problems
		return r, nil // the pages are damaged: opening it would only fail
	}
	s, err := Open(copyPath, Options{Timeout: -1})
	if err != nil {
		r.Problems = append(r.Problems, err)
		return r, nil
	}
	defer s.Close()
	r.Unsealed = !s.strict
	if version >= 4 {
		r.ID = s.ID()
	}
	n, err := s.check(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		var joined interface{ Unwrap() []error }
		if errors.As(err, &joined) {
			r.Problems = append(r.Problems, joined.Unwrap()...)
		} else {
			r.Problems = append(r.Problems, err)
		}
	}
	r.Conversations, r.Messages, r.Accounts, r.Groups = n.conversations, n.messages, n.accounts, n.groups
	return r, nil
}

// copyStore copies the file at path, and its index file if there is one,
// to to and to+IndexSuffix, holding a shared lock on path's file (a
// read-only bbolt open) while it does, so that no process writes it
// meanwhile. A file bbolt cannot open at all is copied as it is: it is
// damaged, and the checks will say so.
func copyStore(path, to string) error {
	db, err := openReadOnly(path)
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return errors.New("the store is open in another process (a running imserver?): stop it first")
	case err == nil:
		defer db.Close()
	}
	if err := copyFile(path, to); err != nil {
		return err
	}
	err = copyFile(path+IndexSuffix, to+IndexSuffix)
	if errors.Is(err, os.ErrNotExist) {
		return nil // Open rebuilds it
	}
	return err
}

// openReadOnly opens path read-only, guarded as openGuarded is.
func openReadOnly(path string) (db *bbolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			db, err = nil, fmt.Errorf("the file is damaged (%v): %w", v, im.ErrCorrupt)
		}
	}()
	return bbolt.Open(path, 0, &bbolt.Options{ReadOnly: true, Timeout: 100 * time.Millisecond, FreelistType: bbolt.FreelistMapType, NoFreelistSync: true})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// checkPages runs bbolt's check of every page of the file at path, and
// returns the file's schema version.
func checkPages(path string) (version uint64, problems []error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			problems = append(problems, fmt.Errorf("the file is damaged (%v): %w", v, im.ErrCorrupt))
		}
	}()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Nanosecond, FreelistType: bbolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		return 0, []error{fmt.Errorf("bbolt cannot open the file: %w: %w", err, im.ErrCorrupt)}
	}
	defer closeAfterPanic(db)
	err = db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			problems = append(problems, fmt.Errorf("bbolt page check: %w: %w", err, im.ErrCorrupt))
		}
		if meta := tx.Bucket([]byte(bucketMeta)); meta != nil && len(problems) == 0 {
			version = counter(meta, keyVersion)
		}
		return nil
	})
	if err != nil {
		problems = append(problems, err)
	}
	return version, problems
}
