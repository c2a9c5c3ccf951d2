// Package portstest holds the contract suites of the storage ports: every storage adapter
// (memory, sqlite, postgres) runs them, and any difference between adapters is a bug.
//
// The suites write through the ports only, and always as the application does: every batch
// registers, by its sightings, the equipment of its readings and sessions. Times are given in
// UTC at microsecond precision and must come back equal, in UTC.
package portstest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/production-line-monitor/plm/domain/anomaly"
	"github.com/production-line-monitor/plm/domain/equipment"
	"github.com/production-line-monitor/plm/domain/sensor"
	"github.com/production-line-monitor/plm/ports"
)

// Stores is what a storage adapter hands the contract suite: its implementations of the
// storage ports, all over the same empty store.
type Stores struct {
	Readings  ports.ReadingRepository
	Anomalies ports.AnomalyRepository
	Equipment ports.EquipmentRepository
	Writer    ports.BatchWriter
	// Fencer hands out the epochs that Writer checks, for a store that fences partitions.
	// When nil, the suite uses Writer if it implements ports.PartitionFencer (as a store that
	// is one object does), and otherwise checks that Writer refuses fenced batches.
	Fencer ports.PartitionFencer
	// Rollups folds the rollups that Readings counts from, for a store that keeps them. When
	// nil, the suite uses Writer if it implements ports.RollupFolder.
	Rollups ports.RollupFolder
	Alarms  ports.AlarmRepository
	// Maintenance keeps the equipment's maintenance windows.
	Maintenance ports.MaintenanceRepository
	// Subscriptions, Deliveries and Ledger keep the outbound notifications: Writer's batches,
	// Alarms' acknowledgements and Ledger's announcements enqueue deliveries with their changes.
	Subscriptions ports.SubscriptionRepository
	Deliveries    ports.DeliveryQueue
	Ledger        ports.StatusLedger
}

// fencer is the store's ports.PartitionFencer, or nil.
func (s Stores) fencer() ports.PartitionFencer {
	if s.Fencer != nil {
		return s.Fencer
	}
	f, _ := s.Writer.(ports.PartitionFencer)
	return f
}

// rollups is the store's ports.RollupFolder, or nil.
func (s Stores) rollups() ports.RollupFolder {
	if s.Rollups != nil {
		return s.Rollups
	}
	r, _ := s.Writer.(ports.RollupFolder)
	return r
}

// Run runs every contract suite. Each sub-test gets fresh, empty stores from newStores, which
// registers their clean-up with the t it is given.
func Run(t *testing.T, newStores func(t *testing.T) Stores) {
	t.Helper()
	t.Run("BatchWriter", func(t *testing.T) { BatchWriter(t, newStores) })
	t.Run("ReadingRepository", func(t *testing.T) { ReadingRepository(t, newStores) })
	t.Run("AnomalyRepository", func(t *testing.T) { AnomalyRepository(t, newStores) })
	t.Run("EquipmentRepository", func(t *testing.T) { EquipmentRepository(t, newStores) })
	t.Run("PartitionFencer", func(t *testing.T) { PartitionFencer(t, newStores) })
	t.Run("RollupFolder", func(t *testing.T) { RollupFolder(t, newStores) })
	t.Run("AlarmRepository", func(t *testing.T) { AlarmRepository(t, newStores) })
	t.Run("MaintenanceRepository", func(t *testing.T) { MaintenanceRepository(t, newStores) })
	t.Run("Notifications", func(t *testing.T) { Notifications(t, newStores) })
	t.Run("StatusLedger", func(t *testing.T) { StatusLedger(t, newStores) })
	t.Run("Sensors", func(t *testing.T) { Sensors(t, newStores) })
}

// The fixtures' equipment.
const (
	press1 = "press-01"
	press2 = "press-02"
)

// base is the fixtures' reference time: an hour boundary, in UTC.
var base = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

