package httpapi_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/files"
	"github.com/imserver/imserver/im/wire"
	"github.com/imserver/imserver/store/memstore"
	"github.com/imserver/imserver/transport/httpapi"
)

// fileEnv is the API with Options.Files, a TCP socket for the messages
// carrying the files' URLs, and the files Service plugged into the
// im.Config as a host plugs it in; its clock is the test's.
type fileEnv struct {
	*usersEnv
	files *files.Service
	store *fullStore
	clock *fakeClock
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// fullStore is a files.Store whose disk fills up when the test says so.
type fullStore struct {
	*memstore.Files
	full atomic.Bool
}

func (s *fullStore) Create(ctx context.Context, m files.Meta, r io.Reader, max int64) (files.Meta, error) {
	if s.full.Load() {
		io.CopyN(io.Discard, r, 4096) // a partial write, then the disk is full
		return files.Meta{}, fmt.Errorf("localfiles: write %s: %w", m.ID, syscall.ENOSPC)
	}
	return s.Files.Create(ctx, m, r, max)
}

func (s *fullStore) count(t *testing.T) int {
	n := 0
	require.NoError(t, s.List(context.Background(), func(files.Meta) error { n++; return nil }))
	return n
}

func setupFiles(t *testing.T, svcCfg files.ServiceConfig, opts func(*httpapi.Options)) *fileEnv {
	t.Helper()
	clock := &fakeClock{now: time.Now()}
	st := &fullStore{Files: memstore.NewFiles()}
	svcCfg.Store, svcCfg.Now = st, clock.Now
	if svcCfg.UnreferencedTTL == 0 {
		svcCfg.UnreferencedTTL = time.Hour
	}
	svc, err := files.NewService(svcCfg)
	require.NoError(t, err)

	env := setupUsersWith(t, func(c *im.Config) {
		c.BeforeSend, c.AfterRecall = svc.BeforeSend, svc.AfterRecall
	}, func(o *httpapi.Options) {
		o.Files = svc
		if opts != nil {
			opts(o)
		}
	})
	return &fileEnv{usersEnv: env, files: svc, store: st, clock: clock}
}

// runSweeper runs the Service's sweeper every few milliseconds of real
// time until the test ends; the test moves the Service's clock.
func runSweeper(t *testing.T, svc *files.Service) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = svc.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

type uploaded struct {
	URL         string `json:"url"`
	FileID      string `json:"file_id"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
	Error       string `json:"error"`
}

// upload posts body as IM-iOS-SDK's IMFileManager does: raw bytes as
// application/octet-stream, with no token unless token is set. A body that
// is not a bytes.Reader is sent chunked, without Content-Length.
func (e *fileEnv) upload(t *testing.T, body io.Reader, token string) (int, http.Header, uploaded) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.hs.URL+"/upload", body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/octet-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.hs.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var u uploaded
	require.NoError(t, json.Unmarshal(raw, &u), "a bare JSON object: %s", raw)
	if resp.StatusCode == http.StatusOK {
		require.NotContains(t, string(raw), `"code"`, "not the envelope")
	} else {
		require.NotEmpty(t, u.Error, "%s", raw)
	}
	return resp.StatusCode, resp.Header, u
}

func (e *fileEnv) uploadOK(t *testing.T, content []byte, token string) uploaded {
	t.Helper()
	status, _, u := e.upload(t, bytes.NewReader(content), token)
	require.Equal(t, http.StatusOK, status, u.Error)
	return u
}

// get requests url with the given headers and returns the answer with its
// body read.
func get(t *testing.T, method, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// pngFile is a PNG signature followed by n bytes that differ along it.
func pngFile(n int) []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	for i := range n {
		b = append(b, byte(i*7+i/251))
	}
	return b
}

func (e *fileEnv) dialUser(t *testing.T, user, token string) *client.Client {
	t.Helper()
	c, err := e.dial(t, user, token)
	require.NoError(t, err)
	return c
}

// sendImage sends an image message carrying url as IM-iOS-SDK encodes
// IMImageMessageContent.
func sendImage(t *testing.T, c *client.Client, to, url string) (string, error) {
	t.Helper()
	content, err := json.Marshal(map[string]any{
		"url": url, "thumbnailUrl": "", "width": 640, "height": 480, "size": 1234,
		"format": "png", "localPath": "/var/mobile/x.png", "thumbnailPath": "",
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := c.Send(ctx, client.Outgoing{ReceiverID: to, Type: wire.ImageMessage, Content: content})
	if err != nil {
		return "", err
	}
	return ack.ServerMsgId, nil
}

// The SDK's flow end to end: an image uploaded without a token, sent in
// a message over the socket, downloaded by the receiver resumably: HEAD
// for the size, a GET broken off, then a ranged GET for the rest.
func TestFileSDKFlow(t *testing.T) {
	e := setupFiles(t, files.ServiceConfig{}, nil)
	alice, aliceToken := e.register(t, "alice", "Alice")
	bob, bobToken := e.register(t, "bob", "Bob")
	a := e.dialUser(t, alice, aliceToken)
	b := e.dialUser(t, bob, bobToken)

	content := pngFile(300 << 10)
	up := e.uploadOK(t, content, "")
	require.Regexp(t, `^http://127\.0\.0\.1:\d+/files/[0-9a-f]{32}\.png$`, up.URL)
	require.True(t, strings.HasSuffix(up.URL, "/files/"+up.FileID+".png"))
	require.Equal(t, int64(len(content)), up.Size)
	require.Equal(t, "image/png", up.ContentType)
	m, err := e.store.Stat(context.Background(), up.FileID)
	require.NoError(t, err)
	require.Empty(t, m.Owner, "an anonymous upload")

	_, err = sendImage(t, a, bob, up.URL)
	require.NoError(t, err)
	got := nextMessage(t, b)
	var img struct {
		URL string `json:"url"`
	}
	require.NoError(t, json.Unmarshal(got.Content, &img))
	require.Equal(t, up.URL, img.URL)
	m, err = e.store.Stat(context.Background(), up.FileID)
	require.NoError(t, err)
	require.Equal(t, int64(1), m.Refs)
	require.Equal(t, alice, m.Owner, "the first sender owns an anonymous upload")

	// HEAD for the size, as IMFileManager's resumable download starts.
	head, body := get(t, http.MethodHead, img.URL)
	require.Equal(t, http.StatusOK, head.StatusCode)
	require.Empty(t, body)
	require.Equal(t, strconv.Itoa(len(content)), head.Header.Get("Content-Length"))
	require.Equal(t, "bytes", head.Header.Get("Accept-Ranges"))
	require.Equal(t, "image/png", head.Header.Get("Content-Type"))
	require.Equal(t, "nosniff", head.Header.Get("X-Content-Type-Options"))
	require.Equal(t, "sandbox", head.Header.Get("Content-Security-Policy"))
	require.Empty(t, head.Header.Get("Content-Disposition"), "an image is shown inline")
	require.Equal(t, `"`+up.FileID+`"`, head.Header.Get("ETag"))
	require.Contains(t, head.Header.Get("Cache-Control"), "private")
	u, _ := url.Parse(img.URL)
	require.Equal(t, up.FileID+".png", u.Path[strings.LastIndexByte(u.Path, '/')+1:], "the SDK names the file after the last segment")

	// A first GET, broken off after some bytes.
	resp, err := http.Get(img.URL)
	require.NoError(t, err)
	part := make([]byte, 50_000)
	_, err = io.ReadFull(resp.Body, part)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, content[:len(part)], part)

	// The rest, from where it stopped.
	resp, rest := get(t, http.MethodGet, img.URL, "Range", fmt.Sprintf("bytes=%d-", len(part)))
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	require.Equal(t, fmt.Sprintf("bytes %d-%d/%d", len(part), len(content)-1, len(content)), resp.Header.Get("Content-Range"))
	require.Equal(t, strconv.Itoa(len(content)-len(part)), resp.Header.Get("Content-Length"))
	require.Equal(t, content, append(part, rest...))
}

