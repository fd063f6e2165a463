package files

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/imserver/imserver/im"
)

// Defaults of ServiceConfig fields.
const (
	DefaultMaxSize         = 100 << 20 // 100 MiB
	DefaultUnreferencedTTL = 24 * time.Hour
	DefaultSweepInterval   = 10 * time.Minute
)

// PathPrefix is the path under which files are served: a file's URL path
// is PathPrefix + ID + Ext ("/files/0123…cdef.png"), optionally with one
// more segment before the name for a signature (see the HTTP API).
const PathPrefix = "/files/"

// ServiceConfig configures NewService. Zero fields take the defaults.
type ServiceConfig struct {
	// Store keeps the files; required. The Service serialises a
	// reference against its sweeper's deletion of the same file in its
	// own memory; Services of several processes may share a Store only if
	// it is a ConditionalDeleter (see Sweep).
	Store Store
	// MaxSize is the largest file Upload accepts, in bytes. Default
	// DefaultMaxSize.
	MaxSize int64
	// UnreferencedTTL is how long a file no stored message references is
	// kept: an upload nobody sent, or the file of a recalled message.
	// Default DefaultUnreferencedTTL.
	UnreferencedTTL time.Duration
	// SweepInterval is how often Run looks for such files. Default
	// DefaultSweepInterval, or UnreferencedTTL if that is shorter.
	SweepInterval time.Duration
	// Now tells the time; default time.Now. Tests set it to move time.
	Now func() time.Time
	// Logger receives the sweeper's deletions and failures; nil discards.
	Logger *slog.Logger
}

// Service is the files users send through the server: it names and sniffs
// uploads, counts the stored messages that reference each file, and
// deletes the files that no message has referenced for a while. Its
// methods are safe for concurrent use.
type Service struct {
	store   Store
	maxSize int64
	ttl     time.Duration
	every   time.Duration
	now     func() time.Time
	log     *slog.Logger

	// locks serialise, per file (by a hash of its id), a change of its
	// reference count against the sweeper's check-then-delete, so that a
	// file a message just referenced is never deleted.
	seed  maphash.Seed
	locks [64]sync.Mutex
}

