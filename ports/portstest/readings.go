package portstest

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// ReadingRepository is the contract of ports.ReadingRepository.
func ReadingRepository(t *testing.T, newStores func(t *testing.T) Stores) {
	t.Run("StoredRefs", func(t *testing.T) { storedRefs(t, newStores(t)) })
	t.Run("RecentValues", func(t *testing.T) { recentValues(t, newStores(t)) })
	t.Run("History", func(t *testing.T) { history(t, newStores(t)) })
	t.Run("Averages", func(t *testing.T) { averages(t, newStores(t)) })
	t.Run("Latest", func(t *testing.T) { latest(t, newStores(t)) })
	t.Run("CountByBucket", func(t *testing.T) { countByBucket(t, newStores(t)) })
}

func storedRefs(t *testing.T, s Stores) {
	write(t, s, batchOf([]ports.StoredReading{
		reading(press1, "r-1", sensor.Temperature, 1, at(0)),
		reading(press1, "r-2", sensor.Vibration, 2, at(time.Second)),
		reading(press2, "r-1", sensor.Temperature, 3, at(0)),
	}))
	p1r1 := ports.ReadingRef{EquipmentID: press1, ReadingID: "r-1"}
	p1r2 := ports.ReadingRef{EquipmentID: press1, ReadingID: "r-2"}
	p2r1 := ports.ReadingRef{EquipmentID: press2, ReadingID: "r-1"}
	var many []ports.ReadingRef // more refs than one SQL statement may bind
	for i := range 10000 {
		many = append(many, ports.ReadingRef{EquipmentID: press1, ReadingID: fmt.Sprintf("unknown-%d", i)})
	}
	many = append(many, p1r1, p2r1, p1r2)

	tests := []struct {
		name string
		refs []ports.ReadingRef
		want map[ports.ReadingRef]bool
	}{
		{name: "no_refs", refs: nil, want: map[ports.ReadingRef]bool{}},
		{name: "stored", refs: []ports.ReadingRef{p1r1, p1r2}, want: map[ports.ReadingRef]bool{p1r1: true, p1r2: true}},
		{name: "unknown_id_left_out", refs: []ports.ReadingRef{p1r1, {EquipmentID: press1, ReadingID: "r-9"}},
			want: map[ports.ReadingRef]bool{p1r1: true}},
		{name: "same_id_other_equipment", refs: []ports.ReadingRef{p2r1, {EquipmentID: press2, ReadingID: "r-2"}},
			want: map[ports.ReadingRef]bool{p2r1: true}},
		{name: "unknown_equipment", refs: []ports.ReadingRef{{EquipmentID: "lathe-01", ReadingID: "r-1"}},
			want: map[ports.ReadingRef]bool{}},
		{name: "repeated_ref", refs: []ports.ReadingRef{p1r1, p1r1}, want: map[ports.ReadingRef]bool{p1r1: true}},
		{name: "ten_thousand_refs", refs: many, want: map[ports.ReadingRef]bool{p1r1: true, p1r2: true, p2r1: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Readings.StoredRefs(t.Context(), tt.refs)
			must(t, err)
			// A ref not stored may be missing from the answer or false in it.
			stored := make(map[ports.ReadingRef]bool)
			for ref, ok := range got {
				if ok {
					stored[ref] = true
				}
			}
			equal(t, tt.want, stored)
		})
	}
}

