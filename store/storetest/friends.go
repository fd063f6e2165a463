package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
)

// testFriends checks im.FriendStore, for stores that have it.
func testFriends(t *testing.T, h Harness) {
	if _, ok := open(t, h).(im.FriendStore); !ok {
		t.Skip("storetest: the store does not implement im.FriendStore")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, fs im.FriendStore)
	}{
		{"Request", testFriendRequest},
		{"Mutual", testFriendMutual},
		{"Accept", testFriendAccept},
		{"RejectCancel", testFriendRejectCancel},
		{"Delete", testFriendDelete},
		{"Remark", testFriendRemark},
		{"Ordering", testFriendOrdering},
		{"Relation", testFriendRelation},
		{"Block", testFriendBlock},
		{"Unblock", testFriendUnblock},
		{"RemoveUser", testFriendRemoveUser},
		{"Invalid", testFriendInvalid},
		{"Cancelled", testFriendCancelled},
		{"Concurrent", testFriendConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, ok := open(t, h).(im.FriendStore)
			if !ok {
				t.Fatal("storetest: Harness.Open returned stores of different types")
			}
			tt.fn(t, fs)
		})
	}
	t.Run("Durability", func(t *testing.T) { testFriendDurability(t, h) })
}

// friendTime is the i-th time the friend cases write: microseconds apart,
// each with a sub-millisecond part.
func friendTime(i int) time.Time { return baseTime().Add(time.Duration(i) * time.Microsecond) }

func request(t *testing.T, fs im.FriendStore, from, to, msg string, at time.Time, want im.FriendOutcome) {
	t.Helper()
	got, err := fs.RequestFriend(t.Context(), im.FriendRequest{From: from, To: to, Message: msg, CreatedAt: at})
	if err != nil {
		t.Fatalf("RequestFriend(%s → %s): %v", from, to, err)
	}
	if got != want {
		t.Fatalf("RequestFriend(%s → %s) = %d, want %d", from, to, got, want)
	}
}

// friendsOf returns the FriendIDs of user's friends, failing t on error.
func friendsOf(t *testing.T, fs im.FriendStore, user string) []im.Friend {
	t.Helper()
	fr, err := fs.Friends(t.Context(), user)
	if err != nil {
		t.Fatalf("Friends(%s): %v", user, err)
	}
	if fr == nil {
		t.Fatalf("Friends(%s) = nil, want an empty slice for none", user)
	}
	return fr
}

func requestsOf(t *testing.T, fs im.FriendStore, user string) (in, out []im.FriendRequest) {
	t.Helper()
	in, out, err := fs.FriendRequests(t.Context(), user)
	if err != nil {
		t.Fatalf("FriendRequests(%s): %v", user, err)
	}
	if in == nil || out == nil {
		t.Fatalf("FriendRequests(%s) = %v, %v: want empty slices for none", user, in, out)
	}
	return in, out
}

func relation(t *testing.T, fs im.FriendStore, a, b string) im.Relation {
	t.Helper()
	r, err := fs.Relation(t.Context(), a, b)
	if err != nil {
		t.Fatalf("Relation(%s, %s): %v", a, b, err)
	}
	if r.UserID != a || r.OtherID != b {
		t.Fatalf("Relation(%s, %s) names %s and %s", a, b, r.UserID, r.OtherID)
	}
	return r
}

func friendIDs(fr []im.Friend) string {
	ids := make([]string, len(fr))
	for i, f := range fr {
		ids[i] = f.FriendID
	}
	return strings.Join(ids, ",")
}

func requestPairs(rs []im.FriendRequest) string {
	ps := make([]string, len(rs))
	for i, r := range rs {
		ps[i] = r.From + ">" + r.To
	}
	return strings.Join(ps, ",")
}

// requireFriends requires a and b to be friends on both sides, created at
// at, with no request left between them.
func requireFriends(t *testing.T, fs im.FriendStore, a, b string, at time.Time) {
	t.Helper()
	for _, p := range [][2]string{{a, b}, {b, a}} {
		r := relation(t, fs, p[0], p[1])
		if !r.Friends || r.Friend.UserID != p[0] || r.Friend.FriendID != p[1] || !r.Friend.CreatedAt.Equal(at) {
			t.Fatalf("Relation(%s, %s) = %+v, want friends since %v", p[0], p[1], r, at)
		}
		if r.RequestSent || r.RequestReceived {
			t.Fatalf("Relation(%s, %s) = %+v: a request is left beside the friendship", p[0], p[1], r)
		}
		found := false
		for _, f := range friendsOf(t, fs, p[0]) {
			found = found || f.FriendID == p[1]
		}
		if !found {
			t.Fatalf("Friends(%s) lacks %s", p[0], p[1])
		}
	}
}