// Uploads nobody sends are deleted after the TTL by the running sweeper;
// a referenced file stays until the only message referencing it is
// recalled, and then goes after the TTL too.
func TestFileSweeper(t *testing.T) {
	e := setupFiles(t, files.ServiceConfig{UnreferencedTTL: time.Hour, SweepInterval: 5 * time.Millisecond}, nil)
	runSweeper(t, e.files)
	alice, aliceToken := e.register(t, "alice", "Alice")
	bob, _ := e.register(t, "bob", "Bob")
	a := e.dialUser(t, alice, aliceToken)

	sent := e.uploadOK(t, pngFile(100), "")
	var orphans []uploaded
	for i := range 5 {
		orphans = append(orphans, e.uploadOK(t, []byte(fmt.Sprint("note ", i)), ""))
	}
	msgID, err := sendImage(t, a, bob, sent.URL)
	require.NoError(t, err)

	e.clock.Add(time.Hour - time.Minute)
	require.Never(t, func() bool { return e.store.count(t) != 6 }, 50*time.Millisecond, 5*time.Millisecond)
	e.clock.Add(time.Minute)
	require.Eventually(t, func() bool { return e.store.count(t) == 1 }, 10*time.Second, 5*time.Millisecond)
	for _, o := range orphans {
		resp, _ := get(t, http.MethodGet, o.URL)
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
	}
	resp, _ := get(t, http.MethodGet, sent.URL)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// A message may not reference a deleted file.
	_, err = sendImage(t, a, bob, orphans[0].URL)
	require.ErrorIs(t, err, im.ErrInvalidArgument)
	require.ErrorContains(t, err, "file does not exist")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, a.Recall(ctx, wire.SingleConversationID(alice, bob), msgID))
	e.clock.Add(time.Hour - time.Second)
	require.Never(t, func() bool { return e.store.count(t) != 1 }, 50*time.Millisecond, 5*time.Millisecond)
	e.clock.Add(time.Second)
	require.Eventually(t, func() bool { return e.store.count(t) == 0 }, 10*time.Second, 5*time.Millisecond)
	resp, _ = get(t, http.MethodGet, sent.URL)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// An upload with a token records its owner; a deleted account's files are
