package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
)

// testGroups checks im.GroupStore, one rule per subtest, each with a fresh
// store.
func testGroups(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"CreateAndGet", testGroupCreateAndGet},
		{"CreateConflict", testGroupCreateConflict},
		{"Update", testGroupUpdate},
		{"PutMembersUpsertKeepsJoinedAt", testGroupPutMembers},
		{"PutOwnerSetsOwnerID", testGroupPutOwner},
		{"RemoveMembers", testGroupRemoveMembers},
		{"Delete", testGroupDelete},
		{"UserGroups", testUserGroups},
		{"NotFound", testGroupNotFound},
		{"InvalidInput", testGroupInvalidInput},
		{"Concurrent", testGroupConcurrent},
		{"Cancelled", testGroupCancelled},
		{"Durability", testGroupDurability},
		{"Change", testGroupChanges},
		{"JoinRequests", testGroupJoinRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, h) })
	}
}

// newGroup returns a group with every field set, distinct per id. Its texts
// hold a newline and a tab, which only Name may not.
func newGroup(id, owner string) im.Group {
	return im.Group{
		ID:           id,
		Name:         "Group " + id + " ✓",
		FaceURL:      "https://example.com/faces/" + id + ".png?size=64",
		Introduction: "About " + id + ":\n\tline two",
		Notification: "Welcome to " + id + "! 😀",
		Extra:        `{"k":"` + id + `"}`,
		OwnerID:      owner,
		JoinPolicy:   im.JoinInviteOnly,
		History:      im.HistoryFull, // not the zero value, so that a store that drops it is seen
		CreatedAt:    baseTime(),
		UpdatedAt:    at(1),
	}
}

// at returns the time n minutes after baseTime: microsecond precision, with
// a sub-millisecond part.
func at(n int) time.Time { return baseTime().Add(time.Duration(n) * time.Minute) }

func member(userID string, role im.GroupRole, joinedAt time.Time) im.GroupMember {
	return im.GroupMember{UserID: userID, Role: role, JoinedAt: joinedAt}
}

// withCount returns g as Group returns it when the group has n members.
func withCount(g im.Group, n int) im.Group {
	g.MemberCount = n
	return g
}

func groupDiff(got, want im.Group) string {
	var d []string
	field := func(name string, g, w any) {
		d = append(d, fmt.Sprintf("%s = %#v, want %#v", name, g, w))
	}
	if got.ID != want.ID {
		field("ID", got.ID, want.ID)
	}
	if got.Name != want.Name {
		field("Name", got.Name, want.Name)
	}
	if got.FaceURL != want.FaceURL {
		field("FaceURL", got.FaceURL, want.FaceURL)
	}
	if got.Introduction != want.Introduction {
		field("Introduction", got.Introduction, want.Introduction)
	}
	if got.Notification != want.Notification {
		field("Notification", got.Notification, want.Notification)
	}
	if got.Extra != want.Extra {
		field("Extra", got.Extra, want.Extra)
	}
	if got.OwnerID != want.OwnerID {
		field("OwnerID", got.OwnerID, want.OwnerID)
	}
	if got.JoinPolicy != want.JoinPolicy {
		field("JoinPolicy", got.JoinPolicy, want.JoinPolicy)
	}
	if got.History != want.History {
		field("History", got.History, want.History)
	}
	if got.MuteAll != want.MuteAll {
		field("MuteAll", got.MuteAll, want.MuteAll)
	}
	if got.MemberCount != want.MemberCount {
		field("MemberCount", got.MemberCount, want.MemberCount)
	}
	if want.Version != 0 && got.Version != want.Version {
		field("Version", got.Version, want.Version)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		d = append(d, fmt.Sprintf("CreatedAt = %v, want %v", got.CreatedAt, want.CreatedAt))
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		d = append(d, fmt.Sprintf("UpdatedAt = %v, want %v", got.UpdatedAt, want.UpdatedAt))
	}
	return strings.Join(d, "; ")
}

// checkGroup requires Group(want.ID) to return want, MemberCount included.
func checkGroup(t *testing.T, s im.Store, want im.Group) {
	t.Helper()
	got, err := s.Group(t.Context(), want.ID)
	if err != nil {
		t.Errorf("Group(%q): %v", want.ID, err)
	} else if d := groupDiff(got, want); d != "" {
		t.Errorf("Group(%q): %s", want.ID, d)
	}
}

// checkNoGroup requires group id not to exist: Group and GroupMembers both
// give ErrNotFound.
func checkNoGroup(t *testing.T, s im.Store, id string) {
	t.Helper()
	if g, err := s.Group(t.Context(), id); !errors.Is(err, im.ErrNotFound) {
		t.Errorf("Group(%q) = %+v, %v; want ErrNotFound", id, g, err)
	}
	if _, ms, err := s.GroupMembers(t.Context(), id); !errors.Is(err, im.ErrNotFound) {
		t.Errorf("GroupMembers(%q) = %+v, %v; want ErrNotFound", id, ms, err)
	}
}

// groupMembers returns the members of group id by user id, failing t on an
// error.
func groupMembers(t *testing.T, s im.Store, id string) map[string]im.GroupMember {
	t.Helper()
	_, ms, err := s.GroupMembers(t.Context(), id)
	if err != nil {
		t.Fatalf("GroupMembers(%q): %v", id, err)
	}
	out := make(map[string]im.GroupMember, len(ms))
	for _, m := range ms {
		if _, dup := out[m.UserID]; dup {
			t.Errorf("GroupMembers(%q) lists %q twice", id, m.UserID)
		}
		out[m.UserID] = m
	}
	return out
}

// checkMembers requires the members of group id to be exactly want, with
// their Role and JoinedAt, and Group's MemberCount to be len(want).
func checkMembers(t *testing.T, s im.Store, id string, want ...im.GroupMember) {
	t.Helper()
	got := groupMembers(t, s, id)
	for _, w := range want {
		g, ok := got[w.UserID]
		switch {
		case !ok:
			t.Errorf("GroupMembers(%q): %q is missing", id, w.UserID)
		case g.Role != w.Role:
			t.Errorf("GroupMembers(%q): %q has Role %d, want %d", id, w.UserID, g.Role, w.Role)
		case !g.JoinedAt.Equal(w.JoinedAt):
			t.Errorf("GroupMembers(%q): %q has JoinedAt %v, want %v", id, w.UserID, g.JoinedAt, w.JoinedAt)
		}
		delete(got, w.UserID)
	}
	for u := range got {
		t.Errorf("GroupMembers(%q): %q is listed but is no member", id, u)
	}
	g, err := s.Group(t.Context(), id)
	if err != nil {
		t.Errorf("Group(%q): %v", id, err)
	} else if g.MemberCount != len(want) {
		t.Errorf("Group(%q).MemberCount = %d, want %d", id, g.MemberCount, len(want))
	}
}

