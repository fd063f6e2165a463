package im

import (
	"context"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// GroupRole is a member's rank in a group. Higher outranks lower.
type GroupRole int32

// Group roles.
const (
	RoleMember GroupRole = 1
	RoleAdmin  GroupRole = 2 // may invite, kick members and edit the group
	RoleOwner  GroupRole = 3 // exactly one per group; may also dismiss it and set roles
)

// String returns "owner", "admin" or "member".
func (r GroupRole) String() string {
	switch r {
	case RoleOwner:
		return "owner"
	case RoleAdmin:
		return "admin"
	case RoleMember:
		return "member"
	}
	return "role(" + strconv.Itoa(int(r)) + ")"
}

// MarshalText encodes r as its String, the form JSON carries (GroupNotice,
// the HTTP API).
func (r GroupRole) MarshalText() ([]byte, error) {
	if r < RoleMember || r > RoleOwner {
		return nil, fmt.Errorf("im: unknown group role %d", r)
	}
	return []byte(r.String()), nil
}

// UnmarshalText decodes "owner", "admin" or "member".
func (r *GroupRole) UnmarshalText(b []byte) error {
	for _, v := range [...]GroupRole{RoleMember, RoleAdmin, RoleOwner} {
		if string(b) == v.String() {
			*r = v
			return nil
		}
	}
	return errorf(CodeInvalidArgument, ErrInvalidArgument, "unknown group role %q", b)
}

// JoinPolicy decides who may add members to a group.
type JoinPolicy int32

// The values are stored as numbers by the stores, so they never change.
// JoinOpen is 0, the zero value of GroupSpec.JoinPolicy: a caller of
// Server.CreateGroup who wants a private group says so.
const (
	// JoinOpen lets anyone join by themselves, and any member invite;
	// anyone may look the group up (Server.Group).
	JoinOpen JoinPolicy = 0
	// JoinInviteOnly refuses self-joins; only admins and the owner add
	// members.
	JoinInviteOnly JoinPolicy = 1
	// JoinApproval turns a self-join into a request that an admin or the
	// owner approves or rejects (GroupJoinRequestStore); members invite
	// as in an open group. Like JoinOpen, anyone may look the group up.
	JoinApproval JoinPolicy = 2
)

// HistoryVisibility decides which of a group's messages a new member
// reads: those from her joining on, or all of them.
type HistoryVisibility int32

// The values are stored as numbers by the stores, so they never change.
// The zero value is HistoryFromJoin, the private one: a group shows its
// past to newcomers only when asked to, and a Store or a caller that
// knows nothing of this setting gets the safe behaviour.
const (
	// HistoryFromJoin lets a member read the group's messages from the
	// notice of her own joining on (GroupMember.JoinSeq), nothing older.
	HistoryFromJoin HistoryVisibility = 0
	// HistoryFull lets every member read the whole history, whenever
	// she joined.
	HistoryFull HistoryVisibility = 1
)

// FirstReadableSeq returns the first seq of group g's conversation that
// member m may read: 1 when g shows its full history or m's membership
// predates JoinSeq (JoinSeq 0), otherwise m.JoinSeq. Messages below it are
// never returned to m. Stores that answer SyncStore.SyncConversations
// apply the same rule.
func FirstReadableSeq(g Group, m GroupMember) int64 {
	if g.History == HistoryFull || m.JoinSeq < 1 {
		return 1
	}
	return m.JoinSeq
}

// Group is a group chat. Its messages live in the conversation
// GroupConversationID(ID), stored once however many members it has (read
// diffusion).
type Group struct {
	ID           string
	Name         string
	FaceURL      string
	Introduction string
	Notification string // the group's announcement
	Extra        string // opaque to the server
	OwnerID      string
	JoinPolicy   JoinPolicy
	// History decides how much of the group's past a new member reads;
	// its zero value is HistoryFromJoin.
	History HistoryVisibility
	// MuteAll lets only admins and the owner send to the group; the
	// Store enforces it for appends with MemberOf.
	MuteAll bool
	// MemberCount is kept by the Store: it ignores the value it is given
	// and returns the current count.
	MemberCount int
	// Version is kept by the Store: 1 when the group is created, one more
	// after every change to it (members, roles or fields). A change is
	// decided on a version and stored only if the group is still at it
	// (GroupChange.Version), which is how servers sharing a Store agree.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// GroupMember is one user's membership of a group.
type GroupMember struct {
	UserID   string
	Role     GroupRole
	JoinedAt time.Time
	// JoinSeq is kept by the Store, like Group.Version: when CreateGroup
	// or ChangeGroup makes a user a member who was not one, the Store
	// records the seq that change's notice takes in the group's
	// conversation (the conversation's MaxSeq+1 when the change has no
	// notice), in the same commit. A Put for a member keeps it; leaving
	// and joining again gives a new one. It ignores the value it is
	// given. 0 is a membership stored before JoinSeq existed, which reads
	// the whole history (FirstReadableSeq).
	JoinSeq int64
	// MutedUntil, if after a message's CreatedAt, keeps the member from
	// sending it: the Store refuses appends with MemberOf from her until
	// then (see AppendRequest.MemberOf). Zero is not muted. A Put sets it
	// as given.
	MutedUntil time.Time
}

// GroupChange is one change to a group, stored by GroupStore.ChangeGroup in
// one atomic, durable commit together with the notice that reports it.
//
// A change is conditional: it is applied only if the stored group is still
// at Version, so that what a server checked before deciding (roles, the
// member limit, who is the owner) still holds when it is written, whichever
// process wrote in between. Its parts apply in this order: Update, Remove,
// Put; Delete stands alone.
type GroupChange struct {
	// Version the change was decided on. The change is refused with
	// ErrConflict, and nothing written, unless the stored group's Version
	// equals it. 0 applies the change whatever the version (for tools; a
	// Server always gives one).
	Version int64
	// Update, if not nil, replaces every field of the group (History
	// too) but ID, OwnerID, MemberCount, Version and CreatedAt. Its ID must be the
	// group's.
	Update *Group
	// Remove are users to remove; those who are not members are ignored.
	// The owner cannot be removed (ErrInvalidArgument): it hands the group
	// over first.
	Remove []string
	// Put adds members; for a user who is a member already it sets Role
	// and MutedUntil and keeps the stored JoinedAt and JoinSeq. A pending
	// join request (GroupJoinRequestStore) of a user Put is removed in the
	// same commit. A new member's JoinSeq
	// is the seq of Notice (see GroupMember.JoinSeq). A member given RoleOwner becomes the
	// group's owner: the group's OwnerID is set to that user and the
	// previous owner, unless Put gives it a role too, becomes an admin, so
	// that a group has exactly one owner.
	Put []GroupMember
	// Delete removes the group, all its memberships and its pending join
	// requests (its messages stay). It may not be combined with Update, Remove or Put.
	Delete bool
	// MaxMembers, if above 0, is the most members the group may have after
	// the change: more is refused with ErrLimitExceeded and nothing
	// written. It is checked against the stored members in the same
	// transaction, so concurrent joins never overshoot it.
	MaxMembers int
	// Notice, unless its Message.ConversationID is empty, is appended to
	// the group's conversation (GroupConversationID of the group) in the
	// same commit, taking the next seq of the same gap-free sequence as
	// ordinary messages. A Notice whose (SenderID, ClientMsgID) is stored
	// already refuses the whole change with ErrConflict.
	Notice AppendRequest
}

// GroupStore keeps groups and their members. Messages of a group are kept
// by MessageStore under GroupConversationID; a group change and the notice
// reporting it are written together (CreateGroup, ChangeGroup), and a
// group message may be appended on condition that its sender is a member
// (AppendRequest.MemberOf). Deleting a group leaves its messages in place.
//
// Every method is atomic: it writes all it was asked to or, on error,
// nothing. Input is checked with ValidateGroup, ValidateGroupMembers and
// ValidateGroupChange before anything is written. A Store must keep these
// rules under concurrent calls from several servers sharing it: the Server
// relies on the Store, not on locks of its own, for every group invariant.
type GroupStore interface {
	// CreateGroup stores g (with Version 1) and its first members (each
	// with JoinSeq the notice's seq, see GroupMember.JoinSeq) and appends
	// notice, unless its Message.ConversationID is empty, to
	// GroupConversationID(g.ID), in one commit, and returns notice's
	// result (with GroupVersion 1). ErrConflict if a group with g.ID exists
	// or notice's dedup key is taken; ErrInvalidArgument unless the input
	// passes ValidateGroup, ValidateGroupMembers (a member with RoleOwner
	// must be g.OwnerID) and, for notice, ValidateAppend.
	CreateGroup(ctx context.Context, g Group, members []GroupMember, notice AppendRequest) (AppendResult, error)

	// ChangeGroup applies ch to group id and appends ch.Notice, in one
	// commit, and returns the notice's result with the group's new
	// Version as GroupVersion (0 after a Delete). ErrNotFound if there is
	// no such group; ErrConflict if it is not at ch.Version;
	// ErrLimitExceeded past ch.MaxMembers; ErrInvalidArgument unless ch
	// passes ValidateGroupChange. Nothing is written on any error.
	ChangeGroup(ctx context.Context, id string, ch GroupChange) (AppendResult, error)

	// Group returns group id with its current MemberCount and Version;
	// ErrNotFound if there is none.
	Group(ctx context.Context, id string) (Group, error)

	// GroupMembers returns group id and every one of its members, in no
	// particular order, read from one snapshot: the members are those of
	// the returned Version. ErrNotFound if there is no such group.
	GroupMembers(ctx context.Context, id string) (Group, []GroupMember, error)

	// GroupMember returns userID's membership of group id, with its
	// JoinSeq, read from the stored state (the authoritative check before
	// a read of the group's history). ErrNotFound if there is no such group or userID is not a
	// member.
	GroupMember(ctx context.Context, id, userID string) (GroupMember, error)

	// UserGroups returns the ids of the groups userID is a member of, in no
	// particular order; an empty slice for none.
	UserGroups(ctx context.Context, userID string) ([]string, error)
}

// ValidateGroupChange returns an error wrapping ErrInvalidArgument unless
// ch can be applied to group id: id passes ValidateID; Update, if set,
// passes ValidateGroup with ID id; Put passes ValidateGroupMembers; every
// id in Remove passes ValidateID and none is also in Put; Delete comes
// without Update, Remove or Put; Version and MaxMembers are not negative;
// and Notice, if set, passes ValidateAppend, is addressed to
// GroupConversationID(id) and has no MemberOf. Checking against the stored
// state (the owner cannot be removed) is the Store's.
func ValidateGroupChange(id string, ch GroupChange) error {
	if err := ValidateID("group id", id); err != nil {
		return err
	}
	if ch.Version < 0 || ch.MaxMembers < 0 {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "version and member limit must not be negative")
	}
	if ch.Update != nil {
		if ch.Update.ID != id {
			return errorf(CodeInvalidArgument, ErrInvalidArgument, "update is for group %q, not %q", ch.Update.ID, id)
		}
		if err := ValidateGroup(*ch.Update); err != nil {
			return err
		}
	}
	if err := ValidateGroupMembers(ch.Put); err != nil {
		return err
	}
	for _, u := range ch.Remove {
		if err := ValidateID("member id", u); err != nil {
			return err
		}
		for _, m := range ch.Put {
			if m.UserID == u {
				return errorf(CodeInvalidArgument, ErrInvalidArgument, "member %q is both put and removed", u)
			}
		}
	}
	if ch.Delete && (ch.Update != nil || len(ch.Put) > 0 || len(ch.Remove) > 0) {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "a deletion cannot be combined with other changes")
	}
	return validateNotice(id, ch.Notice)
}

