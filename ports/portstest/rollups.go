package portstest

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// RollupFolder is the contract of ports.RollupFolder, for stores that keep rollups:
// CountByBucket answers the same, exact counts before a fold, after it, and after more
// writes and another fold; a fold with nothing written since folds nothing.
func RollupFolder(t *testing.T, newStores func(t *testing.T) Stores) {
	if newStores(t).rollups() == nil {
		t.Skip("the store keeps no rollup: nothing to fold")
	}
	s := newStores(t)
	folder := s.rollups()
	// readingsAt are n readings of eq, one every 7 minutes from start, ids from first.
	readingsAt := func(eq string, first, n int, start time.Time) []ports.StoredReading {
		out := make([]ports.StoredReading, n)
		for i := range out {
			out[i] = reading(eq, fmt.Sprintf("c-%d", first+i), sensor.Types[i%len(sensor.Types)], float64(i),
				start.Add(time.Duration(i)*7*time.Minute))
		}
		return out
	}
	var stored []ports.StoredReading // each reading once

	// Hours 0 to 5 of press-01 and 2 to 4 of press-02, with partial hours at either end of
	// the ranges asked for below.
	first := [][]ports.StoredReading{
		readingsAt(press1, 0, 30, at(-20*time.Minute)),
		readingsAt(press1, 30, 20, at(2*time.Hour+3*time.Minute)),
		readingsAt(press2, 0, 25, at(2*time.Hour)),
	}
	for _, rs := range first {
		write(t, s, batchOf(rs))
		stored = append(stored, rs...)
	}
	checkCounts(t, s, stored, "before any fold")

	_, err := folder.FoldRollups(t.Context())
	must(t, err)
	checkCounts(t, s, stored, "after the first fold")
	n, err := folder.FoldRollups(t.Context())
	must(t, err)
	equal(t, int64(0), n, "rows folded by a fold with nothing written since")
	checkCounts(t, s, stored, "after a fold with nothing to fold")

	// More readings in the folded hours and in new ones, with the first batch redelivered:
	// its readings are stored, and counted, once.
	second := [][]ports.StoredReading{
		readingsAt(press1, 100, 40, at(time.Hour+time.Minute)),
		first[0],
		readingsAt(press2, 100, 10, at(6*time.Hour)),
	}
	for _, rs := range second {
		write(t, s, batchOf(rs))
	}
	stored = append(stored, second[0]...)
	stored = append(stored, second[2]...)
	checkCounts(t, s, stored, "after more writes")

	_, err = folder.FoldRollups(t.Context())
	must(t, err)
	checkCounts(t, s, stored, "after the second fold")
}

// checkCounts compares CountByBucket, over ranges of whole hours and ranges with partial
// hours at their edges, with the counts of stored.
func checkCounts(t *testing.T, s Stores, stored []ports.StoredReading, when string) {
	t.Helper()
	ranges := []struct{ from, to time.Time }{
		{at(0), at(6 * time.Hour)},                                // whole hours
		{at(-30 * time.Minute), at(7*time.Hour + 30*time.Minute)}, // beyond every reading
		{at(90 * time.Minute), at(4*time.Hour + 10*time.Minute)},  // partial hours at both ends
		{at(2*time.Hour + time.Microsecond), at(5*time.Hour - time.Microsecond)},
		{longAgo, farAhead},
	}
	for _, eq := range []string{"", press1, press2} {
		for _, bucket := range []time.Duration{time.Hour, 3 * time.Hour, 24 * time.Hour} {
			for i, rg := range ranges {
				got, err := s.Readings.CountByBucket(t.Context(), ports.SensorScope{EquipmentID: eq}, rg.from, rg.to, bucket)
				must(t, err)
				equalList(t, CountsOf(stored, eq, rg.from, rg.to, bucket), got,
					"%s: counts of %q by %s over range %d", when, eq, bucket, i)
			}
		}
	}
}

// CountsOf is what CountByBucket must answer for the readings rs: those of eq ("" for all)
// in [from, to), counted by bucket, empty buckets left out.
func CountsOf(rs []ports.StoredReading, eq string, from, to time.Time, bucket time.Duration) []ports.BucketCount {
	b := bucket.Microseconds()
	counts := make(map[int64]int64)
	for _, r := range rs {
		if (eq == "" || r.EquipmentID == eq) && !r.Timestamp.Before(from) && r.Timestamp.Before(to) {
			us := r.Timestamp.UnixMicro()
			counts[us-((us%b)+b)%b]++
		}
	}
	var out []ports.BucketCount
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		out = append(out, ports.BucketCount{Bucket: time.UnixMicro(k).UTC(), Count: counts[k]})
	}
	return out
}
