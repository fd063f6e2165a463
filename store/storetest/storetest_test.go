package storetest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/memstore"
	"github.com/imserver/imserver/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// bugEnv names the rule buggyStore breaks in a child process of
// TestSuiteDetectsBugs.
const bugEnv = "STORETEST_BUG"

func memHarness(bug string) storetest.Harness {
	return storetest.Harness{
		Open: func(t *testing.T) im.Store { return newBuggyStore(bug) },
		Reopen: func(t *testing.T, s im.Store) im.Store {
			if bug == "lose-on-reopen" {
				return newBuggyStore(bug)
			}
			return s // memory "survives" reopening because nothing closes
		},
	}
}

// TestMemStore runs the suite against memstore, through buggyStore with the
// bug the environment names (none by default): a correct store must pass.
func TestMemStore(t *testing.T) {
	storetest.Run(t, memHarness(os.Getenv(bugEnv)))
}

// TestSuiteDetectsBugs runs TestMemStore in a child process with one rule
// broken at a time and requires the subtest for that rule to fail.
func TestSuiteDetectsBugs(t *testing.T) {
	if os.Getenv(bugEnv) != "" {
		t.Skip("in a child process")
	}
	tests := []struct{ bug, failing string }{
		{"seq-gap", "AppendAssignsSeq"},
		{"seq-gap", "ConcurrentAppend"},
		{"no-dedup", "Dedup/AcrossCalls"},
		{"no-dedup", "Dedup/WithinBatch"},
		{"no-dedup", "Dedup/Concurrent"},
		{"no-dedup", "Durability"},
		{"dedup-ignores-sender", "Dedup/DifferentSenders"},
		{"members-every-append", "Members"},
		{"limit-off-by-one", "Messages/LimitHonoured"},
		{"before-descending", "MessagesBefore/Middle"},
		{"ignore-ctx", "Cancelled"},
		{"ignore-ctx", "Accounts/Cancelled"},
		{"no-validation", "InvalidMessages/ControlSenderID"},
		{"no-validation", "InvalidMessages/EmptyServerID"},
		{"no-validation", "InvalidMessages/LongMember"},
		{"no-validation", "Accounts/Invalid/EmptyUsername"},
		{"username-fold", "Accounts/CreateAndRead/UsernameComparedExactly"},
		{"truncate-ms", "RoundTrip"},
		{"lose-on-reopen", "Durability"},
		{"lose-on-reopen", "Accounts/Durability"},
		{"lose-on-reopen", "Accounts/Update/Durability"},
		{"lose-on-reopen", "Accounts/TokenVersions/Durability"},
		{"bump-racy", "Accounts/TokenVersions/Concurrent"},
		{"bump-no-validation", "Accounts/TokenVersions/Invalid"},
		{"ignore-ctx", "Accounts/TokenVersions/Cancelled"},
		{"ignore-ctx", "Accounts/Update/Cancelled"},
		{"no-validation", "Accounts/Update/Invalid"},
		{"update-clears-unset", "Accounts/Update/Fields"},
		{"update-ignores-profile", "Accounts/Update/ProfileFields"},
		{"search-unordered", "Accounts/Search/Prefix"},
		{"search-limit-ignored", "Accounts/Search/Limit"},
		{"lose-on-reopen", "Accounts/Search/Durability"},
		{"revoke-forgets", "Accounts/TokenVersions/RevokedTokens/Revoke"},
		{"revoke-no-validation", "Accounts/TokenVersions/RevokedTokens/Invalid"},
		{"lose-on-reopen", "Accounts/TokenVersions/RevokedTokens/Durability"},
		{"ignore-ctx", "Accounts/TokenVersions/RevokedTokens/Cancelled"},
		{"group-count-as-given", "Groups/CreateAndGet"},
		{"group-count-as-given", "Groups/Update"},
		{"group-create-overwrites", "Groups/CreateConflict"},
		{"group-create-racy", "Groups/Concurrent/Create"},
		{"group-update-createdat", "Groups/Update"},
		{"group-put-resets-joinedat", "Groups/PutMembersUpsertKeepsJoinedAt"},
		{"group-owner-not-set", "Groups/PutOwnerSetsOwnerID"},
		{"group-put-resets-joinedat", "Groups/Durability"},
		{"group-partial-put", "Groups/InvalidInput/PutGroupMembers/RoleZero"},
		{"group-partial-put", "Groups/InvalidInput/PutGroupMembers/DuplicateNewMember"},
		{"group-remove-keeps-index", "Groups/RemoveMembers"},
		{"group-delete-keeps-members", "Groups/Delete"},
		{"group-delete-keeps-members", "Groups/Concurrent/Delete"},
		{"no-validation", "Groups/InvalidInput/CreateGroup/ControlName"},
		{"no-validation", "Groups/InvalidInput/CreateGroup/DuplicateMembers"},
		{"no-validation", "Groups/InvalidInput/UpdateGroup/UnknownJoinPolicy"},
		{"no-validation", "Groups/InvalidInput/RemoveGroupMembers/EmptyUserID"},
		{"ignore-ctx", "Groups/Cancelled"},
		{"lose-on-reopen", "Groups/Durability"},
		{"group-no-cas", "Groups/Change/VersionConflict"},
		{"group-no-limit", "Groups/Change/MaxMembers"},
		{"group-no-limit", "Groups/Change/MaxMembersConcurrent"},
		{"group-limit-racy", "Groups/Change/MaxMembersConcurrent"},
		{"group-notice-separate", "Groups/Change/NoticeDuplicate"},
		{"group-no-member-check", "Groups/Change/MemberOf"},
		{"group-two-owners", "Groups/Change/OwnerHandover"},
		{"ignore-ctx", "Groups/Change/GroupMember"},
		{"sync-groups-only", "Sync/Conversations"},
		{"sync-no-readfrom", "Sync/Conversations"},
		{"sync-readfrom-full", "Sync/Conversations"},
		{"group-forgets-joinseq", "Groups/Change/JoinSeq"},
		{"group-joinseq-racy", "Groups/Change/JoinSeq"},
		{"group-forgets-history", "Groups/CreateAndGet"},
		{"group-forgets-history", "Groups/Change/History"},
		{"group-forgets-history", "Groups/Durability"},
		{"group-forgets-mute", "Groups/Change/Mute"},
		{"group-mute-ignored", "Groups/Change/MutedSender"},
		{"joinreq-kept-on-put", "Groups/JoinRequests/RemovedByChange"},
		{"joinreq-kept-on-put", "Groups/JoinRequests/ApprovalsConcurrent"},
		{"joinreq-kept-on-delete", "Groups/JoinRequests/RemovedByChange"},
		{"group-no-limit", "Groups/JoinRequests/ApprovalsConcurrent"},
		{"group-limit-racy", "Groups/JoinRequests/ApprovalsConcurrent"},
		{"ignore-ctx", "Groups/JoinRequests/Cancelled"},
		{"sync-twice", "Sync/Conversations"},
		{"sync-limit-total", "Sync/MessageRanges"},
		{"sync-ignores-to", "Sync/MessageRanges"},
		{"sync-drops-chunk", "Sync/ManyRanges"},
		{"scan-skips-empty", "Sync/Scan"},
		{"scan-reuses-early", "Sync/Scan"},
		{"scan-goes-on", "Sync/ScanStops"},
		{"ignore-ctx", "Sync/ScanStops"},
		{"ignore-ctx", "Sync/Invalid"},
		{"no-validation", "Groups/Change/Invalid/DeleteAndPut"},
		{"no-validation", "Groups/Change/Invalid/NoticeWithoutSender"},
		{"read-backward", "ReadState/ForwardOnly"},
		{"read-unclamped", "ReadState/Clamped"},
		{"read-batch-partial", "ReadState/Batch"},
		{"read-ignores-sender", "ReadState/SendingReads"},
		{"read-ignores-sender", "ReadState/ManySenders"},
		{"read-ignores-sender", "ReadState/Durability"},
		{"read-no-validation", "ReadState/Invalid"},
		{"read-not-listed", "ReadState/ConversationReadStates"},
		{"ignore-ctx", "ReadState/Cancelled"},
		{"mention-dropped", "ReadState/Mentioned"},
		{"mention-dropped", "ReadState/Durability"},
		{"updatedat-dropped", "ReadState/UpdatedAt"},
		{"recall-keeps-content", "Recall/Tombstone"},
		{"recall-keeps-content", "Recall/Dedup"},
		{"recall-ranges-original", "Recall/Tombstone"},
		{"recall-dedup-original", "Recall/Dedup"},
		{"recall-dedup-original", "Recall/Durability"},
		{"recall-truncate-ms", "Recall/Tombstone"},
		{"recall-overwrites", "Recall/Idempotent"},
		{"recall-overwrites", "Recall/Concurrent"},
		{"recall-missing-ok", "Recall/NotFound"},
		{"byid-newest-only", "Recall/ByServerID"},
		{"byid-any-conversation", "Recall/ByServerID"},
		{"no-validation", "Recall/Invalid/EmptyBy"},
		{"no-validation", "Recall/Invalid/ZeroTime"},
		{"ignore-ctx", "Recall/Cancelled"},
		{"lose-on-reopen", "Recall/Durability"},
		{"settings-no-ids", "Settings/Unknown"},
		{"settings-clears-unset", "Settings/Fields"},
		{"settings-unclamped", "Settings/Hidden"},
		{"settings-unclamped", "Settings/Cleared"},
		{"settings-cleared-backward", "Settings/Cleared"},
		{"settings-noop-touches", "Settings/NoOp"},
		{"settings-truncate-ms", "Settings/UpdatedAt"},
		{"settings-dedups-list", "Settings/ManyConversations"},
		{"settings-since-inclusive", "Settings/Changed"},
		{"settings-all-users", "Settings/Changed"},
		{"settings-racy", "Settings/Concurrent"},
		{"no-validation", "Settings/Invalid"},
		{"ignore-ctx", "Settings/Cancelled"},
		{"lose-on-reopen", "Settings/Durability"},
		{"friends-block-allows-request", "Friends/Block"},
		{"friends-unsorted", "Friends/Ordering"},
		{"friends-missing-ok", "Friends/RejectCancel"},
		{"friends-missing-ok", "Friends/Delete"},
		{"no-validation", "Friends/Invalid"},
		{"ignore-ctx", "Friends/Cancelled"},
		{"lose-on-reopen", "Friends/Durability"},
	}
	for _, tt := range tests {
		t.Run(tt.bug+"/"+tt.failing, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestMemStore$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), bugEnv+"="+tt.bug)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store with bug %q", tt.bug)
			}
			if want := "--- FAIL: TestMemStore/" + tt.failing + " "; !strings.Contains(string(out), want) {
				t.Errorf("subtest %s did not fail for bug %q; output:\n%s", tt.failing, tt.bug, out)
			}
		})
	}
}

func TestRunWithoutOpen(t *testing.T) {
	// Run must refuse a harness it cannot use rather than panic.
	if os.Getenv(bugEnv) != "" {
		t.Skip("in a child process")
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestNilOpenChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "STORETEST_NIL_OPEN=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Harness.Open is nil") || strings.Contains(string(out), "panic") {
		t.Errorf("Run with a nil Open: err=%v, output:\n%s", err, out)
	}
}

func TestNilOpenChild(t *testing.T) {
	if os.Getenv("STORETEST_NIL_OPEN") == "" {
		t.Skip("only run by TestRunWithoutOpen")
	}
	storetest.Run(t, storetest.Harness{})
}

func BenchmarkMemStore(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) im.Store { return memstore.New() })
}