// validateNotice checks the notice of a change to group id.
func validateNotice(id string, n AppendRequest) error {
	if n.Message.ConversationID == "" {
		return nil
	}
	if err := ValidateAppend(n); err != nil {
		return err
	}
	if n.Message.ConversationID != GroupConversationID(id) {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "a group's notice goes to its own conversation")
	}
	if n.MemberOf != "" {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "a group's notice has no MemberOf")
	}
	return nil
}

// ValidateCreateGroup returns an error wrapping ErrInvalidArgument unless
// g, members and notice can be stored by GroupStore.CreateGroup: g passes
// ValidateGroup, members ValidateGroupMembers with any member given
// RoleOwner being g.OwnerID, and notice is empty or addressed to the
// group's conversation.
func ValidateCreateGroup(g Group, members []GroupMember, notice AppendRequest) error {
	if err := ValidateGroup(g); err != nil {
		return err
	}
	if err := ValidateGroupMembers(members); err != nil {
		return err
	}
	for _, m := range members {
		if m.Role == RoleOwner && m.UserID != g.OwnerID {
			return errorf(CodeInvalidArgument, ErrInvalidArgument, "member %q is given RoleOwner but the owner is %q", m.UserID, g.OwnerID)
		}
	}
	return validateNotice(g.ID, notice)
}