// checkUserGroups requires the groups of userID to be exactly want.
func checkUserGroups(t *testing.T, s im.Store, userID string, want ...string) {
	t.Helper()
	got, err := s.UserGroups(t.Context(), userID)
	if err != nil {
		t.Errorf("UserGroups(%q): %v", userID, err)
		return
	}
	got = slices.Clone(got)
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("UserGroups(%q) = %q, want %q", userID, got, want)
	}
}

// The calls below are the GroupChange forms of the single-purpose changes
// the older tests are written in; each is one ChangeGroup at any version,
// without a notice.

func createGroupErr(ctx context.Context, s im.Store, g im.Group, members []im.GroupMember) error {
	_, err := s.CreateGroup(ctx, g, members, im.AppendRequest{})
	return err
}

func updateGroup(ctx context.Context, s im.Store, g im.Group) error {
	_, err := s.ChangeGroup(ctx, g.ID, im.GroupChange{Update: &g})
	return err
}

func deleteGroup(ctx context.Context, s im.Store, id string) error {
	_, err := s.ChangeGroup(ctx, id, im.GroupChange{Delete: true})
	return err
}

func putGroupMembers(ctx context.Context, s im.Store, id string, members []im.GroupMember) error {
	_, err := s.ChangeGroup(ctx, id, im.GroupChange{Put: members})
	return err
}

func removeGroupMembers(ctx context.Context, s im.Store, id string, userIDs []string) error {
	_, err := s.ChangeGroup(ctx, id, im.GroupChange{Remove: userIDs})
	return err
}

// createGroup creates g with members, failing t on an error.
func createGroup(t *testing.T, s im.Store, g im.Group, members ...im.GroupMember) {
	t.Helper()
	if err := createGroupErr(t.Context(), s, g, members); err != nil {
		t.Fatalf("CreateGroup(%q): %v", g.ID, err)
	}
}

// putMembers adds members to group id, failing t on an error.
func putMembers(t *testing.T, s im.Store, id string, members ...im.GroupMember) {
	t.Helper()
	if err := putGroupMembers(t.Context(), s, id, members); err != nil {
		t.Fatalf("PutGroupMembers(%q): %v", id, err)
	}
}

// removeMembers removes userIDs from group id, failing t on an error.
func removeMembers(t *testing.T, s im.Store, id string, userIDs ...string) {
	t.Helper()
	if err := removeGroupMembers(t.Context(), s, id, userIDs); err != nil {
		t.Fatalf("RemoveGroupMembers(%q, %q): %v", id, userIDs, err)
	}
}

// checkErr requires errors.Is(err, want).
func checkErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

// testGroupCreateAndGet: a created group and its members come back exactly
// as given, but for MemberCount, which is the store's.
func testGroupCreateAndGet(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := t.Context()
	checkNoGroup(t, s, "g1")
	checkUserGroups(t, s, "alice")

	g := newGroup("g1", "alice")
	g.CreatedAt = time.Date(2024, 2, 29, 12, 0, 0, 123_456_000, time.FixedZone("CET", 3600))
	g.MemberCount = 42 // ignored: the store counts
	members := []im.GroupMember{
		member("alice", im.RoleOwner, g.CreatedAt),
		member("bob", im.RoleAdmin, at(2)),
		member("carol", im.RoleMember, time.Date(2031, 12, 31, 23, 59, 59, 999_999_000, time.FixedZone("UTC-8", -8*3600))),
	}
	want := slices.Clone(members)
	if err := createGroupErr(ctx, s, g, members); err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	checkGroup(t, s, withCount(g, 3))
	checkMembers(t, s, "g1", want...)
	for _, u := range []string{"alice", "bob", "carol"} {
		checkUserGroups(t, s, u, "g1")
	}
	checkUserGroups(t, s, "dave")

	// Neither the caller's slice nor the one returned is the store's.
	members[0].Role = im.RoleMember
	members[1].UserID = "mallory"
	_, got, err := s.GroupMembers(ctx, "g1")
	if err != nil {
		t.Fatalf("GroupMembers: %v", err)
	}
	for i := range got {
		got[i].UserID += "x"
		got[i].Role = im.RoleOwner
	}
	checkMembers(t, s, "g1", want...)
	checkUserGroups(t, s, "mallory")

	// The group's messages are the MessageStore's: creating a group
	// creates no conversation and records no conversation members.
	checkNoConversation(t, s, im.GroupConversationID("g1"))
	checkUserConversations(t, s, "alice", map[string]int64{})

	// Optional fields empty, the other join policy, and no members yet.
	bare := im.Group{
		ID:         "g2",
		Name:       "x",
		OwnerID:    "alice",
		JoinPolicy: im.JoinOpen,
		CreatedAt:  time.Date(2000, 1, 1, 0, 0, 0, 1000, time.UTC),
		UpdatedAt:  time.Date(2000, 1, 1, 0, 0, 0, 2000, time.UTC),
	}
	if err := createGroupErr(ctx, s, bare, nil); err != nil {
		t.Fatalf("CreateGroup without members: %v", err)
	}
	checkGroup(t, s, withCount(bare, 0))
	checkMembers(t, s, "g2")
	checkUserGroups(t, s, "alice", "g1")
	checkGroup(t, s, withCount(g, 3))
}

