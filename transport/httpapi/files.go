package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/files"
)

// Defaults of FileLimits fields.
const (
	DefaultUploadsPerMinute   = 30
	DefaultUploadBytesPerHour = 1 << 30 // 1 GiB
)

// FileLimits bound the uploads of one client: an IP address (an IPv6 /64)
// for anonymous uploads, a user for uploads with a token. Zero fields take
// the defaults; a negative one means unlimited.
type FileLimits struct {
	// StallTimeout ends an upload or a download that moves no byte for
	// this long. File transfers are not bounded by the http.Server's
	// ReadTimeout and WriteTimeout, which a large file on a slow link
	// outlasts; this bound and TransferTimeout take their place. Default
	// DefaultFileStallTimeout.
	StallTimeout time.Duration
	// TransferTimeout bounds a whole upload or download, however it
	// progresses. Default DefaultFileTransferTimeout.
	TransferTimeout time.Duration

	// UploadsPerMinute is how many uploads a client may start a minute,
	// in bursts of as many. Default DefaultUploadsPerMinute.
	UploadsPerMinute int
	// UploadBytesPerHour is how many bytes a client may upload an hour.
	// An upload that starts within the quota may end over it; the
	// client's next one waits until the excess has run out. Default
	// DefaultUploadBytesPerHour.
	UploadBytesPerHour int64
}

// SignedURLs makes file URLs expire: each carries an expiry and an HMAC of
// it and the file's name, and a download without a valid, unexpired
// signature is 404.
type SignedURLs struct {
	// Key signs the URLs; at least 32 bytes of secret. Changing it makes
	// every URL given so far invalid.
	Key []byte
	// TTL is how long a URL is valid after its upload.
	TTL time.Duration
}

// Defaults of FileLimits' timeouts.
const (
	DefaultFileStallTimeout    = 30 * time.Second
	DefaultFileTransferTimeout = time.Hour
)

// fileAPI is the file routes' state.
type fileAPI struct {
	stall, transfer time.Duration
	svc             *files.Service
	base            string // Options.FilesBaseURL without a trailing slash, or ""
	signed          *SignedURLs
	anon            *quotas
	users           *quotas
	cacheAge        int // seconds of Cache-Control max-age for downloads
}

func newFileAPI(opts Options) (*fileAPI, error) {
	l := opts.FileLimits
	if l.UploadsPerMinute == 0 {
		l.UploadsPerMinute = DefaultUploadsPerMinute
	}
	if l.UploadBytesPerHour == 0 {
		l.UploadBytesPerHour = DefaultUploadBytesPerHour
	}
	if l.StallTimeout <= 0 {
		l.StallTimeout = DefaultFileStallTimeout
	}
	if l.TransferTimeout <= 0 {
		l.TransferTimeout = DefaultFileTransferTimeout
	}
	f := &fileAPI{
		stall:    l.StallTimeout,
		transfer: l.TransferTimeout,
		svc:      opts.Files,
		base:     strings.TrimRight(opts.FilesBaseURL, "/"),
		anon:     newQuotas(l),
		users:    newQuotas(l),
		cacheAge: 365 * 24 * 3600,
	}
	if s := opts.SignedURLs; s != nil {
		if len(s.Key) < 32 || s.TTL <= 0 {
			return nil, errors.New("httpapi: SignedURLs needs a Key of at least 32 bytes and a positive TTL")
		}
		f.signed = s
		f.cacheAge = int(s.TTL / time.Second)
	}
	return f, nil
}

// handleFiles adds upload and download.
func (a *api) handleFiles(r *router) {
	r.handle(http.MethodPost, "/upload", a.serveUpload)
	r.handle(http.MethodGet, files.PathPrefix+"{name}", a.serveFile)
	r.handle(http.MethodGet, files.PathPrefix+"{sig}/{name}", a.serveFile)
}

