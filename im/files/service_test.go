package files_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/files"
	"github.com/imserver/imserver/store/memstore"
)

var pngHead = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

func TestSniff(t *testing.T) {
	ftyp := func(brand string) []byte { return []byte("\x00\x00\x00\x18ftyp" + brand + "\x00\x00\x00\x00") }
	tests := []struct {
		head    []byte
		ct, ext string
	}{
		{pngHead, "image/png", ".png"},
		{[]byte("\xff\xd8\xff\xe0\x00\x10JFIF"), "image/jpeg", ".jpg"},
		{[]byte("GIF89a\x01\x00"), "image/gif", ".gif"},
		{[]byte("RIFF\x00\x00\x00\x00WEBPVP8 "), "image/webp", ".webp"},
		{[]byte("RIFF\x00\x00\x00\x00WAVEfmt "), "audio/wav", ".wav"},
		{ftyp("heic"), "image/heic", ".heic"},
		{ftyp("isom"), "video/mp4", ".mp4"},
		{ftyp("qt  "), "video/quicktime", ".mov"},
		{ftyp("M4A "), "audio/mp4", ".m4a"},
		{[]byte("\xff\xf1\x50\x80"), "audio/aac", ".aac"},
		{[]byte("ID3\x03\x00"), "audio/mpeg", ".mp3"},
		{[]byte("\xff\xfb\x90\x00"), "audio/mpeg", ".mp3"},
		{[]byte("OggS\x00\x02"), "audio/ogg", ".ogg"},
		{[]byte("%PDF-1.7\n"), "application/pdf", ".pdf"},
		{[]byte("PK\x03\x04\x14\x00"), "application/zip", ".zip"},
		{[]byte("hello, world\n"), "text/plain; charset=utf-8", ".txt"},
		{[]byte("na\xc3\xafve caf\xc3"), "text/plain; charset=utf-8", ".txt"}, // cut mid-character
		{[]byte("x <script>alert(1)</script>"), "text/plain; charset=utf-8", ".txt"},
		{[]byte("\xef\xbb\xbf  <!DOCTYPE html><p>hi"), "text/html; charset=utf-8", ".html"},
		{[]byte("<script>alert(1)</script>"), "text/html; charset=utf-8", ".html"},
		{[]byte("<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\">"), "image/svg+xml", ".svg"},
		{[]byte("<SVG onload=alert(1)>"), "image/svg+xml", ".svg"},
		{[]byte("<?xml version=\"1.0\"?><feed/>"), "text/xml; charset=utf-8", ".xml"},
		{[]byte("\x00\x01\x02binary"), "application/octet-stream", ".bin"},
		{[]byte("\xc3\x28 invalid utf-8 in the middle"), "application/octet-stream", ".bin"},
	}
	for _, tt := range tests {
		ct, ext := files.Sniff(tt.head)
		require.Equal(t, tt.ct, ct, "%q", tt.head)
		require.Equal(t, tt.ext, ext, "%q", tt.head)
		require.True(t, files.ValidExt(ext))
	}
}

func TestFilesInMessage(t *testing.T) {
	a, b := files.NewID(), files.NewID()
	msg := func(typ im.MessageType, content string) im.Message {
		return im.Message{Type: typ, Content: []byte(content)}
	}
	tests := []struct {
		name string
		m    im.Message
		want []string
	}{
		{"image with thumbnail", msg(im.ImageMessage, `{"url":"http://h:8080/files/`+a+`.png","thumbnailUrl":"https://cdn.example/files/`+b+`.jpg","width":3}`), []string{a, b}},
		{"same file twice", msg(im.VideoMessage, `{"url":"/files/`+a+`.mp4","thumbnailUrl":"/files/`+a+`.mp4","snapshotUrl":"/api/files/`+b+`.jpg"}`), []string{a, b}},
		{"signed", msg(im.AudioMessage, `{"url":"http://h/files/1767225600-00ff/`+a+`.m4a"}`), []string{a}},
		{"file without extension", msg(im.FileMessage, `{"url":"http://h/files/`+a+`","fileName":"../../etc/passwd"}`), []string{a}},
		{"text message", msg(im.TextMessage, `{"url":"http://h/files/`+a+`.png"}`), nil},
		{"not json", msg(im.ImageMessage, `http://h/files/`+a+`.png`), nil},
		{"other path", msg(im.ImageMessage, `{"url":"http://h/img/`+a+`.png"}`), nil},
		{"two segments between", msg(im.ImageMessage, `{"url":"http://h/files/x/y/`+a+`.png"}`), nil},
		{"upper-case id", msg(im.ImageMessage, `{"url":"http://h/files/`+strings.ToUpper(a)+`.png"}`), nil},
		{"bad extension", msg(im.ImageMessage, `{"url":"http://h/files/`+a+`.PNG"}`), nil},
		{"not a string", msg(im.ImageMessage, `{"url":7}`), nil},
		{"other host", msg(im.ImageMessage, `{"url":"https://elsewhere.example/a.png"}`), nil},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, files.FilesInMessage(tt.m), tt.name)
	}
}