// testGroupCreateConflict: creating a group whose id is taken is ErrConflict
// and changes nothing; ids are compared exactly.
func testGroupCreateConflict(t *testing.T, h Harness) {
	s := open(t, h)
	orig := newGroup("g1", "alice")
	origMembers := []im.GroupMember{member("alice", im.RoleOwner, at(0)), member("bob", im.RoleMember, at(1))}
	createGroup(t, s, orig, origMembers...)

	other := newGroup("g1", "mallory")
	other.Name = "Taken over"
	other.JoinPolicy = im.JoinOpen
	other.CreatedAt = at(5)
	err := createGroupErr(t.Context(), s, other, []im.GroupMember{
		member("mallory", im.RoleOwner, at(5)),
		member("bob", im.RoleAdmin, at(5)),
		member("carol", im.RoleMember, at(5)),
	})
	checkErr(t, "CreateGroup with a taken id", err, im.ErrConflict)
	checkGroup(t, s, withCount(orig, 2))
	checkMembers(t, s, "g1", origMembers...)
	checkUserGroups(t, s, "mallory")
	checkUserGroups(t, s, "carol")
	checkUserGroups(t, s, "bob", "g1")

	// Its neighbours are other groups.
	for _, id := range []string{"G1", "g10", "g"} {
		createGroup(t, s, newGroup(id, "dave"), member("dave", im.RoleOwner, at(9)))
	}
	checkUserGroups(t, s, "dave", "G1", "g10", "g")
	checkGroup(t, s, withCount(orig, 2))
	checkMembers(t, s, "g1", origMembers...)
}

// testGroupUpdate: UpdateGroup replaces every field but CreatedAt and
// MemberCount, and touches no member.
func testGroupUpdate(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := t.Context()
	orig := newGroup("g1", "alice")
	members := []im.GroupMember{member("alice", im.RoleOwner, at(0)), member("bob", im.RoleMember, at(1))}
	createGroup(t, s, orig, members...)
	neighbour := newGroup("g2", "carol")
	createGroup(t, s, neighbour)

	// Empty fields replace set ones too: UpdateGroup is no merge.
	upd := im.Group{
		ID:           "g1",
		Name:         "Renamed",
		Notification: "New rules",
		OwnerID:      "bob",
		JoinPolicy:   im.JoinOpen,
		MemberCount:  99,
		CreatedAt:    at(60),
		UpdatedAt:    time.Date(2026, 7, 1, 8, 30, 0, 654_321_000, time.FixedZone("IST", 5*3600+1800)),
	}
	if err := updateGroup(ctx, s, upd); err != nil {
		t.Fatalf("UpdateGroup: %v", err)
	}
	want := withCount(upd, 2)
	want.CreatedAt = orig.CreatedAt
	want.OwnerID = orig.OwnerID // the owner changes only by a Put of RoleOwner
	checkGroup(t, s, want)
	checkMembers(t, s, "g1", members...)
	checkGroup(t, s, withCount(neighbour, 0))

	// And back: the empty fields are set again.
	upd = newGroup("g1", "alice")
	upd.Introduction = "second"
	upd.CreatedAt = at(-60)
	upd.UpdatedAt = at(120)
	if err := updateGroup(ctx, s, upd); err != nil {
		t.Fatalf("UpdateGroup: %v", err)
	}
	want = withCount(upd, 2)
	want.CreatedAt = orig.CreatedAt
	checkGroup(t, s, want)

	// The count follows the members, not the MemberCount given.
	putMembers(t, s, "g1", member("carol", im.RoleMember, at(3)))
	upd.MemberCount = 0
	if err := updateGroup(ctx, s, upd); err != nil {
		t.Fatalf("UpdateGroup: %v", err)
	}
	checkGroup(t, s, withCount(want, 3))

	err := updateGroup(ctx, s, newGroup("g3", "alice"))
	checkErr(t, "UpdateGroup of a missing group", err, im.ErrNotFound)
	checkNoGroup(t, s, "g3")
}

// testGroupPutMembers: PutGroupMembers adds new members with their JoinedAt
// and, for existing ones, sets Role but keeps the stored JoinedAt.
func testGroupPutMembers(t *testing.T, h Harness) {
	s := open(t, h)
	g := newGroup("g1", "alice")
	alice := member("alice", im.RoleOwner, at(0))
	bob := member("bob", im.RoleMember, at(1))
	createGroup(t, s, g, alice, bob)

	carol := member("carol", im.RoleMember, at(11))
	dave := member("dave", im.RoleAdmin, time.Date(2025, 5, 6, 7, 8, 9, 10_000, time.FixedZone("UTC+9", 9*3600)))
	putMembers(t, s, "g1", member("bob", im.RoleAdmin, at(10)), carol, dave)
	bob.Role = im.RoleAdmin // and keeps JoinedAt at(1)
	checkMembers(t, s, "g1", alice, bob, carol, dave)
	checkGroup(t, s, withCount(g, 4)) // no other field changed
	checkUserGroups(t, s, "carol", "g1")
	checkUserGroups(t, s, "dave", "g1")

	// The same batch again changes nothing, the count included.
	putMembers(t, s, "g1", member("bob", im.RoleAdmin, at(10)), carol, dave)
	checkMembers(t, s, "g1", alice, bob, carol, dave)

	// Roles go down as well as up; a later JoinedAt never replaces the
	// stored one.
	putMembers(t, s, "g1", member("bob", im.RoleMember, at(20)), member("alice", im.RoleAdmin, at(20)))
	bob.Role, alice.Role = im.RoleMember, im.RoleAdmin
	checkMembers(t, s, "g1", alice, bob, carol, dave)

	// An empty batch is no change.
	putMembers(t, s, "g1")
	checkMembers(t, s, "g1", alice, bob, carol, dave)

	// The store keeps no reference to the caller's slice.
	erin := member("erin", im.RoleMember, at(30))
	batch := []im.GroupMember{erin}
	putMembers(t, s, "g1", batch...)
	batch[0].UserID, batch[0].Role = "mallory", im.RoleOwner
	checkMembers(t, s, "g1", alice, bob, carol, dave, erin)
	checkUserGroups(t, s, "mallory")

	// Joining another group leaves this one as it is.
	g2 := newGroup("g2", "bob")
	createGroup(t, s, g2)
	bobInG2 := member("bob", im.RoleOwner, at(40))
	putMembers(t, s, "g2", bobInG2)
	checkMembers(t, s, "g2", bobInG2)
	checkMembers(t, s, "g1", alice, bob, carol, dave, erin)
	checkUserGroups(t, s, "bob", "g1", "g2")
	checkGroup(t, s, withCount(g, 5))
	checkGroup(t, s, withCount(g2, 1))
}

