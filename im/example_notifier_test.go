package im_test

import (
	"context"
	"fmt"
	"log"
	"sync"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/memstore"
)

// pushService stands for an APNs or FCM client: the host's table of device
// tokens and its connection to the push service.
type pushService struct {
	devices map[string]string // user id → device token

	mu   sync.Mutex
	sent []string
}

// Notify turns a notification into a push. A real one would POST to APNs
// or FCM with ctx, which ends when the IM server closes; one that may be
// slow hands the push to its own senders and returns, since the server
// calls it on a few goroutines only.
func (p *pushService) Notify(ctx context.Context, n im.Notification) error {
	token, ok := p.devices[n.UserID]
	if !ok {
		return nil // no device registered: nothing to push
	}
	var alert string
	switch {
	case n.Recalled, n.Muted:
		// Silent: a recall replaces what was shown for the message (send
		// it with the same apns-collapse-id or FCM tag, n.ServerID); a
		// muted conversation updates the badge only.
	case n.Preview:
		alert = n.SenderID + ": " + string(n.Content)
	default:
		alert = "New message from " + n.SenderID
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = append(p.sent, fmt.Sprintf("to %s: %q, badge %d", token, alert, n.Badge))
	return nil
}

// An offline push: users without a session on the server are told of new
// messages through the host's push service.
func ExampleNotifier() {
	push := &pushService{devices: map[string]string{"bob": "apns-token-of-bob"}}
	srv, err := im.NewServer(im.Config{
		Store: memstore.New(),
		Authenticator: im.AuthenticatorFunc(func(context.Context, string) (im.Identity, error) {
			return im.Identity{}, im.ErrUnauthenticated
		}),
		Notifier:      push,
		NotifyPreview: true, // the content may go to the push service
	})
	if err != nil {
		log.Fatal(err)
	}

	// Bob is not connected.
	ctx := context.Background()
	if _, err := srv.SendMessage(ctx, im.SendRequest{SenderID: "alice", ReceiverID: "bob", Type: im.TextMessage, Content: []byte("lunch at noon?")}); err != nil {
		log.Fatal(err)
	}
	// Shutdown hands the notifications still queued to the Notifier.
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	for _, s := range push.sent {
		fmt.Println(s)
	}
	// Output:
	// to apns-token-of-bob: "alice: lunch at noon?", badge 1
}
