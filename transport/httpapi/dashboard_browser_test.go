package httpapi_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/client"
	"github.com/imserver/imserver/im/imv1"
	"github.com/imserver/imserver/im/wire"
)

// browserErrors collects what a page reports as going wrong: uncaught
// exceptions, console.error calls and the browser's own error log
// (a script or style the CSP refused, a file that failed to load).
type browserErrors struct {
	mu   sync.Mutex
	errs []string
	// allow401 lets the browser log answers 401, which the wrong-token
	// login gets on purpose.
	allow401 bool
}

func (b *browserErrors) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		b.errs = append(b.errs, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			b.errs = append(b.errs, "console."+string(ev.Type)+": "+strings.Join(args, " "))
		}
	case *log.EventEntryAdded:
		en := ev.Entry
		if en.Level != log.EntryLevelError {
			return
		}
		if b.allow401 && en.Source == log.EntrySourceNetwork && strings.Contains(en.Text, "401") {
			return
		}
		b.errs = append(b.errs, fmt.Sprintf("browser log (%s): %s %s", en.Source, en.Text, en.URL))
	}
}

func (b *browserErrors) check(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Empty(t, b.errs, "the page reported errors")
}

// waitSystemMessage waits for a system message to userID on c, passing over
// other pushes.
func waitSystemMessage(t *testing.T, c *client.Client, userID, content string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case p := <-c.Pushes():
			pm, isMsg := p.Message.(*imv1.PushMessage)
			if !isMsg || pm.Message.ConversationId != im.SystemConversationID(userID) {
				continue
			}
			require.Equal(t, content, string(pm.Message.Content))
			return
		case <-deadline:
			t.Fatalf("no system message %q to %s within 10 s", content, userID)
		}
	}
}

