package portstest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// PartitionFencer is the contract of ports.PartitionFencer and of fenced batch writes
// (ports.ProcessedBatch.Fences), for stores that have a fencer. A store without one cannot
// tell whether a writer still holds its partitions: it must refuse every fenced batch, and
// store nothing of it.
func PartitionFencer(t *testing.T, newStores func(t *testing.T) Stores) {
	if newStores(t).fencer() == nil {
		t.Run("store_without_fencer_refuses_fenced_batches", func(t *testing.T) {
			s := newStores(t)
			before := snapshotOf(t, s)
			b := fencedBatch(0, ports.Fence{Partition: 0, Epoch: 1})
			if err := s.Writer.WriteBatch(t.Context(), b); err == nil {
				t.Fatal("WriteBatch of a fenced batch = nil, want an error")
			}
			equal(t, before, snapshotOf(t, s), "stored data")
		})
		return
	}

	t.Run("epochs_start_at_one_and_rise_per_partition", func(t *testing.T) {
		s := newStores(t)
		f := s.fencer()
		equal(t, int64(1), advance(t, f, 3), "first epoch of partition 3")
		equal(t, int64(2), advance(t, f, 3), "second epoch of partition 3")
		equal(t, int64(1), advance(t, f, 4), "first epoch of partition 4")
		equal(t, int64(3), advance(t, f, 3), "third epoch of partition 3")
	})

	t.Run("write_at_the_current_epoch_is_stored", func(t *testing.T) {
		s := newStores(t)
		e := advance(t, s.fencer(), 0)
		b := fencedBatch(1, ports.Fence{Partition: 0, Epoch: e})
		write(t, s, b)
		equal(t, b.Readings, everything(t, s, press1), "readings")
		_, total, err := s.Anomalies.Find(t.Context(), ports.AnomalyQuery{Limit: 10})
		must(t, err)
		equal(t, int64(len(b.Anomalies)), total, "anomalies")
	})

	t.Run("write_at_an_earlier_epoch_is_fenced_and_stores_nothing", func(t *testing.T) {
		s := newStores(t)
		f := s.fencer()
		first := advance(t, f, 0)
		write(t, s, fencedBatch(1, ports.Fence{Partition: 0, Epoch: first}))
		second := advance(t, f, 0)
		before := snapshotOf(t, s)

		stale := fencedBatch(2, ports.Fence{Partition: 0, Epoch: first})
		fenced(t, s.Writer.WriteBatch(t.Context(), stale))
		equal(t, before, snapshotOf(t, s), "stored data after the fenced write")

		// The new holder writes the same batch.
		stale.Fences = []ports.Fence{{Partition: 0, Epoch: second}}
		write(t, s, stale)
		equal(t, 2*len(stale.Readings), len(everything(t, s, press1)), "readings of both batches")
	})

	t.Run("epoch_never_handed_out_is_fenced", func(t *testing.T) {
		s := newStores(t)
		f := s.fencer()
		e := advance(t, f, 0)
		before := snapshotOf(t, s)
		for _, fence := range []ports.Fence{
			{Partition: 0, Epoch: e + 1}, // ahead of the partition
			{Partition: 0, Epoch: 0},
			{Partition: 9, Epoch: 1}, // a partition never taken over
			{Partition: 9, Epoch: 0},
		} {
			fenced(t, s.Writer.WriteBatch(t.Context(), fencedBatch(1, fence)), "fence %+v", fence)
		}
		equal(t, before, snapshotOf(t, s), "stored data")
	})

	t.Run("partitions_are_independent", func(t *testing.T) {
		s := newStores(t)
		f := s.fencer()
		p1 := advance(t, f, 1)
		p2old := advance(t, f, 2)
		p2 := advance(t, f, 2)
		tests := []struct {
			name   string
			fences []ports.Fence
			want   bool // stored, not fenced
		}{
			{name: "current_epoch_of_an_untouched_partition", fences: []ports.Fence{{Partition: 1, Epoch: p1}}, want: true},
			{name: "earlier_epoch_of_the_advanced_partition", fences: []ports.Fence{{Partition: 2, Epoch: p2old}}},
			{name: "current_epoch_of_the_advanced_partition", fences: []ports.Fence{{Partition: 2, Epoch: p2}}, want: true},
			{name: "one_stale_fence_fences_the_batch",
				fences: []ports.Fence{{Partition: 1, Epoch: p1}, {Partition: 2, Epoch: p2old}}},
			{name: "stale_fence_first_fences_the_batch",
				fences: []ports.Fence{{Partition: 2, Epoch: p2old}, {Partition: 1, Epoch: p1}}},
			{name: "every_fence_current", fences: []ports.Fence{{Partition: 2, Epoch: p2}, {Partition: 1, Epoch: p1}}, want: true},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := snapshotOf(t, s)
				err := s.Writer.WriteBatch(t.Context(), fencedBatch(10+i, tt.fences...))
				if tt.want {
					must(t, err)
					equal(t, len(before.Readings)+1, len(snapshotOf(t, s).Readings), "readings")
					return
				}
				fenced(t, err)
				equal(t, before, snapshotOf(t, s), "stored data")
			})
		}
	})

	t.Run("fences_alone_check_the_partitions", func(t *testing.T) {
		s := newStores(t)
		f := s.fencer()
		old := advance(t, f, 5)
		current := advance(t, f, 5)
		must(t, s.Writer.WriteBatch(t.Context(), ports.ProcessedBatch{Fences: []ports.Fence{{Partition: 5, Epoch: current}}}))
		fenced(t, s.Writer.WriteBatch(t.Context(), ports.ProcessedBatch{Fences: []ports.Fence{{Partition: 5, Epoch: old}}}))
		fenced(t, s.Writer.WriteBatch(t.Context(), ports.ProcessedBatch{Fences: []ports.Fence{{Partition: 6, Epoch: 1}}}),
			"partition never taken over")
	})
}

