package im

import "testing"

func TestPeerOf(t *testing.T) {
	for _, tc := range []struct {
		id, user, peer string
		ok             bool
	}{
		{"single_alice_bob", "alice", "bob", true},
		{"single_alice_bob", "bob", "alice", true},
		{"single_alice_bob", "carol", "", false},
		{"single_bob_alice", "alice", "", false}, // not sorted
		{"single_a_b_c", "a", "b_c", true},       // ids may hold "_"
		{"single_a_b_c", "a_b", "c", true},
		{"single_a_b_c", "c", "a_b", true},
		{"single_a_b_c", "b", "", false},
		{"single_alice_alice", "alice", "alice", true}, // notes to self
		{"single_alice_", "alice", "", false},
		{"single_alice", "alice", "", false},
		{"group_g1", "alice", "", false},
		{"single_alicex_bob", "alice", "", false},
	} {
		p, ok := peerOf(tc.id, tc.user)
		if p != tc.peer || ok != tc.ok {
			t.Errorf("peerOf(%q, %q) = %q, %v; want %q, %v", tc.id, tc.user, p, ok, tc.peer, tc.ok)
		}
	}
}

// The core takes conversation ids apart with its own copies of the
// prefixes; package wire builds them.
func TestConversationPrefixesMatchWire(t *testing.T) {
	if id := SingleConversationID("a", "b"); id != singlePrefix+"a_b" {
		t.Fatalf("SingleConversationID = %q, the core expects the prefix %q", id, singlePrefix)
	}
	if id := GroupConversationID("g"); id != groupPrefix+"g" {
		t.Fatalf("GroupConversationID = %q, the core expects the prefix %q", id, groupPrefix)
	}
}
