package im

import (
	"context"
	"time"
	"unicode/utf8"
)

// Gender is what a user says of herself in her profile; the values are the
// ones IM-iOS-SDK sends and are stored as numbers.
type Gender int32

// Genders.
const (
	GenderUnknown Gender = 0
	GenderMale    Gender = 1
	GenderFemale  Gender = 2
)

// User is a user's public profile: what other users see of her.
type User struct {
	ID        string
	Username  string // the login name, if the directory has one
	Nickname  string
	Avatar    string // a URL
	Signature string // a short line about herself
	Gender    Gender
	// Birth is the birth date as the client gives it (IM-iOS-SDK sends an
	// integer); 0 means unknown.
	Birth int64
	// Deleted is true for an account that was deleted: its messages stay
	// in others' history, and its profile is erased (DeletedUserNickname
	// is shown instead).
	Deleted   bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// DeletedUserNickname is the nickname a deleted user's profile shows.
const DeletedUserNickname = "Deleted user"

// Limits of profile fields.
const (
	MaxNicknameLen  = 64   // characters
	MaxAvatarLen    = 2048 // bytes
	MaxSignatureLen = 256  // characters
	// Birth is within the years 1 to 9999 read as Unix milliseconds,
	// which also holds every yyyymmdd integer.
	MinBirth int64 = -62135596800000
	MaxBirth int64 = 253402300799999
	// MaxUserBatch is the most users one Users call looks up.
	MaxUserBatch = 100
	// MaxUserSearchResults bounds a search's answer.
	MaxUserSearchResults = 50
	// Search keywords are 2 to MaxSearchKeywordLen characters.
	MinSearchKeywordLen = 2
	MaxSearchKeywordLen = 64
)

// ProfileUpdate changes a user's profile: each field that is not nil
// replaces the stored one.
type ProfileUpdate struct {
	Nickname  *string
	Avatar    *string
	Signature *string
	Gender    *Gender
	Birth     *int64
}

// Empty reports whether u changes nothing.
func (u ProfileUpdate) Empty() bool {
	return u.Nickname == nil && u.Avatar == nil && u.Signature == nil && u.Gender == nil && u.Birth == nil
}

// ValidateProfileUpdate returns an error wrapping ErrInvalidArgument, naming
// the field, unless every field u sets is within its limits: Nickname 1 to
// MaxNicknameLen characters of printable UTF-8 that ValidateName accepts;
// Avatar at most MaxAvatarLen bytes of printable UTF-8 without the
// characters ValidateID refuses; Signature at most MaxSignatureLen
// characters of printable UTF-8 that ValidateName accepts (no control
// characters, line breaks included); Gender a known one; Birth within
// MinBirth and MaxBirth.
func ValidateProfileUpdate(u ProfileUpdate) error {
	if u.Nickname != nil {
		n := *u.Nickname
		if !displayName(n, 4*MaxNicknameLen) || utf8.RuneCountInString(n) > MaxNicknameLen {
			if err := ValidateName("nickname", n); err != nil {
				return err
			}
			return errorf(CodeInvalidArgument, ErrInvalidArgument, "nickname must be 1 to %d characters of printable UTF-8", MaxNicknameLen)
		}
	}
	if u.Avatar != nil && *u.Avatar != "" && !printable(*u.Avatar, MaxAvatarLen) {
		return nameError("avatar", *u.Avatar, "avatar must be at most %d bytes of printable UTF-8", MaxAvatarLen)
	}
	if u.Signature != nil && *u.Signature != "" {
		s := *u.Signature
		if !displayName(s, 4*MaxSignatureLen) || utf8.RuneCountInString(s) > MaxSignatureLen {
			if err := ValidateName("signature", s); err != nil {
				return err
			}
			return errorf(CodeInvalidArgument, ErrInvalidArgument, "signature must be at most %d characters of printable UTF-8", MaxSignatureLen)
		}
	}
	if u.Gender != nil && (*u.Gender < GenderUnknown || *u.Gender > GenderFemale) {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "gender must be 0 (unknown), 1 or 2")
	}
	if u.Birth != nil && (*u.Birth < MinBirth || *u.Birth > MaxBirth) {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "birth is out of range")
	}
	return nil
}

// UserProfiles is an optional part of a UserDirectory (Config.Users): the
// users' profiles. The Server answers profile lookups and searches from
// it (Server.Users, Server.SearchUsers); without it they answer "not
// supported". *auth.Accounts implements it over its AccountStore; a host
// whose users live in its own database implements it there.
//
// Both methods are safe for concurrent use and honour ctx cancellation.
type UserProfiles interface {
	// Users returns the profiles of the users in ids that exist, deleted
	// ones included (Deleted set, profile erased), in the order of ids,
	// each once. The Server passes at most MaxUserBatch valid ids.
	Users(ctx context.Context, ids []string) ([]User, error)
	// SearchUsers returns at most limit users that are not deleted and
	// whose id or username is keyword exactly, or whose nickname begins
	// with keyword, ignoring case: exact matches first. It must not scan
	// every user; *auth.Accounts searches an index of nicknames. The
	// Server passes a keyword of MinSearchKeywordLen to
	// MaxSearchKeywordLen characters and a limit of at most
	// MaxUserSearchResults.
	SearchUsers(ctx context.Context, keyword string, limit int) ([]User, error)
}

// ProfileEditor is an optional part of a UserDirectory that lets users
// change their own profile (Server.UpdateProfile). UpdateProfile applies u
// to userID's profile atomically and returns it as it now is: ErrNotFound
// (CodeUserNotFound) for an unknown or deleted user, ErrInvalidArgument
// for a u that fails ValidateProfileUpdate; nothing is changed then.
type ProfileEditor interface {
	UpdateProfile(ctx context.Context, userID string, u ProfileUpdate) (User, error)
}
