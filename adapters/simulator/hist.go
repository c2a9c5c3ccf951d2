package simulator

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram counts durations in log-linear buckets: 32 per power of two of microseconds,
// so a quantile is within about 3% of the truth. It is safe for concurrent use.
type histogram struct {
	counts [64 * subBuckets]atomic.Int64
	total  atomic.Int64
	max    atomic.Int64
}

const subBits = 5
const subBuckets = 1 << subBits

func bucketOf(us uint64) int {
	if us < subBuckets {
		return int(us)
	}
	exp := bits.Len64(us) - subBits - 1 // how far us is shifted to keep subBits+1 bits
	return (exp+1)*subBuckets + int(us>>exp) - subBuckets
}

// lowerBound is the smallest value of bucket i, in microseconds.
func lowerBound(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	exp := i/subBuckets - 1
	return uint64(i%subBuckets+subBuckets) << exp
}

func (h *histogram) record(d time.Duration) {
	us := max(d.Microseconds(), 0)
	h.counts[bucketOf(uint64(us))].Add(1)
	h.total.Add(1)
	storeMax(&h.max, us)
}

// storeMax raises a to v if v is higher.
func storeMax(a *atomic.Int64, v int64) {
	for {
		m := a.Load()
		if v <= m || a.CompareAndSwap(m, v) {
			return
		}
	}
}

// Latency summarises a set of durations.
type Latency struct {
	Count              int64
	P50, P95, P99, Max time.Duration
}

// quantile is the upper end of the bucket holding the q-th quantile.
func (h *histogram) quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			upper := lowerBound(i+1) - 1
			return min(time.Duration(upper)*time.Microsecond, time.Duration(h.max.Load())*time.Microsecond)
		}
	}
	return time.Duration(h.max.Load()) * time.Microsecond
}

func (h *histogram) summary() Latency {
	return Latency{Count: h.total.Load(), P50: h.quantile(0.50), P95: h.quantile(0.95),
		P99: h.quantile(0.99), Max: time.Duration(h.max.Load()) * time.Microsecond}
}
