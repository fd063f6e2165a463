package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Account is a new account, as Register answers it.
type Account struct {
	UserID   string
	Username string
	Nickname string
}

// Session is what Login and ChangePassword answer: the token for the
// socket (Options.Token) and the other HTTP calls, and the user it is for
// (Options.UserID).
type Session struct {
	UserID    string
	Token     string
	ExpiresAt time.Time
}

type sessionJSON struct {
	Token     string `json:"token"`
	UserID    string `json:"userID"`
	ExpiresAt int64  `json:"expiresAt"`
}

func (s sessionJSON) session() Session {
	return Session{UserID: s.UserID, Token: s.Token, ExpiresAt: fromMillis(s.ExpiresAt)}
}

// Register creates an account (POST /api/auth/register). It does not log
// in. A taken username matches wire.ErrConflict; a username, password or
// nickname that breaks the server's rules wire.ErrInvalidArgument.
func (a *API) Register(ctx context.Context, username, password, nickname string) (Account, error) {
	var out struct {
		UserID   string `json:"userID"`
		Username string `json:"username"`
		Nickname string `json:"nickname"`
	}
	_, err := a.do(ctx, apiCall{
		method: http.MethodPost, path: "/api/auth/register", anon: true,
		body: map[string]string{"username": username, "password": password, "nickname": nickname},
		out:  &out,
	})
	if err != nil {
		return Account{}, err
	}
	return Account(out), nil
}

// Login logs in (POST /api/auth/login) and makes the token it gets the one
// later calls send. Wrong credentials match wire.ErrUnauthenticated, too
// many attempts wire.ErrRateLimited. platform is informational ("iOS",
// "go"); the server records the platform the socket reports.
func (a *API) Login(ctx context.Context, username, password, platform string) (Session, error) {
	var out sessionJSON
	_, err := a.do(ctx, apiCall{
		method: http.MethodPost, path: "/api/auth/login", anon: true,
		body: map[string]string{"username": username, "password": password, "platform": platform},
		out:  &out,
	})
	if err != nil {
		return Session{}, err
	}
	a.setToken(out.Token)
	return out.session(), nil
}

// Logout revokes the token this API holds (POST /api/auth/logout): the
// server refuses it from then on, over HTTP and on the socket, and closes
// the sockets that authenticated with it. The API then holds no token.
func (a *API) Logout(ctx context.Context) error {
	if _, err := a.do(ctx, apiCall{method: http.MethodPost, path: "/api/auth/logout"}); err != nil {
		return err
	}
	a.setToken("")
	return nil
}

// ChangePassword changes the user's password (POST /api/auth/password).
// The server revokes every token of the user and kicks her sockets; the
// fresh token it answers becomes the one this API sends. A wrong
// oldPassword matches wire.ErrPermissionDenied, a newPassword the server
// refuses wire.ErrInvalidArgument.
func (a *API) ChangePassword(ctx context.Context, oldPassword, newPassword string) (Session, error) {
	var out sessionJSON
	_, err := a.do(ctx, apiCall{
		method: http.MethodPost, path: "/api/auth/password",
		body: map[string]string{"oldPassword": oldPassword, "newPassword": newPassword},
		out:  &out,
	})
	if err != nil {
		return Session{}, err
	}
	a.setToken(out.Token)
	return out.session(), nil
}

// DeleteAccount deletes the user's account (POST /api/auth/delete): see
// docs/PROTOCOL.md, section 22, for what goes with it. A wrong password
// matches wire.ErrPermissionDenied. The API then holds no token.
func (a *API) DeleteAccount(ctx context.Context, password string) error {
	_, err := a.do(ctx, apiCall{method: http.MethodPost, path: "/api/auth/delete", body: map[string]string{"password": password}})
	if err != nil {
		return err
	}
	a.setToken("")
	return nil
}

