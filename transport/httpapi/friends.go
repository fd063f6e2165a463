package httpapi

import (
	"context"
	"net/http"

	"github.com/imserver/imserver/im"
)

// handleFriends adds the friend routes, all of which need a bearer token.
// The paths and bodies are IM-iOS-SDK's
// (Business/Friend/IMFriendManager.swift), plus requests, cancel and the
// block routes, ours.
func (a *api) handleFriends(r *router) {
	r.handle(http.MethodPost, "/api/friend/add", a.authed(a.serveAddFriend))
	r.handle(http.MethodPost, "/api/friend/accept", a.authed(a.serveAcceptFriend))
	r.handle(http.MethodPost, "/api/friend/reject", a.authed(a.friendCall(a.server.RejectFriend)))
	r.handle(http.MethodPost, "/api/friend/cancel", a.authed(a.friendCall(a.server.CancelFriendRequest)))
	r.handle(http.MethodPost, "/api/friend/delete", a.authed(a.friendCall(a.server.DeleteFriend)))
	r.handle(http.MethodPost, "/api/friend/remark", a.authed(a.serveFriendRemark))
	r.handle(http.MethodGet, "/api/friend/list", a.authed(a.noParams(a.serveFriendList)))
	r.handle(http.MethodGet, "/api/friend/check", a.authed(a.serveCheckFriend))
	r.handle(http.MethodGet, "/api/friend/requests", a.authed(a.noParams(a.serveFriendRequests)))
	r.handle(http.MethodPost, "/api/friend/block", a.authed(a.friendCall(a.server.Block)))
	r.handle(http.MethodPost, "/api/friend/unblock", a.authed(a.friendCall(a.server.Unblock)))
	r.handle(http.MethodGet, "/api/friend/blocks", a.authed(a.noParams(a.serveBlocks)))
}

// friendJSON is one side of a friendship as IM-iOS-SDK's IMFriend decodes
// it (Core/Models/IMModels.swift). The SDK's addSource, operatorUserID and
// extra have nothing behind them here and are always zero.
type friendJSON struct {
	FriendUserID   string `json:"friendUserID"`
	OwnerUserID    string `json:"ownerUserID"`
	Remark         string `json:"remark"`
	CreateTime     int64  `json:"createTime"` // Unix milliseconds
	AddSource      int    `json:"addSource"`
	OperatorUserID string `json:"operatorUserID"`
	Extra          string `json:"extra"`
}

func newFriendJSON(f im.Friend) friendJSON {
	return friendJSON{FriendUserID: f.FriendID, OwnerUserID: f.UserID, Remark: f.Remark, CreateTime: f.CreatedAt.UnixMilli()}
}

// friendRequestJSON is a pending request, ours.
type friendRequestJSON struct {
	FromUserID string `json:"fromUserID"`
	ToUserID   string `json:"toUserID"`
	Message    string `json:"message"`
	CreateTime int64  `json:"createTime"` // Unix milliseconds
}

type friendRequestsJSON struct {
	Incoming []friendRequestJSON `json:"incoming"`
	Outgoing []friendRequestJSON `json:"outgoing"`
}

// blockJSON is one user the caller blocks, ours.
type blockJSON struct {
	BlockedUserID string `json:"blockedUserID"`
	CreateTime    int64  `json:"createTime"` // Unix milliseconds
}

// friendRequest is the body of every friend call: the other user, and the
// message or remark of the calls that take one.
type friendRequest struct {
	UserID  string `json:"userID"`
	Message string `json:"message"`
	Remark  string `json:"remark"`
}

// decodeFriend reads a friend call's body, which must name a user.
func (a *api) decodeFriend(w http.ResponseWriter, r *http.Request) (friendRequest, error) {
	var req friendRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		return req, err
	}
	if req.UserID == "" {
		return req, badRequest("userID is required")
	}
	return req, nil
}

// friendCall serves a call on another user that answers nothing.
func (a *api) friendCall(call func(ctx context.Context, userID, otherID string) error) userHandler {
	return func(w http.ResponseWriter, r *http.Request, user string) {
		req, err := a.decodeFriend(w, r)
		if err == nil {
			err = call(r.Context(), user, req.UserID)
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		writeOK(w, nil)
	}
}

func (a *api) serveAddFriend(w http.ResponseWriter, r *http.Request, user string) {
	req, err := a.decodeFriend(w, r)
	if err == nil {
		_, err = a.server.RequestFriend(r.Context(), user, req.UserID, req.Message)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeOK(w, nil)
}

func (a *api) serveAcceptFriend(w http.ResponseWriter, r *http.Request, user string) {
	req, err := a.decodeFriend(w, r)
	var f im.Friend
	if err == nil {
		f, err = a.server.AcceptFriend(r.Context(), user, req.UserID)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeOK(w, newFriendJSON(f))
}

func (a *api) serveFriendRemark(w http.ResponseWriter, r *http.Request, user string) {
	req, err := a.decodeFriend(w, r)
	var f im.Friend
	if err == nil {
		f, err = a.server.SetFriendRemark(r.Context(), user, req.UserID, req.Remark)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeOK(w, newFriendJSON(f))
}

func (a *api) serveFriendList(w http.ResponseWriter, r *http.Request, user string) {
	fr, err := a.server.Friends(r.Context(), user)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := make([]friendJSON, len(fr))
	for i, f := range fr {
		out[i] = newFriendJSON(f)
	}
	writeOK(w, out)
}

// serveCheckFriend answers whether the caller and userID are friends. The
// SDK puts userID in a GET body, which its HTTP library does not send, so
// the query string is read first.
func (a *api) serveCheckFriend(w http.ResponseWriter, r *http.Request, user string) {
	other := r.URL.Query().Get("userID")
	if other == "" {
		var req friendRequest
		if err := a.decodeOptionalBody(w, r, &req); err != nil {
			a.writeError(w, r, err)
			return
		}
		other = req.UserID
	}
	if other == "" {
		a.writeError(w, r, badRequest("userID is required"))
		return
	}
	rel, err := a.server.FriendRelation(r.Context(), user, other)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeOK(w, rel.Friends)
}

func (a *api) serveFriendRequests(w http.ResponseWriter, r *http.Request, user string) {
	in, out, err := a.server.FriendRequests(r.Context(), user)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	list := func(rs []im.FriendRequest) []friendRequestJSON {
		js := make([]friendRequestJSON, len(rs))
		for i, q := range rs {
			js[i] = friendRequestJSON{FromUserID: q.From, ToUserID: q.To, Message: q.Message, CreateTime: q.CreatedAt.UnixMilli()}
		}
		return js
	}
	writeOK(w, friendRequestsJSON{Incoming: list(in), Outgoing: list(out)})
}

func (a *api) serveBlocks(w http.ResponseWriter, r *http.Request, user string) {
	bl, err := a.server.Blocks(r.Context(), user)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := make([]blockJSON, len(bl))
	for i, b := range bl {
		out[i] = blockJSON{BlockedUserID: b.BlockedID, CreateTime: b.CreatedAt.UnixMilli()}
	}
	writeOK(w, out)
}
