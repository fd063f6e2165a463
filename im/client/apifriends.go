package client

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"time"
)

// Friend is one side of a friendship: the user's own view of a friend.
type Friend struct {
	UserID    string // the friend
	OwnerID   string // the user whose friend it is: the caller
	Remark    string // the owner's remark, seen by her only
	CreatedAt time.Time
}

type friendJSON struct {
	FriendUserID string `json:"friendUserID"`
	OwnerUserID  string `json:"ownerUserID"`
	Remark       string `json:"remark"`
	CreateTime   int64  `json:"createTime"`
}

func (f friendJSON) friend() Friend {
	return Friend{UserID: f.FriendUserID, OwnerID: f.OwnerUserID, Remark: f.Remark, CreatedAt: fromMillis(f.CreateTime)}
}

// FriendRequest is a request waiting for an answer.
type FriendRequest struct {
	From, To  string
	Message   string
	CreatedAt time.Time
}

type friendRequestJSON struct {
	FromUserID string `json:"fromUserID"`
	ToUserID   string `json:"toUserID"`
	Message    string `json:"message"`
	CreateTime int64  `json:"createTime"`
}

// Block is a user whom the caller blocks.
type Block struct {
	UserID    string
	CreatedAt time.Time
}

// friendCall makes a friend call on userID with body's other fields.
func (a *API) friendCall(ctx context.Context, path, userID string, extra map[string]string, out any) error {
	body := map[string]string{"userID": userID}
	maps.Copy(body, extra)
	_, err := a.do(ctx, apiCall{method: http.MethodPost, path: path, body: body, out: out})
	return err
}

// AddFriend asks userID to be a friend (POST /api/friend/add), with an
// optional message of at most 256 characters; asking again replaces it.
// If userID had asked the user already, they are friends now. A request
// across a block matches wire.ErrPermissionDenied, an unknown user
// wire.ErrNotFound, too many requests wire.ErrRateLimited.
func (a *API) AddFriend(ctx context.Context, userID, message string) error {
	return a.friendCall(ctx, "/api/friend/add", userID, map[string]string{"message": message}, nil)
}

// AcceptFriend accepts the request of userID (POST /api/friend/accept) and
// returns the new friend. Without such a request it matches
// wire.ErrNotFound.
func (a *API) AcceptFriend(ctx context.Context, userID string) (Friend, error) {
	var out friendJSON
	if err := a.friendCall(ctx, "/api/friend/accept", userID, nil, &out); err != nil {
		return Friend{}, err
	}
	return out.friend(), nil
}

// RejectFriend rejects the request of userID (POST /api/friend/reject).
func (a *API) RejectFriend(ctx context.Context, userID string) error {
	return a.friendCall(ctx, "/api/friend/reject", userID, nil, nil)
}

// CancelFriendRequest withdraws the user's request to userID (POST
// /api/friend/cancel).
func (a *API) CancelFriendRequest(ctx context.Context, userID string) error {
	return a.friendCall(ctx, "/api/friend/cancel", userID, nil, nil)
}

// DeleteFriend ends the friendship with userID, for both (POST
// /api/friend/delete).
func (a *API) DeleteFriend(ctx context.Context, userID string) error {
	return a.friendCall(ctx, "/api/friend/delete", userID, nil, nil)
}

// SetFriendRemark sets the user's remark on friend userID (POST
// /api/friend/remark; at most 64 characters, "" clears it) and returns the
// friend.
func (a *API) SetFriendRemark(ctx context.Context, userID, remark string) (Friend, error) {
	var out friendJSON
	if err := a.friendCall(ctx, "/api/friend/remark", userID, map[string]string{"remark": remark}, &out); err != nil {
		return Friend{}, err
	}
	return out.friend(), nil
}

// Friends lists the user's friends by user id (GET /api/friend/list).
func (a *API) Friends(ctx context.Context) ([]Friend, error) {
	var out []friendJSON
	if _, err := a.do(ctx, apiCall{method: http.MethodGet, path: "/api/friend/list", out: &out}); err != nil {
		return nil, err
	}
	return each(out, friendJSON.friend), nil
}

// IsFriend reports whether the user and userID are friends (GET
// /api/friend/check).
func (a *API) IsFriend(ctx context.Context, userID string) (bool, error) {
	var out bool
	_, err := a.do(ctx, apiCall{method: http.MethodGet, path: "/api/friend/check", query: url.Values{"userID": {userID}}, out: &out})
	return out, err
}

// FriendRequests lists the requests waiting for an answer, oldest first
// (GET /api/friend/requests): those to the user and those she sent.
func (a *API) FriendRequests(ctx context.Context) (incoming, outgoing []FriendRequest, err error) {
	var out struct {
		Incoming []friendRequestJSON `json:"incoming"`
		Outgoing []friendRequestJSON `json:"outgoing"`
	}
	if _, err := a.do(ctx, apiCall{method: http.MethodGet, path: "/api/friend/requests", out: &out}); err != nil {
		return nil, nil, err
	}
	request := func(q friendRequestJSON) FriendRequest {
		return FriendRequest{From: q.FromUserID, To: q.ToUserID, Message: q.Message, CreatedAt: fromMillis(q.CreateTime)}
	}
	return each(out.Incoming, request), each(out.Outgoing, request), nil
}

// Block blocks userID (POST /api/friend/block): their friendship and the
// requests between them end, and neither can message or ask the other.
func (a *API) Block(ctx context.Context, userID string) error {
	return a.friendCall(ctx, "/api/friend/block", userID, nil, nil)
}

// Unblock lifts the user's block of userID (POST /api/friend/unblock); a
// block the other way stays.
func (a *API) Unblock(ctx context.Context, userID string) error {
	return a.friendCall(ctx, "/api/friend/unblock", userID, nil, nil)
}

// Blocks lists the users the user blocks, by user id (GET
// /api/friend/blocks).
func (a *API) Blocks(ctx context.Context) ([]Block, error) {
	type blockJSON struct {
		BlockedUserID string `json:"blockedUserID"`
		CreateTime    int64  `json:"createTime"`
	}
	var out []blockJSON
	if _, err := a.do(ctx, apiCall{method: http.MethodGet, path: "/api/friend/blocks", out: &out}); err != nil {
		return nil, err
	}
	return each(out, func(b blockJSON) Block {
		return Block{UserID: b.BlockedUserID, CreatedAt: fromMillis(b.CreateTime)}
	}), nil
}