// requireStrangers requires a and b to have no friendship and no request.
func requireStrangers(t *testing.T, fs im.FriendStore, a, b string) {
	t.Helper()
	for _, p := range [][2]string{{a, b}, {b, a}} {
		r := relation(t, fs, p[0], p[1])
		if r.Friends || r.RequestSent || r.RequestReceived {
			t.Fatalf("Relation(%s, %s) = %+v, want no friendship and no request", p[0], p[1], r)
		}
		for _, f := range friendsOf(t, fs, p[0]) {
			if f.FriendID == p[1] {
				t.Fatalf("Friends(%s) still lists %s", p[0], p[1])
			}
		}
		in, out := requestsOf(t, fs, p[0])
		for _, r := range append(in, out...) {
			if r.From == p[1] || r.To == p[1] {
				t.Fatalf("FriendRequests(%s) still lists %s>%s", p[0], r.From, r.To)
			}
		}
	}
}

func testFriendRequest(t *testing.T, fs im.FriendStore) {
	request(t, fs, "alice", "bob", "hi", friendTime(1), im.FriendRequested)
	in, out := requestsOf(t, fs, "bob")
	if len(in) != 1 || len(out) != 0 {
		t.Fatalf("bob's requests: in %s, out %s; want in alice>bob", requestPairs(in), requestPairs(out))
	}
	if r := in[0]; r.From != "alice" || r.To != "bob" || r.Message != "hi" || !r.CreatedAt.Equal(friendTime(1)) {
		t.Fatalf("bob's incoming request = %+v", r)
	}
	// Repeated: the message and time are replaced, still one request.
	request(t, fs, "alice", "bob", "it's me", friendTime(2), im.FriendRequested)
	in, out = requestsOf(t, fs, "alice")
	if len(in) != 0 || len(out) != 1 {
		t.Fatalf("alice's requests: in %s, out %s; want out alice>bob once", requestPairs(in), requestPairs(out))
	}
	if r := out[0]; r.Message != "it's me" || !r.CreatedAt.Equal(friendTime(2)) {
		t.Fatalf("alice's repeated request = %+v, want its message and time replaced", r)
	}
	if _, err := fs.AcceptFriend(t.Context(), "bob", "alice", friendTime(3)); err != nil {
		t.Fatal(err)
	}
	request(t, fs, "alice", "bob", "again", friendTime(4), im.FriendAlready)
	request(t, fs, "bob", "alice", "again", friendTime(5), im.FriendAlready)
	requireFriends(t, fs, "alice", "bob", friendTime(3))
}

func testFriendMutual(t *testing.T, fs im.FriendStore) {
	request(t, fs, "alice", "bob", "hi", friendTime(1), im.FriendRequested)
	request(t, fs, "bob", "alice", "hello", friendTime(2), im.FriendAccepted)
	requireFriends(t, fs, "alice", "bob", friendTime(2))
	for _, u := range []string{"alice", "bob"} {
		if fr := friendsOf(t, fs, u); len(fr) != 1 || fr[0].Remark != "" {
			t.Fatalf("Friends(%s) = %+v, want one friendship without remark", u, fr)
		}
		if in, out := requestsOf(t, fs, u); len(in)+len(out) != 0 {
			t.Fatalf("%s's requests after the mutual ask: in %s, out %s", u, requestPairs(in), requestPairs(out))
		}
	}
}