// Limits on group fields, in bytes, enforced by the Server and by
// conforming Stores.
const (
	MaxGroupNameLen = 256
	MaxGroupURLLen  = 2048
	MaxGroupTextLen = 8 << 10 // Introduction, Notification and Extra, each
)

// ValidateGroup returns an error wrapping ErrInvalidArgument unless g can be
// stored: ID and OwnerID pass ValidateID, Name is 1 to MaxGroupNameLen
// bytes of printable UTF-8 that ValidateName accepts, FaceURL at most
// MaxGroupURLLen bytes of printable UTF-8 without the characters ValidateID
// refuses, the other texts at most MaxGroupTextLen bytes of UTF-8
// whose only control characters are tab, line feed and carriage return (no
// NUL, which PostgreSQL's text cannot hold), and JoinPolicy and History are
// known ones.
func ValidateGroup(g Group) error {
	if err := ValidateID("group id", g.ID); err != nil {
		return err
	}
	if err := ValidateID("owner id", g.OwnerID); err != nil {
		return err
	}
	if !displayName(g.Name, MaxGroupNameLen) {
		if err := ValidateName("group name", g.Name); err != nil {
			return err
		}
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "group name must be 1 to %d bytes of printable UTF-8", MaxGroupNameLen)
	}
	if g.FaceURL != "" && !printable(g.FaceURL, MaxGroupURLLen) {
		return nameError("faceURL", g.FaceURL, "faceURL must be at most %d bytes of printable UTF-8", MaxGroupURLLen)
	}
	for _, f := range [...]struct{ name, v string }{{"introduction", g.Introduction}, {"notification", g.Notification}, {"extra", g.Extra}} {
		if !plainText(f.v, MaxGroupTextLen) {
			return errorf(CodeInvalidArgument, ErrInvalidArgument, "%s must be at most %d bytes of UTF-8 without control characters other than tab and line breaks", f.name, MaxGroupTextLen)
		}
	}
	if g.JoinPolicy != JoinOpen && g.JoinPolicy != JoinInviteOnly && g.JoinPolicy != JoinApproval {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "unknown join policy %d", g.JoinPolicy)
	}
	if g.History != HistoryFromJoin && g.History != HistoryFull {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "unknown history visibility %d", g.History)
	}
	return nil
}

