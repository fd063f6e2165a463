package idleread_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/imserver/imserver/transport/internal/idleread"
)

func TestReadsWhatWasSent(t *testing.T) {
	client, server := pipe(t)
	want := make([]byte, 3*idleread.ChunkSize+100)
	for i := range want {
		want[i] = byte(i * 7)
	}
	go func() {
		// In pieces of odd sizes, so that reads end mid-chunk.
		for p := want; len(p) > 0; {
			n := min(len(p), 1000)
			if _, err := client.Write(p[:n]); err != nil {
				return
			}
			p = p[n:]
		}
		client.Close()
	}()
	r := idleread.New(server)
	var got bytes.Buffer
	buf := make([]byte, 700) // smaller than a chunk: reads go through chunks
	for {
		n, err := r.Read(buf)
		got.Write(buf[:n])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("read %d bytes, not the %d sent", got.Len(), len(want))
	}
	if r.Buffered() != 0 {
		t.Fatalf("Buffered() = %d after EOF", r.Buffered())
	}
}

func TestKeepsWhatIsLeftAndReleases(t *testing.T) {
	client, server := pipe(t)
	if _, err := client.Write([]byte("hello, world")); err != nil {
		t.Fatal(err)
	}
	r := idleread.New(server)
	buf := make([]byte, 5)
	if n, err := io.ReadFull(r, buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	// The rest came with the same read and waits in the chunk.
	if got := r.Buffered(); got != len(", world") {
		t.Fatalf("Buffered() = %d, want %d", got, len(", world"))
	}
	r.Release()
	if got := r.Buffered(); got != 0 {
		t.Fatalf("Buffered() = %d after Release", got)
	}
}

func TestDeadline(t *testing.T) {
	_, server := pipe(t)
	r := idleread.New(server)
	if err := server.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := r.Read(make([]byte, 16))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
}
