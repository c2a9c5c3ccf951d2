package portstest

import (
	"fmt"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// BatchWriter is the contract of ports.BatchWriter, read back through the repositories.
func BatchWriter(t *testing.T, newStores func(t *testing.T) Stores) {
	t.Run("round_trips_every_field", func(t *testing.T) {
		s := newStores(t)
		r := flagged(reading(press1, "r-1", sensor.Temperature, -17.25, at(123456*time.Microsecond)))
		old := reading(press1, "r-0", sensor.Voltage, 230.5, time.Date(1969, 7, 20, 20, 17, 40, 123456000, time.UTC))
		a := anomalyOf("a-1", r, anomaly.SeverityCritical)
		a.ZScore, a.Mean, a.StdDev, a.WindowSize = 5.125, 61.375, 15.0625, 42
		b := batchOf([]ports.StoredReading{old, r}, a)
		session := equipment.Session{EquipmentID: press1, Start: old.ReceivedAt, End: r.ReceivedAt}
		b.Sessions = []equipment.Session{session}
		write(t, s, b)

		got := everything(t, s, press1)
		equal(t, []ports.StoredReading{old, r}, got)
		for _, g := range got {
			inUTC(t, g.Timestamp, g.ReceivedAt)
		}

		found, total, err := s.Anomalies.Find(t.Context(), ports.AnomalyQuery{Limit: 10})
		must(t, err)
		equal(t, int64(1), total)
		equal(t, []anomaly.Anomaly{a}, found)
		for _, g := range found {
			inUTC(t, g.Timestamp, g.DetectedAt)
		}

		e, err := s.Equipment.Get(t.Context(), press1)
		must(t, err)
		equal(t, equipment.Equipment{ID: press1, CreatedAt: r.ReceivedAt, LastSeenAt: r.ReceivedAt,
			LastAnomalyAt: a.DetectedAt}, e)
		inUTC(t, e.CreatedAt, e.LastSeenAt, e.LastAnomalyAt)

		latest, err := s.Equipment.LatestSession(t.Context(), press1)
		must(t, err)
		equal(t, session, latest)
		inUTC(t, latest.Start, latest.End)
	})

	t.Run("empty_batch_stores_nothing", func(t *testing.T) {
		s := newStores(t)
		write(t, s, ports.ProcessedBatch{})
		all, err := s.Equipment.All(t.Context())
		must(t, err)
		equalList(t, nil, all, "equipment")
		equalList(t, nil, everything(t, s, press1), "readings")
	})

	t.Run("skips_stored_readings", func(t *testing.T) {
		r1 := reading(press1, "r-1", sensor.Temperature, 70, at(0))
		r1again := flagged(reading(press1, "r-1", sensor.Temperature, 99, at(time.Second)))
		r1flagged := flagged(r1)
		r2 := flagged(reading(press1, "r-2", sensor.Temperature, 98, at(2*time.Second)))
		r1other := flagged(reading(press2, "r-1", sensor.Temperature, 97, at(3*time.Second)))
		tests := []struct {
			name          string
			batches       []ports.ProcessedBatch
			want1, want2  []ports.StoredReading // every reading of press-01, press-02
			wantAnomalies []string              // ids, as Find sorts them (latest first)
		}{
			{
				name: "stored_reading_keeps_its_values_and_gains_no_anomaly",
				batches: []ports.ProcessedBatch{
					batchOf([]ports.StoredReading{r1}),
					batchOf([]ports.StoredReading{r1again, r2}, anomalyOf("a-1", r1again, anomaly.SeverityLow),
						anomalyOf("a-2", r2, anomaly.SeverityLow)),
				},
				want1:         []ports.StoredReading{r1, r2},
				wantAnomalies: []string{"a-2"},
			},
			{
				name: "stored_anomalous_reading_keeps_its_only_anomaly",
				batches: []ports.ProcessedBatch{
					batchOf([]ports.StoredReading{r1flagged}, anomalyOf("a-1", r1flagged, anomaly.SeverityLow)),
					batchOf([]ports.StoredReading{r1again}, anomalyOf("a-9", r1again, anomaly.SeverityCritical)),
				},
				want1:         []ports.StoredReading{r1flagged},
				wantAnomalies: []string{"a-1"},
			},
			{
				name: "same_reading_id_under_other_equipment_is_another_reading",
				batches: []ports.ProcessedBatch{
					batchOf([]ports.StoredReading{r1}),
					batchOf([]ports.StoredReading{r1other}, anomalyOf("a-1", r1other, anomaly.SeverityMedium)),
				},
				want1:         []ports.StoredReading{r1},
				want2:         []ports.StoredReading{r1other},
				wantAnomalies: []string{"a-1"},
			},
			{
				name:    "repeat_within_one_batch_keeps_the_first",
				batches: []ports.ProcessedBatch{batchOf([]ports.StoredReading{r1, r1again, r2}, anomalyOf("a-2", r2, anomaly.SeverityLow))},
				want1:   []ports.StoredReading{r1, r2},
				// the anomaly of r2 is stored: r2 is new
				wantAnomalies: []string{"a-2"},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStores(t)
				write(t, s, tt.batches...)
				equalList(t, tt.want1, everything(t, s, press1), press1)
				equalList(t, tt.want2, everything(t, s, press2), press2)
				found, total, err := s.Anomalies.Find(t.Context(), ports.AnomalyQuery{Limit: 100})
				must(t, err)
				equal(t, tt.wantAnomalies, ids(found))
				equal(t, int64(len(tt.wantAnomalies)), total)
			})
		}
	})

	t.Run("sightings", func(t *testing.T) {
		t1, t2, t3, t4 := at(time.Second), at(2*time.Second), at(3*time.Second), at(4*time.Second)
		seen := func(lastSeen, lastAnomaly time.Time) ports.ProcessedBatch {
			return ports.ProcessedBatch{Sightings: []ports.Sighting{{EquipmentID: press1, LastSeenAt: lastSeen, LastAnomalyAt: lastAnomaly}}}
		}
		meta := equipment.Metadata{Name: "Press 1", Line: "A", Location: "Hall 2"}
		tests := []struct {
			name     string
			metadata bool // UpsertMetadata(press-01, meta, base) first
			batches  []ports.ProcessedBatch
			want     equipment.Equipment
		}{
			{
				name:    "unknown_equipment_is_registered_when_first_seen",
				batches: []ports.ProcessedBatch{seen(t1, time.Time{})},
				want:    equipment.Equipment{ID: press1, CreatedAt: t1, LastSeenAt: t1},
			},
			{
				name:    "unknown_equipment_seen_anomalous",
				batches: []ports.ProcessedBatch{seen(t1, t2)},
				want:    equipment.Equipment{ID: press1, CreatedAt: t1, LastSeenAt: t1, LastAnomalyAt: t2},
			},
			{
				name:    "later_sighting_moves_last_seen_forward",
				batches: []ports.ProcessedBatch{seen(t1, time.Time{}), seen(t3, time.Time{})},
				want:    equipment.Equipment{ID: press1, CreatedAt: t1, LastSeenAt: t3},
			},
			{
				name:    "earlier_sighting_leaves_last_seen",
				batches: []ports.ProcessedBatch{seen(t3, time.Time{}), seen(t1, time.Time{})},
				want:    equipment.Equipment{ID: press1, CreatedAt: t3, LastSeenAt: t3},
			},
			{
				name:    "later_anomaly_moves_last_anomaly_forward",
				batches: []ports.ProcessedBatch{seen(t1, t2), seen(t3, t4)},
				want:    equipment.Equipment{ID: press1, CreatedAt: t1, LastSeenAt: t3, LastAnomalyAt: t4},
			},
			{
				name:    "earlier_anomaly_leaves_last_anomaly",
				batches: []ports.ProcessedBatch{seen(t1, t4), seen(t3, t2)},
				want:    equipment.Equipment{ID: press1, CreatedAt: t1, LastSeenAt: t3, LastAnomalyAt: t4},
			},
			{
				name:    "sighting_without_anomaly_leaves_last_anomaly",
				batches: []ports.ProcessedBatch{seen(t1, t2), seen(t3, time.Time{})},
				want:    equipment.Equipment{ID: press1, CreatedAt: t1, LastSeenAt: t3, LastAnomalyAt: t2},
			},
			{
				name: "two_sightings_in_one_batch",
				batches: []ports.ProcessedBatch{{Sightings: []ports.Sighting{
					{EquipmentID: press1, LastSeenAt: t3, LastAnomalyAt: t1},
					{EquipmentID: press1, LastSeenAt: t2, LastAnomalyAt: t2},
				}}},
				want: equipment.Equipment{ID: press1, CreatedAt: t3, LastSeenAt: t3, LastAnomalyAt: t2},
			},
			{
				name:     "known_equipment_keeps_metadata_and_creation",
				metadata: true,
				batches:  []ports.ProcessedBatch{seen(t1, t2)},
				want: equipment.Equipment{ID: press1, Name: meta.Name, Line: meta.Line, Location: meta.Location,
					CreatedAt: base, LastSeenAt: t1, LastAnomalyAt: t2},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStores(t)
				if tt.metadata {
					_, err := s.Equipment.UpsertMetadata(t.Context(), press1, meta, base)
					must(t, err)
				}
				write(t, s, tt.batches...)
				got, err := s.Equipment.Get(t.Context(), press1)
				must(t, err)
				equal(t, tt.want, got)
			})
		}
	})

	t.Run("sessions", func(t *testing.T) {
		start := at(time.Minute)
		session := func(eq string, start, end time.Time) equipment.Session {
			return equipment.Session{EquipmentID: eq, Start: start, End: end}
		}
		tests := []struct {
			name    string
			batches []ports.ProcessedBatch
			want    []equipment.Session // every session, by equipment then start
		}{
			{
				name:    "new_session_is_inserted",
				batches: []ports.ProcessedBatch{sessionBatch(session(press1, start, at(2*time.Minute)))},
				want:    []equipment.Session{session(press1, start, at(2*time.Minute))},
			},
			{
				name: "same_start_takes_the_later_end",
				batches: []ports.ProcessedBatch{
					sessionBatch(session(press1, start, at(2*time.Minute))),
					sessionBatch(session(press1, start, at(3*time.Minute))),
				},
				want: []equipment.Session{session(press1, start, at(3*time.Minute))},
			},
			{
				name: "same_start_keeps_the_later_end",
				batches: []ports.ProcessedBatch{
					sessionBatch(session(press1, start, at(3*time.Minute))),
					sessionBatch(session(press1, start, at(2*time.Minute))),
				},
				want: []equipment.Session{session(press1, start, at(3*time.Minute))},
			},
			{
				name: "other_start_is_another_session",
				batches: []ports.ProcessedBatch{
					sessionBatch(session(press1, at(time.Hour), at(2*time.Hour))),
					sessionBatch(session(press1, start, at(3*time.Minute)), session(press1, at(time.Hour), at(90*time.Minute))),
				},
				want: []equipment.Session{session(press1, start, at(3*time.Minute)), session(press1, at(time.Hour), at(2*time.Hour))},
			},
			{
				name: "same_start_of_other_equipment_is_another_session",
				batches: []ports.ProcessedBatch{
					sessionBatch(session(press2, start, at(5*time.Minute))),
					sessionBatch(session(press1, start, at(2*time.Minute))),
				},
				want: []equipment.Session{session(press1, start, at(2*time.Minute)), session(press2, start, at(5*time.Minute))},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStores(t)
				write(t, s, tt.batches...)
				got, err := s.Equipment.Sessions(t.Context(), "", longAgo, farAhead)
				must(t, err)
				equal(t, tt.want, got)
			})
		}
	})

	t.Run("large_batch_is_stored_whole", func(t *testing.T) {
		s := newStores(t)
		const n = 2500
		var rs []ports.StoredReading
		var as []anomaly.Anomaly
		var refs []ports.ReadingRef
		var temperatures []float64 // of press-01, in the order stored
		for i := range n {
			eq := []string{press1, press2}[i%2]
			typ := sensor.Types[(i/2)%len(sensor.Types)]
			r := reading(eq, fmt.Sprintf("r-%05d", i), typ, float64(i), at(time.Duration(i)*time.Millisecond))
			if i%10 == 0 {
				r = flagged(r)
				as = append(as, anomalyOf(fmt.Sprintf("a-%05d", i), r, anomaly.SeverityLow))
			}
			if eq == press1 && typ == sensor.Temperature {
				temperatures = append(temperatures, r.Value)
			}
			rs = append(rs, r)
			refs = append(refs, ports.ReadingRef{EquipmentID: eq, ReadingID: r.ID})
		}
		write(t, s, batchOf(rs, as...))

		stored, err := s.Readings.StoredRefs(t.Context(), refs)
		must(t, err)
		equal(t, n, len(stored), "stored refs")
		_, total, err := s.Anomalies.Find(t.Context(), ports.AnomalyQuery{Limit: 1})
		must(t, err)
		equal(t, int64(len(as)), total)
		counts, err := s.Readings.CountByBucket(t.Context(), ports.SensorScope{}, longAgo, farAhead, time.Hour)
		must(t, err)
		equal(t, []ports.BucketCount{{Bucket: base, Count: n}}, counts)
		values, err := s.Readings.RecentValues(t.Context(), sensor.Key{EquipmentID: press1, Type: sensor.Temperature}, 100)
		must(t, err)
		equal(t, temperatures[len(temperatures)-100:], values)
	})
}

// ids lists the anomalies' ids in order.
func ids(as []anomaly.Anomaly) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