// clock is a time the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func newService(t *testing.T, cfg files.ServiceConfig) (*files.Service, *memstore.Files, *clock) {
	t.Helper()
	st := memstore.NewFiles()
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg.Store = st
	if cfg.Now == nil {
		cfg.Now = c.Now
	}
	s, err := files.NewService(cfg)
	require.NoError(t, err)
	return s, st, c
}

func imageMessage(sender string, ids ...string) *im.Message {
	content := `{"url":"http://localhost/files/` + ids[0] + `.png"`
	if len(ids) > 1 {
		content += `,"thumbnailUrl":"http://localhost/files/` + ids[1] + `.png"`
	}
	return &im.Message{SenderID: sender, Type: im.ImageMessage, Content: []byte(content + "}")}
}

func count(t *testing.T, st files.Store) int {
	n := 0
	require.NoError(t, st.List(context.Background(), func(files.Meta) error { n++; return nil }))
	return n
}

func TestUpload(t *testing.T) {
	ctx := context.Background()
	s, st, c := newService(t, files.ServiceConfig{MaxSize: 1000})
	content := append(append([]byte{}, pngHead...), bytes.Repeat([]byte{7}, 600)...)
	m, err := s.Upload(ctx, bytes.NewReader(content), "")
	require.NoError(t, err)
	require.True(t, files.ValidID(m.ID))
	require.Equal(t, ".png", m.Ext)
	require.Equal(t, "image/png", m.ContentType)
	require.Equal(t, int64(len(content)), m.Size)
	require.Equal(t, c.Now(), m.CreatedAt)
	require.Equal(t, c.Now(), m.Unreferenced)
	require.Equal(t, "/files/"+m.ID+".png", files.URLPath(m))
	rc, got, err := s.Open(ctx, m.ID)
	require.NoError(t, err)
	b, _ := io.ReadAll(rc)
	rc.Close()
	require.Equal(t, content, b)
	require.Equal(t, m, got)

	m2, err := s.Upload(ctx, strings.NewReader("hi"), "alice")
	require.NoError(t, err)
	require.Equal(t, "alice", m2.Owner)
	require.NotEqual(t, m.ID, m2.ID)

	// Refused: over the limit, empty, a bad owner. Nothing is kept.
	_, err = s.Upload(ctx, bytes.NewReader(make([]byte, 1001)), "")
	require.ErrorIs(t, err, files.ErrTooLarge)
	_, err = s.Upload(ctx, strings.NewReader(""), "")
	require.ErrorIs(t, err, files.ErrEmpty)
	_, err = s.Upload(ctx, strings.NewReader("x"), "bad\x00id")
	require.ErrorIs(t, err, im.ErrInvalidArgument)
	require.Equal(t, 2, count(t, st))

	_, err = files.NewService(files.ServiceConfig{})
	require.Error(t, err)
	_, err = files.NewService(files.ServiceConfig{Store: st, MaxSize: -1})
	require.Error(t, err)
}

