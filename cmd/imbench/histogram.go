package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram layout: log-linear buckets in the manner of HDR histograms.
// Values below subBuckets get a bucket each; above that every power of two is
// split into halfBuckets buckets, so a recorded value is off by less than
// 1/halfBuckets (under 1.6 %) whatever its size, in a fixed 30 KiB.
const (
	subBits     = 7
	subBuckets  = 1 << subBits // 128
	halfBuckets = subBuckets / 2
	// Values are non-negative int64 nanoseconds: bits.Len64 is at most 63,
	// so the shift is at most 63-subBits.
	numBuckets = subBuckets + (63-subBits)*halfBuckets
)

// histogram records durations into log-linear buckets. It is safe for
// concurrent use: Record is lock-free, so the readers of many connections
// share one.
type histogram struct {
	counts [numBuckets]atomic.Uint64
	total  atomic.Uint64
	max    atomic.Int64
}

// bucketOf returns the bucket index of v (v >= 0).
func bucketOf(v int64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits // >= 1
	top := int(v >> shift)                   // in [halfBuckets, subBuckets)
	return subBuckets + (shift-1)*halfBuckets + top - halfBuckets
}

// bucketBounds returns the smallest and largest value that fall in bucket i.
func bucketBounds(i int) (lo, hi int64) {
	if i < subBuckets {
		return int64(i), int64(i)
	}
	j := i - subBuckets
	shift := j/halfBuckets + 1
	top := int64(j%halfBuckets + halfBuckets)
	lo = top << shift
	return lo, lo + (int64(1) << shift) - 1
}

// Record adds one duration; negative durations count as zero.
func (h *histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(v)].Add(1)
	h.total.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count returns how many values were recorded.
func (h *histogram) Count() uint64 { return h.total.Load() }

// Max returns the largest recorded value, exactly.
func (h *histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Quantile returns a value such that a fraction q of the recorded values are
// at most about it: the midpoint of the bucket holding the q-th value,
// capped at the maximum, which is exact (so is Quantile(1)). q is clamped to [0, 1]; with nothing
// recorded it returns 0. While Record runs concurrently the answer is
// approximate.
func (h *histogram) Quantile(q float64) time.Duration {
	q = min(max(q, 0), 1)
	var counts [numBuckets]uint64
	var n uint64
	for i := range counts {
		counts[i] = h.counts[i].Load()
		n += counts[i]
	}
	if n == 0 {
		return 0
	}
	// The rank of the wanted value, 1-based: ceil(q*n), at least 1.
	rank := uint64(q * float64(n))
	if float64(rank) < q*float64(n) {
		rank++
	}
	rank = max(rank, 1)
	if rank >= n {
		return h.Max()
	}
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketBounds(i)
			return time.Duration(min(lo+(hi-lo)/2, h.max.Load()))
		}
	}
	return h.Max()
}