// testGroupRemoveMembers: RemoveGroupMembers removes the members named and
// ignores the other ids; a group keeps existing without members.
// testGroupPutOwner checks that a member put with RoleOwner becomes the
// group's owner in the same write, and that nothing else changes.
func testGroupPutOwner(t *testing.T, h Harness) {
	s := open(t, h)
	g := newGroup("g1", "alice")
	alice := member("alice", im.RoleOwner, at(0))
	bob := member("bob", im.RoleMember, at(1))
	createGroup(t, s, g, alice, bob)

	// A transfer: bob becomes the owner, alice an admin.
	putMembers(t, s, "g1", member("bob", im.RoleOwner, at(5)), member("alice", im.RoleAdmin, at(5)))
	bob.Role, alice.Role = im.RoleOwner, im.RoleAdmin
	g.OwnerID = "bob"
	checkGroup(t, s, withCount(g, 2))
	checkMembers(t, s, "g1", alice, bob)

	// A newcomer may be made the owner as it joins; the count follows.
	carol := member("carol", im.RoleOwner, at(6))
	putMembers(t, s, "g1", carol, member("bob", im.RoleAdmin, at(6)))
	bob.Role = im.RoleAdmin
	g.OwnerID = "carol"
	checkGroup(t, s, withCount(g, 3))
	checkMembers(t, s, "g1", alice, bob, carol)

	// A batch without an owner leaves OwnerID alone.
	putMembers(t, s, "g1", member("alice", im.RoleMember, at(7)))
	alice.Role = im.RoleMember
	checkGroup(t, s, withCount(g, 3))
	checkMembers(t, s, "g1", alice, bob, carol)
}

func testGroupRemoveMembers(t *testing.T, h Harness) {
	s := open(t, h)
	g := newGroup("g1", "alice")
	alice := member("alice", im.RoleOwner, at(0))
	bob := member("bob", im.RoleAdmin, at(1))
	carol := member("carol", im.RoleMember, at(2))
	dave := member("dave", im.RoleMember, at(3))
	createGroup(t, s, g, alice, bob, carol, dave)
	g2 := newGroup("g2", "bob")
	bobInG2 := member("bob", im.RoleOwner, at(5))
	createGroup(t, s, g2, bobInG2)

	// A non-member is ignored, and a member named twice is removed once.
	removeMembers(t, s, "g1", "bob", "nobody", "carol", "bob")
	checkMembers(t, s, "g1", alice, dave)
	checkGroup(t, s, withCount(g, 2))
	checkUserGroups(t, s, "bob", "g2")
	checkUserGroups(t, s, "carol")
	checkMembers(t, s, "g2", bobInG2)

	// Only non-members, or nobody at all: no change.
	removeMembers(t, s, "g1", "nobody", "bob")
	removeMembers(t, s, "g1")
	checkMembers(t, s, "g1", alice, dave)

	// The owner cannot be removed, alone or with others: nothing is.
	checkErr(t, "removing the owner", removeGroupMembers(t.Context(), s, "g1", []string{"dave", "alice"}), im.ErrInvalidArgument)
	checkMembers(t, s, "g1", alice, dave)

	// The last members but the owner leave.
	removeMembers(t, s, "g1", "dave")
	checkMembers(t, s, "g1", alice)
	checkGroup(t, s, withCount(g, 1))
	checkUserGroups(t, s, "alice", "g1")
	checkUserGroups(t, s, "dave")

	// A group whose owner is no member may be emptied.
	bare := newGroup("g3", "zed")
	createGroup(t, s, bare, member("erin", im.RoleMember, at(9)))
	removeMembers(t, s, "g3", "erin")
	checkMembers(t, s, "g3")
	checkGroup(t, s, withCount(bare, 0))

	// A member who comes back joins anew: the old JoinedAt is gone.
	back := member("bob", im.RoleMember, at(30))
	putMembers(t, s, "g1", back)
	checkMembers(t, s, "g1", alice, back)
	checkUserGroups(t, s, "bob", "g1", "g2")
}

// testGroupDelete: DeleteGroup removes the group and every membership of it,
// and leaves its messages.
func testGroupDelete(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := t.Context()
	createGroup(t, s, newGroup("g1", "alice"), member("alice", im.RoleOwner, at(0)), member("bob", im.RoleMember, at(1)))
	g2 := newGroup("g2", "bob")
	g2Members := []im.GroupMember{member("bob", im.RoleOwner, at(2)), member("carol", im.RoleMember, at(3))}
	createGroup(t, s, g2, g2Members...)
	g10 := newGroup("g10", "alice")
	aliceInG10 := member("alice", im.RoleOwner, at(4))
	createGroup(t, s, g10, aliceInG10)

	conv := im.GroupConversationID("g1")
	res := appendNew(t, s, []im.AppendRequest{
		{Message: newMessage(conv, "alice", "c1"), Members: []string{"alice", "bob"}},
		{Message: newMessage(conv, "bob", "c2")},
	})
	sent := []im.Message{res[0].Message, res[1].Message}

	if err := deleteGroup(ctx, s, "g1"); err != nil {
		t.Fatalf("DeleteGroup: %v", err)
	}
	checkNoGroup(t, s, "g1")
	checkUserGroups(t, s, "alice", "g10")
	checkUserGroups(t, s, "bob", "g2")
	checkGroup(t, s, withCount(g2, 2))
	checkMembers(t, s, "g2", g2Members...)
	checkGroup(t, s, withCount(g10, 1))
	checkMembers(t, s, "g10", aliceInG10)

	checkErr(t, "DeleteGroup of a deleted group", deleteGroup(ctx, s, "g1"), im.ErrNotFound)
	checkErr(t, "PutGroupMembers to a deleted group", putGroupMembers(ctx, s, "g1", []im.GroupMember{member("erin", im.RoleMember, at(5))}), im.ErrNotFound)
	checkErr(t, "RemoveGroupMembers from a deleted group", removeGroupMembers(ctx, s, "g1", []string{"alice"}), im.ErrNotFound)
	checkErr(t, "UpdateGroup of a deleted group", updateGroup(ctx, s, newGroup("g1", "alice")), im.ErrNotFound)
	checkNoGroup(t, s, "g1")
	checkUserGroups(t, s, "erin")

	// The group's conversation is the MessageStore's and stays as it was.
	checkMessages(t, conv+" after DeleteGroup", allMessages(t, s, conv), sent)
	checkMaxSeq(t, s, conv, 2)
	checkUserConversations(t, s, "bob", map[string]int64{conv: 2})

	// The id is free again, and the new group has none of the old members.
	again := newGroup("g1", "carol")
	again.Name = "Second life"
	carol := member("carol", im.RoleOwner, at(50))
	createGroup(t, s, again, carol)
	checkGroup(t, s, withCount(again, 1))
	checkMembers(t, s, "g1", carol)
	checkUserGroups(t, s, "alice", "g10")
	checkUserGroups(t, s, "bob", "g2")
	checkUserGroups(t, s, "carol", "g1", "g2")
}

