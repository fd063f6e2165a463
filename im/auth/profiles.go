package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth/account"
)

// Kick reasons for the sessions a caller closes after these calls.
const (
	KickLoggedOut       = account.KickLoggedOut
	KickPasswordChanged = account.KickPasswordChanged
	KickAccountDeleted  = account.KickAccountDeleted
)

func unsupported(what string) error {
	return &im.Error{Code: im.CodeUnknown, Msg: what + " is not supported by this server's account store", Err: im.ErrUnsupported}
}

func noSuchUser() error {
	return &im.Error{Code: im.CodeUserNotFound, Msg: "user not found", Err: im.ErrNotFound}
}

func wrongPassword() error {
	return &im.Error{Code: im.CodePermissionDenied, Msg: "wrong password", Err: im.ErrPermissionDenied}
}

// userOf is an account as others see it: a deleted one shows
// im.DeletedUserNickname and nothing else of its profile.
func userOf(a Account) im.User {
	if a.Deleted {
		return im.User{ID: a.UserID, Nickname: im.DeletedUserNickname, Deleted: true, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	}
	return im.User{
		ID:        a.UserID,
		Username:  a.Username,
		Nickname:  a.Nickname,
		Avatar:    a.Avatar,
		Signature: a.Signature,
		Gender:    a.Gender,
		Birth:     a.Birth,
		CreatedAt: a.CreatedAt,
		UpdatedAt: a.UpdatedAt,
	}
}

// Users implements im.UserProfiles with the store's AccountsByID; it
// answers im.ErrUnsupported when the store is not an AccountSearcher.
func (a *Accounts) Users(ctx context.Context, ids []string) ([]im.User, error) {
	if a.searcher == nil {
		return nil, unsupported("reading profiles")
	}
	accs, err := a.searcher.AccountsByID(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("auth: read accounts: %w", err)
	}
	out := make([]im.User, len(accs))
	for i, acc := range accs {
		out[i] = userOf(acc)
	}
	return out, nil
}

// SearchUsers implements im.UserProfiles: the account whose user id is
// keyword, then the one whose username is keyword (both exactly), then
// those whose nickname begins with keyword ignoring case (NicknameKey), in
// the order of SearchAccounts; each once, deleted accounts left out, at
// most limit. It answers im.ErrUnsupported when the store is not an
// AccountSearcher.
func (a *Accounts) SearchUsers(ctx context.Context, keyword string, limit int) ([]im.User, error) {
	if a.searcher == nil {
		return nil, unsupported("searching users")
	}
	if limit < 1 {
		return []im.User{}, nil
	}
	var out []im.User
	seen := make(map[string]bool)
	add := func(acc Account) {
		if !acc.Deleted && !seen[acc.UserID] && len(out) < limit {
			seen[acc.UserID] = true
			out = append(out, userOf(acc))
		}
	}
	if im.ValidateID("user id", keyword) == nil {
		acc, err := a.store.Account(ctx, keyword)
		switch {
		case err == nil:
			add(acc)
		case !errors.Is(err, im.ErrNotFound):
			return nil, fmt.Errorf("auth: search users: %w", err)
		}
	}
	if checkUsername(keyword) == nil {
		acc, err := a.store.AccountByUsername(ctx, keyword)
		switch {
		case err == nil:
			add(acc)
		case !errors.Is(err, im.ErrNotFound):
			return nil, fmt.Errorf("auth: search users: %w", err)
		}
	}
	if len(out) < limit {
		accs, err := a.searcher.SearchAccounts(ctx, NicknameKey(keyword), limit)
		if err != nil {
			return nil, fmt.Errorf("auth: search users: %w", err)
		}
		for _, acc := range accs {
			add(acc)
		}
	}
	if out == nil {
		out = []im.User{}
	}
	return out, nil
}

// lockUser serialises the profile writes of userID in this process.
func (a *Accounts) lockUser(userID string) func() {
	h := fnv.New32a()
	h.Write([]byte(userID))
	mu := &a.writes[h.Sum32()%uint32(len(a.writes))]
	mu.Lock()
	return mu.Unlock
}

// UpdateProfile implements im.ProfileEditor through the store's
// AccountUpdater (im.ErrUnsupported without one): it applies u, which
// must pass im.ValidateProfileUpdate, to userID's account and returns the
// profile as it now is, UpdatedAt set to now. An unknown or deleted
// account is im.ErrNotFound (im.CodeUserNotFound).
func (a *Accounts) UpdateProfile(ctx context.Context, userID string, u im.ProfileUpdate) (im.User, error) {
	if a.updater == nil {
		return im.User{}, unsupported("changing profiles")
	}
	if err := im.ValidateID("user id", userID); err != nil {
		return im.User{}, err
	}
	if err := im.ValidateProfileUpdate(u); err != nil {
		return im.User{}, err
	}
	defer a.lockUser(userID)()
	acc, err := a.liveAccount(ctx, userID)
	if err != nil {
		return im.User{}, err
	}
	if u.Empty() {
		return userOf(acc), nil
	}
	acc, err = a.updater.UpdateAccount(ctx, userID, AccountUpdate{
		Nickname:  u.Nickname,
		Avatar:    u.Avatar,
		Signature: u.Signature,
		Gender:    u.Gender,
		Birth:     u.Birth,
		UpdatedAt: a.now().UTC(),
	})
	if errors.Is(err, im.ErrNotFound) {
		return im.User{}, noSuchUser()
	}
	if err != nil {
		return im.User{}, fmt.Errorf("auth: update profile: %w", err)
	}
	return userOf(acc), nil
}

// liveAccount reads userID's account, refusing a missing or deleted one
// with noSuchUser.
func (a *Accounts) liveAccount(ctx context.Context, userID string) (Account, error) {
	acc, err := a.store.Account(ctx, userID)
	switch {
	case errors.Is(err, im.ErrNotFound):
		return Account{}, noSuchUser()
	case err != nil:
		return Account{}, fmt.Errorf("auth: look up account: %w", err)
	case acc.Deleted:
		return Account{}, noSuchUser()
	}
	return acc, nil
}

// Logout revokes the one token whose id is tokenID (Claims.ID,
// im.Identity.TokenID) until expires, when it stops working anyway: a
// Guard over the same store refuses it from then on, while the user's
// other tokens keep working. Closing the sessions that use it is the
// caller's (im.Server.KickToken). An invalid tokenID is
// im.ErrInvalidArgument (a token without an id cannot be revoked on its
// own); a store without RevokedTokens answers im.ErrUnsupported.
func (a *Accounts) Logout(ctx context.Context, tokenID string, expires time.Time) error {
	if a.revoked == nil {
		return unsupported("logging out one token")
	}
	if err := ValidateTokenID(tokenID); err != nil {
		return err
	}
	if err := a.revoked.RevokeToken(ctx, tokenID, expires); err != nil {
		return fmt.Errorf("auth: revoke token: %w", err)
	}
	return nil
}

// checkOwnPassword checks the password of userID's account, as Login
// would: the same per-address limits, the same count of failures (per
// user and address, LoginAttempts within LoginWindow) and the same bcrypt
// work. A missing or deleted account is im.ErrNotFound, a disabled one and
// a wrong password im.ErrPermissionDenied ("wrong password").
func (a *Accounts) checkOwnPassword(ctx context.Context, userID, password string) (Account, error) {
	if err := im.ValidateID("user id", userID); err != nil {
		return Account{}, err
	}
	if err := a.admit(ctx); err != nil {
		return Account{}, err
	}
	// Its own key space: failing here does not lock the username's
	// logins, and the other way round.
	key := "\x01" + userID + "\x00"
	if addr, ok := ClientAddr(ctx); ok {
		key += addr.String()
	}
	if ok, wait := a.limit.acquire(key, a.now()); !ok {
		return Account{}, account.Throttled("too many wrong passwords, try again later", wait)
	}
	acc, err := a.liveAccount(ctx, userID)
	if err != nil {
		a.limit.release(key)
		return Account{}, err
	}
	hash, pw := acc.PasswordHash, []byte(password)
	bad := acc.Disabled || len(hash) == 0 || len(pw) > MaxPasswordBytes
	if len(hash) == 0 {
		hash = a.dummyHash
	}
	if len(pw) > MaxPasswordBytes {
		pw = pw[:MaxPasswordBytes]
	}
	if err := a.acquireHash(ctx); err != nil {
		a.limit.release(key)
		return Account{}, err
	}
	mismatch := bcrypt.CompareHashAndPassword(hash, pw) != nil
	a.releaseHash()
	if mismatch || bad {
		return Account{}, wrongPassword()
	}
	a.limit.reset(key)
	return acc, nil
}

// hash returns the bcrypt hash of password at the configured cost.
func (a *Accounts) hash(ctx context.Context, password []byte) ([]byte, error) {
	if err := a.acquireHash(ctx); err != nil {
		return nil, err
	}
	h, err := bcrypt.GenerateFromPassword(password, a.cost)
	a.releaseHash()
	if err != nil {
		return nil, fmt.Errorf("auth: hash password: %w", err)
	}
	return h, nil
}

// ChangePassword sets userID's password to newPassword after checking
// oldPassword with the limits of Login, revokes every token the user holds
// (TokenVersions) and returns a fresh token for the caller. Kicking the
// user's sessions is the caller's (im.Server.Kick, KickPasswordChanged).
// A newPassword that breaks the rules of Register is
// im.ErrInvalidArgument; a wrong oldPassword, or a disabled account,
// im.ErrPermissionDenied; a missing or deleted account im.ErrNotFound.
// A store without AccountUpdater and TokenVersions answers
// im.ErrUnsupported. Nothing is changed on an error, except that a
// failure to revoke after the new password is stored is reported as it is.
func (a *Accounts) ChangePassword(ctx context.Context, userID, oldPassword, newPassword string) (LoginResult, error) {
	if a.updater == nil || a.versions == nil {
		return LoginResult{}, unsupported("changing passwords")
	}
	if err := checkPassword(newPassword); err != nil {
		return LoginResult{}, err
	}
	if _, err := a.checkOwnPassword(ctx, userID, oldPassword); err != nil {
		return LoginResult{}, err
	}
	hash, err := a.hash(ctx, []byte(newPassword))
	if err != nil {
		return LoginResult{}, err
	}
	unlock := a.lockUser(userID)
	if _, err := a.liveAccount(ctx, userID); err != nil {
		unlock()
		return LoginResult{}, err
	}
	_, err = a.updater.UpdateAccount(ctx, userID, AccountUpdate{PasswordHash: hash, UpdatedAt: a.now().UTC()})
	unlock()
	if err != nil {
		return LoginResult{}, fmt.Errorf("auth: store password: %w", err)
	}
	version, err := a.versions.BumpTokenVersion(ctx, userID)
	if err != nil {
		return LoginResult{}, fmt.Errorf("auth: password changed, but revoking its tokens failed: %w", err)
	}
	token, expires, err := a.tokens.IssueVersion(userID, version)
	if err != nil {
		return LoginResult{}, err
	}
	return LoginResult{UserID: userID, Token: token, Expires: expires}, nil
}

// DeleteAccount deletes userID's account after checking password with the
// limits of Login: it is marked Deleted and Disabled, its nickname,
// avatar, signature, gender and birth are erased, its password hash is
// replaced by one no password matches, and every token it holds is revoked
// (TokenVersions). Its id and username stay taken. Kicking its sessions
// and removing what it has with others (im.Server.DeleteUserData) are the
// caller's. A wrong password is im.ErrPermissionDenied; a missing or
// deleted account im.ErrNotFound; a store without AccountUpdater and
// TokenVersions answers im.ErrUnsupported.
func (a *Accounts) DeleteAccount(ctx context.Context, userID, password string) error {
	if a.updater == nil || a.versions == nil {
		return unsupported("deleting accounts")
	}
	if _, err := a.checkOwnPassword(ctx, userID, password); err != nil {
		return err
	}
	// A real bcrypt hash of a secret nobody keeps, so that logins for the
	// name cost what any other does.
	var secret [32]byte
	rand.Read(secret[:])
	hash, err := a.hash(ctx, secret[:])
	if err != nil {
		return err
	}
	empty, zeroGender, zeroBirth, yes := "", im.GenderUnknown, int64(0), true
	unlock := a.lockUser(userID)
	if _, err := a.liveAccount(ctx, userID); err != nil {
		unlock()
		return err
	}
	_, err = a.updater.UpdateAccount(ctx, userID, AccountUpdate{
		Nickname:     &empty,
		PasswordHash: hash,
		Disabled:     &yes,
		Avatar:       &empty,
		Signature:    &empty,
		Gender:       &zeroGender,
		Birth:        &zeroBirth,
		UpdatedAt:    a.now().UTC(),
		Deleted:      &yes,
	})
	unlock()
	if err != nil {
		return fmt.Errorf("auth: delete account: %w", err)
	}
	a.mu.Lock()
	delete(a.known, userID)
	a.mu.Unlock()
	if _, err := a.versions.BumpTokenVersion(ctx, userID); err != nil {
		// The account is disabled, which a Guard with Accounts refuses.
		return fmt.Errorf("auth: account deleted, but revoking its tokens failed: %w", err)
	}
	return nil
}
