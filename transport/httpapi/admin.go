package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/imserver/imserver/im"
)

// MinAdminTokenLen is the shortest Options.AdminToken NewHandler accepts,
// in bytes: 32 random bytes, or a longer passphrase, is beyond guessing
// even at the rate an attacker can send requests.
const MinAdminTokenLen = 32

// Admin API bounds; see the package documentation.
const (
	// AdminBroadcastInterval is how long after a broadcast the next one is
	// refused (HTTP 429): a broadcast writes one message per online
	// user, so a slip of a script must not flood everyone.
	AdminBroadcastInterval = 10 * time.Second
	// adminDefaultPage and adminMaxPage bound GET /admin/api/sessions.
	adminDefaultPage = 100
	adminMaxPage     = 1000
	// adminKickReason is what a kicked client is told.
	adminKickReason = "disconnected by the server's operator"
)

// adminAPI serves /admin/api/.
type adminAPI struct {
	*api
	token   []byte
	history *history

	mu            sync.Mutex
	lastBroadcast time.Time // when the last accepted broadcast started
}

// checkAdminOptions refuses an admin token NewHandler cannot serve safely.
func checkAdminOptions(opts Options) error {
	if opts.AdminToken == "" {
		return nil
	}
	if len(opts.AdminToken) < MinAdminTokenLen {
		return fmt.Errorf("httpapi: Options.AdminToken is %d bytes; it must be at least %d", len(opts.AdminToken), MinAdminTokenLen)
	}
	if opts.Server == nil {
		return errors.New("httpapi: Options.AdminToken needs Options.Server")
	}
	return nil
}

func (a *api) handleAdmin(r *router, token string, historyEvery time.Duration) {
	ad := &adminAPI{api: a, token: []byte(token), history: startHistory(a.server, historyEvery)}
	a.handleDashboard(r)
	r.handle(http.MethodGet, "/admin/api/sessions", ad.authed(ad.serveSessions))
	r.handle(http.MethodPost, "/admin/api/kick", ad.authed(ad.serveKick))
	r.handle(http.MethodPost, "/admin/api/message", ad.authed(ad.serveMessage))
	r.handle(http.MethodPost, "/admin/api/broadcast", ad.authed(ad.serveBroadcast))
	r.handle(http.MethodGet, "/admin/api/user/{id}", ad.authed(ad.serveUser))
	r.handle(http.MethodGet, "/admin/api/group/{id}", ad.authed(ad.serveGroup))
	r.handle(http.MethodGet, "/admin/api/stats", ad.authed(ad.serveStats))
	r.handle(http.MethodGet, "/admin/api/history", ad.authed(ad.serveHistory))
}

