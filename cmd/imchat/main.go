// Command imchat is a small chat client for trying imserver from a shell,
// with nothing but Go: it connects as one user with im/client, prints the
// messages that user has and gets as lines, and sends what it is told to.
//
//	imchat -token T                     print what T's user has, then every message that arrives
//	imchat -token T -to U               the same, and send each line typed on stdin to user U
//	imchat -token T -group G -send hi   send one message to group G, print its acknowledgement, exit
//	imchat -token T -sync               print every message T's user has, exit
//
// The token comes from the server's login (POST /api/auth/login); the user id
// is read from it unless -user says otherwise. -addr is host:port for the
// framed TCP protocol, or a ws:// or wss:// URL for WebSocket; its default
// comes from IMCHAT_ADDR, or else localhost:8082.
//
// A message prints as
//
//	<conversation> seq <seq> from <sender>: <text>
//
// and an acknowledgement as "sent seq <seq> in <conversation>". imchat keeps
// no cursors, so each run starts by catching up on the user's whole history;
// an app keeps the last seq it holds per conversation and syncs from there.
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	var parseErr parseError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp), errors.Is(err, context.Canceled):
	case errors.As(err, &parseErr):
		os.Exit(2) // the flag package has said what is wrong
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "imchat:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "imchat:", err)
		os.Exit(1)
	}
}

// options are imchat's flags.
type options struct {
	addr, token, user string
	to, group         string
	send, id          string
	sync              bool
	n                 int
	timeout           time.Duration
}

// parseError is an error of the flag package, which has printed it with the
// usage already.
type parseError struct{ error }

func (e parseError) Unwrap() error { return e.error }

// errUsage marks a bad command line; the message says what is wrong.
var errUsage = errors.New("usage")