func recentValues(t *testing.T, s Stores) {
	temp := func(id string, v float64, ts time.Time) ports.StoredReading {
		return reading(press1, id, sensor.Temperature, v, ts)
	}
	// Stored out of timestamp order: the window is the latest by timestamp; t-3 and t-4 share
	// one, and t-4 was stored later.
	write(t, s,
		batchOf([]ports.StoredReading{temp("t-5", 5, at(5*time.Minute)), temp("t-2", 2, at(2*time.Minute)),
			reading(press1, "v-1", sensor.Vibration, 100, at(0)), temp("t-3", 3, at(3*time.Minute))}),
		batchOf([]ports.StoredReading{reading(press2, "t-1", sensor.Temperature, 200, at(0)),
			temp("t-4", 4, at(3*time.Minute)), temp("t-1", 1, at(time.Minute))}),
	)
	p1temp := sensor.Key{EquipmentID: press1, Type: sensor.Temperature}
	tests := []struct {
		name string
		key  sensor.Key
		n    int
		want []float64
	}{
		{name: "fewer_than_n_oldest_first", key: p1temp, n: 10, want: []float64{1, 2, 3, 4, 5}},
		{name: "exactly_n", key: p1temp, n: 5, want: []float64{1, 2, 3, 4, 5}},
		{name: "last_n_only", key: p1temp, n: 2, want: []float64{4, 5}},
		{name: "n_is_1", key: p1temp, n: 1, want: []float64{5}},
		{name: "n_is_0", key: p1temp, n: 0, want: nil},
		{name: "other_sensor_of_the_equipment", key: sensor.Key{EquipmentID: press1, Type: sensor.Vibration}, n: 10, want: []float64{100}},
		{name: "same_sensor_of_other_equipment", key: sensor.Key{EquipmentID: press2, Type: sensor.Temperature}, n: 10, want: []float64{200}},
		{name: "sensor_never_seen", key: sensor.Key{EquipmentID: press1, Type: sensor.Pressure}, n: 10, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Readings.RecentValues(t.Context(), tt.key, tt.n)
			must(t, err)
			equalList(t, tt.want, got)
		})
	}
}

func history(t *testing.T, s Stores) {
	t0 := reading(press1, "t-0", sensor.Temperature, 10, at(0))
	t1 := flagged(reading(press1, "t-1", sensor.Temperature, 11, at(time.Minute)))
	t2 := reading(press1, "t-2", sensor.Temperature, 12, at(2*time.Minute))
	t3 := reading(press1, "t-3", sensor.Temperature, 13, at(3*time.Minute))
	v := reading(press1, "v-1", sensor.Vibration, 20, at(90*time.Second))
	p := reading(press1, "p-1", sensor.Pressure, 30, at(150*time.Second))
	other := reading(press2, "t-0", sensor.Temperature, 99, at(time.Minute))
	// Stored out of timestamp order, over two batches.
	write(t, s, batchOf([]ports.StoredReading{t3, v, t0}), batchOf([]ports.StoredReading{other, p, t2, t1}))

	q := func(eq string, typ sensor.Type, from, to time.Time, limit int) ports.HistoryQuery {
		return ports.HistoryQuery{EquipmentID: eq, SensorType: typ, From: from, To: to, Limit: limit}
	}
	tests := []struct {
		name string
		q    ports.HistoryQuery
		want []ports.StoredReading
	}{
		{name: "from_included_to_excluded", q: q(press1, sensor.Temperature, at(0), at(3*time.Minute), 100),
			want: []ports.StoredReading{t0, t1, t2}},
		{name: "to_just_after_a_reading_includes_it", q: q(press1, sensor.Temperature, at(0), at(3*time.Minute+time.Microsecond), 100),
			want: []ports.StoredReading{t0, t1, t2, t3}},
		{name: "from_just_after_a_reading_excludes_it", q: q(press1, sensor.Temperature, at(time.Microsecond), at(3*time.Minute), 100),
			want: []ports.StoredReading{t1, t2}},
		{name: "every_sensor_type", q: q(press1, "", at(0), at(time.Hour), 100),
			want: []ports.StoredReading{t0, t1, v, t2, p, t3}},
		{name: "one_sensor_type", q: q(press1, sensor.Vibration, at(0), at(time.Hour), 100),
			want: []ports.StoredReading{v}},
		{name: "limit_keeps_the_latest_ascending", q: q(press1, sensor.Temperature, at(0), at(time.Hour), 2),
			want: []ports.StoredReading{t2, t3}},
		{name: "limit_keeps_the_latest_of_every_type", q: q(press1, "", at(0), at(time.Hour), 3),
			want: []ports.StoredReading{t2, p, t3}},
		{name: "limit_equal_to_matches", q: q(press1, sensor.Temperature, at(0), at(time.Hour), 4),
			want: []ports.StoredReading{t0, t1, t2, t3}},
		{name: "other_equipment", q: q(press2, "", at(0), at(time.Hour), 100),
			want: []ports.StoredReading{other}},
		{name: "unknown_equipment", q: q("lathe-01", "", at(0), at(time.Hour), 100), want: nil},
		{name: "empty_range", q: q(press1, "", at(time.Minute), at(time.Minute), 100), want: nil},
		{name: "range_before_every_reading", q: q(press1, "", at(-time.Hour), at(0), 100), want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Readings.History(t.Context(), tt.q)
			must(t, err)
			equalList(t, tt.want, got)
		})
	}
}

