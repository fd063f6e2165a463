package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/imserver/imserver/im"
)

// testGroupChanges checks what makes group changes safe across servers
// sharing a store: versions, the member limit, notices committed with their
// change, one owner, and group messages checked against the members at
// commit.
func testGroupChanges(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"Version", testGroupVersion},
		{"VersionConflict", testGroupVersionConflict},
		{"MaxMembers", testGroupMaxMembers},
		{"MaxMembersConcurrent", testGroupMaxMembersConcurrent},
		{"Notice", testGroupNotice},
		{"NoticeDuplicate", testGroupNoticeDuplicate},
		{"OwnerHandover", testGroupOwnerHandover},
		{"GroupMember", testGroupMember},
		{"JoinSeq", testGroupJoinSeq},
		{"History", testGroupHistory},
		{"MemberOf", testGroupMemberOf},
		{"Mute", testGroupMute},
		{"MutedSender", testGroupMutedSender},
		{"Invalid", testGroupChangeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, h) })
	}
}

// notice returns a group notice for group id: a NotificationMessage into
// its conversation.
func notice(id, sender, cmid string) im.AppendRequest {
	m := newMessage(im.GroupConversationID(id), sender, cmid)
	m.Type = im.NotificationMessage
	m.ReceiverID = ""
	return im.AppendRequest{Message: m}
}

// change applies ch to group id, failing t on an error, and returns the
// result.
func change(t *testing.T, s im.Store, id string, ch im.GroupChange) im.AppendResult {
	t.Helper()
	r, err := s.ChangeGroup(t.Context(), id, ch)
	if err != nil {
		t.Fatalf("ChangeGroup(%q): %v", id, err)
	}
	return r
}

// version returns group id's Version, failing t on an error.
func version(t *testing.T, s im.Store, id string) int64 {
	t.Helper()
	g, err := s.Group(t.Context(), id)
	if err != nil {
		t.Fatalf("Group(%q): %v", id, err)
	}
	return g.Version
}

// testGroupVersion: a group starts at Version 1 and every change adds one,
// reported by ChangeGroup and read back by Group and GroupMembers alike.
func testGroupVersion(t *testing.T, h Harness) {
	s := open(t, h)
	g := newGroup("g1", "alice")
	g.Version = 77 // ignored: the store keeps it
	alice := member("alice", im.RoleOwner, at(0))
	r, err := s.CreateGroup(t.Context(), g, []im.GroupMember{alice}, im.AppendRequest{})
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	if r.GroupVersion != 1 {
		t.Errorf("CreateGroup: GroupVersion %d, want 1", r.GroupVersion)
	}
	g.Version = 1
	checkGroup(t, s, withCount(g, 1))

	bob := member("bob", im.RoleMember, at(1))
	steps := []im.GroupChange{
		{Version: 1, Put: []im.GroupMember{bob}},
		{Version: 2, Update: func() *im.Group { u := g; u.Name = "Renamed"; u.Version = 1; return &u }()},
		{Version: 3, Remove: []string{"bob"}},
		{Version: 0, Remove: []string{"nobody"}}, // any version, nothing to remove: still a change
	}
	for i, ch := range steps {
		r := change(t, s, "g1", ch)
		if want := int64(i + 2); r.GroupVersion != want {
			t.Errorf("change %d: GroupVersion %d, want %d", i, r.GroupVersion, want)
		}
	}
	got, members, err := s.GroupMembers(t.Context(), "g1")
	if err != nil {
		t.Fatalf("GroupMembers: %v", err)
	}
	if got.Version != 5 || got.MemberCount != 1 || len(members) != 1 || got.Name != "Renamed" {
		t.Errorf("GroupMembers = %+v, %+v; want Version 5, the new name and alice alone", got, members)
	}
	if v := version(t, s, "g1"); v != 5 {
		t.Errorf("Group: Version %d, want 5", v)
	}

	// Deleted and created again, a group starts over.
	r = change(t, s, "g1", im.GroupChange{Version: 5, Delete: true})
	if r.GroupVersion != 0 {
		t.Errorf("Delete: GroupVersion %d, want 0", r.GroupVersion)
	}
	createGroup(t, s, newGroup("g1", "alice"), alice)
	if v := version(t, s, "g1"); v != 1 {
		t.Errorf("recreated group: Version %d, want 1", v)
	}
}