// released and swept, others' stay.
func TestFileOwnerAndAccountDeletion(t *testing.T) {
	e := setupFiles(t, files.ServiceConfig{UnreferencedTTL: time.Hour}, nil)
	carol, carolToken := e.register(t, "carol", "Carol")
	dave, daveToken := e.register(t, "dave", "Dave")
	c := e.dialUser(t, carol, carolToken)

	mine := e.uploadOK(t, pngFile(10), carolToken)
	theirs := e.uploadOK(t, pngFile(20), daveToken)
	m, err := e.store.Stat(context.Background(), mine.FileID)
	require.NoError(t, err)
	require.Equal(t, carol, m.Owner)
	m, _ = e.store.Stat(context.Background(), theirs.FileID)
	require.Equal(t, dave, m.Owner)
	_, err = sendImage(t, c, dave, mine.URL)
	require.NoError(t, err)
	_, err = sendImage(t, c, dave, theirs.URL)
	require.NoError(t, err)

	// An invalid token is refused, and nothing is stored.
	status, hdr, u := e.upload(t, bytes.NewReader(pngFile(10)), "not-a-token")
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, hdr.Get("WWW-Authenticate"), "Bearer")
	require.Equal(t, "authentication failed", u.Error)
	require.Equal(t, 2, e.store.count(t))

	ok(t, e.call(t, carolToken, http.MethodPost, "/api/auth/delete", `{"password":"password-carol"}`))
	m, _ = e.store.Stat(context.Background(), mine.FileID)
	require.Zero(t, m.Refs)
	e.clock.Add(time.Hour)
	n, err := e.files.Sweep(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	resp, _ := get(t, http.MethodGet, mine.URL)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = get(t, http.MethodGet, theirs.URL)
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// chunked hides a reader's length, so that the client sends it chunked.
type chunked struct{ io.Reader }

func TestFileBadInput(t *testing.T) {
	e := setupFiles(t, files.ServiceConfig{MaxSize: 64 << 10}, nil)
	up := e.uploadOK(t, pngFile(1000), "")

	// Over the limit: with Content-Length, refused before reading; without
	// (chunked), while reading. Nothing is kept either way.
	status, _, u := e.upload(t, bytes.NewReader(pngFile(64<<10)), "")
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
	require.Equal(t, "file is over 65536 bytes", u.Error)
	status, _, u = e.upload(t, chunked{bytes.NewReader(pngFile(200 << 10))}, "")
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
	require.Equal(t, "file is over 65536 bytes", u.Error)
	// Exactly the limit, chunked, is fine.
	status, _, _ = e.upload(t, chunked{bytes.NewReader(pngFile(64<<10 - 8))}, "")
	require.Equal(t, http.StatusOK, status)
	status, _, u = e.upload(t, bytes.NewReader(nil), "")
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, u.Error, "empty")
	require.Equal(t, 2, e.store.count(t))

	base := e.hs.URL
	name := up.FileID + ".png"
	for _, p := range []string{
		"/files/..", "/files/%2e%2e", "/files/../files/" + name, "/files/%2e%2e%2f" + name,
		"/files/" + up.FileID + "%00.png", "/files/" + name + "%00", "/files/%00",
		"/files//etc/passwd", "/files/%2Fetc%2Fpasswd", "/files/C:%5Cwindows%5Cwin.ini",
		"/files/CON", "/files/NUL", "/files/aux.png", "/files/COM1", "/files/LPT1.txt",
		"/files/" + up.FileID, "/files/" + up.FileID + ".jpg", "/files/" + strings.ToUpper(up.FileID) + ".png",
		"/files/" + files.NewID() + ".png", "/files/x/" + name, "/files/" + name + "/x",
	} {
		resp, _ := get(t, http.MethodGet, base+p)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, p)
		resp, _ = get(t, http.MethodHead, base+p)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, p)
	}

	resp, _ := get(t, http.MethodGet, up.URL, "Range", "bytes=5000-")
	require.Equal(t, http.StatusRequestedRangeNotSatisfiable, resp.StatusCode)
	require.Equal(t, "bytes */1008", resp.Header.Get("Content-Range"))
	resp, _ = get(t, http.MethodDelete, up.URL)
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	resp, _ = get(t, http.MethodGet, base+"/upload")
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	// The file is untouched.
	resp, b := get(t, http.MethodGet, up.URL)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, pngFile(1000), b)
}