func averages(t *testing.T, s Stores) {
	const mill = "mill-07"
	const old = "old-01"
	pre1970 := func(d time.Duration) time.Time { return time.Unix(0, 0).UTC().Add(d) }
	write(t, s, batchOf([]ports.StoredReading{
		reading(press1, "t-1", sensor.Temperature, 1, at(10*time.Second)),
		reading(press1, "t-2", sensor.Temperature, 3, at(50*time.Second)),
		reading(press1, "t-3", sensor.Temperature, 10, at(70*time.Second)),
		reading(press1, "t-4", sensor.Temperature, 4, at(130*time.Second)),
		reading(press1, "p-1", sensor.Pressure, 100, at(20*time.Second)),
		reading(press1, "p-2", sensor.Pressure, 200, at(80*time.Second)),
		reading(press1, "v-1", sensor.Vibration, -5, at(30*time.Second)),
		reading(press2, "t-1", sensor.Temperature, 1000, at(15*time.Second)),
		// 7-minute buckets aligned to the epoch start at 07:58 and 08:05, not at 08:00.
		reading(mill, "t-1", sensor.Temperature, 1, at(10*time.Second)),
		reading(mill, "t-2", sensor.Temperature, 3, at(5*time.Minute-time.Microsecond)),
		reading(mill, "t-3", sensor.Temperature, 10, at(5*time.Minute)),
		// Before the epoch, buckets still start on the minute below.
		reading(old, "t-1", sensor.Temperature, 2, pre1970(-30*time.Second)),
		reading(old, "t-2", sensor.Temperature, 4, pre1970(-time.Microsecond)),
		reading(old, "t-3", sensor.Temperature, 8, pre1970(0)),
		reading(old, "t-4", sensor.Temperature, 16, pre1970(-61*time.Second)),
	}))

	pt := func(typ sensor.Type, bucket time.Time, avg, lo, hi float64, n int64) ports.AveragePoint {
		return ports.AveragePoint{SensorType: typ, Bucket: bucket, Avg: avg, Min: lo, Max: hi, Count: n}
	}
	q := func(eq string, typ sensor.Type, from, to time.Time, limit int) ports.HistoryQuery {
		return ports.HistoryQuery{EquipmentID: eq, SensorType: typ, From: from, To: to, Limit: limit}
	}
	tp, pr, vi := sensor.Temperature, sensor.Pressure, sensor.Vibration
	minute := time.Minute
	tests := []struct {
		name     string
		q        ports.HistoryQuery
		interval time.Duration
		want     []ports.AveragePoint
	}{
		{name: "every_type_by_bucket_then_type", q: q(press1, "", at(0), at(time.Hour), 100), interval: minute,
			want: []ports.AveragePoint{
				pt(pr, at(0), 100, 100, 100, 1), pt(tp, at(0), 2, 1, 3, 2), pt(vi, at(0), -5, -5, -5, 1),
				pt(pr, at(minute), 200, 200, 200, 1), pt(tp, at(minute), 10, 10, 10, 1),
				pt(tp, at(2*minute), 4, 4, 4, 1),
			}},
		{name: "one_type", q: q(press1, tp, at(0), at(time.Hour), 100), interval: minute,
			want: []ports.AveragePoint{pt(tp, at(0), 2, 1, 3, 2), pt(tp, at(minute), 10, 10, 10, 1), pt(tp, at(2*minute), 4, 4, 4, 1)}},
		{name: "limit_keeps_the_latest_points", q: q(press1, "", at(0), at(time.Hour), 3), interval: minute,
			want: []ports.AveragePoint{pt(pr, at(minute), 200, 200, 200, 1), pt(tp, at(minute), 10, 10, 10, 1), pt(tp, at(2*minute), 4, 4, 4, 1)}},
		{name: "from_included_to_excluded", q: q(press1, tp, at(50*time.Second), at(130*time.Second), 100), interval: minute,
			want: []ports.AveragePoint{pt(tp, at(0), 3, 3, 3, 1), pt(tp, at(minute), 10, 10, 10, 1)}},
		{name: "one_bucket_for_the_hour", q: q(press1, "", at(0), at(time.Hour), 100), interval: time.Hour,
			want: []ports.AveragePoint{pt(pr, at(0), 150, 100, 200, 2), pt(tp, at(0), 4.5, 1, 10, 4), pt(vi, at(0), -5, -5, -5, 1)}},
		{name: "buckets_aligned_to_the_epoch", q: q(mill, "", at(0), at(time.Hour), 100), interval: 7 * minute,
			want: []ports.AveragePoint{pt(tp, at(-2*minute), 2, 1, 3, 2), pt(tp, at(5*minute), 10, 10, 10, 1)}},
		{name: "before_1970", q: q(old, tp, pre1970(-time.Hour), pre1970(time.Hour), 100), interval: minute,
			want: []ports.AveragePoint{pt(tp, pre1970(-2*minute), 16, 16, 16, 1), pt(tp, pre1970(-minute), 3, 2, 4, 2), pt(tp, pre1970(0), 8, 8, 8, 1)}},
		{name: "other_equipment", q: q(press2, "", at(0), at(time.Hour), 100), interval: minute,
			want: []ports.AveragePoint{pt(tp, at(0), 1000, 1000, 1000, 1)}},
		{name: "nothing_in_range", q: q(press1, "", at(time.Hour), at(2*time.Hour), 100), interval: minute, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Readings.Averages(t.Context(), tt.q, tt.interval)
			must(t, err)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d points, want %d\n got: %+v\nwant: %+v", len(got), len(tt.want), got, tt.want)
			}
			for i, w := range tt.want {
				g := got[i]
				if math.Abs(w.Avg-g.Avg) > 1e-9 {
					t.Errorf("point %d: avg %v, want %v", i, g.Avg, w.Avg)
				}
				w.Avg, g.Avg = 0, 0
				equal(t, w, g, "point %d", i)
				inUTC(t, g.Bucket)
			}
		})
	}
}

