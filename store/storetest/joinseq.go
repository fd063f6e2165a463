package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/imserver/imserver/im"
)

// joinSeqs returns the JoinSeq of each member of group id, by user id, as
// GroupMembers reads them, and checks that GroupMember reads the same.
func joinSeqs(t *testing.T, s im.Store, id string) map[string]int64 {
	t.Helper()
	out := make(map[string]int64)
	for u, m := range groupMembers(t, s, id) {
		out[u] = m.JoinSeq
		one, err := s.GroupMember(t.Context(), id, u)
		if err != nil {
			t.Errorf("GroupMember(%q, %q): %v", id, u, err)
		} else if one.JoinSeq != m.JoinSeq {
			t.Errorf("GroupMember(%q, %q).JoinSeq = %d, but GroupMembers reads %d", id, u, one.JoinSeq, m.JoinSeq)
		}
	}
	return out
}

// checkJoinSeqs requires the members of group id to have joined at want.
func checkJoinSeqs(t *testing.T, what string, s im.Store, id string, want map[string]int64) {
	t.Helper()
	got := joinSeqs(t, s, id)
	for u, w := range want {
		if got[u] != w {
			t.Errorf("%s: %q has JoinSeq %d, want %d", what, u, got[u], w)
		}
	}
}

// testGroupJoinSeq: the Store records, in the commit that makes a user a
// member, the seq of that change's notice (MaxSeq+1 without one), ignoring
// the JoinSeq it is given; a Put for a member keeps it, a new membership
// after a removal gets a new one, and it survives a reopen.
func testGroupJoinSeq(t *testing.T, h Harness) {
	s := open(t, h)
	conv := im.GroupConversationID("g1")
	alice := member("alice", im.RoleOwner, at(0))
	alice.JoinSeq = 99 // ignored: the store keeps it
	bob := member("bob", im.RoleMember, at(1))
	r, err := s.CreateGroup(t.Context(), newGroup("g1", "alice"), []im.GroupMember{alice, bob}, notice("g1", "alice", "created"))
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	if r.Message.Seq != 1 {
		t.Fatalf("CreateGroup: notice at seq %d, want 1", r.Message.Seq)
	}
	checkJoinSeqs(t, "after CreateGroup", s, "g1", map[string]int64{"alice": 1, "bob": 1})

	// Messages, then carol joins with a notice: at its seq.
	for i := range 3 {
		appendNew(t, s, []im.AppendRequest{{Message: newMessage(conv, "bob", fmt.Sprintf("m%d", i)), MemberOf: "g1"}})
	}
	carol := member("carol", im.RoleMember, at(2))
	carol.JoinSeq = 1
	r = change(t, s, "g1", im.GroupChange{Put: []im.GroupMember{carol}, Notice: notice("g1", "carol", "carol-joined")})
	if r.Message.Seq != 5 {
		t.Fatalf("join notice at seq %d, want 5", r.Message.Seq)
	}
	checkJoinSeqs(t, "after carol joined", s, "g1", map[string]int64{"alice": 1, "bob": 1, "carol": 5})

	// Without a notice, at the seq the next message takes.
	appendNew(t, s, []im.AppendRequest{{Message: newMessage(conv, "bob", "m3"), MemberOf: "g1"}})
	change(t, s, "g1", im.GroupChange{Put: []im.GroupMember{member("dave", im.RoleMember, at(3))}})
	checkJoinSeqs(t, "after dave was put without a notice", s, "g1", map[string]int64{"carol": 5, "dave": 7})

	// A Put for a member (a role), the owner's handover and other changes
	// keep it.
	change(t, s, "g1", im.GroupChange{Put: []im.GroupMember{member("carol", im.RoleAdmin, at(9))}, Notice: notice("g1", "alice", "carol-admin")})
	change(t, s, "g1", im.GroupChange{Put: []im.GroupMember{member("bob", im.RoleOwner, at(9))}, Notice: notice("g1", "alice", "handover")})
	checkJoinSeqs(t, "after role changes", s, "g1", map[string]int64{"alice": 1, "bob": 1, "carol": 5, "dave": 7})

	// Leaving and joining again is a new membership.
	change(t, s, "g1", im.GroupChange{Remove: []string{"carol"}, Notice: notice("g1", "carol", "carol-left")})
	appendNew(t, s, []im.AppendRequest{{Message: newMessage(conv, "bob", "m4"), MemberOf: "g1"}})
	r = change(t, s, "g1", im.GroupChange{Put: []im.GroupMember{member("carol", im.RoleMember, at(10))}, Notice: notice("g1", "bob", "carol-back")})
	checkJoinSeqs(t, "after carol came back", s, "g1", map[string]int64{"carol": r.Message.Seq})
	if r.Message.Seq != 11 {
		t.Errorf("carol's second join notice at seq %d, want 11", r.Message.Seq)
	}

	// In a group whose conversation has no message, the first seq.
	createGroup(t, s, newGroup("g2", "alice"), member("alice", im.RoleOwner, at(0)))
	checkJoinSeqs(t, "a group created without a notice", s, "g2", map[string]int64{"alice": 1})

	// Concurrent joins, each with its notice, each at its own notice.
	const n = 8
	results := make([]im.AppendResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			u := fmt.Sprintf("joiner%d", i)
			results[i], errs[i] = s.ChangeGroup(t.Context(), "g1", im.GroupChange{Put: []im.GroupMember{member(u, im.RoleMember, at(20))}, Notice: notice("g1", u, "join-"+u)})
		})
	}
	wg.Wait()
	want := make(map[string]int64)
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("concurrent join %d: %v", i, errs[i])
		}
		want[fmt.Sprintf("joiner%d", i)] = results[i].Message.Seq
	}
	checkJoinSeqs(t, "after concurrent joins", s, "g1", want)

	if h.Reopen == nil {
		return
	}
	before := joinSeqs(t, s, "g1")
	if s = h.Reopen(t, s); s == nil {
		t.Fatal("storetest: Harness.Reopen returned nil")
	}
	checkJoinSeqs(t, "after reopen", s, "g1", before)
}