// HTML, SVG, XML and script-like text are served as attachments, never
// rendered; plain text and media inline. Every download is sandboxed.
func TestFileActiveContent(t *testing.T) {
	e := setupFiles(t, files.ServiceConfig{}, nil)
	for _, tt := range []struct {
		content, ct string
		attach      bool
	}{
		{"<!DOCTYPE html><script>alert(document.cookie)</script>", "text/html; charset=utf-8", true},
		{`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`, "image/svg+xml", true},
		{`<?xml version="1.0"?><x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(1)</x:script>`, "text/xml; charset=utf-8", true},
		{"alert(1)", "text/plain; charset=utf-8", false},
		{string(pngFile(10)), "image/png", false},
	} {
		up := e.uploadOK(t, []byte(tt.content), "")
		resp, b := get(t, http.MethodGet, up.URL)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, tt.content, string(b))
		require.Equal(t, tt.ct, resp.Header.Get("Content-Type"))
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
		require.Equal(t, "sandbox", resp.Header.Get("Content-Security-Policy"))
		if tt.attach {
			_, ext, _ := files.ParseName(up.URL[strings.LastIndexByte(up.URL, '/')+1:])
			require.Equal(t, `attachment; filename=`+up.FileID+ext, resp.Header.Get("Content-Disposition"), tt.content)
		} else {
			require.Empty(t, resp.Header.Get("Content-Disposition"), tt.content)
		}
	}
}