// authed runs h for a request carrying the admin token, or answers 401.
// A user's token is refused like any other wrong one: it is never checked
// by the Server's Authenticator here.
func (ad *adminAPI) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		token, ok := bearerToken(r)
		// Constant time, so the answer's timing does not tell how much of
		// a guess was right.
		if !ok || subtle.ConstantTimeCompare([]byte(token), ad.token) != 1 {
			ad.log.WarnContext(r.Context(), "admin: refused", "route", r.Method+" "+r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="admin"`)
			writeEnvelope(w, http.StatusUnauthorized, codeAuthFailed, "authentication failed", nil)
			return
		}
		h(w, r)
	}
}

// logf logs, at info, what an admin call did; the caller is known only by
// its address, since everyone with the token is the operator.
func (ad *adminAPI) logf(r *http.Request, format string, args ...any) {
	ad.log.InfoContext(r.Context(), fmt.Sprintf(format, args...), "route", r.Method+" "+r.URL.Path, "remote", r.RemoteAddr)
}

// debugf is logf at debug, for the reads an open dashboard repeats every
// few seconds (stats, history, the session list), which at info would
// bury what the operator did.
func (ad *adminAPI) debugf(r *http.Request, format string, args ...any) {
	ad.log.DebugContext(r.Context(), fmt.Sprintf(format, args...), "route", r.Method+" "+r.URL.Path, "remote", r.RemoteAddr)
}

// fail answers err and logs the failed call.
func (ad *adminAPI) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	_, msg := codeOf(err)
	ad.logf(r, "admin: %s failed: %s", what, msg)
	ad.writeError(w, r, err)
}

// adminSessionJSON is one live session.
type adminSessionJSON struct {
	SessionID string `json:"sessionID"`
	UserID    string `json:"userID"`
	Platform  string `json:"platform"`
	Transport string `json:"transport"`
	Address   string `json:"address"`
	Since     int64  `json:"since"` // Unix milliseconds
}

func newAdminSessionsJSON(list []im.SessionInfo) []adminSessionJSON {
	out := make([]adminSessionJSON, len(list))
	for i, s := range list {
		out[i] = adminSessionJSON{
			SessionID: s.ID, UserID: s.UserID, Platform: s.Platform,
			Transport: s.Transport, Address: s.RemoteAddr, Since: s.ConnectedAt.UnixMilli(),
		}
	}
	return out
}

type adminSessionsPage struct {
	Sessions []adminSessionJSON `json:"sessions"`
	// Next is the after of the next page; empty on the last.
	Next string `json:"next"`
}

func (ad *adminAPI) serveSessions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := adminDefaultPage
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > adminMaxPage {
			ad.fail(w, r, "list sessions", badRequest(fmt.Sprintf("limit must be a number from 1 to %d", adminMaxPage)))
			return
		}
		limit = n
	}
	list := ad.server.AllSessions(q.Get("after"), limit)
	page := adminSessionsPage{Sessions: newAdminSessionsJSON(list)}
	if len(list) == limit {
		page.Next = list[len(list)-1].ID
	}
	ad.debugf(r, "admin: listed %d sessions", len(list))
	writeOK(w, page)
}

type adminKickRequest struct {
	UserID    string `json:"userID"`
	SessionID string `json:"sessionID"`
}

type adminKickResponse struct {
	Kicked int `json:"kicked"` // sessions disconnected
}

func (ad *adminAPI) serveKick(w http.ResponseWriter, r *http.Request) {
	var req adminKickRequest
	if err := ad.decodeBody(w, r, &req); err != nil {
		ad.fail(w, r, "kick", err)
		return
	}
	switch {
	case (req.UserID == "") == (req.SessionID == ""):
		ad.fail(w, r, "kick", badRequest("send either userID or sessionID"))
	case req.UserID != "":
		n := ad.server.Kick(req.UserID, adminKickReason)
		ad.logf(r, "admin: kicked user %s (%d sessions)", req.UserID, n)
		writeOK(w, adminKickResponse{Kicked: n})
	default:
		n := 0
		if ad.server.KickSession(req.SessionID, adminKickReason) {
			n = 1
		}
		ad.logf(r, "admin: kicked session %s (%d sessions)", req.SessionID, n)
		writeOK(w, adminKickResponse{Kicked: n})
	}
}

type adminMessageRequest struct {
	UserID  string `json:"userID"`
	Content string `json:"content"`
	// Type is the message type (im.MessageType); 0 means text.
	Type int `json:"type"`
}

type adminMessageResponse struct {
	ServerMsgID    string `json:"serverMsgID"`
	ConversationID string `json:"conversationID"`
	Seq            int64  `json:"seq"`
}

// messageType checks a message's content and type as the admin routes
// take them.
func messageType(content string, typ int) (im.MessageType, error) {
	if content == "" {
		return 0, badRequest("content must not be empty")
	}
	if !utf8.ValidString(content) {
		return 0, badRequest("content must be valid UTF-8")
	}
	// Compared as ints, so that a huge number cannot wrap into a type.
	switch {
	case typ == 0:
		return im.TextMessage, nil
	case typ >= int(im.TextMessage) && typ <= int(im.NotificationMessage), typ == int(im.CustomMessage):
		return im.MessageType(typ), nil
	}
	return 0, badRequest(fmt.Sprintf("type must be a message type: 1 to %d, or %d (custom)", im.NotificationMessage, im.CustomMessage))
}

func (ad *adminAPI) serveMessage(w http.ResponseWriter, r *http.Request) {
	var req adminMessageRequest
	if err := ad.decodeBody(w, r, &req); err != nil {
		ad.fail(w, r, "system message", err)
		return
	}
	typ, err := messageType(req.Content, req.Type)
	if err != nil {
		ad.fail(w, r, "system message", err)
		return
	}
	m, err := ad.server.SendSystemMessage(r.Context(), req.UserID, typ, []byte(req.Content))
	if err != nil {
		ad.fail(w, r, "system message to "+req.UserID, err)
		return
	}
	ad.logf(r, "admin: sent system message %s to user %s (%d bytes)", m.ServerID, req.UserID, len(req.Content))
	writeOK(w, adminMessageResponse{ServerMsgID: m.ServerID, ConversationID: m.ConversationID, Seq: m.Seq})
}

type adminBroadcastRequest struct {
	Content string `json:"content"`
	Type    int    `json:"type"`
}

type adminBroadcastResponse struct {
	Users  int `json:"users"`  // online users sent the message
	Failed int `json:"failed"` // online users it could not be sent to
}

func (ad *adminAPI) serveBroadcast(w http.ResponseWriter, r *http.Request) {
	var req adminBroadcastRequest
	if err := ad.decodeBody(w, r, &req); err != nil {
		ad.fail(w, r, "broadcast", err)
		return
	}
	typ, err := messageType(req.Content, req.Type)
	if err != nil {
		ad.fail(w, r, "broadcast", err)
		return
	}
	ad.mu.Lock()
	now := time.Now()
	wait := AdminBroadcastInterval - now.Sub(ad.lastBroadcast)
	if !ad.lastBroadcast.IsZero() && wait > 0 {
		ad.mu.Unlock()
		secs := int((wait + time.Second - 1) / time.Second)
		ad.logf(r, "admin: broadcast refused: the last was under %s ago", AdminBroadcastInterval)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeEnvelope(w, http.StatusTooManyRequests, codeTooMany, fmt.Sprintf("one broadcast per %s; try again in %d s", AdminBroadcastInterval, secs), nil)
		return
	}
	ad.lastBroadcast = now
	ad.mu.Unlock()

	// Once started, a broadcast goes on if the operator's client hangs
	// up, so that whether a user got it does not depend on that.
	ctx := context.WithoutCancel(r.Context())
	var res adminBroadcastResponse
	for _, user := range ad.onlineUsers() {
		if _, err := ad.server.SendSystemMessage(ctx, user, typ, []byte(req.Content)); err != nil {
			res.Failed++
			ad.log.WarnContext(ctx, "admin: broadcast to a user failed", "user", user, "err", err)
			if errors.Is(err, im.ErrServerClosed) {
				break
			}
			continue
		}
		res.Users++
	}
	ad.logf(r, "admin: broadcast %d bytes to %d online users (%d failed)", len(req.Content), res.Users, res.Failed)
	writeOK(w, res)
}

// onlineUsers lists each user with a session on the server once.
func (ad *adminAPI) onlineUsers() []string {
	seen := map[string]bool{}
	var users []string
	after := ""
	for {
		page := ad.server.AllSessions(after, adminMaxPage)
		for _, s := range page {
			if !seen[s.UserID] {
				seen[s.UserID] = true
				users = append(users, s.UserID)
			}
		}
		if len(page) < adminMaxPage {
			return users
		}
		after = page[len(page)-1].ID
	}
}

type adminUserResponse struct {
	// User is the profile, absent when the server keeps none
	// (Config.Users is not an im.UserProfiles).
	User     *userJSON          `json:"user,omitempty"`
	Sessions []adminSessionJSON `json:"sessions"`
}

func (ad *adminAPI) serveUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := im.ValidateID("user id", id); err != nil {
		ad.fail(w, r, "user lookup", err)
		return
	}
	var res adminUserResponse
	// The user views their own profile: the operator sees all of it.
	users, err := ad.server.Users(r.Context(), id, []string{id})
	switch {
	case errors.Is(err, im.ErrUnsupported):
	case err != nil:
		ad.fail(w, r, "user lookup of "+id, err)
		return
	case len(users) == 0:
		ad.fail(w, r, "user lookup of "+id, errUserNotFound())
		return
	default:
		u := newUserJSON(users[0])
		res.User = &u
	}
	res.Sessions = newAdminSessionsJSON(ad.server.Sessions(id))
	ad.logf(r, "admin: looked up user %s (%d sessions)", id, len(res.Sessions))
	writeOK(w, res)
}

type adminGroupResponse struct {
	Group   groupJSON    `json:"group"`
	Members []memberJSON `json:"members"`
}

func (ad *adminAPI) serveGroup(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	g, members, err := ad.server.InspectGroup(r.Context(), id)
	if err != nil {
		ad.fail(w, r, "group lookup of "+id, err)
		return
	}
	res := adminGroupResponse{Group: newGroupJSON(g), Members: make([]memberJSON, len(members))}
	for i, m := range members {
		res.Members[i] = newMemberJSON(m)
	}
	ad.logf(r, "admin: looked up group %s (%d members)", id, len(members))
	writeOK(w, res)
}

func (ad *adminAPI) serveStats(w http.ResponseWriter, r *http.Request) {
	st := ad.server.Stats()
	ad.debugf(r, "admin: read stats")
	writeOK(w, st)
}