// testGroupVersionConflict: a change decided on an older version is
// ErrConflict and writes nothing, neither the change nor its notice.
func testGroupVersionConflict(t *testing.T, h Harness) {
	s := open(t, h)
	g := newGroup("g1", "alice")
	alice := member("alice", im.RoleOwner, at(0))
	bob := member("bob", im.RoleMember, at(1))
	createGroup(t, s, g, alice, bob)
	change(t, s, "g1", im.GroupChange{Version: 1, Put: []im.GroupMember{member("carol", im.RoleMember, at(2))}})
	carol := member("carol", im.RoleMember, at(2))
	conv := im.GroupConversationID("g1")

	upd := g
	upd.Name = "Stale"
	for name, ch := range map[string]im.GroupChange{
		"Put":    {Put: []im.GroupMember{member("dave", im.RoleAdmin, at(3))}},
		"Remove": {Remove: []string{"bob"}},
		"Update": {Update: &upd},
		"Delete": {Delete: true},
		"Role":   {Put: []im.GroupMember{member("bob", im.RoleOwner, at(3))}},
	} {
		for _, v := range []int64{1, 3, 99} {
			ch.Version = v
			ch.Notice = notice("g1", "alice", fmt.Sprintf("%s-%d", name, v))
			_, err := s.ChangeGroup(t.Context(), "g1", ch)
			checkErr(t, fmt.Sprintf("%s at version %d of a group at 2", name, v), err, im.ErrConflict)
		}
	}
	checkGroup(t, s, func() im.Group { w := withCount(g, 3); w.Version = 2; return w }())
	checkMembers(t, s, "g1", alice, bob, carol)
	checkUserGroups(t, s, "dave")
	checkNoConversation(t, s, conv)

	// At the right version it goes through, notice and all.
	r := change(t, s, "g1", im.GroupChange{Version: 2, Remove: []string{"bob"}, Notice: notice("g1", "alice", "kick")})
	if r.GroupVersion != 3 || r.Message.Seq != 1 {
		t.Errorf("change at the current version: GroupVersion %d, Seq %d; want 3, 1", r.GroupVersion, r.Message.Seq)
	}
	checkMembers(t, s, "g1", alice, carol)
}

// testGroupMaxMembers: a change that would take the group past MaxMembers
// is ErrLimitExceeded and writes nothing; removals in the same change count.
func testGroupMaxMembers(t *testing.T, h Harness) {
	s := open(t, h)
	g := newGroup("g1", "alice")
	alice := member("alice", im.RoleOwner, at(0))
	bob := member("bob", im.RoleMember, at(1))
	createGroup(t, s, g, alice, bob)
	carol, dave := member("carol", im.RoleMember, at(2)), member("dave", im.RoleMember, at(3))

	_, err := s.ChangeGroup(t.Context(), "g1", im.GroupChange{Version: 1, MaxMembers: 3, Put: []im.GroupMember{carol, dave}, Notice: notice("g1", "alice", "n1")})
	checkErr(t, "putting 2 into a group of 2 with MaxMembers 3", err, im.ErrLimitExceeded)
	checkMembers(t, s, "g1", alice, bob)
	checkNoConversation(t, s, im.GroupConversationID("g1"))
	if v := version(t, s, "g1"); v != 1 {
		t.Errorf("Version %d after a refused change, want 1", v)
	}

	// A role change and a removal take no room; exactly the limit is fine.
	change(t, s, "g1", im.GroupChange{Version: 1, MaxMembers: 3, Remove: []string{"bob"}, Put: []im.GroupMember{carol, dave}})
	checkMembers(t, s, "g1", alice, carol, dave)
	change(t, s, "g1", im.GroupChange{Version: 2, MaxMembers: 3, Put: []im.GroupMember{member("carol", im.RoleAdmin, at(9))}})
	carol.Role = im.RoleAdmin
	checkMembers(t, s, "g1", alice, carol, dave)
	_, err = s.ChangeGroup(t.Context(), "g1", im.GroupChange{Version: 3, MaxMembers: 3, Put: []im.GroupMember{bob}})
	checkErr(t, "putting one more into a full group", err, im.ErrLimitExceeded)
}