func testFriendAccept(t *testing.T, fs im.FriendStore) {
	ctx := t.Context()
	if _, err := fs.AcceptFriend(ctx, "bob", "alice", friendTime(1)); !errors.Is(err, im.ErrNotFound) {
		t.Fatalf("AcceptFriend without a request: %v, want ErrNotFound", err)
	}
	request(t, fs, "alice", "bob", "hi", friendTime(1), im.FriendRequested)
	// The one who asked cannot accept her own request.
	if _, err := fs.AcceptFriend(ctx, "alice", "bob", friendTime(2)); !errors.Is(err, im.ErrNotFound) {
		t.Fatalf("AcceptFriend of one's own request: %v, want ErrNotFound", err)
	}
	requireStrangers(t, fs, "alice", "carol")
	f, err := fs.AcceptFriend(ctx, "bob", "alice", friendTime(3))
	if err != nil {
		t.Fatal(err)
	}
	if f.UserID != "bob" || f.FriendID != "alice" || f.Remark != "" || !f.CreatedAt.Equal(friendTime(3)) {
		t.Fatalf("AcceptFriend = %+v, want bob's side since %v", f, friendTime(3))
	}
	requireFriends(t, fs, "alice", "bob", friendTime(3))
	if _, err := fs.AcceptFriend(ctx, "bob", "alice", friendTime(4)); !errors.Is(err, im.ErrNotFound) {
		t.Fatalf("AcceptFriend twice: %v, want ErrNotFound", err)
	}
}

func testFriendRejectCancel(t *testing.T, fs im.FriendStore) {
	ctx := t.Context()
	if err := fs.RejectFriend(ctx, "bob", "alice"); !errors.Is(err, im.ErrNotFound) {
		t.Fatalf("RejectFriend without a request: %v, want ErrNotFound", err)
	}
	if err := fs.CancelFriendRequest(ctx, "alice", "bob"); !errors.Is(err, im.ErrNotFound) {
		t.Fatalf("CancelFriendRequest without a request: %v, want ErrNotFound", err)
	}
	request(t, fs, "alice", "bob", "hi", friendTime(1), im.FriendRequested)
	// The wrong side of the request.
	if err := fs.RejectFriend(ctx, "alice", "bob"); !errors.Is(err, im.ErrNotFound) {
		t.Fatalf("RejectFriend by the one who asked: %v, want ErrNotFound", err)
	}
	if err := fs.CancelFriendRequest(ctx, "bob", "alice"); !errors.Is(err, im.ErrNotFound) {
		t.Fatalf("CancelFriendRequest by the one asked: %v, want ErrNotFound", err)
	}
	if err := fs.RejectFriend(ctx, "bob", "alice"); err != nil {
		t.Fatal(err)
	}
	requireStrangers(t, fs, "alice", "bob")
	if err := fs.RejectFriend(ctx, "bob", "alice"); !errors.Is(err, im.ErrNotFound) {
		t.Fatalf("RejectFriend twice: %v, want ErrNotFound", err)
	}
	request(t, fs, "alice", "bob", "again", friendTime(2), im.FriendRequested)
	if err := fs.CancelFriendRequest(ctx, "alice", "bob"); err != nil {
		t.Fatal(err)
	}
	requireStrangers(t, fs, "alice", "bob")
	if err := fs.CancelFriendRequest(ctx, "alice", "bob"); !errors.Is(err, im.ErrNotFound) {
		t.Fatalf("CancelFriendRequest twice: %v, want ErrNotFound", err)
	}
}

func testFriendDelete(t *testing.T, fs im.FriendStore) {
	ctx := t.Context()
	if err := fs.DeleteFriend(ctx, "alice", "bob"); !errors.Is(err, im.ErrNotFound) {
		t.Fatalf("DeleteFriend of strangers: %v, want ErrNotFound", err)
	}
	request(t, fs, "alice", "bob", "", friendTime(1), im.FriendRequested)
	if err := fs.DeleteFriend(ctx, "alice", "bob"); !errors.Is(err, im.ErrNotFound) {
		t.Fatalf("DeleteFriend with only a request: %v, want ErrNotFound", err)
	}
	request(t, fs, "bob", "alice", "", friendTime(2), im.FriendAccepted)
	request(t, fs, "alice", "carol", "", friendTime(3), im.FriendRequested)
	request(t, fs, "carol", "alice", "", friendTime(4), im.FriendAccepted)
	// Deleted by the other side: both sides go.
	if err := fs.DeleteFriend(ctx, "bob", "alice"); err != nil {
		t.Fatal(err)
	}
	requireStrangers(t, fs, "alice", "bob")
	requireFriends(t, fs, "alice", "carol", friendTime(4))
	if err := fs.DeleteFriend(ctx, "alice", "bob"); !errors.Is(err, im.ErrNotFound) {
		t.Fatalf("DeleteFriend twice: %v, want ErrNotFound", err)
	}
}