// testUserGroups: UserGroups lists exactly the groups a user is a member of,
// whatever characters the ids hold and however they prefix each other.
func testUserGroups(t *testing.T, h Harness) {
	s := open(t, h)
	if gs, err := s.UserGroups(t.Context(), "nobody"); err != nil || len(gs) != 0 {
		t.Errorf("UserGroups of a user in none = %q, %v; want empty, nil", gs, err)
	}

	// Any character but a control character may be in an id.
	const odd = "g/1:x_y|z ü"
	createGroup(t, s, newGroup("g", "al"), member("al", im.RoleOwner, at(0)))
	createGroup(t, s, newGroup("g1", "alice"), member("alice", im.RoleOwner, at(0)), member("al", im.RoleMember, at(1)))
	createGroup(t, s, newGroup("g10", "al10"), member("alice", im.RoleAdmin, at(0)))
	createGroup(t, s, newGroup(odd, "a:l"), member("a:l", im.RoleOwner, at(0)), member("alice", im.RoleMember, at(1)))
	checkUserGroups(t, s, "al", "g", "g1")
	checkUserGroups(t, s, "alice", "g1", "g10", odd)
	checkUserGroups(t, s, "a:l", odd)
	for _, u := range []string{"a", "ALICE", "alice2", "a:", "g1"} {
		checkUserGroups(t, s, u)
	}

	// A user in many groups.
	var many []string
	for i := range 50 {
		id := fmt.Sprintf("many%02d", i)
		createGroup(t, s, newGroup(id, "bob"), member("bob", im.RoleOwner, at(i)))
		many = append(many, id)
	}
	checkUserGroups(t, s, "bob", many...)

	// Every change shows at once.
	removeMembers(t, s, "g10", "alice")
	putMembers(t, s, "g", member("alice", im.RoleMember, at(2)))
	if err := deleteGroup(t.Context(), s, "g1"); err != nil {
		t.Fatalf("DeleteGroup: %v", err)
	}
	checkUserGroups(t, s, "alice", "g", odd)
	checkUserGroups(t, s, "al", "g")
}

// testGroupNotFound: every method on a group that does not exist gives
// ErrNotFound, even with nothing to change, and creates nothing.
func testGroupNotFound(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := t.Context()
	g := newGroup("g1", "alice")
	alice := member("alice", im.RoleOwner, at(0))
	createGroup(t, s, g, alice)

	for _, id := range []string{"g2", "g", "g10", "G1"} { // prefixes and extensions of a stored id
		checkNoGroup(t, s, id)
		checkErr(t, fmt.Sprintf("UpdateGroup(%q)", id), updateGroup(ctx, s, newGroup(id, "alice")), im.ErrNotFound)
		checkErr(t, fmt.Sprintf("DeleteGroup(%q)", id), deleteGroup(ctx, s, id), im.ErrNotFound)
		checkErr(t, fmt.Sprintf("PutGroupMembers(%q)", id), putGroupMembers(ctx, s, id, []im.GroupMember{member("bob", im.RoleMember, at(1))}), im.ErrNotFound)
		checkErr(t, fmt.Sprintf("PutGroupMembers(%q, none)", id), putGroupMembers(ctx, s, id, nil), im.ErrNotFound)
		checkErr(t, fmt.Sprintf("RemoveGroupMembers(%q)", id), removeGroupMembers(ctx, s, id, []string{"alice"}), im.ErrNotFound)
		checkErr(t, fmt.Sprintf("RemoveGroupMembers(%q, none)", id), removeGroupMembers(ctx, s, id, nil), im.ErrNotFound)
		checkNoGroup(t, s, id) // none of the writes created it
	}
	checkUserGroups(t, s, "bob")
	checkUserGroups(t, s, "alice", "g1")
	checkGroup(t, s, withCount(g, 1))
	checkMembers(t, s, "g1", alice)
}

