package im

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

var (
	errNoProfiles = errorf(CodeUnknown, ErrUnsupported, "user profiles are not supported by this server")
	errNoEditor   = errorf(CodeUnknown, ErrUnsupported, "changing profiles is not supported by this server")
)

// Users returns the profiles of the users in ids that exist, deleted ones
// included (User.Deleted set, the profile erased), in the order of ids,
// each once, as viewerID sees them; an empty slice for none. At most
// MaxUserBatch ids: more is ErrLimitExceeded. An invalid id (viewerID's
// included) is ErrInvalidArgument; ErrUnsupported when Config.Users is not
// a UserProfiles.
func (s *Server) Users(ctx context.Context, viewerID string, ids []string) (_ []User, err error) {
	if s.profiles == nil {
		return nil, errNoProfiles
	}
	if !validID(viewerID) {
		return nil, errorf(CodeInvalidArgument, ErrInvalidArgument, "invalid user id")
	}
	if len(ids) > MaxUserBatch {
		return nil, errorf(CodeInvalidArgument, ErrLimitExceeded, "at most %d users at once", MaxUserBatch)
	}
	uniq := make([]string, 0, len(ids))
	for _, id := range ids {
		if err := ValidateID("user id", id); err != nil {
			return nil, err
		}
		if !slices.Contains(uniq, id) {
			uniq = append(uniq, id)
		}
	}
	if len(uniq) == 0 {
		return []User{}, nil
	}
	defer s.recoverHook("Users", &err)
	users, err := s.profiles.Users(ctx, uniq)
	if err != nil {
		return nil, err
	}
	if users == nil {
		users = []User{}
	}
	return users, nil
}

// SearchUsers returns, for viewerID, the users who are not deleted and
// whose id or username is keyword exactly, or whose nickname begins with
// it ignoring case, exact matches first; at most MaxUserSearchResults,
// an empty slice for none. keyword is trimmed of spaces and must then be
// MinSearchKeywordLen to MaxSearchKeywordLen characters of UTF-8:
// ErrInvalidArgument otherwise. Each user's searches count against
// Config.ProfileRate (ErrRateLimited beyond it). ErrUnsupported when
// Config.Users is not a UserProfiles.
func (s *Server) SearchUsers(ctx context.Context, viewerID, keyword string) (_ []User, err error) {
	if s.profiles == nil {
		return nil, errNoProfiles
	}
	if !validID(viewerID) {
		return nil, errorf(CodeInvalidArgument, ErrInvalidArgument, "invalid user id")
	}
	keyword = strings.TrimSpace(keyword)
	// Counted only up to one past the limit: a megabyte of keyword costs
	// no more than a long one.
	if len(keyword) > 4*MaxSearchKeywordLen || !utf8.ValidString(keyword) {
		return nil, errBadKeyword()
	}
	if n := utf8.RuneCountInString(keyword); n < MinSearchKeywordLen || n > MaxSearchKeywordLen {
		return nil, errBadKeyword()
	}
	if !s.profileRequests.allow(viewerID, time.Now()) {
		return nil, errorf(CodeRateLimited, ErrRateLimited, "searching users too fast")
	}
	defer s.recoverHook("SearchUsers", &err)
	users, err := s.profiles.SearchUsers(ctx, keyword, MaxUserSearchResults)
	if err != nil {
		return nil, err
	}
	users = slices.DeleteFunc(users, func(u User) bool { return u.Deleted })
	if len(users) > MaxUserSearchResults {
		users = users[:MaxUserSearchResults]
	}
	if users == nil {
		users = []User{}
	}
	return users, nil
}

func errBadKeyword() *Error {
	return errorf(CodeInvalidArgument, ErrInvalidArgument, "a search keyword must be %d to %d characters", MinSearchKeywordLen, MaxSearchKeywordLen)
}