func testFriendRemark(t *testing.T, fs im.FriendStore) {
	ctx := t.Context()
	if _, err := fs.SetFriendRemark(ctx, "alice", "bob", "Bobby"); !errors.Is(err, im.ErrNotFound) {
		t.Fatalf("SetFriendRemark of a stranger: %v, want ErrNotFound", err)
	}
	request(t, fs, "alice", "bob", "", friendTime(1), im.FriendRequested)
	request(t, fs, "bob", "alice", "", friendTime(2), im.FriendAccepted)
	f, err := fs.SetFriendRemark(ctx, "alice", "bob", "Bobby 🎸")
	if err != nil {
		t.Fatal(err)
	}
	if f.UserID != "alice" || f.FriendID != "bob" || f.Remark != "Bobby 🎸" || !f.CreatedAt.Equal(friendTime(2)) {
		t.Fatalf("SetFriendRemark = %+v", f)
	}
	if _, err := fs.SetFriendRemark(ctx, "bob", "alice", "Al"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ user, remark string }{{"alice", "Bobby 🎸"}, {"bob", "Al"}} {
		fr := friendsOf(t, fs, c.user)
		if len(fr) != 1 || fr[0].Remark != c.remark {
			t.Fatalf("Friends(%s) = %+v, want remark %q", c.user, fr, c.remark)
		}
		if r := relation(t, fs, c.user, fr[0].FriendID); r.Friend.Remark != c.remark {
			t.Fatalf("Relation(%s, …).Friend.Remark = %q, want %q", c.user, r.Friend.Remark, c.remark)
		}
	}
	if f, err := fs.SetFriendRemark(ctx, "alice", "bob", ""); err != nil || f.Remark != "" {
		t.Fatalf("clearing the remark: %+v, %v", f, err)
	}
	if fr := friendsOf(t, fs, "bob"); fr[0].Remark != "Al" {
		t.Fatalf("bob's remark changed with alice's: %+v", fr)
	}
}

func testFriendOrdering(t *testing.T, fs im.FriendStore) {
	for i, u := range []string{"zoe", "mike", "adam", "kate"} {
		request(t, fs, u, "alice", "", friendTime(10+i), im.FriendRequested)
		request(t, fs, "alice", u, "", friendTime(20+i), im.FriendAccepted)
	}
	if got := friendIDs(friendsOf(t, fs, "alice")); got != "adam,kate,mike,zoe" {
		t.Fatalf("Friends(alice) = %s, want ordered by FriendID", got)
	}
	// Requests: by CreatedAt, then by the other user's id.
	request(t, fs, "ted", "bob", "", friendTime(3), im.FriendRequested)
	request(t, fs, "sam", "bob", "", friendTime(1), im.FriendRequested)
	request(t, fs, "uma", "bob", "", friendTime(3), im.FriendRequested)
	request(t, fs, "rob", "bob", "", friendTime(3), im.FriendRequested)
	request(t, fs, "bob", "yan", "", friendTime(5), im.FriendRequested)
	request(t, fs, "bob", "xia", "", friendTime(5), im.FriendRequested)
	request(t, fs, "bob", "wes", "", friendTime(4), im.FriendRequested)
	in, out := requestsOf(t, fs, "bob")
	if got := requestPairs(in); got != "sam>bob,rob>bob,ted>bob,uma>bob" {
		t.Fatalf("bob's incoming = %s, want by CreatedAt then sender", got)
	}
	if got := requestPairs(out); got != "bob>wes,bob>xia,bob>yan" {
		t.Fatalf("bob's outgoing = %s, want by CreatedAt then receiver", got)
	}
	// Nobody's lists are empty, not nil.
	friendsOf(t, fs, "nobody")
	requestsOf(t, fs, "nobody")
	if b, err := fs.Blocks(t.Context(), "nobody"); err != nil || b == nil || len(b) != 0 {
		t.Fatalf("Blocks(nobody) = %v, %v; want an empty slice", b, err)
	}
}