// uploadJSON is the answer to an upload: IM-iOS-SDK's IMFileManager reads
// "url" and "file_id" from a bare object, not from the envelope.
type uploadJSON struct {
	URL         string `json:"url"`
	FileID      string `json:"file_id"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
}

// writeBare answers a file route with a bare JSON object, as the SDK's
// upload reads it; errors are {"error": "..."}.
func writeBare(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

func writeBareError(w http.ResponseWriter, status int, msg string) {
	writeBare(w, status, map[string]string{"error": msg})
}

func (a *api) serveUpload(w http.ResponseWriter, r *http.Request) {
	f := a.files
	owner := ""
	if r.Header.Get("Authorization") != "" {
		token, ok := bearerToken(r)
		if !ok || a.server == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="imserver", error="invalid_token"`)
			writeBareError(w, http.StatusUnauthorized, "authentication failed")
			return
		}
		id, err := a.server.Authenticate(r.Context(), token)
		if err != nil {
			if errors.Is(err, im.ErrUnauthenticated) || errors.Is(err, im.ErrTokenExpired) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="imserver", error="invalid_token"`)
				writeBareError(w, http.StatusUnauthorized, "authentication failed")
				return
			}
			a.log.ErrorContext(r.Context(), "httpapi: upload: authentication failed", "err", err)
			writeBareError(w, http.StatusInternalServerError, "internal error")
			return
		}
		owner = id.UserID
	}
	q, key := f.anon, clientKey(r)
	if owner != "" {
		q, key = f.users, owner
	}
	max := f.svc.MaxSize()
	if r.ContentLength > max {
		// Refused before reading; the server closes the connection
		// rather than read what it will not keep.
		w.Header().Set("Connection", "close")
		writeBareError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("file is over %d bytes", max))
		return
	}
	now := time.Now()
	if wait, ok := q.start(key, now); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		writeBareError(w, http.StatusTooManyRequests, "too many uploads, try again later")
		return
	}
	// The same bound for a body with and without Content-Length (chunked):
	// MaxBytesReader stops at it and closes the connection after.
	body := &countingReader{r: http.MaxBytesReader(w, r.Body, max), deadline: f.deadlines(w)}
	m, err := f.svc.Upload(r.Context(), body, owner)
	// The answer is written after the whole upload, which the server's
	// WriteTimeout, counted from the request's start, does not allow for.
	body.deadline(false)
	// What was read counts, kept or not.
	q.charge(key, body.n, time.Now())
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
	case errors.As(err, &tooLarge), errors.Is(err, files.ErrTooLarge):
		writeBareError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("file is over %d bytes", max))
		return
	case errors.Is(err, files.ErrEmpty):
		writeBareError(w, http.StatusBadRequest, "the body is empty: send the file's bytes")
		return
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, im.ErrStorageFull):
		a.log.ErrorContext(r.Context(), "httpapi: upload: storage full", "err", err)
		writeBareError(w, http.StatusInsufficientStorage, "the server's storage is full")
		return
	default:
		if r.Context().Err() != nil {
			// The client went away mid-upload; nobody reads the answer.
			writeBareError(w, http.StatusBadRequest, "upload interrupted")
			return
		}
		a.log.ErrorContext(r.Context(), "httpapi: upload failed", "err", err)
		writeBareError(w, http.StatusInternalServerError, "internal error")
		return
	}
	a.log.InfoContext(r.Context(), "httpapi: file uploaded", "file", m.ID, "size", m.Size, "type", m.ContentType, "owner", m.Owner)
	writeBare(w, http.StatusOK, uploadJSON{URL: f.urlOf(r, m), FileID: m.ID, Size: m.Size, ContentType: m.ContentType})
}

// urlOf is the absolute URL of file m: FilesBaseURL, or else the scheme and
// Host of request r (X-Forwarded-* headers are not trusted), with the file's
// path, signed if URLs are.
func (f *fileAPI) urlOf(r *http.Request, m files.Meta) string {
	base := f.base
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	name := m.ID + m.Ext
	if f.signed != nil {
		exp := time.Now().Add(f.signed.TTL).Unix()
		return base + files.PathPrefix + f.signature(exp, name) + "/" + name
	}
	return base + files.PathPrefix + name
}

// signature is the path segment that signs name until exp (Unix seconds):
// "<exp>-<hex of the first 16 bytes of HMAC-SHA256(exp, name)>". It is a
// path segment, not a query, so that the URL's last segment stays the
// file's name, which IM-iOS-SDK names the downloaded file after.
func (f *fileAPI) signature(exp int64, name string) string {
	e := strconv.FormatInt(exp, 10)
	return e + "-" + f.mac(e, name)
}

func (f *fileAPI) mac(exp, name string) string {
	h := hmac.New(sha256.New, f.signed.Key)
	h.Write([]byte(exp))
	h.Write([]byte{0})
	h.Write([]byte(name))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// validSignature reports whether sig signs name and has not expired.
func (f *fileAPI) validSignature(sig, name string, now time.Time) bool {
	e, mac, ok := strings.Cut(sig, "-")
	if !ok {
		return false
	}
	exp, err := strconv.ParseInt(e, 10, 64)
	if err != nil || strconv.FormatInt(exp, 10) != e || now.Unix() > exp {
		return false
	}
	return hmac.Equal([]byte(mac), []byte(f.mac(e, name)))
}

func notFound(w http.ResponseWriter) {
	writeEnvelope(w, http.StatusNotFound, codeNotFound, "not found", nil)
}

// serveFile serves a download. The name must be exactly a file's id and
// extension; anything else (a path, "..", a NUL, a device name) is 404,
// as is an unknown or deleted file, and a missing or bad signature when
// URLs are signed.
func (a *api) serveFile(w http.ResponseWriter, r *http.Request) {
	f := a.files
	name := r.PathValue("name")
	id, ext, ok := files.ParseName(name)
	if !ok {
		notFound(w)
		return
	}
	sig := r.PathValue("sig")
	if (f.signed != nil) != (sig != "") || (sig != "" && !f.validSignature(sig, name, time.Now())) {
		notFound(w)
		return
	}
	content, m, err := f.svc.Open(r.Context(), id)
	if err != nil {
		if !errors.Is(err, im.ErrNotFound) && !errors.Is(err, im.ErrInvalidArgument) {
			a.log.ErrorContext(r.Context(), "httpapi: download failed", "file", id, "err", err)
			writeEnvelope(w, http.StatusInternalServerError, codeInternal, "internal error", nil)
			return
		}
		notFound(w)
		return
	}
	defer content.Close()
	if m.Ext != ext {
		notFound(w)
		return
	}
	h := w.Header()
	h.Set("Content-Type", m.ContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	// Nothing served here is a page of this origin: no script runs,
	// even in content a browser would render.
	h.Set("Content-Security-Policy", "sandbox")
	h.Set("Cache-Control", "private, max-age="+strconv.Itoa(f.cacheAge)+", immutable")
	// The id names one content for good: a strong validator.
	h.Set("ETag", `"`+m.ID+`"`)
	if active(m.ContentType) {
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	}
	http.ServeContent(&deadlineWriter{ResponseWriter: w, deadline: f.deadlines(w)}, r, name, m.CreatedAt, content)
}

// deadlines returns a function that moves the deadline of w's connection,
// for reading (read true) or writing, to StallTimeout from now, but never
// past TransferTimeout from the call to deadlines: a transfer goes on as
// long as bytes move, within its bound. Where the connection does not
// support deadlines (a host's own server, HTTP/2 in some setups), it does
// nothing.
func (f *fileAPI) deadlines(w http.ResponseWriter) func(read bool) {
	rc := http.NewResponseController(w)
	end := time.Now().Add(f.transfer)
	return func(read bool) {
		d := time.Now().Add(f.stall)
		if d.After(end) {
			d = end
		}
		if read {
			_ = rc.SetReadDeadline(d)
		} else {
			_ = rc.SetWriteDeadline(d)
		}
	}
}

// deadlineWriter moves the write deadline before each write of a
// download. Its ReadFrom keeps the connection's own (sendfile on Linux),
// in chunks, each with its deadline.
type deadlineWriter struct {
	http.ResponseWriter
	deadline func(read bool)
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.deadline(false)
	return d.ResponseWriter.Write(p)
}

// fileChunk is how much of a download one deadline covers.
const fileChunk = 1 << 20

func (d *deadlineWriter) ReadFrom(src io.Reader) (int64, error) {
	rf, ok := d.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(struct{ io.Writer }{d}, src)
	}
	var total int64
	for {
		d.deadline(false)
		n, err := rf.ReadFrom(io.LimitReader(src, fileChunk))
		total += n
		if err != nil || n < fileChunk {
			return total, err
		}
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// active reports whether a browser may run content of type ct (HTML, SVG,
// XML, JavaScript, and any text but plain text): such files are served as
// attachments, downloaded and never shown.
func active(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return true
	}
	switch {
	case mt == "text/plain":
		return false
	case strings.HasPrefix(mt, "text/"),
		mt == "image/svg+xml",
		strings.HasSuffix(mt, "/xml"), strings.HasSuffix(mt, "+xml"),
		strings.Contains(mt, "javascript"), strings.Contains(mt, "ecmascript"),
		strings.Contains(mt, "html"):
		return true
	}
	return false
}

// cleanFilePaths answers 404 for a file path that is not in canonical form
// ("/files/../x", "/files//x"), which ServeMux would otherwise redirect to
// its cleaned form.
func cleanFilePaths(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasPrefix(p, files.PathPrefix) && (path.Clean(p) != p || strings.ContainsRune(p, 0)) {
			notFound(w)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// countingReader counts the bytes read through it, moving the read
// deadline before each read.
type countingReader struct {
	r        io.Reader
	n        int64
	deadline func(read bool)
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.deadline(true)
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// clientKey is the client an anonymous upload counts against: its IP
// address, an IPv6 one's /64, which one host or home network usually
// holds whole. Forwarding headers are not trusted (see clientContext).
func clientKey(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	addr := ap.Addr().Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// quotas are the upload allowances of clients: two token buckets each, one
// of uploads and one of bytes.
type quotas struct {
	limits FileLimits
	mu     sync.Mutex
	m      map[string]*quota
}

type quota struct {
	uploads float64 // uploads left
	bytes   float64 // bytes left; below 0 after an upload over it
	at      time.Time
}

// maxQuotaClients bounds the clients remembered: beyond it, those whose
// allowance is whole again are forgotten (they lose nothing).
const maxQuotaClients = 10000

func newQuotas(l FileLimits) *quotas {
	return &quotas{limits: l, m: map[string]*quota{}}
}

// refill brings q up to now and returns it.
func (qs *quotas) refill(key string, now time.Time) *quota {
	l := qs.limits
	q := qs.m[key]
	if q == nil {
		if len(qs.m) >= maxQuotaClients {
			for k, o := range qs.m {
				qs.refillQuota(o, now)
				if (l.UploadsPerMinute < 0 || o.uploads >= float64(l.UploadsPerMinute)) && (l.UploadBytesPerHour < 0 || o.bytes >= float64(l.UploadBytesPerHour)) {
					delete(qs.m, k)
				}
			}
		}
		q = &quota{uploads: float64(l.UploadsPerMinute), bytes: float64(l.UploadBytesPerHour), at: now}
		qs.m[key] = q
	}
	qs.refillQuota(q, now)
	return q
}

func (qs *quotas) refillQuota(q *quota, now time.Time) {
	l := qs.limits
	d := now.Sub(q.at)
	if d <= 0 {
		return
	}
	q.at = now
	if l.UploadsPerMinute > 0 {
		q.uploads = min(float64(l.UploadsPerMinute), q.uploads+d.Minutes()*float64(l.UploadsPerMinute))
	}
	if l.UploadBytesPerHour > 0 {
		q.bytes = min(float64(l.UploadBytesPerHour), q.bytes+d.Hours()*float64(l.UploadBytesPerHour))
	}
}

// start takes one upload from key's allowance, or says how long to wait.
func (qs *quotas) start(key string, now time.Time) (time.Duration, bool) {
	l := qs.limits
	if l.UploadsPerMinute < 0 && l.UploadBytesPerHour < 0 {
		return 0, true
	}
	qs.mu.Lock()
	defer qs.mu.Unlock()
	q := qs.refill(key, now)
	var wait time.Duration
	if l.UploadsPerMinute > 0 && q.uploads < 1 {
		wait = max(wait, time.Duration((1-q.uploads)/float64(l.UploadsPerMinute)*float64(time.Minute)))
	}
	if l.UploadBytesPerHour > 0 && q.bytes <= 0 {
		wait = max(wait, time.Duration((1-q.bytes)/float64(l.UploadBytesPerHour)*float64(time.Hour)))
	}
	if wait > 0 {
		return wait, false
	}
	if l.UploadsPerMinute > 0 {
		q.uploads--
	}
	return 0, true
}

// charge takes n uploaded bytes from key's allowance.
func (qs *quotas) charge(key string, n int64, now time.Time) {
	if qs.limits.UploadBytesPerHour <= 0 || n <= 0 {
		return
	}
	qs.mu.Lock()
	defer qs.mu.Unlock()
	qs.refill(key, now).bytes -= float64(n)
}
