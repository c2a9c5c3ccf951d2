package simulator

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramQuantilesAreWithinThreePercent(t *testing.T) {
	var h histogram
	rng := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	for range 100000 {
		d := time.Duration(rng.ExpFloat64() * float64(2*time.Millisecond))
		all = append(all, d.Truncate(time.Microsecond))
		h.record(d)
	}
	slices.Sort(all)
	s := h.summary()
	for _, c := range []struct {
		q   float64
		got time.Duration
	}{{0.5, s.P50}, {0.95, s.P95}, {0.99, s.P99}} {
		want := all[int(c.q*float64(len(all)))-1]
		if c.got < want || float64(c.got) > 1.035*float64(want)+float64(time.Microsecond) {
			t.Errorf("q%.2f = %s, exact %s", c.q, c.got, want)
		}
	}
	if s.Max != all[len(all)-1] || s.Count != 100000 {
		t.Errorf("max %s count %d, want %s and 100000", s.Max, s.Count, all[len(all)-1])
	}
}

func TestBucketsCoverEveryValueInOrder(t *testing.T) {
	prev := -1
	for us := uint64(0); us < 1<<22; us = us*17/16 + 1 {
		b := bucketOf(us)
		if b < prev {
			t.Fatalf("bucket of %d µs is %d, below the bucket of a smaller value (%d)", us, b, prev)
		}
		if lo, hi := lowerBound(b), lowerBound(b+1); us < lo || us >= hi {
			t.Fatalf("%d µs in bucket %d, which spans [%d, %d)", us, b, lo, hi)
		}
		prev = b
	}
}
