package portstest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// Database checks what stores over a real database promise beyond Run: a batch that breaks a
// constraint of the database stores nothing of itself, and a canceled context is reported
// as such, not as an unavailable database. (The in-memory store checks no constraint and
// ignores contexts.)
func Database(t *testing.T, newStores func(t *testing.T) Stores) {
	t.Run("batch breaking a constraint stores nothing", func(t *testing.T) {
		s := newStores(t)
		r := reading(press1, "r-1", sensor.Temperature, 71.5, base)
		bad := anomalyOf("a-1", r, "SEVERE") // breaks the severity check, after the reading went in
		err := s.Writer.WriteBatch(t.Context(), batchOf([]ports.StoredReading{flagged(r)}, bad))
		if !errors.Is(err, ports.ErrConflict) {
			t.Fatalf("WriteBatch = %v, want ErrConflict", err)
		}
		stored, err := s.Readings.StoredRefs(t.Context(), []ports.ReadingRef{{EquipmentID: press1, ReadingID: "r-1"}})
		must(t, err)
		if len(stored) != 0 {
			t.Error("the reading was not rolled back")
		}
		_, err = s.Equipment.Get(t.Context(), press1)
		if !errors.Is(err, ports.ErrNotFound) {
			t.Errorf("the sighting was not rolled back: Get = %v", err)
		}
		counts, err := s.Readings.CountByBucket(t.Context(), ports.SensorScope{}, base.Add(-time.Hour), base.Add(2*time.Hour), time.Hour)
		must(t, err)
		if len(counts) != 0 {
			t.Errorf("the counts were not rolled back: %v", counts)
		}
	})
	t.Run("canceled context is reported", func(t *testing.T) {
		s := newStores(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := s.Equipment.All(ctx)
		if !errors.Is(err, context.Canceled) || errors.Is(err, ports.ErrUnavailable) {
			t.Fatalf("All = %v, want context.Canceled and not ErrUnavailable", err)
		}
	})
}
