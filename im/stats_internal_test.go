package im

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHistogramBuckets(t *testing.T) {
	require.LessOrEqual(t, len(commitBounds), maxBuckets)
	require.LessOrEqual(t, len(batchBounds), maxBuckets)
	var h histogram
	bounds := []uint64{1, 4, 16}
	for _, v := range []uint64{0, 1, 2, 4, 5, 16, 17, 1000} {
		h.observe(bounds, v)
	}
	require.Equal(t, Histogram{
		Bounds: []float64{0.5, 2, 8},
		Counts: []uint64{2, 4, 6}, // cumulative: ≤1, ≤4, ≤16
		Count:  8,
		Sum:    (0 + 1 + 2 + 4 + 5 + 16 + 17 + 1000) * 0.5,
	}, h.snapshot(bounds, 0.5))
}
