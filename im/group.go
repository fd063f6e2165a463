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

const (
	// JoinOpen lets anyone join by themselves, and any member invite.
	JoinOpen JoinPolicy = 0
	// JoinInviteOnly refuses self-joins; only admins and the owner add
	// members.
	JoinInviteOnly JoinPolicy = 1
)

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
	// MemberCount is kept by the Store: it ignores the value it is given
	// and returns the current count.
	MemberCount int
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// GroupMember is one user's membership of a group.
type GroupMember struct {
	UserID   string
	Role     GroupRole
	JoinedAt time.Time
}

// GroupStore keeps groups and their members. Messages of a group are kept
// by MessageStore under GroupConversationID; a GroupStore knows nothing of
// them, and deleting a group leaves them in place.
//
// Every method is atomic: it writes all it was asked to or, on error,
// nothing. Input is checked with ValidateGroup and ValidateGroupMember
// before anything is written. The Server serialises the changes it makes to
// one group, but a Store must stay consistent under concurrent calls from
// several servers sharing it.
type GroupStore interface {
	// CreateGroup stores g and its first members. ErrConflict if a group
	// with g.ID exists; ErrInvalidArgument unless the members pass
	// ValidateGroupMembers.
	CreateGroup(ctx context.Context, g Group, members []GroupMember) error

	// Group returns group id with its current MemberCount; ErrNotFound if
	// there is none.
	Group(ctx context.Context, id string) (Group, error)

	// UpdateGroup replaces every field of the stored group g.ID but
	// CreatedAt and MemberCount. ErrNotFound if there is none.
	UpdateGroup(ctx context.Context, g Group) error

	// DeleteGroup removes group id and all its memberships. ErrNotFound if
	// there is none.
	DeleteGroup(ctx context.Context, id string) error

	// PutGroupMembers adds members to group id; for a user who is a member
	// already it sets Role and keeps the stored JoinedAt. A member given
	// RoleOwner becomes the group's owner: the same write sets the group's
	// OwnerID to that user (the previous owner keeps whatever role the
	// batch gives it). ErrNotFound if there is no such group;
	// ErrInvalidArgument unless the batch passes ValidateGroupMembers.
	PutGroupMembers(ctx context.Context, id string, members []GroupMember) error

	// RemoveGroupMembers removes those of userIDs who are members of group
	// id and ignores the rest. ErrNotFound if there is no such group, even
	// for an empty list; ErrInvalidArgument if an id fails ValidateID.
	RemoveGroupMembers(ctx context.Context, id string, userIDs []string) error

	// GroupMembers returns every member of group id, in no particular
	// order. ErrNotFound if there is no such group.
	GroupMembers(ctx context.Context, id string) ([]GroupMember, error)

	// UserGroups returns the ids of the groups userID is a member of, in no
	// particular order; an empty slice for none.
	UserGroups(ctx context.Context, userID string) ([]string, error)
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
// bytes of printable UTF-8, FaceURL at most MaxGroupURLLen bytes of
// printable UTF-8, the other texts at most MaxGroupTextLen bytes of UTF-8
// whose only control characters are tab, line feed and carriage return (no
// NUL, which PostgreSQL's text cannot hold), and JoinPolicy is a known one.
func ValidateGroup(g Group) error {
	if err := ValidateID("group id", g.ID); err != nil {
		return err
	}
	if err := ValidateID("owner id", g.OwnerID); err != nil {
		return err
	}
	if !printable(g.Name, MaxGroupNameLen) {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "group name must be 1 to %d bytes of printable UTF-8", MaxGroupNameLen)
	}
	if g.FaceURL != "" && !printable(g.FaceURL, MaxGroupURLLen) {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "faceURL must be at most %d bytes of printable UTF-8", MaxGroupURLLen)
	}
	for _, f := range [...]struct{ name, v string }{{"introduction", g.Introduction}, {"notification", g.Notification}, {"extra", g.Extra}} {
		if !plainText(f.v, MaxGroupTextLen) {
			return errorf(CodeInvalidArgument, ErrInvalidArgument, "%s must be at most %d bytes of UTF-8 without control characters other than tab and line breaks", f.name, MaxGroupTextLen)
		}
	}
	if g.JoinPolicy != JoinOpen && g.JoinPolicy != JoinInviteOnly {
		return errorf(CodeInvalidArgument, ErrInvalidArgument, "unknown join policy %d", g.JoinPolicy)
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