// advance advances the epoch of partition p.
func advance(t *testing.T, f ports.PartitionFencer, p int) int64 {
	t.Helper()
	e, err := f.AdvanceEpoch(t.Context(), p)
	must(t, err)
	return e
}

// fenced checks that err is ports.ErrFenced, wrapped or not.
func fenced(t *testing.T, err error, what ...any) {
	t.Helper()
	if !errors.Is(err, ports.ErrFenced) {
		t.Errorf("%s: want ports.ErrFenced, got %v", describe(what), err)
	}
}

// fencedBatch is the n-th batch of a worker: a reading of press-01 (anomalous, with its
// anomaly) a minute after the previous batch's, its sighting and a session, under fences.
func fencedBatch(n int, fences ...ports.Fence) ports.ProcessedBatch {
	r := flagged(reading(press1, fmt.Sprintf("f-%d", n), sensor.Pressure, float64(n), at(time.Duration(n)*time.Minute)))
	b := batchOf([]ports.StoredReading{r}, anomalyOf(fmt.Sprintf("fa-%d", n), r, anomaly.SeverityMedium))
	b.Sessions = []equipment.Session{{EquipmentID: press1, Start: at(time.Duration(n) * time.Minute), End: r.ReceivedAt}}
	b.Fences = fences
	return b
}

// snapshot is everything the suites' batches may store.
type snapshot struct {
	Equipment []equipment.Equipment
	Readings  []ports.StoredReading // of press-01, then press-02
	Anomalies []anomaly.Anomaly
	Sessions  []equipment.Session
	Counts    []ports.BucketCount // by hour
}

func snapshotOf(t *testing.T, s Stores) snapshot {
	t.Helper()
	var out snapshot
	var err error
	out.Equipment, err = s.Equipment.All(t.Context())
	must(t, err)
	out.Readings = append(everything(t, s, press1), everything(t, s, press2)...)
	out.Anomalies, _, err = s.Anomalies.Find(t.Context(), ports.AnomalyQuery{Limit: 1 << 20})
	must(t, err)
	out.Sessions, err = s.Equipment.Sessions(t.Context(), "", longAgo, farAhead)
	must(t, err)
	out.Counts, err = s.Readings.CountByBucket(t.Context(), ports.SensorScope{}, at(-24*time.Hour), at(24*time.Hour), time.Hour)
	must(t, err)
	// Compare empty and nil alike.
	if len(out.Equipment) == 0 {
		out.Equipment = nil
	}
	if len(out.Readings) == 0 {
		out.Readings = nil
	}
	if len(out.Anomalies) == 0 {
		out.Anomalies = nil
	}
	if len(out.Sessions) == 0 {
		out.Sessions = nil
	}
	if len(out.Counts) == 0 {
		out.Counts = nil
	}
	return out
}
