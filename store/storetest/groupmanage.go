package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
)

// checkMutedUntil requires user's membership of group id, read by
// GroupMember and by GroupMembers, to have MutedUntil want.
func checkMutedUntil(t *testing.T, what string, s im.Store, id, user string, want time.Time) {
	t.Helper()
	m, err := s.GroupMember(t.Context(), id, user)
	if err != nil {
		t.Fatalf("%s: GroupMember(%q, %q): %v", what, id, user, err)
	}
	if !m.MutedUntil.Equal(want) {
		t.Errorf("%s: GroupMember(%q, %q).MutedUntil = %v, want %v", what, id, user, m.MutedUntil, want)
	}
	if got := groupMembers(t, s, id)[user].MutedUntil; !got.Equal(want) {
		t.Errorf("%s: GroupMembers(%q) gives %q MutedUntil %v, want %v", what, id, user, got, want)
	}
}

// testGroupMute: Group.MuteAll and GroupMember.MutedUntil are stored as
// given, by CreateGroup, an Update and a Put; a Put sets MutedUntil but
// keeps JoinedAt and JoinSeq; both survive a reopen.
func testGroupMute(t *testing.T, h Harness) {
	s := open(t, h)
	g := newGroup("g1", "alice")
	g.MuteAll = true
	alice := member("alice", im.RoleOwner, at(0))
	bob := member("bob", im.RoleMember, at(1))
	bob.MutedUntil = at(90)
	createGroup(t, s, g, alice, bob)
	checkGroup(t, s, withCount(g, 2))
	checkMutedUntil(t, "after create", s, "g1", "bob", at(90))

	before := joinSeqs(t, s, "g1")
	upd := g
	upd.MuteAll = false
	change(t, s, "g1", im.GroupChange{Version: 1, Update: &upd, Notice: notice("g1", "alice", "unmute-all")})
	checkGroup(t, s, withCount(upd, 2))

	// A Put of a member sets MutedUntil (and Role), keeping JoinedAt and
	// JoinSeq.
	muted := member("bob", im.RoleMember, at(50))
	muted.MutedUntil = at(120)
	change(t, s, "g1", im.GroupChange{Version: 2, Put: []im.GroupMember{muted}, Notice: notice("g1", "alice", "mute-bob")})
	checkMutedUntil(t, "after a Put", s, "g1", "bob", at(120))
	checkMembers(t, s, "g1", alice, bob)
	checkJoinSeqs(t, "after muting", s, "g1", before)

	change(t, s, "g1", im.GroupChange{Version: 3, Put: []im.GroupMember{member("bob", im.RoleMember, at(1))}})
	checkMutedUntil(t, "after a Put with zero MutedUntil", s, "g1", "bob", time.Time{})

	upd.MuteAll = true
	change(t, s, "g1", im.GroupChange{Version: 4, Update: &upd})
	change(t, s, "g1", im.GroupChange{Version: 5, Put: []im.GroupMember{muted}})
	if h.Reopen == nil {
		return
	}
	s = h.Reopen(t, s)
	if s == nil {
		t.Fatal("storetest: Harness.Reopen returned nil")
	}
	checkGroup(t, s, withCount(upd, 2))
	checkMutedUntil(t, "after reopen", s, "g1", "bob", at(120))
	checkJoinSeqs(t, "after reopen", s, "g1", before)
}