// testGroupInvalidInput: input that fails ValidateGroup or
// ValidateGroupMembers (a bad member, a user listed twice, two owners), or
// an invalid user id to remove, is ErrInvalidArgument, and nothing of the
// call is written.
func testGroupInvalidInput(t *testing.T, h Harness) {
	long := strings.Repeat("x", im.MaxIDLength+1)
	badGroups := []struct {
		name   string
		modify func(g *im.Group)
	}{
		{"EmptyID", func(g *im.Group) { g.ID = "" }},
		{"LongID", func(g *im.Group) { g.ID = long }},
		{"BadUTF8ID", func(g *im.Group) { g.ID = "g\xff" }},
		{"ControlID", func(g *im.Group) { g.ID = "g\x00" }},
		{"EmptyOwnerID", func(g *im.Group) { g.OwnerID = "" }},
		{"LongOwnerID", func(g *im.Group) { g.OwnerID = long }},
		{"BadUTF8OwnerID", func(g *im.Group) { g.OwnerID = "\xc3\x28" }},
		{"ControlOwnerID", func(g *im.Group) { g.OwnerID = "al\nice" }},
		{"EmptyName", func(g *im.Group) { g.Name = "" }},
		{"LongName", func(g *im.Group) { g.Name = strings.Repeat("n", im.MaxGroupNameLen+1) }},
		{"LongMultibyteName", func(g *im.Group) { g.Name = strings.Repeat("ü", im.MaxGroupNameLen/2) + "n" }},
		{"BadUTF8Name", func(g *im.Group) { g.Name = "caf\xe9" }},
		{"ControlName", func(g *im.Group) { g.Name = "two\nlines" }},
		{"TabName", func(g *im.Group) { g.Name = "a\tb" }},
		{"NULName", func(g *im.Group) { g.Name = "a\x00" }},
		{"DELName", func(g *im.Group) { g.Name = "a\x7f" }},
		{"LongFaceURL", func(g *im.Group) { g.FaceURL = strings.Repeat("u", im.MaxGroupURLLen+1) }},
		{"BadUTF8FaceURL", func(g *im.Group) { g.FaceURL = "https://example.com/\xff" }},
		{"LongIntroduction", func(g *im.Group) { g.Introduction = strings.Repeat("i", im.MaxGroupTextLen+1) }},
		{"BadUTF8Introduction", func(g *im.Group) { g.Introduction = "\xfe" }},
		{"LongNotification", func(g *im.Group) { g.Notification = strings.Repeat("n", im.MaxGroupTextLen+1) }},
		{"BadUTF8Notification", func(g *im.Group) { g.Notification = "ok\xff" }},
		{"LongExtra", func(g *im.Group) { g.Extra = strings.Repeat("e", im.MaxGroupTextLen+1) }},
		{"BadUTF8Extra", func(g *im.Group) { g.Extra = "{\xc0}" }},
		{"ControlFaceURL", func(g *im.Group) { g.FaceURL = "https://example.com/a\nb" }},
		{"NULIntroduction", func(g *im.Group) { g.Introduction = "a\x00b" }},
		{"ControlNotification", func(g *im.Group) { g.Notification = "bell\x07" }},
		{"DELExtra", func(g *im.Group) { g.Extra = "x\x7f" }},
		{"UnknownJoinPolicy", func(g *im.Group) { g.JoinPolicy = im.JoinApproval + 1 }},
		{"NegativeJoinPolicy", func(g *im.Group) { g.JoinPolicy = -1 }},
	}
	// Each bad member is dave, who is in no group before or after.
	badMembers := []struct {
		name string
		m    im.GroupMember
	}{
		{"EmptyUserID", member("", im.RoleMember, at(1))},
		{"LongUserID", member(long, im.RoleMember, at(1))},
		{"BadUTF8UserID", member("dave\xff", im.RoleMember, at(1))},
		{"ControlUserID", member("da\x00ve", im.RoleMember, at(1))},
		{"RoleZero", member("dave", 0, at(1))},
		{"RoleFour", member("dave", im.RoleOwner+1, at(1))},
		{"NegativeRole", member("dave", -1, at(1))},
	}
	badIDs := []struct{ name, id string }{
		{"EmptyUserID", ""},
		{"LongUserID", long},
		{"BadUTF8UserID", "bob\xff"},
		{"ControlUserID", "b\x00ob"},
	}
	alice := member("alice", im.RoleOwner, at(0))
	bob := member("bob", im.RoleMember, at(1))
	carol := member("carol", im.RoleMember, at(2))

	t.Run("CreateGroup", func(t *testing.T) {
		check := func(t *testing.T, g im.Group, members ...im.GroupMember) {
			t.Helper()
			s := open(t, h)
			if err := createGroupErr(t.Context(), s, g, members); !isInvalid(err) {
				t.Errorf("CreateGroup: %v, want ErrInvalidArgument", err)
			}
			checkNoGroup(t, s, "g1")
			for _, u := range []string{"alice", "bob", "carol", "dave"} {
				checkUserGroups(t, s, u)
			}
			// Nothing was left half-written: the group can be created now.
			fixed := newGroup("g1", "alice")
			createGroup(t, s, fixed, alice, bob)
			checkGroup(t, s, withCount(fixed, 2))
			checkMembers(t, s, "g1", alice, bob)
		}
		for _, tt := range badGroups {
			t.Run(tt.name, func(t *testing.T) {
				g := newGroup("g1", "alice")
				tt.modify(&g)
				check(t, g, alice, bob)
			})
		}
		for _, tt := range badMembers {
			t.Run(tt.name, func(t *testing.T) {
				check(t, newGroup("g1", "alice"), alice, bob, tt.m)
			})
		}
		t.Run("DuplicateMembers", func(t *testing.T) {
			check(t, newGroup("g1", "alice"), alice, bob, carol, member("bob", im.RoleAdmin, at(3)))
		})
		t.Run("TwoOwners", func(t *testing.T) {
			check(t, newGroup("g1", "alice"), alice, bob, member("carol", im.RoleOwner, at(2)))
		})
	})

	t.Run("UpdateGroup", func(t *testing.T) {
		for _, tt := range badGroups {
			t.Run(tt.name, func(t *testing.T) {
				s := open(t, h)
				orig := newGroup("g1", "alice")
				createGroup(t, s, orig, alice, bob)
				g := newGroup("g1", "bob")
				g.Name = "Renamed"
				g.UpdatedAt = at(9)
				tt.modify(&g)
				err := updateGroup(t.Context(), s, g)
				// An invalid ID names no stored group, so ErrNotFound is
				// as right as ErrInvalidArgument.
				if !isInvalid(err) && !(g.ID != orig.ID && errors.Is(err, im.ErrNotFound)) {
					t.Errorf("UpdateGroup: %v, want ErrInvalidArgument", err)
				}
				checkGroup(t, s, withCount(orig, 2))
				checkMembers(t, s, "g1", alice, bob)
			})
		}
	})

	t.Run("PutGroupMembers", func(t *testing.T) {
		// The bad member comes last, after a new member and a role change,
		// so that a store writing as it goes is caught.
		check := func(t *testing.T, batch ...im.GroupMember) {
			t.Helper()
			s := open(t, h)
			g := newGroup("g1", "alice")
			createGroup(t, s, g, alice, bob)
			if err := putGroupMembers(t.Context(), s, "g1", batch); !isInvalid(err) {
				t.Errorf("PutGroupMembers: %v, want ErrInvalidArgument", err)
			}
			checkGroup(t, s, withCount(g, 2))
			checkMembers(t, s, "g1", alice, bob)
			checkUserGroups(t, s, "carol")
			checkUserGroups(t, s, "dave")
		}
		for _, tt := range badMembers {
			t.Run(tt.name, func(t *testing.T) {
				check(t, carol, member("bob", im.RoleAdmin, at(9)), tt.m)
			})
		}
		t.Run("DuplicateNewMember", func(t *testing.T) {
			check(t, carol, member("carol", im.RoleAdmin, at(9)))
		})
		t.Run("DuplicateExistingMember", func(t *testing.T) {
			check(t, carol, member("bob", im.RoleAdmin, at(9)), member("bob", im.RoleMember, at(9)))
		})
		t.Run("TwoOwners", func(t *testing.T) {
			check(t, member("carol", im.RoleOwner, at(9)), member("bob", im.RoleOwner, at(9)))
		})
	})

	t.Run("RemoveGroupMembers", func(t *testing.T) {
		for _, tt := range badIDs {
			t.Run(tt.name, func(t *testing.T) {
				s := open(t, h)
				createGroup(t, s, newGroup("g1", "alice"), alice, bob)
				if err := removeGroupMembers(t.Context(), s, "g1", []string{"bob", tt.id}); !isInvalid(err) {
					t.Errorf("RemoveGroupMembers: %v, want ErrInvalidArgument", err)
				}
				checkMembers(t, s, "g1", alice, bob)
				checkUserGroups(t, s, "bob", "g1")
			})
		}
	})

	t.Run("LongestValid", func(t *testing.T) {
		// The limits are inclusive, and counted in bytes.
		s := open(t, h)
		const url = "https://example.com/"
		g := im.Group{
			ID:           strings.Repeat("g", im.MaxIDLength),
			Name:         strings.Repeat("ü", im.MaxGroupNameLen/2),
			FaceURL:      url + strings.Repeat("f", im.MaxGroupURLLen-len(url)),
			Introduction: strings.Repeat("i\n", im.MaxGroupTextLen/2),
			Notification: strings.Repeat("é", im.MaxGroupTextLen/2),
			Extra:        strings.Repeat("{}", im.MaxGroupTextLen/2),
			OwnerID:      strings.Repeat("ö", im.MaxIDLength/2),
			JoinPolicy:   im.JoinInviteOnly,
			CreatedAt:    baseTime(),
			UpdatedAt:    at(1),
		}
		longest := member(strings.Repeat("m", im.MaxIDLength), im.RoleAdmin, at(2))
		members := []im.GroupMember{member(g.OwnerID, im.RoleOwner, at(1)), longest, member("x", im.RoleMember, at(3))}
		createGroup(t, s, g, members...)
		checkGroup(t, s, withCount(g, 3))
		checkMembers(t, s, g.ID, members...)
		checkUserGroups(t, s, longest.UserID, g.ID)

		g.Name = strings.Repeat("n", im.MaxGroupNameLen)
		if err := updateGroup(t.Context(), s, g); err != nil {
			t.Fatalf("UpdateGroup: %v", err)
		}
		checkGroup(t, s, withCount(g, 3))
		removeMembers(t, s, g.ID, longest.UserID)
		checkMembers(t, s, g.ID, members[0], members[2])
		checkUserGroups(t, s, longest.UserID)
	})
}