// The dashboard in a real browser (headless Chromium, IM_TEST_CHROMIUM)
// against a real server: log in through the form, watch the figures and
// charts follow real clients, kick with the buttons, send a system message
// and a broadcast through the forms; the page must report no error. A
// full-page screenshot is left in IM_TEST_ARTIFACTS (or the test's
// temporary directory) as dashboard.png.
func TestDashboardInBrowser(t *testing.T) {
	chromium := os.Getenv("IM_TEST_CHROMIUM")
	if chromium == "" {
		t.Skip("IM_TEST_CHROMIUM is not set: set it to a Chromium or Chrome binary (IM_TEST_CHROMIUM=/usr/bin/chromium) to test the dashboard in a browser")
	}
	artifacts := os.Getenv("IM_TEST_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	} else {
		require.NoError(t, os.MkdirAll(artifacts, 0o755))
	}

	// Sampled every 250 ms, so that the charts move within the test.
	e := setupAdminSampling(t, 250*time.Millisecond)
	alice, aTok := e.register(t, "alice", "Alice")
	bob, bTok := e.register(t, "bobby", "Bobby")
	carol, cTok := e.register(t, "carol", "Carol")
	aliceIOS := e.dialAs(t, alice, aTok, "iOS")
	aliceAndroid := e.dialAs(t, alice, aTok, "Android")
	bobWeb := e.dialAs(t, bob, bTok, "web")
	carolMac := e.dialAs(t, carol, cTok, "macOS")
	require.Eventually(t, func() bool { return e.server.Stats().Sessions == 4 }, 10*time.Second, 10*time.Millisecond)

	errs := &browserErrors{allow401: true}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(errs.listen), chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelTab)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancel)
	do := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx, actions...))
	}
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		require.NoError(t, err, js)
		return s
	}
	// until waits, in the page, for a JavaScript condition.
	until := func(js string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
		require.NoError(t, err, "waiting for %s", js)
	}
	text := func(sel string) string {
		t.Helper()
		return eval(`document.querySelector(` + jsString(sel) + `).textContent`)
	}

	// The page loads without the token and asks for it.
	do(chromedp.EmulateViewport(1280, 800), chromedp.Navigate(e.hs.URL+"/admin"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	require.Equal(t, "imserver dashboard", eval(`document.title`))

	// A wrong token is refused, with a clear error, and not kept.
	do(chromedp.SendKeys(chromedp.CSS("#token"), "not-the-admin-token-0123456789abcdef"), chromedp.Click(chromedp.CSS("#login-form button")))
	until(`!document.querySelector('#login-error').hidden`)
	require.Contains(t, text("#login-error"), "Wrong admin token")
	require.Equal(t, "true", eval(`String(document.querySelector('#app').hidden)`))
	require.Equal(t, "", eval(`sessionStorage.getItem('imserver-admin-token') || ''`))
	errs.check(t)

	// The right one opens the dashboard, which shows the server's figures.
	eval(`document.querySelector('#token').value = ''`)
	do(chromedp.SendKeys(chromedp.CSS("#token"), adminToken), chromedp.Click(chromedp.CSS("#login-form button")))
	do(chromedp.WaitVisible(chromedp.CSS("#app")))
	require.Equal(t, adminToken, eval(`sessionStorage.getItem('imserver-admin-token')`))
	until(`document.querySelector('#fig-sessions').textContent === '4'`)
	require.Equal(t, "4", text("#fig-connections"))
	require.Equal(t, "3", text("#fig-online"))
	until(`document.querySelectorAll('#sessions tr[data-session]').length === 4`)
	require.Contains(t, text("#users-count"), "3 users, 4 sessions")
	for _, platform := range []string{"iOS", "Android", "web", "macOS"} {
		require.Contains(t, text("#sessions"), platform)
	}
	require.Contains(t, text("#store-figures"), "Store panics")
	require.Contains(t, text("#store-figures"), "Corrupt reads")
	errs.check(t)

	// Traffic: the counters and the charts follow it.
	stop := make(chan struct{})
	var senders sync.WaitGroup
	var sent sync.Map
	send := func(c *client.Client, to string, every time.Duration) {
		senders.Add(1)
		go func() {
			defer senders.Done()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for i := 0; ; i++ {
				// Bursts of a few messages, so that the rates vary.
				for range 1 + i%4 {
					if _, err := c.Send(context.Background(), client.Outgoing{ReceiverID: to, Type: wire.TextMessage, Content: []byte("hello")}); err != nil {
						sent.Store(err.Error(), true)
						return
					}
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
	}
	send(carolMac, bob, 150*time.Millisecond)
	send(bobWeb, carol, 400*time.Millisecond)
	pointsBefore := eval(`document.querySelector('#chart-traffic').dataset.points`)
	until(`Number(document.querySelector('#chart-traffic').dataset.max) > 1`)
	until(`Number(document.querySelector('#fig-stored').textContent.replace(/,/g, '')) >= 20`)
	until(`Number(document.querySelector('#chart-conns').dataset.points) > ` + pointsBefore + ` + 10`)
	require.Equal(t, "[4,4,3]", eval(`document.querySelector('#chart-conns').dataset.last`))
	// A few more seconds of traffic for the screenshot, then quiet.
	until(`Number(document.querySelector('#chart-conns').dataset.points) > ` + pointsBefore + ` + 30`)
	close(stop)
	senders.Wait()
	sent.Range(func(k, _ any) bool { t.Errorf("send: %v", k); return true })
	require.NotEqual(t, "0", text("tr[data-figure=Commits] td:last-child"))

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	shotPath := filepath.Join(artifacts, "dashboard.png")
	require.NoError(t, os.WriteFile(shotPath, shot, 0o644))
	t.Logf("dashboard screenshot: %s", shotPath)
	errs.check(t)

	// Kick one session with its button: gone from the page and the Server.
	androidID := ""
	for _, s := range e.server.Sessions(alice) {
		if s.Platform == "Android" {
			androidID = s.ID
		}
	}
	require.NotEmpty(t, androidID)
	do(chromedp.Click(chromedp.CSS(`tr[data-session="` + androidID + `"] button.kick-session`)))
	waitKicked(t, aliceAndroid)
	until(`!document.querySelector('tr[data-session="` + androidID + `"]')`)
	require.Contains(t, text("#kick-result"), "Kicked session "+androidID)
	require.Len(t, e.server.Sessions(alice), 1, "alice's other session stays")

	// Kick a user with the button: every session of theirs.
	do(chromedp.Click(chromedp.CSS(`tr[data-user="` + bob + `"] button.kick-user`)))
	waitKicked(t, bobWeb)
	until(`!document.querySelector('tr[data-user="` + bob + `"]')`)
	require.Empty(t, e.server.Sessions(bob))
	until(`document.querySelector('#fig-sessions').textContent === '2'`)

	// A system message through the form reaches the user's client.
	do(
		chromedp.SendKeys(chromedp.CSS("#message-user"), alice),
		chromedp.SendKeys(chromedp.CSS("#message-content"), "maintenance at noon"),
		chromedp.Click(chromedp.CSS("#message-form button")),
	)
	until(`document.querySelector('#message-result').className === 'result ok'`)
	require.Contains(t, text("#message-result"), "Sent to "+alice)
	waitSystemMessage(t, aliceIOS, alice, "maintenance at noon")

	// A refused one says why, and sends nothing.
	do(
		chromedp.SendKeys(chromedp.CSS("#message-user"), strings.Repeat("x", 200)),
		chromedp.SendKeys(chromedp.CSS("#message-content"), "hello"),
		chromedp.Click(chromedp.CSS("#message-form button")),
	)
	until(`document.querySelector('#message-result').className === 'result fail'`)
	require.Contains(t, text("#message-result"), "Not sent: user id is not valid")

	// A broadcast through its form reaches everyone online.
	do(
		chromedp.SendKeys(chromedp.CSS("#broadcast-content"), "restart at one"),
		chromedp.Click(chromedp.CSS("#broadcast-confirm")),
		chromedp.Click(chromedp.CSS("#broadcast-form button")),
	)
	until(`document.querySelector('#broadcast-result').className === 'result ok'`)
	require.Contains(t, text("#broadcast-result"), "Sent to 2 online users")
	waitSystemMessage(t, aliceIOS, alice, "restart at one")
	waitSystemMessage(t, carolMac, carol, "restart at one")

	// Logging out forgets the token.
	do(chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	require.Equal(t, "", eval(`sessionStorage.getItem('imserver-admin-token') || ''`))

	// A kept token the server no longer takes leads back to the form.
	eval(`sessionStorage.setItem('imserver-admin-token', 'an-old-token-0123456789abcdefghijklmnop'); 'ok'`)
	do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#login-error")))
	require.Contains(t, text("#login-error"), "no longer accepts the admin token")
	require.Equal(t, "", eval(`sessionStorage.getItem('imserver-admin-token') || ''`))
	errs.check(t)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
