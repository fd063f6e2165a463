package httpapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imserver/imserver/im"
)

// handleGroups adds the group routes, all of which need a bearer token.
// The paths and bodies are IM-iOS-SDK's (Business/Group/IMGroupManager.swift),
// plus the extensions listed in the package documentation.
func (a *api) handleGroups(r *router) {
	r.handle(http.MethodPost, "/api/group/create", a.authed(a.serveCreateGroup))
	r.handle(http.MethodPost, "/api/group/update", a.authed(a.serveUpdateGroup))
	r.handle(http.MethodGet, "/api/group/joined", a.authed(a.serveJoinedGroups))
	r.handle(http.MethodGet, "/api/group/{id}", a.authed(a.noParams(a.serveGroup)))
	r.handle(http.MethodGet, "/api/group/{id}/members", a.authed(a.serveGroupMembers))
	r.handle(http.MethodPost, "/api/group/{id}/join", a.authed(a.serveJoinGroup))
	r.handle(http.MethodPost, "/api/group/{id}/leave", a.authed(a.noParams(a.serveLeaveGroup)))
	r.handle(http.MethodPost, "/api/group/{id}/dismiss", a.authed(a.noParams(a.serveDismissGroup)))
	r.handle(http.MethodPost, "/api/group/{id}/invite", a.authed(a.groupUsersCall(a.server.InviteToGroup)))
	r.handle(http.MethodPost, "/api/group/{id}/kick", a.authed(a.groupUsersCall(a.server.KickFromGroup)))
	r.handle(http.MethodPost, "/api/group/{id}/role", a.authed(a.serveSetGroupRole))
	r.handle(http.MethodPost, "/api/group/{id}/admin", a.authed(a.serveSetGroupAdmin))
	r.handle(http.MethodPost, "/api/group/{id}/mute", a.authed(a.serveMuteGroup))
	r.handle(http.MethodPost, "/api/group/{id}/mute-member", a.authed(a.serveMuteMember))
	r.handle(http.MethodGet, "/api/group/{id}/requests", a.authed(a.noParams(a.serveJoinRequests)))
	r.handle(http.MethodPost, "/api/group/{id}/requests/approve", a.authed(a.groupUserCall(a.server.ApproveJoin)))
	r.handle(http.MethodPost, "/api/group/{id}/requests/reject", a.authed(a.groupUserCall(a.server.RejectJoin)))
}

// userHandler serves a request on behalf of the authenticated user.
type userHandler func(w http.ResponseWriter, r *http.Request, user string)

// authed runs h for the user of the request's bearer token, or answers
// code 100 (101 for an expired token) without running it.
func (a *api) authed(h userHandler) http.HandlerFunc {
	return a.authedIdentity(func(w http.ResponseWriter, r *http.Request, id im.Identity) {
		h(w, r, id.UserID)
	})
}

