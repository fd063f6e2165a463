package localfiles_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/imserver/imserver/im/files"
	"github.com/imserver/imserver/store/localfiles"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "files")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	fs, err := localfiles.Open(dir, localfiles.Options{})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	m, err := fs.Create(ctx, files.Meta{
		ID:           files.NewID(),
		Ext:          ".txt",
		ContentType:  "text/plain; charset=utf-8",
		CreatedAt:    now,
		Unreferenced: now,
	}, strings.NewReader("hello, files"), 1<<20)
	if err != nil {
		log.Fatal(err)
	}

	f, stored, err := fs.Open(ctx, m.ID)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	f.Seek(7, io.SeekStart) // a download of the range 7-
	rest, err := io.ReadAll(f)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(stored.Size, stored.ContentType, string(rest))

	// Too large: nothing is kept.
	_, err = fs.Create(ctx, files.Meta{ID: files.NewID()}, strings.NewReader("0123456789"), 4)
	fmt.Println(err)
	// Output:
	// 12 text/plain; charset=utf-8 files
	// files: file too large: im: limit exceeded
}
