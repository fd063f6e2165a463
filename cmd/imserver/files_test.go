package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imv1"
)

// png returns n bytes that sniff as a PNG image.
func png(n int) []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	for i := range n {
		b = append(b, byte(i*7+i/251))
	}
	return b
}

type uploadAnswer struct {
	URL    string `json:"url"`
	FileID string `json:"file_id"`
}

// uploadAsSDK posts content as IM-iOS-SDK's IMFileManager does: raw bytes,
// application/octet-stream, no Authorization header.
func uploadAsSDK(t *testing.T, base string, content []byte) uploadAnswer {
	t.Helper()
	rsp, err := http.Post(base+"/upload", "application/octet-stream", bytes.NewReader(content))
	require.NoError(t, err)
	defer rsp.Body.Close()
	raw, err := io.ReadAll(rsp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, rsp.StatusCode, "%s", raw)
	var a uploadAnswer
	require.NoError(t, json.Unmarshal(raw, &a), "a bare JSON object: %s", raw)
	require.NotEmpty(t, a.URL)
	require.NotEmpty(t, a.FileID)
	return a
}

// storedFiles counts the regular files under dir but the lock files.
func storedFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	require.NoError(t, filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && d.Name() != ".lock" {
			n++
		}
		return err
	}))
	return n
}

// The SDK's file flow against the standalone server: an upload without a
// token, an image message carrying its URL, and a resumable download by
// the receiver (HEAD, a GET cut short, then the rest by Range); an upload
// nobody sends is swept, the sent one stays, across a restart too.
func TestFilesStandalone(t *testing.T) {
	dir := t.TempDir()
	logs := &syncBuffer{}
	l, stop := start(t, dir, logs, "-upload-ttl", "1s")
	base := "http://" + l.HTTP.String()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	login := func(name string) (client.Session, *client.Client) {
		api, err := client.NewAPI(base, client.APIOptions{})
		require.NoError(t, err)
		_, err = api.Register(ctx, name, "secret-"+name, name)
		require.NoError(t, err)
		s, err := api.Login(ctx, name, "secret-"+name, "iOS")
		require.NoError(t, err)
		c, err := client.Dial(ctx, client.Options{Addr: l.TCP.String(), UserID: s.UserID, Token: s.Token})
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return s, c
	}
	alice, aliceSock := login("alice")
	bob, bobSock := login("bobby")

	photo := png(300_000)
	sent := uploadAsSDK(t, base, photo)
	unsent := uploadAsSDK(t, base, png(1000))
	require.Regexp(t, `/files/[0-9a-f]{32}\.png$`, sent.URL)

	content, err := json.Marshal(map[string]any{"url": sent.URL, "width": 640, "height": 480, "size": len(photo), "format": "png"})
	require.NoError(t, err)
	_, err = aliceSock.Send(ctx, client.Outgoing{ReceiverID: bob.UserID, Type: im.ImageMessage, Content: content})
	require.NoError(t, err)
	for got := false; !got; {
		select {
		case p := <-bobSock.Pushes():
			pm, ok := p.Message.(*imv1.PushMessage)
			got = ok && pm.Message.SenderId == alice.UserID && bytes.Equal(pm.Message.Content, content)
		case <-ctx.Done():
			t.Fatal("bob got no image message")
		}
	}

	// HEAD for the size, as the SDK's resumable download starts.
	rsp, err := http.Head(sent.URL)
	require.NoError(t, err)
	rsp.Body.Close()
	require.Equal(t, http.StatusOK, rsp.StatusCode)
	require.Equal(t, strconv.Itoa(len(photo)), rsp.Header.Get("Content-Length"))
	require.Equal(t, "bytes", rsp.Header.Get("Accept-Ranges"))
	require.Equal(t, "image/png", rsp.Header.Get("Content-Type"))

	// A first GET, cut off after some bytes.
	rsp, err = http.Get(sent.URL)
	require.NoError(t, err)
	first := make([]byte, 70_000)
	_, err = io.ReadFull(rsp.Body, first)
	require.NoError(t, err)
	rsp.Body.Close()

	// The rest, by Range.
	req, err := http.NewRequest(http.MethodGet, sent.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", len(first)))
	rsp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	rest, err := io.ReadAll(rsp.Body)
	rsp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusPartialContent, rsp.StatusCode)
	require.Equal(t, photo, append(first, rest...))

	// The upload nobody sent goes after the TTL; the sent one stays.
	require.Eventually(t, func() bool {
		rsp, err := http.Get(unsent.URL)
		if err != nil {
			return false
		}
		rsp.Body.Close()
		return rsp.StatusCode == http.StatusNotFound
	}, 20*time.Second, 50*time.Millisecond, "the unsent upload was not swept")
	// The record goes first and the content after it, so the 404 can be
	// seen a moment before the content is gone.
	require.Eventually(t, func() bool { return storedFiles(t, filepath.Join(dir, "files")) == 2 },
		10*time.Second, 10*time.Millisecond, "the sent file's content and record, and nothing else")

	stop()
	l, _ = start(t, dir, logs, "-upload-ttl", "1s")
	url := "http://" + l.HTTP.String() + "/files/" + filepath.Base(sent.URL)
	rsp, err = http.Get(url)
	require.NoError(t, err)
	again, err := io.ReadAll(rsp.Body)
	rsp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, rsp.StatusCode)
	require.Equal(t, photo, again)
}

// A server taking uploads that no message ever references ends with an
// empty upload directory: a day of them, with the day shortened to a
// second of TTL.
func TestUnreferencedUploadsLeaveNothing(t *testing.T) {
	dir := t.TempDir()
	l, _ := start(t, dir, &syncBuffer{}, "-upload-ttl", "1s")
	base := "http://" + l.HTTP.String()
	for i := range 20 {
		uploadAsSDK(t, base, png(1000+i))
	}
	require.Positive(t, storedFiles(t, filepath.Join(dir, "files")))
	require.Eventually(t, func() bool { return storedFiles(t, filepath.Join(dir, "files")) == 0 },
		20*time.Second, 50*time.Millisecond, "uploads nobody sent are still on disk")
}