// testGroupMutedSender: the MemberOf check refuses, with ErrMuted, a
// sender whose MutedUntil is after the message's CreatedAt, and below
// RoleAdmin one when the group has MuteAll; the refused take no seq and
// the rest of the batch is stored.
func testGroupMutedSender(t *testing.T, h Harness) {
	s := open(t, h)
	conv := im.GroupConversationID("g1")
	alice := member("alice", im.RoleOwner, at(0))
	bob := member("bob", im.RoleMember, at(1))
	carol := member("carol", im.RoleAdmin, at(2))
	bob.MutedUntil = at(10)
	g := newGroup("g1", "alice")
	createGroup(t, s, g, alice, bob, carol)

	msg := func(sender, cmid string, createdAt time.Time) im.AppendRequest {
		m := newMessage(conv, sender, cmid)
		m.CreatedAt = createdAt
		return im.AppendRequest{Message: m, MemberOf: "g1"}
	}
	type want struct {
		seq   int64
		muted bool
	}
	check := func(what string, res []im.AppendResult, wants ...want) {
		t.Helper()
		for i, w := range wants {
			r := res[i]
			switch {
			case w.muted && !errors.Is(r.Err, im.ErrMuted):
				t.Errorf("%s: request %d: Err %v, want ErrMuted", what, i, r.Err)
			case w.muted && !errors.Is(r.Err, im.ErrPermissionDenied):
				t.Errorf("%s: request %d: Err %v does not wrap ErrPermissionDenied", what, i, r.Err)
			case !w.muted && r.Err != nil:
				t.Errorf("%s: request %d: Err %v, want none", what, i, r.Err)
			case !w.muted && r.Message.Seq != w.seq:
				t.Errorf("%s: request %d: seq %d, want %d", what, i, r.Message.Seq, w.seq)
			}
		}
	}
	// Muted until at(10): refused before, stored from then on (a message
	// created at the very instant is no longer muted).
	res := appendOK(t, s, []im.AppendRequest{
		msg("bob", "b1", at(5)),
		msg("alice", "a1", at(5)),
		msg("bob", "b2", at(10)),
		msg("bob", "b3", at(11)),
	})
	check("bob muted until at(10)", res, want{muted: true}, want{seq: 1}, want{seq: 2}, want{seq: 3})
	checkMaxSeq(t, s, conv, 3)

	// MuteAll: members are refused, admins and the owner are not.
	upd := g
	upd.MuteAll = true
	change(t, s, "g1", im.GroupChange{Update: &upd})
	res = appendOK(t, s, []im.AppendRequest{
		msg("bob", "b4", at(20)),
		msg("carol", "c1", at(20)),
		msg("alice", "a2", at(20)),
	})
	check("MuteAll", res, want{muted: true}, want{seq: 4}, want{seq: 5})

	// A muted admin is muted whatever MuteAll says.
	mutedCarol := carol
	mutedCarol.MutedUntil = at(30)
	change(t, s, "g1", im.GroupChange{Put: []im.GroupMember{mutedCarol}})
	res = appendOK(t, s, []im.AppendRequest{msg("carol", "c2", at(25)), msg("carol", "c3", at(31))})
	check("carol muted until at(30)", res, want{muted: true}, want{seq: 6})

	// Unmuted, the group takes members' messages again.
	upd.MuteAll = false
	change(t, s, "g1", im.GroupChange{Update: &upd})
	res = appendOK(t, s, []im.AppendRequest{msg("bob", "b5", at(40))})
	check("MuteAll off", res, want{seq: 7})
	checkMaxSeq(t, s, conv, 7)
}

// joinRequestStore returns s's im.GroupJoinRequestStore, skipping t when it
// has none.
func joinRequestStore(t *testing.T, s im.Store) im.GroupJoinRequestStore {
	t.Helper()
	js, ok := s.(im.GroupJoinRequestStore)
	if !ok {
		t.Skip("storetest: the store does not implement im.GroupJoinRequestStore")
	}
	return js
}

func joinRequest(group, user, message string, createdAt time.Time) im.GroupJoinRequest {
	return im.GroupJoinRequest{GroupID: group, UserID: user, Message: message, CreatedAt: createdAt}
}

// checkJoinRequests requires group id's pending requests to be want, in
// that order.
func checkJoinRequests(t *testing.T, what string, js im.GroupJoinRequestStore, id string, want ...im.GroupJoinRequest) {
	t.Helper()
	got, err := js.JoinRequests(t.Context(), id)
	if err != nil {
		t.Fatalf("%s: JoinRequests(%q): %v", what, id, err)
	}
	if got == nil {
		t.Errorf("%s: JoinRequests(%q) is nil, want an empty slice", what, id)
	}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].GroupID == want[i].GroupID && got[i].UserID == want[i].UserID &&
			got[i].Message == want[i].Message && got[i].CreatedAt.Equal(want[i].CreatedAt)
	}
	if !ok {
		t.Errorf("%s: JoinRequests(%q) = %+v, want %+v", what, id, got, want)
	}
}