// authedIdentity is authed for handlers that need the whole identity (the
// token's id and expiry), not only the user.
func (a *api) authedIdentity(h func(w http.ResponseWriter, r *http.Request, id im.Identity)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// What these routes answer is the caller's own view; no cache
		// between the app and the server should keep it.
		w.Header().Set("Cache-Control", "no-store")
		token, ok := bearerToken(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="imserver"`)
			a.writeErrorStatus(w, r, http.StatusUnauthorized, &im.Error{Msg: `send the token as "Authorization: Bearer <token>"`, Err: im.ErrUnauthenticated})
			return
		}
		id, err := a.server.Authenticate(r.Context(), token)
		if err != nil {
			status := http.StatusOK
			if errors.Is(err, im.ErrUnauthenticated) || errors.Is(err, im.ErrTokenExpired) {
				// A refused token is the one error these routes answer
				// with its HTTP status: the SDK fails the call either
				// way, and proxies, browsers and monitoring see a 401.
				status = http.StatusUnauthorized
				w.Header().Set("WWW-Authenticate", `Bearer realm="imserver", error="invalid_token"`)
			}
			a.writeErrorStatus(w, r, status, err)
			return
		}
		h(w, r, id)
	}
}

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header; the scheme is case-insensitive (RFC 9110, section 11.1).
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// groupJSON is a group as IM-iOS-SDK's IMGroup decodes it
// (Core/Models/IMModels.swift), plus joinPolicy and history.
type groupJSON struct {
	GroupID      string `json:"groupID"`
	GroupName    string `json:"groupName"`
	FaceURL      string `json:"faceURL"`
	OwnerUserID  string `json:"ownerUserID"`
	MemberCount  int    `json:"memberCount"`
	Introduction string `json:"introduction"`
	Notification string `json:"notification"`
	Extra        string `json:"extra"`
	CreateTime   int64  `json:"createTime"` // Unix milliseconds
	UpdateTime   int64  `json:"updateTime"` // Unix milliseconds
	// Status is the SDK's 0 normal, 1 dismissed. A dismissed group is
	// gone (not found), so it is always 0.
	Status int `json:"status"`
	// JoinPolicy is ours: 0 open, 1 invite-only, 2 joins approved by
	// an admin (im.JoinPolicy).
	JoinPolicy im.JoinPolicy `json:"joinPolicy"`
	// History is ours: 0 a new member reads from her joining on, 1 the
	// whole history (im.HistoryVisibility).
	History im.HistoryVisibility `json:"history"`
	// MuteAll is ours: only admins and the owner send (im.Group.MuteAll).
	MuteAll bool `json:"muteAll"`
}

func newGroupJSON(g im.Group) groupJSON {
	return groupJSON{
		GroupID:      g.ID,
		GroupName:    g.Name,
		FaceURL:      g.FaceURL,
		OwnerUserID:  g.OwnerID,
		MemberCount:  g.MemberCount,
		Introduction: g.Introduction,
		Notification: g.Notification,
		Extra:        g.Extra,
		CreateTime:   g.CreatedAt.UnixMilli(),
		UpdateTime:   g.UpdatedAt.UnixMilli(),
		JoinPolicy:   g.JoinPolicy,
		History:      g.History,
		MuteAll:      g.MuteAll,
	}
}

// memberJSON is one member of a group, our extension. Roles travel as
// names ("owner", "admin", "member"), not numbers, because the SDK's local
// database numbers roles from 0 and im.GroupRole from 1.
type memberJSON struct {
	UserID   string       `json:"userID"`
	Role     im.GroupRole `json:"role"`
	JoinTime int64        `json:"joinTime"` // Unix milliseconds
	// MutedUntil is when the member's mute ends, in Unix milliseconds;
	// left out when she is not muted.
	MutedUntil int64 `json:"mutedUntil,omitempty"`
}

func newMemberJSON(m im.GroupMember) memberJSON {
	out := memberJSON{UserID: m.UserID, Role: m.Role, JoinTime: m.JoinedAt.UnixMilli()}
	if m.MutedUntil.After(time.Now()) {
		out.MutedUntil = m.MutedUntil.UnixMilli()
	}
	return out
}

type createGroupRequest struct {
	GroupName     string   `json:"groupName"`
	FaceURL       string   `json:"faceURL"`
	Introduction  string   `json:"introduction"`
	MemberUserIDs []string `json:"memberUserIDs"`
	// Ours.
	Notification string `json:"notification"`
	Extra        string `json:"extra"`
	// JoinPolicy left out (or null), as the SDK sends it, makes an
	// invite-only group: an app that does not know of join policies must
	// not make groups that anyone with the id can join and read. 0 asks
	// for an open group.
	JoinPolicy *im.JoinPolicy `json:"joinPolicy"`
	// History left out (or null) is 0: new members read from their
	// joining on. 1 shows them the whole history.
	History *im.HistoryVisibility `json:"history"`
}

func (a *api) serveCreateGroup(w http.ResponseWriter, r *http.Request, user string) {
	var req createGroupRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	spec := im.GroupSpec{
		Name:         req.GroupName,
		FaceURL:      req.FaceURL,
		Introduction: req.Introduction,
		Notification: req.Notification,
		Extra:        req.Extra,
		JoinPolicy:   im.JoinInviteOnly,
	}
	if req.JoinPolicy != nil {
		spec.JoinPolicy = *req.JoinPolicy
	}
	if req.History != nil {
		spec.History = *req.History
	}
	g, err := a.server.CreateGroup(r.Context(), user, spec, req.MemberUserIDs)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeOK(w, newGroupJSON(g))
}

// updateGroupRequest: a field left out (or null) stays as it is.
type updateGroupRequest struct {
	GroupID      string  `json:"groupID"`
	GroupName    *string `json:"groupName"`
	FaceURL      *string `json:"faceURL"`
	Introduction *string `json:"introduction"`
	Notification *string `json:"notification"`
	// Ours.
	Extra      *string               `json:"extra"`
	JoinPolicy *im.JoinPolicy        `json:"joinPolicy"`
	History    *im.HistoryVisibility `json:"history"`
	MuteAll    *bool                 `json:"muteAll"`
}

func (a *api) serveUpdateGroup(w http.ResponseWriter, r *http.Request, user string) {
	var req updateGroupRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	if req.GroupID == "" {
		a.writeError(w, r, badRequest("groupID is required"))
		return
	}
	g, err := a.server.UpdateGroup(r.Context(), req.GroupID, user, im.GroupUpdate{
		Name:         req.GroupName,
		FaceURL:      req.FaceURL,
		Introduction: req.Introduction,
		Notification: req.Notification,
		Extra:        req.Extra,
		JoinPolicy:   req.JoinPolicy,
		History:      req.History,
		MuteAll:      req.MuteAll,
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeOK(w, newGroupJSON(g))
}

// noParams serves a call that takes no parameters. The SDK sends no body;
// a JSON object is accepted and its fields are ignored.
func (a *api) noParams(h userHandler) userHandler {
	return func(w http.ResponseWriter, r *http.Request, user string) {
		if err := a.decodeOptionalBody(w, r, &struct{}{}); err != nil {
			a.writeError(w, r, err)
			return
		}
		h(w, r, user)
	}
}

func (a *api) serveGroup(w http.ResponseWriter, r *http.Request, user string) {
	g, err := a.server.Group(r.Context(), r.PathValue("id"), user)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeOK(w, newGroupJSON(g))
}

// pageRequest is a listing's paging: cursor and limit, from the query
// string or a JSON body (the SDK sends GET parameters in a body).
type pageRequest struct {
	Cursor *string `json:"cursor"`
	Limit  *int    `json:"limit"`
}

// decodePage reads the paging of a listing; asked reports whether any was
// given, which switches the answer to a page.
func (a *api) decodePage(w http.ResponseWriter, r *http.Request) (p pageRequest, asked bool, err error) {
	if err := a.decodeOptionalBody(w, r, &p); err != nil {
		return p, false, err
	}
	q := r.URL.Query()
	if q.Has("cursor") {
		c := q.Get("cursor")
		p.Cursor = &c
	}
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil {
			return p, false, badRequest("limit must be a number")
		}
		p.Limit = &n
	}
	return p, p.Cursor != nil || p.Limit != nil, nil
}

func (p pageRequest) values() (string, int) {
	var c string
	var n int
	if p.Cursor != nil {
		c = *p.Cursor
	}
	if p.Limit != nil {
		n = *p.Limit
	}
	return c, n
}

type groupsPage struct {
	Groups     []groupJSON `json:"groups"`
	NextCursor string      `json:"nextCursor"`
}

type membersPage struct {
	Members    []memberJSON `json:"members"`
	NextCursor string       `json:"nextCursor"`
}

func (a *api) serveJoinedGroups(w http.ResponseWriter, r *http.Request, user string) {
	p, paged, err := a.decodePage(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if paged {
		cursor, limit := p.values()
		groups, next, err := a.server.UserGroupsPage(r.Context(), user, cursor, limit)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		out := groupsPage{Groups: make([]groupJSON, 0, len(groups)), NextCursor: next}
		for _, g := range groups {
			out.Groups = append(out.Groups, newGroupJSON(g))
		}
		writeOK(w, out)
		return
	}
	groups, err := a.server.UserGroups(r.Context(), user)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	// Oldest first; the store keeps no order.
	slices.SortFunc(groups, func(x, y im.Group) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), strings.Compare(x.ID, y.ID))
	})
	out := make([]groupJSON, 0, len(groups))
	for _, g := range groups {
		out = append(out, newGroupJSON(g))
	}
	writeOK(w, out)
}

func (a *api) serveGroupMembers(w http.ResponseWriter, r *http.Request, user string) {
	p, paged, err := a.decodePage(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if paged {
		cursor, limit := p.values()
		members, next, err := a.server.GroupMembersPage(r.Context(), r.PathValue("id"), user, cursor, limit)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		out := membersPage{Members: make([]memberJSON, 0, len(members)), NextCursor: next}
		for _, m := range members {
			out.Members = append(out.Members, newMemberJSON(m))
		}
		writeOK(w, out)
		return
	}
	members, err := a.server.GroupMembers(r.Context(), r.PathValue("id"), user)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	// The owner, the admins, then the members; each by when they joined.
	slices.SortFunc(members, func(x, y im.GroupMember) int {
		return cmp.Or(cmp.Compare(y.Role, x.Role), x.JoinedAt.Compare(y.JoinedAt), strings.Compare(x.UserID, y.UserID))
	})
	out := make([]memberJSON, 0, len(members))
	for _, m := range members {
		out = append(out, newMemberJSON(m))
	}
	writeOK(w, out)
}

type joinRequest struct {
	Message string `json:"message"`
}

// serveJoinGroup joins the group, or, for one that approves who joins,
// asks to: that answer is code codeJoinPending with the group as data, so
// that IM-iOS-SDK, which takes code 0 for "joined" and stores the group
// as one of the user's, shows the message instead.
func (a *api) serveJoinGroup(w http.ResponseWriter, r *http.Request, user string) {
	var req joinRequest
	if err := a.decodeOptionalBody(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	res, err := a.server.RequestJoin(r.Context(), r.PathValue("id"), user, req.Message)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if res.Pending {
		writeEnvelope(w, http.StatusOK, codeJoinPending, "join request sent; an admin of the group must approve it", newGroupJSON(res.Group))
		return
	}
	writeOK(w, newGroupJSON(res.Group))
}

func (a *api) serveLeaveGroup(w http.ResponseWriter, r *http.Request, user string) {
	if err := a.server.LeaveGroup(r.Context(), r.PathValue("id"), user); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeOK(w, nil)
}

func (a *api) serveDismissGroup(w http.ResponseWriter, r *http.Request, user string) {
	if err := a.server.DismissGroup(r.Context(), r.PathValue("id"), user); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeOK(w, nil)
}

type userIDsRequest struct {
	UserIDs []string `json:"userIDs"`
}

// decodeUserIDs reads a {"userIDs": [...]} body, which must name at least
// one user, each by a valid id.
func (a *api) decodeUserIDs(w http.ResponseWriter, r *http.Request) ([]string, error) {
	var req userIDsRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	if len(req.UserIDs) == 0 {
		return nil, badRequest("userIDs must name at least one user")
	}
	for i, u := range req.UserIDs {
		if err := im.ValidateID(fmt.Sprintf("userIDs[%d]", i), u); err != nil {
			return nil, err
		}
	}
	return req.UserIDs, nil
}

// groupUsersCall serves a call of the caller on the users a {"userIDs"}
// body lists, in the group of the path, that answers nothing.
func (a *api) groupUsersCall(call func(ctx context.Context, groupID, actorID string, userIDs []string) error) userHandler {
	return func(w http.ResponseWriter, r *http.Request, user string) {
		ids, err := a.decodeUserIDs(w, r)
		if err == nil {
			err = call(r.Context(), r.PathValue("id"), user, ids)
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		writeOK(w, nil)
	}
}

// groupUserCall is groupUsersCall for calls on the one user a {"userID"}
// body names.
func (a *api) groupUserCall(call func(ctx context.Context, groupID, actorID, userID string) error) userHandler {
	return func(w http.ResponseWriter, r *http.Request, user string) {
		u, err := a.decodeUserID(w, r)
		if err == nil {
			err = call(r.Context(), r.PathValue("id"), user, u)
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		writeOK(w, nil)
	}
}

type setRoleRequest struct {
	UserID string `json:"userID"`
	Role   string `json:"role"` // "admin", "member", or "owner" to hand the group over
	// Admin, for the admin route: true makes the member an admin, false
	// a member.
	Admin *bool `json:"admin"`
}

func (a *api) serveSetGroupRole(w http.ResponseWriter, r *http.Request, user string) {
	a.setGroupRole(w, r, user, func(req setRoleRequest) (im.GroupRole, error) {
		var role im.GroupRole
		if role.UnmarshalText([]byte(req.Role)) != nil {
			return 0, badRequest(`role must be "owner", "admin" or "member"`)
		}
		return role, nil
	})
}

// serveSetGroupAdmin makes a member an admin or an admin a member: the
// role route with a boolean.
func (a *api) serveSetGroupAdmin(w http.ResponseWriter, r *http.Request, user string) {
	a.setGroupRole(w, r, user, func(req setRoleRequest) (im.GroupRole, error) {
		switch {
		case req.Admin == nil:
			return 0, badRequest("admin must be true or false")
		case *req.Admin:
			return im.RoleAdmin, nil
		}
		return im.RoleMember, nil
	})
}

// setGroupRole serves the role and admin routes: the body names a member,
// and role reads the role she is to have from it.
func (a *api) setGroupRole(w http.ResponseWriter, r *http.Request, user string, role func(setRoleRequest) (im.GroupRole, error)) {
	var req setRoleRequest
	err := a.decodeBody(w, r, &req)
	if err == nil {
		err = im.ValidateID("userID", req.UserID)
	}
	var to im.GroupRole
	if err == nil {
		to, err = role(req)
	}
	if err == nil {
		err = a.server.SetGroupRole(r.Context(), r.PathValue("id"), user, req.UserID, to)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeOK(w, nil)
}

type muteGroupRequest struct {
	MuteAll *bool `json:"muteAll"`
}

func (a *api) serveMuteGroup(w http.ResponseWriter, r *http.Request, user string) {
	var req muteGroupRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	if req.MuteAll == nil {
		a.writeError(w, r, badRequest("muteAll must be true or false"))
		return
	}
	if err := a.server.MuteGroup(r.Context(), r.PathValue("id"), user, *req.MuteAll); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeOK(w, nil)
}

// maxMuteSeconds bounds a mute given in seconds: a year.
const maxMuteSeconds = 366 * 24 * 3600

type muteMemberRequest struct {
	UserID string `json:"userID"`
	// Until is when the mute ends, Unix milliseconds; 0 unmutes.
	Until *int64 `json:"until"`
	// Seconds, instead of Until, mutes for that long from now; 0
	// unmutes.
	Seconds *int64 `json:"seconds"`
}

func (a *api) serveMuteMember(w http.ResponseWriter, r *http.Request, user string) {
	var req muteMemberRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := im.ValidateID("userID", req.UserID); err != nil {
		a.writeError(w, r, err)
		return
	}
	var until time.Time
	switch {
	case (req.Until == nil) == (req.Seconds == nil):
		a.writeError(w, r, badRequest("give either until (Unix milliseconds, 0 unmutes) or seconds (0 unmutes)"))
		return
	case req.Until != nil && *req.Until < 0, req.Seconds != nil && (*req.Seconds < 0 || *req.Seconds > maxMuteSeconds):
		a.writeError(w, r, badRequest(fmt.Sprintf("until must not be negative, and seconds must be 0 to %d", maxMuteSeconds)))
		return
	case req.Until != nil && *req.Until > 0:
		until = time.UnixMilli(*req.Until)
	case req.Seconds != nil && *req.Seconds > 0:
		until = time.Now().Add(time.Duration(*req.Seconds) * time.Second)
	}
	if err := a.server.MuteMember(r.Context(), r.PathValue("id"), user, req.UserID, until); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeOK(w, nil)
}

// joinRequestJSON is a pending request to join a group.
type joinRequestJSON struct {
	GroupID    string `json:"groupID"`
	UserID     string `json:"userID"`
	Message    string `json:"message"`
	CreateTime int64  `json:"createTime"` // Unix milliseconds
}

func (a *api) serveJoinRequests(w http.ResponseWriter, r *http.Request, user string) {
	reqs, err := a.server.JoinRequests(r.Context(), r.PathValue("id"), user)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := make([]joinRequestJSON, 0, len(reqs))
	for _, q := range reqs {
		out = append(out, joinRequestJSON{GroupID: q.GroupID, UserID: q.UserID, Message: q.Message, CreateTime: q.CreatedAt.UnixMilli()})
	}
	writeOK(w, out)
}

type userIDRequest struct {
	UserID string `json:"userID"`
}

// decodeUserID reads a {"userID"} body naming a user by a valid id.
func (a *api) decodeUserID(w http.ResponseWriter, r *http.Request) (string, error) {
	var req userIDRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		return "", err
	}
	if err := im.ValidateID("userID", req.UserID); err != nil {
		return "", err
	}
	return req.UserID, nil
}