func TestFileConditionalGet(t *testing.T) {
	e := setupFiles(t, files.ServiceConfig{}, nil)
	up := e.uploadOK(t, pngFile(100), "")
	resp, _ := get(t, http.MethodGet, up.URL)
	etag := resp.Header.Get("ETag")
	require.Equal(t, `"`+up.FileID+`"`, etag)
	require.NotEmpty(t, resp.Header.Get("Last-Modified"))
	resp, b := get(t, http.MethodGet, up.URL, "If-None-Match", etag)
	require.Equal(t, http.StatusNotModified, resp.StatusCode)
	require.Empty(t, b)
	resp, _ = get(t, http.MethodGet, up.URL, "If-None-Match", `"other"`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	// A range on a stale copy gets the whole file.
	resp, b = get(t, http.MethodGet, up.URL, "Range", "bytes=10-", "If-Range", `"other"`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, b, 108)
}

func TestFileUploadQuota(t *testing.T) {
	e := setupFiles(t, files.ServiceConfig{}, func(o *httpapi.Options) {
		o.FileLimits = httpapi.FileLimits{UploadsPerMinute: 3, UploadBytesPerHour: 1 << 20}
	})
	_, token := e.register(t, "alice", "Alice")
	for range 3 {
		e.uploadOK(t, pngFile(10), "")
	}
	status, hdr, u := e.upload(t, bytes.NewReader(pngFile(10)), "")
	require.Equal(t, http.StatusTooManyRequests, status)
	require.Equal(t, "too many uploads, try again later", u.Error)
	secs, err := strconv.Atoi(hdr.Get("Retry-After"))
	require.NoError(t, err)
	require.True(t, secs >= 1 && secs <= 20, secs)
	require.Equal(t, 3, e.store.count(t))

	// A user with a token has an allowance of her own; bytes count too.
	e.uploadOK(t, pngFile(900<<10), token)
	e.uploadOK(t, pngFile(200<<10), token) // starts within the quota, ends over it
	status, hdr, _ = e.upload(t, bytes.NewReader(pngFile(10)), token)
	require.Equal(t, http.StatusTooManyRequests, status)
	secs, err = strconv.Atoi(hdr.Get("Retry-After"))
	require.NoError(t, err)
	require.Greater(t, secs, 60, "the excess runs out over the hour")
	require.Equal(t, 5, e.store.count(t))
}

// A full disk fails the upload with 507, keeps nothing, and the server
// goes on serving.
func TestFileDiskFull(t *testing.T) {
	e := setupFiles(t, files.ServiceConfig{}, nil)
	before := e.uploadOK(t, pngFile(100), "")
	e.store.full.Store(true)
	status, _, u := e.upload(t, bytes.NewReader(pngFile(100<<10)), "")
	require.Equal(t, http.StatusInsufficientStorage, status)
	require.Equal(t, "the server's storage is full", u.Error)
	require.Equal(t, 1, e.store.count(t))
	require.Contains(t, e.logs.String(), "storage full")

	resp, _ := get(t, http.MethodGet, before.URL)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = get(t, http.MethodGet, e.hs.URL+"/health")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	e.store.full.Store(false)
	e.uploadOK(t, pngFile(100), "")
	require.Equal(t, 2, e.store.count(t))
}

func TestFileSignedURLs(t *testing.T) {
	key := []byte("signing-key-0123456789abcdefghijklmnop")
	e := setupFiles(t, files.ServiceConfig{}, func(o *httpapi.Options) {
		o.SignedURLs = &httpapi.SignedURLs{Key: key, TTL: time.Hour}
		o.FilesBaseURL = "http://im.example:8080/"
	})
	up := e.uploadOK(t, pngFile(100), "")
	require.Regexp(t, `^http://im\.example:8080/files/\d+-[0-9a-f]{32}/[0-9a-f]{32}\.png$`, up.URL)
	path := strings.TrimPrefix(up.URL, "http://im.example:8080")
	resp, b := get(t, http.MethodGet, e.hs.URL+path)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, pngFile(100), b)

	name := up.FileID + ".png"
	sign := func(exp int64) string {
		h := hmac.New(sha256.New, key)
		fmt.Fprintf(h, "%d\x00%s", exp, name)
		return fmt.Sprintf("%d-%s", exp, hex.EncodeToString(h.Sum(nil)[:16]))
	}
	require.Equal(t, path, "/files/"+sign(mustExp(t, path))+"/"+name, "the test signs as the server does")
	for _, p := range []string{
		"/files/" + name, // unsigned
		"/files/" + sign(time.Now().Add(-time.Second).Unix()) + "/" + name, // expired
		"/files/" + sign(time.Now().Add(time.Hour).Unix()) + "/" + up.FileID + ".jpg",
		"/files/" + sign(time.Now().Add(time.Hour).Unix())[:20] + "/" + name,
		"/files/0" + sign(mustExp(t, path)) + "/" + name,
	} {
		resp, _ := get(t, http.MethodGet, e.hs.URL+p)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, p)
	}
	// The signed URL references the file like any other.
	require.Equal(t, []string{up.FileID}, files.FilesInMessage(im.Message{Type: im.ImageMessage, Content: []byte(`{"url":"` + up.URL + `"}`)}))

	require.Panics(t, func() {
		httpapi.NewHandler(httpapi.Options{Files: e.files, SignedURLs: &httpapi.SignedURLs{Key: []byte("short"), TTL: time.Hour}})
	})
}

