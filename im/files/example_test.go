package files_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/files"
	"github.com/imserver/imserver/store/memstore"
)

// A host plugs the Service in beside its im.Server: BeforeSend counts the
// files a message references before it is stored, AfterRecall releases
// them, and Run (here one Sweep) deletes the files nobody references.
func Example() {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	svc, err := files.NewService(files.ServiceConfig{
		Store:           memstore.NewFiles(), // store/localfiles in production
		UnreferencedTTL: time.Hour,
		Now:             func() time.Time { return now },
	})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := im.NewServer(im.Config{
		Store: memstore.New(),
		Authenticator: im.AuthenticatorFunc(func(context.Context, string) (im.Identity, error) {
			return im.Identity{}, im.ErrUnauthenticated
		}),
		BeforeSend:  svc.BeforeSend,
		AfterRecall: svc.AfterRecall,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()

	// Two uploads, as POST /upload makes them; the type is sniffed.
	photo, err := svc.Upload(ctx, bytes.NewReader([]byte("\x89PNG\r\n\x1a\n...")), "")
	if err != nil {
		log.Fatal(err)
	}
	unsent, err := svc.Upload(ctx, bytes.NewReader([]byte("%PDF-1.7 ...")), "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(photo.ContentType, photo.Ext, unsent.ContentType, unsent.Ext)

	// An image message carrying the photo's URL keeps it alive.
	content := fmt.Sprintf(`{"url":"https://im.example%s"}`, files.URLPath(photo))
	if _, err := srv.SendMessage(ctx, im.SendRequest{SenderID: "alice", ReceiverID: "bob", Type: im.ImageMessage, Content: []byte(content)}); err != nil {
		log.Fatal(err)
	}

	now = now.Add(2 * time.Hour)
	swept, err := svc.Sweep(ctx)
	if err != nil {
		log.Fatal(err)
	}
	f, _, err := svc.Open(ctx, photo.ID)
	if err == nil {
		f.Close()
	}
	fmt.Println("swept:", swept, "photo kept:", err == nil)
	// Output:
	// image/png .png application/pdf .pdf
	// swept: 1 photo kept: true
}