// NewService returns a Service over cfg.Store. A host plugs it in four
// places: BeforeSend and AfterRecall into im.Config, the Service into
// httpapi.Options.Files (which serves upload and download and releases a
// deleted account's files), and Run on a goroutine of its own for as long
// as the server runs.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("files: ServiceConfig.Store is required")
	}
	if cfg.MaxSize < 0 || cfg.UnreferencedTTL < 0 || cfg.SweepInterval < 0 {
		return nil, errors.New("files: ServiceConfig sizes and durations must not be negative")
	}
	s := &Service{
		store:   cfg.Store,
		maxSize: cfg.MaxSize,
		ttl:     cfg.UnreferencedTTL,
		every:   cfg.SweepInterval,
		now:     cfg.Now,
		log:     cfg.Logger,
		seed:    maphash.MakeSeed(),
	}
	if s.maxSize == 0 {
		s.maxSize = DefaultMaxSize
	}
	if s.ttl == 0 {
		s.ttl = DefaultUnreferencedTTL
	}
	if s.every == 0 {
		s.every = min(DefaultSweepInterval, s.ttl)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// MaxSize is the largest file Upload accepts, in bytes.
func (s *Service) MaxSize() int64 { return s.maxSize }

// ErrEmpty refuses an upload with no content. It wraps
// im.ErrInvalidArgument.
var ErrEmpty = fmt.Errorf("files: empty file: %w", im.ErrInvalidArgument)

// Upload stores the content read from r as a new file, at most MaxSize
// bytes (more is ErrTooLarge, and nothing is kept), and returns its
// record. The Service chooses the id (NewID) and, from the sniffed
// content, the type and extension (Sniff); owner is the uploading user,
// or "" for an anonymous upload. The file counts as unreferenced from
// now on, so it is deleted after UnreferencedTTL unless a message
// references it first. Store errors are returned wrapped: a full disk
// satisfies errors.Is(err, syscall.ENOSPC).
func (s *Service) Upload(ctx context.Context, r io.Reader, owner string) (Meta, error) {
	if owner != "" {
		if err := im.ValidateID("owner", owner); err != nil {
			return Meta{}, err
		}
	}
	br := bufio.NewReaderSize(r, SniffLen)
	head, err := br.Peek(SniffLen)
	if err != nil && !errors.Is(err, io.EOF) {
		return Meta{}, fmt.Errorf("files: upload: %w", err)
	}
	if len(head) == 0 {
		return Meta{}, ErrEmpty
	}
	ct, ext := Sniff(head)
	now := s.now()
	m := Meta{ID: NewID(), Ext: ext, ContentType: ct, Owner: owner, CreatedAt: now, Unreferenced: now}
	// 128 random bits do not collide; the loop is for a Store that
	// answers ErrConflict for its own reasons, and reads nothing before
	// it does.
	for range 3 {
		stored, err := s.store.Create(ctx, m, br, s.maxSize)
		if errors.Is(err, im.ErrConflict) {
			m.ID = NewID()
			continue
		}
		if err != nil {
			return Meta{}, fmt.Errorf("files: upload: %w", err)
		}
		return stored, nil
	}
	return Meta{}, fmt.Errorf("files: upload: no free id: %w", im.ErrConflict)
}

// Open returns the content and record of file id, for a download; the
// caller closes it. An unknown or deleted id is an error wrapping
// im.ErrNotFound, an invalid one im.ErrInvalidArgument.
func (s *Service) Open(ctx context.Context, id string) (io.ReadSeekCloser, Meta, error) {
	return s.store.Open(ctx, id)
}

// URLPath returns the path of m's URL: PathPrefix + ID + Ext.
func URLPath(m Meta) string { return PathPrefix + m.ID + m.Ext }

// ParseName splits the last segment of a file's URL path ("<id><ext>")
// into id and extension, and reports whether both are valid (ValidID,
// ValidExt). Nothing else is a file name: not "..", not a NUL, not a
// device name, not a path.
func ParseName(name string) (id, ext string, ok bool) {
	if len(name) < 32 {
		return "", "", false
	}
	id, ext = name[:32], name[32:]
	if !ValidID(id) || !ValidExt(ext) {
		return "", "", false
	}
	return id, ext, true
}

// fileMessage reports whether messages of type t carry files: image,
// voice, video and file messages.
func fileMessage(t im.MessageType) bool {
	switch t {
	case im.ImageMessage, im.AudioMessage, im.VideoMessage, im.FileMessage:
		return true
	}
	return false
}

// urlKeys are the keys of IM-iOS-SDK's media contents (IMImageMessageContent
// and its siblings) that hold URLs.
var urlKeys = []string{"url", "thumbnailUrl", "snapshotUrl"}

// FilesInMessage returns the ids of this server's files that m references,
// without repeats: for an image, voice, video or file message whose
// content is a JSON object, the URLs under "url", "thumbnailUrl" and
// "snapshotUrl" whose path is a file's (ending in PathPrefix + name, or
// PathPrefix + signature + "/" + name). The host is not looked at: the
// server does not know every name clients reach it by, and an id is ours
// if our Store has it. Other messages, and contents that are not JSON,
// reference nothing.
func FilesInMessage(m im.Message) []string {
	if !fileMessage(m.Type) || len(m.Content) == 0 || m.Content[0] != '{' {
		return nil
	}
	var content map[string]json.RawMessage
	if json.Unmarshal(m.Content, &content) != nil {
		return nil
	}
	var ids []string
	for _, k := range urlKeys {
		var s string
		if json.Unmarshal(content[k], &s) != nil || s == "" {
			continue
		}
		if id, ok := idOfURL(s); ok && !contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// idOfURL returns the file id of a URL (absolute or a bare path) whose
// path is one of a file's.
func idOfURL(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil {
		return "", false
	}
	p := u.Path
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", false
	}
	id, _, ok := ParseName(p[i+1:])
	if !ok {
		return "", false
	}
	dir := p[:i+1]
	if strings.HasSuffix(dir, PathPrefix) {
		return id, true
	}
	// A signed URL has one segment between the prefix and the name.
	if j := strings.LastIndexByte(dir[:len(dir)-1], '/'); j >= 0 && strings.HasSuffix(dir[:j+1], PathPrefix) {
		return id, true
	}
	return "", false
}

// lock locks the stripe of file id and returns its unlock.
func (s *Service) lock(id string) func() {
	mu := &s.locks[maphash.String(s.seed, id)%uint64(len(s.locks))]
	mu.Lock()
	return mu.Unlock
}

// errNoFile refuses a message that references a file the Store does not
// have.
func errNoFile() error {
	return &im.Error{Code: im.CodeInvalidArgument, Msg: "file does not exist", Err: im.ErrInvalidArgument}
}

// BeforeSend counts a reference from m to each of our files it references
// (FilesInMessage), for im.Config.BeforeSend: the count goes up before the
// message is stored, so a file is never deleted while a stored message
// references it. A send that fails after it leaves a count too high, and
// so does a resend of a message the server deduplicates: its file is then
// kept for good, the safe side. The first sender to reference a file of
// an anonymous upload becomes its Owner. A message that references an id
// the Store does not have (never uploaded, or deleted) is refused with
// INVALID_ARGUMENT "file does not exist", and no count changes. A host
// with a BeforeSend of its own calls this one last, after its own checks,
// so that a message it refuses counts no reference.
func (s *Service) BeforeSend(ctx context.Context, m *im.Message) error {
	ids := FilesInMessage(*m)
	for i, id := range ids {
		if err := s.reference(ctx, id, m.SenderID); err != nil {
			for _, done := range ids[:i] {
				s.release(ctx, done)
			}
			if errors.Is(err, im.ErrNotFound) {
				return errNoFile()
			}
			return err
		}
	}
	return nil
}

func (s *Service) reference(ctx context.Context, id, sender string) error {
	defer s.lock(id)()
	_, err := s.store.Update(ctx, id, func(m *Meta) error {
		m.Refs++
		m.Unreferenced = time.Time{}
		if m.Owner == "" && im.ValidateID("sender", sender) == nil {
			m.Owner = sender
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("files: reference %s: %w", id, err)
	}
	return nil
}

// release takes one reference off file id; when none is left, the file's
// time to live starts. A file already gone is no error.
func (s *Service) release(ctx context.Context, id string) {
	defer s.lock(id)()
	_, err := s.store.Update(ctx, id, func(m *Meta) error {
		if m.Refs > 0 {
			m.Refs--
		}
		if m.Refs == 0 && m.Unreferenced.IsZero() {
			m.Unreferenced = s.now()
		}
		return nil
	})
	if err != nil && !errors.Is(err, im.ErrNotFound) {
		// The file is kept longer than it should be: the safe side.
		s.log.WarnContext(ctx, "files: releasing a reference failed", "file", id, "err", err)
	}
}

// AfterRecall releases the references of a recalled message, for
// im.Config.AfterRecall: original is the message as it was before the
// recall, content included. Its files are deleted after UnreferencedTTL
// unless another message references them.
func (s *Service) AfterRecall(ctx context.Context, original im.Message) {
	ctx = context.WithoutCancel(ctx)
	for _, id := range FilesInMessage(original) {
		s.release(ctx, id)
	}
}

// ReleaseOwner makes every file owned by userID unreferenced from now on,
// whatever messages reference it, so that it is deleted after
// UnreferencedTTL: for a deleted account. It returns the first error met,
// after trying every file.
func (s *Service) ReleaseOwner(ctx context.Context, userID string) error {
	var owned []string
	err := s.store.List(ctx, func(m Meta) error {
		if m.Owner == userID {
			owned = append(owned, m.ID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("files: release files of %s: %w", userID, err)
	}
	var first error
	for _, id := range owned {
		err := s.releaseAll(ctx, id)
		if err != nil && !errors.Is(err, im.ErrNotFound) && first == nil {
			first = fmt.Errorf("files: release file %s: %w", id, err)
		}
	}
	return first
}

func (s *Service) releaseAll(ctx context.Context, id string) error {
	defer s.lock(id)()
	now := s.now()
	_, err := s.store.Update(ctx, id, func(m *Meta) error {
		if m.Refs > 0 || m.Unreferenced.IsZero() {
			m.Refs, m.Unreferenced = 0, now
		}
		return nil
	})
	return err
}

// errKeep stops a sweep's Update of a file that is to be kept.
var errKeep = errors.New("keep")

// Sweep deletes every file that no message has referenced for
// UnreferencedTTL, and returns how many it deleted. It goes on past a
// file it fails to delete, and returns the first such error.
//
// With a Store that is a ConditionalDeleter, the check and the deletion
// are one step of the Store, so Services of several processes sharing the
// Store may all sweep: a reference counted by any of them either keeps the
// file or finds it gone (and BeforeSend refuses its message). With any
// other Store, only the references of this Service are kept out between
// check and deletion.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	cutoff := s.now().Add(-s.ttl)
	var due []string
	err := s.store.List(ctx, func(m Meta) error {
		if expired(m, cutoff) {
			due = append(due, m.ID)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("files: sweep: %w", err)
	}
	var first error
	n := 0
	for _, id := range due {
		deleted, err := s.sweepOne(ctx, id, cutoff)
		if deleted {
			n++
		}
		if err != nil && first == nil {
			first = fmt.Errorf("files: sweep %s: %w", id, err)
		}
	}
	return n, first
}

func expired(m Meta, cutoff time.Time) bool {
	return m.Refs == 0 && !m.Unreferenced.IsZero() && !m.Unreferenced.After(cutoff)
}

// sweepOne deletes file id if it is still unreferenced since before
// cutoff, holding its lock, so no reference of this Service comes between
// the check and the deletion; a Store that is a ConditionalDeleter also
// keeps out the references of other Services (other processes) sharing
// it. A Store that is not checks with an Update and then deletes: a
// reference another Service counts in between is lost, and its message
// names a deleted file.
func (s *Service) sweepOne(ctx context.Context, id string, cutoff time.Time) (bool, error) {
	defer s.lock(id)()
	var deleted bool
	if cd, ok := s.store.(ConditionalDeleter); ok {
		var err error
		deleted, err = cd.DeleteIf(ctx, id, func(m Meta) bool { return expired(m, cutoff) })
		if err != nil && !errors.Is(err, im.ErrNotFound) {
			return false, err
		}
	} else {
		var err error
		if deleted, err = s.checkThenDelete(ctx, id, cutoff); err != nil {
			return false, err
		}
	}
	if deleted {
		s.log.DebugContext(ctx, "files: deleted an unreferenced file", "file", id)
	}
	return deleted, nil
}

// checkThenDelete deletes file id if it is still unreferenced since before
// cutoff, for a Store that is no ConditionalDeleter.
func (s *Service) checkThenDelete(ctx context.Context, id string, cutoff time.Time) (bool, error) {
	// A Stat would do; Update reads the record the same way every
	// reference does, through the Store's serialisation.
	_, err := s.store.Update(ctx, id, func(m *Meta) error {
		if !expired(*m, cutoff) {
			return errKeep
		}
		return errDue
	})
	switch {
	case errors.Is(err, errKeep), errors.Is(err, im.ErrNotFound):
		return false, nil
	case !errors.Is(err, errDue):
		return false, err
	}
	if err := s.store.Delete(ctx, id); err != nil {
		if errors.Is(err, im.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// errDue stops a sweep's Update of a file that is to be deleted.
var errDue = errors.New("due")

// Run sweeps (Sweep) at once and then every SweepInterval until ctx ends,
// and returns ctx's error. It runs on the caller's goroutine and starts
// none; failures are logged and the next sweep tries again.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		n, err := s.Sweep(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			s.log.ErrorContext(ctx, "files: sweep failed", "deleted", n, "err", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "files: swept unreferenced files", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