func mustExp(t *testing.T, path string) int64 {
	seg := strings.Split(path, "/")[2]
	exp, err := strconv.ParseInt(seg[:strings.IndexByte(seg, '-')], 10, 64)
	require.NoError(t, err)
	return exp
}

// File transfers outlast the http.Server's ReadTimeout while bytes move,
// and end when they stall for FileLimits.StallTimeout.
func TestFileTransferDeadlines(t *testing.T) {
	store := memstore.NewFiles()
	svc, err := files.NewService(files.ServiceConfig{Store: store})
	require.NoError(t, err)
	hs := httptest.NewUnstartedServer(httpapi.NewHandler(httpapi.Options{
		Files:      svc,
		FileLimits: httpapi.FileLimits{StallTimeout: 400 * time.Millisecond},
	}))
	hs.Config.ReadTimeout = 300 * time.Millisecond
	hs.Config.WriteTimeout = 300 * time.Millisecond
	hs.Start()
	t.Cleanup(hs.Close)

	// slowBody sends content in pieces, pausing before each.
	slowBody := func(content []byte, pieces int, pause func(i int) time.Duration) io.Reader {
		pr, pw := io.Pipe()
		done := make(chan struct{})
		t.Cleanup(func() { close(done) })
		go func() {
			step := len(content) / pieces
			for i := range pieces {
				select {
				case <-time.After(pause(i)):
				case <-done:
					pw.CloseWithError(io.ErrUnexpectedEOF)
					return
				}
				end := (i + 1) * step
				if i == pieces-1 {
					end = len(content)
				}
				if _, err := pw.Write(content[i*step : end]); err != nil {
					return
				}
			}
			pw.Close()
		}()
		return pr
	}
	post := func(body io.Reader) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodPost, hs.URL+"/upload", body)
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/octet-stream")
		return hs.Client().Do(req)
	}

	// 1 s of upload, a piece every 100 ms: three times the ReadTimeout.
	content := pngFile(200_000)
	resp, err := post(slowBody(content, 10, func(int) time.Duration { return 100 * time.Millisecond }))
	require.NoError(t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", raw)
	var u uploaded
	require.NoError(t, json.Unmarshal(raw, &u))
	got, body := get(t, http.MethodGet, u.URL)
	require.Equal(t, http.StatusOK, got.StatusCode)
	require.Equal(t, content, body)

	// A stall longer than StallTimeout ends the upload, and keeps nothing.
	resp, err = post(slowBody(content, 2, func(i int) time.Duration { return time.Duration(i) * 2 * time.Second }))
	if err == nil {
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NotEqual(t, http.StatusOK, resp.StatusCode, "%s", raw)
	}
	n := 0
	require.NoError(t, store.List(t.Context(), func(files.Meta) error { n++; return nil }))
	require.Equal(t, 1, n, "only the first upload is kept")
}
