package im

import (
	"context"
	"time"
	"unicode/utf8"
)

// Friend is one side of a friendship: UserID's view of FriendID. A
// friendship is always stored as both sides, each with its own remark.
type Friend struct {
	UserID   string
	FriendID string
	// Remark is what UserID calls FriendID; only UserID sees it.
	Remark    string
	CreatedAt time.Time
}

// FriendRequest is a pending request from From to To.
type FriendRequest struct {
	From      string
	To        string
	Message   string
	CreatedAt time.Time
}

// Block is BlockerID having blocked BlockedID.
type Block struct {
	BlockerID string
	BlockedID string
	CreatedAt time.Time
}

// Relation is how two users, UserID and OtherID, stand to each other.
type Relation struct {
	UserID, OtherID string
	// Friend is UserID's side of the friendship; Friends tells whether
	// there is one.
	Friends bool
	Friend  Friend
	// RequestSent: UserID has a pending request to OtherID;
	// RequestReceived: OtherID has one to UserID.
	RequestSent, RequestReceived bool
	// Blocking: UserID blocks OtherID; BlockedBy: OtherID blocks UserID.
	Blocking, BlockedBy bool
}

// Blocked reports whether either user blocks the other.
func (r Relation) Blocked() bool { return r.Blocking || r.BlockedBy }

// FriendOutcome is what RequestFriend did.
type FriendOutcome int

// Outcomes of FriendStore.RequestFriend.
const (
	// FriendRequested: the request is stored (or, repeated, its message
	// and time replaced), pending the other user's answer.
	FriendRequested FriendOutcome = 1
	// FriendAccepted: the other user had asked first, so the two are
	// friends now and both requests are gone.
	FriendAccepted FriendOutcome = 2
	// FriendAlready: the two are friends already; nothing was written.
	FriendAlready FriendOutcome = 3
)

// Limits of friend data.
const (
	MaxFriendMessageLen = 256 // characters of a request's message
	MaxFriendRemarkLen  = 64  // characters
)

// FriendStore is an optional Store capability: friendships, pending friend
// requests and blocks. Without it the friend calls answer "not supported",
// and nobody is blocked.
//
// Every method is atomic and durable when it returns, safe for concurrent
// use from several Servers sharing the Store, and honours ctx
// cancellation. Ids are checked with ValidateID and texts with
// ValidateFriendText: an invalid one, or the same user on both sides, is
// ErrInvalidArgument and nothing is written. The Store keeps these rules
// under concurrent calls: two users who ask each other at the same moment
// end as one friendship with no request left, whichever commits first;
// a block and a friendship or request between the same two users never
// both exist.
type FriendStore interface {
	// RequestFriend records that r.From asks r.To to be friends. If r.To
	// has a pending request to r.From, the two become friends instead
	// (both sides, CreatedAt r.CreatedAt, empty remarks) and both requests
	// are removed: FriendAccepted. If they are friends already it writes
	// nothing: FriendAlready. If either blocks the other it writes
	// nothing and returns ErrPermissionDenied. Otherwise it stores r,
	// replacing an earlier request from r.From to r.To: FriendRequested.
	RequestFriend(ctx context.Context, r FriendRequest) (FriendOutcome, error)

	// AcceptFriend makes userID and fromID friends (both sides, CreatedAt
	// at, empty remarks), removing fromID's pending request to userID and
	// any from userID to fromID, and returns userID's side. ErrNotFound
	// if fromID has no pending request to userID.
	AcceptFriend(ctx context.Context, userID, fromID string, at time.Time) (Friend, error)

	// RejectFriend removes fromID's pending request to userID.
	// ErrNotFound if there is none.
	RejectFriend(ctx context.Context, userID, fromID string) error

	// CancelFriendRequest removes userID's own pending request to toID.
	// ErrNotFound if there is none.
	CancelFriendRequest(ctx context.Context, userID, toID string) error

	// DeleteFriend ends the friendship of userID and friendID, both
	// sides. ErrNotFound if they are not friends.
	DeleteFriend(ctx context.Context, userID, friendID string) error

	// SetFriendRemark sets userID's remark for friendID and returns
	// userID's side. ErrNotFound if they are not friends.
	SetFriendRemark(ctx context.Context, userID, friendID, remark string) (Friend, error)

	// Friends returns userID's side of each of her friendships, ordered
	// by FriendID; an empty slice for none.
	Friends(ctx context.Context, userID string) ([]Friend, error)

	// FriendRequests returns the pending requests to userID (incoming)
	// and from userID (outgoing), each ordered by CreatedAt, then by the
	// other user's id; empty slices for none.
	FriendRequests(ctx context.Context, userID string) (incoming, outgoing []FriendRequest, err error)

	// Relation returns how userID and otherID stand to each other, read
	// from one snapshot. Unknown users simply have no relation.
	Relation(ctx context.Context, userID, otherID string) (Relation, error)

	// Block records that userID blocks blockedID (CreatedAt at) and, in
	// the same commit, ends their friendship and removes the pending
	// requests between them, either way. Blocking again changes nothing.
	Block(ctx context.Context, userID, blockedID string, at time.Time) error

	// Unblock removes userID's block of blockedID; without one it does
	// nothing. A block by blockedID of userID stays.
	Unblock(ctx context.Context, userID, blockedID string) error

	// Blocks returns the users userID blocks, ordered by BlockedID; an
	// empty slice for none.
	Blocks(ctx context.Context, userID string) ([]Block, error)

	// RemoveUserRelations removes every friendship, request and block
	// userID is part of, either side, in one commit (her account is
	// being deleted).
	RemoveUserRelations(ctx context.Context, userID string) error
}

// ValidateFriendText returns an error wrapping ErrInvalidArgument unless s,
// a request's message (what "message") or a remark (what "remark"), is at
// most max characters of printable UTF-8 that ValidateName accepts. The
// empty string is allowed.
func ValidateFriendText(what, s string, max int) error {
	if s == "" {
		return nil
	}
	if !displayName(s, 4*max) || utf8.RuneCountInString(s) > max {
		if err := ValidateName(what, s); err != nil {
			return err
		}
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "%s must be at most %d characters of printable UTF-8", what, max)
	}
	return nil
}

// ValidateFriendPair returns an error wrapping ErrInvalidArgument unless a
// and b are valid user ids (ValidateID) of two different users.
func ValidateFriendPair(a, b string) error {
	if err := ValidateID("user id", a); err != nil {
		return err
	}
	if err := ValidateID("user id", b); err != nil {
		return err
	}
	if a == b {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "a user cannot be her own friend")
	}
	return nil
}
