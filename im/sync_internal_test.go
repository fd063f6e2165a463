package im

import "testing"

func TestRangesPerRead(t *testing.T) {
	ranges := func(n int, size int64) []MessageRange {
		out := make([]MessageRange, n)
		for i := range out {
			out[i] = MessageRange{ConversationID: "c", From: 10, To: 10 + size - 1}
		}
		return out
	}
	tests := []struct {
		name   string
		ranges []MessageRange
		limit  int
		want   int
	}{
		{"one", ranges(1, 1), 100, 1},
		{"small ones up to the range cap", ranges(300, 2), 100, maxRangesPerRead},
		{"limit bounds a long range", ranges(100, 1000), 100, maxMessagesPerRead / 100},
		{"exactly full", ranges(8, 512), 500, 8},
		{"one more than fits", ranges(9, 512), 500, 8},
		{"a range larger than a read still goes", ranges(3, 10000), 5000, 1},
		{"short ranges under a big limit", ranges(50, 3), 500, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rangesPerRead(tt.ranges, tt.limit); got != tt.want {
				t.Errorf("rangesPerRead(%d ranges, limit %d) = %d, want %d", len(tt.ranges), tt.limit, got, tt.want)
			}
		})
	}
}