// Times far enough out to hold every fixture.
var (
	longAgo  = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	farAhead = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// at is base + d.
func at(d time.Duration) time.Time { return base.Add(d) }

// receiptDelay is how long after its timestamp a fixture reading is received: not a whole
// millisecond, so that microseconds must survive.
const receiptDelay = 1500*time.Microsecond + 7*time.Microsecond

var units = map[sensor.Type]string{
	sensor.Temperature: "celsius", sensor.Vibration: "mm/s", sensor.Pressure: "bar", sensor.Voltage: "V",
}

// reading is a stored reading of equipment eq, received receiptDelay after ts.
func reading(eq, id string, typ sensor.Type, value float64, ts time.Time) ports.StoredReading {
	return ports.StoredReading{Reading: sensor.Reading{
		ID: id, EquipmentID: eq, Type: typ, Value: value, Unit: units[typ],
		Timestamp: ts, ReceivedAt: ts.Add(receiptDelay),
	}}
}

// flagged is r marked anomalous.
func flagged(r ports.StoredReading) ports.StoredReading {
	r.Anomalous = true
	return r
}

// anomalyOf is an anomaly of r with the given id and severity, detected a second after r's
// timestamp.
func anomalyOf(id string, r ports.StoredReading, sev anomaly.Severity) anomaly.Anomaly {
	return anomaly.Anomaly{
		ID: id, ReadingID: r.ID, EquipmentID: r.EquipmentID, SensorType: r.Type, Value: r.Value,
		ZScore: -4.25, Mean: r.Value + 8.5, StdDev: 2, WindowSize: 100, Severity: sev,
		Timestamp: r.Timestamp, DetectedAt: r.Timestamp.Add(time.Second),
	}
}

// batchOf is the batch that stores rs and their anomalies as, in this order, the processing
// use case would: one sighting per equipment, seen at its latest receipt and, if it has
// anomalies, anomalous when the latest was detected.
func batchOf(rs []ports.StoredReading, as ...anomaly.Anomaly) ports.ProcessedBatch {
	b := ports.ProcessedBatch{Readings: rs, Anomalies: as}
	index := make(map[string]int)
	for _, r := range rs {
		i, ok := index[r.EquipmentID]
		if !ok {
			i = len(b.Sightings)
			index[r.EquipmentID] = i
			b.Sightings = append(b.Sightings, ports.Sighting{EquipmentID: r.EquipmentID})
		}
		if r.ReceivedAt.After(b.Sightings[i].LastSeenAt) {
			b.Sightings[i].LastSeenAt = r.ReceivedAt
		}
	}
	for _, a := range as {
		if i, ok := index[a.EquipmentID]; ok && a.DetectedAt.After(b.Sightings[i].LastAnomalyAt) {
			b.Sightings[i].LastAnomalyAt = a.DetectedAt
		}
	}
	return b
}

// sessionBatch stores sessions, with a sighting of each one's equipment at its end.
func sessionBatch(sessions ...equipment.Session) ports.ProcessedBatch {
	b := ports.ProcessedBatch{Sessions: sessions}
	for _, s := range sessions {
		b.Sightings = append(b.Sightings, ports.Sighting{EquipmentID: s.EquipmentID, LastSeenAt: s.End})
	}
	return b
}

// write stores each batch in its own WriteBatch call.
func write(t *testing.T, s Stores, batches ...ports.ProcessedBatch) {
	t.Helper()
	for i, b := range batches {
		if err := s.Writer.WriteBatch(t.Context(), b); err != nil {
			t.Fatalf("write batch %d: %v", i, err)
		}
	}
}

// everything is every reading of eq.
func everything(t *testing.T, s Stores, eq string) []ports.StoredReading {
	t.Helper()
	got, err := s.Readings.History(t.Context(), ports.HistoryQuery{EquipmentID: eq, From: longAgo, To: farAhead, Limit: 1 << 20})
	must(t, err)
	return got
}

// must stops the test on an error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// equal reports whether want and got are deeply equal, and fails the test when not. Times
// are equal only with the same instant, precision and location. what, a format and its
// arguments, names the values compared.
func equal(t *testing.T, want, got any, what ...any) bool {
	t.Helper()
	if reflect.DeepEqual(want, got) {
		return true
	}
	t.Errorf("%s differs\n got: %+v\nwant: %+v", describe(what), got, want)
	return false
}

func describe(what []any) string {
	if len(what) == 0 {
		return "value"
	}
	format, ok := what[0].(string)
	if !ok {
		return fmt.Sprint(what...)
	}
	return fmt.Sprintf(format, what[1:]...)
}

// equalList compares lists, taking nil and empty as equal.
func equalList[T any](t *testing.T, want, got []T, what ...any) {
	t.Helper()
	if len(want) == 0 && len(got) == 0 {
		return
	}
	equal(t, want, got, what...)
}

// notFound checks that err is ports.ErrNotFound, wrapped or not.
func notFound(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ports.ErrNotFound) {
		t.Errorf("want ports.ErrNotFound, got %v", err)
	}
}

// inUTC checks that every time is in UTC (the zero time included).
func inUTC(t *testing.T, times ...time.Time) {
	t.Helper()
	for i, tm := range times {
		if tm.Location() != time.UTC {
			t.Errorf("time %d (%s) is in %s, not UTC", i, tm, tm.Location())
		}
	}
}
