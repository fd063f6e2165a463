// Package files keeps the files users send: images, voice, video and
// documents, uploaded first and then referenced by the messages that carry
// their URLs.
//
// A Store keeps the bytes and a small record (Meta) of each file; stores
// plug in as message stores do (store/localfiles keeps them in a directory,
// store/memstore in memory), and storetest.RunFiles checks one. The
// Service on top decides names, sniffs types, counts the messages that
// reference each file and sweeps files nobody references; the HTTP API
// (transport/httpapi) serves upload and download through it.
//
// Several server processes may share one Store (store/localfiles over one
// directory), each with its own Service, each sweeping: a user may upload
// through one process and send the message through another. The Store's
// Update and its ConditionalDeleter keep that safe; see Service.Sweep.
package files

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/imserver/imserver/im"
)

// Meta is what a Store keeps of a file beside its bytes.
type Meta struct {
	// ID names the file: 32 lowercase hex characters (128 random bits,
	// NewID), which makes its URL a capability nobody can guess.
	ID string
	// Ext is the file name extension the URL ends with (".png"), derived
	// from ContentType; empty for none.
	Ext string
	// ContentType is the media type sniffed from the content.
	ContentType string
	// Size is the content's length in bytes; the Store sets it.
	Size int64
	// Owner is the user who uploaded the file with a token, or else the
	// first sender of a message referencing it; empty while unknown.
	Owner     string
	CreatedAt time.Time
	// Refs counts the stored messages that reference the file.
	Refs int64
	// Unreferenced is when Refs last became 0, or CreatedAt for a file no
	// message referenced yet; the zero time while Refs is above 0. A file
	// unreferenced for longer than the Service's TTL is deleted.
	Unreferenced time.Time
}

// Store keeps files. Content is streamed in and out, never held whole in
// memory. Every method is safe for concurrent use and honours ctx
// cancellation; a missing file is an error wrapping im.ErrNotFound, an
// invalid id (ValidID) one wrapping im.ErrInvalidArgument, and backend
// errors are wrapped with %w (a full disk keeps its syscall.ENOSPC, so that
// errors.Is tells it apart).
type Store interface {
	// Create stores the content read from r as a new file described by
	// m, reading at most max bytes: if r holds more, it returns an error
	// wrapping ErrTooLarge and keeps nothing. Any error leaves nothing
	// behind, no partial content and no record. It sets m.Size from what
	// it read and returns m as stored; content and record are durable
	// when it returns. im.ErrConflict if m.ID is taken.
	Create(ctx context.Context, m Meta, r io.Reader, max int64) (Meta, error)

	// Open returns the content of file id, to read and seek (a download
	// serves ranges from it), and its record. The caller closes it. A
	// file deleted while open may still be read through it.
	Open(ctx context.Context, id string) (io.ReadSeekCloser, Meta, error)

	// Stat returns the record of file id.
	Stat(ctx context.Context, id string) (Meta, error)

	// Update applies fn to the record of file id and stores the result,
	// atomically with respect to other Updates of the same file, and
	// returns it. fn may change Owner, Refs and Unreferenced; a change to
	// another field is refused with im.ErrInvalidArgument. An error from
	// fn is returned and nothing is stored.
	Update(ctx context.Context, id string, fn func(*Meta) error) (Meta, error)

	// Delete removes file id, content and record.
	Delete(ctx context.Context, id string) error

	// List calls fn with the record of every file, in no particular
	// order, until fn returns an error, which List returns. Files created
	// or deleted meanwhile may or may not be seen.
	List(ctx context.Context, fn func(Meta) error) error
}

// ConditionalDeleter is a Store that can delete a file on a condition of
// its record, checked and acted on atomically with respect to Update: a
// Store shared by several Services (several server processes over one
// directory) needs it, so that a sweep cannot delete a file whose
// reference another process is counting. Such a reference, an Update,
// either comes first, and cond sees it, or finds the file gone and fails
// with im.ErrNotFound (and BeforeSend refuses the message).
type ConditionalDeleter interface {
	// DeleteIf deletes file id, content and record, if cond holds for
	// its record, and reports whether it did; cond is called once, with
	// the record as stored, and must not call the Store. A missing file
	// is an error wrapping im.ErrNotFound, as in Delete.
	DeleteIf(ctx context.Context, id string, cond func(Meta) bool) (deleted bool, err error)
}

// ErrTooLarge: the content is over the size limit. It wraps
// im.ErrLimitExceeded.
var ErrTooLarge = fmt.Errorf("files: file too large: %w", im.ErrLimitExceeded)

// NewID returns a new random file id: 32 lowercase hex characters.
func NewID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b[:])
}

// ValidID reports whether id has the form NewID gives: 32 lowercase hex
// characters. Stores refuse any other id, so no id can name a path.
func ValidID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ValidExt reports whether ext is empty or a dot followed by 1 to 8
// lowercase letters and digits: the extensions the Service gives.
func ValidExt(ext string) bool {
	if ext == "" {
		return true
	}
	if len(ext) < 2 || len(ext) > 9 || ext[0] != '.' {
		return false
	}
	for i := 1; i < len(ext); i++ {
		c := ext[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// ValidateMeta returns an error wrapping im.ErrInvalidArgument unless m can
// be created: ValidID(m.ID), ValidExt(m.Ext), ContentType at most 255 bytes
// of printable ASCII, Owner empty or a valid user id (im.ValidateID), Refs
// not negative. Every Store checks it in Create.
func ValidateMeta(m Meta) error {
	if !ValidID(m.ID) {
		return fmt.Errorf("files: id %q: %w", m.ID, im.ErrInvalidArgument)
	}
	if !ValidExt(m.Ext) {
		return fmt.Errorf("files: extension %q: %w", m.Ext, im.ErrInvalidArgument)
	}
	if len(m.ContentType) > 255 {
		return fmt.Errorf("files: content type too long: %w", im.ErrInvalidArgument)
	}
	for i := 0; i < len(m.ContentType); i++ {
		if c := m.ContentType[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("files: content type %q: %w", m.ContentType, im.ErrInvalidArgument)
		}
	}
	if m.Owner != "" {
		if err := im.ValidateID("owner", m.Owner); err != nil {
			return err
		}
	}
	if m.Refs < 0 {
		return fmt.Errorf("files: negative reference count: %w", im.ErrInvalidArgument)
	}
	return nil
}