// testGroupHistory: a group's History is stored as given by CreateGroup
// and replaced by an Update, like its other fields, whatever else the
// change does.
func testGroupHistory(t *testing.T, h Harness) {
	s := open(t, h)
	for _, hv := range []im.HistoryVisibility{im.HistoryFromJoin, im.HistoryFull} {
		id := fmt.Sprintf("h%d", hv)
		g := newGroup(id, "alice")
		g.History = hv
		createGroup(t, s, g, member("alice", im.RoleOwner, at(0)))
		checkGroup(t, s, withCount(g, 1))

		u := g
		u.History = 1 - hv
		u.Name = "Renamed"
		change(t, s, id, im.GroupChange{Update: &u, Put: []im.GroupMember{member("bob", im.RoleMember, at(1))}, Notice: notice(id, "alice", "update-"+id)})
		got, _, err := s.GroupMembers(t.Context(), id)
		if err != nil {
			t.Fatalf("GroupMembers(%q): %v", id, err)
		}
		if got.History != u.History {
			t.Errorf("GroupMembers(%q).History = %d after an update to %d", id, got.History, u.History)
		}
		checkGroup(t, s, withCount(u, 2))
		// A change without Update keeps it.
		change(t, s, id, im.GroupChange{Remove: []string{"bob"}})
		checkGroup(t, s, withCount(u, 1))
	}
	bad := newGroup("bad", "alice")
	bad.History = 2
	checkErr(t, "CreateGroup with an unknown History", createGroupErr(t.Context(), s, bad, []im.GroupMember{member("alice", im.RoleOwner, at(0))}), im.ErrInvalidArgument)
	checkNoGroup(t, s, "bad")
}