// testGroupConcurrent: concurrent calls on one group, as from several
// servers sharing the store, leave it consistent.
func testGroupConcurrent(t *testing.T, h Harness) {
	t.Run("PutAndRemove", func(t *testing.T) {
		// Writers add their own members and a shared one to one group, then
		// remove half of their own, all at once.
		s := open(t, h)
		const (
			writers   = 16
			perWriter = 8
		)
		g := newGroup("g1", "owner")
		owner := member("owner", im.RoleOwner, at(0))
		shared := member("shared", im.RoleMember, at(0))
		createGroup(t, s, g, owner)
		own := func(w, i int) im.GroupMember {
			return member(fmt.Sprintf("w%02d-%02d", w, i), im.RoleMember, at(w*perWriter+i))
		}
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
		)
		for w := range writers {
			wg.Go(func() {
				<-start
				for i, n := 0, 0; i < perWriter; i += n {
					n = min(1+(i+w)%3, perWriter-i) // batches of 1 to 3
					batch := []im.GroupMember{shared}
					for j := i; j < i+n; j++ {
						batch = append(batch, own(w, j))
					}
					if err := putGroupMembers(t.Context(), s, "g1", batch); err != nil {
						t.Errorf("writer %d: PutGroupMembers: %v", w, err)
						return
					}
				}
				for i := 1; i < perWriter; i += 2 {
					ids := []string{own(w, i).UserID, fmt.Sprintf("ghost%02d", w)}
					if err := removeGroupMembers(t.Context(), s, "g1", ids); err != nil {
						t.Errorf("writer %d: RemoveGroupMembers: %v", w, err)
						return
					}
				}
			})
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
		want := []im.GroupMember{owner, shared}
		for w := range writers {
			for i := 0; i < perWriter; i += 2 {
				want = append(want, own(w, i))
			}
		}
		checkMembers(t, s, "g1", want...)
		checkGroup(t, s, withCount(g, len(want)))
		checkUserGroups(t, s, "shared", "g1")
		checkUserGroups(t, s, own(3, 0).UserID, "g1")
		checkUserGroups(t, s, own(3, 1).UserID)
	})

	t.Run("Create", func(t *testing.T) {
		// Racing creates of one id: exactly one wins, whole.
		s := open(t, h)
		const (
			rounds  = 5
			callers = 8
		)
		for round := range rounds {
			id := fmt.Sprintf("g%d", round)
			var (
				wg      sync.WaitGroup
				start   = make(chan struct{})
				groups  = make([]im.Group, callers)
				members = make([][]im.GroupMember, callers)
				errs    = make([]error, callers)
			)
			for i := range callers {
				owner := fmt.Sprintf("owner%d-%d", round, i)
				groups[i] = newGroup(id, owner)
				groups[i].Name = fmt.Sprintf("attempt %d", i)
				members[i] = []im.GroupMember{member(owner, im.RoleOwner, at(i)), member("common", im.RoleMember, at(i))}
				wg.Go(func() {
					<-start
					errs[i] = createGroupErr(t.Context(), s, groups[i], members[i])
				})
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("round %d: callers %d and %d both created group %q", round, winner, i, id)
				case err == nil:
					winner = i
				case !errors.Is(err, im.ErrConflict):
					t.Errorf("round %d caller %d: CreateGroup: %v, want nil or ErrConflict", round, i, err)
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: no caller created group %q", round, id)
			}
			checkGroup(t, s, withCount(groups[winner], 2))
			checkMembers(t, s, id, members[winner]...)
			for i := range callers {
				if i != winner {
					checkUserGroups(t, s, members[i][0].UserID)
				}
			}
		}
		checkUserGroups(t, s, "common", "g0", "g1", "g2", "g3", "g4")
	})

	t.Run("Delete", func(t *testing.T) {
		// Members added while the group is deleted are either in before the
		// delete, and gone with it, or refused: no membership outlives it.
		s := open(t, h)
		const (
			rounds  = 5
			putters = 8
		)
		for round := range rounds {
			id := fmt.Sprintf("g%d", round)
			createGroup(t, s, newGroup(id, "owner"), member("owner", im.RoleOwner, at(0)))
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				users []string
			)
			for i := range putters {
				u := fmt.Sprintf("u%d-%d", round, i)
				users = append(users, u)
				wg.Go(func() {
					<-start
					err := putGroupMembers(t.Context(), s, id, []im.GroupMember{member(u, im.RoleMember, at(i))})
					if err != nil && !errors.Is(err, im.ErrNotFound) {
						t.Errorf("round %d: PutGroupMembers: %v, want nil or ErrNotFound", round, err)
					}
				})
			}
			wg.Go(func() {
				<-start
				if err := deleteGroup(t.Context(), s, id); err != nil {
					t.Errorf("round %d: DeleteGroup: %v", round, err)
				}
			})
			close(start)
			wg.Wait()
			checkNoGroup(t, s, id)
			for _, u := range append(users, "owner") {
				checkUserGroups(t, s, u)
			}
			// A group created again under the id starts empty.
			createGroup(t, s, newGroup(id, "owner"))
			checkMembers(t, s, id)
		}
	})
}

