package main

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBucketsCoverEveryValue(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	values := []int64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<62 + 12345, 1<<63 - 1}
	for range 10000 {
		values = append(values, rng.Int64N(int64(1)<<uint(rng.IntN(62)+1)))
	}
	for _, v := range values {
		i := bucketOf(v)
		require.GreaterOrEqual(t, i, 0)
		require.Less(t, i, numBuckets, "value %d", v)
		lo, hi := bucketBounds(i)
		require.LessOrEqual(t, lo, v, "value %d bucket %d", v, i)
		require.GreaterOrEqual(t, hi, v, "value %d bucket %d", v, i)
		// The relative width of a bucket bounds the error.
		if v >= subBuckets {
			require.Less(t, float64(hi-lo+1)/float64(lo), 1.0/halfBuckets+1e-12)
		}
	}
	// Buckets are contiguous and increasing.
	for i := 1; i < numBuckets; i++ {
		_, prevHi := bucketBounds(i - 1)
		lo, _ := bucketBounds(i)
		require.Equal(t, prevHi+1, lo, "bucket %d", i)
	}
}

func TestQuantiles(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one value", []time.Duration{42}, 0.99, 42},
		{"small values are exact", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.5, 5},
		{"p90 of small values", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.9, 9},
		{"q 0 is the smallest", []time.Duration{7, 3, 9}, 0, 3},
		{"q 1 is the largest", []time.Duration{7, 3, 9}, 1, 9},
		{"q above 1 is clamped", []time.Duration{7, 3, 9}, 5, 9},
		{"negative counts as zero", []time.Duration{-5, -1}, 1, 0},
		{"outlier is the max", []time.Duration{10, 10, 10, 10 * time.Second}, 1, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h histogram
			for _, v := range tt.values {
				h.Record(v)
			}
			require.Equal(t, tt.want, h.Quantile(tt.q))
		})
	}
}

func TestQuantilesOfLargeValuesWithinPrecision(t *testing.T) {
	var h histogram
	// 1..100000 µs, shuffled.
	vals := make([]time.Duration, 100000)
	for i := range vals {
		vals[i] = time.Duration(i+1) * time.Microsecond
	}
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(vals), func(i, j int) { vals[i], vals[j] = vals[j], vals[i] })
	for _, v := range vals {
		h.Record(v)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := float64(q * 100000 * float64(time.Microsecond))
		got := float64(h.Quantile(q))
		require.InDelta(t, want, got, want/halfBuckets, "q=%v", q)
	}
	require.Equal(t, 100*time.Millisecond, h.Max())
	require.EqualValues(t, 100000, h.Count())
}

func TestHistogramConcurrentRecord(t *testing.T) {
	var h histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.Record(time.Duration(g*1000 + i))
			}
		}()
	}
	wg.Wait()
	require.EqualValues(t, 8000, h.Count())
	require.Equal(t, time.Duration(7999), h.Max())
}