func testFriendRelation(t *testing.T, fs im.FriendStore) {
	ctx := t.Context()
	if r := relation(t, fs, "ghost", "phantom"); r != (im.Relation{UserID: "ghost", OtherID: "phantom"}) {
		t.Fatalf("Relation of unknown users = %+v, want none", r)
	}
	request(t, fs, "alice", "bob", "", friendTime(1), im.FriendRequested)
	if r := relation(t, fs, "alice", "bob"); !r.RequestSent || r.RequestReceived || r.Friends || r.Blocked() {
		t.Fatalf("Relation(alice, bob) after her request = %+v", r)
	}
	if r := relation(t, fs, "bob", "alice"); r.RequestSent || !r.RequestReceived || r.Friends || r.Blocked() {
		t.Fatalf("Relation(bob, alice) after her request = %+v", r)
	}
	if err := fs.Block(ctx, "carol", "alice", friendTime(2)); err != nil {
		t.Fatal(err)
	}
	if r := relation(t, fs, "carol", "alice"); !r.Blocking || r.BlockedBy || !r.Blocked() {
		t.Fatalf("Relation(carol, alice) = %+v, want Blocking", r)
	}
	if r := relation(t, fs, "alice", "carol"); r.Blocking || !r.BlockedBy || !r.Blocked() {
		t.Fatalf("Relation(alice, carol) = %+v, want BlockedBy", r)
	}
}

func testFriendBlock(t *testing.T, fs im.FriendStore) {
	ctx := t.Context()
	request(t, fs, "alice", "bob", "", friendTime(1), im.FriendRequested)
	request(t, fs, "bob", "alice", "", friendTime(2), im.FriendAccepted)
	request(t, fs, "alice", "carol", "", friendTime(3), im.FriendRequested)
	request(t, fs, "dave", "alice", "", friendTime(4), im.FriendRequested)
	// A friendship ends, and requests go, whichever way they went.
	for _, b := range []string{"bob", "carol", "dave"} {
		if err := fs.Block(ctx, "alice", b, friendTime(10)); err != nil {
			t.Fatal(err)
		}
		requireStrangers(t, fs, "alice", b)
	}
	// Blocking again changes nothing, not even the time.
	if err := fs.Block(ctx, "alice", "bob", friendTime(11)); err != nil {
		t.Fatal(err)
	}
	blocks, err := fs.Blocks(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 3 {
		t.Fatalf("Blocks(alice) = %+v, want bob, carol, dave", blocks)
	}
	for i, want := range []string{"bob", "carol", "dave"} {
		if b := blocks[i]; b.BlockerID != "alice" || b.BlockedID != want || !b.CreatedAt.Equal(friendTime(10)) {
			t.Fatalf("Blocks(alice)[%d] = %+v, want alice blocking %s since %v", i, b, want, friendTime(10))
		}
	}
	if b, _ := fs.Blocks(ctx, "bob"); len(b) != 0 {
		t.Fatalf("Blocks(bob) = %+v: the blocked user blocks nobody", b)
	}
	// New requests are refused both ways, and write nothing.
	for _, p := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
		_, err := fs.RequestFriend(ctx, im.FriendRequest{From: p[0], To: p[1], CreatedAt: friendTime(12)})
		if !errors.Is(err, im.ErrPermissionDenied) {
			t.Fatalf("RequestFriend(%s → %s) across a block: %v, want ErrPermissionDenied", p[0], p[1], err)
		}
	}
	requireStrangers(t, fs, "alice", "bob")
	// A block the other way too: both stand.
	if err := fs.Block(ctx, "bob", "alice", friendTime(13)); err != nil {
		t.Fatal(err)
	}
	if r := relation(t, fs, "alice", "bob"); !r.Blocking || !r.BlockedBy {
		t.Fatalf("Relation(alice, bob) after blocks both ways = %+v", r)
	}
}