func parse(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("imchat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `imchat prints a user's messages and sends them.

  imchat -token T                     print T's messages, then each one that arrives
  imchat -token T -to U               the same, and send each line of stdin to user U
  imchat -token T -group G -send hi   send one message to group G and exit
  imchat -token T -sync               print T's messages and exit

`)
		fs.PrintDefaults()
	}
	addr := getenv("IMCHAT_ADDR")
	if addr == "" {
		addr = "localhost:8082"
	}
	fs.StringVar(&o.addr, "addr", addr, "server: host:port for TCP, or a ws:// or wss:// URL for WebSocket; IMCHAT_ADDR sets the default")
	fs.StringVar(&o.token, "token", "", "the user's token, from POST /api/auth/login (required)")
	fs.StringVar(&o.user, "user", "", "the user's id (default: the token's subject)")
	fs.StringVar(&o.to, "to", "", "send to this user")
	fs.StringVar(&o.group, "group", "", "send to this group")
	fs.StringVar(&o.send, "send", "", "send this one text, print the acknowledgement and exit")
	fs.StringVar(&o.id, "id", "", "the client_msg_id of the -send message (default random); the server stores a message sent twice with one id once")
	fs.BoolVar(&o.sync, "sync", false, "print every message the user has and exit")
	fs.IntVar(&o.n, "n", 0, "exit after printing this many messages (0: run until interrupted, or until stdin ends when sending)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "bound on connecting, each send and the sync")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, parseError{err}
	}
	bad := func(format string, a ...any) (options, error) {
		return o, fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...)
	}
	switch {
	case fs.NArg() > 0:
		return bad("unexpected argument %q", fs.Arg(0))
	case o.token == "":
		return bad("-token is required")
	case o.to != "" && o.group != "":
		return bad("-to and -group exclude each other")
	case o.send != "" && o.to == "" && o.group == "":
		return bad("-send needs -to or -group")
	case o.id != "" && o.send == "":
		return bad("-id goes with -send")
	case o.sync && o.send != "":
		return bad("-sync and -send exclude each other")
	case o.n < 0:
		return bad("-n must not be negative")
	case o.timeout <= 0:
		return bad("-timeout must be positive")
	}
	if o.user == "" {
		o.user = subject(o.token)
		if o.user == "" {
			return bad("the token is not a JWT with a subject; give -user")
		}
	}
	return o, nil
}

// subject is the "sub" claim of a JWT, read without checking the signature:
// the server checks the token, and it refuses a user id that does not match.
// It is "" for anything else.
func subject(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.Sub
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, err := parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	opts := client.Options{Addr: o.addr, UserID: o.user, Token: o.token, RequestTimeout: o.timeout}
	if strings.HasPrefix(o.addr, "ws://") || strings.HasPrefix(o.addr, "wss://") {
		opts.Transport = client.TransportWebSocket
	}
	dctx, cancel := context.WithTimeout(ctx, o.timeout)
	c, err := client.Dial(dctx, opts)
	cancel()
	if err != nil {
		return fmt.Errorf("connect to %s: %w", o.addr, err)
	}
	defer c.Close()

	out := outgoing(o)
	conv := out.ConversationID
	if conv == "" {
		conv = wire.SingleConversationID(o.user, out.ReceiverID)
	}
	if o.send != "" {
		out.Content, out.ClientMsgID = []byte(o.send), o.id
		return send(ctx, c, o.timeout, conv, out, stdout)
	}

	// Catch up first: a message sent before this client connected is in
	// the history, and one sent since arrives as a push; the client hands
	// each over once.
	printed := 0
	sctx, cancel := context.WithTimeout(ctx, o.timeout)
	missed, err := c.SyncAll(sctx)
	cancel()
	for _, m := range missed {
		if o.n > 0 && printed == o.n {
			return nil
		}
		printMessage(stdout, m)
		printed++
	}
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if o.sync || (o.n > 0 && printed == o.n) {
		return nil
	}

	lines := make(chan string)
	stdinDone := make(chan error, 1)
	if out.ConversationID != "" || out.ReceiverID != "" {
		go readLines(ctx, stdin, lines, stdinDone)
		fmt.Fprintf(stderr, "imchat: connected as %s; each line you type is sent\n", o.user)
	} else {
		fmt.Fprintf(stderr, "imchat: connected as %s; listening\n", o.user)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.Done():
			return c.Err()
		case err := <-stdinDone:
			return err
		case line := <-lines:
			out.Content = []byte(line)
			if err := send(ctx, c, o.timeout, conv, out, stdout); err != nil {
				// One refused message (too long, muted, …) does not end
				// the conversation.
				fmt.Fprintln(stderr, "imchat:", err)
			}
		case p := <-c.Pushes():
			pm, ok := p.Message.(*imv1.PushMessage)
			if !ok || pm.Message == nil {
				continue
			}
			printMessage(stdout, pm.Message)
			if printed++; o.n > 0 && printed == o.n {
				return nil
			}
		}
	}
}

// outgoing is the message template the flags describe: its destination.
func outgoing(o options) client.Outgoing {
	out := client.Outgoing{Type: wire.TextMessage}
	if o.group != "" {
		out.ConversationID = wire.GroupConversationID(o.group)
	} else {
		out.ReceiverID = o.to
	}
	return out
}

// send sends m to conv and prints the acknowledgement.
func send(ctx context.Context, c *client.Client, timeout time.Duration, conv string, m client.Outgoing, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ack, err := c.Send(ctx, m)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	fmt.Fprintf(stdout, "sent seq %d in %s\n", ack.Seq, conv)
	return nil
}

// readLines sends each non-empty line of r to lines until r ends (done gets
// nil) or fails, or ctx ends.
func readLines(ctx context.Context, r io.Reader, lines chan<- string, done chan<- error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		select {
		case lines <- line:
		case <-ctx.Done():
			return
		}
	}
	done <- sc.Err()
}

// typeNames name the message types a line shows in parentheses.
var typeNames = map[wire.MessageType]string{
	wire.ImageMessage:        "image",
	wire.AudioMessage:        "audio",
	wire.VideoMessage:        "video",
	wire.FileMessage:         "file",
	wire.LocationMessage:     "location",
	wire.CardMessage:         "card",
	wire.NotificationMessage: "notice",
	wire.CustomMessage:       "custom",
}

// printMessage prints m as one line. A text's content is printed as it is,
// on one line; any other type is named in parentheses, with its content if
// that is text (a notice's JSON, an image's URL) or its size if not.
func printMessage(w io.Writer, m *imv1.MessageInfo) {
	body := string(m.Content)
	printable := utf8.ValidString(body)
	body = strings.ReplaceAll(strings.ReplaceAll(body, "\r", `\r`), "\n", `\n`)
	t := wire.MessageType(m.MessageType)
	switch {
	case m.IsRevoked:
		body = "(recalled)"
	case t == wire.TextMessage && printable:
	case printable:
		body = fmt.Sprintf("(%s) %s", typeName(t), body)
	default:
		body = fmt.Sprintf("(%s, %d bytes)", typeName(t), len(m.Content))
	}
	fmt.Fprintf(w, "%s seq %d from %s: %s\n", m.ConversationId, m.Seq, m.SenderId, body)
}

func typeName(t wire.MessageType) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type %d", t)
}