// testGroupMaxMembersConcurrent: many joins at once, unconditional (as if
// each server had decided on its own read), never take a group past
// MaxMembers: the count is checked in the transaction that writes.
func testGroupMaxMembersConcurrent(t *testing.T, h Harness) {
	s := open(t, h)
	const (
		limit   = 10
		joiners = 40
		rounds  = 3
	)
	for round := range rounds {
		id := fmt.Sprintf("g%d", round)
		createGroup(t, s, newGroup(id, "owner"), member("owner", im.RoleOwner, at(0)))
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			joined  atomic.Int32
			refused atomic.Int32
		)
		for i := range joiners {
			wg.Go(func() {
				<-start
				u := fmt.Sprintf("u%d-%02d", round, i)
				_, err := s.ChangeGroup(t.Context(), id, im.GroupChange{MaxMembers: limit, Put: []im.GroupMember{member(u, im.RoleMember, at(i))}, Notice: notice(id, u, "join")})
				switch {
				case err == nil:
					joined.Add(1)
				case errors.Is(err, im.ErrLimitExceeded):
					refused.Add(1)
				default:
					t.Errorf("join %s: %v, want nil or ErrLimitExceeded", u, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if got := joined.Load(); got != limit-1 {
			t.Errorf("round %d: %d joins succeeded, want %d (%d refused)", round, got, limit-1, refused.Load())
		}
		got := groupMembers(t, s, id)
		if len(got) != limit {
			t.Errorf("round %d: %d members, want %d", round, len(got), limit)
		}
		// Exactly the joins that succeeded left a notice.
		checkMaxSeq(t, s, im.GroupConversationID(id), int64(joined.Load()))
	}
}

// testGroupNotice: the notice is stored by the change's own call, taking
// the next seq of the group's conversation, shared with ordinary messages,
// with no gap for changes that were refused.
func testGroupNotice(t *testing.T, h Harness) {
	s := open(t, h)
	conv := im.GroupConversationID("g1")
	alice := member("alice", im.RoleOwner, at(0))
	created := notice("g1", "alice", "created")
	r, err := s.CreateGroup(t.Context(), newGroup("g1", "alice"), []im.GroupMember{alice}, created)
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	if r.Message.Seq != 1 || r.GroupVersion != 1 || r.Duplicate || r.Err != nil {
		t.Errorf("CreateGroup: %+v; want the notice at seq 1, GroupVersion 1", r)
	}
	want := []im.Message{withSeq(created.Message, 1)}

	// A message, then a change, then a refused change, then a message.
	res := appendNew(t, s, []im.AppendRequest{{Message: newMessage(conv, "alice", "m1"), MemberOf: "g1"}})
	want = append(want, withSeq(newMessage(conv, "alice", "m1"), 2))
	if res[0].GroupVersion != 1 {
		t.Errorf("message: GroupVersion %d, want 1", res[0].GroupVersion)
	}
	joined := notice("g1", "bob", "joined")
	r = change(t, s, "g1", im.GroupChange{Version: 1, Put: []im.GroupMember{member("bob", im.RoleMember, at(1))}, Notice: joined})
	if r.Message.Seq != 3 || r.GroupVersion != 2 {
		t.Errorf("change: Seq %d, GroupVersion %d; want 3, 2", r.Message.Seq, r.GroupVersion)
	}
	if r.Message.ClientMsgID != "joined" || r.Message.Type != im.NotificationMessage {
		t.Errorf("change: returned message %+v, want the notice", r.Message)
	}
	want = append(want, withSeq(joined.Message, 3))
	for _, ch := range []im.GroupChange{
		{Version: 1, Remove: []string{"bob"}, Notice: notice("g1", "alice", "stale")},
		{Version: 2, MaxMembers: 2, Put: []im.GroupMember{member("carol", im.RoleMember, at(2))}, Notice: notice("g1", "carol", "full")},
		{Version: 2, Remove: []string{"alice"}, Notice: notice("g1", "alice", "owner")},
	} {
		if _, err := s.ChangeGroup(t.Context(), "g1", ch); err == nil {
			t.Errorf("ChangeGroup(%+v) succeeded, want an error", ch)
		}
	}
	res = appendNew(t, s, []im.AppendRequest{{Message: newMessage(conv, "bob", "m2"), MemberOf: "g1"}})
	want = append(want, withSeq(newMessage(conv, "bob", "m2"), 4))
	if res[0].Message.Seq != 4 {
		t.Errorf("message after refused changes: seq %d, want 4", res[0].Message.Seq)
	}
	// A notice in a change with nothing else, and one with a deletion.
	touch := notice("g1", "alice", "touch")
	change(t, s, "g1", im.GroupChange{Version: 2, Notice: touch})
	want = append(want, withSeq(touch.Message, 5))
	bye := notice("g1", "alice", "bye")
	r = change(t, s, "g1", im.GroupChange{Version: 3, Delete: true, Notice: bye})
	if r.Message.Seq != 6 || r.GroupVersion != 0 {
		t.Errorf("delete: Seq %d, GroupVersion %d; want 6, 0", r.Message.Seq, r.GroupVersion)
	}
	want = append(want, withSeq(bye.Message, 6))
	checkMessages(t, conv, allMessages(t, s, conv), want)
	checkMaxSeq(t, s, conv, 6)

	// A notice for another conversation is refused, and nothing written.
	createGroup(t, s, newGroup("g2", "alice"), alice)
	_, err = s.ChangeGroup(t.Context(), "g2", im.GroupChange{Version: 1, Remove: []string{"nobody"}, Notice: notice("g1", "alice", "wrong")})
	checkErr(t, "a notice for another group", err, im.ErrInvalidArgument)
	_, err = s.CreateGroup(t.Context(), newGroup("g3", "alice"), nil, notice("g1", "alice", "wrong"))
	checkErr(t, "a create notice for another group", err, im.ErrInvalidArgument)
	checkNoGroup(t, s, "g3")
	if v := version(t, s, "g2"); v != 1 {
		t.Errorf("g2 at version %d after a refused change, want 1", v)
	}
	checkMaxSeq(t, s, conv, 6)
}

// testGroupNoticeDuplicate: a notice whose dedup key is taken refuses the
// whole change with ErrConflict: a change is never stored without its
// notice.
func testGroupNoticeDuplicate(t *testing.T, h Harness) {
	s := open(t, h)
	conv := im.GroupConversationID("g1")
	alice := member("alice", im.RoleOwner, at(0))
	r, err := s.CreateGroup(t.Context(), newGroup("g1", "alice"), []im.GroupMember{alice}, notice("g1", "alice", "n1"))
	if err != nil || r.Message.Seq != 1 {
		t.Fatalf("CreateGroup: %+v, %v", r, err)
	}
	_, err = s.ChangeGroup(t.Context(), "g1", im.GroupChange{Version: 1, Put: []im.GroupMember{member("bob", im.RoleMember, at(1))}, Notice: notice("g1", "alice", "n1")})
	checkErr(t, "a change whose notice is a duplicate", err, im.ErrConflict)
	checkMembers(t, s, "g1", alice)
	if v := version(t, s, "g1"); v != 1 {
		t.Errorf("Version %d after a refused change, want 1", v)
	}
	_, err = s.CreateGroup(t.Context(), newGroup("g2", "alice"), []im.GroupMember{alice}, notice("g2", "alice", "n1"))
	checkErr(t, "a create whose notice is a duplicate", err, im.ErrConflict)
	checkNoGroup(t, s, "g2")
	checkMaxSeq(t, s, conv, 1)
}

// testGroupOwnerHandover: a group keeps exactly one owner: giving RoleOwner
// to a member makes the previous owner an admin unless the same change
// gives it a role.
func testGroupOwnerHandover(t *testing.T, h Harness) {
	s := open(t, h)
	g := newGroup("g1", "alice")
	alice := member("alice", im.RoleOwner, at(0))
	bob := member("bob", im.RoleMember, at(1))
	createGroup(t, s, g, alice, bob)

	change(t, s, "g1", im.GroupChange{Version: 1, Put: []im.GroupMember{member("bob", im.RoleOwner, at(5))}})
	alice.Role, bob.Role = im.RoleAdmin, im.RoleOwner
	checkMembers(t, s, "g1", alice, bob)
	if got, err := s.Group(t.Context(), "g1"); err != nil || got.OwnerID != "bob" {
		t.Errorf("Group = %+v, %v; want OwnerID bob", got, err)
	}
	// The same change may give the previous owner another role.
	change(t, s, "g1", im.GroupChange{Version: 2, Put: []im.GroupMember{member("alice", im.RoleOwner, at(6)), member("bob", im.RoleMember, at(6))}})
	alice.Role, bob.Role = im.RoleOwner, im.RoleMember
	checkMembers(t, s, "g1", alice, bob)
	// An Update does not change the owner.
	upd := g
	upd.OwnerID = "bob"
	change(t, s, "g1", im.GroupChange{Version: 3, Update: &upd})
	if got, err := s.Group(t.Context(), "g1"); err != nil || got.OwnerID != "alice" {
		t.Errorf("Group after an Update naming another owner = %+v, %v; want OwnerID alice", got, err)
	}
	// A member given RoleOwner at creation is the group's owner.
	_, err := s.CreateGroup(t.Context(), newGroup("g2", "alice"), []im.GroupMember{member("bob", im.RoleOwner, at(0))}, im.AppendRequest{})
	checkErr(t, "creating a group whose RoleOwner member is not its owner", err, im.ErrInvalidArgument)
	checkNoGroup(t, s, "g2")
}

// testGroupMember: GroupMember answers for one user, from the stored
// state.
func testGroupMember(t *testing.T, h Harness) {
	s := open(t, h)
	alice := member("alice", im.RoleOwner, at(0))
	bob := member("bob", im.RoleAdmin, at(1))
	createGroup(t, s, newGroup("g1", "alice"), alice, bob)
	m, err := s.GroupMember(t.Context(), "g1", "bob")
	if err != nil || m.UserID != "bob" || m.Role != im.RoleAdmin || !m.JoinedAt.Equal(bob.JoinedAt) {
		t.Errorf("GroupMember(g1, bob) = %+v, %v; want %+v", m, err, bob)
	}
	for _, c := range [][2]string{{"g1", "carol"}, {"g1", "bo"}, {"g1", "bobby"}, {"g2", "bob"}, {"g", "alice"}, {"g1", ""}, {"", "bob"}} {
		m, err := s.GroupMember(t.Context(), c[0], c[1])
		checkErr(t, fmt.Sprintf("GroupMember(%q, %q) = %+v", c[0], c[1], m), err, im.ErrNotFound)
	}
	removeMembers(t, s, "g1", "bob")
	_, err = s.GroupMember(t.Context(), "g1", "bob")
	checkErr(t, "GroupMember after removal", err, im.ErrNotFound)
	if err := deleteGroup(t.Context(), s, "g1"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = s.GroupMember(t.Context(), "g1", "alice")
	checkErr(t, "GroupMember after deletion", err, im.ErrNotFound)
	_, err = s.GroupMember(cancelled(t), "g1", "alice")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("GroupMember with a cancelled ctx: %v, want context.Canceled", err)
	}
}

// testGroupMemberOf: a group message with MemberOf is stored only if its
// sender is a member when it commits; a refused one takes no seq and the
// rest of its batch is stored.
func testGroupMemberOf(t *testing.T, h Harness) {
	s := open(t, h)
	conv := im.GroupConversationID("g1")
	alice := member("alice", im.RoleOwner, at(0))
	bob := member("bob", im.RoleMember, at(1))
	createGroup(t, s, newGroup("g1", "alice"), alice, bob)
	createGroup(t, s, newGroup("g2", "carol"), member("carol", im.RoleOwner, at(0)))
	conv2 := im.GroupConversationID("g2")

	grp := func(conv, gid, sender, cmid string) im.AppendRequest {
		return im.AppendRequest{Message: newMessage(conv, sender, cmid), MemberOf: gid}
	}
	res := appendOK(t, s, []im.AppendRequest{
		grp(conv, "g1", "alice", "a1"),
		grp(conv, "g1", "carol", "c1"), // not a member of g1
		grp(conv2, "g2", "carol", "c2"),
		grp(conv, "g1", "bob", "b1"),
		grp(im.GroupConversationID("g9"), "g9", "alice", "a9"), // no such group
		{Message: newMessage(conv, "dave", "d1")},              // no MemberOf: stored as asked
		grp(conv, "g1", "bob", "b1"),                           // a duplicate, once b1 is stored
	})
	type want struct {
		seq     int64
		denied  bool
		version int64
	}
	for i, w := range []want{{1, false, 1}, {0, true, 1}, {1, false, 1}, {2, false, 1}, {0, true, 0}, {3, false, 0}, {2, false, 1}} {
		r := res[i]
		switch {
		case w.denied && !errors.Is(r.Err, im.ErrPermissionDenied):
			t.Errorf("request %d: Err %v, want ErrPermissionDenied", i, r.Err)
		case !w.denied && r.Err != nil:
			t.Errorf("request %d: Err %v, want none", i, r.Err)
		case !w.denied && r.Message.Seq != w.seq:
			t.Errorf("request %d: seq %d, want %d", i, r.Message.Seq, w.seq)
		}
		if w.version != 0 && r.GroupVersion != w.version {
			t.Errorf("request %d: GroupVersion %d, want %d", i, r.GroupVersion, w.version)
		}
	}
	checkMaxSeq(t, s, conv, 3)
	checkNoConversation(t, s, im.GroupConversationID("g9"))

	// Removed, bob is refused; a new member is not, and the versions say
	// what changed.
	change(t, s, "g1", im.GroupChange{Remove: []string{"bob"}, Put: []im.GroupMember{member("carol", im.RoleMember, at(2))}})
	res = appendOK(t, s, []im.AppendRequest{grp(conv, "g1", "bob", "b2"), grp(conv, "g1", "carol", "c3")})
	if !errors.Is(res[0].Err, im.ErrPermissionDenied) || res[0].GroupVersion != 2 {
		t.Errorf("a removed member's message: Err %v, GroupVersion %d; want ErrPermissionDenied, 2", res[0].Err, res[0].GroupVersion)
	}
	if res[1].Err != nil || res[1].Message.Seq != 4 || res[1].GroupVersion != 2 {
		t.Errorf("a new member's message: %+v; want seq 4 at GroupVersion 2", res[1])
	}

	// Deleted, the group refuses everyone, its owner included.
	if err := deleteGroup(t.Context(), s, "g1"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	res = appendOK(t, s, []im.AppendRequest{grp(conv, "g1", "alice", "a2"), grp(conv2, "g2", "carol", "c4")})
	if !errors.Is(res[0].Err, im.ErrPermissionDenied) || res[0].GroupVersion != 0 {
		t.Errorf("a message to a deleted group: Err %v, GroupVersion %d; want ErrPermissionDenied, 0", res[0].Err, res[0].GroupVersion)
	}
	if res[1].Err != nil || res[1].Message.Seq != 2 {
		t.Errorf("the other group's message: %+v; want seq 2", res[1])
	}
	checkMaxSeq(t, s, conv, 4)

	// MemberOf must name the message's own group.
	res = appendOK(t, s, []im.AppendRequest{grp(conv2, "g1", "carol", "c5")})
	if !isInvalid(res[0].Err) {
		t.Errorf("MemberOf of another group: Err %v, want ErrInvalidArgument", res[0].Err)
	}
}

// testGroupChangeInvalid: a change that fails ValidateGroupChange, or a
// create whose notice fails ValidateAppend, is ErrInvalidArgument and
// writes nothing, neither the change nor the notice.
func testGroupChangeInvalid(t *testing.T, h Harness) {
	alice := member("alice", im.RoleOwner, at(0))
	bob := member("bob", im.RoleMember, at(1))
	carol := member("carol", im.RoleMember, at(2))
	upd := newGroup("g1", "alice")
	upd.Name = "Renamed"
	other := newGroup("g2", "alice")
	withMemberOf := notice("g1", "alice", "n")
	withMemberOf.MemberOf = "g1"
	noSender := notice("g1", "", "n")
	for _, tt := range []struct {
		name string
		ch   im.GroupChange
	}{
		{"DeleteAndPut", im.GroupChange{Delete: true, Put: []im.GroupMember{carol}}},
		{"DeleteAndRemove", im.GroupChange{Delete: true, Remove: []string{"bob"}}},
		{"DeleteAndUpdate", im.GroupChange{Delete: true, Update: &upd}},
		{"NegativeVersion", im.GroupChange{Version: -1, Put: []im.GroupMember{carol}}},
		{"NegativeMaxMembers", im.GroupChange{MaxMembers: -1, Put: []im.GroupMember{carol}}},
		{"UpdateOfAnotherGroup", im.GroupChange{Update: &other}},
		{"PutAndRemoveOneUser", im.GroupChange{Put: []im.GroupMember{carol}, Remove: []string{"carol"}}},
		{"NoticeWithMemberOf", im.GroupChange{Put: []im.GroupMember{carol}, Notice: withMemberOf}},
		{"NoticeWithoutSender", im.GroupChange{Put: []im.GroupMember{carol}, Notice: noSender}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, h)
			g := newGroup("g1", "alice")
			createGroup(t, s, g, alice, bob)
			_, err := s.ChangeGroup(t.Context(), "g1", tt.ch)
			if !isInvalid(err) {
				t.Errorf("ChangeGroup: %v, want ErrInvalidArgument", err)
			}
			checkGroup(t, s, func() im.Group { w := withCount(g, 2); w.Version = 1; return w }())
			checkMembers(t, s, "g1", alice, bob)
			checkNoConversation(t, s, im.GroupConversationID("g1"))
		})
	}
	t.Run("CreateNoticeWithoutServerID", func(t *testing.T) {
		s := open(t, h)
		n := notice("g1", "alice", "n")
		n.Message.ServerID = ""
		_, err := s.CreateGroup(t.Context(), newGroup("g1", "alice"), []im.GroupMember{alice}, n)
		if !isInvalid(err) {
			t.Errorf("CreateGroup: %v, want ErrInvalidArgument", err)
		}
		checkNoGroup(t, s, "g1")
		checkNoConversation(t, s, im.GroupConversationID("g1"))
	})
}
