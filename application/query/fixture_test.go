package query_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/adapters/memory"
	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// t0 is a round hour at which the query tests' data starts.
var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

var errStorageDown = fmt.Errorf("connect storage: %w", ports.ErrUnavailable)

type fixture struct {
	store *memory.Store
	clock *memory.Clock
	n     int
}

func newFixture() *fixture {
	return &fixture{store: memory.NewStore(), clock: memory.NewClock(t0)}
}

// write stores a batch, failing the test on error.
func (f *fixture) write(t *testing.T, b ports.ProcessedBatch) {
	t.Helper()
	if err := f.store.WriteBatch(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// reading stores one reading measured at ts and received at receivedAt, and sights its
// equipment at receivedAt.
func (f *fixture) reading(t *testing.T, eq string, typ sensor.Type, v float64, ts, receivedAt time.Time, anomalous bool) ports.StoredReading {
	t.Helper()
	f.n++
	r, err := sensor.NewReading(fmt.Sprintf("r-%d", f.n), eq, typ, "", v, "unit", ts, receivedAt)
	if err != nil {
		t.Fatal(err)
	}
	sr := ports.StoredReading{Reading: r, Anomalous: anomalous}
	f.write(t, ports.ProcessedBatch{Readings: []ports.StoredReading{sr},
		Sightings: []ports.Sighting{{EquipmentID: eq, LastSeenAt: receivedAt}}})
	return sr
}

// anomaly stores an anomalous reading of eq timestamped ts, detected at detectedAt, and
// sights eq then.
func (f *fixture) anomaly(t *testing.T, eq string, typ sensor.Type, sev anomaly.Severity, ts, detectedAt time.Time) anomaly.Anomaly {
	t.Helper()
	f.n++
	r, err := sensor.NewReading(fmt.Sprintf("r-%d", f.n), eq, typ, "", 100, "", ts, detectedAt)
	if err != nil {
		t.Fatal(err)
	}
	v := anomaly.Verdict{Judged: true, Anomalous: true, Severity: sev, ZScore: 4.5, Mean: 70, StdDev: 6, WindowSize: 100}
	a := anomaly.NewAnomaly(fmt.Sprintf("a-%03d", f.n), r, v, detectedAt)
	f.write(t, ports.ProcessedBatch{
		Readings:  []ports.StoredReading{{Reading: r, Anomalous: true}},
		Anomalies: []anomaly.Anomaly{a},
		Sightings: []ports.Sighting{{EquipmentID: eq, LastSeenAt: detectedAt, LastAnomalyAt: detectedAt}},
	})
	return a
}

// session stores an online session of eq.
func (f *fixture) session(t *testing.T, eq string, from, to time.Time) {
	t.Helper()
	f.write(t, ports.ProcessedBatch{Sessions: []equipment.Session{{EquipmentID: eq, Start: from, End: to}}})
}
