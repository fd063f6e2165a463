package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth/account"
)

// AccountLifecycle is what the logout, password and delete routes need
// beside Accounts: *auth.Accounts has it. When Options.Accounts has it too
// and Options.Server is set, those routes are served.
type AccountLifecycle interface {
	Logout(ctx context.Context, tokenID string, expires time.Time) error
	ChangePassword(ctx context.Context, userID, oldPassword, newPassword string) (account.LoginResult, error)
	DeleteAccount(ctx context.Context, userID, password string) error
}

// handleUsers adds the user routes, all of which need a bearer token. The
// paths and bodies are IM-iOS-SDK's (Business/User/IMUserManager.swift).
func (a *api) handleUsers(r *router) {
	r.handle(http.MethodGet, "/api/user/info/{id}", a.authed(a.noParams(a.serveUserInfo)))
	r.handle(http.MethodPost, "/api/user/info/batch", a.authed(a.serveUserBatch))
	r.handle(http.MethodPost, "/api/user/update", a.authed(a.serveUpdateUser))
	r.handle(http.MethodGet, "/api/user/search", a.authed(a.serveSearchUsers))
}

// handleAccountLifecycle adds logout, password change and account deletion.
func (a *api) handleAccountLifecycle(r *router) {
	r.handle(http.MethodPost, "/api/auth/logout", a.authedIdentity(a.serveLogout))
	r.handle(http.MethodPost, "/api/auth/password", a.authed(a.serveChangePassword))
	r.handle(http.MethodPost, "/api/auth/delete", a.authed(a.serveDeleteAccount))
}

// userJSON is a user as IM-iOS-SDK's IMUser decodes it
// (Core/Models/IMModels.swift), plus username and deleted. phone, email
// and extra are always empty: the server keeps none of them.
type userJSON struct {
	UserID     string    `json:"userID"`
	Nickname   string    `json:"nickname"`
	Avatar     string    `json:"avatar"`
	Phone      string    `json:"phone"`
	Email      string    `json:"email"`
	Gender     im.Gender `json:"gender"`
	Birth      int64     `json:"birth"`
	Signature  string    `json:"signature"`
	Extra      string    `json:"extra"`
	CreateTime int64     `json:"createTime"` // Unix milliseconds
	UpdateTime int64     `json:"updateTime"` // Unix milliseconds
	Username   string    `json:"username"`
	Deleted    bool      `json:"deleted"`
}

func newUserJSON(u im.User) userJSON {
	updated := u.UpdatedAt
	if updated.IsZero() {
		// Never changed since it was made.
		updated = u.CreatedAt
	}
	return userJSON{
		UserID:     u.ID,
		Nickname:   u.Nickname,
		Avatar:     u.Avatar,
		Gender:     u.Gender,
		Birth:      u.Birth,
		Signature:  u.Signature,
		CreateTime: unixMilli(u.CreatedAt),
		UpdateTime: unixMilli(updated),
		Username:   u.Username,
		Deleted:    u.Deleted,
	}
}

func newUsersJSON(us []im.User) []userJSON {
	out := make([]userJSON, len(us))
	for i, u := range us {
		out[i] = newUserJSON(u)
	}
	return out
}

func errUserNotFound() error {
	return &im.Error{Code: im.CodeUserNotFound, Msg: "user not found", Err: im.ErrNotFound}
}

func (a *api) serveUserInfo(w http.ResponseWriter, r *http.Request, user string) {
	users, err := a.server.Users(r.Context(), user, []string{r.PathValue("id")})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if len(users) == 0 {
		a.writeError(w, r, errUserNotFound())
		return
	}
	writeOK(w, newUserJSON(users[0]))
}

type userBatchRequest struct {
	UserIDs []string `json:"userIDs"`
}

func (a *api) serveUserBatch(w http.ResponseWriter, r *http.Request, user string) {
	var req userBatchRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	users, err := a.server.Users(r.Context(), user, req.UserIDs)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeOK(w, newUsersJSON(users))
}