// testGroupCancelled: a cancelled ctx makes every GroupStore method fail
// with an error wrapping context.Canceled, and a write store nothing.
func testGroupCancelled(t *testing.T, h Harness) {
	s := open(t, h)
	g := newGroup("g1", "alice")
	alice := member("alice", im.RoleOwner, at(0))
	bob := member("bob", im.RoleMember, at(1))
	carol := member("carol", im.RoleOwner, at(2))
	createGroup(t, s, g, alice, bob)

	ctx := cancelled(t)
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled ctx: %v, want context.Canceled", what, err)
		}
	}
	check("CreateGroup", createGroupErr(ctx, s, newGroup("g2", "carol"), []im.GroupMember{carol}))
	_, err := s.Group(ctx, "g1")
	check("Group", err)
	upd := g
	upd.Name = "Renamed"
	check("UpdateGroup", updateGroup(ctx, s, upd))
	check("DeleteGroup", deleteGroup(ctx, s, "g1"))
	check("PutGroupMembers", putGroupMembers(ctx, s, "g1", []im.GroupMember{member("dave", im.RoleMember, at(3)), member("bob", im.RoleAdmin, at(3))}))
	check("RemoveGroupMembers", removeGroupMembers(ctx, s, "g1", []string{"bob"}))
	_, _, err = s.GroupMembers(ctx, "g1")
	check("GroupMembers", err)
	_, err = s.UserGroups(ctx, "alice")
	check("UserGroups", err)

	// Nothing was written.
	checkGroup(t, s, withCount(g, 2))
	checkMembers(t, s, "g1", alice, bob)
	checkNoGroup(t, s, "g2")
	checkUserGroups(t, s, "carol")
	checkUserGroups(t, s, "dave")
	// And the create goes through afterwards.
	createGroup(t, s, newGroup("g2", "carol"), carol)
	checkMembers(t, s, "g2", carol)
}

// testGroupDurability: groups and memberships survive closing and reopening
// the store.
func testGroupDurability(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("storetest: Harness.Reopen is not set")
	}
	s := open(t, h)
	ctx := t.Context()
	g1 := newGroup("g1", "alice")
	g1.CreatedAt = time.Date(2024, 2, 29, 12, 0, 0, 123_456_000, time.FixedZone("CET", 3600))
	alice := member("alice", im.RoleOwner, at(0))
	bob := member("bob", im.RoleMember, at(1))
	carol := member("carol", im.RoleMember, at(2))
	createGroup(t, s, g1, alice, bob, carol)
	g2 := newGroup("g2", "bob")
	bobInG2 := member("bob", im.RoleOwner, at(3))
	createGroup(t, s, g2, bobInG2)
	createGroup(t, s, newGroup("g3", "carol"), member("carol", im.RoleOwner, at(4)))

	upd := g1
	upd.Name = "Renamed"
	upd.JoinPolicy = im.JoinOpen
	upd.UpdatedAt = at(30)
	if err := updateGroup(ctx, s, upd); err != nil {
		t.Fatalf("UpdateGroup: %v", err)
	}
	dave := member("dave", im.RoleMember, at(41))
	putMembers(t, s, "g1", member("bob", im.RoleAdmin, at(40)), dave)
	bob.Role = im.RoleAdmin
	removeMembers(t, s, "g1", "carol")
	if err := deleteGroup(ctx, s, "g3"); err != nil {
		t.Fatalf("DeleteGroup: %v", err)
	}

	s = h.Reopen(t, s)
	if s == nil {
		t.Fatal("storetest: Harness.Reopen returned nil")
	}
	checkGroup(t, s, withCount(upd, 3))
	checkMembers(t, s, "g1", alice, bob, dave)
	checkGroup(t, s, withCount(g2, 1))
	checkMembers(t, s, "g2", bobInG2)
	checkNoGroup(t, s, "g3")
	checkUserGroups(t, s, "alice", "g1")
	checkUserGroups(t, s, "bob", "g1", "g2")
	checkUserGroups(t, s, "carol")
	checkUserGroups(t, s, "dave", "g1")
	checkErr(t, "CreateGroup with a taken id after reopen", createGroupErr(t.Context(), s, newGroup("g1", "mallory"), nil), im.ErrConflict)

	// The stored JoinedAt is still the one kept, and later writes survive
	// the next reopen.
	erin := member("erin", im.RoleMember, at(51))
	putMembers(t, s, "g1", member("dave", im.RoleAdmin, at(50)), erin)
	dave.Role = im.RoleAdmin
	s = h.Reopen(t, s)
	if s == nil {
		t.Fatal("storetest: Harness.Reopen returned nil")
	}
	checkMembers(t, s, "g1", alice, bob, dave, erin)
	checkGroup(t, s, withCount(upd, 4))
	checkUserGroups(t, s, "erin", "g1")

	// Versions and notices survive too, and go on from where they were.
	v := version(t, s, "g1")
	r := change(t, s, "g1", im.GroupChange{Version: v, Remove: []string{"erin"}, Notice: notice("g1", "alice", "kick-erin")})
	s = h.Reopen(t, s)
	if s == nil {
		t.Fatal("storetest: Harness.Reopen returned nil")
	}
	if got := version(t, s, "g1"); got != v+1 || r.GroupVersion != v+1 {
		t.Errorf("Version after reopen %d, reported %d; want %d", got, r.GroupVersion, v+1)
	}
	checkMessages(t, "notice after reopen", allMessages(t, s, im.GroupConversationID("g1")), []im.Message{withSeq(notice("g1", "alice", "kick-erin").Message, 1)})
	_, err := s.ChangeGroup(t.Context(), "g1", im.GroupChange{Version: v + 1, Notice: notice("g1", "alice", "kick-erin")})
	checkErr(t, "a change whose notice was stored before the reopen", err, im.ErrConflict)
}
