package im

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNotFromSender(t *testing.T) {
	set := newMemberSet(Group{Version: 1}, []GroupMember{{UserID: "a", Role: RoleOwner}, {UserID: "b", Role: RoleMember}, {UserID: "c", Role: RoleMember}})
	ia, ib := indexOf(t, set, "a"), indexOf(t, set, "b")
	bit := func(i int) uint64 { return 1 << i }

	require.Nil(t, notFromSender(nil, set, "a"), "everybody online")

	offline := []uint64{bit(ia) | bit(ib)}
	got := notFromSender(offline, set, "a")
	require.Equal(t, []uint64{bit(ib)}, got, "the sender is not told of its own message")
	require.Equal(t, []uint64{bit(ia) | bit(ib)}, offline, "the run's mask is shared by its messages: not modified")

	require.Equal(t, offline, notFromSender(offline, set, "c"), "a sender who was reached leaves the mask as it is")
	require.Nil(t, notFromSender([]uint64{bit(ia)}, set, "a"), "nobody left to notify")
}

func indexOf(t *testing.T, set *memberSet, user string) int {
	t.Helper()
	for i, u := range set.ids {
		if u == user {
			return i
		}
	}
	t.Fatalf("%s is not in the set", user)
	return -1
}