// plainText reports whether s is at most max bytes of UTF-8 text: control
// characters other than tab, line feed and carriage return are refused.
func plainText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f {
			return false
		}
	}
	return true
}

// ValidateGroupMember returns an error wrapping ErrInvalidArgument unless m
// can be stored: UserID passes ValidateID and Role is a known one.
func ValidateGroupMember(m GroupMember) error {
	if err := ValidateID("member id", m.UserID); err != nil {
		return err
	}
	if m.Role < RoleMember || m.Role > RoleOwner {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "unknown group role %d", m.Role)
	}
	return nil
}

// ValidateGroupMembers returns an error wrapping ErrInvalidArgument unless
// every member passes ValidateGroupMember, no user is listed twice, and at
// most one member is given RoleOwner.
func ValidateGroupMembers(members []GroupMember) error {
	seen := make(map[string]struct{}, len(members))
	owners := 0
	for _, m := range members {
		if err := ValidateGroupMember(m); err != nil {
			return err
		}
		if _, dup := seen[m.UserID]; dup {
			return errorf(CodeInvalidArgument, ErrInvalidArgument, "member %q is listed twice", m.UserID)
		}
		seen[m.UserID] = struct{}{}
		if m.Role == RoleOwner {
			owners++
		}
	}
	if owners > 1 {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "a group has one owner, not %d", owners)
	}
	return nil
}

// GroupJoinRequest is a user's pending request to join a group whose
// JoinPolicy is JoinApproval.
type GroupJoinRequest struct {
	GroupID   string
	UserID    string
	Message   string // at most MaxFriendMessageLen characters, as ValidateFriendText checks
	CreatedAt time.Time
}

// MaxGroupJoinRequests bounds the pending join requests of one group: the
// Server refuses more (ErrLimitExceeded) until admins answer some.
const MaxGroupJoinRequests = 1000

// GroupJoinRequestStore is an optional Store capability: pending requests
// to join groups. Without it a group cannot be given JoinApproval.
// GroupChange removes a request when its user is Put into the group and
// all of a group's requests when the group is deleted, in the same commit.
//
// Every method is atomic, durable when it returns, safe for concurrent use
// and honours ctx cancellation; invalid ids or texts are
// ErrInvalidArgument and nothing is written.
type GroupJoinRequestStore interface {
	// PutJoinRequest stores r, replacing an earlier request of r.UserID
	// to r.GroupID. ErrNotFound if there is no such group; ErrConflict if
	// r.UserID is a member already. It returns how many requests the
	// group has pending now, r included.
	PutJoinRequest(ctx context.Context, r GroupJoinRequest) (int, error)
	// JoinRequests returns group groupID's pending requests, ordered by
	// CreatedAt, then UserID; an empty slice for none.
	JoinRequests(ctx context.Context, groupID string) ([]GroupJoinRequest, error)
	// JoinRequest returns userID's pending request to groupID;
	// ErrNotFound if there is none.
	JoinRequest(ctx context.Context, groupID, userID string) (GroupJoinRequest, error)
	// DeleteJoinRequest removes userID's pending request to groupID;
	// ErrNotFound if there is none.
	DeleteJoinRequest(ctx context.Context, groupID, userID string) error
}