func testFriendUnblock(t *testing.T, fs im.FriendStore) {
	ctx := t.Context()
	if err := fs.Unblock(ctx, "alice", "bob"); err != nil {
		t.Fatalf("Unblock without a block: %v, want nil", err)
	}
	for _, p := range [][2]string{{"alice", "bob"}, {"bob", "alice"}, {"alice", "carol"}} {
		if err := fs.Block(ctx, p[0], p[1], friendTime(1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.Unblock(ctx, "alice", "bob"); err != nil {
		t.Fatal(err)
	}
	if r := relation(t, fs, "alice", "bob"); r.Blocking || !r.BlockedBy {
		t.Fatalf("Relation(alice, bob) after alice unblocked = %+v: bob's block must stay", r)
	}
	if _, err := fs.RequestFriend(ctx, im.FriendRequest{From: "alice", To: "bob", CreatedAt: friendTime(2)}); !errors.Is(err, im.ErrPermissionDenied) {
		t.Fatalf("RequestFriend with bob's block left: %v, want ErrPermissionDenied", err)
	}
	if err := fs.Unblock(ctx, "bob", "alice"); err != nil {
		t.Fatal(err)
	}
	request(t, fs, "alice", "bob", "", friendTime(3), im.FriendRequested)
	if b, _ := fs.Blocks(ctx, "alice"); len(b) != 1 || b[0].BlockedID != "carol" {
		t.Fatalf("Blocks(alice) = %+v, want carol only", b)
	}
}

func testFriendRemoveUser(t *testing.T, fs im.FriendStore) {
	ctx := t.Context()
	request(t, fs, "alice", "bob", "", friendTime(1), im.FriendRequested)
	request(t, fs, "bob", "alice", "", friendTime(2), im.FriendAccepted)
	request(t, fs, "alice", "carol", "", friendTime(3), im.FriendRequested)
	request(t, fs, "dave", "alice", "", friendTime(4), im.FriendRequested)
	request(t, fs, "bob", "carol", "", friendTime(5), im.FriendRequested)
	for _, p := range [][2]string{{"alice", "erin"}, {"fay", "alice"}, {"bob", "erin"}} {
		if err := fs.Block(ctx, p[0], p[1], friendTime(6)); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.RemoveUserRelations(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"bob", "carol", "dave", "erin", "fay"} {
		requireStrangers(t, fs, "alice", u)
		if r := relation(t, fs, "alice", u); r.Blocked() {
			t.Fatalf("Relation(alice, %s) = %+v after RemoveUserRelations", u, r)
		}
	}
	if fr := friendsOf(t, fs, "alice"); len(fr) != 0 {
		t.Fatalf("Friends(alice) = %+v", fr)
	}
	if b, _ := fs.Blocks(ctx, "fay"); len(b) != 0 {
		t.Fatalf("Blocks(fay) = %+v: her block of alice must go", b)
	}
	// Others' data stays.
	if _, out := requestsOf(t, fs, "bob"); requestPairs(out) != "bob>carol" {
		t.Fatalf("bob's outgoing = %s, want bob>carol", requestPairs(out))
	}
	if r := relation(t, fs, "bob", "erin"); !r.Blocking {
		t.Fatalf("bob's block of erin went with alice's data")
	}
}

// friendSnapshot is everything the invalid calls could have changed, as
// text to compare.
func friendSnapshot(t *testing.T, fs im.FriendStore, users ...string) string {
	t.Helper()
	var b strings.Builder
	for _, u := range users {
		fr := friendsOf(t, fs, u)
		in, out := requestsOf(t, fs, u)
		bl, err := fs.Blocks(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s: %+v %+v %+v %+v\n", u, fr, in, out, bl)
	}
	return b.String()
}

func testFriendInvalid(t *testing.T, fs im.FriendStore) {
	ctx := t.Context()
	request(t, fs, "alice", "bob", "", friendTime(1), im.FriendRequested)
	request(t, fs, "bob", "alice", "", friendTime(2), im.FriendAccepted)
	request(t, fs, "carol", "alice", "hi", friendTime(3), im.FriendRequested)
	before := friendSnapshot(t, fs, "alice", "bob", "carol")
	long := strings.Repeat("x", im.MaxIDLength+1)
	bad := []struct{ name, a, b string }{
		{"empty", "alice", ""},
		{"control", "alice", "bo\x00b"},
		{"too long", "alice", long},
		{"same", "alice", "alice"},
		{"bad utf8", "alice", "\xff"},
	}
	calls := []struct {
		name string
		call func(a, b string) error
	}{
		{"RequestFriend", func(a, b string) error {
			_, err := fs.RequestFriend(ctx, im.FriendRequest{From: a, To: b, CreatedAt: friendTime(9)})
			return err
		}},
		{"AcceptFriend", func(a, b string) error { _, err := fs.AcceptFriend(ctx, a, b, friendTime(9)); return err }},
		{"RejectFriend", func(a, b string) error { return fs.RejectFriend(ctx, a, b) }},
		{"CancelFriendRequest", func(a, b string) error { return fs.CancelFriendRequest(ctx, a, b) }},
		{"DeleteFriend", func(a, b string) error { return fs.DeleteFriend(ctx, a, b) }},
		{"SetFriendRemark", func(a, b string) error { _, err := fs.SetFriendRemark(ctx, a, b, "r"); return err }},
		{"Relation", func(a, b string) error { _, err := fs.Relation(ctx, a, b); return err }},
		{"Block", func(a, b string) error { return fs.Block(ctx, a, b, friendTime(9)) }},
		{"Unblock", func(a, b string) error { return fs.Unblock(ctx, a, b) }},
	}
	for _, c := range calls {
		for _, in := range bad {
			for _, swap := range []bool{false, true} {
				a, b := in.a, in.b
				if swap {
					a, b = b, a
				}
				if err := c.call(a, b); !errors.Is(err, im.ErrInvalidArgument) {
					t.Errorf("%s(%q, %q) (%s): %v, want ErrInvalidArgument", c.name, a, b, in.name, err)
				}
			}
		}
	}
	for _, u := range []string{"", "a\nb", long} {
		if _, err := fs.Friends(ctx, u); !errors.Is(err, im.ErrInvalidArgument) {
			t.Errorf("Friends(%q): %v, want ErrInvalidArgument", u, err)
		}
		if _, _, err := fs.FriendRequests(ctx, u); !errors.Is(err, im.ErrInvalidArgument) {
			t.Errorf("FriendRequests(%q): %v, want ErrInvalidArgument", u, err)
		}
		if _, err := fs.Blocks(ctx, u); !errors.Is(err, im.ErrInvalidArgument) {
			t.Errorf("Blocks(%q): %v, want ErrInvalidArgument", u, err)
		}
		if err := fs.RemoveUserRelations(ctx, u); !errors.Is(err, im.ErrInvalidArgument) {
			t.Errorf("RemoveUserRelations(%q): %v, want ErrInvalidArgument", u, err)
		}
	}
	// Texts: over the limit, control characters, invalid UTF-8.
	for _, msg := range []string{strings.Repeat("é", im.MaxFriendMessageLen+1), "hi\x07", "a\u202eb", "\xff"} {
		if _, err := fs.RequestFriend(ctx, im.FriendRequest{From: "dave", To: "alice", Message: msg, CreatedAt: friendTime(9)}); !errors.Is(err, im.ErrInvalidArgument) {
			t.Errorf("RequestFriend with message %q: %v, want ErrInvalidArgument", msg, err)
		}
	}
	if _, err := fs.RequestFriend(ctx, im.FriendRequest{From: "carol", To: "alice", Message: "x\x00", CreatedAt: friendTime(9)}); !errors.Is(err, im.ErrInvalidArgument) {
		t.Errorf("RequestFriend replacing a request with a bad message: %v, want ErrInvalidArgument", err)
	}
	for _, remark := range []string{strings.Repeat("r", im.MaxFriendRemarkLen+1), "tab\there", "\xfe"} {
		if _, err := fs.SetFriendRemark(ctx, "alice", "bob", remark); !errors.Is(err, im.ErrInvalidArgument) {
			t.Errorf("SetFriendRemark(%q): %v, want ErrInvalidArgument", remark, err)
		}
	}
	if after := friendSnapshot(t, fs, "alice", "bob", "carol", "dave"); !strings.HasPrefix(after, before) || strings.Count(after, "\n") != 4 || !strings.HasSuffix(after, "dave: [] [] [] []\n") {
		t.Fatalf("invalid calls changed the data:\nbefore\n%s\nafter\n%s", before, after)
	}
	// The limits themselves are allowed.
	request(t, fs, "dave", "alice", strings.Repeat("é", im.MaxFriendMessageLen), friendTime(10), im.FriendRequested)
	if _, err := fs.SetFriendRemark(ctx, "alice", "bob", strings.Repeat("ü", im.MaxFriendRemarkLen)); err != nil {
		t.Fatalf("a remark of %d characters: %v", im.MaxFriendRemarkLen, err)
	}
}

func testFriendCancelled(t *testing.T, fs im.FriendStore) {
	request(t, fs, "alice", "bob", "", friendTime(1), im.FriendRequested)
	before := friendSnapshot(t, fs, "alice", "bob")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	errs := map[string]error{}
	_, errs["RequestFriend"] = fs.RequestFriend(ctx, im.FriendRequest{From: "bob", To: "alice", CreatedAt: friendTime(2)})
	_, errs["AcceptFriend"] = fs.AcceptFriend(ctx, "bob", "alice", friendTime(2))
	errs["RejectFriend"] = fs.RejectFriend(ctx, "bob", "alice")
	errs["CancelFriendRequest"] = fs.CancelFriendRequest(ctx, "alice", "bob")
	errs["Block"] = fs.Block(ctx, "alice", "bob", friendTime(2))
	errs["RemoveUserRelations"] = fs.RemoveUserRelations(ctx, "alice")
	_, errs["Friends"] = fs.Friends(ctx, "alice")
	_, _, errs["FriendRequests"] = fs.FriendRequests(ctx, "alice")
	_, errs["Relation"] = fs.Relation(ctx, "alice", "bob")
	_, errs["Blocks"] = fs.Blocks(ctx, "alice")
	for name, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled ctx: %v, want context.Canceled", name, err)
		}
	}
	if after := friendSnapshot(t, fs, "alice", "bob"); after != before {
		t.Fatalf("calls with a cancelled ctx changed the data:\nbefore\n%s\nafter\n%s", before, after)
	}
}

// testFriendConcurrent has pairs of users ask each other at the same
// moment, many pairs at once: each must end as one friendship, both
// sides, with no request left.
func testFriendConcurrent(t *testing.T, fs im.FriendStore) {
	const pairs, rounds = 16, 20
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, 2*pairs)
		outcomes := make([][2]im.FriendOutcome, pairs)
		start := make(chan struct{})
		for p := range pairs {
			a, b := fmt.Sprintf("a%d_%d", round, p), fmt.Sprintf("b%d_%d", round, p)
			for side, from := range []string{a, b} {
				to := map[string]string{a: b, b: a}[from]
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					o, err := fs.RequestFriend(t.Context(), im.FriendRequest{From: from, To: to, CreatedAt: friendTime(side)})
					if err != nil {
						errs <- err
					}
					outcomes[p][side] = o
				}()
			}
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("RequestFriend: %v", err)
		}
		for p := range pairs {
			a, b := fmt.Sprintf("a%d_%d", round, p), fmt.Sprintf("b%d_%d", round, p)
			o := outcomes[p]
			if !(o == [2]im.FriendOutcome{im.FriendRequested, im.FriendAccepted} || o == [2]im.FriendOutcome{im.FriendAccepted, im.FriendRequested}) {
				t.Fatalf("round %d, %s and %s asked each other at once: outcomes %v, want one FriendRequested and one FriendAccepted", round, a, b, o)
			}
			for _, u := range []string{a, b} {
				if fr := friendsOf(t, fs, u); len(fr) != 1 {
					t.Fatalf("round %d: Friends(%s) = %+v, want exactly one", round, u, fr)
				}
				if in, out := requestsOf(t, fs, u); len(in)+len(out) != 0 {
					t.Fatalf("round %d: %s has requests left: in %s, out %s", round, u, requestPairs(in), requestPairs(out))
				}
			}
		}
	}
}