func TestReferencesKeepFiles(t *testing.T) {
	ctx := context.Background()
	s, st, c := newService(t, files.ServiceConfig{UnreferencedTTL: time.Hour})
	up := func() string {
		m, err := s.Upload(ctx, bytes.NewReader(pngHead), "")
		require.NoError(t, err)
		return m.ID
	}
	kept, thumb, orphan := up(), up(), up()
	sent := imageMessage("bob", kept, thumb)
	require.NoError(t, s.BeforeSend(ctx, sent))
	m, err := st.Stat(ctx, kept)
	require.NoError(t, err)
	require.Equal(t, int64(1), m.Refs)
	require.True(t, m.Unreferenced.IsZero())
	require.Equal(t, "bob", m.Owner, "the first sender owns an anonymous upload")

	// A message naming a file we do not have is refused, and changes no
	// count.
	err = s.BeforeSend(ctx, imageMessage("bob", kept, files.NewID()))
	var e *im.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, im.CodeInvalidArgument, e.Code)
	require.Equal(t, "file does not exist", e.Msg)
	m, _ = st.Stat(ctx, kept)
	require.Equal(t, int64(1), m.Refs)

	c.Add(time.Hour)
	n, err := s.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = st.Stat(ctx, orphan)
	require.ErrorIs(t, err, im.ErrNotFound)
	require.Equal(t, 2, count(t, st))

	// Once the message is recalled, its files live one more TTL.
	s.AfterRecall(ctx, *sent)
	m, _ = st.Stat(ctx, kept)
	require.Equal(t, int64(0), m.Refs)
	require.Equal(t, c.Now(), m.Unreferenced)
	c.Add(time.Hour - time.Second)
	n, _ = s.Sweep(ctx)
	require.Zero(t, n)
	c.Add(time.Second)
	n, _ = s.Sweep(ctx)
	require.Equal(t, 2, n)
	require.Zero(t, count(t, st))

	// A message referencing a swept file is refused.
	require.ErrorAs(t, s.BeforeSend(ctx, imageMessage("bob", kept)), &e)
}

func TestReleaseOwner(t *testing.T) {
	ctx := context.Background()
	s, st, c := newService(t, files.ServiceConfig{UnreferencedTTL: time.Hour})
	mine, err := s.Upload(ctx, bytes.NewReader(pngHead), "alice")
	require.NoError(t, err)
	theirs, err := s.Upload(ctx, bytes.NewReader(pngHead), "bob")
	require.NoError(t, err)
	require.NoError(t, s.BeforeSend(ctx, imageMessage("alice", mine.ID)))
	require.NoError(t, s.BeforeSend(ctx, imageMessage("alice", mine.ID)))
	require.NoError(t, s.BeforeSend(ctx, imageMessage("bob", theirs.ID)))

	c.Add(time.Minute)
	require.NoError(t, s.ReleaseOwner(ctx, "alice"))
	m, _ := st.Stat(ctx, mine.ID)
	require.Equal(t, int64(0), m.Refs)
	require.Equal(t, c.Now(), m.Unreferenced)
	c.Add(time.Hour)
	n, err := s.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = st.Stat(ctx, theirs.ID)
	require.NoError(t, err, "other users' files stay")
}

// A day of uploads nobody sends ends with nothing stored: the sweeper
// runs on its own, with a TTL of an hour and sweeps every ten minutes.
func TestRunSweepsUnreferencedUploads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memstore.NewFiles()
		s, err := files.NewService(files.ServiceConfig{Store: st, UnreferencedTTL: time.Hour, SweepInterval: 10 * time.Minute})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()

		keep, err := s.Upload(ctx, bytes.NewReader(pngHead), "")
		require.NoError(t, err)
		require.NoError(t, s.BeforeSend(ctx, imageMessage("bob", keep.ID)))
		for range 24 * 6 {
			for i := range 5 {
				_, err := s.Upload(ctx, strings.NewReader(fmt.Sprint("upload ", i)), "")
				require.NoError(t, err)
			}
			time.Sleep(10 * time.Minute)
			synctest.Wait()
			// Nothing older than the TTL and a sweep is left.
			require.LessOrEqual(t, count(t, st), 1+5*(6+1))
		}
		time.Sleep(time.Hour + 10*time.Minute)
		synctest.Wait()
		require.Equal(t, 1, count(t, st), "only the referenced file is left")
		s.AfterRecall(ctx, *imageMessage("bob", keep.ID))
		time.Sleep(time.Hour + 10*time.Minute)
		synctest.Wait()
		require.Zero(t, count(t, st), "nothing is left once its message is recalled")
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
}

