package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// JoinPolicy says who may join a group (the numbers are the server's).
type JoinPolicy int32

// Join policies.
const (
	// JoinOpen lets anyone join by themselves, and any member invite.
	JoinOpen JoinPolicy = 0
	// JoinInviteOnly refuses self-joins; only admins and the owner add
	// members. A non-member sees no such group (wire.ErrNotFound).
	JoinInviteOnly JoinPolicy = 1
	// JoinApproval turns a self-join into a request that an admin or the
	// owner approves or rejects (see JoinGroup).
	JoinApproval JoinPolicy = 2
)

// GroupHistory says what a new member of a group may read.
type GroupHistory int32

// History visibilities.
const (
	// HistoryFromJoin: a member reads from her joining on.
	HistoryFromJoin GroupHistory = 0
	// HistoryFull: every member reads the whole history.
	HistoryFull GroupHistory = 1
)

// GroupRole is a member's rank in a group, as the API names it.
type GroupRole string

// Group roles.
const (
	RoleOwner  GroupRole = "owner"
	RoleAdmin  GroupRole = "admin"
	RoleMember GroupRole = "member"
)

// Group is a group as the API answers it.
type Group struct {
	ID           string
	Name         string
	FaceURL      string
	OwnerID      string
	MemberCount  int
	Introduction string
	Notification string // the announcement
	Extra        string
	JoinPolicy   JoinPolicy
	History      GroupHistory
	// MuteAll: only admins and the owner may send.
	MuteAll   bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

type groupJSON struct {
	GroupID      string       `json:"groupID"`
	GroupName    string       `json:"groupName"`
	FaceURL      string       `json:"faceURL"`
	OwnerUserID  string       `json:"ownerUserID"`
	MemberCount  int          `json:"memberCount"`
	Introduction string       `json:"introduction"`
	Notification string       `json:"notification"`
	Extra        string       `json:"extra"`
	CreateTime   int64        `json:"createTime"`
	UpdateTime   int64        `json:"updateTime"`
	JoinPolicy   JoinPolicy   `json:"joinPolicy"`
	History      GroupHistory `json:"history"`
	MuteAll      bool         `json:"muteAll"`
}

func (g groupJSON) group() Group {
	return Group{
		ID:           g.GroupID,
		Name:         g.GroupName,
		FaceURL:      g.FaceURL,
		OwnerID:      g.OwnerUserID,
		MemberCount:  g.MemberCount,
		Introduction: g.Introduction,
		Notification: g.Notification,
		Extra:        g.Extra,
		JoinPolicy:   g.JoinPolicy,
		History:      g.History,
		MuteAll:      g.MuteAll,
		CreatedAt:    fromMillis(g.CreateTime),
		UpdatedAt:    fromMillis(g.UpdateTime),
	}
}

// GroupMember is one member of a group.
type GroupMember struct {
	UserID   string
	Role     GroupRole
	JoinedAt time.Time
	// MutedUntil is when her mute ends; zero when she is not muted.
	MutedUntil time.Time
}

type memberJSON struct {
	UserID     string    `json:"userID"`
	Role       GroupRole `json:"role"`
	JoinTime   int64     `json:"joinTime"`
	MutedUntil int64     `json:"mutedUntil"`
}

func (m memberJSON) member() GroupMember {
	return GroupMember{UserID: m.UserID, Role: m.Role, JoinedAt: fromMillis(m.JoinTime), MutedUntil: fromMillis(m.MutedUntil)}
}

// JoinRequest is a pending request to join a group.
type JoinRequest struct {
	GroupID   string
	UserID    string
	Message   string
	CreatedAt time.Time
}

// GroupSpec describes a group to create.
type GroupSpec struct {
	Name         string   `json:"groupName"`
	FaceURL      string   `json:"faceURL,omitempty"`
	Introduction string   `json:"introduction,omitempty"`
	Notification string   `json:"notification,omitempty"`
	Extra        string   `json:"extra,omitempty"`
	Members      []string `json:"memberUserIDs,omitempty"` // besides the creator, who becomes the owner
	// JoinPolicy nil makes an invite-only group, the server's default;
	// new(JoinOpen) an open one.
	JoinPolicy *JoinPolicy `json:"joinPolicy,omitempty"`
	// History nil is HistoryFromJoin.
	History *GroupHistory `json:"history,omitempty"`
}

// GroupUpdate is a change to a group; nil fields stay as they are.
type GroupUpdate struct {
	Name         *string       `json:"groupName,omitempty"`
	FaceURL      *string       `json:"faceURL,omitempty"`
	Introduction *string       `json:"introduction,omitempty"`
	Notification *string       `json:"notification,omitempty"`
	Extra        *string       `json:"extra,omitempty"`
	JoinPolicy   *JoinPolicy   `json:"joinPolicy,omitempty"`
	History      *GroupHistory `json:"history,omitempty"`
	MuteAll      *bool         `json:"muteAll,omitempty"`
}

// groupPath is the path of a call on groupID: "/api/group/{id}" and sub.
func groupPath(groupID, sub string) (string, error) {
	id, err := pathID("groupID", groupID)
	if err != nil {
		return "", err
	}
	return "/api/group/" + id + sub, nil
}

// groupCall makes a POST on groupID's sub path that answers nothing.
func (a *API) groupCall(ctx context.Context, groupID, sub string, body any) error {
	path, err := groupPath(groupID, sub)
	if err != nil {
		return err
	}
	_, err = a.do(ctx, apiCall{method: http.MethodPost, path: path, body: body})
	return err
}

// CreateGroup creates a group owned by the user (POST /api/group/create).
// Adding others follows the server's rules: a user the caller may not add
// matches wire.ErrPermissionDenied, and nobody is added.
func (a *API) CreateGroup(ctx context.Context, spec GroupSpec) (Group, error) {
	var out groupJSON
	if _, err := a.do(ctx, apiCall{method: http.MethodPost, path: "/api/group/create", body: spec, out: &out}); err != nil {
		return Group{}, err
	}
	return out.group(), nil
}

// Group returns groupID (GET /api/group/{id}): to its members, or to
// anyone when it is not invite-only. Otherwise, and for an unknown id, it
// matches wire.ErrNotFound.
func (a *API) Group(ctx context.Context, groupID string) (Group, error) {
	path, err := groupPath(groupID, "")
	if err != nil {
		return Group{}, err
	}
	var out groupJSON
	if _, err := a.do(ctx, apiCall{method: http.MethodGet, path: path, out: &out}); err != nil {
		return Group{}, err
	}
	return out.group(), nil
}

// UpdateGroup changes groupID (POST /api/group/update; an admin or the
// owner) and returns it as it now is.
func (a *API) UpdateGroup(ctx context.Context, groupID string, u GroupUpdate) (Group, error) {
	if _, err := pathID("groupID", groupID); err != nil {
		return Group{}, err
	}
	body := struct {
		GroupID string `json:"groupID"`
		GroupUpdate
	}{groupID, u}
	var out groupJSON
	if _, err := a.do(ctx, apiCall{method: http.MethodPost, path: "/api/group/update", body: body, out: &out}); err != nil {
		return Group{}, err
	}
	return out.group(), nil
}

// JoinGroup joins groupID (POST /api/group/{id}/join). For a group of
// JoinApproval it stores a request, with message, instead: pending is then
// true, and the user is a member only once an admin approves. An
// invite-only group matches wire.ErrNotFound.
func (a *API) JoinGroup(ctx context.Context, groupID, message string) (g Group, pending bool, err error) {
	path, err := groupPath(groupID, "/join")
	if err != nil {
		return Group{}, false, err
	}
	var body any
	if message != "" {
		body = map[string]string{"message": message}
	}
	var out groupJSON
	code, err := a.do(ctx, apiCall{method: http.MethodPost, path: path, body: body, out: &out, accept: []int{codeJoinPending}})
	if err != nil {
		return Group{}, false, err
	}
	return out.group(), code == codeJoinPending, nil
}

// LeaveGroup leaves groupID (POST /api/group/{id}/leave). The owner cannot
// leave: she hands the group over (SetRole) or dismisses it.
func (a *API) LeaveGroup(ctx context.Context, groupID string) error {
	return a.groupCall(ctx, groupID, "/leave", nil)
}

// DismissGroup ends groupID (POST /api/group/{id}/dismiss; the owner only).
func (a *API) DismissGroup(ctx context.Context, groupID string) error {
	return a.groupCall(ctx, groupID, "/dismiss", nil)
}

// Invite adds userIDs to groupID (POST /api/group/{id}/invite); those
// already in are skipped. Who may add whom follows the server's rules.
func (a *API) Invite(ctx context.Context, groupID string, userIDs []string) error {
	return a.groupCall(ctx, groupID, "/invite", map[string][]string{"userIDs": userIDs})
}

// Kick removes userIDs from groupID (POST /api/group/{id}/kick; an admin
// or the owner, who must outrank each); those not in are skipped.
func (a *API) Kick(ctx context.Context, groupID string, userIDs []string) error {
	return a.groupCall(ctx, groupID, "/kick", map[string][]string{"userIDs": userIDs})
}

// SetRole gives userID the role in groupID (POST /api/group/{id}/role; the
// owner only). RoleOwner hands the group over, and the caller becomes an
// admin.
func (a *API) SetRole(ctx context.Context, groupID, userID string, role GroupRole) error {
	return a.groupCall(ctx, groupID, "/role", map[string]string{"userID": userID, "role": string(role)})
}

// SetAdmin makes userID an admin of groupID, or a member again (POST
// /api/group/{id}/admin; the owner only).
func (a *API) SetAdmin(ctx context.Context, groupID, userID string, admin bool) error {
	return a.groupCall(ctx, groupID, "/admin", map[string]any{"userID": userID, "admin": admin})
}

// MuteGroup lets only admins and the owner send to groupID, or everyone
// again (POST /api/group/{id}/mute; an admin or the owner).
func (a *API) MuteGroup(ctx context.Context, groupID string, muteAll bool) error {
	return a.groupCall(ctx, groupID, "/mute", map[string]bool{"muteAll": muteAll})
}

// MuteMember keeps userID from sending to groupID until the time (POST
// /api/group/{id}/mute-member; a member who outranks her). The zero time
// unmutes her.
func (a *API) MuteMember(ctx context.Context, groupID, userID string, until time.Time) error {
	return a.groupCall(ctx, groupID, "/mute-member", map[string]any{"userID": userID, "until": millis(until)})
}

// JoinRequests lists the pending requests to join groupID, oldest first
// (GET /api/group/{id}/requests; an admin or the owner).
func (a *API) JoinRequests(ctx context.Context, groupID string) ([]JoinRequest, error) {
	path, err := groupPath(groupID, "/requests")
	if err != nil {
		return nil, err
	}
	type requestJSON struct {
		GroupID    string `json:"groupID"`
		UserID     string `json:"userID"`
		Message    string `json:"message"`
		CreateTime int64  `json:"createTime"`
	}
	var out []requestJSON
	if _, err := a.do(ctx, apiCall{method: http.MethodGet, path: path, out: &out}); err != nil {
		return nil, err
	}
	return each(out, func(q requestJSON) JoinRequest {
		return JoinRequest{GroupID: q.GroupID, UserID: q.UserID, Message: q.Message, CreatedAt: fromMillis(q.CreateTime)}
	}), nil
}

// ApproveJoin approves the request of userID to join groupID (POST
// /api/group/{id}/requests/approve; an admin or the owner): she joins.
func (a *API) ApproveJoin(ctx context.Context, groupID, userID string) error {
	return a.groupCall(ctx, groupID, "/requests/approve", map[string]string{"userID": userID})
}

// RejectJoin rejects the request of userID to join groupID (POST
// /api/group/{id}/requests/reject; an admin or the owner).
func (a *API) RejectJoin(ctx context.Context, groupID, userID string) error {
	return a.groupCall(ctx, groupID, "/requests/reject", map[string]string{"userID": userID})
}

// JoinedGroups lists all the user's groups, oldest first (GET
// /api/group/joined).
func (a *API) JoinedGroups(ctx context.Context) ([]Group, error) {
	var out []groupJSON
	if _, err := a.do(ctx, apiCall{method: http.MethodGet, path: "/api/group/joined", out: &out}); err != nil {
		return nil, err
	}
	return each(out, groupJSON.group), nil
}

// pageQuery is the query of a paged listing. The server answers a page
// whenever either parameter is there.
func pageQuery(cursor string, limit int) url.Values {
	return url.Values{"cursor": {cursor}, "limit": {strconv.Itoa(limit)}}
}

// JoinedGroupsPage lists a page of the user's groups by group id: cursor
// is "" for the first page and next for the following; limit is 1 to 200,
// 0 for the server's default (50). next is "" on the last page.
func (a *API) JoinedGroupsPage(ctx context.Context, cursor string, limit int) (gs []Group, next string, err error) {
	var out struct {
		Groups     []groupJSON `json:"groups"`
		NextCursor string      `json:"nextCursor"`
	}
	if _, err := a.do(ctx, apiCall{method: http.MethodGet, path: "/api/group/joined", query: pageQuery(cursor, limit), out: &out}); err != nil {
		return nil, "", err
	}
	return each(out.Groups, groupJSON.group), out.NextCursor, nil
}

// GroupMembers lists all the members of groupID (GET
// /api/group/{id}/members; members only): the owner, the admins, then the
// members, each by when they joined.
func (a *API) GroupMembers(ctx context.Context, groupID string) ([]GroupMember, error) {
	path, err := groupPath(groupID, "/members")
	if err != nil {
		return nil, err
	}
	var out []memberJSON
	if _, err := a.do(ctx, apiCall{method: http.MethodGet, path: path, out: &out}); err != nil {
		return nil, err
	}
	return each(out, memberJSON.member), nil
}

// GroupMembersPage lists a page of the members of groupID by user id, as
// JoinedGroupsPage pages.
func (a *API) GroupMembersPage(ctx context.Context, groupID, cursor string, limit int) (ms []GroupMember, next string, err error) {
	path, err := groupPath(groupID, "/members")
	if err != nil {
		return nil, "", err
	}
	var out struct {
		Members    []memberJSON `json:"members"`
		NextCursor string       `json:"nextCursor"`
	}
	if _, err := a.do(ctx, apiCall{method: http.MethodGet, path: path, query: pageQuery(cursor, limit), out: &out}); err != nil {
		return nil, "", err
	}
	return each(out.Members, memberJSON.member), out.NextCursor, nil
}