// UpdateProfile applies u to userID's own profile and returns it as it now
// is. u must pass ValidateProfileUpdate (ErrInvalidArgument otherwise); an
// unknown or deleted user is ErrNotFound (CodeUserNotFound); the updates
// count against Config.ProfileRate (ErrRateLimited beyond it). Nothing is
// changed on an error. ErrUnsupported when Config.Users is not a
// ProfileEditor.
func (s *Server) UpdateProfile(ctx context.Context, userID string, u ProfileUpdate) (_ User, err error) {
	if s.editor == nil {
		return User{}, errNoEditor
	}
	if !validID(userID) {
		return User{}, errorf(CodeInvalidArgument, ErrInvalidArgument, "invalid user id")
	}
	if err := ValidateProfileUpdate(u); err != nil {
		return User{}, err
	}
	if !s.profileRequests.allow(userID, time.Now()) {
		return User{}, errorf(CodeRateLimited, ErrRateLimited, "changing the profile too fast")
	}
	defer s.recoverHook("UpdateProfile", &err)
	return s.editor.UpdateProfile(ctx, userID, u)
}

// DeleteUserData removes what userID has with others, for an account being
// deleted: her friendships, friend requests and blocks, when the Store is
// a FriendStore (RemoveUserRelations), and her memberships of groups. A
// group she owns is handed to its longest-standing admin, or without one
// to its longest-standing member, before she leaves it; a group she is
// alone in is dismissed. Each change is told to the group's members as
// the change of a member would be. Her messages stay, in her
// conversations and her groups' histories. It ends at the first error;
// calling it again carries on where it stopped.
func (s *Server) DeleteUserData(ctx context.Context, userID string) (err error) {
	if !validID(userID) {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "invalid user id")
	}
	if fs, ok := s.store.(FriendStore); ok {
		if err := func() (err error) {
			defer s.recoverStore("RemoveUserRelations", &err)
			return fs.RemoveUserRelations(ctx, userID)
		}(); err != nil {
			return err
		}
	}
	ids, err := func() (_ []string, err error) {
		defer s.recoverStore("UserGroups", &err)
		return s.store.UserGroups(ctx, userID)
	}()
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.leaveForGood(ctx, id, userID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

// leaveForGood takes userID out of group id: as the owner, she hands the
// group to a successor first, or dismisses it if she is alone.
func (s *Server) leaveForGood(ctx context.Context, id, userID string) error {
	_, err := s.changeGroup(ctx, id, func(g Group, members []GroupMember) (*groupEdit, error) {
		if roleOf(members, userID) != RoleOwner {
			return nil, nil
		}
		heir, ok := successor(members, userID)
		if !ok {
			return &groupEdit{
				change: GroupChange{Delete: true},
				notice: GroupNotice{Type: GroupNoticeDismissed, Operator: userID},
			}, nil
		}
		heir.Role = RoleOwner
		return &groupEdit{
			change: GroupChange{Put: []GroupMember{heir}},
			notice: GroupNotice{Type: GroupNoticeRoleChanged, Operator: userID, UserIDs: []string{heir.UserID}, Role: RoleOwner},
		}, nil
	})
	if err != nil {
		return err
	}
	_, err = s.changeGroup(ctx, id, func(g Group, members []GroupMember) (*groupEdit, error) {
		switch roleOf(members, userID) {
		case 0:
			return nil, nil
		case RoleOwner:
			// Made owner again by someone else meanwhile: the next call
			// hands it on.
			return nil, errorf(CodeUnknown, ErrConflict, "the group changed while its owner was leaving; try again")
		}
		return &groupEdit{
			change: GroupChange{Remove: []string{userID}},
			notice: GroupNotice{Type: GroupNoticeLeft, Operator: userID, UserIDs: []string{userID}},
			also:   []string{userID},
		}, nil
	})
	return err
}

// successor is the member who takes a group over from leaving: the admin
// who joined first, else the member who did; ties go to the smaller id.
func successor(members []GroupMember, leaving string) (GroupMember, bool) {
	var best GroupMember
	found := false
	for _, m := range members {
		if m.UserID == leaving {
			continue
		}
		if !found || m.Role > best.Role || m.Role == best.Role && cmp.Or(m.JoinedAt.Compare(best.JoinedAt), strings.Compare(m.UserID, best.UserID)) < 0 {
			best, found = m, true
		}
	}
	return best, found
}