// failingFiles is a Store whose Update fails.
type failingFiles struct {
	files.Store
	err error
}

func (f failingFiles) Update(context.Context, string, func(*files.Meta) error) (files.Meta, error) {
	return files.Meta{}, f.err
}

func TestBeforeSendStoreError(t *testing.T) {
	ctx := context.Background()
	st := memstore.NewFiles()
	boom := errors.New("disk on fire")
	s, err := files.NewService(files.ServiceConfig{Store: failingFiles{st, boom}})
	require.NoError(t, err)
	m, err := s.Upload(ctx, bytes.NewReader(pngHead), "")
	require.NoError(t, err)
	require.ErrorIs(t, s.BeforeSend(ctx, imageMessage("bob", m.ID)), boom)
	// Messages without files never touch the Store.
	require.NoError(t, s.BeforeSend(ctx, &im.Message{Type: im.TextMessage, Content: []byte("hi")}))
}

// racingStore runs before, once, just before the sweeper's DeleteIf: the
// moment another process's reference would come in.
type racingStore struct {
	*memstore.Files
	before func()
}

func (r *racingStore) DeleteIf(ctx context.Context, id string, cond func(files.Meta) bool) (bool, error) {
	if r.before != nil {
		r.before()
		r.before = nil
	}
	return r.Files.DeleteIf(ctx, id, cond)
}

// Two Services over one Store, as two processes over one directory: a
// reference counted by one while the other sweeps keeps the file, since
// the sweep checks and deletes in one step of the Store.
func TestSweepKeepsAnotherServicesReference(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st := &racingStore{Files: memstore.NewFiles()}
	a, err := files.NewService(files.ServiceConfig{Store: st, UnreferencedTTL: time.Hour, Now: c.Now})
	require.NoError(t, err)
	b, err := files.NewService(files.ServiceConfig{Store: st, UnreferencedTTL: time.Hour, Now: c.Now})
	require.NoError(t, err)
	up, err := a.Upload(ctx, bytes.NewReader(pngHead), "")
	require.NoError(t, err)
	c.Add(time.Hour)
	st.before = func() { require.NoError(t, b.BeforeSend(ctx, imageMessage("bob", up.ID))) }
	n, err := a.Sweep(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "the file was referenced between List and DeleteIf")
	m, err := st.Stat(ctx, up.ID)
	require.NoError(t, err)
	require.Equal(t, int64(1), m.Refs)

	// Once the file is gone, a reference through the other Service is
	// refused.
	b.AfterRecall(ctx, *imageMessage("bob", up.ID))
	c.Add(time.Hour)
	n, err = a.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	var e *im.Error
	require.ErrorAs(t, b.BeforeSend(ctx, imageMessage("bob", up.ID)), &e)
	require.Equal(t, "file does not exist", e.Msg)
}

// plainStore hides the ConditionalDeleter of the Store it wraps.
type plainStore struct{ files.Store }

// A Store that is no ConditionalDeleter is swept by a check and a Delete.
func TestSweepWithoutConditionalDeleter(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st := plainStore{memstore.NewFiles()}
	_, isCD := files.Store(st).(files.ConditionalDeleter)
	require.False(t, isCD)
	s, err := files.NewService(files.ServiceConfig{Store: st, UnreferencedTTL: time.Hour, Now: c.Now})
	require.NoError(t, err)
	kept, err := s.Upload(ctx, bytes.NewReader(pngHead), "")
	require.NoError(t, err)
	gone, err := s.Upload(ctx, bytes.NewReader(pngHead), "")
	require.NoError(t, err)
	require.NoError(t, s.BeforeSend(ctx, imageMessage("bob", kept.ID)))
	c.Add(time.Hour)
	n, err := s.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = st.Stat(ctx, gone.ID)
	require.ErrorIs(t, err, im.ErrNotFound)
	_, err = st.Stat(ctx, kept.ID)
	require.NoError(t, err)
}