// testGroupJoinRequests checks im.GroupJoinRequestStore, when the store
// has it.
func testGroupJoinRequests(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"PutAndGet", testJoinRequestPutAndGet},
		{"Refusals", testJoinRequestRefusals},
		{"RemovedByChange", testJoinRequestRemovedByChange},
		{"Cancelled", testJoinRequestCancelled},
		{"ApprovalsConcurrent", testJoinApprovalsConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, h) })
	}
}

// testJoinRequestPutAndGet: requests are stored, replaced, counted,
// listed by CreatedAt then UserID, read one by one and deleted; they
// survive a reopen.
func testJoinRequestPutAndGet(t *testing.T, h Harness) {
	s := open(t, h)
	js := joinRequestStore(t, s)
	ctx := t.Context()
	createGroup(t, s, newGroup("g1", "alice"), member("alice", im.RoleOwner, at(0)))
	createGroup(t, s, newGroup("g2", "alice"), member("alice", im.RoleOwner, at(0)))
	checkJoinRequests(t, "none yet", js, "g1")

	carol := joinRequest("g1", "carol", "hello ✓", at(1))
	dave := joinRequest("g1", "dave", "", at(0))
	erin := joinRequest("g1", "erin", "me too", at(1))
	for i, r := range []im.GroupJoinRequest{carol, dave, erin} {
		n, err := js.PutJoinRequest(ctx, r)
		if err != nil || n != i+1 {
			t.Fatalf("PutJoinRequest(%s) = %d, %v; want %d, nil", r.UserID, n, err, i+1)
		}
	}
	checkJoinRequests(t, "three", js, "g1", dave, carol, erin)

	// Again, carol's request replaces her first one.
	carol2 := joinRequest("g1", "carol", "please", at(2))
	if n, err := js.PutJoinRequest(ctx, carol2); err != nil || n != 3 {
		t.Fatalf("PutJoinRequest(carol again) = %d, %v; want 3, nil", n, err)
	}
	checkJoinRequests(t, "carol's replaced", js, "g1", dave, erin, carol2)
	// Requests to another group are counted apart.
	if n, err := js.PutJoinRequest(ctx, joinRequest("g2", "carol", "", at(3))); err != nil || n != 1 {
		t.Fatalf("PutJoinRequest(g2) = %d, %v; want 1, nil", n, err)
	}

	got, err := js.JoinRequest(ctx, "g1", "carol")
	if err != nil || got.Message != "please" || !got.CreatedAt.Equal(at(2)) || got.UserID != "carol" || got.GroupID != "g1" {
		t.Errorf("JoinRequest(g1, carol) = %+v, %v; want %+v", got, err, carol2)
	}
	if err := js.DeleteJoinRequest(ctx, "g1", "dave"); err != nil {
		t.Fatalf("DeleteJoinRequest(dave): %v", err)
	}
	checkJoinRequests(t, "dave's deleted", js, "g1", erin, carol2)
	_, err = js.JoinRequest(ctx, "g1", "dave")
	checkErr(t, "JoinRequest of a deleted request", err, im.ErrNotFound)
	checkErr(t, "DeleteJoinRequest again", js.DeleteJoinRequest(ctx, "g1", "dave"), im.ErrNotFound)
	_, err = js.JoinRequest(ctx, "g9", "carol")
	checkErr(t, "JoinRequest of a missing group", err, im.ErrNotFound)

	if h.Reopen == nil {
		return
	}
	s = h.Reopen(t, s)
	if s == nil {
		t.Fatal("storetest: Harness.Reopen returned nil")
	}
	js = joinRequestStore(t, s)
	checkJoinRequests(t, "after reopen", js, "g1", erin, carol2)
}