// User is a user's public profile.
type User struct {
	UserID    string
	Username  string
	Nickname  string
	Avatar    string
	Signature string
	// Gender is 0 unknown, 1 male, 2 female.
	Gender int32
	// Birth is the number the user set (0 unknown); the server reads it
	// as Unix milliseconds only to bound it.
	Birth int64
	// Deleted marks a deleted account, whose nickname is "Deleted user"
	// and whose other fields are empty.
	Deleted   bool
	CreatedAt time.Time
	// UpdatedAt is CreatedAt until the profile first changes.
	UpdatedAt time.Time
}

// userJSON is a user as the API sends it. phone, email and extra are always
// empty and left out.
type userJSON struct {
	UserID     string `json:"userID"`
	Nickname   string `json:"nickname"`
	Avatar     string `json:"avatar"`
	Gender     int32  `json:"gender"`
	Birth      int64  `json:"birth"`
	Signature  string `json:"signature"`
	CreateTime int64  `json:"createTime"`
	UpdateTime int64  `json:"updateTime"`
	Username   string `json:"username"`
	Deleted    bool   `json:"deleted"`
}

func (u userJSON) user() User {
	return User{
		UserID:    u.UserID,
		Username:  u.Username,
		Nickname:  u.Nickname,
		Avatar:    u.Avatar,
		Signature: u.Signature,
		Gender:    u.Gender,
		Birth:     u.Birth,
		Deleted:   u.Deleted,
		CreatedAt: fromMillis(u.CreateTime),
		UpdatedAt: fromMillis(u.UpdateTime),
	}
}

// User returns the profile of userID (GET /api/user/info/{id}); an unknown
// user matches wire.ErrNotFound.
func (a *API) User(ctx context.Context, userID string) (User, error) {
	id, err := pathID("userID", userID)
	if err != nil {
		return User{}, err
	}
	var out userJSON
	if _, err := a.do(ctx, apiCall{method: http.MethodGet, path: "/api/user/info/" + id, out: &out}); err != nil {
		return User{}, err
	}
	return out.user(), nil
}

// Users returns the profiles of those of userIDs who exist, in the order
// asked, each once (POST /api/user/info/batch; at most 100 ids).
func (a *API) Users(ctx context.Context, userIDs []string) ([]User, error) {
	if userIDs == nil {
		userIDs = []string{}
	}
	var out []userJSON
	if _, err := a.do(ctx, apiCall{method: http.MethodPost, path: "/api/user/info/batch", body: map[string][]string{"userIDs": userIDs}, out: &out}); err != nil {
		return nil, err
	}
	return each(out, userJSON.user), nil
}

// ProfileUpdate is a change to the user's own profile; nil fields stay as
// they are.
type ProfileUpdate struct {
	Nickname  *string `json:"nickname,omitempty"`
	Avatar    *string `json:"avatar,omitempty"`
	Signature *string `json:"signature,omitempty"`
	Gender    *int32  `json:"gender,omitempty"` // 0 unknown, 1 male, 2 female
	Birth     *int64  `json:"birth,omitempty"`
}

// UpdateProfile changes the user's own profile (POST /api/user/update) and
// returns it as it now is. A value the server refuses matches
// wire.ErrInvalidArgument, and nothing changes.
func (a *API) UpdateProfile(ctx context.Context, u ProfileUpdate) (User, error) {
	var out userJSON
	if _, err := a.do(ctx, apiCall{method: http.MethodPost, path: "/api/user/update", body: u, out: &out}); err != nil {
		return User{}, err
	}
	return out.user(), nil
}

// SearchUsers finds users by keyword (GET /api/user/search): the user whose
// id is the keyword, the one whose username is it, then those whose
// nickname begins with it; at most 50. The keyword, trimmed, must be 2 to
// 64 characters (wire.ErrInvalidArgument otherwise).
func (a *API) SearchUsers(ctx context.Context, keyword string) ([]User, error) {
	var out []userJSON
	if _, err := a.do(ctx, apiCall{method: http.MethodGet, path: "/api/user/search", query: url.Values{"keyword": {keyword}}, out: &out}); err != nil {
		return nil, err
	}
	return each(out, userJSON.user), nil
}