// updateUserRequest is IM-iOS-SDK's user update, which sends every field;
// a field left out (or null) stays as it is.
type updateUserRequest struct {
	UserID    *string    `json:"userID"`
	Nickname  *string    `json:"nickname"`
	Avatar    *string    `json:"avatar"`
	Signature *string    `json:"signature"`
	Gender    *im.Gender `json:"gender"`
	Birth     *int64     `json:"birth"`
}

func (a *api) serveUpdateUser(w http.ResponseWriter, r *http.Request, user string) {
	var req updateUserRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	if req.UserID != nil && *req.UserID != user {
		a.writeError(w, r, &im.Error{Msg: "a user changes only her own profile", Err: im.ErrPermissionDenied})
		return
	}
	u, err := a.server.UpdateProfile(r.Context(), user, im.ProfileUpdate{
		Nickname:  req.Nickname,
		Avatar:    req.Avatar,
		Signature: req.Signature,
		Gender:    req.Gender,
		Birth:     req.Birth,
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeOK(w, newUserJSON(u))
}

type searchUsersRequest struct {
	Keyword string `json:"keyword"`
}

// serveSearchUsers takes the keyword from the query string, where the
// SDK's HTTP library puts a GET's parameters, or else from a JSON body.
func (a *api) serveSearchUsers(w http.ResponseWriter, r *http.Request, user string) {
	var req searchUsersRequest
	if q := r.URL.Query(); q.Has("keyword") {
		req.Keyword = q.Get("keyword")
	} else if err := a.decodeOptionalBody(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	users, err := a.server.SearchUsers(r.Context(), user, req.Keyword)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeOK(w, newUsersJSON(users))
}

// serveLogout revokes the token the request carries and closes the
// connections that authenticated with it.
func (a *api) serveLogout(w http.ResponseWriter, r *http.Request, id im.Identity) {
	if err := a.decodeOptionalBody(w, r, &struct{}{}); err != nil {
		a.writeError(w, r, err)
		return
	}
	if id.TokenID == "" {
		a.writeError(w, r, badRequest("this token has no id and cannot be logged out on its own; change the password to revoke every token"))
		return
	}
	if err := a.lifecycle.Logout(r.Context(), id.TokenID, id.Expires); err != nil {
		a.writeError(w, r, err)
		return
	}
	a.server.KickToken(id.UserID, id.TokenID, account.KickLoggedOut)
	writeOK(w, nil)
}

type changePasswordRequest struct {
	OldPassword string `json:"oldPassword"`
	NewPassword string `json:"newPassword"`
}

func (a *api) serveChangePassword(w http.ResponseWriter, r *http.Request, user string) {
	var req changePasswordRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	res, err := a.lifecycle.ChangePassword(clientContext(r), user, req.OldPassword, req.NewPassword)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.server.Kick(user, account.KickPasswordChanged)
	a.log.InfoContext(r.Context(), "httpapi: password changed", "user", user)
	writeOK(w, loginResponse{Token: res.Token, UserID: res.UserID, ExpiresAt: res.Expires.UnixMilli()})
}

type deleteAccountRequest struct {
	Password string `json:"password"`
}

func (a *api) serveDeleteAccount(w http.ResponseWriter, r *http.Request, user string) {
	var req deleteAccountRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.lifecycle.DeleteAccount(clientContext(r), user, req.Password); err != nil {
		a.writeError(w, r, err)
		return
	}
	a.server.Kick(user, account.KickAccountDeleted)
	a.log.InfoContext(r.Context(), "httpapi: account deleted", "user", user)
	// The account is gone whatever follows: a failure to remove its
	// relations and memberships is logged, for the operator to run
	// Server.DeleteUserData again, and not the client's to retry.
	if err := a.server.DeleteUserData(context.WithoutCancel(r.Context()), user); err != nil {
		a.log.ErrorContext(r.Context(), "httpapi: removing a deleted account's relations and groups failed", "user", user, "err", err)
	}
	if a.files != nil {
		if err := a.files.svc.ReleaseOwner(context.WithoutCancel(r.Context()), user); err != nil {
			a.log.ErrorContext(r.Context(), "httpapi: releasing a deleted account's files failed", "user", user, "err", err)
		}
	}
	writeOK(w, nil)
}