// testJoinRequestRefusals: a request to a missing group is ErrNotFound,
// one of a member ErrConflict, invalid input ErrInvalidArgument; none
// writes anything.
func testJoinRequestRefusals(t *testing.T, h Harness) {
	s := open(t, h)
	js := joinRequestStore(t, s)
	ctx := t.Context()
	createGroup(t, s, newGroup("g1", "alice"), member("alice", im.RoleOwner, at(0)), member("bob", im.RoleMember, at(1)))
	first := joinRequest("g1", "carol", "hi", at(1))
	if _, err := js.PutJoinRequest(ctx, first); err != nil {
		t.Fatalf("PutJoinRequest: %v", err)
	}

	_, err := js.PutJoinRequest(ctx, joinRequest("g9", "carol", "", at(2)))
	checkErr(t, "a request to a missing group", err, im.ErrNotFound)
	_, err = js.PutJoinRequest(ctx, joinRequest("g1", "bob", "", at(2)))
	checkErr(t, "a member's request", err, im.ErrConflict)
	_, err = js.PutJoinRequest(ctx, joinRequest("g1", "alice", "", at(2)))
	checkErr(t, "the owner's request", err, im.ErrConflict)

	for name, r := range map[string]im.GroupJoinRequest{
		"EmptyGroupID":    joinRequest("", "dave", "", at(2)),
		"EmptyUserID":     joinRequest("g1", "", "", at(2)),
		"ControlUserID":   joinRequest("g1", "da\x00ve", "", at(2)),
		"LongMessage":     joinRequest("g1", "carol", strings.Repeat("é", im.MaxFriendMessageLen+1), at(2)),
		"ControlMessage":  joinRequest("g1", "carol", "a\x07b", at(2)),
		"InvalidUTF8Text": joinRequest("g1", "carol", "a\xffb", at(2)),
	} {
		if _, err := js.PutJoinRequest(ctx, r); !isInvalid(err) {
			t.Errorf("%s: PutJoinRequest = %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, err := js.PutJoinRequest(ctx, joinRequest("g1", "dave", strings.Repeat("é", im.MaxFriendMessageLen), at(3))); err != nil {
		t.Errorf("a message of exactly %d characters: %v", im.MaxFriendMessageLen, err)
	}
	_, err = js.JoinRequests(ctx, "")
	checkErr(t, "JoinRequests with an empty group id", err, im.ErrInvalidArgument)
	_, err = js.JoinRequest(ctx, "g1", "")
	checkErr(t, "JoinRequest with an empty user id", err, im.ErrInvalidArgument)
	checkErr(t, "DeleteJoinRequest with an empty user id", js.DeleteJoinRequest(ctx, "g1", ""), im.ErrInvalidArgument)
	checkJoinRequests(t, "after the refusals", js, "g1", first, joinRequest("g1", "dave", strings.Repeat("é", im.MaxFriendMessageLen), at(3)))
}

// testJoinRequestRemovedByChange: a Put removes the requests of the users
// it puts, in the same commit, and a Delete all of the group's.
func testJoinRequestRemovedByChange(t *testing.T, h Harness) {
	s := open(t, h)
	js := joinRequestStore(t, s)
	ctx := t.Context()
	alice := member("alice", im.RoleOwner, at(0))
	createGroup(t, s, newGroup("g1", "alice"), alice)
	createGroup(t, s, newGroup("g2", "alice"), alice)
	carol, dave, erin := joinRequest("g1", "carol", "", at(1)), joinRequest("g1", "dave", "", at(2)), joinRequest("g1", "erin", "", at(3))
	other := joinRequest("g2", "carol", "", at(1))
	for _, r := range []im.GroupJoinRequest{carol, dave, erin, other} {
		if _, err := js.PutJoinRequest(ctx, r); err != nil {
			t.Fatalf("PutJoinRequest(%+v): %v", r, err)
		}
	}
	change(t, s, "g1", im.GroupChange{Version: 1, MaxMembers: 10, Put: []im.GroupMember{member("carol", im.RoleMember, at(5))}, Notice: notice("g1", "alice", "approve-carol")})
	checkJoinRequests(t, "carol put", js, "g1", dave, erin)
	checkJoinRequests(t, "carol put into g1", js, "g2", other)
	// A refused change removes nothing.
	_, err := s.ChangeGroup(ctx, "g1", im.GroupChange{Version: 2, MaxMembers: 2, Put: []im.GroupMember{member("dave", im.RoleMember, at(6)), member("erin", im.RoleMember, at(6))}})
	checkErr(t, "putting past the limit", err, im.ErrLimitExceeded)
	checkJoinRequests(t, "after a refused change", js, "g1", dave, erin)

	change(t, s, "g1", im.GroupChange{Delete: true})
	checkJoinRequests(t, "group deleted", js, "g1")
	_, err = js.JoinRequest(ctx, "g1", "erin")
	checkErr(t, "a deleted group's request", err, im.ErrNotFound)
	checkJoinRequests(t, "the other group's", js, "g2", other)

	// A group created again with the id starts with no requests.
	createGroup(t, s, newGroup("g1", "alice"), alice)
	checkJoinRequests(t, "group created again", js, "g1")
}

// testJoinRequestCancelled: a cancelled ctx fails every call, which
// writes nothing.
func testJoinRequestCancelled(t *testing.T, h Harness) {
	s := open(t, h)
	js := joinRequestStore(t, s)
	createGroup(t, s, newGroup("g1", "alice"), member("alice", im.RoleOwner, at(0)))
	r := joinRequest("g1", "carol", "", at(1))
	if _, err := js.PutJoinRequest(t.Context(), r); err != nil {
		t.Fatalf("PutJoinRequest: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := js.PutJoinRequest(ctx, joinRequest("g1", "dave", "", at(2)))
	checkErr(t, "PutJoinRequest", err, context.Canceled)
	_, err = js.JoinRequests(ctx, "g1")
	checkErr(t, "JoinRequests", err, context.Canceled)
	_, err = js.JoinRequest(ctx, "g1", "carol")
	checkErr(t, "JoinRequest", err, context.Canceled)
	checkErr(t, "DeleteJoinRequest", js.DeleteJoinRequest(ctx, "g1", "carol"), context.Canceled)
	checkJoinRequests(t, "after the cancelled calls", js, "g1", r)
}

// testJoinApprovalsConcurrent: many approvals at once, each a conditional
// Put decided on the version it read (retried on ErrConflict) with
// MaxMembers, as a Server approving requests does, never take a group past
// the limit; the approved lose their requests and the refused keep them.
func testJoinApprovalsConcurrent(t *testing.T, h Harness) {
	s := open(t, h)
	js := joinRequestStore(t, s)
	const (
		limit    = 8
		requests = 30
		attempts = 200
		groupID  = "g1"
		owners   = 1
	)
	createGroup(t, s, newGroup(groupID, "owner"), member("owner", im.RoleOwner, at(0)))
	for i := range requests {
		if _, err := js.PutJoinRequest(t.Context(), joinRequest(groupID, fmt.Sprintf("u%02d", i), "", at(i))); err != nil {
			t.Fatalf("PutJoinRequest: %v", err)
		}
	}
	var (
		wg          sync.WaitGroup
		start       = make(chan struct{})
		approved    atomic.Int32
		approvedIDs sync.Map
	)
	for i := range requests {
		wg.Go(func() {
			<-start
			u := fmt.Sprintf("u%02d", i)
			for range attempts {
				g, err := s.Group(t.Context(), groupID)
				if err != nil {
					t.Errorf("Group: %v", err)
					return
				}
				_, err = s.ChangeGroup(t.Context(), groupID, im.GroupChange{Version: g.Version, MaxMembers: limit, Put: []im.GroupMember{member(u, im.RoleMember, at(i))}, Notice: notice(groupID, "owner", "approve-"+u)})
				switch {
				case err == nil:
					approved.Add(1)
					approvedIDs.Store(u, true)
					return
				case errors.Is(err, im.ErrLimitExceeded):
					return
				case !errors.Is(err, im.ErrConflict):
					t.Errorf("approve %s: %v, want nil, ErrConflict or ErrLimitExceeded", u, err)
					return
				}
			}
			t.Errorf("approve %s: still conflicting after %d attempts", u, attempts)
		})
	}
	close(start)
	wg.Wait()
	if got := approved.Load(); got != limit-owners {
		t.Errorf("%d approvals succeeded, want %d", got, limit-owners)
	}
	if got := groupMembers(t, s, groupID); len(got) != limit {
		t.Errorf("%d members, want %d", len(got), limit)
	}
	checkMaxSeq(t, s, im.GroupConversationID(groupID), int64(approved.Load()))
	left, err := js.JoinRequests(t.Context(), groupID)
	if err != nil {
		t.Fatalf("JoinRequests: %v", err)
	}
	if len(left) != requests-int(approved.Load()) {
		t.Errorf("%d requests left, want %d", len(left), requests-int(approved.Load()))
	}
	for _, r := range left {
		if _, ok := approvedIDs.Load(r.UserID); ok {
			t.Errorf("%s was approved but her request is left", r.UserID)
		}
	}
}