func testFriendDurability(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("storetest: Harness.Reopen is nil")
	}
	s := open(t, h)
	fs := s.(im.FriendStore)
	ctx := t.Context()
	request(t, fs, "alice", "bob", "", friendTime(1), im.FriendRequested)
	request(t, fs, "bob", "alice", "", friendTime(2), im.FriendAccepted)
	if _, err := fs.SetFriendRemark(ctx, "alice", "bob", "Bobby"); err != nil {
		t.Fatal(err)
	}
	request(t, fs, "carol", "alice", "hi", friendTime(3), im.FriendRequested)
	if err := fs.Block(ctx, "alice", "dave", friendTime(4)); err != nil {
		t.Fatal(err)
	}
	before := friendSnapshot(t, fs, "alice", "bob", "carol", "dave")
	s = h.Reopen(t, s)
	if s == nil {
		t.Fatal("storetest: Harness.Reopen returned nil")
	}
	fs, ok := s.(im.FriendStore)
	if !ok {
		t.Fatal("storetest: the reopened store does not implement im.FriendStore")
	}
	if after := friendSnapshot(t, fs, "alice", "bob", "carol", "dave"); after != before {
		t.Fatalf("friend data changed across Reopen:\nbefore\n%s\nafter\n%s", before, after)
	}
}
