package portstest

import (
	"errors"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// Closed checks that stores whose database is closed answer every method of the four storage
// ports, and of the fencer and rollup folder when they have them, with ports.ErrUnavailable,
// and never with ports.ErrNotFound: the database is gone, not the data. open returns stores over a database and the function that closes that database;
// Closed calls it once, before any method.
func Closed(t *testing.T, open func(t *testing.T) (Stores, func() error)) {
	t.Helper()
	s, closeDB := open(t)
	if err := closeDB(); err != nil {
		t.Fatalf("close the database: %v", err)
	}
	hour := at(time.Hour)
	type namedCall struct {
		name string
		call func() error
	}
	calls := []namedCall{
		{"WriteBatch", func() error {
			return s.Writer.WriteBatch(t.Context(), ports.ProcessedBatch{Sightings: []ports.Sighting{{EquipmentID: press1, LastSeenAt: base}}})
		}},
		{"StoredRefs", func() error {
			_, err := s.Readings.StoredRefs(t.Context(), []ports.ReadingRef{{EquipmentID: press1, ReadingID: "r-1"}})
			return err
		}},
		{"RecentValues", func() error {
			_, err := s.Readings.RecentValues(t.Context(), sensor.Key{EquipmentID: press1, Type: sensor.Temperature}, 10)
			return err
		}},
		{"History", func() error {
			_, err := s.Readings.History(t.Context(), ports.HistoryQuery{EquipmentID: press1, From: base, To: hour, Limit: 1})
			return err
		}},
		{"Averages", func() error {
			_, err := s.Readings.Averages(t.Context(), ports.HistoryQuery{EquipmentID: press1, From: base, To: hour, Limit: 1}, time.Minute)
			return err
		}},
		{"Latest", func() error { _, err := s.Readings.Latest(t.Context(), press1); return err }},
		{"CountByBucket/raw", func() error {
			_, err := s.Readings.CountByBucket(t.Context(), ports.SensorScope{}, base, at(30*time.Minute), time.Hour)
			return err
		}},
		{"CountByBucket/whole_hours", func() error {
			_, err := s.Readings.CountByBucket(t.Context(), ports.SensorScope{}, base, at(3*time.Hour), time.Hour)
			return err
		}},
		{"Find", func() error { _, _, err := s.Anomalies.Find(t.Context(), ports.AnomalyQuery{Limit: 1}); return err }},
		{"CountBySeverity", func() error {
			_, err := s.Anomalies.CountBySeverity(t.Context(), ports.SensorScope{}, base, hour)
			return err
		}},
		{"CountDetectedSince", func() error {
			_, err := s.Anomalies.CountDetectedSince(t.Context(), ports.SensorScope{EquipmentID: press1}, base)
			return err
		}},
		{"Get", func() error { _, err := s.Equipment.Get(t.Context(), press1); return err }},
		{"All", func() error { _, err := s.Equipment.All(t.Context()); return err }},
		{"UpsertMetadata", func() error {
			_, err := s.Equipment.UpsertMetadata(t.Context(), press1, equipment.Metadata{}, base)
			return err
		}},
		{"LatestSession", func() error { _, err := s.Equipment.LatestSession(t.Context(), press1); return err }},
		{"Sessions", func() error { _, err := s.Equipment.Sessions(t.Context(), "", base, hour); return err }},
	}
	if f := s.fencer(); f != nil {
		calls = append(calls,
			namedCall{"AdvanceEpoch", func() error { _, err := f.AdvanceEpoch(t.Context(), 0); return err }},
			namedCall{"WriteBatch/fences_alone", func() error {
				return s.Writer.WriteBatch(t.Context(), ports.ProcessedBatch{Fences: []ports.Fence{{Partition: 0, Epoch: 1}}})
			}})
	}
	if r := s.rollups(); r != nil {
		calls = append(calls, namedCall{"FoldRollups", func() error { _, err := r.FoldRollups(t.Context()); return err }})
	}
	if m := s.Maintenance; m != nil {
		calls = append(calls,
			namedCall{"Maintenance.Set", func() error {
				return m.Set(t.Context(), equipment.Maintenance{EquipmentID: press1, From: base, To: hour})
			}},
			namedCall{"Maintenance.Get", func() error { _, err := m.Get(t.Context(), press1); return err }},
			namedCall{"Maintenance.End", func() error { return m.End(t.Context(), press1, base) }},
			namedCall{"Maintenance.Windows", func() error { _, err := m.Windows(t.Context(), []string{press1}); return err }})
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if !errors.Is(err, ports.ErrUnavailable) {
				t.Errorf("want ports.ErrUnavailable, got %v", err)
			}
			if errors.Is(err, ports.ErrNotFound) {
				t.Errorf("a closed database is not ports.ErrNotFound: %v", err)
			}
		})
	}
}