func latest(t *testing.T, s Stores) {
	newest := reading(press1, "t-1", sensor.Temperature, 2, at(2*time.Minute))
	older := reading(press1, "t-2", sensor.Temperature, 1, at(time.Minute)) // stored after newest
	vib := flagged(reading(press1, "v-1", sensor.Vibration, 5, at(0)))
	other := reading(press2, "t-1", sensor.Temperature, 9, at(5*time.Minute))
	write(t, s, batchOf([]ports.StoredReading{newest, vib}), batchOf([]ports.StoredReading{older, other}))

	tests := []struct {
		name string
		eq   string
		want []ports.StoredReading
	}{
		{name: "newest_by_timestamp_per_type", eq: press1, want: []ports.StoredReading{newest, vib}},
		{name: "other_equipment", eq: press2, want: []ports.StoredReading{other}},
		{name: "unknown_equipment", eq: "lathe-01", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Readings.Latest(t.Context(), tt.eq)
			must(t, err)
			// The port does not order the answer.
			equalList(t, byType(tt.want), byType(got))
		})
	}
}

func countByBucket(t *testing.T, s Stores) {
	const old = "old-01"
	day := 24 * time.Hour
	nov27, nov28 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	dec31 := time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)
	write(t, s, batchOf([]ports.StoredReading{
		reading(press1, "r-1", sensor.Temperature, 1, at(10*time.Minute)),
		reading(press1, "r-2", sensor.Vibration, 1, at(20*time.Minute)),
		reading(press1, "r-3", sensor.Temperature, 1, at(70*time.Minute)),
		reading(press1, "r-4", sensor.Pressure, 1, at(25*time.Hour)),
		reading(press2, "r-1", sensor.Voltage, 1, at(30*time.Minute)),
		reading(press2, "r-2", sensor.Temperature, 1, at(26*time.Hour+time.Minute)),
		reading(old, "r-1", sensor.Temperature, 1, time.Date(1969, 12, 31, 12, 0, 0, 0, time.UTC)),
		reading(old, "r-2", sensor.Temperature, 1, time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC)),
		reading(old, "r-3", sensor.Temperature, 1, time.Unix(0, 0).UTC()),
	}))
	bc := func(b time.Time, n int64) ports.BucketCount { return ports.BucketCount{Bucket: b, Count: n} }
	tests := []struct {
		name     string
		eq       string
		from, to time.Time
		bucket   time.Duration
		want     []ports.BucketCount
	}{
		{name: "hour_every_equipment", from: at(0), to: at(48 * time.Hour), bucket: time.Hour,
			want: []ports.BucketCount{bc(at(0), 3), bc(at(time.Hour), 1), bc(at(25*time.Hour), 1), bc(at(26*time.Hour), 1)}},
		{name: "hour_one_equipment", eq: press1, from: at(0), to: at(48 * time.Hour), bucket: time.Hour,
			want: []ports.BucketCount{bc(at(0), 2), bc(at(time.Hour), 1), bc(at(25*time.Hour), 1)}},
		{name: "day_every_equipment", from: at(0), to: at(48 * time.Hour), bucket: day,
			want: []ports.BucketCount{bc(nov27, 4), bc(nov28, 2)}},
		{name: "day_one_equipment", eq: press2, from: at(0), to: at(48 * time.Hour), bucket: day,
			want: []ports.BucketCount{bc(nov27, 1), bc(nov28, 1)}},
		{name: "from_included_to_excluded", from: at(10 * time.Minute), to: at(30 * time.Minute), bucket: time.Hour,
			want: []ports.BucketCount{bc(at(0), 2)}},
		{name: "from_just_after_a_reading_excludes_it", from: at(10*time.Minute + time.Microsecond), to: at(30*time.Minute + time.Microsecond),
			bucket: time.Hour, want: []ports.BucketCount{bc(at(0), 2)}},
		{name: "day_before_1970", eq: old, from: dec31.Add(-day), to: dec31.Add(2 * day), bucket: day,
			want: []ports.BucketCount{bc(dec31, 2), bc(dec31.Add(day), 1)}},
		{name: "hour_before_1970", eq: old, from: dec31, to: dec31.Add(day), bucket: time.Hour,
			want: []ports.BucketCount{bc(dec31.Add(12*time.Hour), 1), bc(dec31.Add(23*time.Hour), 1)}},
		{name: "unknown_equipment", eq: "lathe-01", from: at(0), to: at(48 * time.Hour), bucket: time.Hour, want: nil},
		{name: "nothing_in_range", from: at(2 * time.Hour), to: at(25 * time.Hour), bucket: time.Hour, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Readings.CountByBucket(t.Context(), ports.SensorScope{EquipmentID: tt.eq}, tt.from, tt.to, tt.bucket)
			must(t, err)
			equalList(t, tt.want, got)
			for _, g := range got {
				inUTC(t, g.Bucket)
			}
		})
	}
}

// byType sorts a copy of rs by sensor type.
func byType(rs []ports.StoredReading) []ports.StoredReading {
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b ports.StoredReading) int { return strings.Compare(string(a.Type), string(b.Type)) })
	return out
}
